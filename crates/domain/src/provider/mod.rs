//! The partner IdP's metadata (discovery, JWKS) as used at login and by
//! Verify: fetched through the SSRF-safe client with a 256 KiB cap, reduced
//! to the typed fields keystead reads, and cached only once it passed its
//! checks. Two layers of cache: the database (shared by every instance, one
//! row per URL, replaced on refetch, purged when stale) and a per-process
//! LRU bounded in bytes. A failed fetch is remembered for a few seconds
//! (negative cache) and only one fetch per URL is in flight at a time per
//! process (single flight), so a failing IdP cannot make public sign-in
//! starts pile up outbound connections.
//!
//! An ID token signed with an unknown `kid` forces one JWKS refetch, at most
//! one per [`UNKNOWN_KID_REFETCH_SECS`] per URL across all instances,
//! counted only against earlier unknown-kid refetches: a rotation right
//! after an ordinary fetch never fails a login, and random kids cannot make
//! us hammer the IdP.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use keystead_net::MAX_METADATA_BODY;
use keystead_proto::ErrorCode;
use keystead_store::CachedDoc;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use crate::core::Core;
use crate::error::{Error, Result};
use crate::jose::jwk_algs;
use crate::rules;
use crate::verify::fetch_failure;

mod cache;

pub use cache::DocCache;
use cache::{disc_key, jwks_key, Cached, FlightGuard};

/// What [`Core::memory_or_flight`] found.
enum Lookup<'a, T> {
    Hit(T),
    Miss { flight: FlightGuard<'a>, now: i64 },
}

pub const DISCOVERY_TTL_SECS: i64 = 15 * 60;
pub const JWKS_TTL_SECS: i64 = 15 * 60;
/// Unknown-kid refetches per JWKS URL, across instances: at most one per
/// this many seconds.
pub const UNKNOWN_KID_REFETCH_SECS: i64 = 1;
/// How long a failed fetch (or a document that failed its checks) is
/// answered from memory before the IdP is asked again.
pub const FAILURE_TTL_SECS: i64 = 5;
/// The per-process cache's budget: parsed documents are a few KiB each.
pub const CACHE_BYTES: usize = 4 * 1024 * 1024;
/// Real IdPs publish a handful of keys; more than this is not a JWKS we keep.
const MAX_JWKS_KEYS: usize = 64;
/// Longest key parameter kept (`n` of a 16384-bit RSA key is 2731 chars).
const MAX_KEY_PARAM: usize = 4096;
/// Entries of a `*_supported` list kept, and their length.
const MAX_LIST: usize = 200;
const MAX_LIST_ITEM: usize = 200;

/// The fields of an OpenID Provider's discovery document that keystead
/// reads (OpenID Connect Discovery 1.0 §3), and nothing else. Lists keep
/// only their string entries, as the rules ask about membership.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Discovery {
    pub issuer: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub response_types_supported: Option<Vec<String>>,
    pub id_token_signing_alg_values_supported: Option<Vec<String>>,
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    pub code_challenge_methods_supported: Option<Vec<String>>,
    pub scopes_supported: Option<Vec<String>>,
    pub authorization_response_iss_parameter_supported: Option<bool>,
}

impl Discovery {
    /// Reads the known fields of a JSON object; `None` if it is not one.
    pub fn from_json(body: &[u8]) -> Option<Self> {
        let v: Value = serde_json::from_slice(body).ok()?;
        Self::from_value(&v)
    }

    pub fn from_value(v: &Value) -> Option<Self> {
        let obj = v.as_object()?;
        let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
        let list = |k: &str| {
            obj.get(k).and_then(Value::as_array).map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|s| s.len() <= MAX_LIST_ITEM)
                    .take(MAX_LIST)
                    .map(str::to_string)
                    .collect()
            })
        };
        Some(Discovery {
            issuer: s("issuer"),
            authorization_endpoint: s("authorization_endpoint"),
            token_endpoint: s("token_endpoint"),
            jwks_uri: s("jwks_uri"),
            userinfo_endpoint: s("userinfo_endpoint"),
            response_types_supported: list("response_types_supported"),
            id_token_signing_alg_values_supported: list("id_token_signing_alg_values_supported"),
            token_endpoint_auth_methods_supported: list("token_endpoint_auth_methods_supported"),
            code_challenge_methods_supported: list("code_challenge_methods_supported"),
            scopes_supported: list("scopes_supported"),
            authorization_response_iss_parameter_supported: obj
                .get("authorization_response_iss_parameter_supported")
                .and_then(Value::as_bool),
        })
    }

    /// What sign-in needs, checked: the issuer equals `issuer` exactly and
    /// the endpoints are https URLs.
    pub fn meta(&self, issuer: &str) -> Result<ProviderMeta> {
        let claimed = self.issuer.as_deref().unwrap_or("");
        if claimed != issuer {
            return Err(Error::with_hint(
                ErrorCode::DiscoveryFailed,
                format!(
                    "the IdP's discovery document names issuer {:?}, not the configured {issuer:?}",
                    crate::printable(claimed, 200)
                ),
                "run `keystead oidc verify` for details",
            ));
        }
        let required = |v: &Option<String>, key: &str| {
            endpoint(v.as_deref(), key)?.ok_or_else(|| {
                Error::new(
                    ErrorCode::DiscoveryFailed,
                    format!("the IdP's discovery document has no {key}"),
                )
            })
        };
        Ok(ProviderMeta {
            issuer: claimed.to_string(),
            authorization_endpoint: required(
                &self.authorization_endpoint,
                "authorization_endpoint",
            )?,
            token_endpoint: required(&self.token_endpoint, "token_endpoint")?,
            jwks_uri: required(&self.jwks_uri, "jwks_uri")?,
            userinfo_endpoint: endpoint(self.userinfo_endpoint.as_deref(), "userinfo_endpoint")?,
            iss_param_supported: self
                .authorization_response_iss_parameter_supported
                .unwrap_or(false),
        })
    }
}

fn endpoint(raw: Option<&str>, key: &str) -> Result<Option<Url>> {
    let Some(raw) = raw else { return Ok(None) };
    match Url::parse(raw) {
        Ok(u) if u.scheme() == "https" => Ok(Some(u)),
        _ => Err(Error::new(
            ErrorCode::DiscoveryFailed,
            format!("the IdP's {key} is not an https URL"),
        )),
    }
}

/// Discovery as sign-in uses it: checked, typed, small.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderMeta {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub jwks_uri: Url,
    pub userinfo_endpoint: Option<Url>,
    /// RFC 9207: the IdP promises `iss` on every authorization response.
    pub iss_param_supported: bool,
}

impl ProviderMeta {
    /// The cached form: the discovery field names, so rows written by
    /// earlier versions (whole documents) read the same way.
    fn to_doc(&self) -> Discovery {
        Discovery {
            issuer: Some(self.issuer.clone()),
            authorization_endpoint: Some(self.authorization_endpoint.to_string()),
            token_endpoint: Some(self.token_endpoint.to_string()),
            jwks_uri: Some(self.jwks_uri.to_string()),
            userinfo_endpoint: self.userinfo_endpoint.as_ref().map(Url::to_string),
            authorization_response_iss_parameter_supported: Some(self.iss_param_supported),
            ..Discovery::default()
        }
    }

    fn bytes(&self) -> usize {
        self.issuer.len()
            + self.authorization_endpoint.as_str().len()
            + self.token_endpoint.as_str().len()
            + self.jwks_uri.as_str().len()
            + self
                .userinfo_endpoint
                .as_ref()
                .map_or(0, |u| u.as_str().len())
            + 256
    }
}

/// A JWKS reduced to the public signing keys keystead can use, with only
/// the members the verifier reads. `usable` counts them.
#[derive(Debug, Clone)]
pub struct Jwks {
    pub keys: Value,
    pub total: usize,
    pub usable: usize,
    bytes: usize,
}

const JWK_MEMBERS: &[&str] = &["kty", "kid", "use", "alg", "crv", "n", "e", "x", "y"];

impl Jwks {
    pub fn from_json(body: &[u8]) -> Option<Self> {
        let v: Value = serde_json::from_slice(body).ok()?;
        Self::from_value(&v)
    }

    pub fn from_value(v: &Value) -> Option<Self> {
        let all = v.get("keys")?.as_array()?;
        let mut bytes = 64;
        let keys: Vec<Value> = all
            .iter()
            .filter(|k| !jwk_algs(k).is_empty())
            .filter_map(|k| {
                let mut out = Map::new();
                for m in JWK_MEMBERS {
                    match k.get(*m) {
                        Some(Value::String(s)) if s.len() <= MAX_KEY_PARAM => {
                            bytes += m.len() + s.len() + 16;
                            out.insert((*m).to_string(), Value::String(s.clone()));
                        }
                        None => {}
                        // A member keystead reads with an odd type or size:
                        // not a key to trust.
                        Some(_) => return None,
                    }
                }
                Some(Value::Object(out))
            })
            .take(MAX_JWKS_KEYS)
            .collect();
        Some(Jwks {
            total: all.len(),
            usable: keys.len(),
            keys: serde_json::json!({ "keys": keys }),
            bytes,
        })
    }
}

/// Fetches a metadata document (capped at 256 KiB), or the sentence saying
/// why not.
pub(crate) async fn fetch_doc(
    outbound: &keystead_net::Outbound,
    url: &Url,
    what: &str,
    code: ErrorCode,
) -> std::result::Result<Vec<u8>, (ErrorCode, String)> {
    let resp = outbound
        .get(url, "application/json", MAX_METADATA_BODY)
        .await
        .map_err(|e| fetch_failure(what, &e, code))?;
    if (300..400).contains(&resp.status) {
        return Err((
            code,
            format!(
                "{what}: {url} answered with a redirect (HTTP {}); keystead does not follow redirects — configure the final URL",
                resp.status
            ),
        ));
    }
    if resp.status != 200 {
        return Err((code, format!("{what}: {url} answered HTTP {}", resp.status)));
    }
    Ok(resp.body)
}

fn not_json(what: &str, url: &Url, code: ErrorCode) -> Error {
    Error::new(code, format!("{what}: {url} did not return a JSON object"))
}

impl Core {
    /// The memory cache, else this key's single flight: after waiting for
    /// it the cache is read again (the request in front may have filled
    /// it); a miss then fetches while holding the flight.
    async fn memory_or_flight<T>(
        &self,
        key: &str,
        from_memory: impl Fn(i64) -> Option<T>,
    ) -> Lookup<'_, T> {
        if let Some(r) = from_memory(self.now()) {
            return Lookup::Hit(r);
        }
        let flight = self.docs.flight(key).await;
        let now = self.now();
        match from_memory(now) {
            Some(r) => Lookup::Hit(r),
            None => Lookup::Miss { flight, now },
        }
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
        let key = disc_key(&url);
        let from_memory = |now| match self.docs.get(&key, now) {
            Some((Cached::Meta(m), _)) => Some(m.check(issuer)),
            Some((Cached::Failed(e), _)) => Some(Err(e)),
            _ => None,
        };
        let (_flight, now) = match self.memory_or_flight(&key, from_memory).await {
            Lookup::Hit(r) => return r,
            Lookup::Miss { flight, now } => (flight, now),
        };
        if let Some(c) = self.store.cached_doc(url.as_str()).await? {
            if c.expires_at > now {
                if let Some(meta) = Discovery::from_json(c.body.as_bytes())
                    .and_then(|d| d.meta(d.issuer.as_deref().unwrap_or("")).ok())
                {
                    let meta = Arc::new(meta);
                    self.docs.put(
                        &key,
                        Cached::Meta(meta.clone()),
                        c.expires_at.min(now + DISCOVERY_TTL_SECS),
                    );
                    return meta.check(issuer);
                }
            }
        }
        let fetched = fetch_doc(
            &self.outbound,
            &url,
            "discovery",
            ErrorCode::DiscoveryFailed,
        )
        .await
        .map_err(|(code, msg)| Error::new(code, msg))
        .and_then(|body| {
            Discovery::from_json(&body)
                .ok_or_else(|| not_json("discovery", &url, ErrorCode::DiscoveryFailed))
        })
        .and_then(|d| d.meta(issuer));
        match fetched {
            Ok(meta) => {
                self.remember_meta(&url, &meta, now).await;
                Ok(meta)
            }
            Err(e) => {
                self.docs.fail(&key, &e, now);
                Err(e)
            }
        }
    }

    /// The database row for `url` (one per URL, replaced); a failure to
    /// write only costs a refetch later.
    async fn persist(&self, url: &Url, body: serde_json::Result<String>, now: i64, ttl: i64) {
        let Ok(body) = body else { return };
        let doc = CachedDoc {
            body,
            fetched_at: now,
            expires_at: now + ttl,
        };
        if let Err(e) = self.store.put_cached_doc(url.as_str(), &doc).await {
            tracing::warn!(error = %e, "could not cache a provider document");
        }
    }

    /// Stores discovery that passed its checks in both caches (sign-in and
    /// a Verify that just fetched it).
    pub(crate) async fn remember_meta(&self, url: &Url, meta: &ProviderMeta, now: i64) {
        self.persist(
            url,
            serde_json::to_string(&meta.to_doc()),
            now,
            DISCOVERY_TTL_SECS,
        )
        .await;
        self.docs.put(
            &disc_key(url),
            Cached::Meta(Arc::new(meta.clone())),
            now + DISCOVERY_TTL_SECS,
        );
    }

    /// Stores a JWKS in both caches when it holds a usable key; one
    /// without is remembered briefly in memory only.
    pub(crate) async fn remember_jwks(&self, url: &Url, jwks: &Jwks, now: i64) {
        let key = jwks_key(url);
        if jwks.usable == 0 {
            self.docs.put(
                &key,
                Cached::Jwks(Arc::new(jwks.clone())),
                now + FAILURE_TTL_SECS,
            );
            return;
        }
        self.persist(url, serde_json::to_string(&jwks.keys), now, JWKS_TTL_SECS)
            .await;
        self.docs.put(
            &key,
            Cached::Jwks(Arc::new(jwks.clone())),
            now + JWKS_TTL_SECS,
        );
    }

    /// The JWKS. `unknown_kid` asks for a refetch because a token named a
    /// key the cached set lacks; `since` is when that token's check began,
    /// so a refetch someone else finished meanwhile counts.
    pub async fn provider_jwks(
        &self,
        url: &Url,
        unknown_kid: Option<Instant>,
    ) -> Result<Arc<Jwks>> {
        let key = jwks_key(url);
        let from_memory = |now| match self.docs.get(&key, now) {
            Some((Cached::Jwks(j), fetched)) if unknown_kid.is_none_or(|t| fetched >= t) => {
                Some(Ok(j))
            }
            Some((Cached::Failed(e), _)) if unknown_kid.is_none() => Some(Err(e)),
            _ => None,
        };
        let (_flight, now) = match self.memory_or_flight(&key, from_memory).await {
            Lookup::Hit(r) => return r,
            Lookup::Miss { flight, now } => (flight, now),
        };
        let cached = self.store.cached_doc(url.as_str()).await?;
        let from_row = |c: &CachedDoc| {
            Jwks::from_json(c.body.as_bytes())
                .filter(|j| j.usable > 0)
                .map(Arc::new)
        };
        if let Some(c) = &cached {
            let use_row = match unknown_kid {
                // Another instance may have stored the new keys since.
                Some(_) => {
                    !self
                        .store
                        .claim_refetch(url.as_str(), now, UNKNOWN_KID_REFETCH_SECS)
                        .await?
                }
                None => c.expires_at > now,
            };
            if use_row {
                let c = match unknown_kid {
                    Some(_) => self
                        .store
                        .cached_doc(url.as_str())
                        .await?
                        .unwrap_or_else(|| c.clone()),
                    None => c.clone(),
                };
                if let Some(j) = from_row(&c) {
                    self.docs.put(
                        &key,
                        Cached::Jwks(j.clone()),
                        c.expires_at.min(now + JWKS_TTL_SECS),
                    );
                    return Ok(j);
                }
            }
        }
        let fetched = fetch_doc(&self.outbound, url, "jwks", ErrorCode::JwksFailed)
            .await
            .map_err(|(code, msg)| Error::new(code, msg))
            .and_then(|body| {
                Jwks::from_json(&body).ok_or_else(|| {
                    Error::new(
                        ErrorCode::JwksFailed,
                        format!("jwks: {url} did not return a JSON object with keys"),
                    )
                })
            });
        match fetched {
            Ok(jwks) => {
                self.remember_jwks(url, &jwks, now).await;
                Ok(Arc::new(jwks))
            }
            Err(e) => {
                self.docs.fail(&key, &e, now);
                Err(e)
            }
        }
    }

    /// Bytes held by the per-process provider cache.
    pub fn provider_cache_bytes(&self) -> usize {
        self.docs.bytes()
    }
}

trait CheckIssuer {
    fn check(&self, issuer: &str) -> Result<ProviderMeta>;
}

impl CheckIssuer for Arc<ProviderMeta> {
    fn check(&self, issuer: &str) -> Result<ProviderMeta> {
        if self.issuer == issuer {
            Ok(ProviderMeta::clone(self))
        } else {
            self.to_doc().meta(issuer)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_keeps_only_the_fields_keystead_reads() {
        let padding = "x".repeat(100_000);
        let doc = serde_json::json!({
            "issuer": "https://idp.example.com",
            "authorization_endpoint": "https://idp.example.com/auth",
            "token_endpoint": "https://idp.example.com/token",
            "jwks_uri": "https://idp.example.com/jwks",
            "response_types_supported": ["code", 7, "id_token"],
            "x_padding": padding,
            "claims_supported": vec!["a"; 1000],
        });
        let d = Discovery::from_value(&doc).unwrap();
        assert_eq!(
            d.response_types_supported,
            Some(vec!["code".to_string(), "id_token".to_string()])
        );
        let kept =
            serde_json::to_string(&d.meta("https://idp.example.com").unwrap().to_doc()).unwrap();
        assert!(kept.len() < 1024, "{}", kept.len());
    }

    #[test]
    fn discovery_issuer_must_match_exactly() {
        let d = Discovery {
            issuer: Some("https://idp.example.com/".into()),
            authorization_endpoint: Some("https://idp.example.com/a".into()),
            token_endpoint: Some("https://idp.example.com/t".into()),
            jwks_uri: Some("https://idp.example.com/j".into()),
            ..Discovery::default()
        };
        assert!(d.meta("https://idp.example.com/").is_ok());
        let e = d.meta("https://idp.example.com").unwrap_err();
        assert_eq!(e.code(), ErrorCode::DiscoveryFailed);
        let mut http = d.clone();
        http.token_endpoint = Some("http://idp.example.com/t".into());
        assert!(http.meta("https://idp.example.com/").is_err());
    }

    #[test]
    fn jwks_keeps_usable_signing_keys_and_their_public_members_only() {
        let jwks = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "a", "n": "AQAB", "e": "AQAB", "d": "private!", "x5c": ["big"]},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "oct", "k": "secret"},
            {"kty": "EC", "crv": "P-256", "x": "x".repeat(5000), "y": "y"},
        ]});
        let j = Jwks::from_value(&jwks).unwrap();
        assert_eq!((j.total, j.usable), (4, 1));
        assert_eq!(
            j.keys,
            serde_json::json!({"keys": [{"kty": "RSA", "kid": "a", "n": "AQAB", "e": "AQAB"}]})
        );
        assert!(Jwks::from_value(&serde_json::json!({"nokeys": 1})).is_none());
    }
}
