use keystead_proto::{ErrorCode, ErrorDetail};

/// The domain's one error type. `Api` errors are shown to the caller as they
/// are; `Internal` carries detail for the log only and is answered with a
/// bare `internal`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{code}: {message}")]
    Api {
        code: ErrorCode,
        message: String,
        hint: Option<String>,
    },
    #[error("internal: {0}")]
    Internal(String),
    /// Too many requests; retry after this many seconds.
    #[error("rate limited, retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// A service keystead depends on (the key provider, the database) did
    /// not answer; the detail is for the log only.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// Seconds a client should wait after [`Error::Unavailable`].
pub const UNAVAILABLE_RETRY_AFTER: u64 = 5;

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error::Api {
            code,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(code: ErrorCode, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Api {
            code,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Error::Internal(detail.to_string())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Api { code, .. } => *code,
            Error::Internal(_) => ErrorCode::Internal,
            Error::RateLimited { .. } => ErrorCode::RateLimited,
            Error::Unavailable(_) => ErrorCode::Unavailable,
        }
    }

    /// What the caller may see.
    pub fn detail(&self) -> ErrorDetail {
        match self {
            Error::Api {
                code,
                message,
                hint,
            } => ErrorDetail {
                code: *code,
                message: message.clone(),
                hint: hint.clone(),
            },
            Error::RateLimited { retry_after } => ErrorDetail {
                code: ErrorCode::RateLimited,
                message: format!("Too many requests; retry after {retry_after} s."),
                hint: None,
            },
            Error::Unavailable(_) => ErrorDetail {
                code: ErrorCode::Unavailable,
                message: format!(
                    "A service keystead depends on is not answering right now; try again in {UNAVAILABLE_RETRY_AFTER} s."
                ),
                hint: None,
            },
            Error::Internal(_) => ErrorDetail {
                code: ErrorCode::Internal,
                message: "Something went wrong on the server; the server log has the details."
                    .into(),
                hint: None,
            },
        }
    }
}

impl From<keystead_store::StoreError> for Error {
    fn from(e: keystead_store::StoreError) -> Self {
        match e {
            keystead_store::StoreError::Unavailable(_) => Error::Unavailable(e.to_string()),
            other => Error::internal(other),
        }
    }
}

impl From<keystead_crypto::ProviderError> for Error {
    fn from(e: keystead_crypto::ProviderError) -> Self {
        match e {
            keystead_crypto::ProviderError::Unavailable(_) => Error::Unavailable(e.to_string()),
            other => Error::internal(other),
        }
    }
}
