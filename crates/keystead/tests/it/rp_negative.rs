//! The OpenID Foundation RP certification cases, played by the misbehaving
//! provider in tests/idp/bad.mjs: each scenario's outcome and error code.

use crate::browser::{login_to_me, oidc_partner, session, Browser};
use crate::kit::{bad_idp, Server, BAD_CLIENT_ID, BAD_CLIENT_SECRET, PUBLIC_URL};

fn partner_for(scenario: &str) -> crate::kit::Partner {
    oidc_partner(
        Server::shared(),
        &bad_idp().issuer(scenario),
        BAD_CLIENT_ID,
        "client_secret_basic",
        Some(BAD_CLIENT_SECRET),
    )
}

fn outcome(scenario: &str) -> crate::browser::Outcome {
    let p = partner_for(scenario);
    Browser::new(Server::shared()).login(&p, "bad-user-1").0
}

#[test]
fn accepted_scenarios_sign_in() {
    for scenario in [
        "good-rs256",
        "good-es256",
        "multi-aud-azp-ok",
        "kid-absent-one-key",
        "userinfo-needed",
        // 30 s of IdP clock skew is within the 60 s leeway
        "clock-ahead-30",
    ] {
        let p = partner_for(scenario);
        let (_, me) = login_to_me(&Browser::new(Server::shared()), &p, "bad-user-1");
        assert_eq!(
            me["user"]["identities"][0]["sub"], "bad-user-1",
            "{scenario}"
        );
        assert_eq!(
            me["user"]["identities"][0]["email"], "bad-user-1@example.test",
            "{scenario}: {me}"
        );
    }
}

#[test]
fn invalid_id_tokens_are_rejected() {
    for scenario in [
        "bad-sig-rs256",
        "bad-sig-es256",
        "alg-none",
        "hs256-client-secret",
        "iss-mismatch",
        "missing-sub",
        "wrong-aud",
        "missing-aud",
        "multi-aud-no-azp",
        "missing-iat",
        "expired",
        "iat-future",
        // 90 s of IdP clock skew is beyond the 60 s leeway
        "clock-ahead-90",
        "nonce-mismatch",
        "missing-nonce",
        "kid-absent-many-keys",
        "jwks-enc-only",
        "userinfo-sub-mismatch",
    ] {
        let o = outcome(scenario);
        assert_eq!(
            o.error().as_deref(),
            Some("id_token_invalid"),
            "{scenario}: {o:?}"
        );
        assert_eq!(
            o.param("state").as_deref(),
            Some("app-state-123"),
            "{scenario}: the app's state comes back"
        );
        assert!(o.param("login_code").is_none(), "{scenario}");
        let desc = o.param("error_description").unwrap();
        assert!(desc.len() > 15, "{scenario}: a sentence: {desc}");
    }
}

#[test]
fn rfc9207_iss_mismatch_is_rejected() {
    let o = outcome("iss-param-mismatch");
    assert_eq!(o.error().as_deref(), Some("idp_error"), "{o:?}");
    assert!(o.param("error_description").unwrap().contains("iss"));
}

#[test]
fn discovery_issuer_mismatch_stops_before_the_idp() {
    for scenario in [
        "discovery-issuer-mismatch",
        "discovery-issuer-trailing-slash",
    ] {
        let o = outcome(scenario);
        match &o {
            crate::browser::Outcome::Page {
                status,
                error_header,
                body,
            } => {
                assert_eq!(
                    error_header.as_deref(),
                    Some("discovery_failed"),
                    "{scenario}"
                );
                assert_eq!(*status, 502);
                assert!(body.contains("discovery_failed"));
            }
            other => panic!("{scenario}: expected an error page, got {other:?}"),
        }
    }
}

#[test]
fn idp_errors_are_actionable() {
    let o = outcome("idp-error-redirect-uri");
    assert_eq!(o.error().as_deref(), Some("idp_error"));
    let desc = o.param("error_description").unwrap();
    assert!(
        desc.contains(&format!("{PUBLIC_URL}/auth/custom_oidc/callback")),
        "names the redirect URI to register: {desc}"
    );

    let o = outcome("auth-error-access-denied");
    assert_eq!(o.error().as_deref(), Some("idp_error"));
    assert!(o
        .param("error_description")
        .unwrap()
        .contains("access_denied"));

    let o = outcome("token-invalid-client");
    assert_eq!(o.error().as_deref(), Some("token_exchange_failed"));
    let desc = o.param("error_description").unwrap();
    assert!(
        desc.contains("auth method") && desc.contains("secret"),
        "{desc}"
    );
    assert!(!desc.contains(BAD_CLIENT_SECRET));
}

#[test]
fn unverified_email_signs_in_without_email() {
    let p = partner_for("unverified-email");
    let (_, me) = login_to_me(&Browser::new(Server::shared()), &p, "bad-user-1");
    assert_eq!(
        me["user"]["identities"][0]["email"],
        serde_json::Value::Null
    );
}

#[test]
fn key_rotation_is_picked_up_by_refetching_the_jwks() {
    let p = partner_for("rotation");
    let (_, first) = login_to_me(&Browser::new(Server::shared()), &p, "bad-user-1");
    // right away: an earlier ordinary fetch does not hold back the refetch
    // for the new, unknown kid
    let (outcome, pk) = Browser::new(Server::shared()).login(&p, "bad-user-1");
    assert!(outcome.error().is_none(), "{outcome:?}");
    let s = session(&p, &outcome.login_code(), &pk.verifier);
    assert_eq!(s.json["user"]["id"], first["user"]["id"]);
}
