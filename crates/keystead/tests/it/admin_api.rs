//! Operator routes, health and the OpenAPI document.

use serde_json::json;

use crate::kit::{http, Server};

#[test]
fn admin_routes_need_the_admin_token() {
    let s = Server::shared();
    let r = http(
        "POST",
        &format!("{}/v1/admin/projects", s.url),
        None,
        Some(json!({"name": "x"})),
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.code(), "unauthorized");
    let r = http(
        "POST",
        &format!("{}/v1/admin/projects", s.url),
        Some("kat_wrong"),
        Some(json!({"name": "x"})),
    );
    assert_eq!(r.status, 401);
    // a partner's secret key is not an admin token
    let p = s.new_partner();
    let r = http(
        "POST",
        &format!("{}/v1/admin/projects", s.url),
        Some(&p.secret_key),
        Some(json!({"name": "x"})),
    );
    assert_eq!(r.status, 401);
}

#[test]
fn api_key_secret_is_shown_once_and_stored_hashed() {
    let s = Server::start(Default::default());
    let p = s.new_partner();
    assert!(p.secret_key.starts_with("sk_"));
    assert!(p.publishable_key.starts_with("pk_"));
    let me = p.call("GET", "/v1/partner", None);
    assert_eq!(me.status, 200);
    assert!(!me.text.contains(&p.secret_key));
    let hits = crate::kit::files_containing(&s.data_dir, p.secret_key.as_bytes());
    assert!(hits.is_empty(), "secret key stored in clear: {hits:?}");
    let token_hits =
        crate::kit::files_containing(s.data_dir.parent().unwrap(), s.admin_token.as_bytes());
    // the admin token is only in its own 0600 file
    assert_eq!(
        token_hits,
        vec![s.data_dir.join("admin-token")],
        "{token_hits:?}"
    );
}

#[test]
fn admin_input_errors_are_specific() {
    let s = Server::shared();
    let r = s.admin(
        "POST",
        "/v1/admin/projects/prj_nope/api-keys",
        Some(json!({"name": "web"})),
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "not_found");
    let r = s.admin("POST", "/v1/admin/projects", Some(json!({"name": ""})));
    assert_eq!(r.code(), "invalid_request");
    let r = s.admin(
        "POST",
        "/v1/admin/developers",
        Some(json!({"email": "a@example.com", "password": "short", "project_ids": []})),
    );
    assert_eq!(r.code(), "invalid_request");
    let r = s.admin("POST", "/v1/admin/developers", Some(json!({"email": "b@example.com", "password": "long enough password", "project_ids": ["prj_nope"]})));
    assert_eq!(r.code(), "not_found");
    let r = s.admin("POST", "/v1/admin/developers", Some(json!({"email": "b@example.com", "password": "long enough password", "project_ids": []})));
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(!r.text.contains("long enough password"));
    let r = s.admin("POST", "/v1/admin/developers", Some(json!({"email": "B@example.com", "password": "long enough password", "project_ids": []})));
    assert_eq!(r.status, 409);
}

#[test]
fn health_ready_openapi_and_unknown_routes() {
    let s = Server::shared();
    assert_eq!(
        http("GET", &format!("{}/healthz", s.url), None, None).json["status"],
        "ok"
    );
    assert_eq!(
        http("GET", &format!("{}/readyz", s.url), None, None).json["status"],
        "ready"
    );
    let doc = http("GET", &format!("{}/openapi.json", s.url), None, None).json;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/v1/admin/projects",
        "/v1/admin/projects/{id}/api-keys",
        "/v1/admin/developers",
        "/v1/partner",
        "/v1/partner/custom-oidc",
        "/v1/partner/custom-oidc/client-secret",
        "/v1/partner/custom-oidc/verify",
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/metrics",
        "/v1/sdk/config",
        "/auth/custom_oidc/start",
        "/auth/custom_oidc/callback",
        "/v1/sessions",
        "/v1/me",
        "/v1/sessions/jwt",
        "/v1/sessions/current",
        "/.well-known/jwks.json",
        "/v1/wallets",
        "/v1/wallets/{id}",
        "/v1/wallets/{id}/sign-message",
        "/v1/wallets/{id}/sign-typed-data",
        "/v1/wallets/{id}/sign-transaction",
        "/v1/wallets/{id}/sign-raw",
        "/v1/me/wallets",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from openapi.json"
        );
    }
    let r = http("GET", &format!("{}/v1/nope", s.url), None, None);
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "not_found");
}

#[test]
fn first_start_prints_where_the_admin_token_is() {
    let s = Server::start(Default::default());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(s.data_dir.join("admin-token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let mode = std::fs::metadata(s.data_dir.join("master.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn postgres_backend_serves_the_same_api() {
    let db = crate::kit::postgres_db();
    let s = Server::start(crate::kit::ServerOpts {
        database_url: Some(db),
        ..Default::default()
    });
    let p = s.new_partner();
    let r = p.call("PUT", "/v1/partner/custom-oidc", Some(json!({
        "issuer": crate::kit::idp().issuer("main"), "client_id": "keystead-test-client_secret_post", "button_label": "Acme",
    })));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        p.call(
            "PUT",
            "/v1/partner/custom-oidc/client-secret",
            Some(json!({"client_secret": crate::kit::CLIENT_SECRET}))
        )
        .status,
        204
    );
    let v = p.call("POST", "/v1/partner/custom-oidc/verify", None);
    assert_eq!(v.json["ok"], true, "{}", v.text);
    let g = p.call("GET", "/v1/partner/custom-oidc", None);
    assert_eq!(g.json["last_verification"]["ok"], true);
    assert_eq!(g.json["client_secret_set"], true);
}

#[test]
fn keystead_toml_is_read_and_the_environment_wins() {
    let s = Server::start(crate::kit::ServerOpts {
        public_url_env: false,
        toml: Some(
            "public_url = \"https://auth.from-toml.example\"\n[wallets]\nrate_limit_per_second = 0.01\nrate_limit_burst = 50\n",
        ),
        env: vec![("KEYSTEAD_WALLETS__RATE_LIMIT_BURST", "1")],
        ..Default::default()
    });
    let p = s.new_partner();
    let r = p.call(
        "PUT",
        "/v1/partner/custom-oidc",
        Some(json!({
            "issuer": "https://idp.example.com", "client_id": "c", "button_label": "Acme",
        })),
    );
    assert_eq!(
        r.json["redirect_uri"], "https://auth.from-toml.example/auth/custom_oidc/callback",
        "public_url from keystead.toml"
    );
    // burst 1 from the environment beats 50 from the file
    assert_eq!(p.call("GET", "/v1/wallets/wal_x", None).status, 404);
    assert_eq!(p.call("GET", "/v1/wallets/wal_x", None).status, 429);
}
