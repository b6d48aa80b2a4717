//! Test logins (SPEC §11): the whole sign-in against the saved Custom OIDC
//! config, enabled or not, with every step reported as a named check and
//! nothing of a real sign-in written (no user, identity, wallet, claim,
//! login code or session). The login state carries the test's id, so a test
//! state only ever finishes as a test and a real one never does.

use keystead_crypto::hashing::token_hash;
use keystead_crypto::random_token_bits;
use keystead_proto::{self as proto, Check, CheckStatus, ErrorCode};
use keystead_store::{
    LoginStateRow, OidcConfigStore, PartnerStore, SecretStore, SignInStore, TestLoginRow,
    TestLoginStore, WalletStore,
};
use serde_json::{json, Value};

use super::{with_params, CallbackParams, SignIn, Started, STATE_TTL_SECS};
use crate::error::{Error, Result};
use crate::time_fmt::rfc3339;

mod report;
mod run;

use report::Report;

/// A test login can be started for this long.
pub const TEST_LOGIN_TTL_SECS: i64 = 600;
/// Test logins a partner may create: 30 at once, then one a second.
pub const TEST_LOGINS_PER_SECOND: f64 = 1.0;
pub const TEST_LOGINS_BURST: f64 = 30.0;

impl<S> SignIn<S>
where
    S: PartnerStore + OidcConfigStore + SecretStore + SignInStore + WalletStore + TestLoginStore,
{
    /// `POST /v1/partner/custom-oidc/test-logins`
    pub async fn create_test_login(&self, partner_id: &str) -> Result<proto::TestLoginCreated> {
        let config = crate::configuration::custom_oidc_row(&self.store, partner_id).await?;
        if let Err(retry_after) = self.test_limiter.check(partner_id) {
            self.metrics
                .inc("keystead_rate_limited_total", String::new());
            return Err(Error::RateLimited { retry_after });
        }
        if config.auth_method.needs_secret()
            && self
                .store
                .secret(partner_id, keystead_store::PURPOSE_OIDC_CLIENT_SECRET)
                .await?
                .is_none()
        {
            return Err(Error::with_hint(
                ErrorCode::ClientSecretRequired,
                format!(
                    "{} needs a client secret before a test login",
                    config.auth_method
                ),
                "set it with `keystead oidc set-secret`",
            ));
        }
        let now = self.now();
        let test_id = random_token_bits("tst_", 20);
        let start = random_token_bits("", 32);
        let row = TestLoginRow {
            test_id: test_id.clone(),
            partner_id: partner_id.to_string(),
            status: "pending".into(),
            result: None,
            created_at: now,
            expires_at: now + TEST_LOGIN_TTL_SECS,
            finished_at: None,
        };
        self.store
            .insert_test_login(&row, &token_hash(&start))
            .await?;
        let mut authorization_url = format!(
            "{}/auth/custom_oidc/test-start?t={start}",
            self.config.issuer_url()
        );
        // What can be found out before the browser goes: the discovery
        // document, and how the IdP answers the authorization request (an
        // IdP that refuses it never comes back to keystead).
        if let Some(checks) = self.precheck(&config).await {
            let result = json!({
                "checks": checks,
                "claims": {},
                "claim_sources": {},
                "outcome": null,
            });
            self.store
                .finish_test_login(&test_id, "failed", &result.to_string(), now)
                .await?;
            authorization_url = self.test_result_url(&test_id);
        }
        Ok(proto::TestLoginCreated {
            authorization_url,
            test_id,
            expires_at: rfc3339(row.expires_at),
        })
    }

    /// The checks that fail before the browser goes, if any: the discovery
    /// document, then a server-side probe of the authorization request.
    async fn precheck(&self, config: &keystead_store::CustomOidcRow) -> Option<Vec<Check>> {
        let mut r = Report::new();
        let meta = match self.idp.metadata(&config.issuer).await {
            Ok(m) => m,
            Err(e) => {
                r.fail("discovery", &e.into());
                return Some(r.finish());
            }
        };
        let probe = self
            .idp
            .probe_authorization(
                &meta,
                &keystead_oidc::ProbeRequest {
                    client_id: &config.client_id,
                    redirect_uri: &self.config.redirect_uri(),
                    scopes: &config.scopes,
                },
            )
            .await;
        match probe {
            keystead_oidc::AuthorizationProbe::Refused(e) => {
                r.pass(
                    "discovery",
                    format!(
                        "the discovery document of {} passed its checks",
                        config.issuer
                    ),
                );
                r.fail("authorization_response", &e.into());
                Some(r.finish())
            }
            keystead_oidc::AuthorizationProbe::Accepted(_)
            | keystead_oidc::AuthorizationProbe::Unknown(_) => None,
        }
    }

    /// `GET /auth/custom_oidc/test-start`: the browser's side of a test
    /// login, bound to it like a real start, then to the IdP.
    pub async fn start_test_login(&self, start: &str, login_hint: Option<&str>) -> Result<Started> {
        let now = self.now();
        let test = self
            .store
            .take_test_login_start(&token_hash(start), now)
            .await?
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::StateInvalid,
                    "this test login link is invalid, expired or already used; create a new test login",
                )
            })?;
        let config = crate::configuration::custom_oidc_row(&self.store, &test.partner_id).await?;
        let meta = self.idp.metadata(&config.issuer).await?;
        let state = random_token_bits("", 32);
        let nonce = random_token_bits("", 32);
        let verifier = random_token_bits("", 32);
        let browser_id = random_token_bits("", 32);
        self.store
            .insert_login_state(&LoginStateRow {
                state_hash: token_hash(&state),
                partner_id: test.partner_id.clone(),
                browser_hash: token_hash(&browser_id),
                issuer: config.issuer.clone(),
                return_to: self.test_result_url(&test.test_id),
                app_state: None,
                app_code_challenge: String::new(),
                nonce: nonce.clone(),
                pkce_verifier: verifier.clone(),
                created_at: now,
                // never outlives the test: an expired test stays expired
                expires_at: (now + STATE_TTL_SECS).min(test.expires_at),
                error_to: None,
                test_id: Some(test.test_id.clone()),
            })
            .await?;
        let mut url = meta.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &config.client_id)
            .append_pair("redirect_uri", &self.config.redirect_uri())
            .append_pair("scope", &config.scopes)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &super::s256(&verifier))
            .append_pair("code_challenge_method", "S256");
        if let Some(h) = login_hint.filter(|h| !h.is_empty() && h.len() <= 256) {
            url.query_pairs_mut().append_pair("login_hint", h);
        }
        Ok(Started {
            location: url.to_string(),
            browser_id,
        })
    }

    fn test_result_url(&self, test_id: &str) -> String {
        format!(
            "{}/auth/custom_oidc/test-result?test_id={test_id}",
            self.config.issuer_url()
        )
    }

    /// The callback of a test state: every step, reported; nothing written
    /// but the test's result. Returns where the browser goes (the result
    /// page).
    pub(super) async fn finish_test(
        &self,
        login: &LoginStateRow,
        p: &CallbackParams,
        now: i64,
    ) -> String {
        let test_id = login.test_id.clone().unwrap_or_default();
        let (checks, claims, sources, outcome) = self.run_test(login, p, now).await;
        let failed = checks.iter().any(|c| c.status == CheckStatus::Fail);
        let result = json!({
            "checks": checks,
            "claims": claims,
            "claim_sources": sources,
            "outcome": outcome,
        });
        let status = if failed { "failed" } else { "passed" };
        self.metrics
            .inc("keystead_test_logins_total", format!("result=\"{status}\""));
        if let Err(e) = self
            .store
            .finish_test_login(&test_id, status, &result.to_string(), now)
            .await
        {
            tracing::warn!(error = %e, "could not store a test login's result");
        }
        with_params(&self.test_result_url(&test_id), &[])
    }

    /// What a real sign-in would do, read only.
    async fn would_happen(
        &self,
        partner_id: &str,
        who: &super::Identity,
    ) -> Result<proto::TestOutcome> {
        let would_claim = match &who.email {
            Some(e) => {
                self.store
                    .unclaimed_wallets_for_email(partner_id, e)
                    .await?
            }
            None => Vec::new(),
        };
        Ok(
            match self
                .store
                .find_identity(partner_id, &who.issuer, &who.sub)
                .await?
            {
                Some((user_id, _identity)) => {
                    let wallets = self
                        .store
                        .wallets_of_user(&user_id)
                        .await?
                        .into_iter()
                        .map(|w| proto::TestWallet {
                            kind: w.kind.as_str().to_string(),
                            address: w.address,
                        })
                        .collect();
                    proto::TestOutcome {
                        user: "existing".into(),
                        user_id: Some(user_id),
                        wallets,
                        would_claim,
                    }
                }
                None => proto::TestOutcome {
                    user: "new".into(),
                    user_id: None,
                    wallets: Vec::new(),
                    would_claim,
                },
            },
        )
    }

    /// The result page's view: by the test's id alone (an unguessable
    /// token the browser was sent to), without the claims.
    pub async fn test_login_page(&self, test_id: &str) -> Result<proto::TestLogin> {
        let t = self
            .store
            .test_login(test_id)
            .await?
            .ok_or_else(|| Error::new(ErrorCode::NotFound, "no such test login"))?;
        let mut view = self.test_login(&t.partner_id, test_id).await?;
        view.claims = json!({});
        view.claim_sources.clear();
        // The IdP's own words can name the user (Entra's AADSTS50105 has
        // the UPN): the API's answer has them, this page does not.
        for c in &mut view.checks {
            if c.name == "authorization_response" && c.status == CheckStatus::Fail {
                c.detail = "the IdP refused the sign-in; its own words are in `keystead oidc test-login --id` and the API's answer".into();
            }
        }
        Ok(view)
    }

    /// `GET /v1/partner/custom-oidc/test-logins/{test_id}`
    pub async fn test_login(&self, partner_id: &str, test_id: &str) -> Result<proto::TestLogin> {
        let not_found = || Error::new(ErrorCode::NotFound, "no such test login");
        let t = self
            .store
            .test_login(test_id)
            .await?
            .filter(|t| t.partner_id == partner_id)
            .ok_or_else(not_found)?;
        let status = if t.status == "pending" && t.expires_at <= self.now() {
            "expired".to_string()
        } else {
            t.status.clone()
        };
        let result: Value = t
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or(Value::Null);
        Ok(proto::TestLogin {
            test_id: t.test_id,
            status,
            checks: serde_json::from_value(result["checks"].clone()).unwrap_or_default(),
            claims: match &result["claims"] {
                Value::Object(o) => Value::Object(o.clone()),
                _ => json!({}),
            },
            claim_sources: serde_json::from_value(result["claim_sources"].clone())
                .unwrap_or_default(),
            outcome: serde_json::from_value(result["outcome"].clone()).ok(),
            finished_at: t.finished_at.map(rfc3339),
        })
    }
}
