use serde::{Deserialize, Serialize};

/// Every stable error code of SPEC §6, in one place. The wire spelling is
/// the snake_case variant name; HTTP status lives next to it so a code can
/// never be answered with two different statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    IssuerInvalid,
    IssuerNotHttps,
    ClientIdInvalid,
    ScopesInvalid,
    AuthMethodInvalid,
    ButtonLabelInvalid,
    ClientSecretRequired,
    ClientSecretNotAllowed,
    ClientSecretInvalid,
    CustomOidcNotConfigured,
    CustomOidcDisabled,
    ReturnToNotAllowed,
    ReturnUrlInvalid,
    EmailDomainInvalid,
    SignInNotAllowed,
    StateInvalid,
    LoginCodeInvalid,
    PkceInvalid,
    Unauthorized,
    Forbidden,
    NotFound,
    WalletExists,
    AddressNotAllowed,
    DiscoveryFailed,
    JwksFailed,
    IdpError,
    TokenExchangeFailed,
    IdTokenInvalid,
    RateLimited,
    InvalidRequest,
    PayloadTooLarge,
    RequestTimeout,
    Conflict,
    /// A service keystead depends on (the database, the key provider) is
    /// unreachable; retry after `Retry-After`.
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::IssuerInvalid => "issuer_invalid",
            ErrorCode::IssuerNotHttps => "issuer_not_https",
            ErrorCode::ClientIdInvalid => "client_id_invalid",
            ErrorCode::ScopesInvalid => "scopes_invalid",
            ErrorCode::AuthMethodInvalid => "auth_method_invalid",
            ErrorCode::ButtonLabelInvalid => "button_label_invalid",
            ErrorCode::ClientSecretRequired => "client_secret_required",
            ErrorCode::ClientSecretNotAllowed => "client_secret_not_allowed",
            ErrorCode::ClientSecretInvalid => "client_secret_invalid",
            ErrorCode::CustomOidcNotConfigured => "custom_oidc_not_configured",
            ErrorCode::CustomOidcDisabled => "custom_oidc_disabled",
            ErrorCode::ReturnToNotAllowed => "return_to_not_allowed",
            ErrorCode::ReturnUrlInvalid => "return_url_invalid",
            ErrorCode::EmailDomainInvalid => "email_domain_invalid",
            ErrorCode::SignInNotAllowed => "sign_in_not_allowed",
            ErrorCode::StateInvalid => "state_invalid",
            ErrorCode::LoginCodeInvalid => "login_code_invalid",
            ErrorCode::PkceInvalid => "pkce_invalid",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::WalletExists => "wallet_exists",
            ErrorCode::AddressNotAllowed => "address_not_allowed",
            ErrorCode::DiscoveryFailed => "discovery_failed",
            ErrorCode::JwksFailed => "jwks_failed",
            ErrorCode::IdpError => "idp_error",
            ErrorCode::TokenExchangeFailed => "token_exchange_failed",
            ErrorCode::IdTokenInvalid => "id_token_invalid",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status this code is always answered with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::IssuerInvalid
            | ErrorCode::IssuerNotHttps
            | ErrorCode::ClientIdInvalid
            | ErrorCode::ScopesInvalid
            | ErrorCode::AuthMethodInvalid
            | ErrorCode::ButtonLabelInvalid
            | ErrorCode::ClientSecretRequired
            | ErrorCode::ClientSecretNotAllowed
            | ErrorCode::ClientSecretInvalid
            | ErrorCode::CustomOidcDisabled
            | ErrorCode::ReturnToNotAllowed
            | ErrorCode::ReturnUrlInvalid
            | ErrorCode::EmailDomainInvalid
            | ErrorCode::StateInvalid
            | ErrorCode::LoginCodeInvalid
            | ErrorCode::PkceInvalid
            | ErrorCode::InvalidRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden | ErrorCode::SignInNotAllowed => 403,
            ErrorCode::NotFound | ErrorCode::CustomOidcNotConfigured => 404,
            ErrorCode::WalletExists | ErrorCode::Conflict => 409,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::AddressNotAllowed
            | ErrorCode::DiscoveryFailed
            | ErrorCode::JwksFailed
            | ErrorCode::IdpError
            | ErrorCode::TokenExchangeFailed
            | ErrorCode::IdTokenInvalid => 502,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"error": {"code", "message", "hint"?}}`
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_spelling_matches_as_str() {
        for code in [
            ErrorCode::IssuerInvalid,
            ErrorCode::AddressNotAllowed,
            ErrorCode::CustomOidcNotConfigured,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ] {
            let json = serde_json::to_string(&code).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
