//! The callback of a test state: every step of a real sign-in, each one
//! reported as its named check, and nothing of a sign-in written.

use std::collections::BTreeMap;

use keystead_oidc::jose::{self, IdTokenCheck};
use keystead_proto::{CheckStatus, ErrorCode};
use keystead_store::LoginStateRow;
use serde_json::Value;

use super::super::callback::{id_token_of, Userinfo};
use super::super::SignInStorage;
use super::super::{CallbackParams, Identity, SignIn};
use super::report::Report;
use super::TestResult;
use crate::error::Error;

impl<S> SignIn<S>
where
    S: SignInStorage,
{
    pub(super) async fn run_test(
        &self,
        login: &LoginStateRow,
        p: &CallbackParams,
        now: i64,
    ) -> TestResult {
        let mut r = Report::new();
        let mut claims = serde_json::Map::new();
        let mut sources = BTreeMap::new();
        let done = |r: Report, claims, claim_sources, outcome| TestResult {
            checks: r.finish(),
            claims,
            claim_sources,
            outcome,
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
        let tokens = match self.exchange_code(&config, login, &meta, code).await {
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
                r.fail("token_exchange", &e);
                return done(r, claims, sources, None);
            }
        };
        let id_token = match id_token_of(&tokens) {
            Ok(t) => t,
            Err(e) => {
                r.fail("id_token_signature", &e);
                return done(r, claims, sources, None);
            }
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

        let email = match self.userinfo(&config, &meta, &tokens, &verified).await {
            Userinfo::NotNeeded => {
                r.pass("userinfo", "not needed");
                verified.verified_email()
            }
            Userinfo::Same(info) => {
                let email = jose::verified_email(&info);
                if let Value::Object(info) = info {
                    for (k, v) in info {
                        // the email a sign-in uses is userinfo's when it
                        // is the verified one
                        let used =
                            email.is_some() && matches!(k.as_str(), "email" | "email_verified");
                        if used || !claims.contains_key(&k) {
                            sources.insert(k.clone(), "userinfo".to_string());
                            claims.insert(k, v);
                        }
                    }
                }
                r.pass("userinfo", "userinfo answered for the same subject");
                email
            }
            Userinfo::OtherSubject => {
                r.fail(
                    "userinfo",
                    &Error::new(
                        ErrorCode::IdTokenInvalid,
                        "userinfo answered for another subject than the ID token",
                    ),
                );
                None
            }
            Userinfo::Failed(e) => {
                r.warn(
                    "userinfo",
                    e.message,
                    Some("the sign-in works without it, but without an email".into()),
                );
                None
            }
        };
        let has_email = claims.contains_key("email");
        match (&email, has_email) {
            (Some(_), _) => r.pass("email", format!("a verified email from {}", sources.get("email").map_or("the IdP", String::as_str))),
            (None, true) => r.warn("email", "the email is not verified (email_verified is not true)", Some("wallets are not claimed by email, and require_verified_email refuses this user".into())),
            (None, false) => r.warn("email", "no email in the ID token or userinfo", Some("add the email scope, or have the IdP release the email claim".into())),
        }
        match &tokens.scope {
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
        let who = Identity::new(&config.issuer, verified.sub.clone(), email);
        match self.check_rules(&config, &who).await {
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
}
