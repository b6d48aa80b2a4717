//! End-user sign-in through Custom OIDC (SPEC §2, §4): the relying party
//! (start → IdP → callback) and its login codes. Sessions and `/v1/me` are
//! in `sessions`.
//!
//! Every failure after the state has been validated goes back to the app's
//! `return_to` with `error`/`error_description`; before that (no trusted
//! return URL yet) the web layer shows an error page. Messages name what to
//! fix and never contain tokens, codes or secrets.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use keystead_crypto::hashing::token_hash;
use keystead_crypto::random_token_bits;
use keystead_oidc::AuthorizationRequest;
use keystead_proto::{self as proto, ErrorCode};
use keystead_store::{CustomOidcRow, LoginStateRow, PartnerRow};
use keystead_store::{
    OidcConfigStore, PartnerStore, SecretStore, SignInStore, TestLoginStore, WalletStore,
};
use sha2::{Digest, Sha256};
use url::Url;

use std::sync::Arc;

use keystead_crypto::KeyProvider;
use keystead_store::Store;

use crate::config::DomainConfig;
use crate::error::{Error, Result};
use crate::idp::Idp;
use crate::limits::RateLimiter;
use crate::metrics::Metrics;
use crate::sdk_cache::SdkConfigCache;
use crate::Clock;

mod callback;
mod test_login;
pub use test_login::{TestLoginStarted, TEST_LOGIN_TTL_SECS};

pub const STATE_TTL_SECS: i64 = 600;
pub const LOGIN_CODE_TTL_SECS: i64 = 60;
pub const MAX_SESSION_SECS: i64 = 30 * 24 * 3600;
/// Session JWTs live at most this long (SPEC §5); ask again for a fresh one.
pub const SESSION_JWT_TTL_SECS: i64 = 30 * 60;
/// Sign-in starts allowed per partner and instance (a flood of public
/// starts must not fill the database).
pub const STARTS_PER_SECOND: f64 = 500.0;
pub const STARTS_BURST: f64 = 1000.0;
/// The cookie that binds a login to the browser that started it (its value
/// is always minted here, never taken from the request).
pub const BROWSER_COOKIE: &str = "ks_browser";
/// Its name when `public_url` is https: the `__Host-` prefix makes browsers
/// refuse it unless it is Secure, host-only and for path `/`, so a sibling
/// subdomain cannot plant one.
pub const BROWSER_COOKIE_HOST: &str = "__Host-ks_browser";

#[derive(Debug, Clone, Default)]
pub struct StartParams {
    pub api_key: String,
    pub return_to: String,
    pub code_challenge: String,
    pub code_challenge_method: String,
    pub state: Option<String>,
    pub login_hint: Option<String>,
    /// Started from the hosted login page: a failure is shown there.
    pub via_login_page: bool,
}

#[derive(Debug)]
pub struct Started {
    pub location: String,
    /// The browser binding to (re)set as a cookie.
    pub browser_id: String,
}

#[derive(Debug, Clone, Default)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// What the hosted login page shows.
#[derive(Debug, Clone)]
pub struct LoginPage {
    pub project_name: String,
    /// The Custom OIDC button's label, when Custom OIDC is on.
    pub custom_oidc_label: Option<String>,
}

/// A failed callback: where to send the browser, if anywhere is trusted.
#[derive(Debug)]
pub struct LoginFailure {
    pub error: Error,
    pub back_to: Option<String>,
}

pub(crate) fn is_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

pub fn s256(verifier: &str) -> String {
    B64URL.encode(Sha256::digest(verifier.as_bytes()))
}

/// Exact match of scheme, host, port and path with one allowed URL; the
/// query may differ, a fragment is never allowed.
pub fn return_to_allowed(return_to: &str, allowed: &[String]) -> bool {
    let Ok(r) = Url::parse(return_to) else {
        return false;
    };
    if r.fragment().is_some() || !r.username().is_empty() || r.password().is_some() {
        return false;
    }
    allowed.iter().filter_map(|a| Url::parse(a).ok()).any(|a| {
        a.scheme() == r.scheme()
            && a.host_str() == r.host_str()
            && a.port_or_known_default() == r.port_or_known_default()
            && a.path() == r.path()
    })
}

/// The parameters keystead appends to `return_to`; one already there would
/// come first and could be read instead of ours.
const RESERVED_RETURN_PARAMS: [&str; 4] = ["login_code", "state", "error", "error_description"];

fn reserved_param(return_to: &str) -> Option<&'static str> {
    let u = Url::parse(return_to).ok()?;
    u.query_pairs()
        .find_map(|(k, _)| RESERVED_RETURN_PARAMS.iter().find(|r| **r == k).copied())
}

fn with_params(base: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(base) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        Err(_) => base.to_string(),
    }
}

/// The answer for a `pk_` that is no partner's.
fn unknown_publishable_key() -> Error {
    Error::new(
        ErrorCode::Unauthorized,
        "api_key is not a valid publishable key (pk_…)",
    )
}

/// Everything the sign-in service reads and writes.
pub trait SignInStorage:
    PartnerStore + OidcConfigStore + SecretStore + SignInStore + WalletStore + TestLoginStore
{
}

impl<T> SignInStorage for T where
    T: PartnerStore + OidcConfigStore + SecretStore + SignInStore + WalletStore + TestLoginStore
{
}

/// Who the IdP says signed in (the email only when verified).
#[derive(Debug, Clone)]
struct Identity {
    issuer: String,
    sub: String,
    email: Option<String>,
}

impl Identity {
    /// Emails are compared and stored lower-case.
    fn new(issuer: &str, sub: String, verified_email: Option<String>) -> Self {
        Identity {
            issuer: issuer.to_string(),
            sub,
            email: verified_email.map(|e| e.to_ascii_lowercase()),
        }
    }
}

/// The partner of a publishable key, or the error saying it is not one.
pub(crate) async fn partner_by_pk(store: &impl PartnerStore, api_key: &str) -> Result<PartnerRow> {
    store
        .partner_by_publishable_key(api_key)
        .await?
        .ok_or_else(unknown_publishable_key)
}

/// The rules a sign-in start must pass before anything is written; the
/// hosted login page checks them too, so it never shows a button that
/// would fail.
fn check_start(partner: &PartnerRow, p: &StartParams) -> Result<()> {
    if p.return_to.len() > 2048 || !return_to_allowed(&p.return_to, &partner.allowed_return_urls) {
        return Err(Error::with_hint(
            ErrorCode::ReturnToNotAllowed,
            "return_to is not one of this app's allowed return URLs",
            "add it with `keystead return-urls set …` (scheme, host, port and path must match exactly)",
        ));
    }
    if let Some(name) = reserved_param(&p.return_to) {
        return Err(Error::with_hint(
            ErrorCode::ReturnToNotAllowed,
            format!("return_to must not carry a {name} parameter: keystead adds login_code, state, error and error_description itself"),
            "remove them from return_to; pass your own value in state",
        ));
    }
    if p.code_challenge_method != "S256" || !is_pkce_value(&p.code_challenge) {
        return Err(Error::new(
            ErrorCode::PkceInvalid,
            "code_challenge must be a base64url SHA-256 of the app's code_verifier, with code_challenge_method=S256",
        ));
    }
    if p.state.as_ref().is_some_and(|s| s.len() > 512)
        || p.login_hint.as_ref().is_some_and(|s| s.len() > 256)
    {
        return Err(Error::new(
            ErrorCode::InvalidRequest,
            "state or login_hint is too long",
        ));
    }
    Ok(())
}

/// The relying party: the store, the key provider (new wallets, the client
/// secret), the partner IdPs, the per-partner start limit, metrics, the
/// clock and the public URL.
#[derive(Clone)]
pub struct SignIn<S = Store> {
    store: S,
    keys: Arc<dyn KeyProvider>,
    idp: Arc<Idp>,
    start_limiter: Arc<RateLimiter>,
    /// Test logins per partner: each one asks the IdP (the probe).
    test_limiter: Arc<RateLimiter>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    config: Arc<DomainConfig>,
    sdk_cache: Arc<SdkConfigCache>,
}

impl<S> SignIn<S>
where
    S: SignInStorage,
{
    pub(crate) fn new(
        store: S,
        keys: Arc<dyn KeyProvider>,
        idp: Arc<Idp>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        config: Arc<DomainConfig>,
        sdk_cache: Arc<SdkConfigCache>,
    ) -> Self {
        SignIn {
            store,
            keys,
            idp,
            start_limiter: Arc::new(RateLimiter::new(STARTS_PER_SECOND, STARTS_BURST)),
            test_limiter: Arc::new(RateLimiter::new(
                test_login::TEST_LOGINS_PER_SECOND,
                test_login::TEST_LOGINS_BURST,
            )),
            metrics,
            clock,
            config,
            sdk_cache,
        }
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The URL browsers reach keystead at.
    pub fn public_url(&self) -> &Url {
        &self.config.public_url
    }

    /// A partner by publishable key and its Custom OIDC settings (one
    /// statement).
    async fn partner_and_oidc_by_pk(
        &self,
        api_key: &str,
    ) -> Result<(PartnerRow, Option<CustomOidcRow>)> {
        self.store
            .partner_with_oidc_by_publishable_key(api_key)
            .await?
            .ok_or_else(unknown_publishable_key)
    }

    /// `GET /v1/sdk/config`
    pub async fn sdk_config(&self, api_key: &str) -> Result<proto::SdkConfig> {
        if let Some(hit) = self.sdk_cache.get(api_key) {
            return Ok(hit);
        }
        let generation = self.sdk_cache.generation();
        let (_, config) = self.partner_and_oidc_by_pk(api_key).await?;
        let auth_config = match config {
            Some(c) if c.enabled => proto::AuthConfig {
                methods: vec!["CUSTOM_OIDC".into()],
                oidc_config: Some(proto::OidcButton {
                    enabled: true,
                    button_label: c.button_label,
                }),
            },
            _ => proto::AuthConfig {
                methods: Vec::new(),
                oidc_config: None,
            },
        };
        let answer = proto::SdkConfig { auth_config };
        self.sdk_cache.put(api_key, generation, &answer);
        Ok(answer)
    }

    /// `GET /login`, the hosted login page: the project's name and the
    /// sign-in methods that are on, after the same checks as a start.
    pub async fn login_page(&self, p: &StartParams) -> Result<LoginPage> {
        let (partner, config) = self.partner_and_oidc_by_pk(&p.api_key).await?;
        check_start(&partner, p)?;
        let project_name = self
            .store
            .project(&partner.project_id)
            .await?
            .map(|p| p.name)
            .ok_or_else(|| Error::internal("the partner's project vanished"))?;
        Ok(LoginPage {
            project_name,
            custom_oidc_label: config.filter(|c| c.enabled).map(|c| c.button_label),
        })
    }

    /// The hosted login page of these start parameters (where a failure
    /// started there is shown, with "Try again").
    fn login_page_url(&self, p: &StartParams) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("api_key", &p.api_key)
            .append_pair("return_to", &p.return_to)
            .append_pair("code_challenge", &p.code_challenge)
            .append_pair("code_challenge_method", &p.code_challenge_method);
        if let Some(s) = &p.state {
            q.append_pair("state", s);
        }
        if let Some(h) = &p.login_hint {
            q.append_pair("login_hint", h);
        }
        format!("{}/login?{}", self.config.issuer_url(), q.finish())
    }

    /// `GET /auth/custom_oidc/start`: validate, remember, send to the IdP.
    pub async fn start_login(&self, p: &StartParams) -> Result<Started> {
        let (partner, config) = self.partner_and_oidc_by_pk(&p.api_key).await?;
        self.start_limiter
            .check(&partner.id)
            .map_err(|after| self.metrics.rate_limited(after))?;
        check_start(&partner, p)?;
        let config = match config {
            Some(c) if c.enabled => c,
            Some(_) => {
                return Err(Error::new(
                    ErrorCode::CustomOidcDisabled,
                    "Custom OIDC sign-in is disabled for this app",
                ))
            }
            None => {
                return Err(Error::new(
                    ErrorCode::CustomOidcDisabled,
                    "Custom OIDC sign-in is not configured for this app",
                ))
            }
        };
        let meta = self.idp.metadata(&config.issuer).await?;

        let state = random_token_bits("", 32);
        let nonce = random_token_bits("", 32);
        let verifier = random_token_bits("", 32);
        // Minted for every start: a value the client brings could have
        // been planted by someone who knows it (fixation of the binding).
        let browser_id = random_token_bits("", 32);
        let now = self.now();
        self.store
            .insert_login_state(&LoginStateRow {
                state_hash: token_hash(&state),
                partner_id: partner.id.clone(),
                browser_hash: token_hash(&browser_id),
                issuer: config.issuer.clone(),
                return_to: p.return_to.clone(),
                app_state: p.state.clone(),
                app_code_challenge: p.code_challenge.clone(),
                nonce: nonce.clone(),
                pkce_verifier: verifier.clone(),
                created_at: now,
                expires_at: now + STATE_TTL_SECS,
                error_to: p.via_login_page.then(|| self.login_page_url(p)),
                test_id: None,
            })
            .await?;

        let url = meta.authorization_url(&AuthorizationRequest {
            client_id: &config.client_id,
            redirect_uri: &self.config.redirect_uri(),
            scopes: &config.scopes,
            state: &state,
            nonce: &nonce,
            code_challenge: &s256(&verifier),
            login_hint: p.login_hint.as_deref(),
        });
        Ok(Started {
            location: url.to_string(),
            browser_id,
        })
    }

    /// `GET /auth/custom_oidc/callback` → the app's `return_to` with a login code.
    pub async fn finish_login(
        &self,
        p: &CallbackParams,
        browser_id: Option<&str>,
    ) -> Result<String, LoginFailure> {
        let no_return = |error: Error| LoginFailure {
            error,
            back_to: None,
        };
        let state_invalid = || {
            no_return(Error::new(
                ErrorCode::StateInvalid,
                "This sign-in link is invalid, expired or already used, or it was started in another browser. Start the sign-in again from the app.",
            ))
        };
        let (Some(state), Some(browser)) = (p.state.as_deref(), browser_id) else {
            return Err(state_invalid());
        };
        let now = self.now();
        let login = self
            .store
            .peek_login_state(&token_hash(state), &token_hash(browser), now)
            .await
            .map_err(|e| no_return(e.into()))?
            .ok_or_else(state_invalid)?;
        // A test login's state finishes as a test, never as a sign-in.
        if let Some(test_id) = &login.test_id {
            if !self
                .store
                .consume_login_state(&login.state_hash, now)
                .await
                .map_err(|e| no_return(e.into()))?
            {
                return Err(state_invalid());
            }
            return Ok(self.finish_test(test_id, &login, p, now).await);
        }

        let back = |error: Error| {
            let d = error.detail();
            let mut params = vec![
                ("error", d.code.as_str()),
                ("error_description", d.message.as_str()),
            ];
            let back_to = match &login.error_to {
                // the hosted login page already carries the app's state
                Some(page) => with_params(page, &params),
                None => {
                    if let Some(s) = &login.app_state {
                        params.push(("state", s.as_str()));
                    }
                    with_params(&login.return_to, &params)
                }
            };
            let back_to = Some(back_to);
            LoginFailure { error, back_to }
        };
        let result = match self.complete(&login, p, now).await {
            Ok(who) => {
                let code = random_token_bits("klc_", 32);
                self.record_login(&login, &who, &code, now)
                    .await
                    .map(|user| user.map(|_| code))
            }
            Err(e) => Err(e),
        };
        let outcome = match &result {
            Ok(Some(_)) => "ok".to_string(),
            Ok(None) => "state_invalid".to_string(),
            Err(e) => e.code().as_str().to_string(),
        };
        self.metrics
            .inc("keystead_logins_total", format!("result=\"{outcome}\""));
        match result {
            Ok(None) => Err(state_invalid()),
            Ok(Some(code)) => {
                let mut params = vec![("login_code", code.as_str())];
                if let Some(s) = &login.app_state {
                    params.push(("state", s.as_str()));
                }
                Ok(with_params(&login.return_to, &params))
            }
            Err(e) => {
                if let Error::Api { code, message, .. } = &e {
                    tracing::info!(partner_id = %login.partner_id, code = %code, reason = %message, "sign-in failed");
                }
                // A failed sign-in uses up its state too.
                if let Err(err) = self.store.consume_login_state(&login.state_hash, now).await {
                    tracing::warn!(error = %err, "could not mark a failed login state used");
                }
                Err(back(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_matches_scheme_host_port_path_only() {
        let allowed = vec![
            "https://app.example.com/cb".to_string(),
            "myapp://callback".to_string(),
        ];
        assert!(return_to_allowed("https://app.example.com/cb", &allowed));
        assert!(return_to_allowed(
            "https://app.example.com/cb?x=1",
            &allowed
        ));
        assert!(return_to_allowed(
            "https://app.example.com:443/cb",
            &allowed
        ));
        assert!(return_to_allowed("myapp://callback", &allowed));
        for bad in [
            "https://evil.example",
            "//evil.example",
            "javascript:alert(1)",
            "https://app.example.com/cb/",
            "https://app.example.com:8443/cb",
            "http://app.example.com/cb",
            "https://app.example.com/cb#x",
            "https://user@app.example.com/cb",
            "https://app.example.com.evil.example/cb",
            "myapp://other",
        ] {
            assert!(!return_to_allowed(bad, &allowed), "{bad}");
        }
    }

    #[test]
    fn return_to_with_keysteads_own_parameters_is_spotted() {
        assert_eq!(reserved_param("https://app.example.com/cb?x=1"), None);
        assert_eq!(
            reserved_param("https://app.example.com/cb?login_code=evil"),
            Some("login_code")
        );
        assert_eq!(
            reserved_param("https://app.example.com/cb?a=1&state=s"),
            Some("state")
        );
        assert_eq!(
            reserved_param("https://app.example.com/cb?error%5Fdescription=x"),
            Some("error_description")
        );
        assert_eq!(reserved_param("myapp://cb?error=x"), Some("error"));
    }

    #[test]
    fn pkce_s256_matches_rfc7636_example() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
