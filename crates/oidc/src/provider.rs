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

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use keystead_model::{discovery_url, Clock};
use keystead_net::Outbound;
use url::Url;

use crate::cache::{disc_key, jwks_key, Cached, DocCache, FlightGuard};
use crate::error::{Kind, OidcError, Result};
use crate::fetch::{fetch_discovery, fetch_jwks};
use crate::metadata::{Discovery, Jwks, ProviderMetadata};

/// What [`Provider::memory_or_flight`] found.
enum Lookup<'a, T> {
    Hit(T),
    Miss { flight: FlightGuard<'a>, now: i64 },
}

pub use keystead_model::CachedDoc;

/// A storage failure, for the log only.
pub type StoreFailure = Box<dyn std::error::Error + Send + Sync>;

/// The shared cache of provider documents (one row per URL, replaced on
/// refetch), kept in the database so every instance sees a refetch.
pub trait DocStore: Send + Sync + 'static {
    fn cached_doc(
        &self,
        url: &str,
    ) -> impl Future<Output = std::result::Result<Option<CachedDoc>, StoreFailure>> + Send;
    fn put_cached_doc(
        &self,
        url: &str,
        doc: &CachedDoc,
    ) -> impl Future<Output = std::result::Result<(), StoreFailure>> + Send;
    /// Claims an unknown-kid refetch of `url`: true unless another was
    /// claimed less than `min_gap` seconds before `now`.
    fn claim_refetch(
        &self,
        url: &str,
        now: i64,
        min_gap: i64,
    ) -> impl Future<Output = std::result::Result<bool, StoreFailure>> + Send;
}

fn store_failure(e: StoreFailure) -> OidcError {
    OidcError::new(Kind::Internal, format!("provider cache: {e}"))
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

/// The partner IdPs as seen from keystead: their checked metadata and
/// keys (cached), and the requests of a sign-in (`client.rs`), all through
/// the one outbound client.
#[derive(Debug)]
pub struct Provider<S> {
    outbound: Outbound,
    store: S,
    clock: Arc<dyn Clock>,
    docs: DocCache,
    stats: CacheStats,
}

/// Where provider documents came from, for `/metrics`.
#[derive(Debug, Default)]
struct CacheStats {
    memory: std::sync::atomic::AtomicU64,
    database: std::sync::atomic::AtomicU64,
    fetched: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
    unknown_kid: std::sync::atomic::AtomicU64,
}

fn bump(c: &std::sync::atomic::AtomicU64) {
    c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

impl<S: DocStore> Provider<S> {
    pub fn new(outbound: Outbound, store: S, clock: Arc<dyn Clock>) -> Self {
        Provider {
            outbound,
            store,
            clock,
            docs: DocCache::default(),
            stats: CacheStats::default(),
        }
    }

    /// Discovery and JWKS lookups by source: `memory`, `database`,
    /// `fetched` (from the IdP), `failed` (a fetch or its checks failed),
    /// and `unknown_kid` refetches.
    pub fn cache_counts(&self) -> Vec<(&'static str, u64)> {
        let s = &self.stats;
        let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        vec![
            ("memory", get(&s.memory)),
            ("database", get(&s.database)),
            ("fetched", get(&s.fetched)),
            ("failed", get(&s.failed)),
            ("unknown_kid", get(&s.unknown_kid)),
        ]
    }

    /// The SSRF-safe client every request to the IdP goes through.
    pub fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

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
    pub async fn metadata(&self, issuer: &str) -> Result<ProviderMetadata> {
        let url = Url::parse(&discovery_url(issuer)).map_err(|_| {
            OidcError::new(
                Kind::Discovery,
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
            Lookup::Hit(r) => {
                bump(&self.stats.memory);
                return r;
            }
            Lookup::Miss { flight, now } => (flight, now),
        };
        if let Some(c) = self
            .store
            .cached_doc(url.as_str())
            .await
            .map_err(store_failure)?
        {
            if c.expires_at > now {
                if let Some(meta) = Discovery::from_json(c.body.as_bytes())
                    .and_then(|d| d.checked(d.issuer.as_deref().unwrap_or("")).ok())
                {
                    let meta = Arc::new(meta);
                    self.docs.put(
                        &key,
                        Cached::Meta(meta.clone()),
                        c.expires_at.min(now + DISCOVERY_TTL_SECS),
                    );
                    bump(&self.stats.database);
                    return meta.check(issuer);
                }
            }
        }
        let fetched = fetch_discovery(&self.outbound, &url)
            .await
            .and_then(|d| d.checked(issuer));
        match fetched {
            Ok(meta) => {
                bump(&self.stats.fetched);
                self.remember_metadata(&url, &meta, now).await;
                Ok(meta)
            }
            Err(e) => {
                bump(&self.stats.failed);
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
    pub async fn remember_metadata(&self, url: &Url, meta: &ProviderMetadata, now: i64) {
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
    pub async fn remember_jwks(&self, url: &Url, jwks: &Jwks, now: i64) {
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
    pub async fn jwks(&self, url: &Url, unknown_kid: Option<Instant>) -> Result<Arc<Jwks>> {
        let key = jwks_key(url);
        let from_memory = |now| match self.docs.get(&key, now) {
            Some((Cached::Jwks(j), fetched)) if unknown_kid.is_none_or(|t| fetched >= t) => {
                Some(Ok(j))
            }
            Some((Cached::Failed(e), _)) if unknown_kid.is_none() => Some(Err(e)),
            _ => None,
        };
        let (_flight, now) = match self.memory_or_flight(&key, from_memory).await {
            Lookup::Hit(r) => {
                bump(&self.stats.memory);
                return r;
            }
            Lookup::Miss { flight, now } => (flight, now),
        };
        let cached = self
            .store
            .cached_doc(url.as_str())
            .await
            .map_err(store_failure)?;
        let from_row = |c: &CachedDoc| {
            Jwks::from_json(c.body.as_bytes())
                .filter(|j| j.usable > 0)
                .map(Arc::new)
        };
        if let Some(c) = &cached {
            let use_row = match unknown_kid {
                // Another instance may have stored the new keys since.
                Some(_) => !self
                    .store
                    .claim_refetch(url.as_str(), now, UNKNOWN_KID_REFETCH_SECS)
                    .await
                    .map_err(store_failure)?,
                None => c.expires_at > now,
            };
            if use_row {
                let c = match unknown_kid {
                    Some(_) => self
                        .store
                        .cached_doc(url.as_str())
                        .await
                        .map_err(store_failure)?
                        .unwrap_or_else(|| c.clone()),
                    None => c.clone(),
                };
                if let Some(j) = from_row(&c) {
                    self.docs.put(
                        &key,
                        Cached::Jwks(j.clone()),
                        c.expires_at.min(now + JWKS_TTL_SECS),
                    );
                    bump(&self.stats.database);
                    return Ok(j);
                }
            }
        }
        let fetched = fetch_jwks(&self.outbound, url).await;
        match fetched {
            Ok(jwks) => {
                bump(&self.stats.fetched);
                if unknown_kid.is_some() {
                    bump(&self.stats.unknown_kid);
                }
                self.remember_jwks(url, &jwks, now).await;
                Ok(Arc::new(jwks))
            }
            Err(e) => {
                bump(&self.stats.failed);
                self.docs.fail(&key, &e, now);
                Err(e)
            }
        }
    }
}

trait CheckIssuer {
    fn check(&self, issuer: &str) -> Result<ProviderMetadata>;
}

impl CheckIssuer for Arc<ProviderMetadata> {
    fn check(&self, issuer: &str) -> Result<ProviderMetadata> {
        if self.issuer == issuer {
            Ok(ProviderMetadata::clone(self))
        } else {
            self.to_doc().checked(issuer)
        }
    }
}
