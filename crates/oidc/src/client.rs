//! The requests of a sign-in to the partner's IdP: its error answers in
//! words, the token request with the client authentication of each
//! [`AuthMethod`], the ID token checks and userinfo.

use keystead_crypto::{ExposeSecret, SecretString};
use keystead_model::AuthMethod;
use serde_json::Value;
use url::Url;

use crate::clean;
use crate::error::{Kind, OidcError, Result};
use crate::fetch::fetch_failure;
use crate::jose::{self, IdClaims, IdTokenCheck, TokenError};
use crate::metadata::ProviderMetadata;
use crate::provider::{DocStore, Provider};

/// How keystead authenticates to the token endpoint: the configured
/// [`AuthMethod`] with what it needs. A new method is a new variant here
/// and a new arm in [`Provider::token_request`].
#[derive(Debug)]
pub enum ClientCredentials {
    /// A public client: `client_id` in the form (RFC 6749 §2.3.1).
    None { client_id: String },
    /// HTTP Basic with the form-encoded id and secret.
    Basic {
        client_id: String,
        secret: SecretString,
    },
    /// `client_id` and `client_secret` in the form.
    Post {
        client_id: String,
        secret: SecretString,
    },
}

impl ClientCredentials {
    /// The credentials of `method`; a method that needs a secret without
    /// one stored is a token exchange failure the partner can fix.
    pub fn new(method: AuthMethod, client_id: &str, secret: Option<SecretString>) -> Result<Self> {
        let client_id = client_id.to_string();
        let need = || {
            OidcError::new(
                Kind::TokenExchange,
                format!("{method} needs a client secret and none is stored"),
            )
        };
        Ok(match method {
            AuthMethod::None => ClientCredentials::None { client_id },
            AuthMethod::ClientSecretBasic => ClientCredentials::Basic {
                client_id,
                secret: secret.ok_or_else(need)?,
            },
            AuthMethod::ClientSecretPost => ClientCredentials::Post {
                client_id,
                secret: secret.ok_or_else(need)?,
            },
        })
    }

    fn method(&self) -> AuthMethod {
        match self {
            ClientCredentials::None { .. } => AuthMethod::None,
            ClientCredentials::Basic { .. } => AuthMethod::ClientSecretBasic,
            ClientCredentials::Post { .. } => AuthMethod::ClientSecretPost,
        }
    }
}

/// The token endpoint's answer, reduced to what sign-in reads.
#[derive(Debug)]
pub struct TokenResponse {
    pub id_token: Option<String>,
    pub access_token: Option<SecretString>,
    /// The scopes granted, when the IdP says (RFC 6749 §5.1).
    pub scope: Option<String>,
}

/// An error the IdP sent back to the redirect URI, in words; a redirect
/// URI problem names the URI to register.
pub fn idp_error(redirect_uri: &str, error: &str, description: Option<&str>) -> OidcError {
    let error = clean(error);
    let desc = description.map(clean).unwrap_or_default();
    let redirect_problem = matches!(
        error.as_str(),
        "redirect_uri_mismatch" | "invalid_redirect_uri"
    ) || desc.to_ascii_lowercase().contains("redirect_uri")
        || desc.to_ascii_lowercase().contains("redirect uri");
    if redirect_problem {
        return OidcError::with_hint(
            Kind::Idp,
            format!(
                "the IdP rejected keystead's redirect URI; register exactly {redirect_uri} as a redirect URI of the client at your IdP"
            ),
            format!("IdP said: {error}: {desc}"),
        );
    }
    if error == "access_denied" {
        return OidcError::new(
            Kind::Idp,
            format!("the sign-in was denied or cancelled at the IdP (access_denied) {desc}")
                .trim()
                .to_string(),
        );
    }
    OidcError::new(
        Kind::Idp,
        if desc.is_empty() {
            format!("the IdP returned an error: {error}")
        } else {
            format!("the IdP returned an error: {error}: {desc}")
        },
    )
}

impl<S: DocStore> Provider<S> {
    /// The authorization code grant at the token endpoint.
    pub async fn token_request(
        &self,
        credentials: &ClientCredentials,
        redirect_uri: &str,
        meta: &ProviderMetadata,
        code: &str,
        verifier: &str,
    ) -> Result<TokenResponse> {
        let method = credentials.method();
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        // RFC 6749 §2.3.1: id and secret are form-encoded before Basic.
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic_user;
        let basic_pass;
        let mut basic = None;
        // The client authentication of each method (RFC 6749 §2.3.1, OIDC
        // Core §9). A new method is a new arm.
        match credentials {
            ClientCredentials::Basic { client_id, secret } => {
                basic_user = enc(client_id);
                basic_pass = zeroize::Zeroizing::new(enc(secret.expose_secret()));
                basic = Some((basic_user.as_str(), basic_pass.as_str()));
            }
            ClientCredentials::Post { client_id, secret } => {
                form.push(("client_id", client_id));
                form.push(("client_secret", secret.expose_secret()));
            }
            ClientCredentials::None { client_id } => form.push(("client_id", client_id)),
        }
        let resp = self
            .outbound()
            .post_form(&meta.token_endpoint, &form, basic)
            .await
            .map_err(|e| fetch_failure("token endpoint", &e, Kind::TokenExchange))?;
        let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        if resp.status == 200 && body.is_object() {
            let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
            return Ok(TokenResponse {
                id_token: text("id_token"),
                access_token: text("access_token").map(SecretString::from),
                scope: text("scope"),
            });
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
            "invalid_client" | "unauthorized_client" => OidcError::with_hint(
                Kind::TokenExchange,
                format!(
                    "the IdP refused keystead's client credentials ({err}{}); check the token endpoint auth method (now {method}) and the client secret",
                    if desc.is_empty() { String::new() } else { format!(": {desc}") }
                ),
                "a client at the IdP is registered for one auth method (client_secret_basic, client_secret_post, or none for a public client) and keystead must use that one: \
                 compare `keystead oidc show` with the client at your IdP, and set the secret again with `keystead oidc set-secret`",
            ),
            "invalid_grant" => OidcError::new(
                Kind::TokenExchange,
                format!("the IdP refused the authorization code (invalid_grant{}); start the sign-in again", if desc.is_empty() { String::new() } else { format!(": {desc}") }),
            ),
            "" => OidcError::new(Kind::TokenExchange, format!("the IdP's token endpoint answered HTTP {}", resp.status)),
            other => OidcError::new(Kind::TokenExchange, format!("the IdP's token endpoint refused: {other} {desc}").trim().to_string()),
        })
    }

    /// The ID token's checks (SPEC §4) with the IdP's keys; a token signed
    /// with an unknown `kid` refetches the JWKS once (key rotation).
    pub async fn verify_id_token(
        &self,
        meta: &ProviderMetadata,
        token: &str,
        issuer: &str,
        client_id: &str,
        nonce: &str,
        now: i64,
    ) -> Result<IdClaims> {
        let began = std::time::Instant::now();
        let jwks = self.jwks(&meta.jwks_uri, None).await?;
        let first = jose::validate_id_token(token, &jwks.keys, issuer, client_id, nonce, now);
        let result = match first {
            Err(TokenError::UnknownKid(_)) => {
                // Key rotation at the IdP: one (rate-limited) refetch.
                let jwks = self.jwks(&meta.jwks_uri, Some(began)).await?;
                jose::validate_id_token(token, &jwks.keys, issuer, client_id, nonce, now)
            }
            other => other,
        };
        result.map_err(|e| {
            let (check, mut err) = match e {
                TokenError::UnknownKid(kid) if kid.is_empty() => (
                    IdTokenCheck::Signature,
                    OidcError::new(
                        Kind::IdToken,
                        "the IdP's JWKS has no signing key usable for the ID token's algorithm",
                    ),
                ),
                TokenError::UnknownKid(kid) => (
                    IdTokenCheck::Signature,
                    OidcError::new(
                        Kind::IdToken,
                        format!("the ID token is signed with key {:?}, which is not in the IdP's JWKS as a usable signing key", clean(&kid)),
                    ),
                ),
                TokenError::Invalid(check, m) => (check, OidcError::new(Kind::IdToken, m)),
            };
            err.id_token_check = Some(check);
            err
        })
    }

    /// The userinfo answer for `access_token`, a JSON object.
    pub async fn userinfo(&self, url: &Url, access_token: &SecretString) -> Result<Value> {
        let resp = self
            .outbound()
            .get_bearer(url, access_token.expose_secret())
            .await
            .map_err(|e| fetch_failure("userinfo", &e, Kind::Idp))?;
        if resp.status != 200 {
            return Err(OidcError::new(
                Kind::Idp,
                format!("the IdP's userinfo endpoint answered HTTP {}", resp.status),
            ));
        }
        serde_json::from_slice::<Value>(&resp.body)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| {
                OidcError::new(Kind::Idp, "the IdP's userinfo answer is not a JSON object")
            })
    }
}
