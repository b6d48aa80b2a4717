//! What the services are configured with at start.

use url::Url;

/// The public URL and the limits the operator chose.
#[derive(Debug, Clone)]
pub struct DomainConfig {
    pub public_url: Url,
    /// Wallet route rate limit per partner: requests per second and burst.
    pub wallet_rate: (f64, f64),
}

impl DomainConfig {
    pub fn new(public_url: Url) -> Self {
        Self {
            public_url,
            wallet_rate: (10.0, 20.0),
        }
    }

    /// `public_url` as written, without a trailing slash.
    pub fn issuer_url(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_string()
    }

    /// The redirect URI partners register at their IdP.
    pub fn redirect_uri(&self) -> String {
        format!("{}/auth/custom_oidc/callback", self.issuer_url())
    }
}
