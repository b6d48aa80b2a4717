//! Metadata documents fetched through the SSRF-safe client, and fetch
//! failures in words.

use keystead_net::{FetchError, Outbound, MAX_METADATA_BODY};
use url::Url;

use crate::error::{Kind, OidcError};
use crate::metadata::{Discovery, Jwks};

/// Fetches a metadata document (capped at 256 KiB), or the sentence saying
/// why not.
pub async fn fetch_doc(
    outbound: &Outbound,
    url: &Url,
    what: &str,
    kind: Kind,
) -> Result<Vec<u8>, OidcError> {
    let resp = outbound
        .get(url, "application/json", MAX_METADATA_BODY)
        .await
        .map_err(|e| fetch_failure(what, &e, kind))?;
    if (300..400).contains(&resp.status) {
        return Err(OidcError::new(
            kind,
            format!(
                "{what}: {url} answered with a redirect (HTTP {}); keystead does not follow redirects — configure the final URL",
                resp.status
            ),
        ));
    }
    if resp.status != 200 {
        return Err(OidcError::new(
            kind,
            format!("{what}: {url} answered HTTP {}", resp.status),
        ));
    }
    Ok(resp.body)
}

/// The discovery document at `url`, reduced to the fields keystead reads
/// (not yet checked against an issuer).
pub async fn fetch_discovery(outbound: &Outbound, url: &Url) -> Result<Discovery, OidcError> {
    let body = fetch_doc(outbound, url, "discovery", Kind::Discovery).await?;
    Discovery::from_json(&body).ok_or_else(|| {
        OidcError::new(
            Kind::Discovery,
            format!("discovery: {url} did not return a JSON object"),
        )
    })
}

/// The JWKS at `url`, reduced to its usable public signing keys.
pub async fn fetch_jwks(outbound: &Outbound, url: &Url) -> Result<Jwks, OidcError> {
    let body = fetch_doc(outbound, url, "jwks", Kind::Jwks).await?;
    Jwks::from_json(&body).ok_or_else(|| {
        OidcError::new(
            Kind::Jwks,
            format!("jwks: {url} did not return a JSON object with keys"),
        )
    })
}

/// A fetch failure as an [`OidcError`] of kind `default` (or
/// `AddressNotAllowed`); never includes resolved
/// addresses, only the host the partner wrote.
pub fn fetch_failure(what: &str, err: &FetchError, default: Kind) -> OidcError {
    let (kind, message) = match err {
        FetchError::NotAllowed { host, .. } => (
            Kind::AddressNotAllowed,
            format!(
                "{what}: {host} is not a public address keystead may connect to (loopback, private, link-local and other special-purpose ranges are refused); the IdP must be reachable on a public address"
            ),
        ),
        FetchError::Resolve { host } => (
            default,
            format!("{what}: the host name {host} could not be resolved; check the spelling of the URL"),
        ),
        FetchError::Timeout { host } => (
            default,
            format!("{what}: {host} did not answer in time"),
        ),
        FetchError::Connect { host, detail } => (
            default,
            format!("{what}: could not connect to {host} over TLS ({detail})"),
        ),
        FetchError::TooLarge { host, limit } => (
            default,
            format!(
                "{what}: the response from {host} is larger than {} KiB, more than any real IdP needs",
                limit / 1024
            ),
        ),
        FetchError::Busy { host } => (
            default,
            format!("{what}: keystead has too many requests to IdPs in flight to ask {host} now; try again in a moment"),
        ),
        FetchError::Other { host, detail } => (default, format!("{what}: {host}: {detail}")),
    };
    OidcError::new(kind, message)
}
