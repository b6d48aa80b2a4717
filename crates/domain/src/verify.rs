//! Verify (SPEC §3): live checks of a partner's IdP, each answered with
//! pass/warn/fail and a sentence a person can act on. All requests go
//! through the SSRF-safe [`keystead_net::Outbound`].

use keystead_proto::{Check, CheckStatus, ErrorCode, Verification};
use keystead_store::CustomOidcRow;
use keystead_store::{OidcConfigStore, RateStore};
use url::Url;

use std::sync::Arc;

use keystead_store::Store;

use crate::configuration::{custom_oidc_row, PartnerAuth};
use crate::error::Result;
use crate::idp::Idp;
use crate::limits::SharedLimiter;
use crate::metrics::Metrics;
use crate::rules::{self, SUPPORTED_ALGS};
use crate::time_fmt::rfc3339;
use crate::Clock;
use keystead_oidc::{fetch_discovery, fetch_failure, fetch_jwks, Kind};

/// Verify runs allowed per partner (and instance): a burst of 5, then one
/// every 6 seconds.
pub const VERIFY_PER_SECOND: f64 = 1.0 / 6.0;
pub const VERIFY_BURST: f64 = 5.0;

struct Checks(Vec<Check>);

impl Checks {
    fn push(&mut self, name: &str, status: CheckStatus, detail: impl Into<String>) {
        self.0.push(Check {
            name: name.into(),
            status,
            detail: printable(detail.into()),
            code: None,
            hint: None,
        });
    }
    fn pass(&mut self, name: &str, detail: impl Into<String>) {
        self.push(name, CheckStatus::Pass, detail);
    }
    fn warn(&mut self, name: &str, detail: impl Into<String>) {
        self.push(name, CheckStatus::Warn, detail);
    }
    fn fail(
        &mut self,
        name: &str,
        code: ErrorCode,
        detail: impl Into<String>,
        hint: Option<String>,
    ) {
        self.0.push(Check {
            name: name.into(),
            status: CheckStatus::Fail,
            detail: printable(detail.into()),
            code: Some(code),
            hint: hint.map(printable),
        });
    }
}

/// Details quote IdP-controlled text (issuer, endpoints, algorithm names).
fn printable(s: String) -> String {
    crate::printable(&s, 1000)
}

/// Verify: the store (the last result is kept), the partner IdPs, the
/// per-partner Verify limit, metrics and the clock.
#[derive(Clone)]
pub struct Verify<S = Store> {
    store: S,
    idp: Arc<Idp>,
    limiter: Arc<SharedLimiter>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
}

impl<S: OidcConfigStore + RateStore> Verify<S> {
    pub(crate) fn new(
        store: S,
        idp: Arc<Idp>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Verify {
            store,
            idp,
            limiter: Arc::new(SharedLimiter::new(
                "verify",
                VERIFY_PER_SECOND,
                VERIFY_BURST,
            )),
            metrics,
            clock,
        }
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    pub async fn verify_custom_oidc(&self, auth: &PartnerAuth) -> Result<Verification> {
        let row = custom_oidc_row(&self.store, &auth.partner.id).await?;
        // Each Verify makes up to two outbound requests on the partner's
        // say-so: a few a minute is all a person needs.
        self.limiter
            .check(&self.store, &auth.partner.id)
            .await
            .map_err(|after| self.metrics.rate_limited(after))?;
        let checks = self.run_checks(&row).await;
        let v = Verification {
            ok: checks.iter().all(|c| c.status != CheckStatus::Fail),
            checked_at: rfc3339(self.now()),
            checks,
        };
        self.metrics.inc(
            "keystead_oidc_verifications_total",
            format!("ok=\"{}\"", v.ok),
        );
        let json = serde_json::to_string(&v).map_err(crate::Error::internal)?;
        self.store.set_verification(&auth.partner.id, &json).await?;
        Ok(v)
    }

    async fn run_checks(&self, row: &CustomOidcRow) -> Vec<Check> {
        let mut c = Checks(Vec::new());
        self.check_discovery_and_more(row, &mut c).await;
        check_secret(row, &mut c);
        c.0
    }

    async fn check_discovery_and_more(&self, row: &CustomOidcRow, c: &mut Checks) {
        let disc_url = rules::discovery_url(&row.issuer);
        let Ok(url) = Url::parse(&disc_url) else {
            c.fail(
                "discovery",
                ErrorCode::DiscoveryFailed,
                format!("{disc_url} is not a valid URL"),
                None,
            );
            return;
        };
        let doc = match fetch_discovery(self.idp.outbound(), &url).await {
            Ok(doc) => doc,
            Err(e) => {
                c.fail("discovery", e.code(), e.message, None);
                return;
            }
        };
        c.pass("discovery", format!("fetched {disc_url}"));
        // A partner who fixed their IdP should not wait for the login
        // cache; only a document that passes sign-in's checks is kept.
        if let Ok(meta) = doc.checked(&row.issuer) {
            self.idp.remember_metadata(&url, &meta, self.now()).await;
        }

        // issuer, character for character
        match doc.issuer.as_deref() {
            Some(i) if i == row.issuer => c.pass("issuer", format!("the discovery document's issuer is {i}")),
            Some(i) if i.trim_end_matches('/') == row.issuer.trim_end_matches('/') => {
                let hint = format!(
                    "set the issuer to exactly {i} (keystead compares issuers character for character, as OpenID Connect requires): keystead oidc configure --issuer {i} …"
                );
                c.fail(
                    "issuer",
                    ErrorCode::DiscoveryFailed,
                    format!(
                        "the configured issuer {} and the IdP's issuer {i} differ only by a trailing slash; ID tokens would be rejected",
                        row.issuer
                    ),
                    Some(hint),
                );
            }
            Some(i) => c.fail(
                "issuer",
                ErrorCode::DiscoveryFailed,
                format!("the discovery document says its issuer is {i}, but the configured issuer is {}", row.issuer),
                Some(format!("if {i} is really your IdP, configure that issuer exactly")),
            ),
            None => c.fail("issuer", ErrorCode::DiscoveryFailed, "the discovery document has no issuer", None),
        }

        // endpoints
        let mut jwks_url = None;
        for (key, raw) in [
            ("authorization_endpoint", &doc.authorization_endpoint),
            ("token_endpoint", &doc.token_endpoint),
            ("jwks_uri", &doc.jwks_uri),
        ] {
            let Some(raw) = raw.as_deref() else {
                c.fail(
                    key,
                    ErrorCode::DiscoveryFailed,
                    format!("the discovery document has no {key}"),
                    None,
                );
                continue;
            };
            let Ok(u) = Url::parse(raw) else {
                c.fail(
                    key,
                    ErrorCode::DiscoveryFailed,
                    format!("{key} {raw:?} is not a valid URL"),
                    None,
                );
                continue;
            };
            if u.scheme() != "https" {
                c.fail(
                    key,
                    ErrorCode::DiscoveryFailed,
                    format!("{key} {raw} does not use https"),
                    None,
                );
                continue;
            }
            match self.idp.outbound().check(&u).await {
                Ok(()) => {
                    c.pass(key, raw.to_string());
                    if key == "jwks_uri" {
                        jwks_url = Some(u);
                    }
                }
                Err(e) => {
                    let e = fetch_failure(key, &e, Kind::Discovery);
                    c.fail(key, e.code(), e.message, None);
                }
            }
        }

        // JWKS
        if let Some(u) = jwks_url {
            let jwks = fetch_jwks(self.idp.outbound(), &u).await;
            match jwks {
                Ok(jwks) if jwks.usable == 0 => c.fail(
                    "jwks",
                    ErrorCode::JwksFailed,
                    format!(
                        "the JWKS has {} key(s) but none usable for a supported algorithm ({})",
                        jwks.total,
                        SUPPORTED_ALGS.join(", ")
                    ),
                    None,
                ),
                Ok(jwks) => {
                    self.idp.remember_jwks(&u, &jwks, self.now()).await;
                    c.pass(
                        "jwks",
                        format!("{} key(s), usable signing keys present", jwks.total),
                    );
                }
                Err(e) => c.fail("jwks", e.code(), e.message, None),
            }
        }

        // response types
        match &doc.response_types_supported {
            Some(l) if l.iter().any(|t| t == "code") => c.pass("response_types", "the authorization code flow is supported"),
            _ => c.fail(
                "response_types",
                ErrorCode::DiscoveryFailed,
                "response_types_supported does not include code; keystead needs the authorization code flow",
                None,
            ),
        }

        // ID token algorithms
        let algs: Vec<&str> = doc
            .id_token_signing_alg_values_supported
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let good: Vec<&str> = algs
            .iter()
            .copied()
            .filter(|a| SUPPORTED_ALGS.contains(a))
            .collect();
        if good.is_empty() {
            c.fail(
                "id_token_signing_alg",
                ErrorCode::DiscoveryFailed,
                format!(
                    "the IdP signs ID tokens with {} only; keystead accepts {} (never none or HS*)",
                    if algs.is_empty() {
                        "nothing listed".to_string()
                    } else {
                        algs.join(", ")
                    },
                    SUPPORTED_ALGS.join(", ")
                ),
                Some(
                    "configure the client at your IdP to sign ID tokens with RS256 or ES256".into(),
                ),
            );
        } else {
            c.pass(
                "id_token_signing_alg",
                format!("supported: {}", good.join(", ")),
            );
        }

        // token endpoint auth method; an absent list means client_secret_basic only
        let methods: Vec<&str> = match &doc.token_endpoint_auth_methods_supported {
            Some(l) => l.iter().map(String::as_str).collect(),
            None => vec!["client_secret_basic"],
        };
        if methods.contains(&row.auth_method.as_str()) {
            c.pass(
                "token_endpoint_auth_method",
                format!("{} is supported", row.auth_method),
            );
        } else {
            let ours: Vec<&str> = methods
                .iter()
                .copied()
                .filter(|m| rules::AuthMethod::try_from(*m).is_ok())
                .collect();
            let hint = match ours.first() {
                Some(m) => format!("switch to {m}: keystead oidc configure … --auth-method {m}"),
                None => {
                    "the IdP supports none of client_secret_post, client_secret_basic, none".into()
                }
            };
            c.fail(
                "token_endpoint_auth_method",
                ErrorCode::AuthMethodInvalid,
                format!(
                    "the IdP does not support {} at its token endpoint; it supports: {}",
                    row.auth_method,
                    methods.join(", ")
                ),
                Some(hint),
            );
        }

        // PKCE for public clients
        if row.auth_method == rules::AuthMethod::None {
            match &doc.code_challenge_methods_supported {
                Some(l) if l.iter().any(|m| m == "S256") => c.pass("pkce", "PKCE S256 is supported"),
                _ => c.warn(
                    "pkce",
                    "the IdP does not list S256 in code_challenge_methods_supported; a public client (auth method none) relies on PKCE",
                ),
            }
        }

        // scopes (warn only: many IdPs list a subset)
        let scopes: Vec<&str> = row.scopes.split(' ').collect();
        match &doc.scopes_supported {
            Some(l) => {
                let missing: Vec<&str> = scopes
                    .iter()
                    .copied()
                    .filter(|s| !l.iter().any(|x| x == s))
                    .collect();
                if missing.is_empty() {
                    c.pass(
                        "scopes",
                        format!("all configured scopes are supported: {}", row.scopes),
                    );
                } else {
                    c.warn(
                        "scopes",
                        format!("the IdP does not list these scopes: {}", missing.join(", ")),
                    );
                }
            }
            None => c.pass(
                "scopes",
                "the IdP does not list its scopes; nothing to compare",
            ),
        }
    }
}

fn check_secret(row: &CustomOidcRow, c: &mut Checks) {
    let needs = row.auth_method.needs_secret();
    let set = row.client_secret_updated_at.is_some();
    match (needs, set) {
        (true, true) => c.pass(
            "client_secret",
            format!("a client secret is stored for {}", row.auth_method),
        ),
        (false, false) => c.pass(
            "client_secret",
            "no client secret is stored, as auth method none requires",
        ),
        (true, false) => c.fail(
            "client_secret",
            ErrorCode::ClientSecretRequired,
            format!(
                "{} needs a client secret and none is stored",
                row.auth_method
            ),
            Some("keystead oidc set-secret".into()),
        ),
        (false, true) => c.fail(
            "client_secret",
            ErrorCode::ClientSecretNotAllowed,
            "auth method none must not have a client secret stored",
            Some("keystead oidc clear-secret".into()),
        ),
    }
}
