//! The aws-kms key provider against a real AWS-KMS-API server: moto
//! (PyPI, `tests/kms/.venv`, started here on loopback). Secrets and wallet
//! keys round-trip through KMS with their record as encryption context; a
//! wrapped key moved to another record does not unwrap; an unreachable KMS
//! makes /readyz fail and writes answer a clean 503 that changes nothing.

use std::process::Command;
use std::sync::OnceLock;

use serde_json::json;

use crate::browser::{basic_partner, login_to_me, Browser};
use crate::kit::{free_port, http, new_dir, repo_root, runtime, Proc, Server, ServerOpts};

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
    let hint = keystead_crypto::random_token("kms-")[..14].to_string();
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
    let retry = runtime().block_on(async {
        reqwest::Client::new()
            .put(format!(
                "{}/v1/partner/custom-oidc/client-secret",
                server.url
            ))
            .bearer_auth(&p.secret_key)
            .json(&json!({"client_secret": "a-secret-that-cannot-be-sealed"}))
            .send()
            .await
            .unwrap()
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string())
    });
    assert_eq!(retry.as_deref(), Some("5"), "Retry-After");
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
    // the log names the problem without secrets
    let log = server.log_text();
    assert!(log.contains("KMS"), "{log}");
    assert!(!log.contains("a-secret-that-cannot-be-sealed"));
}
