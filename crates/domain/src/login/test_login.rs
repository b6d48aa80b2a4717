//! Test logins (SPEC §11): the whole sign-in against the saved Custom OIDC
//! config, enabled or not, with every step reported as a named check and
//! nothing of a real sign-in written (no user, identity, wallet, claim,
//! login code or session). The login state carries the test's id, so a test
//! state only ever finishes as a test and a real one never does.

use std::collections::BTreeMap;

use keystead_crypto::hashing::token_hash;
use keystead_crypto::random_token_bits;
use keystead_oidc::AuthorizationRequest;
use keystead_proto::{self as proto, Check, CheckStatus, ErrorCode};
use keystead_store::{LoginStateRow, TestLoginRow};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::SignInStorage;
use super::{CallbackParams, SignIn, Started, STATE_TTL_SECS};
use crate::error::{Error, Result};
use crate::time_fmt::rfc3339;

mod report;
mod run;

use report::Report;

/// What a test login stores when it ends: the JSON of its `result` row.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct TestResult {
    pub checks: Vec<Check>,
    pub claims: serde_json::Map<String, Value>,
    pub claim_sources: BTreeMap<String, String>,
    pub outcome: Option<proto::TestOutcome>,
}

/// A new test login, and whether the IdP already refused it (its
/// `authorization_url` is then the result page).
#[derive(Debug)]
pub struct TestLoginStarted {
    pub created: proto::TestLoginCreated,
    pub refused: bool,
}

/// A test login can be started for this long.
pub const TEST_LOGIN_TTL_SECS: i64 = 600;
/// Test logins a partner may create: 30 at once, then one a second.
pub const TEST_LOGINS_PER_SECOND: f64 = 1.0;
pub const TEST_LOGINS_BURST: f64 = 30.0;

impl<S> SignIn<S>
where
    S: SignInStorage,
{
    /// `POST /v1/partner/custom-oidc/test-logins`
    pub async fn create_test_login(&self, partner_id: &str) -> Result<TestLoginStarted> {
        let config = crate::configuration::custom_oidc_row(&self.store, partner_id).await?;
        self.test_limiter
            .check(partner_id)
            .map_err(|after| self.metrics.rate_limited(after))?;
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
        let refused = self.precheck(&config).await;
        let was_refused = refused.is_some();
        if let Some(checks) = refused {
            let result = TestResult {
                checks,
                ..TestResult::default()
            };
            self.store
                .finish_test_login(&test_id, "failed", &to_json(&result), now)
                .await?;
            authorization_url = self.test_result_url(&test_id);
        }
        Ok(TestLoginStarted {
            created: proto::TestLoginCreated {
                authorization_url,
                test_id,
                expires_at: rfc3339(row.expires_at),
            },
            refused: was_refused,
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
        let url = meta.authorization_url(&AuthorizationRequest {
            client_id: &config.client_id,
            redirect_uri: &self.config.redirect_uri(),
            scopes: &config.scopes,
            state: &state,
            nonce: &nonce,
            code_challenge: &super::s256(&verifier),
            login_hint: login_hint.filter(|h| !h.is_empty() && h.len() <= 256),
        });
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
        test_id: &str,
        login: &LoginStateRow,
        p: &CallbackParams,
        now: i64,
    ) -> String {
        let result = self.run_test(login, p, now).await;
        let failed = result.checks.iter().any(|c| c.status == CheckStatus::Fail);
        let status = if failed { "failed" } else { "passed" };
        self.metrics
            .inc("keystead_test_logins_total", format!("result=\"{status}\""));
        if let Err(e) = self
            .store
            .finish_test_login(test_id, status, &to_json(&result), now)
            .await
        {
            tracing::warn!(error = %e, "could not store a test login's result");
        }
        self.test_result_url(test_id)
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
        let mut view = self.view(t);
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
        let t = self
            .store
            .test_login(test_id)
            .await?
            .filter(|t| t.partner_id == partner_id)
            .ok_or_else(|| Error::new(ErrorCode::NotFound, "no such test login"))?;
        Ok(self.view(t))
    }

    fn view(&self, t: TestLoginRow) -> proto::TestLogin {
        let status = if t.status == "pending" && t.expires_at <= self.now() {
            "expired".to_string()
        } else {
            t.status
        };
        let result: TestResult = t
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or_default();
        proto::TestLogin {
            test_id: t.test_id,
            status,
            checks: result.checks,
            claims: Value::Object(result.claims),
            claim_sources: result.claim_sources,
            outcome: result.outcome,
            finished_at: t.finished_at.map(rfc3339),
        }
    }
}

fn to_json(result: &TestResult) -> String {
    serde_json::to_string(result).unwrap_or_else(|_| "{}".into())
}
