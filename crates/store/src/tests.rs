//! One storage suite, run against both backends: every test below exists
//! twice, `sqlite::name` and `postgres::name`. PostgreSQL comes from
//! `KEYSTEAD_TEST_POSTGRES_URL` (default: the local server's `test`
//! database); each test gets a fresh database there, dropped afterwards.

use keystead_crypto::{Sealed, WrappedKey};

use super::*;

pub(crate) struct TestDb {
    pub store: Store,
    cleanup: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        TestDb {
            store: Store::connect(&url).await.unwrap(),
            cleanup: None,
            _dir: Some(dir),
        }
    }

    async fn postgres() -> TestDb {
        let admin_url = std::env::var("KEYSTEAD_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL is required for the storage suite ({admin_url}): {e}")
            });
        let name = keystead_crypto::random_token("ks_test_");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let (base, _) = admin_url.rsplit_once('/').unwrap();
        let store = Store::connect(&format!("{base}/{name}")).await.unwrap();
        TestDb {
            store,
            cleanup: Some((admin_url, name)),
            _dir: None,
        }
    }

    async fn finish(self) {
        self.store.close().await;
        if let Some((admin_url, name)) = self.cleanup {
            if let Ok(admin) = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&admin_url)
                .await
            {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                    .execute(&admin)
                    .await;
                admin.close().await;
            }
        }
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() {
                let db = super::TestDb::sqlite().await;
                super::$name(&db.store).await;
                db.finish().await;
            })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() {
                let db = super::TestDb::postgres().await;
                super::$name(&db.store).await;
                db.finish().await;
            })*
        }
    };
}

both_backends!(
    migrations_are_idempotent,
    partner_is_found_by_each_key,
    partner_with_oidc_comes_in_one_read,
    duplicate_publishable_key_is_a_conflict,
    custom_oidc_upsert_keeps_creation_and_drops_stale_verification,
    client_secret_set_and_clear,
    delete_custom_oidc_removes_secret,
    developer_with_unknown_project_creates_nothing,
    settings_are_set_once,
    blobs_roundtrip_exactly,
    login_state_is_single_use_and_bound_to_the_browser,
    concurrent_first_logins_create_one_user,
    login_code_is_single_use,
    sessions_expire_and_revoke,
    secret_rules_hold_even_against_concurrent_changes,
    provider_cache_keeps_one_row_per_url_and_limits_unknown_kid_refetches,
);

async fn seed(store: &Store) -> PartnerRow {
    store.insert_project("prj_1", "Acme").await.unwrap();
    store
        .insert_partner("ptn_1", "prj_1", "web", "pk_1", "hash_1", 604800)
        .await
        .unwrap()
}

fn oidc(partner_id: &str, issuer: &str) -> CustomOidcRow {
    CustomOidcRow {
        partner_id: partner_id.into(),
        issuer: issuer.into(),
        client_id: "client".into(),
        scopes: "openid email".into(),
        auth_method: AuthMethod::ClientSecretPost,
        button_label: "Sign in with Acme".into(),
        enabled: false,
        client_secret_updated_at: None,
        last_verification: None,
        created_at: 0,
        updated_at: 0,
    }
}

fn sealed(tag: u8) -> Sealed {
    Sealed {
        key: WrappedKey {
            key_id: "local:1".into(),
            bytes: vec![tag; 60],
        },
        nonce: vec![tag; 12],
        ciphertext: (0..=255u8).collect(),
    }
}

async fn migrations_are_idempotent(store: &Store) {
    migrate::run(store).await.unwrap();
    migrate::run(store).await.unwrap();
    let n: i64 = db::query("SELECT COUNT(*) FROM schema_migrations")
        .scalar(store.pool())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 4);
}

async fn partner_is_found_by_each_key(store: &Store) {
    let p = seed(store).await;
    assert_eq!(store.partner("ptn_1").await.unwrap().unwrap(), p);
    assert_eq!(
        store
            .partner_by_secret_hash("hash_1")
            .await
            .unwrap()
            .unwrap()
            .id,
        "ptn_1"
    );
    assert_eq!(
        store
            .partner_by_publishable_key("pk_1")
            .await
            .unwrap()
            .unwrap()
            .id,
        "ptn_1"
    );
    assert!(matches!(
        store.partner_by_secret_hash("nope").await,
        Ok(None)
    ));
    let urls = vec![
        "https://app.example.com/cb".to_string(),
        "myapp://cb".to_string(),
    ];
    store.set_allowed_return_urls("ptn_1", &urls).await.unwrap();
    assert_eq!(
        store
            .partner("ptn_1")
            .await
            .unwrap()
            .unwrap()
            .allowed_return_urls,
        urls
    );
    assert!(matches!(
        store.set_allowed_return_urls("ptn_x", &urls).await,
        Err(StoreError::NotFound)
    ));
}

async fn partner_with_oidc_comes_in_one_read(store: &Store) {
    let p = seed(store).await;
    assert_eq!(
        store
            .partner_with_oidc_by_publishable_key("pk_1")
            .await
            .unwrap(),
        Some((p.clone(), None))
    );
    let stored = store
        .upsert_custom_oidc(&oidc("ptn_1", "https://idp.example.com"))
        .await
        .unwrap();
    let (partner, config) = store
        .partner_with_oidc_by_publishable_key("pk_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(partner, p);
    assert_eq!(config, Some(stored));
    assert_eq!(
        store
            .partner_with_oidc_by_publishable_key("pk_nope")
            .await
            .unwrap(),
        None
    );
}

async fn duplicate_publishable_key_is_a_conflict(store: &Store) {
    seed(store).await;
    let err = store
        .insert_partner("ptn_2", "prj_1", "web", "pk_1", "hash_2", 1)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err:?}");
    assert!(matches!(store.partner("ptn_2").await, Ok(None)));
}

async fn custom_oidc_upsert_keeps_creation_and_drops_stale_verification(store: &Store) {
    seed(store).await;
    assert!(matches!(store.custom_oidc("ptn_1").await, Ok(None)));
    let first = store
        .upsert_custom_oidc(&oidc("ptn_1", "https://a.example"))
        .await
        .unwrap();
    assert_eq!(first.issuer, "https://a.example");
    assert!(!first.enabled);
    store
        .set_verification("ptn_1", "{\"ok\":true}")
        .await
        .unwrap();
    // Same identity, new label: verification stays.
    let mut same = first.clone();
    same.button_label = "Other".into();
    let kept = store.upsert_custom_oidc(&same).await.unwrap();
    assert_eq!(kept.last_verification.as_deref(), Some("{\"ok\":true}"));
    assert_eq!(kept.created_at, first.created_at);
    // New issuer: the old verification no longer says anything.
    let moved = store
        .upsert_custom_oidc(&oidc("ptn_1", "https://b.example/"))
        .await
        .unwrap();
    assert_eq!(moved.issuer, "https://b.example/");
    assert_eq!(moved.last_verification, None);
}

async fn client_secret_set_and_clear(store: &Store) {
    seed(store).await;
    assert!(matches!(
        store.set_client_secret("ptn_1", &sealed(1)).await,
        Err(StoreError::NotFound)
    ));
    let mut c = oidc("ptn_1", "https://a.example");
    store.upsert_custom_oidc(&c).await.unwrap();
    store.set_client_secret("ptn_1", &sealed(1)).await.unwrap();
    store.set_client_secret("ptn_1", &sealed(2)).await.unwrap();
    assert_eq!(
        store
            .secret("ptn_1", PURPOSE_OIDC_CLIENT_SECRET)
            .await
            .unwrap()
            .unwrap(),
        sealed(2)
    );
    c.enabled = true;
    store.upsert_custom_oidc(&c).await.unwrap();
    let row = store.custom_oidc("ptn_1").await.unwrap().unwrap();
    assert!(row.client_secret_updated_at.is_some());
    store.clear_client_secret("ptn_1", true).await.unwrap();
    let row = store.custom_oidc("ptn_1").await.unwrap().unwrap();
    assert!(row.client_secret_updated_at.is_none());
    assert!(!row.enabled);
    assert!(matches!(
        store.secret("ptn_1", PURPOSE_OIDC_CLIENT_SECRET).await,
        Ok(None)
    ));
}

async fn delete_custom_oidc_removes_secret(store: &Store) {
    seed(store).await;
    store
        .upsert_custom_oidc(&oidc("ptn_1", "https://a.example"))
        .await
        .unwrap();
    store.set_client_secret("ptn_1", &sealed(3)).await.unwrap();
    store.delete_custom_oidc("ptn_1").await.unwrap();
    assert!(matches!(store.custom_oidc("ptn_1").await, Ok(None)));
    assert!(matches!(
        store.secret("ptn_1", PURPOSE_OIDC_CLIENT_SECRET).await,
        Ok(None)
    ));
    assert!(matches!(
        store.delete_custom_oidc("ptn_1").await,
        Err(StoreError::NotFound)
    ));
}

async fn developer_with_unknown_project_creates_nothing(store: &Store) {
    seed(store).await;
    let err = store
        .insert_developer(
            "dev_1",
            "a@example.com",
            "h",
            &["prj_1".into(), "prj_missing".into()],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound));
    assert!(matches!(
        store.developer_credentials("a@example.com").await,
        Ok(None)
    ));
    store
        .insert_developer("dev_1", "a@example.com", "h", &["prj_1".into()])
        .await
        .unwrap();
    assert_eq!(
        store
            .developer_credentials("a@example.com")
            .await
            .unwrap()
            .unwrap()
            .0,
        "dev_1"
    );
    let dup = store
        .insert_developer("dev_2", "a@example.com", "h", &[])
        .await
        .unwrap_err();
    assert!(matches!(dup, StoreError::Conflict));
}

async fn settings_are_set_once(store: &Store) {
    assert_eq!(store.setting("admin").await.unwrap(), None);
    assert!(store.init_setting("admin", "one").await.unwrap());
    assert!(!store.init_setting("admin", "two").await.unwrap());
    assert_eq!(
        store.setting("admin").await.unwrap().as_deref(),
        Some("one")
    );
}

async fn blobs_roundtrip_exactly(store: &Store) {
    let s = sealed(0xff);
    store
        .overwrite_secret("w_1", "wallet_key", &s)
        .await
        .unwrap();
    assert_eq!(store.secret("w_1", "wallet_key").await.unwrap().unwrap(), s);
}

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
    }
}

async fn login_state_is_single_use_and_bound_to_the_browser(store: &Store) {
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
async fn first_login(
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

async fn concurrent_first_logins_create_one_user(store: &Store) {
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
async fn seed_user(store: &Store) {
    seed(store).await;
    let now = now_unix();
    store.insert_login_state(&state("s0", now)).await.unwrap();
    let w = wallet("w1", "u1");
    let key = sealed(1);
    first_login(store, "s0", "bob", ("u1", "i1", &w, &key), now).await;
}

async fn login_code_is_single_use(store: &Store) {
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

async fn sessions_expire_and_revoke(store: &Store) {
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

async fn secret_rules_hold_even_against_concurrent_changes(store: &Store) {
    seed(store).await;
    let mut c = oidc("ptn_1", "https://a.example");
    c.auth_method = AuthMethod::None;
    store.upsert_custom_oidc(&c).await.unwrap();
    // a secret for a `none` config is refused at the row
    assert!(matches!(
        store.set_client_secret("ptn_1", &sealed(1)).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.secret("ptn_1", PURPOSE_OIDC_CLIENT_SECRET).await,
        Ok(None)
    ));
    // switching to a secret method with enabled=true but no secret stays off
    c.auth_method = AuthMethod::ClientSecretPost;
    c.enabled = true;
    assert!(!store.upsert_custom_oidc(&c).await.unwrap().enabled);
    store.set_client_secret("ptn_1", &sealed(2)).await.unwrap();
    assert!(store.upsert_custom_oidc(&c).await.unwrap().enabled);
}

async fn provider_cache_keeps_one_row_per_url_and_limits_unknown_kid_refetches(store: &Store) {
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

/// A database written by the earlier storage layer (sqlx's `Any` driver
/// over SQLite, schema version 4; `keystead serve` with one project, one
/// API key and a Custom OIDC config) opens, migrates and reads the same.
#[tokio::test]
async fn sqlite_database_of_the_sqlx_version_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/sqlx-any-v4.db"),
        &path,
    )
    .unwrap();
    let store = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let partner = store
        .partner_by_publishable_key("pk_uwjktnvlu2f2fgofujlgqxupoo5e2vdg")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(partner.id, "ptn_62zhn2s74bgoa3nldpytdqpkevtigbew");
    let oidc = store.custom_oidc(&partner.id).await.unwrap().unwrap();
    assert_eq!(oidc.issuer, "https://idp.example.com");
    assert_eq!(oidc.auth_method, AuthMethod::None);
    assert!(!oidc.enabled);
    // and it takes new writes under the same schema
    store
        .set_allowed_return_urls(&partner.id, &["https://app.example.com/done".into()])
        .await
        .unwrap();
    assert_eq!(
        store
            .partner(&partner.id)
            .await
            .unwrap()
            .unwrap()
            .allowed_return_urls,
        vec!["https://app.example.com/done".to_string()]
    );
    store.close().await;
}
