//! The provider cache behind its storage interface, with an in-memory
//! [`DocStore`]: the shared row serves every process, an expired row is
//! refetched, and a failed fetch is answered from memory for a few seconds
//! without asking the store or the IdP again. The issuer is on loopback,
//! which the outbound policy refuses before connecting, so no request
//! leaves the process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use keystead_model::ManualClock;
use keystead_net::{Outbound, OutboundConfig};
use keystead_oidc::{
    CachedDoc, DocStore, Kind, Provider, StoreFailure, DISCOVERY_TTL_SECS, FAILURE_TTL_SECS,
};

const ISSUER: &str = "https://127.0.0.1:9";
const DISCOVERY: &str = "https://127.0.0.1:9/.well-known/openid-configuration";
const T0: i64 = 1_800_000_000;

#[derive(Default)]
struct MemoryDocs {
    rows: Mutex<HashMap<String, CachedDoc>>,
    reads: AtomicUsize,
}

/// The shared handle the provider holds.
#[derive(Clone)]
struct Docs(Arc<MemoryDocs>);

impl DocStore for Docs {
    async fn cached_doc(&self, url: &str) -> Result<Option<CachedDoc>, StoreFailure> {
        self.0.reads.fetch_add(1, Ordering::SeqCst);
        Ok(self.0.rows.lock().unwrap().get(url).cloned())
    }
    async fn put_cached_doc(&self, url: &str, doc: &CachedDoc) -> Result<(), StoreFailure> {
        self.0
            .rows
            .lock()
            .unwrap()
            .insert(url.to_string(), doc.clone());
        Ok(())
    }
    async fn claim_refetch(&self, _: &str, _: i64, _: i64) -> Result<bool, StoreFailure> {
        Ok(true)
    }
}

fn discovery_row(expires_at: i64) -> CachedDoc {
    let body = serde_json::json!({
        "issuer": ISSUER,
        "authorization_endpoint": "https://127.0.0.1:9/auth",
        "token_endpoint": "https://127.0.0.1:9/token",
        "jwks_uri": "https://127.0.0.1:9/jwks",
    });
    CachedDoc {
        body: body.to_string(),
        fetched_at: T0 - 10,
        expires_at,
    }
}

fn provider(store: &Arc<MemoryDocs>, clock: &ManualClock) -> Provider<Docs> {
    let outbound = Outbound::new(&OutboundConfig::default()).unwrap();
    Provider::new(outbound, Docs(store.clone()), Arc::new(clock.clone()))
}

#[tokio::test]
async fn a_shared_row_serves_metadata_without_a_fetch() {
    let store = Arc::new(MemoryDocs::default());
    store
        .rows
        .lock()
        .unwrap()
        .insert(DISCOVERY.into(), discovery_row(T0 + 60));
    let clock = ManualClock::at(T0);
    let p = provider(&store, &clock);
    let meta = p.metadata(ISSUER).await.unwrap();
    assert_eq!(meta.token_endpoint.as_str(), "https://127.0.0.1:9/token");
    // the second read is answered from memory
    p.metadata(ISSUER).await.unwrap();
    assert_eq!(store.reads.load(Ordering::SeqCst), 1);
    // another issuer is checked against the same cached document
    let other = p.metadata("https://127.0.0.1:9/").await.unwrap_err();
    assert_eq!(other.kind, Kind::Discovery);
}

#[tokio::test]
async fn an_expired_row_is_refetched_and_a_failure_is_remembered_briefly() {
    let store = Arc::new(MemoryDocs::default());
    store
        .rows
        .lock()
        .unwrap()
        .insert(DISCOVERY.into(), discovery_row(T0 - 1));
    let clock = ManualClock::at(T0);
    let p = provider(&store, &clock);
    // loopback is refused by the address policy, before any connection
    let e = p.metadata(ISSUER).await.unwrap_err();
    assert_eq!(e.kind, Kind::AddressNotAllowed, "{e}");
    assert_eq!(store.reads.load(Ordering::SeqCst), 1);
    // within the negative TTL: same answer, no store read, no fetch
    clock.advance(FAILURE_TTL_SECS - 1);
    assert_eq!(p.metadata(ISSUER).await.unwrap_err(), e);
    assert_eq!(store.reads.load(Ordering::SeqCst), 1);
    // once it lapsed, a fresh row written by another instance is used
    clock.advance(1);
    store
        .rows
        .lock()
        .unwrap()
        .insert(DISCOVERY.into(), discovery_row(T0 + DISCOVERY_TTL_SECS));
    assert!(p.metadata(ISSUER).await.is_ok());
    assert_eq!(store.reads.load(Ordering::SeqCst), 2);
}
