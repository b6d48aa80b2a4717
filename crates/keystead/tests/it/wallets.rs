//! Wallets: signatures checked by an independent implementation
//! (tests/verify: ethers, tweetnacl, cosmjs), 409 and idempotent replay
//! across a restart, who may sign what, claiming by verified email, the
//! rate limit, and private keys that appear nowhere.

use std::sync::Arc;

use base64::Engine;
use serde_json::{json, Value};

use crate::browser::{basic_partner, login_to_me, oidc_partner, Browser};
use crate::kit::{
    files_containing, http, http_headers, http_raw, idp, seen_bodies, typed, verify, Partner,
    Server, ServerOpts, CLIENT_ID,
};

/// A pregenerated wallet, through the typed client.
fn create(p: &Partner, kind: &str, id_type: &str, identifier: &str) -> Value {
    let created = typed(p.api().create_wallet(
        &keystead_proto::CreateWallet {
            kind: Some(kind.into()),
            user_identifier: Some(identifier.into()),
            user_identifier_type: Some(id_type.into()),
            cosmos_prefix: None,
        },
        None,
    ));
    serde_json::to_value(created.wallet).unwrap()
}

fn sign(p: &Partner, wallet: &str, route: &str, body: Value) -> Value {
    let r = p.call("POST", &format!("/v1/wallets/{wallet}/{route}"), Some(body));
    assert_eq!(r.status, 200, "{route}: {}", r.text);
    r.json
}

fn mail_typed_data() -> Value {
    json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
            ],
            "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
            "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person"}, {"name": "contents", "type": "string"}]
        },
        "primaryType": "Mail",
        "domain": {"name": "Ether Mail", "version": "1", "chainId": 1, "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
        "message": {
            "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
            "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
            "contents": "Hello, Bob!"
        }
    })
}

fn all_ok(results: &[Value]) {
    for r in results {
        assert_eq!(r["ok"], true, "independent verification failed: {r}");
    }
}

#[test]
fn evm_signatures_verify_with_ethers() {
    let p = Server::shared().new_partner();
    let w = create(
        &p,
        "EVM",
        "EMAIL",
        &format!("evm-{}@example.com", p.partner_id),
    );
    let (id, address) = (w["id"].as_str().unwrap(), w["address"].as_str().unwrap());
    let msg = sign(
        &p,
        id,
        "sign-message",
        json!({"message": "hello keystead ✓"}),
    );
    let typed = sign(
        &p,
        id,
        "sign-typed-data",
        json!({"typedData": mail_typed_data()}),
    );
    let tx1559 = sign(
        &p,
        id,
        "sign-transaction",
        json!({"transaction": {
            "type": 2, "chainId": 1, "nonce": 7, "to": "0x3535353535353535353535353535353535353535",
            "value": "1000000000000000000", "gas": 21000, "maxFeePerGas": "0x4a817c800", "maxPriorityFeePerGas": "1000000000",
            "data": "0x", "accessList": []
        }}),
    );
    let legacy = sign(
        &p,
        id,
        "sign-transaction",
        json!({"transaction": {
            "type": 0, "chainId": 5, "nonce": "0x9", "to": "0x3535353535353535353535353535353535353535",
            "value": 12345, "gasLimit": "21000", "gasPrice": "20000000000"
        }}),
    );
    let digest = format!("0x{}", "ab".repeat(32));
    let raw = sign(&p, id, "sign-raw", json!({"data": digest}));
    let results = verify(json!([
        {"kind": "evm-address", "address": address},
        {"kind": "evm-personal", "message": "hello keystead ✓", "signature": msg["signature"], "address": address},
        {"kind": "evm-typed", "typedData": mail_typed_data(), "signature": typed["signature"], "address": address},
        {"kind": "evm-tx", "raw": tx1559["signedTransaction"], "address": address},
        {"kind": "evm-tx", "raw": legacy["signedTransaction"], "address": address},
        {"kind": "evm-digest", "digest": digest, "signature": raw["signature"], "address": address},
    ]));
    all_ok(&results);
    assert_eq!(
        results[2]["digest"], "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2",
        "EIP-712 spec digest"
    );
    let t = &results[3];
    assert_eq!(
        (
            t["type"].as_i64(),
            t["chainId"].as_str(),
            t["nonce"].as_i64()
        ),
        (Some(2), Some("1"), Some(7)),
        "{t}"
    );
    assert_eq!(t["value"], "1000000000000000000");
    assert_eq!(t["maxFeePerGas"], "20000000000");
    let l = &results[4];
    assert_eq!(
        (
            l["type"].as_i64(),
            l["chainId"].as_str(),
            l["nonce"].as_i64()
        ),
        (Some(0), Some("5"), Some(9)),
        "EIP-155: {l}"
    );
    let sig = msg["signature"].as_str().unwrap();
    assert_eq!(sig.len(), 132);
    assert!(
        sig.ends_with("1b") || sig.ends_with("1c"),
        "v = 27/28: {sig}"
    );

    // bad input: a clear error, nothing signed
    for tx in [
        json!({"type": 0, "nonce": 1, "to": "0x3535353535353535353535353535353535353535", "gasLimit": 21000, "gasPrice": 1}),
        json!({"type": 2, "nonce": 1, "to": "0x3535353535353535353535353535353535353535", "gas": 21000, "maxFeePerGas": 2, "maxPriorityFeePerGas": 1}),
    ] {
        let r = p.call(
            "POST",
            &format!("/v1/wallets/{id}/sign-transaction"),
            Some(json!({ "transaction": tx })),
        );
        assert_eq!((r.status, r.code()), (400, "invalid_request"), "{}", r.text);
        assert!(r.text.contains("chainId"), "{}", r.text);
    }
    let r = p.call(
        "POST",
        &format!("/v1/wallets/{id}/sign-transaction"),
        Some(json!({"transaction": {"type": 2, "nonce": 1, "gas": 1}})),
    );
    assert_eq!((r.status, r.code()), (400, "invalid_request"), "{}", r.text);
    let r = p.call(
        "POST",
        &format!("/v1/wallets/{id}/sign-raw"),
        Some(json!({"data": "0x1234"})),
    );
    assert_eq!(r.code(), "invalid_request");
}

#[test]
fn solana_signatures_verify_with_tweetnacl() {
    let p = Server::shared().new_partner();
    let w = create(&p, "SOLANA", "CUSTOM_ID", "sol-user-1");
    let (id, address) = (w["id"].as_str().unwrap(), w["address"].as_str().unwrap());
    assert_eq!(w["publicKey"], w["address"]);
    let b64 = base64::engine::general_purpose::STANDARD;
    let msg = sign(&p, id, "sign-message", json!({"message": "hello solana"}));
    // A legacy message: header, 2 accounts, blockhash, no instructions.
    let mut message = vec![1u8, 0, 1, 2];
    message.extend_from_slice(&[7u8; 64]);
    message.extend_from_slice(&[9u8; 32]);
    message.push(0);
    let tx = sign(
        &p,
        id,
        "sign-transaction",
        json!({"transaction": b64.encode(&message)}),
    );
    let raw = sign(&p, id, "sign-raw", json!({"data": "0xdeadbeef"}));
    all_ok(&verify(json!([
        {"kind": "solana", "message_b64": b64.encode("hello solana"), "signature": msg["signature"], "address": address},
        {"kind": "solana", "message_b64": b64.encode(&message), "signature": tx["signature"], "address": address},
        {"kind": "solana", "message_b64": b64.encode([0xde, 0xad, 0xbe, 0xef]), "signature": raw["signature"], "address": address},
    ])));
    let r = p.call(
        "POST",
        &format!("/v1/wallets/{id}/sign-typed-data"),
        Some(json!({"typedData": mail_typed_data()})),
    );
    assert_eq!(r.code(), "invalid_request");
}

#[test]
fn cosmos_adr036_signatures_verify_with_cosmjs() {
    let p = Server::shared().new_partner();
    let w = create(&p, "COSMOS", "PHONE", "+15550100");
    assert!(w["address"].as_str().unwrap().starts_with("cosmos1"), "{w}");
    let r = p.call("POST", "/v1/wallets", Some(json!({"type": "COSMOS", "userIdentifier": "+15550101", "userIdentifierType": "PHONE", "cosmosPrefix": "osmo"})));
    assert_eq!(r.status, 201, "{}", r.text);
    let osmo = r.json["wallet"].clone();
    assert!(osmo["address"].as_str().unwrap().starts_with("osmo1"));
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut cases = Vec::new();
    for w in [&w, &osmo] {
        let s = sign(
            &p,
            w["id"].as_str().unwrap(),
            "sign-message",
            json!({"message": "login to app"}),
        );
        cases.push(json!({
            "kind": "cosmos-adr036", "data_b64": b64.encode("login to app"), "signer": w["address"],
            "pubkey_hex": w["publicKey"].as_str().unwrap().trim_start_matches("0x"), "signature_b64": s["signature"],
        }));
    }
    all_ok(&verify(Value::Array(cases)));
}

#[test]
fn same_type_and_identifier_is_409_and_idempotency_replays_across_a_restart() {
    let server = Server::start(Default::default());
    let p = server.new_partner();
    let body = json!({"type": "EVM", "userIdentifier": "Carol@Example.com", "userIdentifierType": "EMAIL"});
    let url = format!("{}/v1/wallets", server.url);
    let post = |server_url: &str, key: Option<&str>, body: &Value| {
        let mut headers = vec![("x-api-key", p.secret_key.clone())];
        headers.extend(key.map(|k| ("idempotency-key", k.to_string())));
        let r = http_headers(
            "POST",
            &format!("{server_url}/v1/wallets"),
            &headers,
            Some(body.to_string()),
        );
        (r.status, r.header("idempotent-replayed").is_some(), r.json)
    };
    let (status, replayed, first) = post(&server.url, Some("key-1"), &body);
    assert_eq!((status, replayed), (201, false), "{first}");
    assert_eq!(
        first["wallet"]["userIdentifier"], "carol@example.com",
        "emails are stored lowercase"
    );
    let (status, replayed, again) = post(&server.url, Some("key-1"), &body);
    assert_eq!((status, replayed), (201, true));
    assert_eq!(again, first);
    let (status, _, conflict) = post(&server.url, None, &body);
    assert_eq!(
        (status, conflict["error"]["code"].as_str()),
        (409, Some("wallet_exists"))
    );
    let (status, _, conflict) = post(&server.url, Some("key-2"), &body);
    assert_eq!(
        status, 409,
        "a new key does not bypass the uniqueness: {conflict}"
    );
    let other = json!({"type": "SOLANA", "userIdentifier": "carol@example.com", "userIdentifierType": "EMAIL"});
    let (status, _, misuse) = post(&server.url, Some("key-1"), &other);
    assert_eq!(
        (status, misuse["error"]["code"].as_str()),
        (400, Some("invalid_request")),
        "same key, other body"
    );
    let (status, _, _) = post(&server.url, None, &other);
    assert_eq!(status, 201, "another type for the same identifier is fine");

    let server = server.restart();
    let p = p.on(&server);
    let (status, replayed, after) = post(&server.url, Some("key-1"), &body);
    assert_eq!((status, replayed), (201, true), "replayed after a restart");
    assert_eq!(after, first);
    let list = p.call(
        "GET",
        "/v1/wallets?userIdentifier=CAROL%40example.com&userIdentifierType=EMAIL",
        None,
    );
    assert_eq!(
        list.json["wallets"].as_array().unwrap().len(),
        2,
        "{}",
        list.text
    );
    let _ = url;
}

#[test]
fn partner_and_user_cannot_use_each_others_wallets_and_strangers_learn_nothing() {
    let server = Server::shared();
    let p = basic_partner(server);
    let stranger = server.new_partner();
    let (token, me) = login_to_me(
        &Browser::new(server),
        &p,
        &format!("bob-{}", &p.partner_id[4..12]),
    );
    let user_wallet = me["wallets"][0]["id"].as_str().unwrap().to_string();
    let pregen = create(&p, "EVM", "CUSTOM_ID", "server-side-1")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let user = |method: &str, path: &str, body: Option<Value>| {
        http(method, &format!("{}{path}", server.url), Some(&token), body)
    };
    let msg = json!({"message": "x"});

    // the user signs their own wallet; the partner may look but not sign
    assert_eq!(
        user(
            "POST",
            &format!("/v1/wallets/{user_wallet}/sign-message"),
            Some(msg.clone())
        )
        .status,
        200
    );
    assert_eq!(
        p.call("GET", &format!("/v1/wallets/{user_wallet}"), None)
            .status,
        200
    );
    let r = p.call(
        "POST",
        &format!("/v1/wallets/{user_wallet}/sign-message"),
        Some(msg.clone()),
    );
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    // the partner signs its pregenerated wallet; the user gets 404 for it
    assert_eq!(
        p.call(
            "POST",
            &format!("/v1/wallets/{pregen}/sign-message"),
            Some(msg.clone())
        )
        .status,
        200
    );
    for path in [
        format!("/v1/wallets/{pregen}"),
        format!("/v1/wallets/{pregen}/sign-message"),
    ] {
        let method = if path.ends_with("message") {
            "POST"
        } else {
            "GET"
        };
        let r = user(method, &path, Some(msg.clone()));
        assert_eq!((r.status, r.code()), (404, "not_found"), "{path}");
    }
    // another partner: 404 for both, same as for a wallet that does not exist
    for w in [&user_wallet, &pregen, &"wal_doesnotexist".to_string()] {
        assert_eq!(
            stranger
                .call("GET", &format!("/v1/wallets/{w}"), None)
                .status,
            404
        );
        let r = stranger.call(
            "POST",
            &format!("/v1/wallets/{w}/sign-message"),
            Some(msg.clone()),
        );
        assert_eq!((r.status, r.code()), (404, "not_found"));
    }
    // partner-only routes refuse a session
    assert_eq!(
        user(
            "GET",
            "/v1/wallets?userIdentifier=x&userIdentifierType=CUSTOM_ID",
            None
        )
        .status,
        403
    );
    assert_eq!(
        http(
            "GET",
            &format!("{}/v1/wallets/{pregen}", server.url),
            None,
            None
        )
        .status,
        401
    );
}

#[test]
fn verified_email_claims_the_pregenerated_wallet() {
    let server = Server::shared();
    let p = basic_partner(server);
    let hint = format!("alice-{}", &p.partner_id[4..12]);
    let pregen = create(
        &p,
        "EVM",
        "EMAIL",
        &format!("{}@EXAMPLE.test", hint.to_uppercase()),
    );
    let id = pregen["id"].as_str().unwrap();
    assert_eq!(
        p.call(
            "POST",
            &format!("/v1/wallets/{id}/sign-message"),
            Some(json!({"message": "before"}))
        )
        .status,
        200
    );
    // someone with an unverified email of the same name claims nothing
    let unverified = create(
        &p,
        "EVM",
        "EMAIL",
        &format!("unverified-{hint}@example.test"),
    );
    let (_, me_u) = login_to_me(&Browser::new(server), &p, &format!("unverified-{hint}"));
    assert!(me_u["wallets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|w| w["id"] != unverified["id"]));

    let (token, me) = login_to_me(&Browser::new(server), &p, &hint);
    let ids: Vec<&str> = me["wallets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&id), "the wallet moved to the user: {me}");
    assert_eq!(ids.len(), 2, "login wallet + claimed wallet");
    let r = http(
        "POST",
        &format!("{}/v1/wallets/{id}/sign-message", server.url),
        Some(&token),
        Some(json!({"message": "mine now"})),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = p.call(
        "POST",
        &format!("/v1/wallets/{id}/sign-message"),
        Some(json!({"message": "after"})),
    );
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    // still listed for the partner, with its identifier
    let list = p.call(
        "GET",
        &format!("/v1/wallets?userIdentifier={hint}%40example.test&userIdentifierType=EMAIL"),
        None,
    );
    assert_eq!(list.json["wallets"][0]["id"], id);
}

#[test]
fn users_add_solana_and_cosmos_wallets_once_per_type() {
    let server = Server::shared();
    let p = oidc_partner(
        server,
        &idp().issuer("main"),
        &format!("{CLIENT_ID}-none"),
        "none",
        None,
    );
    let (token, _) = login_to_me(
        &Browser::new(server),
        &p,
        &format!("dora-{}", &p.partner_id[4..12]),
    );
    let add = |body: Value| {
        http(
            "POST",
            &format!("{}/v1/me/wallets", server.url),
            Some(&token),
            Some(body),
        )
    };
    let sol = add(json!({"type": "SOLANA"}));
    assert_eq!(sol.status, 201, "{}", sol.text);
    let again = add(json!({"type": "SOLANA"}));
    assert_eq!(again.status, 200);
    assert_eq!(again.json["wallet"]["id"], sol.json["wallet"]["id"]);
    let cos = add(json!({"type": "COSMOS", "cosmosPrefix": "juno"}));
    assert_eq!(cos.status, 201);
    assert!(cos.json["wallet"]["address"]
        .as_str()
        .unwrap()
        .starts_with("juno1"));
    let evm = add(json!({"type": "EVM"}));
    assert_eq!(evm.status, 200, "the login already made the EVM wallet");
    assert_eq!(add(json!({"type": "DOGE"})).code(), "invalid_request");
    let me = http("GET", &format!("{}/v1/me", server.url), Some(&token), None);
    assert_eq!(me.json["wallets"].as_array().unwrap().len(), 3);
    let sid = sol.json["wallet"]["id"].as_str().unwrap();
    let s = http(
        "POST",
        &format!("{}/v1/wallets/{sid}/sign-message", server.url),
        Some(&token),
        Some(json!({"message": "gm"})),
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    all_ok(&verify(
        json!([{"kind": "solana", "message_b64": b64.encode("gm"), "signature": s.json["signature"], "address": sol.json["wallet"]["address"]}]),
    ));
}

#[test]
fn wallet_routes_are_rate_limited_per_partner_with_retry_after() {
    let server = Server::start(ServerOpts {
        env: vec![
            ("KEYSTEAD_WALLETS__RATE_LIMIT_PER_SECOND", "1"),
            ("KEYSTEAD_WALLETS__RATE_LIMIT_BURST", "3"),
        ],
        ..Default::default()
    });
    let p = server.new_partner();
    let other = server.new_partner();
    let url = format!("{}/v1/wallets/wal_x", server.url);
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (s, ra, body) = rt.block_on(async {
            let r = reqwest::Client::new()
                .get(&url)
                .header("x-api-key", &p.secret_key)
                .send()
                .await
                .unwrap();
            let ra = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), ra, r.text().await.unwrap())
        });
        if s == 429 {
            assert!(body.contains("rate_limited"), "{body}");
            retry_after = ra;
        }
        statuses.push(s);
    }
    assert_eq!(
        &statuses[..3],
        &[404, 404, 404],
        "the burst passes: {statuses:?}"
    );
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    let ra: u64 = retry_after.expect("Retry-After header").parse().unwrap();
    assert!((1..=2).contains(&ra), "{ra}");
    // another partner has its own bucket
    assert_eq!(other.call("GET", "/v1/wallets/wal_x", None).status, 404);
    let _ = http_raw;
}

#[test]
fn end_users_have_their_own_wallet_bucket_and_cannot_starve_the_partner() {
    let server = Server::start(ServerOpts {
        env: vec![
            ("KEYSTEAD_WALLETS__RATE_LIMIT_PER_SECOND", "0.2"),
            ("KEYSTEAD_WALLETS__RATE_LIMIT_BURST", "3"),
        ],
        ..Default::default()
    });
    let p = oidc_partner(
        &server,
        &idp().issuer("main"),
        &format!("{CLIENT_ID}-none"),
        "none",
        None,
    );
    let user = |name: &str| {
        login_to_me(
            &Browser::new(&server),
            &p,
            &format!("{name}-{}", &p.partner_id[4..12]),
        )
        .0
    };
    let (eve, bob) = (user("eve"), user("bob"));
    let as_user = |token: &str| {
        http(
            "GET",
            &format!("{}/v1/wallets/wal_x", server.url),
            Some(token),
            None,
        )
        .status
    };
    // one user spends their own allowance, then is refused
    let eve_calls: Vec<u16> = (0..5).map(|_| as_user(&eve)).collect();
    assert_eq!(&eve_calls[..3], &[404, 404, 404], "{eve_calls:?}");
    assert_eq!(eve_calls[3..], [429, 429], "{eve_calls:?}");
    // the partner's backend and another user still have theirs
    let partner_calls: Vec<u16> = (0..3)
        .map(|_| p.call("GET", "/v1/wallets/wal_x", None).status)
        .collect();
    assert_eq!(partner_calls, [404, 404, 404]);
    assert_eq!(as_user(&bob), 404);
    // and the user's own wallet route counts against the user too
    let add = http(
        "POST",
        &format!("{}/v1/me/wallets", server.url),
        Some(&eve),
        Some(json!({"type": "SOLANA"})),
    );
    assert_eq!(
        (add.status, add.code()),
        (429, "rate_limited"),
        "{}",
        add.text
    );
}

#[test]
fn private_keys_appear_in_no_response_log_or_file() {
    let server = Server::start(ServerOpts {
        log_level: "trace",
        ..Default::default()
    });
    let p = basic_partner(&server);
    let mut ids = Vec::new();
    for kind in ["EVM", "SOLANA", "COSMOS"] {
        let w = create(&p, kind, "CUSTOM_ID", &format!("keys-{kind}"));
        let id = w["id"].as_str().unwrap().to_string();
        let _ = sign(&p, &id, "sign-message", json!({"message": "m"}));
        let _ = p.call("GET", &format!("/v1/wallets/{id}"), None);
        ids.push(id);
    }
    let (_, me) = login_to_me(&Browser::new(&server), &p, "key-scan-user");
    ids.push(me["wallets"][0]["id"].as_str().unwrap().to_string());

    // open the sealed keys with the server's own key file, in this process
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt
        .block_on(keystead_store::Store::connect(&format!(
            "sqlite://{}",
            server.data_dir.join("keystead.db").display()
        )))
        .unwrap();
    let keys = Arc::new(
        keystead_crypto::local::LocalKeyProvider::open_or_create(
            &server.data_dir.join("master.key"),
        )
        .unwrap(),
    );
    let bodies = seen_bodies().lock().unwrap().clone();
    let log = server.log_text();
    for id in &ids {
        let sealed = rt
            .block_on(keystead_store::SecretStore::secret(
                &store,
                id,
                keystead_store::PURPOSE_WALLET_KEY,
            ))
            .unwrap()
            .unwrap();
        let key = rt
            .block_on(keystead_crypto::open(
                keys.as_ref(),
                id,
                keystead_store::PURPOSE_WALLET_KEY,
                &sealed,
            ))
            .unwrap();
        assert_eq!(key.len(), 32);
        let b64 = base64::engine::general_purpose::STANDARD;
        let spellings = [
            hex_lower(&key),
            hex_lower(&key).to_uppercase(),
            b64.encode(&key[..]),
            bs58_encode(&key),
        ];
        for s in &spellings {
            assert!(!log.contains(s.as_str()), "wallet key of {id} in the log");
            assert!(
                bodies.iter().all(|b| !b.contains(s.as_str())),
                "wallet key of {id} in a response"
            );
        }
        for needle in [
            key.to_vec(),
            spellings[0].as_bytes().to_vec(),
            spellings[2].as_bytes().to_vec(),
        ] {
            let hits = files_containing(server.data_dir.parent().unwrap(), &needle);
            assert!(hits.is_empty(), "wallet key of {id} readable in {hits:?}");
        }
    }
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Base58 (Bitcoin alphabet), written here so the scan does not depend on
/// the code under test.
fn bs58_encode(input: &[u8]) -> String {
    const A: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut digits: Vec<u8> = Vec::new();
    for &byte in input {
        let mut carry = byte as u32;
        for d in digits.iter_mut() {
            carry += (*d as u32) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let zeros = input.iter().take_while(|&&b| b == 0).count();
    std::iter::repeat_n('1', zeros)
        .chain(digits.iter().rev().map(|&d| A[d as usize] as char))
        .collect()
}

#[test]
fn wallets_cli_creates_shows_lists_and_signs() {
    let p = Server::shared().new_partner();
    let out = p.cli(
        &[
            "--json",
            "wallets",
            "create",
            "--type",
            "EVM",
            "--identifier",
            "cli@example.com",
            "--identifier-type",
            "EMAIL",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    let w = out.json()["wallet"].clone();
    let id = w["id"].as_str().unwrap();
    let out = p.cli(&["wallets", "show", id], None);
    assert_eq!(out.code, 0);
    assert!(
        out.stdout.contains(w["address"].as_str().unwrap()),
        "{}",
        out.stdout
    );
    let out = p.cli(
        &[
            "--json",
            "wallets",
            "list",
            "--identifier",
            "cli@example.com",
            "--identifier-type",
            "EMAIL",
        ],
        None,
    );
    assert_eq!(out.json()["wallets"][0]["id"], id);
    let out = p.cli(
        &[
            "--json",
            "wallets",
            "sign-message",
            id,
            "hello from the CLI",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    all_ok(&verify(
        json!([{"kind": "evm-personal", "message": "hello from the CLI", "signature": out.json()["signature"], "address": w["address"]}]),
    ));
    let out = p.cli(
        &[
            "wallets",
            "create",
            "--type",
            "EVM",
            "--identifier",
            "cli@example.com",
            "--identifier-type",
            "EMAIL",
        ],
        None,
    );
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("wallet_exists"), "{}", out.stderr);
}
