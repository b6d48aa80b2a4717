//! Wire types of the end-user side (SPEC §4, §5): the SDK's configuration,
//! sessions, `/v1/me` and session JWTs.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::wallet::Wallet;

/// `GET /v1/sdk/config`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SdkConfig {
    #[serde(rename = "authConfig")]
    pub auth_config: AuthConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthConfig {
    /// `["CUSTOM_OIDC"]` when Custom OIDC is enabled, else empty.
    pub methods: Vec<String>,
    #[serde(
        rename = "oidcConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub oidc_config: Option<OidcButton>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OidcButton {
    pub enabled: bool,
    #[serde(rename = "buttonLabel")]
    pub button_label: String,
}

/// `POST /v1/sessions`. Absent fields are empty (and refused with the
/// error of the field). `Debug` redacts the code and the verifier.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    #[serde(default)]
    pub api_key: String,
    #[serde(default)]
    pub login_code: String,
    #[serde(default)]
    pub code_verifier: String,
}

impl std::fmt::Debug for CreateSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateSession")
            .field("api_key", &self.api_key)
            .field("login_code", &"[redacted]")
            .field("code_verifier", &"[redacted]")
            .finish()
    }
}

/// A new session: the token is shown once. `Debug` redacts it.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionCreated {
    pub session_token: String,
    pub expires_at: String,
    pub user: User,
    pub wallets: Vec<Wallet>,
}

impl std::fmt::Debug for SessionCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCreated")
            .field("session_token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .field("user", &self.user)
            .field("wallets", &self.wallets)
            .finish()
    }
}

/// `GET /v1/me`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub user: User,
    pub wallets: Vec<Wallet>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: String,
    pub identities: Vec<Identity>,
}

/// Who the user is at the partner's IdP; `email` only when verified.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Identity {
    pub issuer: String,
    pub sub: String,
    pub email: Option<String>,
}

/// `POST /v1/sessions/jwt`: an ES256 JWT, verifiable with
/// `/.well-known/jwks.json`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionJwt {
    pub token: String,
    #[serde(rename = "keyId")]
    pub key_id: String,
}

impl std::fmt::Debug for SessionJwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionJwt")
            .field("token", &"[redacted]")
            .field("key_id", &self.key_id)
            .finish()
    }
}

/// `/.well-known/jwks.json`: the public keys of session JWTs (RFC 7517).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// A public EC P-256 signing key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
    pub kid: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub alg: String,
}
