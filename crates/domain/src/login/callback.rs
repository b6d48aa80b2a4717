//! The callback's real work, between a valid state and a redirect with a
//! login code: the IdP's answer, the token exchange, the ID token and
//! userinfo, the sign-in rules, then the one transaction that records the
//! login (a new user with a wallet, or the existing one, and claims).

use keystead_crypto::hashing::token_hash;
use keystead_oidc::jose::{self, IdClaims};
use keystead_oidc::{OidcError, ProviderMetadata, TokenResponse};
use keystead_proto::ErrorCode;
use keystead_store::{
    CustomOidcRow, FinishLogin, LoginFinished, LoginStateRow, WalletRow, PURPOSE_WALLET_KEY,
};
use serde_json::Value;

use super::SignInStorage;
use super::{CallbackParams, Identity, SignIn, LOGIN_CODE_TTL_SECS};
use crate::error::{Error, Result};

/// What userinfo added to a sign-in.
pub(super) enum Userinfo {
    /// Not asked: no email wanted, the ID token has a verified one, or no
    /// endpoint or access token.
    NotNeeded,
    /// The answer, for the ID token's subject.
    Same(Value),
    /// An answer for someone else (OpenID Connect Core 5.3.2): refused.
    OtherSubject,
    Failed(OidcError),
}

/// The ID token of a token response.
pub(super) fn id_token_of(tokens: &TokenResponse) -> Result<&str> {
    tokens.id_token.as_deref().ok_or_else(|| {
        Error::new(
            ErrorCode::IdTokenInvalid,
            "the token response has no id_token (is the openid scope granted?)",
        )
    })
}

impl<S> SignIn<S>
where
    S: SignInStorage,
{
    /// Everything between a valid state and a verified identity.
    pub(super) async fn complete(
        &self,
        login: &LoginStateRow,
        p: &CallbackParams,
        now: i64,
    ) -> Result<Identity> {
        if let Some(err) = &p.error {
            return Err(keystead_oidc::idp_error(
                &self.config.redirect_uri(),
                err,
                p.error_description.as_deref(),
            )
            .into());
        }
        let config =
            match self.store.custom_oidc(&login.partner_id).await? {
                Some(c) if c.enabled && c.issuer == login.issuer => c,
                _ => return Err(Error::new(
                    ErrorCode::CustomOidcDisabled,
                    "Custom OIDC sign-in was disabled or changed during this sign-in; start again",
                )),
            };
        let meta = self.idp.metadata(&config.issuer).await?;
        match &p.iss {
            Some(iss) if iss != &config.issuer => {
                return Err(Error::new(
                    ErrorCode::IdpError,
                    "the authorization response came from another issuer (RFC 9207 iss mismatch); the sign-in was stopped",
                ))
            }
            None if meta.iss_param_supported => {
                return Err(Error::new(
                    ErrorCode::IdpError,
                    "the IdP promises an iss parameter (RFC 9207) but the authorization response has none",
                ))
            }
            _ => {}
        }
        let code = p.code.as_deref().filter(|c| !c.is_empty()).ok_or_else(|| {
            Error::new(
                ErrorCode::IdpError,
                "the IdP sent neither a code nor an error",
            )
        })?;

        let tokens = self.exchange_code(&config, login, &meta, code).await?;
        let claims = self
            .idp
            .verify_id_token(
                &meta,
                id_token_of(&tokens)?,
                &config.issuer,
                &config.client_id,
                &login.nonce,
                now,
            )
            .await?;
        let email = match self.userinfo(&config, &meta, &tokens, &claims).await {
            Userinfo::NotNeeded => claims.verified_email(),
            Userinfo::Same(info) => jose::verified_email(&info),
            Userinfo::OtherSubject => {
                return Err(Error::new(
                    ErrorCode::IdTokenInvalid,
                    "the IdP's userinfo answer is for another subject than the ID token",
                ))
            }
            // The ID token alone is a valid sign-in; without userinfo
            // there is just no verified email.
            Userinfo::Failed(e) => {
                tracing::warn!(partner_id = %login.partner_id, error = %e, "userinfo failed; signing in without email");
                None
            }
        };
        let who = Identity::new(&config.issuer, claims.sub, email);
        self.check_rules(&config, &who).await?;
        Ok(who)
    }

    /// The token request with the configured client authentication (the
    /// secret unsealed only when the method needs one).
    pub(super) async fn exchange_code(
        &self,
        config: &CustomOidcRow,
        login: &LoginStateRow,
        meta: &ProviderMetadata,
        code: &str,
    ) -> Result<TokenResponse> {
        let secret = if config.auth_method.needs_secret() {
            crate::configuration::client_secret(&self.store, self.keys.as_ref(), &login.partner_id)
                .await?
        } else {
            None
        };
        let credentials =
            keystead_oidc::ClientCredentials::new(config.auth_method, &config.client_id, secret)?;
        Ok(self
            .idp
            .token_request(
                &credentials,
                &self.config.redirect_uri(),
                meta,
                code,
                &login.pkce_verifier,
            )
            .await?)
    }

    /// Userinfo, asked when the email scope was requested and the ID token
    /// carries no verified email (many IdPs put `email` but not
    /// `email_verified` in it).
    pub(super) async fn userinfo(
        &self,
        config: &CustomOidcRow,
        meta: &ProviderMetadata,
        tokens: &TokenResponse,
        claims: &IdClaims,
    ) -> Userinfo {
        let wants_email = config.scopes.split(' ').any(|s| s == "email");
        let (Some(ui), Some(at)) = (&meta.userinfo_endpoint, &tokens.access_token) else {
            return Userinfo::NotNeeded;
        };
        if !wants_email || claims.verified_email().is_some() {
            return Userinfo::NotNeeded;
        }
        match self.idp.userinfo(ui, at).await {
            Ok(info) if info.get("sub").and_then(Value::as_str) == Some(claims.sub.as_str()) => {
                Userinfo::Same(info)
            }
            Ok(_) => Userinfo::OtherSubject,
            Err(e) => Userinfo::Failed(e),
        }
    }

    /// The configuration's sign-in rules (SPEC §11), after the ID token and
    /// before any write. The message names the rule, never the email.
    pub(super) async fn check_rules(&self, config: &CustomOidcRow, who: &Identity) -> Result<()> {
        let partner_id = config.partner_id.as_str();
        let refuse = |rule: &str| {
            Err(Error::new(
                ErrorCode::SignInNotAllowed,
                format!("this sign-in is not allowed by the app's sign-in rules: {rule}"),
            ))
        };
        let email = who.email.as_deref();
        if config.require_verified_email && email.is_none() {
            return refuse("a verified email is required");
        }
        let domains = keystead_model::rules::email_domains(&config.allowed_email_domains)
            .map_err(|e| Error::internal(format!("stored email domains: {}", e.message)))?;
        if !keystead_model::rules::email_allowed(&domains, email) {
            return refuse("the email's domain is not one of the allowed email domains");
        }
        if !config.allow_sign_up {
            let known = self
                .store
                .find_identity(partner_id, &who.issuer, &who.sub)
                .await?
                .is_some();
            let claims = match email {
                Some(e) if !known => !self
                    .store
                    .unclaimed_wallets_for_email(partner_id, e)
                    .await?
                    .is_empty(),
                _ => false,
            };
            if !known && !claims {
                return refuse("sign-up is closed: only existing users may sign in");
            }
        }
        Ok(())
    }

    /// Writes the end of a sign-in in one transaction: the state is used
    /// up, the user found or created with its first EVM wallet (concurrent
    /// first logins agree on one user), wallets claimed by verified email,
    /// the login code stored. `None`: another request used the state first.
    pub(super) async fn record_login(
        &self,
        login: &LoginStateRow,
        who: &Identity,
        code: &str,
        now: i64,
    ) -> Result<Option<String>> {
        let found = self
            .store
            .find_identity(&login.partner_id, &who.issuer, &who.sub)
            .await?;
        // Keys are generated and sealed before the transaction, so the
        // transaction itself is only writes.
        let prepared = match found {
            Some(_) => None,
            None => {
                let user_id = keystead_crypto::random_token("usr_");
                let wallet_id = keystead_crypto::random_token("wal_");
                let fresh = keystead_wallet::generate_evm();
                let sealed = keystead_crypto::seal(
                    self.keys.as_ref(),
                    &wallet_id,
                    PURPOSE_WALLET_KEY,
                    fresh.private_key.bytes(),
                )
                .await?;
                drop(fresh.private_key);
                let wallet = WalletRow {
                    id: wallet_id,
                    partner_id: login.partner_id.clone(),
                    user_id: Some(user_id.clone()),
                    kind: fresh.kind,
                    address: fresh.address,
                    public_key: fresh.public_key,
                    user_identifier: None,
                    user_identifier_type: None,
                    status: "READY".into(),
                    created_at: now,
                };
                Some((
                    user_id,
                    keystead_crypto::random_token("idn_"),
                    wallet,
                    sealed,
                ))
            }
        };
        let finished = self
            .store
            .finish_login(&FinishLogin {
                state_hash: &login.state_hash,
                now,
                partner_id: &login.partner_id,
                issuer: &who.issuer,
                sub: &who.sub,
                email: who.email.as_deref(),
                new_user: prepared
                    .as_ref()
                    .map(|(u, i, w, k)| (u.as_str(), i.as_str(), w, k)),
                code_hash: &token_hash(code),
                code_challenge: &login.app_code_challenge,
                code_ttl: LOGIN_CODE_TTL_SECS,
            })
            .await?;
        match finished {
            LoginFinished::StateUsed => Ok(None),
            LoginFinished::Done {
                user_id,
                created,
                claimed,
            } => {
                let partner_id = &login.partner_id;
                if created {
                    self.metrics.count_wallet(keystead_wallet::WalletType::Evm);
                    tracing::info!(%partner_id, %user_id, "new user with EVM wallet");
                }
                if claimed > 0 {
                    tracing::info!(%partner_id, %user_id, wallets = claimed, "pregenerated wallets claimed by verified email");
                }
                Ok(Some(user_id))
            }
        }
    }
}
