//! Per-key token buckets for the rate limits of SPEC §6 (sign-in starts,
//! Verify, wallet routes).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets kept per limiter before full ones are dropped.
const MAX_BUCKETS: usize = 100_000;

/// A token bucket per partner, per instance (SPEC leaves the scope open;
/// with N instances the effective limit is N times the configured one).
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(rate_per_sec: f64, burst: f64) -> Self {
        Self {
            rate: rate_per_sec.max(0.001),
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` to go ahead, or `Err(seconds to wait)`.
    pub fn check(&self, key: &str) -> std::result::Result<(), u64> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            // A full bucket is the same as none: drop those first.
            let (rate, burst) = (self.rate, self.burst);
            buckets
                .retain(|_, (t, last)| *t + now.duration_since(*last).as_secs_f64() * rate < burst);
            if buckets.len() >= MAX_BUCKETS {
                buckets.clear();
            }
        }
        let (tokens, last) = buckets.entry(key.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

/// A limit counted over every instance where the store shares buckets
/// (PostgreSQL: one row per bucket, updated in one statement), and in this
/// process otherwise (SQLite is one process) or when the database fails.
#[derive(Debug)]
pub struct SharedLimiter {
    local: RateLimiter,
    rate: f64,
    burst: f64,
    /// Names this limit's buckets apart from other limits'.
    scope: &'static str,
}

impl SharedLimiter {
    pub fn new(scope: &'static str, rate_per_sec: f64, burst: f64) -> Self {
        Self {
            local: RateLimiter::new(rate_per_sec, burst),
            rate: rate_per_sec,
            burst,
            scope,
        }
    }

    /// `Ok` to go ahead, or `Err(seconds to wait)`.
    pub async fn check(
        &self,
        store: &impl keystead_store::RateStore,
        key: &str,
    ) -> std::result::Result<(), u64> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let bucket = format!("{} {key}", self.scope);
        match store
            .take_token(&bucket, self.rate, self.burst, now_ms)
            .await
        {
            Ok(Some(answer)) => answer,
            Ok(None) => self.local.check(key),
            Err(e) => {
                tracing::warn!(error = %e, "shared rate limit unavailable; counting in this process");
                self.local.check(key)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_the_burst_then_asks_to_wait() {
        let l = RateLimiter::new(10.0, 20.0);
        for _ in 0..20 {
            assert!(l.check("p").is_ok());
        }
        assert_eq!(l.check("p"), Err(1));
        assert!(l.check("other").is_ok(), "per partner");
    }
}
