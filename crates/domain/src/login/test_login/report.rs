//! The checks of a test login: their fixed names and order, the report
//! filled in as the sign-in goes, and the hint for each when it fails.

use keystead_proto::{Check, CheckStatus, ErrorCode};

use crate::error::Error;

/// The fixed check names, in order.
pub(super) const CHECKS: [&str; 14] = [
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
pub(super) struct Report(pub(super) Vec<Check>);

impl Report {
    pub(super) fn new() -> Self {
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
    pub(super) fn pass(&mut self, name: &str, detail: impl Into<String>) {
        self.set(name, CheckStatus::Pass, detail, None, None);
    }
    pub(super) fn warn(&mut self, name: &str, detail: impl Into<String>, hint: Option<String>) {
        self.set(name, CheckStatus::Warn, detail, hint, None);
    }
    pub(super) fn fail(&mut self, name: &str, e: &Error) {
        if let Error::Internal(m) = e {
            tracing::error!(error = %m, check = name, "internal error during a test login");
        }
        let d = e.detail();
        let hint = d.hint.or_else(|| default_hint(name).map(str::to_string));
        self.set(name, CheckStatus::Fail, d.message, hint, Some(d.code));
    }
    /// The checks in their fixed order; those not reached are `skip`.
    pub(super) fn finish(mut self) -> Vec<Check> {
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
