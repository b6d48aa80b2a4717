//! The rules of SPEC §3 and §5 with no HTTP and no SQL: what a valid Custom
//! OIDC configuration is, how partners, projects and developers are made,
//! and what Verify checks. The web layer and the CLI call [`Core`]; storage,
//! the key provider and the outbound client are plugged in at start.

pub mod clock;
mod core;
mod error;
mod idp;
pub mod jose;
pub mod login;
pub mod metrics;
pub mod provider;
pub mod rules;
pub mod session_jwt;
pub mod sessions;
pub mod time_fmt;
pub mod verify;
pub mod wallets;

pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::core::{Core, CoreConfig, PartnerAuth};
pub use error::{Error, Result};

/// Text from a partner's IdP made safe to show: no control characters
/// (terminal escapes in the CLI, header or log injection) and at most `max`
/// characters.
pub(crate) fn printable(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}
