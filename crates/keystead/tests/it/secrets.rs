//! The client secret is write-only: after it is set its bytes appear in no
//! response, no CLI output, no log line and nowhere in the data directory;
//! and a ciphertext moved to another row no longer decrypts.

use std::sync::Arc;

use keystead_crypto::local::LocalKeyProvider;
use keystead_crypto::{ExposeSecret, SecretString};
use keystead_domain::{DomainConfig, PartnerAuth, Services};
use keystead_net::{Outbound, OutboundConfig};
use keystead_store::{SecretStore, Store, PURPOSE_OIDC_CLIENT_SECRET};
use serde_json::json;

use crate::browser::{oidc_partner, session, Browser};
use crate::kit::{
    files_containing, idp, new_dir, seen_bodies, Server, ServerOpts, CLIENT_ID, CLIENT_SECRET,
};

#[test]
fn client_secret_never_leaks() {
    let server = Server::start(ServerOpts {
        log_level: "trace",
        ..Default::default()
    });
    let p = server.new_partner();
    let secret = format!("leak-canary-{}", keystead_crypto::random_token(""));
    let issuer = idp().issuer("main");

    let out = p.cli(
        &[
            "oidc",
            "configure",
            "--issuer",
            &issuer,
            "--client-id",
            "keystead-test-client_secret_post",
            "--label",
            "Acme",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    let out = p.cli(&["oidc", "set-secret"], Some(&format!("{secret}\n")));
    assert_eq!(out.code, 0, "{out:?}");
    // everything a partner can look at afterwards; each call did what it
    // should (a failing call would show nothing to leak)
    assert_eq!(p.cli(&["oidc", "show"], None).code, 0);
    assert_eq!(p.cli(&["--json", "oidc", "show"], None).code, 0);
    // Verify runs (the client id is not the IdP's, which Verify cannot see)
    let verify = p.cli(&["--json", "oidc", "verify"], None);
    assert!(verify.json()["checks"].is_array(), "{verify:?}");
    assert_eq!(p.call("GET", "/v1/partner/custom-oidc", None).status, 200);
    assert_eq!(
        p.call("POST", "/v1/partner/custom-oidc/verify", None)
            .status,
        200
    );
    let enabled = p.call(
        "PUT",
        "/v1/partner/custom-oidc",
        Some(json!({"issuer": issuer, "client_id": "c", "button_label": "A", "enabled": true})),
    );
    assert_eq!(enabled.status, 200, "{}", enabled.text);
    // switching to `none` with a secret stored is refused, without echoing it
    let none = p.call("PUT", "/v1/partner/custom-oidc", Some(json!({"issuer": issuer, "client_id": "c", "button_label": "A", "token_endpoint_auth_method": "none"})));
    assert_eq!(none.status, 400, "{}", none.text);
    assert_eq!(p.call("GET", "/openapi.json", None).status, 200);

    let bodies = seen_bodies().lock().unwrap().clone();
    assert!(bodies.len() > 5);
    for b in &bodies {
        assert!(
            !b.contains(&secret),
            "a response or CLI output shows the secret: {b}"
        );
    }
    let log = server.log_text();
    assert!(
        log.contains("client secret updated"),
        "the log is being written (trace level)"
    );
    assert!(!log.contains(&secret), "the server log contains the secret");
    let hits = files_containing(&server.data_dir, secret.as_bytes());
    assert!(hits.is_empty(), "the secret is readable in {hits:?}");
    // it is stored, just not readable: the config says so
    assert_eq!(
        p.call("GET", "/v1/partner/custom-oidc", None).json["client_secret_set"],
        true
    );

    // Real sign-ins on the same server with both secret methods (the secret
    // goes out in a form body and, form-encoded then base64, in a Basic
    // header): no secret, code or token reaches the log or disk, in any of
    // those encodings.
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let form = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    for method in ["client_secret_post", "client_secret_basic"] {
        let client_id = format!("{CLIENT_ID}-{method}");
        let q = oidc_partner(&server, &issuer, &client_id, method, Some(CLIENT_SECRET));
        let logged = || {
            server
                .log_text()
                .matches("new user with EVM wallet")
                .count()
        };
        let logged_before = logged();
        let b = Browser::new(&server);
        let (outcome, pk) = b.login(&q, &format!("leak-check-{method}"));
        let login_code = outcome.login_code();
        let s = session(&q, &login_code, &pk.verifier);
        assert_eq!(s.status, 200, "{}", s.text);
        let token = s.json["session_token"].as_str().unwrap().to_string();
        let jwt = crate::kit::http(
            "POST",
            &format!("{}/v1/sessions/jwt", server.url),
            Some(&token),
            None,
        );
        assert_eq!(jwt.status, 200);
        assert_eq!(logged(), logged_before + 1, "the login was logged");
        let log = server.log_text();
        let basic = b64(&format!("{}:{}", form(&client_id), form(CLIENT_SECRET)));
        for (what, needle) in [
            ("client secret", CLIENT_SECRET.to_string()),
            ("client secret, form-encoded", form(CLIENT_SECRET)),
            ("client secret, base64", b64(CLIENT_SECRET)),
            ("Basic credentials", basic),
            ("login code", login_code.clone()),
            ("session token", token.clone()),
            (
                "session JWT",
                jwt.json["token"].as_str().unwrap().to_string(),
            ),
        ] {
            assert!(!log.contains(&needle), "the log contains the {what}");
            let hits = files_containing(&server.data_dir, needle.as_bytes());
            assert!(hits.is_empty(), "the {what} is readable in {hits:?}");
        }
    }
}

async fn services_in(dir: &std::path::Path) -> Services {
    let store = Store::connect(&format!("sqlite://{}", dir.join("k.db").display()))
        .await
        .unwrap();
    Services::new(
        store,
        Arc::new(LocalKeyProvider::open_or_create(&dir.join("master.key")).unwrap()),
        Outbound::new(&OutboundConfig::default()).unwrap(),
        DomainConfig::new("http://127.0.0.1:8080".parse().unwrap()),
    )
}

async fn partner_with_secret(s: &Services, project: &str, secret: &str) -> PartnerAuth {
    let key = s.admin.create_api_key(project, "web").await.unwrap();
    let auth = s
        .configuration
        .authenticate_secret_key(&key.secret_key)
        .await
        .unwrap();
    let put = keystead_proto::PutCustomOidc {
        issuer: Some("https://idp.example.com".into()),
        client_id: Some("c".into()),
        button_label: Some("Acme".into()),
        ..Default::default()
    };
    s.configuration.put_custom_oidc(&auth, &put).await.unwrap();
    s.configuration
        .set_client_secret(&auth, &SecretString::from(secret.to_string()))
        .await
        .unwrap();
    auth
}

#[tokio::test]
async fn swapped_ciphertexts_fail_to_decrypt() {
    let dir = new_dir("swap-");
    let s = services_in(&dir).await;
    let project = s.admin.create_project("Acme").await.unwrap();
    let a = partner_with_secret(&s, &project.id, "secret-of-a").await;
    let b = partner_with_secret(&s, &project.id, "secret-of-b").await;
    let a_id = &a.partner.id;
    let b_id = &b.partner.id;
    assert_eq!(
        s.configuration
            .client_secret(a_id)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "secret-of-a"
    );

    let sa = s
        .ops
        .store()
        .secret(a_id, PURPOSE_OIDC_CLIENT_SECRET)
        .await
        .unwrap()
        .unwrap();
    let sb = s
        .ops
        .store()
        .secret(b_id, PURPOSE_OIDC_CLIENT_SECRET)
        .await
        .unwrap()
        .unwrap();
    s.ops
        .store()
        .overwrite_secret(a_id, PURPOSE_OIDC_CLIENT_SECRET, &sb)
        .await
        .unwrap();
    s.ops
        .store()
        .overwrite_secret(b_id, PURPOSE_OIDC_CLIENT_SECRET, &sa)
        .await
        .unwrap();
    assert!(
        s.configuration.client_secret(a_id).await.is_err(),
        "b's ciphertext opened under a's row"
    );
    assert!(
        s.configuration.client_secret(b_id).await.is_err(),
        "a's ciphertext opened under b's row"
    );

    // swapping back restores both: nothing else was damaged
    s.ops
        .store()
        .overwrite_secret(a_id, PURPOSE_OIDC_CLIENT_SECRET, &sa)
        .await
        .unwrap();
    s.ops
        .store()
        .overwrite_secret(b_id, PURPOSE_OIDC_CLIENT_SECRET, &sb)
        .await
        .unwrap();
    assert_eq!(
        s.configuration
            .client_secret(b_id)
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "secret-of-b"
    );
}

/// Runs `keystead serve` on `data_dir` and expects it to refuse to start.
fn refuses_to_start(data_dir: &std::path::Path) -> String {
    let out = std::process::Command::new(crate::kit::BIN)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KEYSTEAD_LISTEN", "127.0.0.1:0")
        .env("KEYSTEAD_DATA_DIR", data_dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "the server started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_lost_or_wrong_master_key_stops_the_server_instead_of_hiding_secrets() {
    let server = Server::start(Default::default());
    let p = server.new_partner();
    let r = p.call(
        "POST",
        "/v1/wallets",
        Some(json!({"type": "EVM", "userIdentifier": "k1", "userIdentifierType": "CUSTOM_ID"})),
    );
    assert_eq!(r.status, 201);
    let data_dir = server.data_dir.clone();
    drop(server);
    let key = data_dir.join("master.key");
    let original = std::fs::read(&key).unwrap();

    std::fs::remove_file(&key).unwrap();
    let err = refuses_to_start(&data_dir);
    assert!(err.contains("master.key is missing"), "{err}");
    assert!(!key.exists(), "no new key was made");

    let other = new_dir("otherkey-");
    keystead_crypto::local::LocalKeyProvider::open_or_create(&other.join("k")).unwrap();
    std::fs::copy(other.join("k"), &key).unwrap();
    let err = refuses_to_start(&data_dir);
    assert!(err.contains("cannot open the secrets"), "{err}");

    std::fs::write(&key, original).unwrap();
    let again = Server::start(ServerOpts {
        dir: data_dir.parent().map(|d| d.to_path_buf()),
        ..Default::default()
    });
    // with the right key back, the wallet signs again
    let p = p.on(&again);
    let id = r.json["wallet"]["id"].as_str().unwrap();
    let s = p.call(
        "POST",
        &format!("/v1/wallets/{id}/sign-message"),
        Some(json!({"message": "still here"})),
    );
    assert_eq!(s.status, 200, "{}", s.text);
}
