//! Guarantees of isolation (issue 12): identity is per partner, claiming
//! by verified email never crosses partners, and one user never reaches
//! another user's wallet.

use serde_json::json;

use crate::browser::{basic_partner, login_to_me, Browser};
use crate::kit::{http, unique, Server};

#[test]
fn the_same_idp_subject_at_two_partners_is_two_users() {
    let server = Server::start(Default::default());
    let a = basic_partner(&server);
    let b = basic_partner(&server);
    let hint = unique("same-");
    let (_, at_a) = login_to_me(&Browser::new(&server), &a, &hint);
    let (_, at_b) = login_to_me(&Browser::new(&server), &b, &hint);
    // one IdP, one sub, one email: still two users with two wallets
    assert_eq!(
        at_a["user"]["identities"][0]["sub"],
        at_b["user"]["identities"][0]["sub"]
    );
    assert_ne!(at_a["user"]["id"], at_b["user"]["id"]);
    assert_ne!(at_a["wallets"][0]["id"], at_b["wallets"][0]["id"]);
    // and each partner sees only its own
    let w = at_a["wallets"][0]["id"].as_str().unwrap();
    assert_eq!(b.call("GET", &format!("/v1/wallets/{w}"), None).status, 404);
}

#[test]
fn a_verified_email_claims_nothing_of_another_partner() {
    let server = Server::start(Default::default());
    let a = basic_partner(&server);
    let b = basic_partner(&server);
    let hint = unique("claim-");
    let email = format!("{hint}@example.test"); // what the test IdP asserts, verified
    let pregenerated = a.call(
        "POST",
        "/v1/wallets",
        Some(json!({"type": "EVM", "userIdentifier": email, "userIdentifierType": "EMAIL"})),
    );
    assert_eq!(pregenerated.status, 201, "{}", pregenerated.text);
    let id = pregenerated.json["wallet"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // partner B's user with that verified email
    let (_, me) = login_to_me(&Browser::new(&server), &b, &hint);
    let wallets = me["wallets"].as_array().unwrap();
    assert_eq!(wallets.len(), 1, "only B's new wallet: {me}");
    assert_ne!(wallets[0]["id"], id.as_str());
    // A's wallet is unclaimed: A's backend can still sign with it
    let signed = a.call(
        "POST",
        &format!("/v1/wallets/{id}/sign-message"),
        Some(json!({"message": "still A's"})),
    );
    assert_eq!(signed.status, 200, "{}", signed.text);
    // and A's own user with that email does claim it
    let (_, at_a) = login_to_me(&Browser::new(&server), &a, &hint);
    let ids: Vec<&str> = at_a["wallets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&id.as_str()), "{at_a}");
}

#[test]
fn a_user_cannot_read_or_sign_another_users_wallet() {
    let server = Server::start(Default::default());
    let p = basic_partner(&server);
    let (alice, me_a) = login_to_me(&Browser::new(&server), &p, &unique("alice-"));
    let (bob, me_b) = login_to_me(&Browser::new(&server), &p, &unique("bob-"));
    let alices = me_a["wallets"][0]["id"].as_str().unwrap();
    let bobs = me_b["wallets"][0]["id"].as_str().unwrap();
    let as_user = |token: &str, method: &str, path: String, body: Option<serde_json::Value>| {
        http(method, &format!("{}{path}", server.url), Some(token), body)
    };
    // each reaches their own
    assert_eq!(
        as_user(&alice, "GET", format!("/v1/wallets/{alices}"), None).status,
        200
    );
    // and gets the same 404 for the other's as for one that does not exist
    for (token, other) in [(&alice, bobs), (&bob, alices)] {
        let read = as_user(token, "GET", format!("/v1/wallets/{other}"), None);
        assert_eq!(read.status, 404, "{}", read.text);
        let sign = as_user(
            token,
            "POST",
            format!("/v1/wallets/{other}/sign-message"),
            Some(json!({"message": "not mine"})),
        );
        assert_eq!(sign.status, 404, "{}", sign.text);
        let missing = as_user(token, "GET", "/v1/wallets/wal_doesnotexist".into(), None);
        assert_eq!(read.json, missing.json, "the answer tells nothing");
    }
}
