//! Test logins (SPEC §11) against oidc-provider: the whole sign-in, every
//! check named, on a disabled config, and nothing of a real sign-in written.

use serde_json::{json, Value};

use crate::browser::{login_to_me, oidc_partner, Browser};
use crate::kit::{idp, runtime, Partner, Server, CLIENT_ID, CLIENT_SECRET};

fn rows(server: &Server) -> Vec<i64> {
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

/// Creates a test login, signs in at the IdP as `hint`, returns the result.
fn test_login(server: &Server, p: &Partner, hint: &str) -> Value {
    let created = p.call(
        "POST",
        "/v1/partner/custom-oidc/test-logins",
        Some(json!({})),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["test_id"].as_str().unwrap().to_string();
    let pending = p.call(
        "GET",
        &format!("/v1/partner/custom-oidc/test-logins/{id}"),
        None,
    );
    assert_eq!(pending.json["status"], "pending");
    let url = format!(
        "{}&login_hint={hint}",
        created.json["authorization_url"].as_str().unwrap()
    );
    let browser = Browser::new(server);
    let (_, landed) = browser.follow_until(&url, |u| u.contains("/auth/custom_oidc/test-result"));
    assert!(
        landed.is_some(),
        "the browser did not reach the result page"
    );
    let r = p.call(
        "GET",
        &format!("/v1/partner/custom-oidc/test-logins/{id}"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    r.json
}

fn status_of<'a>(r: &'a Value, name: &str) -> &'a str {
    r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {r}"))["status"]
        .as_str()
        .unwrap()
}

#[test]
fn a_test_login_on_a_disabled_config_passes_every_check_and_writes_nothing() {
    let server = Server::start(Default::default());
    let issuer = idp().issuer("main");
    let client = format!("{CLIENT_ID}-client_secret_basic");
    let p = oidc_partner(
        &server,
        &issuer,
        &client,
        "client_secret_basic",
        Some(CLIENT_SECRET),
    );
    let off = p.call(
        "PUT",
        "/v1/partner/custom-oidc",
        Some(json!({"issuer": issuer, "client_id": client, "button_label": "Acme", "enabled": false})),
    );
    assert_eq!(off.status, 200, "{}", off.text);
    let before = rows(&server);
    let hint = keystead_crypto::random_token("tl-")[..13].to_string();
    let r = test_login(&server, &p, &hint);
    assert_eq!(r["status"], "passed", "{r:#}");
    let names: Vec<&str> = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 14, "{names:?}");
    for c in r["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "pass", "{c}");
    }
    assert_eq!(r["outcome"]["user"], "new");
    assert_eq!(r["claims"]["sub"], hint.as_str());
    assert_eq!(r["claim_sources"]["sub"], "id_token");
    assert!(!r.to_string().contains("eyJ"), "no raw token in the result");
    // 10 more: still nothing written
    for _ in 0..10 {
        assert_eq!(test_login(&server, &p, &hint)["status"], "passed");
    }
    assert_eq!(
        rows(&server),
        before,
        "a test login wrote a real sign-in's rows"
    );
    // after a real sign-in, the same identity is "existing" with its wallet
    let on = p.call(
        "PUT",
        "/v1/partner/custom-oidc",
        Some(
            json!({"issuer": issuer, "client_id": client, "button_label": "Acme", "enabled": true}),
        ),
    );
    assert_eq!(on.status, 200);
    let (_, me) = login_to_me(&Browser::new(&server), &p, &hint);
    let r = test_login(&server, &p, &hint);
    assert_eq!(r["outcome"]["user"], "existing", "{r:#}");
    assert_eq!(r["outcome"]["user_id"], me["user"]["id"]);
    assert_eq!(
        r["outcome"]["wallets"][0]["address"],
        me["wallets"][0]["address"]
    );
    // the result page lists the checks, without the claims
    let page = crate::kit::http(
        "GET",
        &format!(
            "{}/auth/custom_oidc/test-result?test_id={}",
            server.url,
            r["test_id"].as_str().unwrap()
        ),
        None,
        None,
    );
    assert_eq!(page.status, 200);
    assert!(page.text.contains("id_token_times"), "{}", page.text);
    assert!(!page.text.contains(&hint), "claims on the page");
}

#[test]
fn a_wrong_secret_fails_token_exchange_and_skips_the_rest() {
    let server = Server::start(Default::default());
    let issuer = idp().issuer("main");
    let client = format!("{CLIENT_ID}-client_secret_basic");
    let p = oidc_partner(
        &server,
        &issuer,
        &client,
        "client_secret_basic",
        Some(CLIENT_SECRET),
    );
    let r = p.call(
        "PUT",
        "/v1/partner/custom-oidc/client-secret",
        Some(json!({"client_secret": "not-the-secret"})),
    );
    assert_eq!(r.status, 204);
    let r = test_login(&server, &p, "wrong-secret-user");
    assert_eq!(r["status"], "failed", "{r:#}");
    for name in ["discovery", "authorization_response", "iss_parameter"] {
        assert_eq!(status_of(&r, name), "pass", "{name}: {r:#}");
    }
    assert_eq!(status_of(&r, "token_exchange"), "fail");
    let te = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "token_exchange")
        .unwrap();
    assert!(te["hint"].is_string(), "{te}");
    for name in ["id_token_signature", "email", "sign_in_rules"] {
        assert_eq!(status_of(&r, name), "skip", "{name}: {r:#}");
    }
    // another partner cannot read it
    let other = server.new_partner();
    let id = r["test_id"].as_str().unwrap();
    assert_eq!(
        other
            .call(
                "GET",
                &format!("/v1/partner/custom-oidc/test-logins/{id}"),
                None
            )
            .status,
        404
    );
}
