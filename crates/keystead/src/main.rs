//! `keystead`: the server (`keystead serve`) and the command-line client
//! that configures it, in one binary (SPEC §9).

mod admin_token;
mod aws_kms;
mod cli;
mod config;
mod keys;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "keystead",
    version,
    about = "Wallets and Custom OIDC sign-in, self-hosted."
)]
pub struct Cli {
    /// keystead server URL (default: the profile's, else its stored key's, else http://127.0.0.1:8080).
    #[arg(long, global = true, env = "KEYSTEAD_SERVER")]
    pub server: Option<String>,
    /// Profile in .keysteadrc.
    #[arg(long, global = true, env = "KEYSTEAD_PROFILE")]
    pub profile: Option<String>,
    /// Print the API's JSON response as it is.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server.
    Serve {
        /// Config file (default ./keystead.toml if it exists).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Stop when standard input closes (for supervisors and test harnesses
        /// that must not leave a server behind).
        #[arg(long, hide = true)]
        stop_on_stdin_eof: bool,
    },
    /// Ask for a secret key (no echo), check it and save the profile.
    Login,
    /// Custom OIDC settings of this API key.
    #[command(subcommand)]
    Oidc(OidcCmd),
    /// Allowed return URLs.
    #[command(name = "return-urls", subcommand)]
    ReturnUrls(ReturnUrlsCmd),
    /// Operator commands (admin token from KEYSTEAD_ADMIN_TOKEN; reset-token
    /// works on the server's database directly).
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Pregenerated wallets (Bring Your Own Auth).
    #[command(subcommand)]
    Wallets(WalletsCmd),
    /// Key provider operations on the server's database directly:
    /// status, rotate, rewrap, migrate --to aws-kms
    #[command(subcommand)]
    Kms(keys::KmsCmd),
}

#[derive(Subcommand, Debug)]
pub enum WalletsCmd {
    /// Create a wallet for a user identifier.
    Create {
        /// EVM, SOLANA or COSMOS.
        #[arg(long = "type")]
        kind: String,
        #[arg(long)]
        identifier: String,
        /// EMAIL, PHONE, CUSTOM_ID, GUEST_ID, TELEGRAM, DISCORD or TWITTER.
        #[arg(long = "identifier-type")]
        identifier_type: String,
        /// bech32 prefix for COSMOS (default cosmos).
        #[arg(long = "cosmos-prefix")]
        cosmos_prefix: Option<String>,
        /// Idempotency-Key header: retries with the same key replay the first answer.
        #[arg(long = "idempotency-key")]
        idempotency_key: Option<String>,
    },
    /// Show one wallet.
    Show { id: String },
    /// The wallets of a user identifier.
    List {
        #[arg(long)]
        identifier: String,
        #[arg(long = "identifier-type")]
        identifier_type: String,
    },
    /// Sign a message (EVM: EIP-191; SOLANA: ed25519; COSMOS: ADR-036).
    SignMessage { id: String, message: String },
}

#[derive(Subcommand, Debug)]
pub enum OidcCmd {
    /// Show the configuration and the last verification.
    Show,
    /// Create or update the configuration (PUT).
    Configure(ConfigureArgs),
    /// Store the client secret: prompt without echo, or read stdin when it is not a terminal.
    SetSecret,
    /// Remove the client secret.
    ClearSecret,
    /// Run live checks against the IdP; exit 1 if any check fails.
    Verify,
    /// Sign in once for real, as a test: prints a URL to open in a browser,
    /// waits for the result and prints every check; writes no user, wallet
    /// or session. Exit 1 if a check fails.
    #[command(name = "test-login")]
    TestLogin {
        /// Print the URL and the test's id, and return at once.
        #[arg(long = "no-wait")]
        no_wait: bool,
        /// Wait for (or show) the result of an earlier test login.
        #[arg(long = "id")]
        id: Option<String>,
    },
    /// Remove the configuration and its secret.
    Remove,
}

#[derive(Args, Debug)]
pub struct ConfigureArgs {
    #[arg(long)]
    pub issuer: String,
    #[arg(long = "client-id")]
    pub client_id: String,
    #[arg(long)]
    pub label: String,
    #[arg(long)]
    pub scopes: Option<String>,
    #[arg(long = "auth-method")]
    pub auth_method: Option<String>,
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    /// Sign-in rule: only verified emails of this domain (repeat for more;
    /// `*.example.com` for its subdomains). Replaces the stored list.
    #[arg(long = "allowed-email-domain")]
    pub allowed_email_domains: Vec<String>,
    /// Sign-in rule: allow any email domain again (clears the list).
    #[arg(long = "any-email-domain", conflicts_with = "allowed_email_domains")]
    pub any_email_domain: bool,
    /// Sign-in rule: a verified email is required.
    #[arg(
        long = "require-verified-email",
        conflicts_with = "no_require_verified_email"
    )]
    pub require_verified_email: bool,
    #[arg(long = "no-require-verified-email")]
    pub no_require_verified_email: bool,
    /// Sign-in rule: nobody new is created (existing users, and pregenerated
    /// wallets claimed by verified email, only).
    #[arg(long = "no-sign-up", conflicts_with = "allow_sign_up")]
    pub no_sign_up: bool,
    #[arg(long = "allow-sign-up")]
    pub allow_sign_up: bool,
    #[arg(long)]
    pub disable: bool,
}

#[derive(Subcommand, Debug)]
pub enum ReturnUrlsCmd {
    /// Replace the allowed return URLs.
    Set {
        #[arg(required = false)]
        urls: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminCmd {
    #[command(subcommand)]
    Projects(AdminProjects),
    #[command(name = "api-keys", subcommand)]
    ApiKeys(AdminApiKeys),
    #[command(subcommand)]
    Developers(AdminDevelopers),
    /// Make a new admin token (the old one stops working): operates on the
    /// server's database directly, writes the token to {data_dir}/admin-token
    /// (0600) first, then stores it. Prints the file's path, never the token.
    #[command(name = "reset-token")]
    ResetToken {
        /// Server config file, as for `keystead serve` (default ./keystead.toml if it exists).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminProjects {
    Create {
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminApiKeys {
    Create {
        #[arg(long)]
        project: String,
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminDevelopers {
    /// Password by prompt, or stdin when it is not a terminal.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long = "project")]
        projects: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match cli.command {
        Command::Serve {
            config,
            stop_on_stdin_eof,
        } => {
            let cfg = match config::ServerConfig::load(config.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(2);
                }
            };
            if let Err(e) = init_tracing(&cfg.log_format) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            match runtime.block_on(serve::run(cfg, stop_on_stdin_eof)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Admin(AdminCmd::ResetToken { config }) => {
            let cfg = match config::ServerConfig::load(config.as_deref()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(2);
                }
            };
            match runtime.block_on(reset_admin_token(cfg)) {
                Ok(path) => {
                    if cli.json {
                        println!("{}", serde_json::json!({ "admin_token_file": path }));
                    } else {
                        println!(
                            "New admin token written to {} (mode 0600). The previous token no longer works.",
                            path.display()
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Kms(cmd) => match runtime.block_on(keys::run(&cmd)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
        _ => runtime.block_on(cli::run(cli)),
    }
}

/// `keystead admin reset-token`: the deployment's store, opened as `serve`
/// opens it (no key provider needed: only the token's hash changes).
async fn reset_admin_token(cfg: config::ServerConfig) -> anyhow::Result<PathBuf> {
    if !cfg.data_dir.is_dir() {
        anyhow::bail!(
            "data directory {} does not exist: run this where `keystead serve` runs, or pass its --config",
            cfg.data_dir.display()
        );
    }
    let store = cfg.open_store().await?;
    let done = admin_token::reset(&store, &cfg.data_dir).await;
    store.close().await;
    done
}

/// Logs to stderr, as text or (`log_format = "json"`) one JSON object a
/// line.
fn init_tracing(format: &str) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("KEYSTEAD_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,hyper=warn"));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        "text" | "" => fmt
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        "json" => fmt.json().with_ansi(false).init(),
        other => {
            return Err(format!(
                "log_format {other:?} is unknown; use \"text\" or \"json\""
            ))
        }
    }
    Ok(())
}
