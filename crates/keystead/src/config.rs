//! Server configuration (SPEC §10): defaults, then `keystead.toml` (or
//! `--config FILE`), then `KEYSTEAD_*` variables, the environment winning.
//! Nested keys use a double underscore; lists may be comma-separated.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Where browsers reach this deployment; the redirect URI is built on it.
    #[serde(default)]
    pub public_url: Option<String>,
    pub data_dir: PathBuf,
    #[serde(default)]
    pub database_url: Option<String>,
    #[serde(default)]
    pub outbound: OutboundSection,
    #[serde(default)]
    pub kms: KmsSection,
    #[serde(default)]
    pub wallets: WalletsSection,
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub database: DatabaseSection,
    /// `text` (the default) or `json`: one JSON object per log line.
    #[serde(default = "default_log_format")]
    pub log_format: String,
}

fn default_log_format() -> String {
    "text".into()
}

/// The PostgreSQL pool (ignored for SQLite).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseSection {
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// How long a request waits for a free connection before a 503.
    #[serde(default = "default_acquire_timeout")]
    pub acquire_timeout_ms: u64,
    /// PostgreSQL's `statement_timeout` for keystead's connections.
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout_ms: u64,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        let o = keystead_store::PgOptions::default();
        Self {
            pool_size: o.pool_size,
            acquire_timeout_ms: o.acquire_timeout.as_millis() as u64,
            statement_timeout_ms: o.statement_timeout.as_millis() as u64,
        }
    }
}

impl DatabaseSection {
    pub fn pg_options(&self) -> keystead_store::PgOptions {
        keystead_store::PgOptions {
            pool_size: self.pool_size,
            acquire_timeout: std::time::Duration::from_millis(self.acquire_timeout_ms),
            statement_timeout: std::time::Duration::from_millis(self.statement_timeout_ms),
        }
    }
}

fn default_pool_size() -> u32 {
    DatabaseSection::default().pool_size
}
fn default_acquire_timeout() -> u64 {
    DatabaseSection::default().acquire_timeout_ms
}
fn default_statement_timeout() -> u64 {
    DatabaseSection::default().statement_timeout_ms
}

/// Limits on inbound connections and requests (issue 7: slow clients).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpSection {
    /// Time a client has to send a complete request head, from the moment
    /// the connection is accepted or the previous response was sent (this
    /// also closes idle keep-alive connections).
    #[serde(default = "default_header_timeout")]
    pub header_timeout_ms: u64,
    /// Time a request may take, body included, before it gets a 408.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: u64,
    /// Connections open at once; more wait in the kernel's accept queue.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            header_timeout_ms: default_header_timeout(),
            request_timeout_ms: default_request_timeout(),
            max_connections: default_max_connections(),
        }
    }
}

fn default_header_timeout() -> u64 {
    10_000
}
fn default_request_timeout() -> u64 {
    30_000
}
fn default_max_connections() -> usize {
    4096
}

/// Per-partner rate limit of the wallet routes (per instance).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WalletsSection {
    #[serde(default = "default_rate")]
    pub rate_limit_per_second: f64,
    #[serde(default = "default_burst")]
    pub rate_limit_burst: f64,
}

impl Default for WalletsSection {
    fn default() -> Self {
        Self {
            rate_limit_per_second: default_rate(),
            rate_limit_burst: default_burst(),
        }
    }
}

fn default_rate() -> f64 {
    10.0
}
fn default_burst() -> f64 {
    20.0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboundSection {
    #[serde(default, deserialize_with = "list_or_csv")]
    pub allow_networks: Vec<String>,
    #[serde(default)]
    pub extra_ca_file: String,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Outbound requests in flight at once, over all partners.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
}

impl Default for OutboundSection {
    fn default() -> Self {
        Self {
            allow_networks: Vec::new(),
            extra_ca_file: String::new(),
            connect_timeout_ms: default_connect_timeout(),
            timeout_ms: default_timeout(),
            max_in_flight: default_max_in_flight(),
        }
    }
}

fn default_connect_timeout() -> u64 {
    5000
}
fn default_timeout() -> u64 {
    10000
}
fn default_max_in_flight() -> usize {
    keystead_net::DEFAULT_MAX_IN_FLIGHT
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KmsSection {
    #[serde(default = "default_provider")]
    pub provider: String,
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

impl Default for KmsSection {
    fn default() -> Self {
        Self {
            provider: default_provider(),
            key_id: None,
            region: None,
            endpoint_url: None,
        }
    }
}

fn default_provider() -> String {
    "local".into()
}

/// A TOML array, or one string with comma-separated items (environment).
fn list_or_csv<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        One(String),
    }
    Ok(match Either::deserialize(d)? {
        Either::List(v) => v,
        Either::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            data_dir: PathBuf::from("./keystead-data"),
            database_url: None,
            outbound: OutboundSection::default(),
            kms: KmsSection::default(),
            wallets: WalletsSection::default(),
            database: DatabaseSection::default(),
            log_format: default_log_format(),
            http: HttpSection::default(),
        }
    }
}

/// Variables that configure the CLI, not the server.
const CLIENT_VARS: [&str; 5] = [
    "secret_key",
    "admin_token",
    "server",
    "profile",
    "credentials_file",
];

impl ServerConfig {
    /// The database, with the `[database]` pool settings.
    pub async fn open_store(&self) -> anyhow::Result<keystead_store::Store> {
        use anyhow::Context;
        keystead_store::Store::connect_with(&self.database_url(), &self.database.pg_options())
            .await
            .context("opening the database")
    }

    /// The local key file (`kms.provider = "local"`, or left from one).
    pub fn master_key_path(&self) -> PathBuf {
        self.data_dir.join("master.key")
    }

    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(ServerConfig::default()));
        match file {
            Some(p) => {
                if !p.exists() {
                    bail!("config file {} does not exist", p.display());
                }
                fig = fig.merge(Toml::file(p));
            }
            None => {
                if Path::new("keystead.toml").exists() {
                    fig = fig.merge(Toml::file("keystead.toml"));
                }
            }
        }
        fig = fig.merge(Env::prefixed("KEYSTEAD_").split("__").ignore(&CLIENT_VARS));
        let cfg: ServerConfig = fig.extract().context("invalid configuration")?;
        Ok(cfg)
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) if !u.is_empty() => u.clone(),
            _ => format!("sqlite://{}", self.data_dir.join("keystead.db").display()),
        }
    }

    pub fn allow_networks(&self) -> anyhow::Result<Vec<IpNet>> {
        self.outbound
            .allow_networks
            .iter()
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                    .with_context(|| format!("outbound.allow_networks: {s:?} is not a CIDR"))
            })
            .collect()
    }
}
