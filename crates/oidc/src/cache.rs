//! The per-process cache of checked provider documents: a small LRU
//! bounded by bytes, negative entries for failures, and single-flight so
//! one fetch serves every waiting request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use url::Url;

use crate::error::OidcError;
use crate::metadata::{Jwks, ProviderMetadata};
use crate::provider::{CACHE_BYTES, FAILURE_TTL_SECS};

#[derive(Debug, Clone)]
pub(crate) enum Cached {
    Meta(Arc<ProviderMetadata>),
    Jwks(Arc<Jwks>),
    Failed(OidcError),
}

#[derive(Debug)]
struct Slot {
    value: Cached,
    expires_at: i64,
    fetched: Instant,
    bytes: usize,
    used: u64,
}

#[derive(Debug, Default)]
struct Lru {
    slots: HashMap<String, Slot>,
    bytes: usize,
    tick: u64,
}

impl Lru {
    fn get(&mut self, key: &str, now: i64) -> Option<(Cached, Instant)> {
        self.tick += 1;
        let tick = self.tick;
        let slot = self.slots.get_mut(key)?;
        if slot.expires_at <= now {
            return None;
        }
        slot.used = tick;
        Some((slot.value.clone(), slot.fetched))
    }

    fn put(&mut self, key: &str, value: Cached, expires_at: i64, bytes: usize) {
        self.tick += 1;
        let bytes = bytes + key.len() + 64;
        if let Some(old) = self.slots.remove(key) {
            self.bytes -= old.bytes;
        }
        if bytes > CACHE_BYTES / 4 {
            return;
        }
        while self.bytes + bytes > CACHE_BYTES {
            let Some(oldest) = self
                .slots
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(s) = self.slots.remove(&oldest) {
                self.bytes -= s.bytes;
            }
        }
        self.bytes += bytes;
        self.slots.insert(
            key.to_string(),
            Slot {
                value,
                expires_at,
                fetched: Instant::now(),
                bytes,
                used: self.tick,
            },
        );
    }
}

/// The per-process cache and the single-flight locks.
#[derive(Debug, Default)]
pub(crate) struct DocCache {
    lru: Mutex<Lru>,
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl DocCache {
    pub(crate) fn get(&self, key: &str, now: i64) -> Option<(Cached, Instant)> {
        self.lru.lock().ok()?.get(key, now)
    }

    pub(crate) fn put(&self, key: &str, value: Cached, expires_at: i64) {
        let bytes = match &value {
            Cached::Meta(m) => m.bytes(),
            Cached::Jwks(j) => j.bytes,
            Cached::Failed(_) => 512,
        };
        if let Ok(mut lru) = self.lru.lock() {
            lru.put(key, value, expires_at, bytes);
        }
    }

    pub(crate) fn fail(&self, key: &str, e: &OidcError, now: i64) {
        self.put(key, Cached::Failed(e.clone()), now + FAILURE_TTL_SECS);
    }

    /// One fetch per key at a time: the returned guard is held across it.
    pub(crate) async fn flight(&self, key: &str) -> FlightGuard<'_> {
        let lock = match self.inflight.lock() {
            Ok(mut m) => m.entry(key.to_string()).or_default().clone(),
            Err(_) => Arc::default(),
        };
        let guard = lock.clone().lock_owned().await;
        FlightGuard {
            cache: self,
            key: key.to_string(),
            _guard: guard,
            lock,
        }
    }
}

pub(crate) struct FlightGuard<'a> {
    cache: &'a DocCache,
    key: String,
    _guard: tokio::sync::OwnedMutexGuard<()>,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        // The last one out removes the lock, so the map stays small.
        if let Ok(mut m) = self.cache.inflight.lock() {
            // ours + the map's = 2: nobody else waits on it.
            if Arc::strong_count(&self.lock) <= 2 {
                m.remove(&self.key);
            }
        }
    }
}

pub(crate) fn disc_key(url: &Url) -> String {
    format!("d {url}")
}
pub(crate) fn jwks_key(url: &Url) -> String {
    format!("j {url}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_stays_within_its_byte_budget_and_evicts_the_least_recently_used() {
        let mut lru = Lru::default();
        let entry =
            |i: usize| Cached::Failed(OidcError::new(crate::Kind::Discovery, format!("{i}")));
        let each = CACHE_BYTES / 10;
        for i in 0..100 {
            lru.put(&format!("k{i}"), entry(i), i64::MAX, each);
            assert!(lru.bytes <= CACHE_BYTES, "{}", lru.bytes);
        }
        assert!(lru.slots.len() < 10);
        assert!(lru.get("k0", 0).is_none());
        let oldest = (0..100)
            .find(|i| lru.slots.contains_key(&format!("k{i}")))
            .unwrap();
        // the oldest entry, once read, outlives the next insertion
        assert!(lru.get(&format!("k{oldest}"), 0).is_some());
        lru.put("new", entry(0), i64::MAX, each);
        assert!(lru.get(&format!("k{oldest}"), 0).is_some());
        assert!(lru.get(&format!("k{}", oldest + 1), 0).is_none());
        // one entry larger than a quarter of the budget is not kept at all
        lru.put("huge", entry(0), i64::MAX, CACHE_BYTES / 2);
        assert!(lru.get("huge", 0).is_none());
    }

    #[test]
    fn expired_entries_are_not_served() {
        let mut lru = Lru::default();
        lru.put(
            "k",
            Cached::Failed(OidcError::new(crate::Kind::Discovery, "x")),
            100,
            10,
        );
        assert!(lru.get("k", 99).is_some());
        assert!(lru.get("k", 100).is_none());
    }
}
