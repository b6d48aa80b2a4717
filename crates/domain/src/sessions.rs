//! Sessions (SPEC §4): a login code redeemed for a session token, the
//! session behind a bearer token, `/v1/me`, sign-out and session JWTs.

use keystead_crypto::hashing::token_hash;
use keystead_crypto::random_token_bits;
use keystead_proto::{self as proto, ErrorCode};
use keystead_store::{PartnerStore, SecretStore, SettingStore, SignInStore};
use keystead_store::{Redeemed, SessionRow};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use std::sync::Arc;

use keystead_crypto::KeyProvider;
use keystead_store::Store;

use crate::config::DomainConfig;
use crate::error::{Error, Result};
use crate::login::{is_pkce_value, partner_by_pk, s256, MAX_SESSION_SECS, SESSION_JWT_TTL_SECS};
use crate::metrics::Metrics;
use jwt::SessionSigner;

mod jwt;
use crate::time_fmt::rfc3339;
use crate::views::wallet_view;
use crate::Clock;

#[derive(Debug, Clone)]
pub struct UserSession {
    pub token_hash: String,
    pub session: SessionRow,
}

impl UserSession {
    /// The session's public id (`sid` of its JWTs): derived from the
    /// stored token hash by another hash, so it identifies the session
    /// without being a way to find or use the token.
    pub fn session_id(&self) -> String {
        let d = Sha256::digest(format!("keystead sid\0{}", self.token_hash));
        format!("ses_{}", hex::encode(&d[..16]))
    }
}

/// Sessions: the store, the key provider (the session JWT signing key is
/// sealed), metrics, the clock and the public URL (the JWTs' issuer).
#[derive(Clone)]
pub struct Sessions<S = Store> {
    pub(crate) store: S,
    pub(crate) keys: Arc<dyn KeyProvider>,
    pub(crate) signer: Arc<tokio::sync::OnceCell<SessionSigner>>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: Arc<DomainConfig>,
}

impl<S: PartnerStore + SignInStore + SecretStore + SettingStore> Sessions<S> {
    pub(crate) fn new(
        store: S,
        keys: Arc<dyn KeyProvider>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        config: Arc<DomainConfig>,
    ) -> Self {
        Sessions {
            store,
            keys,
            signer: Arc::new(tokio::sync::OnceCell::new()),
            metrics,
            clock,
            config,
        }
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now()
    }

    /// `POST /v1/sessions`: a login code and the app's PKCE verifier for a
    /// session token.
    pub async fn create_session(
        &self,
        api_key: &str,
        login_code: &str,
        code_verifier: &str,
    ) -> Result<proto::SessionCreated> {
        let partner = partner_by_pk(&self.store, api_key).await?;
        let now = self.now();
        let invalid = || {
            Error::new(
                ErrorCode::LoginCodeInvalid,
                "login_code is invalid, expired (60 s) or already used; sign in again",
            )
        };
        let token = random_token_bits("kst_", 32);
        let expires_at = now + partner.session_ttl_secs.clamp(60, MAX_SESSION_SECS);
        let verifier_ok = |challenge: &str| {
            is_pkce_value(code_verifier)
                && keystead_crypto::hashing::constant_time_eq(
                    s256(code_verifier).as_bytes(),
                    challenge.as_bytes(),
                )
        };
        let redeemed = self
            .store
            .redeem_login_code(
                &token_hash(login_code),
                &partner.id,
                now,
                verifier_ok,
                &token_hash(&token),
                expires_at,
            )
            .await?;
        let user_id = match redeemed {
            Redeemed::Invalid => return Err(invalid()),
            Redeemed::PkceMismatch => {
                return Err(Error::new(
                    ErrorCode::PkceInvalid,
                    "code_verifier does not match the code_challenge this sign-in started with; the login code is now used up",
                ))
            }
            Redeemed::Session { user_id } => user_id,
        };
        self.metrics
            .inc("keystead_sessions_created_total", String::new());
        let me = self.me(&user_id).await?;
        Ok(proto::SessionCreated {
            session_token: token,
            expires_at: rfc3339(expires_at),
            user: me.user,
            wallets: me.wallets,
        })
    }

    pub async fn authenticate_session(&self, token: &str) -> Result<UserSession> {
        let unauthorized = || {
            Error::new(
                ErrorCode::Unauthorized,
                "a valid session token is required (Authorization: Bearer …)",
            )
        };
        if !token.starts_with("kst_") {
            return Err(unauthorized());
        }
        let hash = token_hash(token);
        let session = self
            .store
            .session(&hash, self.now())
            .await?
            .ok_or_else(unauthorized)?;
        Ok(UserSession {
            token_hash: hash,
            session,
        })
    }

    /// `GET /v1/me`: the user, their identities and wallets.
    pub async fn me(&self, user_id: &str) -> Result<proto::Me> {
        let identities = self
            .store
            .identities_of_user(user_id)
            .await?
            .into_iter()
            .map(|i| proto::Identity {
                issuer: i.issuer,
                sub: i.sub,
                email: i.email,
            })
            .collect();
        let wallets = self
            .store
            .wallets_of_user(user_id)
            .await?
            .iter()
            .map(wallet_view)
            .collect();
        Ok(proto::Me {
            user: proto::User {
                id: user_id.to_string(),
                identities,
            },
            wallets,
        })
    }

    pub async fn logout(&self, s: &UserSession) -> Result<()> {
        self.store.revoke_session(&s.token_hash, self.now()).await?;
        Ok(())
    }

    /// `POST /v1/sessions/jwt`
    pub async fn session_jwt(&self, s: &UserSession) -> Result<proto::SessionJwt> {
        let signer = self.session_signer().await?;
        let wallets: Vec<Value> = self
            .store
            .wallets_of_user(&s.session.user_id)
            .await?
            .iter()
            .map(|w| json!({"id": w.id, "type": w.kind.as_str(), "address": w.address, "publicKey": w.public_key}))
            .collect();
        let now = self.now();
        let claims = json!({
            "iss": self.config.issuer_url(),
            "aud": s.session.partner_id,
            "sub": s.session.user_id,
            "sid": s.session_id(),
            "iat": now,
            // Short-lived: a logout (or an expired session) stops new ones,
            // so a revoked session's JWTs die within this window.
            "exp": s.session.expires_at.min(now + SESSION_JWT_TTL_SECS),
            "data": { "wallets": wallets },
        });
        Ok(proto::SessionJwt {
            token: signer.sign(&claims)?,
            key_id: signer.kid.clone(),
        })
    }
}
