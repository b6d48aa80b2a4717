//! The partner's configuration (SPEC §3 and the return URLs of §4): secret
//! key authentication, the partner record, the Custom OIDC configuration
//! and its client secret, sealed at rest.

use std::sync::Arc;

use keystead_crypto::hashing::token_hash;
use keystead_crypto::{ExposeSecret, KeyProvider, SecretString};
use keystead_proto::{self as proto, ErrorCode};
use keystead_store::{CustomOidcRow, PartnerRow, Store, StoreError, PURPOSE_OIDC_CLIENT_SECRET};
use keystead_store::{OidcConfigStore, PartnerStore, SecretStore};

use crate::config::DomainConfig;
use crate::error::{Error, Result};
use crate::rules;
use crate::sdk_cache::SdkConfigCache;
use crate::time_fmt::rfc3339;

/// An authenticated partner (by secret key or, later, a portal session).
#[derive(Debug, Clone)]
pub struct PartnerAuth {
    pub partner: PartnerRow,
}

/// Configuration: the store, the key provider (client secrets are sealed)
/// and the public URL (the redirect URI partners register).
#[derive(Clone)]
pub struct Configuration<S = Store> {
    store: S,
    keys: Arc<dyn KeyProvider>,
    config: Arc<DomainConfig>,
    /// Emptied by every write here (the SDK's configuration is cached).
    sdk_cache: Arc<SdkConfigCache>,
}

impl<S> std::fmt::Debug for Configuration<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Configuration").finish_non_exhaustive()
    }
}

impl<S: PartnerStore + OidcConfigStore + SecretStore> Configuration<S> {
    pub(crate) fn new(
        store: S,
        keys: Arc<dyn KeyProvider>,
        config: Arc<DomainConfig>,
        sdk_cache: Arc<SdkConfigCache>,
    ) -> Self {
        Configuration {
            store,
            keys,
            config,
            sdk_cache,
        }
    }

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

    /// The decrypted client secret (sign-in reads it for the token
    /// request only).
    pub async fn client_secret(&self, partner_id: &str) -> Result<Option<SecretString>> {
        client_secret(&self.store, self.keys.as_ref(), partner_id).await
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
            redirect_uri: self.config.redirect_uri(),
            last_verification: row
                .last_verification
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok()),
            allowed_email_domains: row.allowed_email_domains.clone(),
            require_verified_email: row.require_verified_email,
            allow_sign_up: row.allow_sign_up,
        }
    }

    pub async fn get_custom_oidc(&self, auth: &PartnerAuth) -> Result<proto::CustomOidc> {
        let row = custom_oidc_row(&self.store, &auth.partner.id).await?;
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
        let allowed_email_domains = match &req.allowed_email_domains {
            Some(list) => keystead_model::rules::email_domains(list)?
                .iter()
                .map(keystead_model::rules::DomainRule::as_string)
                .collect(),
            None => current
                .as_ref()
                .map(|c| c.allowed_email_domains.clone())
                .unwrap_or_default(),
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
            allowed_email_domains,
            require_verified_email: req
                .require_verified_email
                .unwrap_or_else(|| current.as_ref().is_some_and(|c| c.require_verified_email)),
            allow_sign_up: req
                .allow_sign_up
                .unwrap_or_else(|| current.as_ref().is_none_or(|c| c.allow_sign_up)),
        };
        let stored = self.store.upsert_custom_oidc(&row).await;
        self.sdk_cache.invalidate();
        let stored = stored?;
        Ok(self.custom_oidc_view(&stored))
    }

    pub async fn set_client_secret(&self, auth: &PartnerAuth, secret: &SecretString) -> Result<()> {
        rules::client_secret(secret.expose_secret())?;
        let row = custom_oidc_row(&self.store, &auth.partner.id).await?;
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
        let row = custom_oidc_row(&self.store, &auth.partner.id).await?;
        self.store
            .clear_client_secret(&auth.partner.id, row.auth_method.needs_secret())
            .await?;
        tracing::info!(partner_id = %auth.partner.id, "custom OIDC client secret removed");
        Ok(())
    }

    pub async fn delete_custom_oidc(&self, auth: &PartnerAuth) -> Result<()> {
        let deleted = self.store.delete_custom_oidc(&auth.partner.id).await;
        self.sdk_cache.invalidate();
        match deleted {
            Err(StoreError::NotFound) => Err(Error::new(
                ErrorCode::CustomOidcNotConfigured,
                "Custom OIDC is not configured for this API key",
            )),
            other => Ok(other?),
        }
    }
}

/// The partner's Custom OIDC configuration, or the error saying it has none.
pub(crate) async fn custom_oidc_row(
    store: &impl OidcConfigStore,
    partner_id: &str,
) -> Result<CustomOidcRow> {
    store.custom_oidc(partner_id).await?.ok_or_else(|| {
        Error::with_hint(
            ErrorCode::CustomOidcNotConfigured,
            "Custom OIDC is not configured for this API key",
            "configure it with PUT /v1/partner/custom-oidc or `keystead oidc configure`",
        )
    })
}

/// The decrypted client secret, for the token request only.
pub(crate) async fn client_secret(
    store: &impl SecretStore,
    keys: &dyn KeyProvider,
    partner_id: &str,
) -> Result<Option<SecretString>> {
    let Some(sealed) = store.secret(partner_id, PURPOSE_OIDC_CLIENT_SECRET).await? else {
        return Ok(None);
    };
    let plain =
        keystead_crypto::open(keys, partner_id, PURPOSE_OIDC_CLIENT_SECRET, &sealed).await?;
    let text = std::str::from_utf8(&plain)
        .map_err(|_| Error::internal("stored client secret is not UTF-8"))?;
    Ok(Some(SecretString::from(text.to_string())))
}

fn unauthorized_partner() -> Error {
    Error::new(
        ErrorCode::Unauthorized,
        "a valid secret key is required (X-API-Key: sk_… or Authorization: Bearer sk_…)",
    )
}
