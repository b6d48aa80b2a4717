//! The client side of the partner's IdP during a sign-in: its error
//! answers in words, the token request with the configured client
//! authentication, the ID token checks and userinfo.

use keystead_crypto::ExposeSecret;
use keystead_proto::ErrorCode;
use serde_json::Value;
use url::Url;

use crate::core::Core;
use crate::error::{Error, Result};
use crate::jose::{self, IdClaims, TokenError};
use crate::login::clean;
use crate::provider::ProviderMeta;
use crate::rules::AuthMethod;

impl Core {
    pub(crate) fn idp_error(&self, error: &str, description: Option<&str>) -> Error {
        let error = clean(error);
        let desc = description.map(clean).unwrap_or_default();
        let redirect_problem = matches!(
            error.as_str(),
            "redirect_uri_mismatch" | "invalid_redirect_uri"
        ) || desc.to_ascii_lowercase().contains("redirect_uri")
            || desc.to_ascii_lowercase().contains("redirect uri");
        if redirect_problem {
            return Error::with_hint(
                ErrorCode::IdpError,
                format!(
                    "the IdP rejected keystead's redirect URI; register exactly {} as a redirect URI of the client at your IdP",
                    self.redirect_uri()
                ),
                format!("IdP said: {error}: {desc}"),
            );
        }
        if error == "access_denied" {
            return Error::new(
                ErrorCode::IdpError,
                format!("the sign-in was denied or cancelled at the IdP (access_denied) {desc}")
                    .trim()
                    .to_string(),
            );
        }
        Error::new(
            ErrorCode::IdpError,
            if desc.is_empty() {
                format!("the IdP returned an error: {error}")
            } else {
                format!("the IdP returned an error: {error}: {desc}")
            },
        )
    }

    pub(crate) async fn exchange_code(
        &self,
        client_id: &str,
        method: AuthMethod,
        partner_id: &str,
        meta: &ProviderMeta,
        code: &str,
        verifier: &str,
    ) -> Result<Value> {
        let redirect_uri = self.redirect_uri();
        let secret = if method.needs_secret() {
            Some(self.client_secret(partner_id).await?.ok_or_else(|| {
                Error::new(
                    ErrorCode::TokenExchangeFailed,
                    format!("{method} needs a client secret and none is stored"),
                )
            })?)
        } else {
            None
        };
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", verifier),
        ];
        // RFC 6749 §2.3.1: id and secret are form-encoded before Basic.
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic_user;
        let basic_pass;
        let mut basic = None;
        // The client authentication of each method (RFC 6749 §2.3.1, OIDC
        // Core §9). A new method is a new arm.
        match (method, &secret) {
            (AuthMethod::ClientSecretBasic, Some(s)) => {
                basic_user = enc(client_id);
                basic_pass = zeroize::Zeroizing::new(enc(s.expose_secret()));
                basic = Some((basic_user.as_str(), basic_pass.as_str()));
            }
            (AuthMethod::ClientSecretPost, Some(s)) => {
                form.push(("client_id", client_id));
                form.push(("client_secret", s.expose_secret()));
            }
            (AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost, None)
            | (AuthMethod::None, _) => form.push(("client_id", client_id)),
        }
        let resp = self
            .outbound
            .post_form(&meta.token_endpoint, &form, basic)
            .await
            .map_err(|e| {
                let (code, msg) = crate::verify::fetch_failure(
                    "token endpoint",
                    &e,
                    ErrorCode::TokenExchangeFailed,
                );
                Error::new(code, msg)
            })?;
        let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        if resp.status == 200 && body.is_object() {
            return Ok(body);
        }
        let err = body
            .get("error")
            .and_then(Value::as_str)
            .map(clean)
            .unwrap_or_default();
        let desc = body
            .get("error_description")
            .and_then(Value::as_str)
            .map(clean)
            .unwrap_or_default();
        Err(match err.as_str() {
            "invalid_client" | "unauthorized_client" => Error::with_hint(
                ErrorCode::TokenExchangeFailed,
                format!(
                    "the IdP refused keystead's client credentials ({err}); check the token endpoint auth method (now {method}) and the client secret"
                ),
                "compare `keystead oidc show` with the client at your IdP, and set the secret again with `keystead oidc set-secret`",
            ),
            "invalid_grant" => Error::new(
                ErrorCode::TokenExchangeFailed,
                format!("the IdP refused the authorization code (invalid_grant{}); start the sign-in again", if desc.is_empty() { String::new() } else { format!(": {desc}") }),
            ),
            "" => Error::new(ErrorCode::TokenExchangeFailed, format!("the IdP's token endpoint answered HTTP {}", resp.status)),
            other => Error::new(ErrorCode::TokenExchangeFailed, format!("the IdP's token endpoint refused: {other} {desc}").trim().to_string()),
        })
    }

    pub(crate) async fn check_id_token(
        &self,
        meta: &ProviderMeta,
        token: &str,
        issuer: &str,
        client_id: &str,
        nonce: &str,
        now: i64,
    ) -> Result<IdClaims> {
        let began = std::time::Instant::now();
        let jwks = self.provider_jwks(&meta.jwks_uri, None).await?;
        let first = jose::validate_id_token(token, &jwks.keys, issuer, client_id, nonce, now);
        let result = match first {
            Err(TokenError::UnknownKid(_)) => {
                // Key rotation at the IdP: one (rate-limited) refetch.
                let jwks = self.provider_jwks(&meta.jwks_uri, Some(began)).await?;
                jose::validate_id_token(token, &jwks.keys, issuer, client_id, nonce, now)
            }
            other => other,
        };
        result.map_err(|e| match e {
            TokenError::UnknownKid(kid) if kid.is_empty() => Error::new(
                ErrorCode::IdTokenInvalid,
                "the IdP's JWKS has no signing key usable for the ID token's algorithm",
            ),
            TokenError::UnknownKid(kid) => Error::new(
                ErrorCode::IdTokenInvalid,
                format!("the ID token is signed with key {:?}, which is not in the IdP's JWKS as a usable signing key", clean(&kid)),
            ),
            TokenError::Invalid(m) => Error::new(ErrorCode::IdTokenInvalid, m),
        })
    }

    pub(crate) async fn userinfo(&self, url: &Url, access_token: &str) -> Result<Value> {
        let resp = self
            .outbound
            .get_bearer(url, access_token)
            .await
            .map_err(|e| {
                let (code, msg) = crate::verify::fetch_failure("userinfo", &e, ErrorCode::IdpError);
                Error::new(code, msg)
            })?;
        if resp.status != 200 {
            return Err(Error::new(
                ErrorCode::IdpError,
                format!("the IdP's userinfo endpoint answered HTTP {}", resp.status),
            ));
        }
        serde_json::from_slice::<Value>(&resp.body)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::IdpError,
                    "the IdP's userinfo answer is not a JSON object",
                )
            })
    }
}
