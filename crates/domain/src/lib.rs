//! The rules of SPEC §3 and §5 with no HTTP and no SQL: what a valid Custom
//! OIDC configuration is, how partners, projects and developers are made,
//! and what Verify checks, as one service per SPEC section ([`Services`]);
//! storage, the key provider and the outbound client are plugged in at
//! start.

pub mod admin;
mod config;
pub mod configuration;
mod error;
pub mod idp;
mod limits;
pub mod login;
pub mod metrics;
pub mod portal;
pub mod rules;
mod sdk_cache;
pub mod services;
pub mod sessions;
pub mod time_fmt;
pub mod verify;
mod views;
pub mod wallets;

pub use crate::admin::Admin;
pub use crate::config::DomainConfig;
pub use crate::configuration::{Configuration, PartnerAuth};
pub use crate::limits::{RateLimiter, SharedLimiter};
pub use crate::login::SignIn;
pub use crate::portal::Portal;
pub use crate::services::{Ops, Services};
pub use crate::sessions::Sessions;
pub use crate::verify::Verify;
pub use crate::wallets::Wallets;
pub use error::{Error, Result, UNAVAILABLE_RETRY_AFTER};
pub use keystead_model::{Clock, ManualClock, SystemClock};

pub(crate) use keystead_oidc::printable;
