//! Sign-in records: login states, users and identities, login codes,
//! sessions, the provider cache.

use super::*;

fn state(hash: &str, now: i64) -> LoginStateRow {
    LoginStateRow {
        state_hash: hash.into(),
        partner_id: "ptn_1".into(),
        browser_hash: "browser".into(),
        issuer: "https://a.example".into(),
        return_to: "https://app.example/cb".into(),
        app_state: Some("xyz".into()),
        app_code_challenge: "challenge".into(),
        nonce: "nonce".into(),
        pkce_verifier: "verifier".into(),
        created_at: now,
        expires_at: now + 600,
        error_to: None,
        test_id: None,
    }
}

pub(super) async fn login_state_is_single_use_and_bound_to_the_browser(store: &Store) {
    seed(store).await;
    let now = now_unix();
    store.insert_login_state(&state("s1", now)).await.unwrap();
    assert_eq!(
        store
            .peek_login_state("s1", "other-browser", now)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.peek_login_state("s1", "browser", now).await.unwrap(),
        Some(state("s1", now))
    );
    let w = wallet("w1", "u1");
    let key = sealed(1);
    assert!(matches!(
        first_login(store, "s1", "alice", ("u1", "i1", &w, &key), now).await,
        LoginFinished::Done { created: true, .. }
    ));
    assert_eq!(
        store.peek_login_state("s1", "browser", now).await.unwrap(),
        None,
        "used"
    );
    let w2 = wallet("w2", "u2");
    assert_eq!(
        first_login(store, "s1", "alice", ("u2", "i2", &w2, &key), now).await,
        LoginFinished::StateUsed,
        "replay"
    );
    assert_eq!(
        store.count("users").await.unwrap(),
        1,
        "a replay writes nothing"
    );
    store
        .insert_login_state(&state("s2", now - 700))
        .await
        .unwrap();
    assert_eq!(
        store.peek_login_state("s2", "browser", now).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        first_login(store, "s2", "bob", ("u3", "i3", &w2, &key), now).await,
        LoginFinished::StateUsed
    );
    store.insert_login_state(&state("s3", now)).await.unwrap();
    assert!(store.consume_login_state("s3", now).await.unwrap());
    assert!(!store.consume_login_state("s3", now).await.unwrap());
    assert_eq!(store.purge_expired(now + 3600).await.unwrap(), 4);
}

/// Finishes a login on state `state_hash` for `sub`, with a new user
/// prepared (used only if the identity does not exist yet).
pub(super) async fn first_login(
    store: &Store,
    state_hash: &str,
    sub: &str,
    new_user: (&str, &str, &WalletRow, &Sealed),
    now: i64,
) -> LoginFinished {
    let code = format!("code-{state_hash}-{}", new_user.0);
    store
        .finish_login(&FinishLogin {
            state_hash,
            now,
            partner_id: "ptn_1",
            issuer: "https://a.example",
            sub,
            email: Some("alice@example.com"),
            new_user: Some(new_user),
            code_hash: &code,
            code_challenge: "challenge",
            code_ttl: 60,
        })
        .await
        .unwrap()
}

fn wallet(id: &str, user: &str) -> WalletRow {
    WalletRow {
        id: id.into(),
        partner_id: "ptn_1".into(),
        user_id: Some(user.into()),
        kind: WalletType::Evm,
        address: format!("0x{id}"),
        public_key: "0x02".into(),
        user_identifier: None,
        user_identifier_type: None,
        status: "READY".into(),
        created_at: 1,
    }
}

pub(super) async fn concurrent_first_logins_create_one_user(store: &Store) {
    seed(store).await;
    let now = now_unix();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        store
            .insert_login_state(&state(&format!("s{i}"), now))
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            let w = wallet(&format!("w{i}"), &format!("u{i}"));
            let key = sealed(i as u8);
            let (u, id) = (format!("u{i}"), format!("i{i}"));
            first_login(&store, &format!("s{i}"), "alice", (&u, &id, &w, &key), now).await
        }));
    }
    let mut created = 0;
    let mut users = std::collections::HashSet::new();
    for t in tasks {
        match t.await.unwrap() {
            LoginFinished::Done {
                user_id,
                created: c,
                ..
            } => {
                created += usize::from(c);
                users.insert(user_id);
            }
            LoginFinished::StateUsed => panic!("each task has its own state"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(users.len(), 1);
    assert_eq!(store.count("users").await.unwrap(), 1);
    assert_eq!(store.count("identities").await.unwrap(), 1);
    assert_eq!(store.count("wallets").await.unwrap(), 1);
    let (user, _) = store
        .find_identity("ptn_1", "https://a.example", "alice")
        .await
        .unwrap()
        .unwrap();
    let wallets = store.wallets_of_user(&user).await.unwrap();
    assert_eq!(wallets.len(), 1);
    assert!(store
        .secret(&wallets[0].id, PURPOSE_WALLET_KEY)
        .await
        .is_ok());
    let ids = store.identities_of_user(&user).await.unwrap();
    assert_eq!(ids[0].email.as_deref(), Some("alice@example.com"));
}

/// A partner and one user `u1` with wallet `w1`; the user's login code is
/// `code-s0-u1`.
pub(super) async fn seed_user(store: &Store) {
    seed(store).await;
    let now = now_unix();
    store.insert_login_state(&state("s0", now)).await.unwrap();
    let w = wallet("w1", "u1");
    let key = sealed(1);
    first_login(store, "s0", "bob", ("u1", "i1", &w, &key), now).await;
}

pub(super) async fn login_code_is_single_use(store: &Store) {
    seed_user(store).await;
    let now = now_unix();
    let redeem = |code: &'static str, partner: &'static str, ok: bool, token: &'static str| {
        let store = store.clone();
        async move {
            store
                .redeem_login_code(
                    code,
                    partner,
                    now,
                    |c| ok && c == "challenge",
                    token,
                    now + 100,
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(
        redeem("code-s0-u1", "ptn_other", true, "t0").await,
        Redeemed::Invalid,
        "another partner"
    );
    assert_eq!(
        redeem("code-s0-u1", "ptn_1", true, "t0").await,
        Redeemed::Invalid,
        "used up by that attempt"
    );
    let row = LoginCodeRow {
        partner_id: "ptn_1".into(),
        user_id: "u1".into(),
        code_challenge: "challenge".into(),
    };
    store.insert_login_code("c2", &row, now, 60).await.unwrap();
    assert_eq!(
        redeem("c2", "ptn_1", false, "t1").await,
        Redeemed::PkceMismatch
    );
    assert_eq!(
        redeem("c2", "ptn_1", true, "t1").await,
        Redeemed::Invalid,
        "a wrong verifier used it up"
    );
    store.insert_login_code("c3", &row, now, 60).await.unwrap();
    assert_eq!(
        redeem("c3", "ptn_1", true, "t3").await,
        Redeemed::Session {
            user_id: "u1".into()
        }
    );
    assert_eq!(
        store.session("t3", now).await.unwrap().map(|s| s.user_id),
        Some("u1".into())
    );
    assert_eq!(
        redeem("c3", "ptn_1", true, "t4").await,
        Redeemed::Invalid,
        "replay"
    );
    store
        .insert_login_code("c4", &row, now - 120, 60)
        .await
        .unwrap();
    assert_eq!(
        redeem("c4", "ptn_1", true, "t5").await,
        Redeemed::Invalid,
        "expired"
    );
    assert_eq!(store.session("t1", now).await.unwrap(), None);
}

pub(super) async fn sessions_expire_and_revoke(store: &Store) {
    seed_user(store).await;
    let s = SessionRow {
        user_id: "u1".into(),
        partner_id: "ptn_1".into(),
        expires_at: 1000,
    };
    store.insert_session("t1", &s, 10).await.unwrap();
    assert_eq!(store.session("t1", 999).await.unwrap(), Some(s));
    assert_eq!(store.session("t1", 1000).await.unwrap(), None);
    store.revoke_session("t1", 20).await.unwrap();
    assert_eq!(store.session("t1", 500).await.unwrap(), None);
}

pub(super) async fn provider_cache_keeps_one_row_per_url_and_limits_unknown_kid_refetches(
    store: &Store,
) {
    let doc = |body: &str, at: i64| CachedDoc {
        body: body.into(),
        fetched_at: at,
        expires_at: at + 900,
    };
    store
        .put_cached_doc("https://a/jwks", &doc("one", 100))
        .await
        .unwrap();
    store
        .put_cached_doc("https://a/jwks", &doc("two", 105))
        .await
        .unwrap();
    assert_eq!(
        store.count("provider_cache").await.unwrap(),
        1,
        "replaced, not appended"
    );
    assert_eq!(
        store
            .cached_doc("https://a/jwks")
            .await
            .unwrap()
            .unwrap()
            .body,
        "two"
    );
    // an ordinary fetch a moment ago does not hold back an unknown-kid refetch
    assert!(store.claim_refetch("https://a/jwks", 106, 1).await.unwrap());
    // but a second unknown-kid refetch within the second is refused
    assert!(!store.claim_refetch("https://a/jwks", 106, 1).await.unwrap());
    assert!(store.claim_refetch("https://a/jwks", 107, 1).await.unwrap());
    // a refetch stores the new body and keeps the refetch mark
    store
        .put_cached_doc("https://a/jwks", &doc("three", 107))
        .await
        .unwrap();
    assert!(!store.claim_refetch("https://a/jwks", 107, 1).await.unwrap());
    // stale rows are purged
    store
        .put_cached_doc("https://b/jwks", &doc("b", 5000))
        .await
        .unwrap();
    store.purge_expired(107 + 900 + 3601).await.unwrap();
    assert!(store.cached_doc("https://a/jwks").await.unwrap().is_none());
    assert!(store.cached_doc("https://b/jwks").await.unwrap().is_some());
}

/// A test login's start link works once and only while pending and
/// unexpired; its result is stored once; its login state carries its id.
pub(super) async fn test_logins_start_once_and_finish_once(store: &Store) {
    seed(store).await;
    let now = now_unix();
    let t = TestLoginRow {
        test_id: "tst_1".into(),
        partner_id: "ptn_1".into(),
        status: "pending".into(),
        result: None,
        created_at: now,
        expires_at: now + 600,
        finished_at: None,
    };
    store.insert_test_login(&t, "start-1").await.unwrap();
    assert_eq!(store.test_login("tst_1").await.unwrap(), Some(t.clone()));
    assert_eq!(
        store
            .take_test_login_start("start-1", now + 600)
            .await
            .unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        store.take_test_login_start("start-1", now).await.unwrap(),
        Some(t.clone())
    );
    assert_eq!(
        store.take_test_login_start("start-1", now).await.unwrap(),
        None,
        "works once"
    );
    let mut s = state("s-test", now);
    s.test_id = Some("tst_1".into());
    store.insert_login_state(&s).await.unwrap();
    assert_eq!(
        store
            .peek_login_state("s-test", "browser", now)
            .await
            .unwrap()
            .and_then(|l| l.test_id),
        Some("tst_1".to_string())
    );
    assert!(store
        .finish_test_login("tst_1", "passed", "{\"checks\":[]}", now + 5)
        .await
        .unwrap());
    assert!(
        !store
            .finish_test_login("tst_1", "failed", "{}", now + 6)
            .await
            .unwrap(),
        "finished once"
    );
    let done = store.test_login("tst_1").await.unwrap().unwrap();
    assert_eq!(done.status, "passed");
    assert_eq!(done.result.as_deref(), Some("{\"checks\":[]}"));
    assert_eq!(done.finished_at, Some(now + 5));
    // kept a day after the link expired, then purged
    store.purge_expired(now + 3600).await.unwrap();
    assert!(store.test_login("tst_1").await.unwrap().is_some());
    store
        .purge_expired(now + 600 + 24 * 3600 + 1)
        .await
        .unwrap();
    assert_eq!(store.test_login("tst_1").await.unwrap(), None);
}
