//! The developer portal (SPEC §9): developers sign in with email and
//! password (argon2id), see their projects and API keys, and configure
//! Custom OIDC through the same services as the API. A developer reaches
//! only the projects they belong to: anything else is "not found".

use std::sync::Arc;

use keystead_crypto::hashing::{constant_time_eq, token_hash, verify_password};
use keystead_crypto::{random_token_bits, ExposeSecret, SecretString};
use keystead_proto::{self as proto, ErrorCode};
use keystead_store::{PartnerRow, PartnerStore, PortalSessionRow, PortalStore, ProjectRow, Store};

use crate::configuration::PartnerAuth;
use crate::error::{Error, Result};
use crate::limits::RateLimiter;
use crate::Clock;

/// A portal session lasts this long.
pub const PORTAL_SESSION_SECS: i64 = 12 * 3600;
/// Sign-in attempts per email address (and instance): a burst of 5, then
/// one every 10 seconds.
const SIGN_INS_PER_SECOND: f64 = 0.1;
const SIGN_INS_BURST: f64 = 5.0;
/// All sign-in attempts of the instance: argon2id costs tens of
/// milliseconds of CPU each.
const ALL_SIGN_INS_PER_SECOND: f64 = 20.0;
const ALL_SIGN_INS_BURST: f64 = 40.0;

/// A signed-in developer, with the CSRF token of their forms.
#[derive(Debug, Clone)]
pub struct DeveloperSession {
    pub developer_id: String,
    pub email: String,
    pub csrf_token: String,
}

/// A project with its API keys, as the portal lists them.
#[derive(Debug, Clone)]
pub struct ProjectKeys {
    pub project: ProjectRow,
    pub keys: Vec<PartnerRow>,
}

/// The portal's service: the store, the clock and the sign-in limits.
pub struct Portal<S = Store> {
    store: S,
    clock: Arc<dyn Clock>,
    per_email: RateLimiter,
    all: RateLimiter,
    /// A hash checked when the email is unknown, so a wrong email costs the
    /// same time as a wrong password.
    decoy: tokio::sync::OnceCell<String>,
}

fn wrong_credentials() -> Error {
    Error::new(ErrorCode::Unauthorized, "Email or password is wrong.")
}

fn not_found() -> Error {
    Error::new(ErrorCode::NotFound, "No such page.")
}

impl<S: PartnerStore + PortalStore> Portal<S> {
    pub(crate) fn new(store: S, clock: Arc<dyn Clock>) -> Self {
        Portal {
            store,
            clock,
            per_email: RateLimiter::new(SIGN_INS_PER_SECOND, SIGN_INS_BURST),
            all: RateLimiter::new(ALL_SIGN_INS_PER_SECOND, ALL_SIGN_INS_BURST),
            decoy: tokio::sync::OnceCell::new(),
        }
    }

    /// Checks email and password; the answer is the same for an unknown
    /// email and a wrong password. Returns the session token (for the
    /// cookie).
    pub async fn sign_in(&self, email: &str, password: &SecretString) -> Result<SecretString> {
        let email = email.trim().to_ascii_lowercase();
        for (limiter, key) in [(&self.per_email, email.as_str()), (&self.all, "")] {
            if let Err(retry_after) = limiter.check(key) {
                return Err(Error::RateLimited { retry_after });
            }
        }
        let found = self.store.developer_credentials(&email).await?;
        let (developer_id, hash) = match found {
            Some((id, hash)) => (Some(id), hash),
            None => (None, self.decoy_hash().await?),
        };
        let password = zeroize::Zeroizing::new(password.expose_secret().to_string());
        let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .map_err(Error::internal)?;
        let Some(developer_id) = developer_id.filter(|_| ok) else {
            return Err(wrong_credentials());
        };
        let token = random_token_bits("kps_", 32);
        let csrf = random_token_bits("", 24);
        let now = self.clock.now();
        self.store
            .insert_portal_session(
                &token_hash(&token),
                &developer_id,
                &csrf,
                now,
                now + PORTAL_SESSION_SECS,
            )
            .await?;
        tracing::info!(%developer_id, "developer signed in to the portal");
        Ok(SecretString::from(token))
    }

    async fn decoy_hash(&self) -> Result<String> {
        self.decoy
            .get_or_try_init(|| crate::admin::hash_password_blocking(random_token_bits("", 16)))
            .await
            .cloned()
    }

    /// The developer behind a session cookie.
    pub async fn session(&self, token: &str) -> Result<DeveloperSession> {
        let unauthorized = || Error::new(ErrorCode::Unauthorized, "Sign in to continue.");
        if !token.starts_with("kps_") {
            return Err(unauthorized());
        }
        let row: PortalSessionRow = self
            .store
            .portal_session(&token_hash(token), self.clock.now())
            .await?
            .ok_or_else(unauthorized)?;
        Ok(DeveloperSession {
            developer_id: row.developer_id,
            email: row.email,
            csrf_token: row.csrf_token,
        })
    }

    /// Whether a form's CSRF token is this session's.
    pub fn csrf_ok(&self, session: &DeveloperSession, presented: &str) -> bool {
        !presented.is_empty()
            && constant_time_eq(session.csrf_token.as_bytes(), presented.as_bytes())
    }

    pub async fn sign_out(&self, token: &str) -> Result<()> {
        Ok(self.store.delete_portal_session(&token_hash(token)).await?)
    }

    /// The developer's projects and their API keys.
    pub async fn projects(&self, dev: &DeveloperSession) -> Result<Vec<ProjectKeys>> {
        let mut out = Vec::new();
        for project in self.store.projects_of_developer(&dev.developer_id).await? {
            let keys = self.store.partners_of_project(&project.id).await?;
            out.push(ProjectKeys { project, keys });
        }
        Ok(out)
    }

    /// One of the developer's projects; "not found" for any other.
    pub async fn project(&self, dev: &DeveloperSession, project_id: &str) -> Result<ProjectRow> {
        self.store
            .projects_of_developer(&dev.developer_id)
            .await?
            .into_iter()
            .find(|p| p.id == project_id)
            .ok_or_else(not_found)
    }

    /// An API key of one of the developer's projects, as the partner the
    /// configuration services act for; "not found" for any other.
    pub async fn partner(
        &self,
        dev: &DeveloperSession,
        project_id: &str,
        partner_id: &str,
    ) -> Result<PartnerAuth> {
        self.project(dev, project_id).await?;
        match self.store.partner(partner_id).await? {
            Some(partner) if partner.project_id == project_id => Ok(PartnerAuth { partner }),
            _ => Err(not_found()),
        }
    }

    /// A new API key in one of the developer's projects.
    pub async fn create_api_key(
        &self,
        dev: &DeveloperSession,
        project_id: &str,
        name: &str,
    ) -> Result<proto::CreatedApiKey> {
        self.project(dev, project_id).await?;
        crate::admin::create_api_key(&self.store, project_id, name).await
    }
}
