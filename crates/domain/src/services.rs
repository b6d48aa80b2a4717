//! The domain as services, one per SPEC section: [`Admin`] (§5 operator),
//! [`Configuration`] (§3), [`Verify`] (§3), [`SignIn`] (§4 relying party),
//! [`Sessions`] (§4), [`Wallets`] (§7) and [`Ops`] (health and metrics).
//! Each holds only what it needs; [`Services`] builds them once from the
//! store, the key provider, the outbound client and the configuration.

use std::sync::Arc;

use keystead_crypto::KeyProvider;
use keystead_net::Outbound;
use keystead_store::{SignInStore, Store};

use crate::admin::Admin;
use crate::config::DomainConfig;
use crate::configuration::Configuration;
use crate::error::Result;
use crate::idp::{Idp, StoreDocs};
use crate::limits::SharedLimiter;
use crate::login::SignIn;
use crate::metrics::Metrics;
use crate::portal::Portal;
use crate::sdk_cache::SdkConfigCache;
use crate::sessions::Sessions;
use crate::verify::Verify;
use crate::wallets::Wallets;
use crate::{Clock, SystemClock};

/// Every service, built once at start; each is shared (`Arc`), so a
/// request takes its own with one reference count.
#[derive(Clone)]
pub struct Services {
    pub admin: Arc<Admin>,
    pub configuration: Arc<Configuration>,
    pub verify: Arc<Verify>,
    pub sign_in: Arc<SignIn>,
    pub sessions: Arc<Sessions>,
    pub wallets: Arc<Wallets>,
    pub ops: Arc<Ops>,
    pub portal: Arc<Portal>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("config", &self.ops.config)
            .finish_non_exhaustive()
    }
}

impl Services {
    pub fn new(
        store: Store,
        keys: Arc<dyn KeyProvider>,
        outbound: Outbound,
        config: DomainConfig,
    ) -> Self {
        Self::with_clock(store, keys, outbound, config, Arc::new(SystemClock))
    }

    /// The services reading time from `clock` (tests move time with a
    /// [`crate::ManualClock`]).
    pub fn with_clock(
        store: Store,
        keys: Arc<dyn KeyProvider>,
        outbound: Outbound,
        config: DomainConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let (rate, burst) = config.wallet_rate;
        let config = Arc::new(config);
        let metrics = Arc::new(Metrics::default());
        let sdk_cache = Arc::new(SdkConfigCache::default());
        let idp = Arc::new(Idp::new(outbound, StoreDocs(store.clone()), clock.clone()));
        let idp_for_ops = idp.clone();
        Services {
            admin: Arc::new(Admin::new(store.clone())),
            configuration: Arc::new(Configuration::new(
                store.clone(),
                keys.clone(),
                config.clone(),
                sdk_cache.clone(),
            )),
            verify: Arc::new(Verify::new(
                store.clone(),
                idp.clone(),
                metrics.clone(),
                clock.clone(),
            )),
            sign_in: Arc::new(SignIn::new(
                store.clone(),
                keys.clone(),
                idp,
                metrics.clone(),
                clock.clone(),
                config.clone(),
                sdk_cache,
            )),
            sessions: Arc::new(Sessions::new(
                store.clone(),
                keys.clone(),
                metrics.clone(),
                clock.clone(),
                config.clone(),
            )),
            wallets: Arc::new(Wallets::new(
                store.clone(),
                keys.clone(),
                Arc::new(SharedLimiter::new("wallets", rate, burst)),
                metrics.clone(),
                clock.clone(),
            )),
            portal: Arc::new(Portal::new(store.clone(), clock.clone())),
            ops: Arc::new(Ops {
                idp: idp_for_ops,
                store,
                keys,
                metrics,
                clock,
                config,
            }),
        }
    }
}

/// Health, metrics and housekeeping.
#[derive(Clone)]
pub struct Ops {
    idp: Arc<Idp>,
    store: Store,
    keys: Arc<dyn KeyProvider>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    config: Arc<DomainConfig>,
}

impl Ops {
    /// The storage the services write to (start-up and shutdown use it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configuration the services were built with.
    pub fn config(&self) -> &DomainConfig {
        &self.config
    }

    /// Counts one HTTP request (the web layer's middleware).
    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.metrics.observe_request(route, method, status, seconds);
    }

    /// `GET /metrics` in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        use std::fmt::Write;
        let mut out = self.metrics.render();
        let _ = writeln!(
            out,
            "# HELP keystead_provider_documents_total Discovery and JWKS lookups, by where the answer came from.\n# TYPE keystead_provider_documents_total counter"
        );
        for (source, n) in self.idp.cache_counts() {
            let _ = writeln!(
                out,
                "keystead_provider_documents_total{{source=\"{source}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP keystead_outbound_requests_total Requests to partner IdPs, by outcome.\n# TYPE keystead_outbound_requests_total counter"
        );
        for (outcome, n) in self.idp.outbound().outcome_counts() {
            let _ = writeln!(
                out,
                "keystead_outbound_requests_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        if let Some((in_use, idle)) = self.store.pool_use() {
            let _ = writeln!(
                out,
                "# HELP keystead_db_pool_connections PostgreSQL pool connections.\n# TYPE keystead_db_pool_connections gauge\nkeystead_db_pool_connections{{state=\"in_use\"}} {in_use}\nkeystead_db_pool_connections{{state=\"idle\"}} {idle}"
            );
        }
        let calls = self.keys.call_counts();
        if !calls.is_empty() {
            let _ = writeln!(
                out,
                "# HELP keystead_kms_calls_total Calls to the key service, by operation and result.\n# TYPE keystead_kms_calls_total counter"
            );
            for (call, result, n) in calls {
                let _ = writeln!(
                    out,
                    "keystead_kms_calls_total{{call=\"{call}\",result=\"{result}\"}} {n}"
                );
            }
        }
        out
    }

    /// `/readyz`: the database answers and the key provider works.
    pub async fn ready(&self) -> Result<()> {
        self.store.ping().await?;
        self.keys.check().await?;
        Ok(())
    }

    /// Removes single-use records that can no longer be used, long-expired
    /// sessions and idempotency keys past their window.
    pub async fn purge_expired(&self) -> Result<u64> {
        Ok(self.store.purge_expired(self.clock.now()).await?)
    }
}
