//! The typed model of a Custom OIDC configuration (SPEC §3) and of the
//! return URLs (§4). Each type is built once at the edge with `TryFrom`,
//! whose rules are the constructor: a value of the type is valid by
//! construction, and the domain, the store and the web layer pass it on
//! without checking again. Errors carry their SPEC error code and a message
//! that says what to change. Nothing here does I/O, so a rejected request
//! can never have changed anything.

use std::fmt;

pub mod clock;
pub use clock::{Clock, ManualClock, SystemClock};

pub use keystead_proto::ErrorCode;

/// A row of the shared cache of IdP documents (discovery, JWKS): a checked
/// document in its typed JSON form. Written by the `oidc` crate, kept by
/// the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedDoc {
    pub body: String,
    pub fetched_at: i64,
    pub expires_at: i64,
}

/// Why a value was refused: its SPEC error code and what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub code: ErrorCode,
    pub message: String,
}

impl Invalid {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Invalid {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Invalid {}

pub type Result<T, E = Invalid> = std::result::Result<T, E>;

/// A validated string newtype: `as_str`, `Display`, `AsRef<str>`,
/// `TryFrom<&str>` / `TryFrom<String>` through `$check`.
macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $check:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Invalid;
            fn try_from(raw: &str) -> Result<Self> {
                $check(raw).map($name)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Invalid;
            fn try_from(raw: String) -> Result<Self> {
                $name::try_from(raw.as_str())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
    };
}

mod oidc;
pub mod rules;
mod wallet;

pub use oidc::*;
pub use wallet::*;
