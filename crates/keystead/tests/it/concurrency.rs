//! Concurrent first logins of one identity create exactly one user and one
//! wallet, on SQLite and on PostgreSQL.

use std::collections::HashSet;

use serde_json::json;

use crate::browser::{basic_partner, login_to_me, put_oidc, Browser};
use crate::kit::{http_headers, postgres_db, unique, Server, ServerOpts};

/// Twenty parallel first logins of one identity, the i-th on `servers[i %
/// len]`: one user and one wallet in the end.
fn twenty_parallel_first_logins_over(servers: &[&Server], p: &crate::kit::Partner) {
    let hint = unique("twin-");
    let results: Vec<(String, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let server = servers[i % servers.len()];
                let p = p.on(server);
                let hint = hint.clone();
                s.spawn(move || {
                    let (_, me) = login_to_me(&Browser::new(server), &p, &hint);
                    let wallets = me["wallets"].as_array().unwrap();
                    assert_eq!(wallets.len(), 1, "{me}");
                    (
                        me["user"]["id"].as_str().unwrap().to_string(),
                        wallets[0]["id"].as_str().unwrap().to_string(),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let users: HashSet<_> = results.iter().map(|r| r.0.clone()).collect();
    let wallets: HashSet<_> = results.iter().map(|r| r.1.clone()).collect();
    assert_eq!((users.len(), wallets.len()), (1, 1), "{results:?}");
}

fn twenty_parallel_first_logins(server: &Server) {
    let p = basic_partner(server);
    twenty_parallel_first_logins_over(&[server], &p);
}

#[test]
fn twenty_parallel_first_logins_on_sqlite_make_one_user_and_one_wallet() {
    let server = Server::start(Default::default());
    twenty_parallel_first_logins(&server);
}

#[test]
fn twenty_parallel_first_logins_on_postgres_make_one_user_and_one_wallet() {
    let server = Server::start(ServerOpts {
        database_url: Some(postgres_db()),
        ..Default::default()
    });
    twenty_parallel_first_logins(&server);
}

/// Two instances of one deployment: one PostgreSQL, one key file.
fn two_instances() -> (Server, Server) {
    let db = postgres_db();
    let a = Server::start(ServerOpts {
        database_url: Some(db.clone()),
        ..Default::default()
    });
    let b = Server::start(ServerOpts {
        database_url: Some(db),
        key_file_from: Some(a.data_dir.join("master.key")),
        ..Default::default()
    });
    (a, b)
}

#[test]
fn a_login_started_on_one_instance_completes_on_another() {
    let (a, b) = two_instances();
    let p = basic_partner(&a);
    let browser = Browser::new(&a);
    let pk = crate::browser::pkce();
    let hint = unique("roam-");
    let (_, cb) = browser.follow_until(
        &browser.start_url(&p, crate::browser::RETURN_TO, &pk, &hint),
        |u| u.contains("/auth/custom_oidc/callback"),
    );
    // the load balancer sends the callback to the other instance
    let cb_on_b = cb
        .expect("reached the callback")
        .replacen(&a.url, &b.url, 1);
    let outcome = browser.follow(&cb_on_b);
    let on_b = p.on(&b);
    let s = crate::browser::session(&on_b, &outcome.login_code(), &pk.verifier);
    assert_eq!(s.status, 200, "{}", s.text);
    let token = s.json["session_token"].as_str().unwrap();
    let me_a = crate::kit::http("GET", &format!("{}/v1/me", a.url), Some(token), None);
    assert_eq!(
        me_a.json["user"]["id"], s.json["user"]["id"],
        "the session works on both"
    );
    // one session-JWT key for the deployment
    let jwt_a = crate::kit::http(
        "POST",
        &format!("{}/v1/sessions/jwt", a.url),
        Some(token),
        None,
    );
    let jwt_b = crate::kit::http(
        "POST",
        &format!("{}/v1/sessions/jwt", b.url),
        Some(token),
        None,
    );
    assert_eq!(jwt_a.json["keyId"], jwt_b.json["keyId"]);
}

/// `/v1/sdk/config` is cached for a second per instance: a change on A is
/// seen at once on A and within that second (plus slack for a loaded
/// machine) on B, both when the button label changes and when Custom OIDC
/// is switched off.
#[test]
fn sdk_config_follows_a_change_on_another_instance_within_its_bound() {
    let (a, b) = two_instances();
    let p = basic_partner(&a);
    let config = |s: &Server| {
        let r = crate::kit::http(
            "GET",
            &format!("{}/v1/sdk/config?api_key={}", s.url, p.publishable_key),
            None,
            None,
        );
        assert_eq!(r.status, 200, "{}", r.text);
        r.json["authConfig"].clone()
    };
    let label = |s: &Server| config(s)["oidcConfig"]["buttonLabel"].clone();
    // both instances have the answer cached now
    let before = label(&b);
    assert!(before.is_string(), "{before}");
    assert_eq!(label(&a), before);

    put_oidc(&p, json!({"button_label": "Renamed on A"}));
    assert_eq!(
        label(&a),
        "Renamed on A",
        "at once on the instance written to"
    );
    let seen_on_b = |want: &dyn Fn(&serde_json::Value) -> bool| {
        let t0 = std::time::Instant::now();
        while t0.elapsed() < std::time::Duration::from_secs(3) {
            if want(&config(&b)) {
                return t0.elapsed();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("instance B still answers {} after 3 s", config(&b));
    };
    let took = seen_on_b(&|c| c["oidcConfig"]["buttonLabel"] == "Renamed on A");
    assert!(took <= std::time::Duration::from_millis(2500), "{took:?}");

    put_oidc(&p, json!({"enabled": false}));
    assert_eq!(config(&a)["methods"], json!([]));
    seen_on_b(&|c| c["methods"] == json!([]));
}

/// Two instances behave as one: parallel first logins of one identity
/// spread over both make one user and one wallet; an idempotency key used
/// on A replays on B; the wallet rate limit is one budget for both.
#[test]
fn two_instances_share_first_logins_idempotency_and_the_rate_limit() {
    let (a, b) = two_instances();
    let p = basic_partner(&a);
    twenty_parallel_first_logins_over(&[&a, &b], &p);

    let create = |s: &Server, who: &str, key: Option<&str>| {
        let body = json!({"type": "EVM", "userIdentifier": who, "userIdentifierType": "EMAIL"});
        let mut headers = vec![("authorization", format!("Bearer {}", p.secret_key))];
        headers.extend(key.map(|k| ("idempotency-key", k.to_string())));
        let r = http_headers(
            "POST",
            &format!("{}/v1/wallets", s.url),
            &headers,
            Some(body.to_string()),
        );
        (r.status, r.header("idempotent-replayed").is_some(), r.json)
    };
    let (s1, r1, first) = create(&a, "idem@example.test", Some("order-7"));
    let (s2, r2, again) = create(&b, "idem@example.test", Some("order-7"));
    assert_eq!((s1, r1, s2, r2), (201, false, 201, true));
    assert_eq!(first, again, "B replays A's answer");

    // one budget: a burst of 20 (minus the two above), refilled at 10/s,
    // for both instances together; per instance it would be 40
    let statuses: Vec<u16> = (0..40)
        .map(|i| {
            let s = if i % 2 == 0 { &a } else { &b };
            create(s, &format!("burst{i}@example.test"), None).0
        })
        .collect();
    let created = statuses.iter().filter(|s| **s == 201).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(created + limited, 40, "{statuses:?}");
    assert!(
        (18..=30).contains(&created),
        "{created} created: {statuses:?}"
    );
}

/// A configuration change on A holds on B at once (sign-in reads the
/// configuration from the database; only /v1/sdk/config is cached, 1 s):
/// a disabled config, a new return URL, a new client secret.
#[test]
fn configuration_changes_on_one_instance_hold_on_the_other() {
    let (a, b) = two_instances();
    let p = basic_partner(&a);
    let on_b = p.on(&b);
    let hint = || unique("cfg-");
    // a new client secret set on A is the one B sends (the IdP refuses
    // the wrong one, then accepts the right one)
    let set = |secret: &str| {
        let r = p.call(
            "PUT",
            "/v1/partner/custom-oidc/client-secret",
            Some(json!({ "client_secret": secret })),
        );
        assert_eq!(r.status, 204, "{}", r.text);
    };
    set("not-the-idp-secret");
    let (refused, _) = Browser::new(&b).login(&on_b, &hint());
    assert_eq!(
        refused.error().as_deref(),
        Some("token_exchange_failed"),
        "{refused:?}"
    );
    set(crate::kit::CLIENT_SECRET);
    login_to_me(&Browser::new(&b), &on_b, &hint());

    // a new return URL on A is allowed on B at once
    let other = "https://app.example.test/elsewhere";
    let r = p.call(
        "PATCH",
        "/v1/partner",
        Some(json!({ "allowed_return_urls": [crate::browser::RETURN_TO, other] })),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let pk = crate::browser::pkce();
    let browser = Browser::new(&b);
    let start = browser.start_url(&on_b, other, &pk, &hint());
    let outcome = browser.follow(&start);
    assert_eq!(outcome.error(), None, "{outcome:?}");
    assert!(outcome.param("login_code").is_some(), "{outcome:?}");

    // disabled on A: B refuses a start at once
    put_oidc(&p, json!({"enabled": false}));
    let (outcome, _) = Browser::new(&b).login(&on_b, &hint());
    assert_eq!(
        outcome.error().as_deref(),
        Some("custom_oidc_disabled"),
        "{outcome:?}"
    );
}
