//! The client side of a partner's OpenID Provider, owned in one place:
//! discovery reduced to the fields keystead reads ([`Discovery`]) and
//! checked into [`ProviderMetadata`], the JWKS ([`Jwks`]), their two-level
//! cache ([`Provider`], behind the [`DocStore`] storage interface), the
//! client authentication of each [`AuthMethod`](keystead_model::AuthMethod)
//! ([`ClientCredentials`]), the token request, the ID token verifier with
//! the one list of accepted algorithms ([`jose`]) and userinfo.
//!
//! Every request goes through the SSRF-safe [`keystead_net::Outbound`].
//! Failures are [`OidcError`]s whose [`Kind`] maps to a SPEC error code in
//! one place ([`Kind::code`]).

mod cache;
mod client;
mod error;
mod fetch;
pub mod jose;
mod metadata;
mod probe;
mod provider;

pub use client::{idp_error, ClientCredentials, TokenResponse};
pub use error::{Kind, OidcError};
pub use fetch::{fetch_discovery, fetch_failure, fetch_jwks};
pub use metadata::{AuthorizationRequest, Discovery, Jwks, ProviderMetadata};
pub use probe::{AuthorizationProbe, ProbeRequest};
pub use provider::{
    CachedDoc, DocStore, Provider, StoreFailure, CACHE_BYTES, DISCOVERY_TTL_SECS, FAILURE_TTL_SECS,
    JWKS_TTL_SECS, UNKNOWN_KID_REFETCH_SECS,
};

/// Text from a partner's IdP made safe to show: no control characters
/// (terminal escapes in the CLI, header or log injection) and at most `max`
/// characters.
pub fn printable(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// IdP text in an error sentence: printable, at most 200 characters.
pub(crate) fn clean(s: &str) -> String {
    printable(s, 200)
}
