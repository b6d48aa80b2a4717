//! `GET /v1/sdk/config` answers kept in memory for a second: the route is
//! public and called on every page load of a partner's app. A write to any
//! configuration on this instance empties the cache at once; another
//! instance's write shows here within [`SDK_CONFIG_TTL`] (the answer itself
//! says `Cache-Control: max-age=5`, so browsers may wait longer).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use keystead_proto as proto;

/// How long an answer is reused.
pub const SDK_CONFIG_TTL: Duration = Duration::from_secs(1);
/// Publishable keys remembered at most (then the cache starts over).
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Default)]
pub(crate) struct SdkConfigCache {
    /// Bumped by every configuration write on this instance.
    generation: AtomicU64,
    entries: Mutex<HashMap<String, (u64, Instant, proto::SdkConfig)>>,
}

impl SdkConfigCache {
    pub(crate) fn get(&self, api_key: &str) -> Option<proto::SdkConfig> {
        let generation = self.generation.load(Ordering::Acquire);
        let entries = self.entries.lock().ok()?;
        match entries.get(api_key) {
            Some((g, at, v)) if *g == generation && at.elapsed() < SDK_CONFIG_TTL => {
                Some(v.clone())
            }
            _ => None,
        }
    }

    /// Remembers `value`, read when the generation was `generation`: a
    /// write that happened meanwhile makes it stale at once.
    pub(crate) fn put(&self, api_key: &str, generation: u64, value: &proto::SdkConfig) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(
                api_key.to_string(),
                (generation, Instant::now(), value.clone()),
            );
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A configuration changed on this instance.
    pub(crate) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(label: &str) -> proto::SdkConfig {
        proto::SdkConfig {
            auth_config: proto::AuthConfig {
                methods: vec!["CUSTOM_OIDC".into()],
                oidc_config: Some(proto::OidcButton {
                    enabled: true,
                    button_label: label.into(),
                }),
            },
        }
    }

    #[test]
    fn a_write_makes_every_answer_stale_even_one_read_before_it() {
        let c = SdkConfigCache::default();
        let g = c.generation();
        c.put("pk_1", g, &config("A"));
        assert_eq!(
            c.get("pk_1")
                .map(|v| v.auth_config.oidc_config.map(|o| o.button_label)),
            Some(Some("A".to_string()))
        );
        c.invalidate();
        assert!(c.get("pk_1").is_none());
        // read before the write, stored after it: never served
        c.put("pk_1", g, &config("old"));
        assert!(c.get("pk_1").is_none());
    }
}
