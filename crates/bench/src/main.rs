//! `keystead-bench`: drives full Custom OIDC logins over HTTP, in one run and
//! against one IdP (the fast hand-written test IdP, tests/idp/bad.mjs,
//! scenario good-rs256), first against a release `keystead serve` (SQLite),
//! then against the reference relying party in bench/reference-rp (Node:
//! openid-client 6, better-sqlite3 12, @noble/curves). For each it reports
//! logins/s, p50/p99 latency of the callback request and the server
//! process's CPU time per login (utime+stime from /proc), for first logins
//! and for returning logins, and the ratio of the two CPU costs; then
//! keystead's peak RSS and `GET /v1/sdk/config` requests/s.
//!
//! Run: `cargo build --release -p keystead && cargo run --release -p keystead-bench`

mod floor;
mod seed;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use clap::Parser;
use keystead_proto as proto;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const PUBLIC_URL: &str = "http://127.0.0.1:1";
const RETURN_TO: &str = "https://app.example.test/done";

#[derive(Parser, Debug)]
struct Args {
    /// Logins per phase (first logins, then the same users again).
    #[arg(long, default_value_t = 300)]
    logins: usize,
    /// Concurrent simulated browsers.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// The keystead binary (default: target/release/keystead).
    #[arg(long)]
    keystead: Option<PathBuf>,
    /// Only keystead: no reference RP, no /v1/sdk/config load (to profile
    /// or count the syscalls of logins alone).
    #[arg(long)]
    keystead_only: bool,
    /// Only the physical floor (micro-benchmarks of the unavoidable work).
    #[arg(long)]
    floor_only: bool,
    /// Users to put into keystead's database before the login phases (to
    /// compare logins at 10^3 and 10^6 stored users).
    #[arg(long, default_value_t = 0)]
    seed_users: usize,
    /// Test IdP scenario in tests/idp/bad.mjs.
    #[arg(long, default_value = "good-rs256")]
    scenario: String,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Proc(Child);
impl Drop for Proc {
    /// Closes stdin (the servers stop on EOF, so a wrapper such as
    /// `perf stat` can write its report), then kills after 5 s.
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        for _ in 0..50 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(mut cmd: Command, ready: &str) -> Result<(Proc, String)> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().context("spawning")?;
    let out = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let mut lines = BufReader::new(out).lines();
    let proc = Proc(child);
    for line in lines.by_ref() {
        let line = line?;
        if line.starts_with(ready) {
            std::thread::spawn(move || for _ in lines {});
            return Ok((proc, line));
        }
    }
    bail!("process exited before printing {ready:?}")
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').ok_or_else(|| anyhow!("bad stat"))?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// A server under test: where its routes are and how its session call looks.
struct Target {
    name: &'static str,
    /// Base URL the client connects to.
    base: String,
    /// Start route (path), and the query pairs that come first (api key).
    start: &'static str,
    fixed: Vec<(&'static str, String)>,
    /// Path fragment of the callback route (its latency is measured).
    callback: &'static str,
    /// Session route (path); `api_key` goes into its body when set.
    sessions: &'static str,
    api_key: Option<String>,
    pid: u32,
}

async fn one_login(t: &Target, hint: &str, ca: &reqwest::Certificate) -> Result<Duration> {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .add_root_certificate(ca.clone())
        .no_proxy()
        .build()?;
    let verifier = format!("verifier-{hint}-0123456789abcdefghijklmnopqrstuvwxyz");
    let challenge = B64URL.encode(Sha256::digest(verifier.as_bytes()));
    let mut url = url::Url::parse(&format!("{}{}", t.base, t.start))?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in &t.fixed {
            q.append_pair(k, v);
        }
        q.append_pair("return_to", RETURN_TO)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("login_hint", hint);
    }
    let mut current = url.to_string();
    let mut callback_time = Duration::ZERO;
    for _ in 0..10 {
        if current.starts_with(RETURN_TO) {
            let u = url::Url::parse(&current)?;
            let code = u
                .query_pairs()
                .find(|(k, _)| k == "login_code")
                .map(|(_, v)| v.into_owned())
                .ok_or_else(|| anyhow!("{}: login failed: {current}", t.name))?;
            // keystead's body is its wire type; the reference RP takes the
            // same fields without api_key
            let mut body = serde_json::to_value(proto::CreateSession {
                api_key: t.api_key.clone().unwrap_or_default(),
                login_code: code,
                code_verifier: verifier,
            })?;
            if t.api_key.is_none() {
                if let Some(o) = body.as_object_mut() {
                    o.remove("api_key");
                }
            }
            let r = client
                .post(format!("{}{}", t.base, t.sessions))
                .json(&body)
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("{}: session failed: {}", t.name, r.text().await?);
            }
            return Ok(callback_time);
        }
        let is_callback = current.contains(t.callback) && !current.contains(t.start);
        let started = Instant::now();
        let resp = client.get(&current).send().await?;
        if is_callback {
            callback_time = started.elapsed();
        }
        let loc = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                anyhow!(
                    "{}: no redirect from {current}: HTTP {}",
                    t.name,
                    resp.status()
                )
            })?
            .to_string();
        let next = url::Url::parse(&current)?.join(&loc)?.to_string();
        current = match next.strip_prefix(PUBLIC_URL) {
            Some(rest) => format!("{}{rest}", t.base),
            None => next,
        };
    }
    bail!("too many redirects")
}

struct Phase {
    name: &'static str,
    wall: Duration,
    cpu: f64,
    latencies: Vec<Duration>,
}

async fn phase(
    name: &'static str,
    target: Arc<Target>,
    ca: &reqwest::Certificate,
    n: usize,
    concurrency: usize,
) -> Result<Phase> {
    let pid = target.pid;
    let cpu0 = cpu_seconds(pid)?;
    let t0 = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let target = target.clone();
        let next = next.clone();
        let ca = ca.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(lat);
                }
                lat.push(one_login(&target, &format!("user-{i}"), &ca).await?);
            }
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let wall = t0.elapsed();
    let cpu = cpu_seconds(pid)? - cpu0;
    latencies.sort();
    Ok(Phase {
        name,
        wall,
        cpu,
        latencies,
    })
}

fn pct(v: &[Duration], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let root = repo_root();
    let bin = args
        .keystead
        .clone()
        .unwrap_or_else(|| root.join("target/release/keystead"));
    if !bin.exists() {
        bail!(
            "{} not found: run `cargo build --release -p keystead` first",
            bin.display()
        );
    }
    if !root.join("tests/idp/node_modules").exists() {
        bail!("tests/idp/node_modules missing: run `npm ci` in tests/idp (./scripts/test.sh does)");
    }
    let dir = tempfile::tempdir()?;
    let floor = floor::measure_floor(dir.path())?;
    if args.floor_only {
        floor.print();
        return Ok(());
    }

    // test CA and a leaf for 127.0.0.1
    let mut ca_p = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_p.distinguished_name
        .push(rcgen::DnType::CommonName, "keystead bench CA");
    let ca_key = rcgen::KeyPair::generate()?;
    let ca_cert = ca_p.self_signed(&ca_key)?;
    let mut leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])?;
    leaf.subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse()?));
    let leaf_key = rcgen::KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key)?;
    let (ca_pem, cert_pem, key_pem) = (
        dir.path().join("ca.pem"),
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
    );
    std::fs::write(&ca_pem, ca_cert.pem())?;
    std::fs::write(&cert_pem, leaf_cert.pem())?;
    std::fs::write(&key_pem, leaf_key.serialize_pem())?;
    let ca = reqwest::Certificate::from_pem(ca_cert.pem().as_bytes())?;

    // the IdP
    let idp_cfg = dir.path().join("idp.json");
    std::fs::write(
        &idp_cfg,
        json!({"cert": cert_pem, "key": key_pem, "client_id": "bench", "client_secret": "bench-secret"}).to_string(),
    )?;
    let mut cmd = Command::new("node");
    cmd.arg(root.join("tests/idp/bad.mjs")).arg(&idp_cfg);
    let (idp, line) = spawn(cmd, "{\"port\"")?;
    let idp_port = serde_json::from_str::<Value>(&line)?["port"]
        .as_u64()
        .ok_or_else(|| anyhow!("port"))?;
    let issuer = format!("https://127.0.0.1:{idp_port}/{}", args.scenario);

    // keystead
    let mut cmd = Command::new(&bin);
    cmd.arg("serve")
        .arg("--stop-on-stdin-eof")
        .current_dir(dir.path())
        .env("KEYSTEAD_LISTEN", "127.0.0.1:0")
        .env("KEYSTEAD_PUBLIC_URL", PUBLIC_URL)
        .env("KEYSTEAD_DATA_DIR", dir.path().join("data"))
        .env("KEYSTEAD_LOG", "warn")
        .env("KEYSTEAD_OUTBOUND__ALLOW_NETWORKS", "127.0.0.0/8")
        .env("KEYSTEAD_OUTBOUND__EXTRA_CA_FILE", &ca_pem);
    let (ks, line) = spawn(cmd, "keystead listening on ")?;
    let server = line
        .trim_start_matches("keystead listening on ")
        .split_whitespace()
        .next()
        .ok_or_else(|| anyhow!("listen line"))?
        .to_string();
    let admin = std::fs::read_to_string(dir.path().join("data/admin-token"))?
        .trim()
        .to_string();

    // a partner with Custom OIDC enabled, set up through the typed client
    let api = keystead_client::Client::new(server.clone(), reqwest::Client::new());
    let admin = api.with_bearer(admin.into());
    let project = admin
        .create_project(&proto::CreateProject {
            name: "bench".into(),
        })
        .await?;
    let key = admin
        .create_api_key(
            &project.id,
            &proto::CreateApiKey {
                name: "bench".into(),
            },
        )
        .await?;
    let pk = key.publishable_key.clone();
    if args.seed_users > 0 {
        seed::seed_users(
            &dir.path().join("data/keystead.db"),
            &key.partner_id,
            &issuer,
            args.seed_users,
        )?;
        println!("seeded {} users into keystead's database", args.seed_users);
    }
    let partner = api.with_bearer(key.secret_key.clone().into());
    let mut cfg = proto::PutCustomOidc {
        issuer: Some(issuer.clone()),
        client_id: Some("bench".into()),
        button_label: Some("Bench".into()),
        token_endpoint_auth_method: Some("client_secret_basic".into()),
        ..Default::default()
    };
    partner.put_custom_oidc(&cfg).await?;
    partner
        .set_client_secret(&"bench-secret".to_string().into())
        .await?;
    cfg.enabled = Some(true);
    partner.put_custom_oidc(&cfg).await?;
    partner
        .patch_partner(&proto::PatchPartner {
            allowed_return_urls: vec![RETURN_TO.into()],
        })
        .await?;

    let keystead = Arc::new(Target {
        name: "keystead",
        base: server.clone(),
        start: "/auth/custom_oidc/start",
        fixed: vec![("api_key", pk.clone())],
        callback: "/auth/custom_oidc/callback",
        sessions: "/v1/sessions",
        api_key: Some(pk.clone()),
        pid: ks.0.id(),
    });

    // the reference relying party, against the same IdP
    let rp_dir = root.join("bench/reference-rp");
    let status = Command::new("bash")
        .arg(rp_dir.join("install.sh"))
        .status()
        .context("running bench/reference-rp/install.sh")?;
    if !status.success() {
        bail!("bench/reference-rp/install.sh failed");
    }
    let rp_cfg = dir.path().join("rp.json");
    std::fs::write(
        &rp_cfg,
        json!({
            "issuer": issuer, "client_id": "bench", "client_secret": "bench-secret",
            "token_endpoint_auth_method": "client_secret_basic",
            "db": dir.path().join("rp.sqlite"), "ca_file": ca_pem, "public_url": PUBLIC_URL,
            "allowed_return_urls": [RETURN_TO], "scope": "openid email",
        })
        .to_string(),
    )?;
    let mut cmd = Command::new("node");
    cmd.arg(rp_dir.join("rp.mjs"))
        .arg(&rp_cfg)
        .env("NODE_EXTRA_CA_CERTS", &ca_pem);
    let (rp, line) = spawn(cmd, "{\"port\"")?;
    let rp_port = serde_json::from_str::<Value>(&line)?["port"]
        .as_u64()
        .ok_or_else(|| anyhow!("port"))?;
    let reference = Arc::new(Target {
        name: "reference RP",
        base: format!("http://127.0.0.1:{rp_port}"),
        start: "/start",
        fixed: vec![],
        callback: "/callback",
        sessions: "/sessions",
        api_key: None,
        pid: rp.0.id(),
    });

    println!(
        "keystead-bench: {} logins per phase, concurrency {}, IdP scenario {} (RS256 ID tokens, client_secret_basic), SQLite",
        args.logins, args.concurrency, args.scenario
    );
    let mut results = Vec::new();
    let targets = if args.keystead_only {
        vec![&keystead]
    } else {
        vec![&keystead, &reference]
    };
    for target in targets {
        // warm-up: caches, connection pools, JITs
        for i in 0..20 {
            one_login(target, &format!("warmup-{i}"), &ca).await?;
        }
        let first = phase("first", target.clone(), &ca, args.logins, args.concurrency).await?;
        let returning = phase(
            "returning",
            target.clone(),
            &ca,
            args.logins,
            args.concurrency,
        )
        .await?;
        results.push((target.name, first, returning));
    }
    println!(
        "{:<14} {:<10} {:>10} {:>14} {:>14} {:>12}",
        "server", "logins", "logins/s", "callback p50", "callback p99", "CPU/login"
    );
    for (name, first, returning) in &results {
        for p in [first, returning] {
            println!(
                "{:<14} {:<10} {:>10.1} {:>11.2} ms {:>11.2} ms {:>9.3} ms",
                name,
                p.name,
                p.latencies.len() as f64 / p.wall.as_secs_f64(),
                pct(&p.latencies, 0.50),
                pct(&p.latencies, 0.99),
                p.cpu_per_login_ms(),
            );
        }
    }
    if let [(_, ks_first, ks_ret), (_, rp_first, rp_ret)] = results.as_slice() {
        println!(
            "CPU ratio reference RP / keystead: first logins {:.1}x, returning logins {:.1}x",
            rp_first.cpu_per_login_ms() / ks_first.cpu_per_login_ms(),
            rp_ret.cpu_per_login_ms() / ks_ret.cpu_per_login_ms(),
        );
    }
    println!("(CPU/login: utime+stime of the server process over the phase, divided by logins; a login is start + IdP + callback + session call; targets: keystead first <= 0.5 ms, returning <= 0.3 ms)");

    if !args.keystead_only {
        let conns = args.concurrency.max(8);
        let rps = sdk_config_rps(&server, &pk, conns, Duration::from_secs(3)).await?;
        println!(
            "keystead GET /v1/sdk/config: {rps:.0} req/s (keep-alive, {conns} connections, 3 s)"
        );
    }
    println!(
        "keystead peak RSS: {:.1} MiB (VmHWM), now {:.1} MiB (VmRSS)",
        proc_status_kib(keystead.pid, "VmHWM:")? as f64 / 1024.0,
        proc_status_kib(keystead.pid, "VmRSS:")? as f64 / 1024.0
    );
    floor.print();
    let (_, ks_first, ks_ret) = &results[0];
    println!(
        "keystead above the floor: first login {:.2} ms ({:.1}x the floor), returning {:.2} ms ({:.1}x)",
        ks_first.cpu_per_login_ms(),
        ks_first.cpu_per_login_ms() * 1000.0 / floor.first_login_us(),
        ks_ret.cpu_per_login_ms(),
        ks_ret.cpu_per_login_ms() * 1000.0 / floor.returning_login_us(),
    );
    drop(rp);
    drop(ks);
    drop(idp);
    Ok(())
}

impl Phase {
    fn cpu_per_login_ms(&self) -> f64 {
        self.cpu * 1000.0 / self.latencies.len().max(1) as f64
    }
}

/// A field of /proc/PID/status in KiB.
fn proc_status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("{field} not in /proc/{pid}/status"))
}

/// Requests per second of `GET /v1/sdk/config` over `conns` keep-alive
/// connections, with a minimal HTTP/1.1 client (so the client costs little
/// of the two cores the server shares with it).
async fn sdk_config_rps(server: &str, pk: &str, conns: usize, dur: Duration) -> Result<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.trim_start_matches("http://").to_string();
    let request = format!("GET /v1/sdk/config?api_key={pk} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let deadline = Instant::now() + dur;
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (addr, request) = (addr.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(&addr).await?;
            s.set_nodelay(true)?;
            let mut buf = vec![0u8; 16 * 1024];
            let mut done = 0u64;
            while Instant::now() < deadline {
                s.write_all(request.as_bytes()).await?;
                let mut have = 0;
                loop {
                    let n = s.read(&mut buf[have..]).await?;
                    if n == 0 {
                        bail!("connection closed");
                    }
                    have += n;
                    if let Some(end) = response_end(&buf[..have]) {
                        if end != have {
                            bail!("unexpected bytes after the response");
                        }
                        if !buf.starts_with(b"HTTP/1.1 200") {
                            bail!(
                                "sdk/config: {}",
                                String::from_utf8_lossy(&buf[..have.min(200)])
                            );
                        }
                        break;
                    }
                }
                done += 1;
            }
            Ok::<_, anyhow::Error>(done)
        }));
    }
    let t0 = Instant::now();
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / t0.elapsed().as_secs_f64())
}

/// The length of a complete HTTP/1.1 response with a content-length, once
/// `buf` holds all of it.
fn response_end(buf: &[u8]) -> Option<usize> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let len: usize = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })?;
    (buf.len() >= head_end + len).then_some(head_end + len)
}
