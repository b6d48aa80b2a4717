//! The partner IdP's metadata (discovery, JWKS) as used at login: fetched
//! through the SSRF-safe client and cached in the database, so every
//! instance shares it and a restart does not refetch. An unknown `kid`
//! forces one JWKS refetch, at most every [`JWKS_MIN_REFETCH_SECS`] seconds per URL
//! across all instances, so key rotation works without a restart and a
//! token with random kids cannot make us hammer the IdP.

use std::sync::Arc;

use keystead_proto::ErrorCode;
use keystead_store::{now_unix, CachedDoc};
use serde_json::Value;
use url::Url;

use crate::core::Core;
use crate::error::{Error, Result};
use crate::rules;
use crate::verify::fetch_json;

pub const DISCOVERY_TTL_SECS: i64 = 15 * 60;
pub const JWKS_TTL_SECS: i64 = 15 * 60;
pub const JWKS_MIN_REFETCH_SECS: i64 = 10;

#[derive(Debug, Clone)]
pub struct ProviderMeta {
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub jwks_uri: Url,
    pub userinfo_endpoint: Option<Url>,
    /// RFC 9207: the IdP promises `iss` on every authorization response.
    pub iss_param_supported: bool,
}

fn endpoint(doc: &Value, key: &str, required: bool) -> Result<Option<Url>> {
    let Some(raw) = doc.get(key).and_then(Value::as_str) else {
        return if required {
            Err(Error::new(
                ErrorCode::DiscoveryFailed,
                format!("the IdP's discovery document has no {key}"),
            ))
        } else {
            Ok(None)
        };
    };
    match Url::parse(raw) {
        Ok(u) if u.scheme() == "https" => Ok(Some(u)),
        _ => Err(Error::new(
            ErrorCode::DiscoveryFailed,
            format!("the IdP's {key} is not an https URL"),
        )),
    }
}

/// A per-process copy of the database cache, so a login does not re-read
/// and re-parse the same documents. It never outlives the database entry's
/// expiry, and a refresh always goes back to the database (where another
/// instance may already have stored the rotated keys).
#[derive(Debug, Default)]
pub struct DocCache {
    docs: std::sync::Mutex<std::collections::HashMap<String, (Arc<Value>, i64)>>,
}

impl DocCache {
    fn get(&self, url: &str, now: i64) -> Option<Arc<Value>> {
        let docs = self.docs.lock().ok()?;
        docs.get(url)
            .filter(|(_, exp)| *exp > now)
            .map(|(v, _)| v.clone())
    }

    fn put(&self, url: &str, doc: Arc<Value>, expires_at: i64) {
        if let Ok(mut docs) = self.docs.lock() {
            if docs.len() > 10_000 {
                docs.clear();
            }
            docs.insert(url.to_string(), (doc, expires_at));
        }
    }
}

impl Core {
    async fn cached_json(
        &self,
        url: &Url,
        ttl: i64,
        what: &str,
        code: ErrorCode,
        refresh: bool,
    ) -> Result<Arc<Value>> {
        let now = now_unix();
        if !refresh {
            if let Some(v) = self.docs.get(url.as_str(), now) {
                return Ok(v);
            }
        }
        let cached = self.store.cached_doc(url.as_str()).await?;
        if let Some(c) = &cached {
            let use_cache = if refresh {
                !self
                    .store
                    .claim_refetch(url.as_str(), now, JWKS_MIN_REFETCH_SECS)
                    .await?
            } else {
                c.expires_at > now
            };
            if use_cache {
                if let Ok(v) = serde_json::from_str::<Value>(&c.body) {
                    let v = Arc::new(v);
                    self.docs
                        .put(url.as_str(), v.clone(), c.expires_at.min(now + ttl));
                    return Ok(v);
                }
            }
        }
        let value = fetch_json(&self.outbound, url, what, code)
            .await
            .map_err(|(code, msg)| Error::new(code, msg))?;
        let body = serde_json::to_string(&value).map_err(Error::internal)?;
        self.store
            .put_cached_doc(
                url.as_str(),
                &CachedDoc {
                    body,
                    fetched_at: now,
                    expires_at: now + ttl,
                },
            )
            .await?;
        let value = Arc::new(value);
        self.docs.put(url.as_str(), value.clone(), now + ttl);
        Ok(value)
    }

    /// Discovery for `issuer`, checked: its `issuer` must match exactly and
    /// the endpoints must be https.
    pub async fn provider_meta(&self, issuer: &str) -> Result<ProviderMeta> {
        let url = Url::parse(&rules::discovery_url(issuer)).map_err(|_| {
            Error::new(
                ErrorCode::DiscoveryFailed,
                "the issuer does not form a valid discovery URL",
            )
        })?;
        let doc = self
            .cached_json(
                &url,
                DISCOVERY_TTL_SECS,
                "discovery",
                ErrorCode::DiscoveryFailed,
                false,
            )
            .await?;
        let claimed = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
        if claimed != issuer {
            return Err(Error::with_hint(
                ErrorCode::DiscoveryFailed,
                format!("the IdP's discovery document names issuer {claimed:?}, not the configured {issuer:?}"),
                "run `keystead oidc verify` for details",
            ));
        }
        Ok(ProviderMeta {
            authorization_endpoint: endpoint(&doc, "authorization_endpoint", true)?
                .ok_or_else(|| Error::internal("unreachable"))?,
            token_endpoint: endpoint(&doc, "token_endpoint", true)?
                .ok_or_else(|| Error::internal("unreachable"))?,
            jwks_uri: endpoint(&doc, "jwks_uri", true)?
                .ok_or_else(|| Error::internal("unreachable"))?,
            userinfo_endpoint: endpoint(&doc, "userinfo_endpoint", false)?,
            iss_param_supported: doc
                .get("authorization_response_iss_parameter_supported")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// Stores a freshly fetched document (from Verify) in both caches.
    pub(crate) async fn remember_doc(&self, url: &Url, doc: &Value, ttl: i64) {
        let now = now_unix();
        let Ok(body) = serde_json::to_string(doc) else {
            return;
        };
        let cached = CachedDoc {
            body,
            fetched_at: now,
            expires_at: now + ttl,
        };
        match self.store.put_cached_doc(url.as_str(), &cached).await {
            Ok(()) => self
                .docs
                .put(url.as_str(), Arc::new(doc.clone()), now + ttl),
            Err(e) => tracing::warn!(error = %e, "could not cache a provider document"),
        }
    }

    /// The JWKS; `refresh` asks for a refetch (rate-limited).
    pub async fn provider_jwks(&self, jwks_uri: &Url, refresh: bool) -> Result<Arc<Value>> {
        self.cached_json(
            jwks_uri,
            JWKS_TTL_SECS,
            "jwks",
            ErrorCode::JwksFailed,
            refresh,
        )
        .await
    }
}
