//! The aws-kms key provider against a real AWS-KMS-API server: moto
//! (PyPI, `tests/kms/.venv`, started here on loopback). Secrets and wallet
//! keys round-trip through KMS with their record as encryption context; a
//! wrapped key moved to another record does not unwrap; an unreachable KMS
//! makes /readyz fail and writes answer a clean 503 that changes nothing.

use std::process::Command;
use std::sync::OnceLock;

use serde_json::json;

use crate::browser::{basic_partner, login_to_me, Browser};
use crate::kit::{free_port, http, new_dir, repo_root, runtime, unique, Proc, Server, ServerOpts};

struct Moto {
    url: String,
    _proc: Proc,
}

/// One moto server for the run (its state lives in memory).
fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let bin = repo_root().join("tests/kms/.venv/bin/moto_server");
        assert!(
            bin.exists(),
            "{} is missing: ./scripts/test.sh installs it (tests/kms/setup.sh)",
            bin.display()
        );
        let port = free_port();
        let dir = new_dir("moto-");
        let mut cmd = Command::new(&bin);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let proc = Proc::spawn(cmd, &dir.join("moto.log"));
        let url = format!("http://127.0.0.1:{port}");
        let t0 = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t0.elapsed().as_secs() < 60, "moto did not start");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        Moto { url, _proc: proc }
    })
}

fn kms_client(endpoint: &str) -> aws_sdk_kms::Client {
    let conf = aws_sdk_kms::config::Builder::new()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_kms::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}

/// A new symmetric KMS key; its ARN.
fn new_key(m: &Moto) -> String {
    runtime().block_on(async {
        kms_client(&m.url)
            .create_key()
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap()
            .arn
            .unwrap()
    })
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn kms_server(endpoint: &str, key_id: &str, database_url: Option<String>) -> Server {
    Server::start(ServerOpts {
        database_url,
        env: vec![
            ("KEYSTEAD_KMS__PROVIDER", "aws-kms"),
            ("KEYSTEAD_KMS__KEY_ID", leak(key_id.to_string())),
            ("KEYSTEAD_KMS__REGION", "us-east-1"),
            ("KEYSTEAD_KMS__ENDPOINT_URL", leak(endpoint.to_string())),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            // never ask an instance metadata service (no traffic off loopback)
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
        ..Default::default()
    })
}

fn round_trip(server: &Server) {
    // the client secret is sealed under KMS and opened for the token request
    let p = basic_partner(server);
    let hint = unique("kms-");
    let (_, me) = login_to_me(&Browser::new(server), &p, &hint);
    let wallet = me["wallets"][0]["id"].as_str().unwrap().to_string();
    // a pregenerated wallet: sealed under KMS, opened to sign
    let w = p.call(
        "POST",
        "/v1/wallets",
        Some(json!({"type": "EVM", "userIdentifier": "kms@example.test", "userIdentifierType": "EMAIL"})),
    );
    assert_eq!(w.status, 201, "{}", w.text);
    let id = w.json["wallet"]["id"].as_str().unwrap();
    let signed = p.call(
        "POST",
        &format!("/v1/wallets/{id}/sign-message"),
        Some(json!({"message": "sealed by KMS"})),
    );
    assert_eq!(signed.status, 200, "{}", signed.text);
    // the rows say which provider wrapped them
    let store = runtime().block_on(keystead_store::Store::connect(&server.database_url()));
    let store = store.unwrap();
    for (owner, purpose) in [
        (id, keystead_store::PURPOSE_WALLET_KEY),
        (wallet.as_str(), keystead_store::PURPOSE_WALLET_KEY),
        (
            p.partner_id.as_str(),
            keystead_store::PURPOSE_OIDC_CLIENT_SECRET,
        ),
    ] {
        let sealed = runtime()
            .block_on(keystead_store::SecretStore::secret(&store, owner, purpose))
            .unwrap()
            .unwrap();
        assert!(
            sealed.key.key_id.starts_with("aws-kms:arn:aws:kms:"),
            "{:?}",
            sealed.key
        );
    }
    // a wrapped key moved to another record: KMS refuses (context), and
    // the wallet cannot sign; moving it back restores it
    let other = p.call(
        "POST",
        "/v1/wallets",
        Some(json!({"type": "EVM", "userIdentifier": "kms2@example.test", "userIdentifierType": "EMAIL"})),
    );
    let other_id = other.json["wallet"]["id"].as_str().unwrap().to_string();
    let get = |o: &str| {
        runtime()
            .block_on(keystead_store::SecretStore::secret(
                &store,
                o,
                keystead_store::PURPOSE_WALLET_KEY,
            ))
            .unwrap()
            .unwrap()
    };
    let (a, b) = (get(id), get(&other_id));
    // keystead bound the record as the KMS encryption context: KMS opens the
    // wrapped key for its own record only
    let decrypt = |sealed: &keystead_crypto::Sealed, owner: &str| {
        runtime().block_on(async {
            kms_client(&moto().url)
                .decrypt()
                .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(sealed.key.bytes.clone()))
                .encryption_context("keystead:owner", owner)
                .encryption_context("keystead:purpose", keystead_store::PURPOSE_WALLET_KEY)
                .send()
                .await
                .ok()
                .and_then(|o| o.plaintext.map(|p| p.into_inner().len()))
        })
    };
    assert_eq!(decrypt(&a, id), Some(32));
    assert_eq!(
        decrypt(&a, &other_id),
        None,
        "KMS opened it for another record"
    );
    let put = |o: &str, s: &keystead_crypto::Sealed| {
        runtime()
            .block_on(keystead_store::SecretStore::overwrite_secret(
                &store,
                o,
                keystead_store::PURPOSE_WALLET_KEY,
                s,
            ))
            .unwrap()
    };
    put(id, &b);
    let refused = p.call(
        "POST",
        &format!("/v1/wallets/{id}/sign-message"),
        Some(json!({"message": "x"})),
    );
    assert_eq!(refused.status, 500, "{}", refused.text);
    assert_eq!(refused.json["error"]["code"], "internal");
    put(id, &a);
    let again = p.call(
        "POST",
        &format!("/v1/wallets/{id}/sign-message"),
        Some(json!({"message": "x"})),
    );
    assert_eq!(again.status, 200, "{}", again.text);
    runtime().block_on(store.close());
    // KMS calls are counted by operation and result
    let metrics = http("GET", &format!("{}/metrics", server.url), None, None).text;
    for line in [
        "keystead_kms_calls_total{call=\"generate_data_key\",result=\"ok\"}",
        "keystead_kms_calls_total{call=\"decrypt\",result=\"ok\"}",
        "keystead_kms_calls_total{call=\"decrypt\",result=\"error\"}",
    ] {
        assert!(metrics.contains(line), "{line}\n{metrics}");
    }
}

#[test]
fn secrets_and_wallets_round_trip_through_kms_on_sqlite() {
    let m = moto();
    let server = kms_server(&m.url, &new_key(m), None);
    assert_eq!(
        http("GET", &format!("{}/readyz", server.url), None, None).status,
        200
    );
    round_trip(&server);
}

#[test]
fn secrets_and_wallets_round_trip_through_kms_on_postgres() {
    let m = moto();
    let server = kms_server(&m.url, &new_key(m), Some(crate::kit::postgres_db()));
    round_trip(&server);
}

#[test]
fn an_unreachable_kms_fails_readiness_and_writes_answer_503_changing_nothing() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let server = kms_server(
        &dead,
        "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000",
        None,
    );
    let ready = http("GET", &format!("{}/readyz", server.url), None, None);
    assert_eq!(ready.status, 503, "{}", ready.text);
    let p = server.new_partner();
    let put = p.call(
        "PUT",
        "/v1/partner/custom-oidc",
        Some(
            json!({"issuer": "https://idp.example.com", "client_id": "c",
                    "button_label": "Acme", "token_endpoint_auth_method": "client_secret_basic"}),
        ),
    );
    assert_eq!(put.status, 200, "{}", put.text);
    let secret = p.call(
        "PUT",
        "/v1/partner/custom-oidc/client-secret",
        Some(json!({"client_secret": "a-secret-that-cannot-be-sealed"})),
    );
    assert_eq!(secret.status, 503, "{}", secret.text);
    assert_eq!(secret.json["error"]["code"], "unavailable");
    assert_eq!(secret.header("retry-after"), Some("5"), "Retry-After");
    let shown = p.call("GET", "/v1/partner/custom-oidc", None);
    assert_eq!(shown.json["client_secret_set"], false, "nothing written");
    let wallet = p.call(
        "POST",
        "/v1/wallets",
        Some(json!({"type": "EVM", "userIdentifier": "x@example.test", "userIdentifierType": "EMAIL"})),
    );
    assert_eq!(wallet.status, 503, "{}", wallet.text);
    let listed = p.call(
        "GET",
        "/v1/wallets?userIdentifier=x%40example.test&userIdentifierType=EMAIL",
        None,
    );
    assert_eq!(
        listed.json["wallets"],
        json!([]),
        "no wallet without its key"
    );
    // a first sign-in needs a new wallet key: the app gets error=unavailable
    // back, and no user was made
    let public = crate::browser::oidc_partner(
        &server,
        &crate::kit::idp().issuer("main"),
        &format!("{}-none", crate::kit::CLIENT_ID),
        "none",
        None,
    );
    let hint = unique("down-");
    let (outcome, _) = Browser::new(&server).login(&public, &hint);
    assert_eq!(
        outcome.error().as_deref(),
        Some("unavailable"),
        "{outcome:?}"
    );
    // the log names the problem without secrets
    let log = server.log_text();
    assert!(log.contains("KMS"), "{log}");
    assert!(!log.contains("a-secret-that-cannot-be-sealed"));
}

/// `keystead kms …` on a server's database, with the server's settings.
fn kms_cli(server: &Server, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(crate::kit::BIN);
    cmd.arg("kms")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KEYSTEAD_DATA_DIR", &server.data_dir)
        .env("KEYSTEAD_DATABASE_URL", server.database_url())
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `(key_id, count)` lines of `keystead kms status`.
fn status_counts(server: &Server, env: &[(&str, &str)]) -> Vec<(String, i64)> {
    let o = kms_cli(server, env, &["status"]);
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let n = parts.next()?.parse().ok()?;
            let key_id = parts.next().filter(|k| k.contains(':'))?;
            Some((key_id.to_string(), n))
        })
        .collect()
}

fn signs(p: &crate::kit::Partner, wallet: &str) -> bool {
    p.call(
        "POST",
        &format!("/v1/wallets/{wallet}/sign-message"),
        Some(json!({"message": "still mine"})),
    )
    .status
        == 200
}

/// Many wallets at once: the per-partner wallet limit out of the way.
const NO_WALLET_LIMIT: [(&str, &str); 2] = [
    ("KEYSTEAD_WALLETS__RATE_LIMIT_PER_SECOND", "100000"),
    ("KEYSTEAD_WALLETS__RATE_LIMIT_BURST", "100000"),
];

fn rotate_rewrap_and_migrate(database_url: Option<String>) {
    let server = Server::start(ServerOpts {
        database_url,
        env: NO_WALLET_LIMIT.to_vec(),
        ..Default::default()
    });
    let p = basic_partner(&server);
    let wallets: Vec<String> = (0..250)
        .map(|i| {
            let w = p.call(
                "POST",
                "/v1/wallets",
                Some(json!({"type": "EVM", "userIdentifier": format!("u{i}@example.test"), "userIdentifierType": "EMAIL"})),
            );
            assert_eq!(w.status, 201, "{}", w.text);
            w.json["wallet"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    let total = 251; // the wallets and the client secret
    assert_eq!(
        status_counts(&server, &[]),
        vec![("local:1".to_string(), total)]
    );

    // rotate: new secrets use local:2 at once, in the running server too
    let o = kms_cli(&server, &[], &["rotate"]);
    assert!(o.status.success(), "{}", text(&o));
    let fresh = p.call(
        "POST",
        "/v1/wallets",
        Some(json!({"type": "EVM", "userIdentifier": "fresh@example.test", "userIdentifierType": "EMAIL"})),
    );
    assert_eq!(fresh.status, 201);
    let counts = status_counts(&server, &[]);
    assert!(counts.contains(&("local:2".to_string(), 1)), "{counts:?}");

    // rewrap, killed with -9 part-way, then run again
    let mut child = Command::new(crate::kit::BIN)
        .args(["kms", "rewrap"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KEYSTEAD_DATA_DIR", &server.data_dir)
        .env("KEYSTEAD_DATABASE_URL", server.database_url())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        // the first progress line: 100 rows done, more to go
        let first = lines.next().unwrap().unwrap();
        assert!(first.starts_with("rewrapped 100/"), "{first}");
        child.kill().unwrap(); // SIGKILL
    }
    child.wait().unwrap();
    let mid = status_counts(&server, &[]);
    let on_old = mid.iter().find(|(k, _)| k == "local:1").map_or(0, |c| c.1);
    assert!(
        on_old > 0 && on_old < total,
        "interrupted part-way: {mid:?}"
    );
    for w in [&wallets[0], &wallets[124], &wallets[249]] {
        assert!(signs(&p, w), "a wallet stopped working mid-rewrap");
    }
    let o = kms_cli(&server, &[], &["rewrap"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        status_counts(&server, &[]),
        vec![("local:2".to_string(), total + 1)]
    );
    for w in &wallets {
        assert!(signs(&p, w), "{w}");
    }

    // local -> aws-kms
    let m = moto();
    let key = new_key(m);
    let kms_env = [
        ("KEYSTEAD_KMS__KEY_ID", key.as_str()),
        ("KEYSTEAD_KMS__REGION", "us-east-1"),
        ("KEYSTEAD_KMS__ENDPOINT_URL", m.url.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    let o = kms_cli(&server, &kms_env, &["migrate", "--to", "aws-kms"]);
    assert!(o.status.success(), "{}", text(&o));
    let mut as_kms = kms_env.to_vec();
    as_kms.push(("KEYSTEAD_KMS__PROVIDER", "aws-kms"));
    let counts = status_counts(&server, &as_kms);
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!(counts[0], (format!("aws-kms:{key}"), total + 1));
    // the server, now on KMS: every wallet and the client secret open
    let leaked: Vec<(&'static str, &'static str)> = as_kms
        .iter()
        .map(|(k, v)| (leak(k.to_string()), leak(v.to_string())))
        .collect();
    let dir = server.data_dir.parent().unwrap().to_path_buf();
    let database_url = server.database_url();
    drop(server);
    let server = Server::start(ServerOpts {
        dir: Some(dir),
        database_url: Some(database_url).filter(|u| u.starts_with("postgres")),
        env: [
            leaked,
            vec![("AWS_EC2_METADATA_DISABLED", "true")],
            NO_WALLET_LIMIT.to_vec(),
        ]
        .concat(),
        ..Default::default()
    });
    let p = p.on(&server);
    for w in [&wallets[0], &wallets[249]] {
        assert!(signs(&p, w), "{w}");
    }
    let hint = unique("mig-");
    login_to_me(&Browser::new(&server), &p, &hint);
}

#[test]
fn rotate_and_an_interrupted_rewrap_then_migrate_to_kms_on_sqlite() {
    rotate_rewrap_and_migrate(None);
}

#[test]
fn rotate_and_an_interrupted_rewrap_then_migrate_to_kms_on_postgres() {
    rotate_rewrap_and_migrate(Some(crate::kit::postgres_db()));
}
