//! SPEC §3 through the HTTP API: each rule has a negative test with its own
//! code, and a refused request changes nothing that was stored.

use serde_json::{json, Value};

use crate::kit::{http_raw, Partner, Server};

const PATH: &str = "/v1/partner/custom-oidc";

fn valid() -> Value {
    json!({
        "issuer": "https://idp.example.com/tenant-123",
        "client_id": "client-1",
        "button_label": "Sign in with Acme",
    })
}

fn configured() -> (Partner, Value) {
    let p = Server::shared().new_partner();
    let r = p.call("PUT", PATH, Some(valid()));
    assert_eq!(r.status, 200, "{}", r.text);
    (p, r.json)
}

fn with(field: &str, value: Value) -> Value {
    let mut b = valid();
    if value.is_null() {
        b.as_object_mut().unwrap().remove(field);
    } else {
        b[field] = value;
    }
    b
}

/// PUT `body`, expect 400 `code`, and the stored config to be as before.
fn refused(p: &Partner, before: &Value, body: Value, code: &str) {
    let r = p.call("PUT", PATH, Some(body.clone()));
    assert_eq!(r.status, 400, "{body} -> {}", r.text);
    assert_eq!(r.code(), code, "{body} -> {}", r.text);
    let msg = r.json["error"]["message"].as_str().unwrap();
    assert!(msg.len() > 10, "the message says what to change: {msg}");
    let after = p.call("GET", PATH, None);
    assert_eq!(
        &after.json, before,
        "a refused PUT changed the stored config"
    );
}

#[test]
fn get_before_put_is_not_configured() {
    let p = Server::shared().new_partner();
    let r = p.call("GET", PATH, None);
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "custom_oidc_not_configured");
}

#[test]
fn first_put_applies_defaults_and_is_disabled() {
    let (_, v) = configured();
    assert_eq!(v["enabled"], false);
    assert_eq!(v["scopes"], "openid email profile");
    assert_eq!(v["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(v["issuer"], "https://idp.example.com/tenant-123");
    assert_eq!(v["client_secret_set"], false);
    assert_eq!(v["client_secret_updated_at"], Value::Null);
    assert_eq!(v["last_verification"], Value::Null);
    assert!(v["redirect_uri"]
        .as_str()
        .unwrap()
        .ends_with("/auth/custom_oidc/callback"));
}

#[test]
fn issuer_is_stored_exactly_including_a_trailing_slash() {
    let (p, _) = configured();
    let r = p.call(
        "PUT",
        PATH,
        Some(with("issuer", json!("https://idp.example.com/"))),
    );
    assert_eq!(r.json["issuer"], "https://idp.example.com/");
}

#[test]
fn rejects_bad_issuers() {
    let (p, before) = configured();
    for (issuer, code) in [
        (json!("http://idp.example.com"), "issuer_not_https"),
        (json!("ftp://idp.example.com"), "issuer_not_https"),
        (json!("https://idp.example.com?tenant=1"), "issuer_invalid"),
        (json!("https://idp.example.com/#frag"), "issuer_invalid"),
        (json!("https://user:pass@idp.example.com"), "issuer_invalid"),
        (json!("https://user@idp.example.com"), "issuer_invalid"),
        (json!("idp.example.com"), "issuer_invalid"),
        (json!("/relative/path"), "issuer_invalid"),
        (json!(""), "issuer_invalid"),
        (json!("https://idp.example.com/a b"), "issuer_invalid"),
        (Value::Null, "issuer_invalid"),
    ] {
        refused(&p, &before, with("issuer", issuer), code);
    }
}

#[test]
fn rejects_bad_client_ids() {
    let (p, before) = configured();
    for id in [
        json!(""),
        json!("c".repeat(256)),
        json!("abc\ndef"),
        json!("tab\there"),
        Value::Null,
    ] {
        refused(&p, &before, with("client_id", id), "client_id_invalid");
    }
    let r = p.call("PUT", PATH, Some(with("client_id", json!("c".repeat(255)))));
    assert_eq!(r.status, 200);
}

#[test]
fn rejects_bad_scopes() {
    let (p, before) = configured();
    for s in [
        "email profile",
        "",
        "openid em\"ail",
        "openid\temail",
        "openid emåil",
        "openid back\\slash",
    ] {
        refused(&p, &before, with("scopes", json!(s)), "scopes_invalid");
    }
    let r = p.call(
        "PUT",
        PATH,
        Some(with("scopes", json!("openid  email openid"))),
    );
    assert_eq!(r.json["scopes"], "openid email");
}

#[test]
fn rejects_unknown_auth_methods() {
    let (p, before) = configured();
    for m in [
        "private_key_jwt",
        "client_secret_jwt",
        "",
        "CLIENT_SECRET_POST",
    ] {
        refused(
            &p,
            &before,
            with("token_endpoint_auth_method", json!(m)),
            "auth_method_invalid",
        );
    }
}

#[test]
fn rejects_bad_button_labels() {
    let (p, before) = configured();
    for l in [
        json!(""),
        json!("   "),
        json!("x".repeat(65)),
        json!("two\nlines"),
        Value::Null,
    ] {
        refused(&p, &before, with("button_label", l), "button_label_invalid");
    }
    let r = p.call(
        "PUT",
        PATH,
        Some(with("button_label", json!("é".repeat(64)))),
    );
    assert_eq!(r.status, 200, "64 characters, not bytes");
}

#[test]
fn enabling_needs_a_secret_for_secret_methods() {
    let (p, before) = configured();
    refused(
        &p,
        &before,
        with("enabled", json!(true)),
        "client_secret_required",
    );
    let mut b = with("enabled", json!(true));
    b["token_endpoint_auth_method"] = json!("client_secret_basic");
    refused(&p, &before, b, "client_secret_required");

    let r = p.call(
        "PUT",
        "/v1/partner/custom-oidc/client-secret",
        Some(json!({"client_secret": "s3cret"})),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    let r = p.call("PUT", PATH, Some(with("enabled", json!(true))));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["enabled"], true);
    // a later PUT without `enabled` keeps it
    let r = p.call("PUT", PATH, Some(with("button_label", json!("Other"))));
    assert_eq!(r.json["enabled"], true);
    // removing the secret disables a method that needs one
    let r = p.call("DELETE", "/v1/partner/custom-oidc/client-secret", None);
    assert_eq!(r.status, 204);
    let r = p.call("GET", PATH, None);
    assert_eq!(r.json["enabled"], false);
    assert_eq!(r.json["client_secret_set"], false);
}

#[test]
fn method_none_refuses_a_stored_secret() {
    let (p, _) = configured();
    let r = p.call(
        "PUT",
        "/v1/partner/custom-oidc/client-secret",
        Some(json!({"client_secret": "s3cret"})),
    );
    assert_eq!(r.status, 204);
    let before = p.call("GET", PATH, None).json;
    refused(
        &p,
        &before,
        with("token_endpoint_auth_method", json!("none")),
        "client_secret_not_allowed",
    );

    // without the secret, none can be enabled, and then takes no secret
    assert_eq!(
        p.call("DELETE", "/v1/partner/custom-oidc/client-secret", None)
            .status,
        204
    );
    let mut b = with("token_endpoint_auth_method", json!("none"));
    b["enabled"] = json!(true);
    let r = p.call("PUT", PATH, Some(b));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["enabled"], true);
    let before = p.call("GET", PATH, None).json;
    let r = p.call(
        "PUT",
        "/v1/partner/custom-oidc/client-secret",
        Some(json!({"client_secret": "s3cret"})),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "client_secret_not_allowed");
    assert_eq!(p.call("GET", PATH, None).json, before);
}

#[test]
fn rejects_bad_client_secret_bodies_without_echoing_them() {
    let (p, before) = configured();
    for body in [
        json!({"client_secret": ""}),
        json!({"client_secret": "line\n"}),
    ] {
        let r = p.call("PUT", "/v1/partner/custom-oidc/client-secret", Some(body));
        assert_eq!(r.status, 400);
        assert_eq!(r.code(), "client_secret_invalid");
    }
    let r = p.call(
        "PUT",
        "/v1/partner/custom-oidc/client-secret",
        Some(json!({"client_secret": 424242424242u64})),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "invalid_request");
    assert!(
        !r.text.contains("424242424242"),
        "the rejection must not quote the value: {}",
        r.text
    );
    assert_eq!(p.call("GET", PATH, None).json, before);
}

#[test]
fn rejects_unknown_fields_and_malformed_json() {
    let (p, before) = configured();
    refused(
        &p,
        &before,
        with("client_secret", json!("nope")),
        "invalid_request",
    );
    refused(
        &p,
        &before,
        with("enabled", json!("yes")),
        "invalid_request",
    );
    let r = http_raw(
        "PUT",
        &format!("{}{PATH}", p.server),
        Some(("x-api-key", p.secret_key.clone())),
        Some("{not json".into()),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "invalid_request");
}

#[test]
fn secret_key_works_as_x_api_key_and_bearer_only_when_valid() {
    let (p, _) = configured();
    let url = format!("{}{PATH}", p.server);
    assert_eq!(
        http_raw("GET", &url, Some(("x-api-key", p.secret_key.clone())), None).status,
        200
    );
    assert_eq!(
        http_raw(
            "GET",
            &url,
            Some(("authorization", format!("Bearer {}", p.secret_key))),
            None
        )
        .status,
        200
    );
    for h in [
        None,
        Some(("x-api-key", "sk_wrong".to_string())),
        Some(("x-api-key", p.publishable_key.clone())),
        Some(("authorization", format!("Basic {}", p.secret_key))),
    ] {
        let r = http_raw("GET", &url, h, None);
        assert_eq!(r.status, 401, "{}", r.text);
        assert_eq!(r.code(), "unauthorized");
    }
}

#[test]
fn partners_are_isolated() {
    let (a, _) = configured();
    let b = Server::shared().new_partner();
    assert_eq!(b.call("GET", PATH, None).status, 404);
    assert_eq!(
        b.call("DELETE", PATH, None).code(),
        "custom_oidc_not_configured"
    );
    assert_eq!(a.call("GET", PATH, None).status, 200);
}

#[test]
fn return_urls_are_validated_and_refusal_changes_nothing() {
    let p = Server::shared().new_partner();
    let ok = json!({"allowed_return_urls": ["https://app.example.com/cb", "http://localhost:3000/cb", "myapp://callback"]});
    let r = p.call("PATCH", "/v1/partner", Some(ok));
    assert_eq!(r.status, 200, "{}", r.text);
    let before = p.call("GET", "/v1/partner", None).json;
    assert_eq!(before["partner_id"], p.partner_id.as_str());
    assert_eq!(before["project_id"], p.project_id.as_str());
    for bad in [
        "javascript:alert(1)",
        "//evil.example",
        "http://evil.example/cb",
        "https://a.example/cb#frag",
        "data:text/html,hi",
    ] {
        let r = p.call(
            "PATCH",
            "/v1/partner",
            Some(json!({"allowed_return_urls": ["https://ok.example/cb", bad]})),
        );
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert_eq!(r.code(), "return_url_invalid", "{bad}");
        assert_eq!(p.call("GET", "/v1/partner", None).json, before);
    }
}

#[test]
fn delete_removes_config_and_secret() {
    let (p, _) = configured();
    assert_eq!(
        p.call(
            "PUT",
            "/v1/partner/custom-oidc/client-secret",
            Some(json!({"client_secret": "x"}))
        )
        .status,
        204
    );
    assert_eq!(p.call("DELETE", PATH, None).status, 204);
    assert_eq!(p.call("GET", PATH, None).status, 404);
    // a new config starts without a secret
    let r = p.call("PUT", PATH, Some(valid()));
    assert_eq!(r.json["client_secret_set"], false);
}

#[test]
fn verify_before_configure_is_not_configured() {
    let p = Server::shared().new_partner();
    let r = p.call("POST", "/v1/partner/custom-oidc/verify", None);
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "custom_oidc_not_configured");
}
