//! Test logins (SPEC §11): the whole sign-in against the saved Custom OIDC
//! config, enabled or not, with every step reported as a named check and
//! nothing of a real sign-in written (no user, identity, wallet, claim,
//! login code or session). The login state carries the test's id, so a test
//! state only ever finishes as a test and a real one never does.

use std::collections::BTreeMap;

use keystead_crypto::hashing::token_hash;
use keystead_crypto::random_token_bits;
use keystead_oidc::jose::{self, IdTokenCheck};
use keystead_proto::{self as proto, Check, CheckStatus, ErrorCode};
use keystead_store::{
    LoginStateRow, OidcConfigStore, PartnerStore, SecretStore, SignInStore, TestLoginRow,
    TestLoginStore, WalletStore,
};
use serde_json::{json, Value};

use super::{with_params, CallbackParams, SignIn, Started, STATE_TTL_SECS};
use crate::error::{Error, Result};
use crate::time_fmt::rfc3339;

/// A test login can be started for this long.
pub const TEST_LOGIN_TTL_SECS: i64 = 600;
/// Test logins a partner may create: 30 at once, then one a second.
pub const TEST_LOGINS_PER_SECOND: f64 = 1.0;
pub const TEST_LOGINS_BURST: f64 = 30.0;

/// The fixed check names, in order.
const CHECKS: [&str; 14] = [
    "discovery",
    "authorization_response",
    "iss_parameter",
    "token_exchange",
    "id_token_signature",
    "id_token_issuer",
    "id_token_audience",
    "id_token_times",
    "nonce",
    "subject",
    "email",
    "userinfo",
    "scopes_granted",
    "sign_in_rules",
];

/// The checks of one test, filled in as the sign-in goes; whatever is left
/// when a step fails is `skip`.
struct Report(Vec<Check>);

impl Report {
    fn new() -> Self {
        Report(Vec::new())
    }
    fn set(
        &mut self,
        name: &str,
        status: CheckStatus,
        detail: impl Into<String>,
        hint: Option<String>,
        code: Option<ErrorCode>,
    ) {
        self.0.retain(|c| c.name != name);
        self.0.push(Check {
            name: name.into(),
            status,
            detail: crate::printable(&detail.into(), 1000),
            code,
            hint: hint.map(|h| crate::printable(&h, 1000)),
        });
    }
    fn pass(&mut self, name: &str, detail: impl Into<String>) {
        self.set(name, CheckStatus::Pass, detail, None, None);
    }
    fn warn(&mut self, name: &str, detail: impl Into<String>, hint: Option<String>) {
        self.set(name, CheckStatus::Warn, detail, hint, None);
    }
    fn fail(&mut self, name: &str, e: &Error) {
        if let Error::Internal(m) = e {
            tracing::error!(error = %m, check = name, "internal error during a test login");
        }
        let d = e.detail();
        let hint = d.hint.or_else(|| default_hint(name).map(str::to_string));
        self.set(name, CheckStatus::Fail, d.message, hint, Some(d.code));
    }
    /// The checks in their fixed order; those not reached are `skip`.
    fn finish(mut self) -> Vec<Check> {
        let mut out = Vec::new();
        for name in CHECKS {
            match self.0.iter().position(|c| c.name == name) {
                Some(i) => out.push(self.0.remove(i)),
                None => out.push(Check {
                    name: name.into(),
                    status: CheckStatus::Skip,
                    detail: "not run: an earlier check failed".into(),
                    code: None,
                    hint: None,
                }),
            }
        }
        out
    }
}

/// What to change when a check fails and its error brings no hint of its
/// own.
fn default_hint(name: &str) -> Option<&'static str> {
    Some(match name {
        "discovery" => "run `keystead oidc verify` for the details of the discovery document",
        "authorization_response" => "the IdP refused the sign-in: check the client id, the redirect URI registered at the IdP and the scopes",
        "iss_parameter" => "the iss the IdP sends back (RFC 9207) must be the configured issuer exactly; check the issuer in `keystead oidc show`",
        "token_exchange" => "compare the token endpoint auth method and the client secret with the client at your IdP",
        "id_token_signature" => "the ID token must be signed with a key the IdP publishes at its jwks_uri, with an asymmetric algorithm (RS256, PS256, ES256, EdDSA); check the client's ID token signing algorithm at the IdP",
        "id_token_issuer" => "the ID token's iss must be the configured issuer exactly; check the issuer in `keystead oidc show`",
        "id_token_audience" => "the ID token's aud must contain the configured client id: check that keystead's client id is the one the IdP issued for this client",
        "id_token_times" => "set the IdP's clock right (NTP): keystead allows 60 s of difference",
        "nonce" => "the IdP must return the nonce of the authorization request in the ID token unchanged",
        "subject" => "the ID token needs a sub claim of 1 to 255 characters that never changes for a user",
        "userinfo" => "userinfo must answer for the same sub as the ID token (OpenID Connect Core 5.3.2)",
        _ => return None,
    })
}

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

    async fn run_test(
        &self,
        login: &LoginStateRow,
        p: &CallbackParams,
        now: i64,
    ) -> (
        Vec<Check>,
        Value,
        BTreeMap<String, String>,
        Option<proto::TestOutcome>,
    ) {
        let mut r = Report::new();
        let mut claims = serde_json::Map::new();
        let mut sources = BTreeMap::new();
        let done = |r: Report, claims: serde_json::Map<String, Value>, sources, outcome| {
            (r.finish(), Value::Object(claims), sources, outcome)
        };
        let config =
            match crate::configuration::custom_oidc_row(&self.store, &login.partner_id).await {
                Ok(c) if c.issuer == login.issuer => c,
                Ok(_) | Err(_) => {
                    r.fail(
                        "discovery",
                        &Error::new(
                            ErrorCode::CustomOidcNotConfigured,
                            "the configuration changed or was removed during the test",
                        ),
                    );
                    return done(r, claims, sources, None);
                }
            };
        let meta = match self.idp.metadata(&config.issuer).await {
            Ok(m) => {
                r.pass(
                    "discovery",
                    format!(
                        "the discovery document of {} passed its checks",
                        config.issuer
                    ),
                );
                m
            }
            Err(e) => {
                r.fail("discovery", &e.into());
                return done(r, claims, sources, None);
            }
        };
        if let Some(err) = &p.error {
            let e: Error = keystead_oidc::idp_error(
                &self.config.redirect_uri(),
                err,
                p.error_description.as_deref(),
            )
            .into();
            r.fail("authorization_response", &e);
            return done(r, claims, sources, None);
        }
        let Some(code) = p.code.as_deref().filter(|c| !c.is_empty()) else {
            r.fail(
                "authorization_response",
                &Error::new(
                    ErrorCode::IdpError,
                    "the IdP sent neither a code nor an error",
                ),
            );
            return done(r, claims, sources, None);
        };
        r.pass(
            "authorization_response",
            "the IdP sent an authorization code to the registered redirect URI",
        );
        match &p.iss {
            Some(iss) if iss != &config.issuer => {
                r.fail(
                    "iss_parameter",
                    &Error::new(
                        ErrorCode::IdpError,
                        format!(
                            "the authorization response names issuer {iss}, not {}",
                            config.issuer
                        ),
                    ),
                );
                return done(r, claims, sources, None);
            }
            Some(_) => r.pass(
                "iss_parameter",
                "the authorization response names this issuer (RFC 9207)",
            ),
            None if meta.iss_param_supported => {
                r.fail(
                    "iss_parameter",
                    &Error::new(
                        ErrorCode::IdpError,
                        "the IdP promises an iss parameter (RFC 9207) but sent none",
                    ),
                );
                return done(r, claims, sources, None);
            }
            None => r.pass(
                "iss_parameter",
                "the IdP does not send iss (RFC 9207 not advertised)",
            ),
        }
        let secret = if config.auth_method.needs_secret() {
            match crate::configuration::client_secret(
                &self.store,
                self.keys.as_ref(),
                &login.partner_id,
            )
            .await
            {
                Ok(s) => s,
                Err(e) => {
                    r.fail("token_exchange", &e);
                    return done(r, claims, sources, None);
                }
            }
        } else {
            None
        };
        let tokens = match keystead_oidc::ClientCredentials::new(
            config.auth_method,
            &config.client_id,
            secret,
        ) {
            Ok(creds) => {
                self.idp
                    .token_request(
                        &creds,
                        &self.config.redirect_uri(),
                        &meta,
                        code,
                        &login.pkce_verifier,
                    )
                    .await
            }
            Err(e) => Err(e),
        };
        let tokens = match tokens {
            Ok(t) => {
                r.pass(
                    "token_exchange",
                    format!(
                        "the token endpoint accepted the code with {}",
                        config.auth_method
                    ),
                );
                t
            }
            Err(e) => {
                r.fail("token_exchange", &e.into());
                return done(r, claims, sources, None);
            }
        };
        let Some(id_token) = tokens.id_token.as_deref() else {
            r.fail(
                "id_token_signature",
                &Error::new(
                    ErrorCode::IdTokenInvalid,
                    "the token response has no id_token (is the openid scope granted?)",
                ),
            );
            return done(r, claims, sources, None);
        };
        let outcome = self
            .idp
            .verify_id_token(
                &meta,
                id_token,
                &config.issuer,
                &config.client_id,
                &login.nonce,
                now,
            )
            .await;
        let check_of =
            |e: &keystead_oidc::OidcError| e.id_token_check.unwrap_or(IdTokenCheck::Signature);
        match &outcome {
            Err(e) if check_of(e) == IdTokenCheck::Signature => {
                r.fail("id_token_signature", &e.clone().into());
                return done(r, claims, sources, None);
            }
            _ => r.pass(
                "id_token_signature",
                "the ID token's signature verifies with a key of the IdP's JWKS",
            ),
        }
        // The signature verified: every claim rule on its own, so a token
        // refused for its audience still shows whether its times and nonce
        // were right.
        let payload = match &outcome {
            Ok(v) => v.claims.clone(),
            Err(_) => jose::unverified_claims(id_token).unwrap_or(Value::Null),
        };
        for (k, v) in payload.as_object().cloned().unwrap_or_default() {
            if !matches!(k.as_str(), "at_hash" | "c_hash" | "s_hash") {
                sources.insert(k.clone(), "id_token".to_string());
                claims.insert(k, v);
            }
        }
        let mut refused = false;
        for (check, result) in jose::claim_checks(
            &payload,
            &config.issuer,
            &config.client_id,
            &login.nonce,
            now,
        ) {
            match result {
                Ok(seen) => r.pass(check.as_str(), seen),
                Err(why) => {
                    refused = true;
                    r.fail(check.as_str(), &Error::new(ErrorCode::IdTokenInvalid, why));
                }
            }
        }
        let verified = match outcome {
            Ok(v) if !refused => v,
            Ok(_) => return done(r, claims, sources, None),
            Err(e) => {
                if !refused {
                    // the verifier refused for a reason the claim view
                    // did not see: its verdict stands
                    r.fail(check_of(&e).as_str(), &e.into());
                }
                return done(r, claims, sources, None);
            }
        };

        // userinfo, when the ID token has no verified email
        let mut email = verified.verified_email();
        let wants_email = config.scopes.split(' ').any(|s| s == "email");
        match (&meta.userinfo_endpoint, &tokens.access_token) {
            (Some(ui), Some(at)) if wants_email && email.is_none() => {
                match self.idp.userinfo(ui, at).await {
                    Ok(info)
                        if info.get("sub").and_then(Value::as_str)
                            == Some(verified.sub.as_str()) =>
                    {
                        email = keystead_oidc::jose::verified_email(&info);
                        for (k, v) in info.as_object().cloned().unwrap_or_default() {
                            // the email a sign-in uses is userinfo's when
                            // it is the verified one
                            let used =
                                email.is_some() && matches!(k.as_str(), "email" | "email_verified");
                            if used || !claims.contains_key(&k) {
                                sources.insert(k.clone(), "userinfo".to_string());
                                claims.insert(k, v);
                            }
                        }
                        r.pass("userinfo", "userinfo answered for the same subject");
                    }
                    Ok(_) => r.fail(
                        "userinfo",
                        &Error::new(
                            ErrorCode::IdTokenInvalid,
                            "userinfo answered for another subject than the ID token",
                        ),
                    ),
                    Err(e) => r.warn(
                        "userinfo",
                        e.message,
                        Some("the sign-in works without it, but without an email".into()),
                    ),
                }
            }
            _ => r.pass("userinfo", "not needed"),
        }
        let has_email = claims.contains_key("email");
        match (&email, has_email) {
            (Some(_), _) => r.pass("email", format!("a verified email from {}", sources.get("email").map_or("the IdP", String::as_str))),
            (None, true) => r.warn("email", "the email is not verified (email_verified is not true)", Some("wallets are not claimed by email, and require_verified_email refuses this user".into())),
            (None, false) => r.warn("email", "no email in the ID token or userinfo", Some("add the email scope, or have the IdP release the email claim".into())),
        }
        let granted = tokens.scope.clone();
        match granted {
            Some(g) => {
                let missing: Vec<&str> = config
                    .scopes
                    .split(' ')
                    .filter(|s| !g.split(' ').any(|x| x == *s))
                    .collect();
                if missing.is_empty() {
                    r.pass("scopes_granted", format!("granted: {g}"));
                } else {
                    r.warn(
                        "scopes_granted",
                        format!("not granted: {}", missing.join(" ")),
                        None,
                    );
                }
            }
            None => r.pass(
                "scopes_granted",
                "the token response lists no scope: the requested ones apply",
            ),
        }
        let who = super::Identity {
            issuer: config.issuer.clone(),
            sub: verified.sub.clone(),
            email: email.map(|e| e.to_ascii_lowercase()),
        };
        match self.check_rules(&config, &login.partner_id, &who).await {
            Ok(()) => r.pass("sign_in_rules", "the sign-in rules admit this user"),
            Err(e) => {
                let d = e.detail();
                r.fail(
                    "sign_in_rules",
                    &Error::with_hint(
                        d.code,
                        d.message,
                        "a real sign-in of this user ends with sign_in_not_allowed and writes nothing; \
                         if the user should get in, change the rule (allowed_email_domains, require_verified_email, allow_sign_up) \
                         or what the IdP releases for them",
                    ),
                );
            }
        }
        // a sign-in the rules refuse does nothing: no outcome to show
        let admitted = r.0.iter().all(|c| c.status != CheckStatus::Fail);
        let outcome = if admitted {
            self.would_happen(&login.partner_id, &who).await.ok()
        } else {
            None
        };
        done(r, claims, sources, outcome)
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
