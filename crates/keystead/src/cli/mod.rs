//! The command-line client. Profiles (server URL, partner id) live in
//! `.keysteadrc` (current directory, else home); the secret key comes from
//! `KEYSTEAD_SECRET_KEY` or a separate 0600 credentials file and is never a
//! command-line argument. A stored key is bound to the server it was saved
//! for, and a `.keysteadrc` in the current directory may not send any secret
//! to a server of its choosing (see [`Context::secret_key`] and
//! [`Context::check_server_trusted`]). Server text is printed without control
//! characters ([`clean`]). Exit codes: 0 ok, 1 refused, 2 usage.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use keystead_crypto::local::write_file_0600;
use keystead_crypto::{ExposeSecret, SecretString};
use keystead_proto::{self as proto, CheckStatus};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    AdminApiKeys, AdminCmd, AdminDevelopers, AdminProjects, Cli, Command, OidcCmd, ReturnUrlsCmd,
    WalletsCmd,
};

mod oidc;
mod profiles;
mod render;

use profiles::*;
use render::*;

const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";
const DEFAULT_PROFILE: &str = "default";

/// A failure with its exit code; the message is already user-facing.
struct Failure {
    code: u8,
    message: String,
}

fn refused(message: impl Into<String>) -> Failure {
    Failure {
        code: 1,
        message: message.into(),
    }
}

/// Exit 1 after the answer was printed: with `--json` stdout holds the
/// answer alone, so the message is only for people.
fn failed(ctx: &Context, message: impl Into<String>) -> Failure {
    Failure {
        code: 1,
        message: if ctx.json {
            String::new()
        } else {
            message.into()
        },
    }
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

type CliResult<T = ()> = Result<T, Failure>;

pub async fn run(cli: Cli) -> ExitCode {
    match dispatch(&cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("error: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

struct Context {
    /// Normalised (see [`normalize_server`]).
    server: String,
    source: ServerSource,
    /// The profile's server in `~/.keysteadrc`, normalised.
    home_server: Option<String>,
    /// The server the profile's stored secret key belongs to, normalised.
    credential_server: Option<String>,
    profile: String,
    json: bool,
    /// The typed client of this command's server (no credential: each
    /// call names its own).
    client: keystead_client::Client,
}

impl Context {
    fn new(cli: &Cli) -> CliResult<Self> {
        let local = local_rc_path();
        let home_rc = match home_rc_path() {
            Some(p) => read_rc(&p)?,
            None => Rc::default(),
        };
        let local_rc = match &local {
            Some(p) => Some(read_rc(p)?),
            None => None,
        };
        let rc = local_rc.as_ref().unwrap_or(&home_rc);
        let profile = cli
            .profile
            .clone()
            .or(rc.default_profile.clone())
            .unwrap_or_else(|| DEFAULT_PROFILE.into());
        let rc_server = |rc: &Rc| rc.profiles.get(&profile).and_then(|p| p.server.clone());
        let home_server = rc_server(&home_rc).and_then(|s| normalize_server(&s).ok());
        // An unreadable credentials file is reported when a key is needed.
        let credential_server = load_credentials()
            .ok()
            .and_then(|c| c.profiles.get(&profile).and_then(|k| k.server.clone()))
            .and_then(|s| normalize_server(&s).ok());

        let (raw, source) = if let Some(s) = &cli.server {
            (s.clone(), ServerSource::Flag)
        } else if let Some(s) = local_rc.as_ref().and_then(rc_server) {
            let path = local.clone().unwrap_or_default();
            (s, ServerSource::LocalRc(path))
        } else if let Some(s) = rc_server(&home_rc) {
            (s, ServerSource::HomeRc)
        } else if let Some(s) = &credential_server {
            (s.clone(), ServerSource::Credential)
        } else {
            (DEFAULT_SERVER.to_string(), ServerSource::Default)
        };
        let server = normalize_server(&raw).map_err(usage)?;

        // Never follow redirects: a 307/308 would resend a secret-bearing
        // body (client secret, password) to wherever it points.
        let http = reqwest::Client::builder()
            .user_agent(concat!("keystead-cli/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| refused(e.to_string()))?;
        if let Ok(u) = url::Url::parse(&server) {
            let loopback = match u.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if u.scheme() == "http" && !loopback {
                eprintln!(
                    "warning: {server} is plain http; secret keys and tokens cross the network unencrypted. Use https."
                );
            }
        }
        Ok(Self {
            server: server.clone(),
            source,
            home_server,
            credential_server,
            profile,
            json: cli.json,
            client: keystead_client::Client::new(server.clone(), http),
        })
    }

    /// Checks that `what` (a secret not bound to a server: the admin token,
    /// a key from the environment or typed in, a client secret) may go to
    /// this command's server: any server but one named only by a
    /// `.keysteadrc` in the current directory, unless that one is also the
    /// profile's server in `~/.keysteadrc` or the server of its stored key.
    fn check_server_trusted(&self, what: &str) -> CliResult {
        let ServerSource::LocalRc(path) = &self.source else {
            return Ok(());
        };
        let vouched = [&self.home_server, &self.credential_server]
            .into_iter()
            .any(|s| s.as_deref() == Some(self.server.as_str()));
        if vouched {
            return Ok(());
        }
        Err(usage(format!(
            "not sending {what} to {server}: that server comes from {rc} in the current directory \
             (profile {profile:?}), which is not trusted to choose where secrets go. \
             If you mean that server, say so with --server {server} (or KEYSTEAD_SERVER).",
            server = self.server,
            rc = path.display(),
            profile = self.profile,
        )))
    }

    fn secret_key(&self) -> CliResult<SecretString> {
        if let Ok(k) = std::env::var("KEYSTEAD_SECRET_KEY") {
            if !k.is_empty() {
                self.check_server_trusted("the secret key from KEYSTEAD_SECRET_KEY")?;
                return Ok(SecretString::from(k));
            }
        }
        let creds = load_credentials()?;
        let Some(k) = creds.profiles.get(&self.profile) else {
            return Err(usage(format!(
                "no secret key for profile {:?}: run `keystead login` or set KEYSTEAD_SECRET_KEY",
                self.profile
            )));
        };
        let Some(bound) = k.server.as_deref() else {
            return Err(usage(format!(
                "the secret key stored for profile {:?} in {} does not say which server it belongs to \
                 (it was saved by an older keystead), so it is not sent anywhere. \
                 Run `keystead login --server URL` again to store it with its server.",
                self.profile,
                credentials_path().display()
            )));
        };
        let bound = normalize_server(bound).map_err(|e| {
            usage(format!(
                "{}: profile {:?}: {e}; run `keystead login` again",
                credentials_path().display(),
                self.profile
            ))
        })?;
        if bound != self.server {
            let from = match &self.source {
                ServerSource::Flag => "--server/KEYSTEAD_SERVER".to_string(),
                ServerSource::LocalRc(p) => {
                    format!("{} in the current directory", p.display())
                }
                ServerSource::HomeRc => "~/.keysteadrc".to_string(),
                ServerSource::Credential | ServerSource::Default => "the default".to_string(),
            };
            return Err(usage(format!(
                "not sending the stored secret key of profile {profile:?} to {server} (from {from}): \
                 it belongs to {bound}, and a stored key goes only to the server it was saved for. \
                 Use --server {bound}, or run `keystead login --server {server}` to store a key for that server.",
                profile = self.profile,
                server = self.server,
            )));
        }
        Ok(SecretString::from(k.secret_key.clone()))
    }

    fn admin_token(&self) -> CliResult<SecretString> {
        match std::env::var("KEYSTEAD_ADMIN_TOKEN") {
            Ok(t) if !t.trim().is_empty() => {
                self.check_server_trusted("the admin token (KEYSTEAD_ADMIN_TOKEN)")?;
                Ok(SecretString::from(t.trim().to_string()))
            }
            _ => Err(usage(
                "set KEYSTEAD_ADMIN_TOKEN to the admin token (the server wrote it to keystead-data/admin-token)",
            )),
        }
    }

    /// Sends one request; `Ok` carries the status and the raw JSON body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        auth: &SecretString,
        body: Option<&Value>,
    ) -> CliResult<(u16, Value)> {
        self.call_with(method, path, auth, body, None).await
    }

    /// The API's answer goes through the typed client's raw path: `--json`
    /// prints the body exactly as the server sent it.
    async fn call_with(
        &self,
        method: Method,
        path: &str,
        auth: &SecretString,
        body: Option<&Value>,
        header: Option<(&str, &str)>,
    ) -> CliResult<(u16, Value)> {
        let keystead_client::Raw {
            status,
            body: value,
        } = self
            .client
            .with_bearer(auth.clone())
            .raw(method, path, body, header)
            .await
            .map_err(|e| refused(e.to_string()))?;
        if status >= 400 {
            if self.json && !value.is_null() {
                out(&value.to_string());
                return Err(Failure {
                    code: 1,
                    message: String::new(),
                });
            }
            return Err(refused(describe_error(status, &clean(&value))));
        }
        Ok((status, value))
    }

    async fn partner(&self, method: Method, path: &str, body: Option<&Value>) -> CliResult<Value> {
        let key = self.secret_key()?;
        Ok(self.call(method, path, &key, body).await?.1)
    }

    async fn admin(&self, method: Method, path: &str, body: Option<&Value>) -> CliResult<Value> {
        let token = self.admin_token()?;
        Ok(self.call(method, path, &token, body).await?.1)
    }

    /// `--json`: the body as it is; otherwise the human rendering of the
    /// body without control characters (see [`clean`]).
    fn print(&self, value: &Value, human: impl FnOnce(&Value) -> String) {
        if self.json {
            out(&if value.is_null() {
                "{}".to_string()
            } else {
                value.to_string()
            });
        } else {
            let text = human(&clean(value));
            if !text.is_empty() {
                out(&text);
            }
        }
    }
}

/// `message (code)` and the hint of an error body (SPEC §6); the fields are
/// read as strings, so a code this CLI does not know yet is still shown.
fn describe_error(status: u16, body: &Value) -> String {
    let e = &body["error"];
    match (e["message"].as_str(), e["code"].as_str()) {
        (Some(message), Some(code)) => {
            let mut s = format!("{message} ({code})");
            if let Some(h) = e["hint"].as_str() {
                s.push_str(&format!("\n  hint: {h}"));
            }
            s
        }
        _ => format!("the server answered HTTP {status}"),
    }
}

/// A secret from a no-echo prompt, or from stdin when it is not a terminal
/// (one trailing newline removed).
fn read_secret(prompt: &str) -> CliResult<SecretString> {
    let stdin = std::io::stdin();
    let raw = if stdin.is_terminal() {
        rpassword::prompt_password(prompt)
            .map_err(|e| usage(format!("cannot read from the terminal: {e}")))?
    } else {
        let mut s = String::new();
        stdin
            .lock()
            .read_to_string(&mut s)
            .map_err(|e| usage(format!("cannot read standard input: {e}")))?;
        if s.ends_with('\n') {
            s.pop();
            if s.ends_with('\r') {
                s.pop();
            }
        }
        s
    };
    if raw.is_empty() {
        return Err(usage("nothing was entered"));
    }
    Ok(SecretString::from(raw))
}

/// A `--x` / `--no-x` pair: `Some(true)`, `Some(false)`, or unchanged.
fn flag(on: bool, off: bool) -> Option<bool> {
    match (on, off) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

/// A request body from its `proto` type.
fn wire<T: Serialize>(body: &T) -> CliResult<Value> {
    serde_json::to_value(body).map_err(|e| refused(e.to_string()))
}

// ---- commands ---------------------------------------------------------------

async fn dispatch(cli: &Cli) -> CliResult {
    let ctx = Context::new(cli)?;
    match &cli.command {
        Command::Serve { .. } => Err(usage("internal: serve is not a client command")),
        Command::Login => login(&ctx).await,
        Command::Oidc(cmd) => oidc::oidc(&ctx, cmd).await,
        Command::ReturnUrls(ReturnUrlsCmd::Set { urls }) => {
            let body = wire(&proto::PatchPartner {
                allowed_return_urls: urls.clone(),
            })?;
            let v = ctx
                .partner(Method::PATCH, "/v1/partner", Some(&body))
                .await?;
            ctx.print(&v, render_partner);
            Ok(())
        }
        Command::Admin(cmd) => admin(&ctx, cmd).await,
        Command::Wallets(cmd) => wallets(&ctx, cmd).await,
        Command::Kms(_) => Err(usage("internal: kms is not a client command")),
    }
}

async fn login(ctx: &Context) -> CliResult {
    ctx.check_server_trusted("the secret key you enter")?;
    let key = read_secret("Secret key (sk_…): ")?;
    let key = SecretString::from(key.expose_secret().trim().to_string());
    if !key.expose_secret().starts_with("sk_") {
        return Err(usage("a secret key starts with sk_"));
    }
    let (_, v) = ctx.call(Method::GET, "/v1/partner", &key, None).await?;
    let partner: proto::Partner = serde_json::from_value(clean(&v))
        .map_err(|_| refused("unexpected answer from the server"))?;

    let mut rc = load_rc()?;
    rc.profiles.insert(
        ctx.profile.clone(),
        Profile {
            server: Some(ctx.server.clone()),
            partner_id: Some(partner.partner_id.clone()),
        },
    );
    let rc_file = rc_path();
    let text = toml::to_string(&rc).map_err(|e| refused(e.to_string()))?;
    std::fs::write(&rc_file, text).map_err(|e| refused(format!("{}: {e}", rc_file.display())))?;

    let mut creds = load_credentials()?;
    creds.profiles.insert(
        ctx.profile.clone(),
        StoredKey {
            secret_key: key.expose_secret().to_string(),
            server: Some(ctx.server.clone()),
        },
    );
    let cred_file = credentials_path();
    if let Some(dir) = cred_file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| refused(format!("{}: {e}", dir.display())))?;
    }
    let text =
        zeroize::Zeroizing::new(toml::to_string(&creds).map_err(|e| refused(e.to_string()))?);
    write_file_0600(&cred_file, text.as_bytes())
        .map_err(|e| refused(format!("{}: {e}", cred_file.display())))?;

    ctx.print(&v, |_| {
        format!(
            "Logged in as partner {} (project {}) on {}.\nProfile {:?} saved to {}; secret key saved to {} (mode 0600), for this server only.",
            partner.partner_id,
            partner.project_id,
            ctx.server,
            ctx.profile,
            rc_file.display(),
            cred_file.display()
        )
    });
    Ok(())
}

async fn admin(ctx: &Context, cmd: &AdminCmd) -> CliResult {
    match cmd {
        AdminCmd::ResetToken { .. } => {
            return Err(usage("internal: reset-token is not a client command"))
        }
        AdminCmd::Projects(AdminProjects::Create { name }) => {
            let v = ctx
                .admin(
                    Method::POST,
                    "/v1/admin/projects",
                    Some(&wire(&proto::CreateProject { name: name.clone() })?),
                )
                .await?;
            ctx.print(&v, |v| table(&[("id", s(v, "id")), ("name", s(v, "name"))]));
        }
        AdminCmd::ApiKeys(AdminApiKeys::Create { project, name }) => {
            let path = format!("/v1/admin/projects/{}/api-keys", path_segment(project));
            let v = ctx
                .admin(
                    Method::POST,
                    &path,
                    Some(&wire(&proto::CreateApiKey { name: name.clone() })?),
                )
                .await?;
            ctx.print(&v, |v| {
                format!(
                    "{}\n\nThe secret key is shown only this once. Store it now, e.g. with `keystead login`.",
                    table(&[
                        ("partner_id", s(v, "partner_id")),
                        ("publishable_key", s(v, "publishable_key")),
                        ("secret_key", s(v, "secret_key")),
                    ])
                )
            });
        }
        AdminCmd::Developers(AdminDevelopers::Create { email, projects }) => {
            let token = ctx.admin_token()?;
            let password = read_secret("Password for the new developer: ")?;
            let body = serde_json::json!({
                "email": email, "password": password.expose_secret(), "project_ids": projects,
            });
            let (_, v) = ctx
                .call(Method::POST, "/v1/admin/developers", &token, Some(&body))
                .await?;
            ctx.print(&v, |v| {
                let projects = strings(v, "project_ids");
                table(&[
                    ("id", s(v, "id")),
                    ("email", s(v, "email")),
                    ("projects", projects.join(", ")),
                ])
            });
        }
    }
    Ok(())
}

async fn wallets(ctx: &Context, cmd: &WalletsCmd) -> CliResult {
    let key = ctx.secret_key()?;
    let (_, v) = match cmd {
        WalletsCmd::Create {
            kind,
            identifier,
            identifier_type,
            cosmos_prefix,
            idempotency_key,
        } => {
            let body = wire(&proto::CreateWallet {
                kind: Some(kind.clone()),
                user_identifier: Some(identifier.clone()),
                user_identifier_type: Some(identifier_type.clone()),
                cosmos_prefix: cosmos_prefix.clone(),
            })?;
            let header = idempotency_key.as_deref().map(|k| ("idempotency-key", k));
            ctx.call_with(Method::POST, "/v1/wallets", &key, Some(&body), header)
                .await?
        }
        WalletsCmd::Show { id } => {
            ctx.call(
                Method::GET,
                &format!("/v1/wallets/{}", path_segment(id)),
                &key,
                None,
            )
            .await?
        }
        WalletsCmd::List {
            identifier,
            identifier_type,
        } => {
            let mut url =
                url::Url::parse("http://x/v1/wallets").map_err(|e| usage(e.to_string()))?;
            url.query_pairs_mut()
                .append_pair("userIdentifier", identifier)
                .append_pair("userIdentifierType", identifier_type);
            let path = format!("/v1/wallets?{}", url.query().unwrap_or(""));
            ctx.call(Method::GET, &path, &key, None).await?
        }
        WalletsCmd::SignMessage { id, message } => {
            let path = format!("/v1/wallets/{}/sign-message", path_segment(id));
            ctx.call(
                Method::POST,
                &path,
                &key,
                Some(&wire(&proto::SignMessage {
                    message: Some(Value::from(message.as_str())),
                })?),
            )
            .await?
        }
    };
    ctx.print(&v, |v| {
        if let Some(w) = v.get("wallet") {
            render_wallet(w)
        } else if let Some(list) = v.get("wallets").and_then(Value::as_array) {
            if list.is_empty() {
                "no wallets".into()
            } else {
                list.iter()
                    .map(render_wallet)
                    .collect::<Vec<_>>()
                    .join("\n\n")
            }
        } else {
            table(&[("signature", s(v, "signature"))])
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_compare_after_normalising() {
        let n = |s: &str| normalize_server(s).unwrap();
        assert_eq!(n("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(n("HTTP://127.0.0.1:8080/"), "http://127.0.0.1:8080");
        assert_eq!(
            n("https://Auth.Example.COM:443/"),
            "https://auth.example.com"
        );
        assert_eq!(n("http://localhost:80"), "http://localhost");
        assert_eq!(
            n(" https://x.example/keystead/ "),
            "https://x.example/keystead"
        );
        assert_eq!(n("http://[::1]:8080/"), "http://[::1]:8080");
        assert_ne!(n("https://x.example"), n("http://x.example"));
        assert_ne!(n("https://x.example"), n("https://x.example:8443"));
        for bad in [
            "x.example",
            "ftp://x.example",
            "https://user:pw@x.example",
            "https://x.example/?q=1",
            "https://x.example/#f",
        ] {
            assert!(normalize_server(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_text_loses_control_characters() {
        let v = serde_json::json!({
            "a\u{1b}": ["x\u{1b}[31my\u{7}", 1, {"b": "l1\nl2\r\u{9b}2J\u{7f}"}],
        });
        assert_eq!(
            clean(&v),
            serde_json::json!({ "a": ["x[31my", 1, {"b": "l1l22J"}] })
        );
    }
}
