//! One storage suite, run against both backends: every test below exists
//! twice, `sqlite::name` and `postgres::name`. PostgreSQL comes from
//! `KEYSTEAD_TEST_POSTGRES_URL` (default: the local server's `test`
//! database); each test gets a fresh database there, dropped afterwards.

use keystead_crypto::{Sealed, WrappedKey};

use super::*;

mod records;
mod signin;

use records::*;
use signin::*;

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
    test_logins_start_once_and_finish_once,
    sessions_expire_and_revoke,
    secret_rules_hold_even_against_concurrent_changes,
    provider_cache_keeps_one_row_per_url_and_limits_unknown_kid_refetches,
    shared_rate_buckets_refill_and_refuse,
    portal_sessions_and_listings,
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
        allowed_email_domains: Vec::new(),
        require_verified_email: false,
        allow_sign_up: true,
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
    assert_eq!(n, 9);
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
        .partner_by_publishable_key("pk_ixdi3uwcgaugh3qawuazplrscnedbpx6")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(partner.id, "ptn_fin35tpczgwseitfgaua45gng7bi7lxg");
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

/// PostgreSQL keeps the buckets every instance shares; SQLite (one process)
/// leaves them to the process.
async fn shared_rate_buckets_refill_and_refuse(store: &Store) {
    let t0 = 1_900_000_000_000;
    let first = store.take_token("w p1", 2.0, 3.0, t0).await.unwrap();
    if store.backend() == Backend::Sqlite {
        assert_eq!(first, None);
        return;
    }
    assert_eq!(first, Some(Ok(())));
    assert_eq!(
        store.take_token("w p1", 2.0, 3.0, t0).await.unwrap(),
        Some(Ok(()))
    );
    assert_eq!(
        store.take_token("w p1", 2.0, 3.0, t0).await.unwrap(),
        Some(Ok(()))
    );
    // empty: wait half a second for the next token (rounded up to 1 s)
    assert_eq!(
        store.take_token("w p1", 2.0, 3.0, t0).await.unwrap(),
        Some(Err(1))
    );
    // other buckets are their own
    assert_eq!(
        store.take_token("w p2", 2.0, 3.0, t0).await.unwrap(),
        Some(Ok(()))
    );
    // 500 ms later one token is back, and only one
    let t1 = t0 + 500;
    assert_eq!(
        store.take_token("w p1", 2.0, 3.0, t1).await.unwrap(),
        Some(Ok(()))
    );
    assert!(matches!(
        store.take_token("w p1", 2.0, 3.0, t1).await.unwrap(),
        Some(Err(_))
    ));
    // a clock behind the last take refills nothing and breaks nothing
    assert!(matches!(
        store.take_token("w p1", 2.0, 3.0, t0).await.unwrap(),
        Some(Err(_))
    ));
}

async fn portal_sessions_and_listings(store: &Store) {
    seed(store).await;
    store
        .insert_developer("dev_1", "dev@acme.test", "hash", &["prj_1".into()])
        .await
        .unwrap();
    store
        .insert_portal_session("th_1", "dev_1", "csrf_1", 100, 200)
        .await
        .unwrap();
    let s = store.portal_session("th_1", 150).await.unwrap().unwrap();
    assert_eq!(
        (s.email.as_str(), s.csrf_token.as_str()),
        ("dev@acme.test", "csrf_1")
    );
    assert_eq!(
        store.portal_session("th_1", 200).await.unwrap(),
        None,
        "expired"
    );
    let projects = store.projects_of_developer("dev_1").await.unwrap();
    assert_eq!(projects.len(), 1);
    assert_eq!(projects[0].id, "prj_1");
    assert!(store
        .projects_of_developer("dev_2")
        .await
        .unwrap()
        .is_empty());
    let keys = store.partners_of_project("prj_1").await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].id, "ptn_1");
    store.delete_portal_session("th_1").await.unwrap();
    assert_eq!(store.portal_session("th_1", 150).await.unwrap(), None);
}
