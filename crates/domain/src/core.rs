//! [`Core`]: the operations of SPEC §5 for operators and partners, on top of
//! the store, the key provider and the outbound client.

use std::sync::Arc;

use keystead_crypto::hashing::{constant_time_eq, hash_password, token_hash};
use keystead_crypto::{random_token, ExposeSecret, KeyProvider, SecretString};
use keystead_net::Outbound;
use keystead_proto::{self as proto, ErrorCode};
use keystead_store::{CustomOidcRow, PartnerRow, Store, StoreError, PURPOSE_OIDC_CLIENT_SECRET};
use url::Url;

use crate::error::{Error, Result};
use crate::rules;
use crate::time_fmt::rfc3339;

pub const DEFAULT_SESSION_TTL_SECS: i64 = 7 * 24 * 3600;
const ADMIN_TOKEN_SETTING: &str = "admin_token_hash";

#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub public_url: Url,
    /// Wallet route rate limit per partner: requests per second and burst.
    pub wallet_rate: (f64, f64),
}

impl CoreConfig {
    pub fn new(public_url: Url) -> Self {
        Self {
            public_url,
            wallet_rate: (10.0, 20.0),
        }
    }
}

/// Everything the domain needs, cheap to clone (all shared).
#[derive(Clone)]
pub struct Core {
    pub(crate) store: Store,
    pub(crate) keys: Arc<dyn KeyProvider>,
    pub(crate) config: Arc<CoreConfig>,
    pub(crate) signer: Arc<tokio::sync::OnceCell<crate::session_jwt::SessionSigner>>,
    /// The partner IdPs: metadata, keys, token requests (SSRF-safe).
    pub(crate) idp: Arc<crate::idp::Idp>,
    pub(crate) limiter: Arc<crate::wallets::RateLimiter>,
    /// Sign-in starts per partner: `/auth/custom_oidc/start` is public (the
    /// publishable key is no secret) and writes a row per call.
    pub(crate) start_limiter: Arc<crate::wallets::RateLimiter>,
    /// Verify runs per partner: each makes outbound requests.
    pub(crate) verify_limiter: Arc<crate::wallets::RateLimiter>,
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    /// The time every expiry rule uses.
    pub(crate) clock: Arc<dyn crate::Clock>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// An authenticated partner (by secret key or, later, a portal session).
#[derive(Debug, Clone)]
pub struct PartnerAuth {
    pub partner: PartnerRow,
}

impl Core {
    pub fn new(
        store: Store,
        keys: Arc<dyn KeyProvider>,
        outbound: Outbound,
        config: CoreConfig,
    ) -> Self {
        let (rate, burst) = config.wallet_rate;
        Core {
            limiter: Arc::new(crate::wallets::RateLimiter::new(rate, burst)),
            start_limiter: Arc::new(crate::wallets::RateLimiter::new(
                crate::login::STARTS_PER_SECOND,
                crate::login::STARTS_BURST,
            )),
            verify_limiter: Arc::new(crate::wallets::RateLimiter::new(
                crate::verify::VERIFY_PER_SECOND,
                crate::verify::VERIFY_BURST,
            )),
            metrics: Arc::new(crate::metrics::Metrics::default()),
            idp: Arc::new(crate::idp::Idp::new(
                outbound,
                crate::idp::StoreDocs(store.clone()),
                Arc::new(crate::SystemClock),
            )),
            store,
            keys,
            config: Arc::new(config),
            signer: Arc::new(tokio::sync::OnceCell::new()),
            clock: Arc::new(crate::SystemClock),
        }
    }

    /// The same core reading time from `clock` (tests move time with a
    /// [`crate::ManualClock`]).
    pub fn with_clock(mut self, clock: Arc<dyn crate::Clock>) -> Self {
        self.idp = Arc::new(crate::idp::Idp::new(
            self.idp.outbound().clone(),
            crate::idp::StoreDocs(self.store.clone()),
            clock.clone(),
        ));
        self.clock = clock;
        self
    }

    /// The storage this core writes to (start-up and shutdown use it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The URL browsers reach keystead at.
    pub fn public_url(&self) -> &Url {
        &self.config.public_url
    }

    /// `GET /metrics` in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        self.metrics.render()
    }

    /// Now, in unix seconds, by this core's clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The redirect URI partners register at their IdP.
    pub fn redirect_uri(&self) -> String {
        format!("{}/auth/custom_oidc/callback", self.issuer_url())
    }

    // ---- operator -------------------------------------------------------

    /// A fresh admin token, not stored yet: the caller writes it where the
    /// operator finds it first, then stores it with [`Core::ensure_admin_token`]
    /// or [`Core::replace_admin_token`], so that a stored token is never one
    /// nobody has.
    pub fn new_admin_token() -> SecretString {
        SecretString::from(random_token_bits("kat_", 32))
    }

    /// Whether the deployment has an admin token.
    pub async fn has_admin_token(store: &Store) -> Result<bool> {
        Ok(store.setting(ADMIN_TOKEN_SETTING).await?.is_some())
    }

    /// Stores `token` (hashed) as the admin token unless the deployment has
    /// one; returns whether this call stored it (`false`: another instance
    /// starting at the same time was first, and `token` does not work).
    pub async fn ensure_admin_token(store: &Store, token: &SecretString) -> Result<bool> {
        Ok(store
            .init_setting(ADMIN_TOKEN_SETTING, &token_hash(token.expose_secret()))
            .await?)
    }

    /// Makes `token` the admin token; the previous one stops working
    /// (`keystead admin reset-token`).
    pub async fn replace_admin_token(store: &Store, token: &SecretString) -> Result<()> {
        Ok(store
            .set_setting(ADMIN_TOKEN_SETTING, &token_hash(token.expose_secret()))
            .await?)
    }

    /// Whether `presented` is the stored admin token.
    pub async fn admin_token_matches(store: &Store, presented: &str) -> Result<bool> {
        let Some(stored) = store.setting(ADMIN_TOKEN_SETTING).await? else {
            return Ok(false);
        };
        Ok(constant_time_eq(
            stored.as_bytes(),
            token_hash(presented).as_bytes(),
        ))
    }

    pub async fn check_admin_token(&self, presented: &str) -> Result<()> {
        if Self::admin_token_matches(&self.store, presented).await? {
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
        let name = display_name(name, "API key name")?;
        if self.store.project(project_id).await?.is_none() {
            return Err(Error::new(
                ErrorCode::NotFound,
                format!("project {project_id:?} does not exist"),
            ));
        }
        let secret_key = random_token_bits("sk_", 32);
        let partner = self
            .store
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

    // ---- partner --------------------------------------------------------

    pub async fn authenticate_secret_key(&self, presented: &str) -> Result<PartnerAuth> {
        if !presented.starts_with("sk_") {
            return Err(unauthorized_partner());
        }
        self.store
            .partner_by_secret_hash(&token_hash(presented))
            .await?
            .map(|partner| PartnerAuth { partner })
            .ok_or_else(unauthorized_partner)
    }

    pub fn partner_view(&self, p: &PartnerRow) -> proto::Partner {
        proto::Partner {
            partner_id: p.id.clone(),
            project_id: p.project_id.clone(),
            name: p.name.clone(),
            allowed_return_urls: p.allowed_return_urls.clone(),
        }
    }

    pub async fn patch_partner(
        &self,
        auth: &PartnerAuth,
        req: &proto::PatchPartner,
    ) -> Result<proto::Partner> {
        let urls: Vec<String> = rules::return_urls(&req.allowed_return_urls)?
            .into_iter()
            .map(rules::ReturnUrl::into_string)
            .collect();
        self.store
            .set_allowed_return_urls(&auth.partner.id, &urls)
            .await?;
        let p = self
            .store
            .partner(&auth.partner.id)
            .await?
            .ok_or_else(|| Error::internal("the authenticated partner vanished"))?;
        Ok(self.partner_view(&p))
    }

    pub async fn custom_oidc_row(&self, partner_id: &str) -> Result<CustomOidcRow> {
        self.store.custom_oidc(partner_id).await?.ok_or_else(|| {
            Error::with_hint(
                ErrorCode::CustomOidcNotConfigured,
                "Custom OIDC is not configured for this API key",
                "configure it with PUT /v1/partner/custom-oidc or `keystead oidc configure`",
            )
        })
    }

    pub fn custom_oidc_view(&self, row: &CustomOidcRow) -> proto::CustomOidc {
        proto::CustomOidc {
            enabled: row.enabled,
            issuer: row.issuer.clone(),
            client_id: row.client_id.clone(),
            scopes: row.scopes.clone(),
            token_endpoint_auth_method: row.auth_method.as_str().to_string(),
            button_label: row.button_label.clone(),
            client_secret_set: row.client_secret_updated_at.is_some(),
            client_secret_updated_at: row.client_secret_updated_at.map(rfc3339),
            redirect_uri: self.redirect_uri(),
            last_verification: row
                .last_verification
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok()),
        }
    }

    pub async fn get_custom_oidc(&self, auth: &PartnerAuth) -> Result<proto::CustomOidc> {
        let row = self.custom_oidc_row(&auth.partner.id).await?;
        Ok(self.custom_oidc_view(&row))
    }

    /// PUT: all fields are validated before anything is written.
    pub async fn put_custom_oidc(
        &self,
        auth: &PartnerAuth,
        req: &proto::PutCustomOidc,
    ) -> Result<proto::CustomOidc> {
        // Built once here, at the edge; valid by construction from now on.
        let issuer = rules::Issuer::try_from(req.issuer.as_deref().unwrap_or(""))?;
        let client_id = rules::ClientId::try_from(req.client_id.as_deref().unwrap_or(""))?;
        let button_label = rules::ButtonLabel::try_from(req.button_label.as_deref().unwrap_or(""))?;
        let current = self.store.custom_oidc(&auth.partner.id).await?;
        let scopes = match &req.scopes {
            Some(s) => rules::Scopes::try_from(s.as_str())?.into_string(),
            None => current
                .as_ref()
                .map(|c| c.scopes.clone())
                .unwrap_or_else(|| rules::DEFAULT_SCOPES.to_string()),
        };
        let auth_method = match &req.token_endpoint_auth_method {
            Some(m) => rules::AuthMethod::try_from(m.as_str())?,
            None => current.as_ref().map(|c| c.auth_method).unwrap_or_default(),
        };
        let enabled = req
            .enabled
            .unwrap_or_else(|| current.as_ref().is_some_and(|c| c.enabled));
        let secret_set = current
            .as_ref()
            .is_some_and(|c| c.client_secret_updated_at.is_some());
        if auth_method.needs_secret() {
            if enabled && !secret_set {
                return Err(Error::with_hint(
                    ErrorCode::ClientSecretRequired,
                    format!("{auth_method} needs a client secret before Custom OIDC can be enabled"),
                    "set it with PUT /v1/partner/custom-oidc/client-secret or `keystead oidc set-secret`, then enable",
                ));
            }
        } else if secret_set {
            return Err(Error::with_hint(
                ErrorCode::ClientSecretNotAllowed,
                "token_endpoint_auth_method none is for public clients and must not have a client secret stored",
                "remove the secret first (DELETE /v1/partner/custom-oidc/client-secret or `keystead oidc clear-secret`)",
            ));
        }
        let row = CustomOidcRow {
            partner_id: auth.partner.id.clone(),
            issuer: issuer.into_string(),
            client_id: client_id.into_string(),
            scopes,
            auth_method,
            button_label: button_label.into_string(),
            enabled,
            client_secret_updated_at: None,
            last_verification: None,
            created_at: 0,
            updated_at: 0,
        };
        let stored = self.store.upsert_custom_oidc(&row).await?;
        Ok(self.custom_oidc_view(&stored))
    }

    pub async fn set_client_secret(&self, auth: &PartnerAuth, secret: &SecretString) -> Result<()> {
        rules::client_secret(secret.expose_secret())?;
        let row = self.custom_oidc_row(&auth.partner.id).await?;
        if !row.auth_method.needs_secret() {
            return Err(Error::with_hint(
                ErrorCode::ClientSecretNotAllowed,
                "this configuration uses token_endpoint_auth_method none, which takes no client secret",
                "switch to client_secret_post or client_secret_basic first if your IdP gave you a secret",
            ));
        }
        let sealed = keystead_crypto::seal(
            self.keys.as_ref(),
            &auth.partner.id,
            PURPOSE_OIDC_CLIENT_SECRET,
            secret.expose_secret().as_bytes(),
        )
        .await?;
        match self.store.set_client_secret(&auth.partner.id, &sealed).await {
            Ok(()) => {}
            // The config vanished or switched to `none` since we read it.
            Err(StoreError::NotFound) => {
                return Err(Error::new(
                    ErrorCode::ClientSecretNotAllowed,
                    "the configuration changed meanwhile (removed, or switched to method none); check it and try again",
                ))
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(partner_id = %auth.partner.id, "custom OIDC client secret updated");
        Ok(())
    }

    pub async fn clear_client_secret(&self, auth: &PartnerAuth) -> Result<()> {
        let row = self.custom_oidc_row(&auth.partner.id).await?;
        self.store
            .clear_client_secret(&auth.partner.id, row.auth_method.needs_secret())
            .await?;
        tracing::info!(partner_id = %auth.partner.id, "custom OIDC client secret removed");
        Ok(())
    }

    /// The decrypted client secret, for the token request only.
    pub async fn client_secret(&self, partner_id: &str) -> Result<Option<SecretString>> {
        let Some(sealed) = self
            .store
            .secret(partner_id, PURPOSE_OIDC_CLIENT_SECRET)
            .await?
        else {
            return Ok(None);
        };
        let plain = keystead_crypto::open(
            self.keys.as_ref(),
            partner_id,
            PURPOSE_OIDC_CLIENT_SECRET,
            &sealed,
        )
        .await?;
        let text = std::str::from_utf8(&plain)
            .map_err(|_| Error::internal("stored client secret is not UTF-8"))?;
        Ok(Some(SecretString::from(text.to_string())))
    }

    pub async fn delete_custom_oidc(&self, auth: &PartnerAuth) -> Result<()> {
        match self.store.delete_custom_oidc(&auth.partner.id).await {
            Err(StoreError::NotFound) => Err(Error::new(
                ErrorCode::CustomOidcNotConfigured,
                "Custom OIDC is not configured for this API key",
            )),
            other => Ok(other?),
        }
    }

    pub async fn ready(&self) -> Result<()> {
        self.store.ping().await?;
        self.keys.check().await?;
        Ok(())
    }
}

fn unauthorized_partner() -> Error {
    Error::new(
        ErrorCode::Unauthorized,
        "a valid secret key is required (X-API-Key: sk_… or Authorization: Bearer sk_…)",
    )
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

fn random_token_bits(prefix: &str, bytes: usize) -> String {
    keystead_crypto::random_token_bits(prefix, bytes)
}

/// argon2id costs tens of milliseconds of CPU: keep it off the async workers.
async fn hash_password_blocking(password: String) -> Result<String> {
    let password = zeroize::Zeroizing::new(password);
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(Error::internal)?
        .map_err(Error::internal)
}
