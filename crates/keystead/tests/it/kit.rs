//! The test kit: a test CA, the test IdP (tests/idp/server.mjs), keystead
//! servers as child processes, and small HTTP/CLI helpers.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_keystead");

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Where a run's files live; kept when KEEP_TEST_FILES is set.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::Builder::new()
            .prefix("keystead-it-")
            .tempdir()
            .unwrap();
        d.keep()
    })
}

pub fn new_dir(prefix: &str) -> PathBuf {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(scratch())
        .unwrap()
        .keep()
}

// ---- test CA ----------------------------------------------------------------

pub struct Tls {
    pub ca_pem: PathBuf,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
}

/// A CA generated for this run and a leaf for 127.0.0.1 / ::1 / localhost.
pub fn tls() -> &'static Tls {
    static TLS: OnceLock<Tls> = OnceLock::new();
    TLS.get_or_init(|| {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType,
        };
        let dir = new_dir("tls-");
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "keystead test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        leaf.subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        leaf.subject_alt_names
            .push(SanType::IpAddress("::1".parse().unwrap()));
        leaf.distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
        let t = Tls {
            ca_pem: dir.join("ca.pem"),
            cert_pem: dir.join("server.pem"),
            key_pem: dir.join("server-key.pem"),
        };
        std::fs::write(&t.ca_pem, ca_cert.pem()).unwrap();
        std::fs::write(&t.cert_pem, format!("{}{}", leaf_cert.pem(), ca_cert.pem())).unwrap();
        std::fs::write(&t.key_pem, leaf_key.serialize_pem()).unwrap();
        t
    })
}

// ---- child processes ----------------------------------------------------------

/// A child that dies with us: its stdin is a pipe it watches.
pub struct Proc {
    child: Child,
    _stdin: ChildStdin,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `cmd` (stdout and stderr to `log`); it is killed with the Proc.
    pub fn spawn(mut cmd: Command, log: &Path) -> Proc {
        let out = std::fs::File::create(log).unwrap();
        let err = out.try_clone().unwrap();
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdin = child.stdin.take().unwrap();
        Proc {
            child,
            _stdin: stdin,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn node_modules_ready() -> bool {
    repo_root()
        .join("tests/idp/node_modules/oidc-provider")
        .exists()
}

/// Spawns `cmd`, waits for a stdout line matching `ready`, returns it.
fn spawn_until(
    cmd: Command,
    what: &str,
    stderr_to: &Path,
    ready: impl Fn(&str) -> bool + Send + 'static,
) -> (Proc, String) {
    try_spawn_until(cmd, what, stderr_to, ready).unwrap_or_else(|e| panic!("{e}"))
}

/// [`spawn_until`] that reports a process that never became ready.
fn try_spawn_until(
    mut cmd: Command,
    what: &str,
    stderr_to: &Path,
    ready: impl Fn(&str) -> bool + Send + 'static,
) -> Result<(Proc, String), String> {
    let log = std::fs::File::create(stderr_to).unwrap();
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(log);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent {
                let _ = tx.send(line.clone());
            }
            if ready(&line) {
                sent = true;
                let _ = tx.send(format!("READY {line}"));
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with("READY ") => {
                return Ok((
                    Proc {
                        child,
                        _stdin: stdin,
                    },
                    line["READY ".len()..].to_string(),
                ))
            }
            Ok(_) => continue,
            Err(_) => {
                let alive = matches!(child.try_wait(), Ok(None));
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(stderr_to).unwrap_or_default();
                return Err(format!(
                    "{what} did not become ready (still running: {alive}); its stderr:\n{log}"
                ));
            }
        }
    }
}

// ---- the test IdP -------------------------------------------------------------

pub struct Idp {
    pub port: u16,
    _proc: Proc,
}

impl Idp {
    /// `https://127.0.0.1:PORT/<name>`
    pub fn issuer(&self, name: &str) -> String {
        format!("https://127.0.0.1:{}/{name}", self.port)
    }
}

pub const CLIENT_ID: &str = "keystead-test";
/// Every test server's `public_url`: the redirect URI registered at the test
/// IdPs is built on it, and the test browser maps it to the real address
/// (as a reverse proxy would), so IdP registration needs no port.
pub const PUBLIC_URL: &str = "http://127.0.0.1:1";
pub const CLIENT_SECRET: &str = "idp-client-secret-for-tests";

/// One oidc-provider process for the whole run, with a provider per need.
pub fn idp() -> &'static Idp {
    static IDP: OnceLock<Idp> = OnceLock::new();
    IDP.get_or_init(|| {
        assert!(
            node_modules_ready(),
            "tests/idp/node_modules is missing: run ./scripts/test.sh (it runs `npm ci` in tests/idp)"
        );
        let t = tls();
        let dir = new_dir("idp-");
        let client_alg = |method: &str, alg: &str| {
            let id = if alg == "RS256" { format!("{CLIENT_ID}-{method}") } else { format!("{CLIENT_ID}-{alg}") };
            let mut c = json!({
                "client_id": id,
                "token_endpoint_auth_method": method,
                "redirect_uris": [format!("{PUBLIC_URL}/auth/custom_oidc/callback")],
                "id_token_signed_response_alg": alg,
            });
            if method != "none" {
                c["client_secret"] = json!(CLIENT_SECRET);
            }
            c
        };
        let client = |method: &str| client_alg(method, "RS256");
        let cfg = json!({
            "cert": t.cert_pem, "key": t.key_pem,
            "providers": [
                { "name": "main",
                  "authMethods": ["client_secret_basic", "client_secret_post", "none"],
                  "clients": [client("client_secret_post"), client("client_secret_basic"), client("none"),
                              client_alg("client_secret_basic", "ES256"), client_alg("client_secret_basic", "EdDSA"),
                              client_alg("client_secret_basic", "PS256")] },
                { "name": "basic-only",
                  "authMethods": ["client_secret_basic"],
                  "clients": [client("client_secret_basic")] },
            ]
        });
        start_idp(&dir, cfg)
    })
}

/// An oidc-provider process (tests/idp/server.mjs) with `cfg`'s providers
/// and clients, over HTTPS with the run's test certificate.
pub fn start_idp(dir: &Path, cfg: Value) -> Idp {
    let cfg_path = dir.join("idp.json");
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let mut cmd = Command::new("node");
    cmd.arg(repo_root().join("tests/idp/server.mjs"))
        .arg(&cfg_path);
    let (proc, line) = spawn_until(cmd, "the test IdP", &dir.join("stderr.log"), |l| {
        l.starts_with("{\"port\"")
    });
    let port = serde_json::from_str::<Value>(&line).unwrap()["port"]
        .as_u64()
        .unwrap() as u16;
    Idp { port, _proc: proc }
}

/// A node script that prints `{"port":N}` when it listens and stops when
/// its stdin closes (tests/browser/static.mjs).
pub fn start_node_server(script: &str, args: &[&str], what: &str) -> (Proc, u16) {
    let dir = new_dir("node-");
    let mut cmd = Command::new("node");
    cmd.arg(repo_root().join(script)).args(args);
    let (proc, line) = spawn_until(cmd, what, &dir.join("stderr.log"), |l| {
        l.starts_with("{\"port\"")
    });
    let port = serde_json::from_str::<Value>(&line).unwrap()["port"]
        .as_u64()
        .unwrap() as u16;
    (proc, port)
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---- keystead servers ---------------------------------------------------------

#[derive(Clone)]
pub struct ServerOpts {
    pub allow_loopback: bool,
    pub database_url: Option<String>,
    pub log_level: &'static str,
    pub env: Vec<(&'static str, &'static str)>,
    /// Contents of `keystead.toml` in the server's working directory.
    pub toml: Option<&'static str>,
    /// Set KEYSTEAD_PUBLIC_URL (the default); off to test other sources.
    pub public_url_env: bool,
    /// Start with this key file (a second instance of one deployment).
    pub key_file_from: Option<PathBuf>,
    /// Reuse this server directory (a restart).
    pub dir: Option<PathBuf>,
}

impl Default for ServerOpts {
    fn default() -> Self {
        Self {
            allow_loopback: true,
            database_url: None,
            log_level: "info",
            env: Vec::new(),
            toml: None,
            public_url_env: true,
            key_file_from: None,
            dir: None,
        }
    }
}

pub struct Server {
    opts: ServerOpts,
    pub url: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub admin_token: String,
    pub stdout_line: String,
    _proc: Proc,
}

impl Server {
    pub fn start(opts: ServerOpts) -> Server {
        let dir = opts.dir.clone().unwrap_or_else(|| new_dir("server-"));
        let data_dir = dir.join("data");
        let runs = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        let log = dir.join(format!("server-{runs}.log"));
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("--stop-on-stdin-eof")
            .current_dir(&dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KEYSTEAD_LISTEN", "127.0.0.1:0")
            .env("KEYSTEAD_DATA_DIR", &data_dir)
            .env("KEYSTEAD_LOG", opts.log_level)
            .env("KEYSTEAD_OUTBOUND__EXTRA_CA_FILE", &tls().ca_pem);
        if opts.allow_loopback {
            cmd.env("KEYSTEAD_OUTBOUND__ALLOW_NETWORKS", "127.0.0.0/8,::1/128");
        }
        if let Some(db) = &opts.database_url {
            cmd.env("KEYSTEAD_DATABASE_URL", db);
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        if opts.public_url_env {
            cmd.env("KEYSTEAD_PUBLIC_URL", PUBLIC_URL);
        }
        if let Some(key) = &opts.key_file_from {
            std::fs::create_dir_all(&data_dir).unwrap();
            std::fs::copy(key, data_dir.join("master.key")).unwrap();
        }
        if let Some(toml) = opts.toml {
            std::fs::write(dir.join("keystead.toml"), toml).unwrap();
        }
        let (proc, line) = spawn_until(cmd, "keystead serve", &log, |l| {
            l.starts_with("keystead listening on ")
        });
        let url = line
            .trim_start_matches("keystead listening on ")
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        // Only the instance that created the deployment has the file.
        let admin_token = std::fs::read_to_string(data_dir.join("admin-token"))
            .unwrap_or_default()
            .trim()
            .to_string();
        Server {
            opts: ServerOpts {
                dir: Some(dir),
                ..opts
            },
            url,
            data_dir,
            log,
            admin_token,
            stdout_line: line,
            _proc: proc,
        }
    }

    /// The shared server (loopback allowed, SQLite) for tests that do not
    /// need their own.
    pub fn shared() -> &'static Server {
        static S: OnceLock<Server> = OnceLock::new();
        S.get_or_init(|| Server::start(ServerOpts::default()))
    }

    /// Stops this server and starts it again on the same data.
    pub fn restart(self) -> Server {
        let opts = self.opts.clone();
        drop(self);
        Server::start(opts)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self._proc.pid()
    }

    /// Resident memory of the server process, in KiB (Linux).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self._proc.pid()))
            .expect("reading /proc/PID/status (these tests need Linux)");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// Bytes of the SQLite database with its write-ahead log.
    pub fn db_bytes(&self) -> u64 {
        ["keystead.db", "keystead.db-wal"]
            .iter()
            .map(|f| std::fs::metadata(self.data_dir.join(f)).map_or(0, |m| m.len()))
            .sum()
    }

    /// The database this server uses (its SQLite file unless PostgreSQL).
    pub fn database_url(&self) -> String {
        self.opts
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("keystead.db").display()))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        http(
            method,
            &format!("{}{path}", self.url),
            Some(&self.admin_token),
            body,
        )
    }

    /// The typed client of this server with `bearer` (admin token, secret
    /// key or session token).
    pub fn api(&self, bearer: &str) -> keystead_client::Client {
        keystead_client::Client::new(self.url.clone(), reqwest::Client::new())
            .with_bearer(bearer.to_string().into())
    }

    /// A new project and API key, made through the typed client.
    pub fn new_partner(&self) -> Partner {
        let admin = self.api(&self.admin_token);
        let project = typed(admin.create_project(&keystead_proto::CreateProject {
            name: "Acme".into(),
        }));
        let key = typed(admin.create_api_key(
            &project.id,
            &keystead_proto::CreateApiKey { name: "web".into() },
        ));
        Partner {
            server: self.url.clone(),
            project_id: project.id,
            partner_id: key.partner_id.clone(),
            secret_key: key.secret_key.clone(),
            publishable_key: key.publishable_key.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Partner {
    pub server: String,
    pub project_id: String,
    pub partner_id: String,
    pub secret_key: String,
    pub publishable_key: String,
}

impl Partner {
    /// The same partner, reached through `server` (another instance of its
    /// deployment, or its server after a restart).
    pub fn on(&self, server: &Server) -> Partner {
        Partner {
            server: server.url.clone(),
            ..self.clone()
        }
    }

    /// The typed client with this partner's secret key.
    pub fn api(&self) -> keystead_client::Client {
        keystead_client::Client::new(self.server.clone(), reqwest::Client::new())
            .with_bearer(self.secret_key.clone().into())
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        http(
            method,
            &format!("{}{path}", self.server),
            Some(&self.secret_key),
            body,
        )
    }

    /// Runs the CLI as this partner (secret key from the environment).
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> CliOut {
        cli(
            &self.server,
            &[("KEYSTEAD_SECRET_KEY", self.secret_key.as_str())],
            args,
            stdin,
        )
    }
}

/// The rows of a real sign-in, counted: users, identities, wallets, login
/// codes, sessions (a refused sign-in or a test login changes none).
pub fn sign_in_rows(server: &Server) -> Vec<i64> {
    runtime().block_on(async {
        let store = keystead_store::Store::connect(&server.database_url())
            .await
            .unwrap();
        let mut out = Vec::new();
        for t in ["users", "identities", "wallets", "login_codes", "sessions"] {
            out.push(store.count(t).await.unwrap());
        }
        store.close().await;
        out
    })
}

// ---- the misbehaving IdP ------------------------------------------------------

pub const BAD_CLIENT_ID: &str = "bad-client";
/// Characters that RFC 6749 §2.3.1 form-encoding must handle in Basic auth.
pub const BAD_CLIENT_SECRET: &str = "bad:secret%2B+/ &=é";

pub struct BadIdp {
    pub port: u16,
    _proc: Proc,
}

impl BadIdp {
    pub fn issuer(&self, scenario: &str) -> String {
        format!("https://127.0.0.1:{}/{scenario}", self.port)
    }

    /// `GET /<scenario>/_stats`: how often its documents were fetched.
    pub fn stats(&self, scenario: &str) -> Value {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&tls().ca_pem).unwrap()).unwrap();
        runtime().block_on(async {
            let client = reqwest::Client::builder()
                .add_root_certificate(ca)
                .no_proxy()
                .build()
                .unwrap();
            let url = format!("{}/_stats", self.issuer(scenario));
            client.get(url).send().await.unwrap().json().await.unwrap()
        })
    }
}

/// tests/idp/bad.mjs: one provider per RP-certification scenario.
pub fn bad_idp() -> &'static BadIdp {
    static BAD: OnceLock<BadIdp> = OnceLock::new();
    BAD.get_or_init(|| {
        assert!(node_modules_ready(), "tests/idp/node_modules is missing: run ./scripts/test.sh");
        let t = tls();
        let dir = new_dir("bad-idp-");
        let cfg = json!({"cert": t.cert_pem, "key": t.key_pem, "client_id": BAD_CLIENT_ID, "client_secret": BAD_CLIENT_SECRET});
        let cfg_path = dir.join("bad.json");
        std::fs::write(&cfg_path, cfg.to_string()).unwrap();
        let mut cmd = Command::new("node");
        cmd.arg(repo_root().join("tests/idp/bad.mjs")).arg(&cfg_path);
        let (proc, line) = spawn_until(cmd, "the misbehaving IdP", &dir.join("stderr.log"), |l| l.starts_with("{\"port\""));
        let port = serde_json::from_str::<Value>(&line).unwrap()["port"].as_u64().unwrap() as u16;
        BadIdp { port, _proc: proc }
    })
}

// ---- HTTP ---------------------------------------------------------------------

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }

    /// A response header's value, if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// The check named exactly `name` in a Verify or test-login result.
pub fn check<'a>(result: &'a Value, name: &str) -> &'a Value {
    result["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {result}"))
}

/// `prefix` and ten random characters: a name no other test uses.
pub fn unique(prefix: &str) -> String {
    keystead_crypto::random_token(prefix)[..prefix.len() + 10].to_string()
}

pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Every response body the tests saw, for the leak scans.
pub fn seen_bodies() -> &'static Mutex<Vec<String>> {
    static SEEN: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    SEEN.get_or_init(|| Mutex::new(Vec::new()))
}

/// Runs a typed client call to its answer (a failure fails the test); the
/// answer joins the bodies the leak scans search.
pub fn typed<T: serde::Serialize>(
    call: impl std::future::Future<Output = keystead_client::Result<T>>,
) -> T {
    let answer = runtime()
        .block_on(call)
        .unwrap_or_else(|e| panic!("typed client: {e}"));
    seen_bodies()
        .lock()
        .unwrap()
        .push(serde_json::to_string(&answer).unwrap());
    answer
}

pub fn http(method: &str, url: &str, bearer: Option<&str>, body: Option<Value>) -> Resp {
    http_raw(
        method,
        url,
        bearer.map(|b| ("authorization", format!("Bearer {b}"))),
        body.map(|b| b.to_string()),
    )
}

pub fn http_raw(
    method: &str,
    url: &str,
    header: Option<(&str, String)>,
    body: Option<String>,
) -> Resp {
    http_headers(method, url, header.as_slice(), body)
}

/// One request with these headers (a body is sent as JSON).
pub fn http_headers(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Option<String>,
) -> Resp {
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let mut req = client.request(method.parse().unwrap(), url);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        seen_bodies().lock().unwrap().push(text.clone());
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            text,
            json,
        }
    })
}

// ---- CLI ----------------------------------------------------------------------

#[derive(Debug)]
pub struct CliOut {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CliOut {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `keystead` with a fresh HOME and working directory.
pub fn cli(server: &str, env: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> CliOut {
    let home = new_dir("home-");
    cli_in(&home, server, env, args, stdin)
}

pub fn cli_in(
    home: &Path,
    server: &str,
    env: &[(&str, &str)],
    args: &[&str],
    stdin: Option<&str>,
) -> CliOut {
    let mut cmd = Command::new(BIN);
    cmd.args(["--server", server])
        .args(args)
        .current_dir(home)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    {
        let mut i = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            i.write_all(s.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let r = CliOut {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    seen_bodies()
        .lock()
        .unwrap()
        .push(format!("{}\n{}", r.stdout, r.stderr));
    r
}

// ---- independent signature verification ----------------------------------------

/// Runs tests/verify/verify.mjs (ethers, tweetnacl, cosmjs) on `cases`.
pub fn verify(cases: Value) -> Vec<Value> {
    assert!(
        repo_root().join("tests/verify/node_modules").exists(),
        "tests/verify/node_modules is missing: run ./scripts/test.sh"
    );
    let mut child = Command::new("node")
        .arg(repo_root().join("tests/verify/verify.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(cases.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "verify.mjs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

// ---- PostgreSQL -----------------------------------------------------------------

/// A fresh database on the local PostgreSQL for this run.
pub fn postgres_db() -> String {
    let admin = std::env::var("KEYSTEAD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("ks_it_{}", std::process::id()) + &format!("_{}", rand_suffix());
    let out = Command::new("psql")
        .args([
            admin.as_str(),
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .output()
        .expect("psql is needed to create test databases");
    assert!(
        out.status.success(),
        "PostgreSQL is required: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (base, _) = admin.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish() % 1_000_000_000
}

/// Scans every file under `dir` for `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    hits.push(p);
                }
            }
        }
    }
    hits
}
