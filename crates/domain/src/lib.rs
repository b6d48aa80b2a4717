//! The rules of SPEC §3 and §5 with no HTTP and no SQL: what a valid Custom
//! OIDC configuration is, how partners, projects and developers are made,
//! and what Verify checks. The web layer and the CLI call [`Core`]; storage,
//! the key provider and the outbound client are plugged in at start.

mod core;
mod error;
pub mod idp;
pub mod login;
pub mod metrics;
pub mod rules;
pub mod session_jwt;
pub mod sessions;
pub mod time_fmt;
pub mod verify;
pub mod wallets;

pub use crate::core::{Core, CoreConfig, PartnerAuth};
pub use error::{Error, Result};
pub use keystead_model::{Clock, ManualClock, SystemClock};

pub(crate) use keystead_oidc::printable;
