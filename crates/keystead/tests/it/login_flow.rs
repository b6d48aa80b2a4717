//! Full sign-ins against oidc-provider over HTTPS: one per token endpoint
//! auth method and per ID token algorithm, ending in a session whose
//! `/v1/me` shows the EVM wallet; a second sign-in finds the same user.

use serde_json::{json, Value};

use crate::browser::{basic_partner, login_to_me, oidc_partner, Browser};
use crate::kit::{http, idp, unique, Server, CLIENT_ID, CLIENT_SECRET};

fn assert_evm_wallet(w: &Value) {
    let addr = w["address"].as_str().unwrap();
    assert_eq!(w["type"], "EVM");
    assert_eq!(w["status"], "READY");
    assert!(addr.starts_with("0x") && addr.len() == 42, "{addr}");
    assert!(
        addr[2..].chars().any(|c| c.is_ascii_uppercase())
            || addr[2..].chars().all(|c| c.is_ascii_digit()),
        "EIP-55 mixed case: {addr}"
    );
    let pk = w["publicKey"].as_str().unwrap();
    assert!(
        pk.starts_with("0x02") || pk.starts_with("0x03"),
        "compressed secp256k1: {pk}"
    );
    assert_eq!(pk.len(), 68);
}

fn full_login_twice(client_id: &str, method: &str) {
    let server = Server::shared();
    let issuer = idp().issuer("main");
    let secret = (method != "none").then_some(CLIENT_SECRET);
    let p = oidc_partner(server, &issuer, client_id, method, secret);
    let hint = unique("user-");

    let (_, me) = login_to_me(&Browser::new(server), &p, &hint);
    let user_id = me["user"]["id"].as_str().unwrap().to_string();
    let identity = &me["user"]["identities"][0];
    assert_eq!(identity["issuer"], issuer.as_str());
    assert_eq!(identity["sub"], hint.as_str());
    assert_eq!(identity["email"], format!("{hint}@example.test"));
    let wallets = me["wallets"].as_array().unwrap();
    assert_eq!(wallets.len(), 1, "{me}");
    assert_evm_wallet(&wallets[0]);

    // A second login, in a new browser: same user, same wallet.
    let (_, again) = login_to_me(&Browser::new(server), &p, &hint);
    assert_eq!(again["user"]["id"], user_id.as_str());
    assert_eq!(again["wallets"], me["wallets"]);
}

#[test]
fn login_with_client_secret_basic() {
    full_login_twice(
        &format!("{CLIENT_ID}-client_secret_basic"),
        "client_secret_basic",
    );
}

#[test]
fn login_with_client_secret_post() {
    full_login_twice(
        &format!("{CLIENT_ID}-client_secret_post"),
        "client_secret_post",
    );
}

#[test]
fn login_with_public_client_none() {
    full_login_twice(&format!("{CLIENT_ID}-none"), "none");
}

#[test]
fn login_with_es256_id_tokens() {
    full_login_twice(&format!("{CLIENT_ID}-ES256"), "client_secret_basic");
}

#[test]
fn login_with_eddsa_id_tokens() {
    full_login_twice(&format!("{CLIENT_ID}-EdDSA"), "client_secret_basic");
}

#[test]
fn login_with_ps256_id_tokens() {
    full_login_twice(&format!("{CLIENT_ID}-PS256"), "client_secret_basic");
}

#[test]
fn unverified_email_is_not_stored() {
    let server = Server::shared();
    let p = basic_partner(server);
    let (_, me) = login_to_me(&Browser::new(server), &p, &unique("unverified-carol-"));
    assert_eq!(me["user"]["identities"][0]["email"], Value::Null);
}

#[test]
fn session_jwt_verifies_with_the_published_jwks_and_logout_ends_the_session() {
    let server = Server::shared();
    let p = oidc_partner(
        server,
        &idp().issuer("main"),
        &format!("{CLIENT_ID}-client_secret_post"),
        "client_secret_post",
        Some(CLIENT_SECRET),
    );
    let (token, me) = login_to_me(&Browser::new(server), &p, &unique("dave-"));
    let r = http(
        "POST",
        &format!("{}/v1/sessions/jwt", server.url),
        Some(&token),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let jwt = r.json["token"].as_str().unwrap();
    let kid = r.json["keyId"].as_str().unwrap();
    let jwks = http(
        "GET",
        &format!("{}/.well-known/jwks.json", server.url),
        None,
        None,
    )
    .json;
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("kid published");
    assert_eq!(key["kty"], "EC");
    assert!(key.get("d").is_none(), "no private part in the JWKS");
    let dk = jsonwebtoken::DecodingKey::from_ec_components(
        key["x"].as_str().unwrap(),
        key["y"].as_str().unwrap(),
    )
    .unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&[p.partner_id.as_str()]);
    v.set_issuer(&[crate::kit::PUBLIC_URL]);
    let claims = jsonwebtoken::decode::<Value>(jwt, &dk, &v).unwrap().claims;
    assert_eq!(claims["sub"], me["user"]["id"]);
    assert_eq!(
        claims["data"]["wallets"][0]["address"],
        me["wallets"][0]["address"]
    );
    assert_eq!(claims["data"]["wallets"][0]["id"], me["wallets"][0]["id"]);
    // 30 minutes, well inside the 7-day session; the session id is there
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        30 * 60,
        "{claims}"
    );
    let sid = claims["sid"].as_str().expect("sid claim").to_string();
    assert!(sid.starts_with("ses_"), "{sid}");
    assert!(!jwt.contains(&token) && !sid.contains(&token[4..]));
    // a fresh JWT of the same session carries the same sid
    let again = http(
        "POST",
        &format!("{}/v1/sessions/jwt", server.url),
        Some(&token),
        None,
    );
    let claims2 = jsonwebtoken::decode::<Value>(again.json["token"].as_str().unwrap(), &dk, &v)
        .unwrap()
        .claims;
    assert_eq!(claims2["sid"], sid.as_str());
    // a tampered token does not verify
    let mut bad = jwt.to_string();
    bad.pop();
    bad.push(if jwt.ends_with('A') { 'B' } else { 'A' });
    assert!(jsonwebtoken::decode::<Value>(&bad, &dk, &v).is_err());

    let r = http(
        "DELETE",
        &format!("{}/v1/sessions/current", server.url),
        Some(&token),
        None,
    );
    assert_eq!(r.status, 204);
    let r = http("GET", &format!("{}/v1/me", server.url), Some(&token), None);
    assert_eq!(r.status, 401);
    assert_eq!(r.code(), "unauthorized");
    // after logout no fresh JWT is issued
    let r = http(
        "POST",
        &format!("{}/v1/sessions/jwt", server.url),
        Some(&token),
        None,
    );
    assert_eq!(r.status, 401);
}

/// What a browser sends before a cross-origin POST with a bearer token.
fn preflight(url: &str, method: &str) -> (u16, reqwest::header::HeaderMap, String) {
    crate::kit::runtime().block_on(async {
        let r = reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, url)
            .header("origin", "https://app.example.test")
            .header("access-control-request-method", method)
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
            .await
            .unwrap();
        let headers = r.headers().clone();
        (r.status().as_u16(), headers, r.text().await.unwrap())
    })
}

#[test]
fn browser_routes_answer_cors_preflights_and_others_do_not() {
    let server = Server::shared();
    for (path, method) in [
        ("/v1/sessions", "POST"),
        ("/v1/sessions/jwt", "POST"),
        ("/v1/sessions/current", "DELETE"),
        ("/v1/me", "GET"),
        ("/v1/me/wallets", "POST"),
        ("/v1/sdk/config", "GET"),
        ("/v1/wallets/wal_x/sign-message", "POST"),
        ("/v1/wallets/wal_x", "GET"),
    ] {
        let (status, h, body) = preflight(&format!("{}{path}", server.url), method);
        assert!((200..300).contains(&status), "{path}: {status} {body}");
        assert_eq!(h["access-control-allow-origin"], "*", "{path}");
        let methods = h["access-control-allow-methods"].to_str().unwrap();
        assert!(methods.contains(method), "{path}: {methods}");
        let headers = h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            headers.contains("authorization") && headers.contains("content-type"),
            "{path}: {headers}"
        );
        assert!(
            h.get("access-control-allow-credentials").is_none(),
            "{path}"
        );
    }
    // a wrong method is still the JSON 405, with or without CORS
    let r = http("PUT", &format!("{}/v1/me", server.url), None, None);
    assert_eq!((r.status, r.code()), (405, "invalid_request"), "{}", r.text);
    let r = http(
        "PUT",
        &format!("{}/v1/partner/custom-oidc/verify", server.url),
        None,
        None,
    );
    assert_eq!((r.status, r.code()), (405, "invalid_request"), "{}", r.text);
    // partner and admin routes are for backends: no CORS grant
    let (status, h, _) = preflight(&format!("{}/v1/partner", server.url), "GET");
    assert!(
        h.get("access-control-allow-origin").is_none(),
        "{status} {h:?}"
    );
}

#[test]
fn sdk_config_shows_enabled_methods_with_cors() {
    let server = Server::shared();
    let p = oidc_partner(
        server,
        &idp().issuer("main"),
        &format!("{CLIENT_ID}-none"),
        "none",
        None,
    );
    let url = format!("{}/v1/sdk/config?api_key={}", server.url, p.publishable_key);
    let origin = || ("origin", "https://app.example.test".to_string());
    let r = crate::kit::http_raw("GET", &url, Some(origin()), None);
    assert_eq!(
        r.json,
        json!({"authConfig": {"methods": ["CUSTOM_OIDC"], "oidcConfig": {"enabled": true, "buttonLabel": "Sign in with Acme"}}})
    );
    // the CORS answer a browser needs, for the simple request and a preflight
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let pre = crate::kit::http_headers(
        "OPTIONS",
        &url,
        &[origin(), ("access-control-request-method", "GET".into())],
        None,
    );
    assert!(pre.status < 300, "preflight answered {}", pre.status);
    assert_eq!(pre.header("access-control-allow-origin"), Some("*"));
    assert!(pre
        .header("access-control-allow-methods")
        .unwrap_or_default()
        .contains("GET"));
    let off = server.new_partner();
    let r = http(
        "GET",
        &format!(
            "{}/v1/sdk/config?api_key={}",
            server.url, off.publishable_key
        ),
        None,
        None,
    );
    assert_eq!(r.json, json!({"authConfig": {"methods": []}}));
    let r = http(
        "GET",
        &format!("{}/v1/sdk/config?api_key=pk_nope", server.url),
        None,
        None,
    );
    assert_eq!(r.status, 401);
}

#[test]
fn metrics_count_logins_sessions_and_wallets() {
    let server = Server::start(Default::default());
    let p = oidc_partner(
        &server,
        &idp().issuer("main"),
        &format!("{CLIENT_ID}-none"),
        "none",
        None,
    );
    let (token, _) = login_to_me(&Browser::new(&server), &p, "metrics-user");
    let r = http(
        "POST",
        &format!("{}/v1/me/wallets", server.url),
        Some(&token),
        Some(json!({"type": "SOLANA"})),
    );
    assert_eq!(r.status, 201);
    let url = format!("{}/metrics", server.url);
    let text = crate::kit::http_raw("GET", &url, None, None).text;
    assert!(
        text.contains("keystead_logins_total{result=\"ok\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("keystead_sessions_created_total 1\n"),
        "{text}"
    );
    assert!(
        text.contains("keystead_wallets_created_total{type=\"EVM\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("keystead_wallets_created_total{type=\"SOLANA\"} 1\n"),
        "{text}"
    );
    assert!(
        !text.contains(&token) && !text.contains(&p.partner_id),
        "no identifiers in metrics"
    );
}
