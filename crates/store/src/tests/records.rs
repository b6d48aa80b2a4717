//! Partners, projects, developers, Custom OIDC settings, secrets, settings.

use super::*;

pub(super) async fn partner_is_found_by_each_key(store: &Store) {
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

pub(super) async fn partner_with_oidc_comes_in_one_read(store: &Store) {
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

pub(super) async fn duplicate_publishable_key_is_a_conflict(store: &Store) {
    seed(store).await;
    let err = store
        .insert_partner("ptn_2", "prj_1", "web", "pk_1", "hash_2", 1)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err:?}");
    assert!(matches!(store.partner("ptn_2").await, Ok(None)));
}

pub(super) async fn custom_oidc_upsert_keeps_creation_and_drops_stale_verification(store: &Store) {
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

pub(super) async fn client_secret_set_and_clear(store: &Store) {
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

pub(super) async fn delete_custom_oidc_removes_secret(store: &Store) {
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

pub(super) async fn developer_with_unknown_project_creates_nothing(store: &Store) {
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

pub(super) async fn settings_are_set_once(store: &Store) {
    assert_eq!(store.setting("admin").await.unwrap(), None);
    assert!(store.init_setting("admin", "one").await.unwrap());
    assert!(!store.init_setting("admin", "two").await.unwrap());
    assert_eq!(
        store.setting("admin").await.unwrap().as_deref(),
        Some("one")
    );
}

pub(super) async fn blobs_roundtrip_exactly(store: &Store) {
    let s = sealed(0xff);
    store
        .overwrite_secret("w_1", "wallet_key", &s)
        .await
        .unwrap();
    assert_eq!(store.secret("w_1", "wallet_key").await.unwrap().unwrap(), s);
}

pub(super) async fn secret_rules_hold_even_against_concurrent_changes(store: &Store) {
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
