//! Sign-in rules (SPEC §11) through the real IdP: allowed email domains
//! against adversarial emails, a verified email required, sign-up closed.
//! A refused sign-in ends with `sign_in_not_allowed` and writes nothing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use serde_json::{json, Value};

use crate::browser::{basic_partner, login_to_me, put_oidc, Browser};
use crate::kit::{sign_in_rows, Partner, Server};

/// A login hint the test IdP turns into exactly these claims.
fn as_claims(claims: Value) -> String {
    format!("x-{}", B64URL.encode(claims.to_string()))
}

fn sign_in(server: &Server, p: &Partner, claims: Value) -> Option<String> {
    let (outcome, _) = Browser::new(server).login(p, &as_claims(claims));
    outcome.error()
}

#[test]
fn allowed_email_domains_refuse_adversarial_emails_and_write_nothing() {
    let server = Server::start(Default::default());
    let p = basic_partner(&server);
    put_oidc(&p, json!({"allowed_email_domains": ["example.com"]}));
    let shown = p.call("GET", "/v1/partner/custom-oidc", None).json;
    assert_eq!(shown["allowed_email_domains"], json!(["example.com"]));
    let before = sign_in_rows(&server);
    let verified = |e: &str| json!({"email": e, "email_verified": true});
    let mut cases: Vec<Value> = [
        "alice@sub.example.com",
        "alice@example.com.evil.test",
        "alice@evil-example.com",
        "alice@evilexample.com",
        "alice@example.co",
        "alice@example.com.",
        "alice@@example.com",
        "alice@example.com@evil.test",
        "\"alice@example.com\"@evil.test",
        "\"a@b\"@example.com",
        "alice @example.com",
        "alice@xn--exmple-cua.com",
        "alice@exämple.com",
        "alice@еxample.com",
        "ALICE@EXAMPLE.COM.EVIL.TEST",
        "@example.com",
        "alice",
    ]
    .iter()
    .map(|e| verified(e))
    .collect();
    cases.push(json!({"email": "alice@example.com", "email_verified": false}));
    cases.push(json!({"email": "alice@example.com", "email_verified": "false"}));
    cases.push(json!({"email": "alice@example.com", "email_verified": null}));
    cases.push(json!({"email": null, "email_verified": true}));
    for c in &cases {
        assert_eq!(
            sign_in(&server, &p, c.clone()).as_deref(),
            Some("sign_in_not_allowed"),
            "{c}"
        );
    }
    assert_eq!(
        sign_in_rows(&server),
        before,
        "a refused sign-in wrote something"
    );
    // the right domain, verified: in
    assert_eq!(sign_in(&server, &p, verified("Alice@Example.com")), None);
    assert_ne!(sign_in_rows(&server), before);
    // the refusal names the rule, never the email
    let (outcome, _) = Browser::new(&server).login(&p, &as_claims(verified("mallory@evil.test")));
    let said = format!("{outcome:?}");
    assert!(said.contains("allowed email domains"), "{said}");
    assert!(!said.contains("mallory"), "{said}");
}

#[test]
fn a_verified_email_can_be_required() {
    let server = Server::start(Default::default());
    let p = basic_partner(&server);
    put_oidc(&p, json!({"require_verified_email": true}));
    let before = sign_in_rows(&server);
    for c in [
        json!({"email": "u@example.test", "email_verified": false}),
        json!({"email": null}),
    ] {
        assert_eq!(
            sign_in(&server, &p, c.clone()).as_deref(),
            Some("sign_in_not_allowed"),
            "{c}"
        );
    }
    assert_eq!(sign_in_rows(&server), before);
    assert_eq!(
        sign_in(
            &server,
            &p,
            json!({"email": "v@example.test", "email_verified": true})
        ),
        None
    );
}

#[test]
fn closed_sign_up_admits_existing_users_and_email_claims_only() {
    let server = Server::start(Default::default());
    let p = basic_partner(&server);
    let existing = json!({"email": "old@example.test", "email_verified": true, "name": "old"});
    assert_eq!(sign_in(&server, &p, existing.clone()), None);
    let w = p.call(
        "POST",
        "/v1/wallets",
        Some(json!({"type": "EVM", "userIdentifier": "claim@example.test", "userIdentifierType": "EMAIL"})),
    );
    assert_eq!(w.status, 201, "{}", w.text);
    put_oidc(&p, json!({"allow_sign_up": false}));
    assert_eq!(
        p.call("GET", "/v1/partner/custom-oidc", None).json["allow_sign_up"],
        false
    );
    let before = sign_in_rows(&server);
    assert_eq!(
        sign_in(
            &server,
            &p,
            json!({"email": "new@example.test", "email_verified": true})
        )
        .as_deref(),
        Some("sign_in_not_allowed")
    );
    // a claim needs a verified email
    assert_eq!(
        sign_in(
            &server,
            &p,
            json!({"email": "claim@example.test", "email_verified": false})
        )
        .as_deref(),
        Some("sign_in_not_allowed")
    );
    assert_eq!(sign_in_rows(&server), before);
    // the same identity as before (same login, so the same sub)
    assert_eq!(sign_in(&server, &p, existing), None);
    // a verified email that claims the pregenerated wallet: it is the
    // signed-in user's now
    let (_, me) = login_to_me(
        &Browser::new(&server),
        &p,
        &as_claims(json!({"email": "claim@example.test", "email_verified": true})),
    );
    let ids: Vec<&str> = me["wallets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    let pregenerated = w.json["wallet"]["id"].as_str().unwrap();
    assert!(ids.contains(&pregenerated), "{me}");
}
