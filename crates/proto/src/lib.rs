//! Wire types shared by the server, the CLI, the typed client, the tests
//! and the bench: every JSON body of SPEC §4, §5 and §7 and the error codes
//! of SPEC §6. Both sides compile against the same
//! definitions so that a renamed field is a compile error, not a silent
//! mismatch between `keystead serve` and `keystead oidc …`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

mod error;
mod user;
mod wallet;
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use user::*;
pub use wallet::*;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// 1–100 characters (after trimming), no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*[^\\s\\x00-\\x1F\\x7F-\\x9F][^\\x00-\\x1F\\x7F-\\x9F]*$"
    )]
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Project {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// 1–100 characters (after trimming), no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*[^\\s\\x00-\\x1F\\x7F-\\x9F][^\\x00-\\x1F\\x7F-\\x9F]*$"
    )]
    pub name: String,
}

/// The only response that ever carries a secret key: it is shown once.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKey {
    pub partner_id: String,
    pub publishable_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApiKey")
            .field("partner_id", &self.partner_id)
            .field("publishable_key", &self.publishable_key)
            .field("secret_key", &"[redacted]")
            .finish()
    }
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeveloper {
    /// An address with an `@`, at most 254 characters, no spaces.
    #[schema(
        max_length = 254,
        pattern = "^[^\\s\\x00-\\x1F\\x7F-\\x9F]*@[^\\s\\x00-\\x1F\\x7F-\\x9F]*$"
    )]
    pub email: String,
    /// At least 12 characters.
    #[schema(min_length = 12)]
    pub password: String,
    #[serde(default)]
    pub project_ids: Vec<String>,
}

impl std::fmt::Debug for CreateDeveloper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateDeveloper")
            .field("email", &self.email)
            .field("password", &"[redacted]")
            .field("project_ids", &self.project_ids)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Developer {
    pub id: String,
    pub email: String,
    pub project_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Partner {
    pub partner_id: String,
    pub project_id: String,
    pub name: String,
    pub allowed_return_urls: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchPartner {
    pub allowed_return_urls: Vec<String>,
}

/// `PUT /v1/partner/custom-oidc`. Optional fields keep their stored value
/// (or take the SPEC §3 default on first creation) when absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutCustomOidc {
    /// An absolute https URL without query, fragment or userinfo (SPEC §3).
    #[schema(
        required = true,
        nullable = false,
        pattern = "^https://[^/?#@\\s]+(/[^?#\\s]*)?$"
    )]
    pub issuer: Option<String>,
    /// 1–255 characters, no control characters.
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]+$"
    )]
    pub client_id: Option<String>,
    /// 1–64 characters, no control characters.
    #[schema(
        required = true,
        nullable = false,
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]+$"
    )]
    pub button_label: Option<String>,
    /// Space-separated scope tokens, `openid` among them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        nullable = false,
        pattern = "^([!#-\\[\\]-~]+ )*openid( [!#-\\[\\]-~]+)*$"
    )]
    pub scopes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        nullable = false,
        pattern = "^(client_secret_post|client_secret_basic|none)$"
    )]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Sign-in rules (SPEC §11); absent fields keep their stored value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_email_domains: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_verified_email: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_sign_up: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomOidc {
    pub enabled: bool,
    pub issuer: String,
    pub client_id: String,
    pub scopes: String,
    pub token_endpoint_auth_method: String,
    pub button_label: String,
    pub client_secret_set: bool,
    pub client_secret_updated_at: Option<String>,
    pub redirect_uri: String,
    pub last_verification: Option<Verification>,
    pub allowed_email_domains: Vec<String>,
    pub require_verified_email: bool,
    pub allow_sign_up: bool,
}

/// `PUT /v1/partner/custom-oidc/client-secret`. Never logged: `Debug` redacts.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutClientSecret {
    /// 1–4096 bytes, no control characters (a pasted newline is refused).
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]+$"
    )]
    pub client_secret: String,
}

impl std::fmt::Debug for PutClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PutClientSecret { client_secret: [redacted] }")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
    /// Could not run because an earlier check failed (test logins).
    Skip,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
            CheckStatus::Skip => "skip",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Check {
    pub name: String,
    pub status: CheckStatus,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Verification {
    pub ok: bool,
    pub checked_at: String,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
}

/// `POST /v1/partner/custom-oidc/test-logins` (SPEC §11).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TestLoginCreated {
    pub test_id: String,
    /// Open it in a browser and sign in at the IdP.
    pub authorization_url: String,
    pub expires_at: String,
}

/// `GET /v1/partner/custom-oidc/test-logins/{test_id}` (SPEC §11).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TestLogin {
    pub test_id: String,
    /// `pending`, `passed`, `failed` or `expired`.
    pub status: String,
    pub checks: Vec<Check>,
    /// The ID token's claims merged with userinfo's; never the raw tokens.
    #[schema(value_type = Object)]
    pub claims: serde_json::Value,
    /// For each claim, `id_token` or `userinfo`.
    pub claim_sources: std::collections::BTreeMap<String, String>,
    pub outcome: Option<TestOutcome>,
    pub finished_at: Option<String>,
}

/// What a real sign-in would have done.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TestOutcome {
    /// `new` or `existing`.
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub wallets: Vec<TestWallet>,
    /// Pregenerated wallets the verified email would claim.
    pub would_claim: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TestWallet {
    #[serde(rename = "type")]
    pub kind: String,
    pub address: String,
}
