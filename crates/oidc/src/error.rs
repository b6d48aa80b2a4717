use keystead_proto::ErrorCode;

/// What went wrong with the partner's IdP, in words a partner can act on.
/// The [`Kind`] says which SPEC error code it is; the message never holds a
/// secret (IdP text in it is made printable and short).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct OidcError {
    pub kind: Kind,
    pub message: String,
    pub hint: Option<String>,
    /// For a refused ID token: the rule it broke.
    pub id_token_check: Option<crate::jose::IdTokenCheck>,
}

/// The failure classes of the IdP client, one per SPEC §6 error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Discovery,
    Jwks,
    AddressNotAllowed,
    TokenExchange,
    IdToken,
    /// The IdP answered with an error (authorization response, userinfo).
    Idp,
    /// keystead's own storage failed; not the IdP's fault.
    Internal,
}

impl Kind {
    /// The one place an IdP failure becomes a SPEC error code.
    pub fn code(self) -> ErrorCode {
        match self {
            Kind::Discovery => ErrorCode::DiscoveryFailed,
            Kind::Jwks => ErrorCode::JwksFailed,
            Kind::AddressNotAllowed => ErrorCode::AddressNotAllowed,
            Kind::TokenExchange => ErrorCode::TokenExchangeFailed,
            Kind::IdToken => ErrorCode::IdTokenInvalid,
            Kind::Idp => ErrorCode::IdpError,
            Kind::Internal => ErrorCode::Internal,
        }
    }
}

impl OidcError {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        OidcError {
            kind,
            message: message.into(),
            hint: None,
            id_token_check: None,
        }
    }

    pub fn with_hint(kind: Kind, message: impl Into<String>, hint: impl Into<String>) -> Self {
        OidcError {
            kind,
            message: message.into(),
            hint: Some(hint.into()),
            id_token_check: None,
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.kind.code()
    }
}

pub type Result<T, E = OidcError> = std::result::Result<T, E>;
