//! Resource limits against a hostile or failing IdP (issue 7): what a
//! partner-controlled document can cost keystead, and what an IdP outage
//! costs it.

use serde_json::Value;

use crate::browser::{oidc_partner, pkce, Browser, RETURN_TO};
use crate::kit::{bad_idp, runtime, Partner, Server, ServerOpts, BAD_CLIENT_ID, BAD_CLIENT_SECRET};

fn partner(server: &Server, issuer: &str) -> Partner {
    oidc_partner(
        server,
        issuer,
        BAD_CLIENT_ID,
        "client_secret_basic",
        Some(BAD_CLIENT_SECRET),
    )
}

fn verify(p: &Partner) -> crate::kit::Resp {
    p.call("POST", "/v1/partner/custom-oidc/verify", None)
}

fn check<'a>(result: &'a Value, name_part: &str) -> &'a Value {
    result["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap_or("").contains(name_part))
        .unwrap_or_else(|| panic!("no check named *{name_part}*: {result}"))
}

/// The reviewer's attack: Verify, again and again, against ~1 MiB
/// discovery and JWKS documents (and padded ones under the cap). Memory
/// and the database stay flat; a partner gets a few Verifies, then 429.
#[test]
fn verify_against_huge_documents_leaves_memory_and_the_database_flat() {
    let server = Server::start(ServerOpts::default());
    let bad = bad_idp();
    let warm = partner(&server, &bad.issuer("good-rs256"));
    assert_eq!(verify(&warm).json["ok"], true);
    let rss_before = server.rss_kib();
    let db_before = server.db_bytes();

    let huge: Vec<Partner> = (0..3)
        .map(|i| partner(&server, &bad.issuer(&format!("huge-docs~{i}"))))
        .collect();
    let padded: Vec<Partner> = (0..3)
        .map(|i| partner(&server, &bad.issuer(&format!("padded-docs~{i}"))))
        .collect();
    // 5 Verifies each (the burst), 30 in all
    for round in 0..5 {
        for p in &huge {
            let r = verify(p);
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.json["ok"], false, "round {round}: {}", r.text);
            let d = check(&r.json, "discovery");
            assert_eq!(d["status"], "fail", "{}", r.text);
            assert_eq!(d["code"], "discovery_failed", "{}", r.text);
            assert!(
                d["detail"]
                    .as_str()
                    .unwrap()
                    .contains("larger than 256 KiB"),
                "{}",
                r.text
            );
        }
        for p in &padded {
            let r = verify(p);
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.json["ok"], true, "round {round}: {}", r.text);
        }
    }
    // Verify is rate-limited per partner; another partner is not held back
    for p in huge.iter().chain(&padded) {
        let r = verify(p);
        assert_eq!(r.status, 429, "{}", r.text);
        assert_eq!(r.code(), "rate_limited");
    }
    assert_eq!(verify(&warm).status, 200);

    let rss_after = server.rss_kib();
    let db_after = server.db_bytes();
    eprintln!("RSS {rss_before} KiB -> {rss_after} KiB; database {db_before} -> {db_after} bytes");
    assert!(rss_after < 64 * 1024, "RSS grew to {rss_after} KiB");
    assert!(
        db_after < db_before + 1024 * 1024,
        "the database grew from {db_before} to {db_after} bytes"
    );
}

/// While an IdP's discovery fails, 40 parallel sign-in starts cause one
/// fetch (single flight, then the failure is remembered for a few
/// seconds), not 40.
#[test]
fn a_failing_idp_is_asked_once_not_once_per_start() {
    let server = Server::shared();
    let bad = bad_idp();
    let p = partner(server, &bad.issuer("discovery-down"));
    let stats = |key: &str| bad.stats("discovery-down")[key].as_u64().unwrap();
    let before = stats("discovery");
    let browser = Browser::new(server);
    let urls: Vec<String> = (0..40)
        .map(|_| browser.start_url(&p, RETURN_TO, &pkce(), "someone"))
        .collect();
    let statuses: Vec<u16> = runtime().block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut set = tokio::task::JoinSet::new();
        for (i, u) in urls.into_iter().enumerate() {
            let client = client.clone();
            set.spawn(async move { (i, client.get(u).send().await.unwrap().status().as_u16()) });
        }
        let mut out = set.join_all().await;
        out.sort_unstable();
        out.into_iter().map(|(_, s)| s).collect()
    });
    let fetched = stats("discovery") - before;
    // each start fails with keystead's error (page or redirect), none hangs
    assert!(
        statuses.iter().all(|s| *s != 200 && *s != 500),
        "{statuses:?}"
    );
    assert!(
        fetched <= 2,
        "40 starts made {fetched} discovery fetches to a failing IdP"
    );
}
