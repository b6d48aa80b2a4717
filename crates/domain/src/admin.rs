//! The operator's API (SPEC §5): the admin token, projects, API keys and
//! developers.

use keystead_crypto::hashing::{constant_time_eq, hash_password, token_hash};
use keystead_crypto::{random_token, random_token_bits, ExposeSecret, SecretString};
use keystead_proto::{self as proto, ErrorCode};
use keystead_store::{PartnerStore, SettingStore};
use keystead_store::{Store, StoreError};

use crate::error::{Error, Result};

/// Session lifetime of a new API key's partner.
pub const DEFAULT_SESSION_TTL_SECS: i64 = 7 * 24 * 3600;
const ADMIN_TOKEN_SETTING: &str = "admin_token_hash";

/// Operator actions: needs only the store.
#[derive(Debug, Clone)]
pub struct Admin<S = Store> {
    store: S,
}

/// The admin token, before any service exists (start-up, `keystead admin
/// reset-token`): on any [`SettingStore`].
impl Admin {
    /// A fresh admin token, not stored yet: the caller writes it where the
    /// operator finds it first, then stores it with [`Admin::ensure_admin_token`]
    /// or [`Admin::replace_admin_token`], so that a stored token is never one
    /// nobody has.
    pub fn new_admin_token() -> SecretString {
        SecretString::from(random_token_bits("kat_", 32))
    }

    /// Whether the deployment has an admin token.
    pub async fn has_admin_token(store: &impl SettingStore) -> Result<bool> {
        Ok(store.setting(ADMIN_TOKEN_SETTING).await?.is_some())
    }

    /// Stores `token` (hashed) as the admin token unless the deployment has
    /// one; returns whether this call stored it (`false`: another instance
    /// starting at the same time was first, and `token` does not work).
    pub async fn ensure_admin_token(
        store: &impl SettingStore,
        token: &SecretString,
    ) -> Result<bool> {
        Ok(store
            .init_setting(ADMIN_TOKEN_SETTING, &token_hash(token.expose_secret()))
            .await?)
    }

    /// Makes `token` the admin token; the previous one stops working
    /// (`keystead admin reset-token`).
    pub async fn replace_admin_token(
        store: &impl SettingStore,
        token: &SecretString,
    ) -> Result<()> {
        Ok(store
            .set_setting(ADMIN_TOKEN_SETTING, &token_hash(token.expose_secret()))
            .await?)
    }

    /// Whether `presented` is the stored admin token.
    pub async fn admin_token_matches(store: &impl SettingStore, presented: &str) -> Result<bool> {
        let Some(stored) = store.setting(ADMIN_TOKEN_SETTING).await? else {
            return Ok(false);
        };
        Ok(constant_time_eq(
            stored.as_bytes(),
            token_hash(presented).as_bytes(),
        ))
    }
}

impl<S: PartnerStore + SettingStore> Admin<S> {
    pub fn new(store: S) -> Self {
        Admin { store }
    }

    pub async fn check_admin_token(&self, presented: &str) -> Result<()> {
        if Admin::admin_token_matches(&self.store, presented).await? {
            return Ok(());
        }
        Err(Error::new(
            ErrorCode::Unauthorized,
            "a valid admin token is required (Authorization: Bearer <token from keystead-data/admin-token>)",
        ))
    }

    pub async fn create_project(&self, name: &str) -> Result<proto::Project> {
        let name = display_name(name, "project name")?;
        let row = self
            .store
            .insert_project(&random_token("prj_"), &name)
            .await?;
        Ok(proto::Project {
            id: row.id,
            name: row.name,
        })
    }

    pub async fn create_api_key(
        &self,
        project_id: &str,
        name: &str,
    ) -> Result<proto::CreatedApiKey> {
        create_api_key(&self.store, project_id, name).await
    }

    pub async fn create_developer(&self, req: &proto::CreateDeveloper) -> Result<proto::Developer> {
        let email = req.email.trim().to_ascii_lowercase();
        if email.len() > 254
            || !email.contains('@')
            || email.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(Error::new(
                ErrorCode::InvalidRequest,
                "email is not a valid address",
            ));
        }
        if req.password.chars().count() < 12 {
            return Err(Error::new(
                ErrorCode::InvalidRequest,
                "password must be at least 12 characters long",
            ));
        }
        let hash = hash_password_blocking(req.password.clone()).await?;
        match self
            .store
            .insert_developer(&random_token("dev_"), &email, &hash, &req.project_ids)
            .await
        {
            Ok(row) => Ok(proto::Developer {
                id: row.id,
                email: row.email,
                project_ids: row.project_ids,
            }),
            Err(StoreError::Conflict) => Err(Error::new(
                ErrorCode::Conflict,
                format!("a developer with email {email} already exists"),
            )),
            Err(StoreError::NotFound) => Err(Error::new(
                ErrorCode::NotFound,
                "one of project_ids does not exist",
            )),
            Err(e) => Err(e.into()),
        }
    }
}

/// A new API key (a partner) of an existing project; its secret key is in
/// the answer only (the operator API and the portal both make them).
pub(crate) async fn create_api_key(
    store: &impl PartnerStore,
    project_id: &str,
    name: &str,
) -> Result<proto::CreatedApiKey> {
    let name = display_name(name, "API key name")?;
    if store.project(project_id).await?.is_none() {
        return Err(Error::new(
            ErrorCode::NotFound,
            format!("project {project_id:?} does not exist"),
        ));
    }
    let secret_key = random_token_bits("sk_", 32);
    let partner = store
        .insert_partner(
            &random_token("ptn_"),
            project_id,
            &name,
            &random_token("pk_"),
            &token_hash(&secret_key),
            DEFAULT_SESSION_TTL_SECS,
        )
        .await?;
    Ok(proto::CreatedApiKey {
        partner_id: partner.id,
        publishable_key: partner.publishable_key,
        secret_key,
    })
}

fn display_name(raw: &str, what: &str) -> Result<String> {
    let t = raw.trim();
    if t.is_empty() || t.chars().count() > 100 || t.chars().any(char::is_control) {
        return Err(Error::new(
            ErrorCode::InvalidRequest,
            format!("{what} must be 1–100 characters without control characters"),
        ));
    }
    Ok(t.to_string())
}

/// argon2id costs tens of milliseconds of CPU: keep it off the async workers.
pub(crate) async fn hash_password_blocking(password: String) -> Result<String> {
    let password = zeroize::Zeroizing::new(password);
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(Error::internal)?
        .map_err(Error::internal)
}
