//! The one HTTP client for partner-controlled URLs (SPEC §8). Discovery,
//! JWKS, token and userinfo requests all go through [`Outbound`]; nothing
//! else in keystead may talk to a URL a partner chose.

pub mod addr;
mod client;

pub use addr::{address_allowed, check_url, is_global, Rejection, Target};
pub use client::{
    FetchError, NameLookup, Outbound, OutboundConfig, Response, DEFAULT_MAX_IN_FLIGHT, MAX_BODY,
    MAX_METADATA_BODY,
};
