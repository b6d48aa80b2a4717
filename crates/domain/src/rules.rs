//! Validation of partner input (SPEC §3 and the return URLs of §4) lives in
//! the `keystead-model` crate as the constructors of its types; this module
//! re-exports it for the domain and maps its errors to the domain's.

pub use keystead_model::{
    client_secret, discovery_url, return_urls, AuthMethod, ButtonLabel, ClientId, Invalid, Issuer,
    ReturnUrl, Scopes, DEFAULT_SCOPES, MAX_RETURN_URLS, SUPPORTED_ALGS,
};

impl From<Invalid> for crate::Error {
    fn from(e: Invalid) -> Self {
        crate::Error::new(e.code, e.message)
    }
}
