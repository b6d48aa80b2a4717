//! Counters for `GET /metrics` (Prometheus text format). Labels are fixed
//! vocabularies (outcome codes, wallet types), never user input, so no
//! secret or identifier can reach a scrape.

use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
    /// Request durations per route: bucket counts, sum and count.
    durations: Mutex<BTreeMap<String, Histogram>>,
}

/// Upper bounds (seconds) of the request duration histogram's buckets.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

const HELP: [(&str, &str); 8] = [
    (
        "keystead_http_requests_total",
        "HTTP requests, by route template, method and status code.",
    ),
    (
        "keystead_logins_total",
        "Custom OIDC sign-ins that reached the callback, by result (ok or an error code).",
    ),
    (
        "keystead_test_logins_total",
        "Test logins (SPEC §11) that came back, by result (passed or failed); never counted as sign-ins.",
    ),
    (
        "keystead_sessions_created_total",
        "Sessions created from login codes.",
    ),
    (
        "keystead_wallets_created_total",
        "Wallets created, by type.",
    ),
    (
        "keystead_signatures_total",
        "Signatures made, by wallet type and request kind.",
    ),
    (
        "keystead_oidc_verifications_total",
        "Verify runs, by overall result.",
    ),
    (
        "keystead_rate_limited_total",
        "Requests refused by a rate limit (sign-in starts, test logins, Verify, wallet requests).",
    ),
];

impl Metrics {
    /// A request refused by a rate limit: counted, and the error to answer.
    pub fn rate_limited(&self, retry_after: u64) -> crate::Error {
        self.inc("keystead_rate_limited_total", String::new());
        crate::Error::RateLimited { retry_after }
    }

    /// `labels` is a preformatted label set such as `result="ok"`.
    pub fn inc(&self, name: &'static str, labels: String) {
        if let Ok(mut c) = self.counters.lock() {
            *c.entry((name, labels)).or_insert(0) += 1;
        }
    }

    /// One HTTP request: `route` is the route's template (never the
    /// request's path, which may carry ids), `status` the answer's code.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.inc(
            "keystead_http_requests_total",
            format!("route=\"{route}\",method=\"{method}\",status=\"{status}\""),
        );
        if let Ok(mut d) = self.durations.lock() {
            let h = d.entry(route.to_string()).or_default();
            for (i, le) in BUCKETS.iter().enumerate() {
                if seconds <= *le {
                    h.buckets[i] += 1;
                }
            }
            h.sum += seconds;
            h.count += 1;
        }
    }

    /// A wallet was created.
    pub fn count_wallet(&self, kind: keystead_wallet::WalletType) {
        self.inc(
            "keystead_wallets_created_total",
            format!("type=\"{}\"", kind.as_str()),
        );
    }

    pub fn render(&self) -> String {
        let counters = self.counters.lock().map(|c| c.clone()).unwrap_or_default();
        let mut out = String::new();
        for (name, help) in HELP {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
            let mut any = false;
            for ((n, labels), v) in counters.iter().filter(|((n, _), _)| *n == name) {
                any = true;
                if labels.is_empty() {
                    out.push_str(&format!("{n} {v}\n"));
                } else {
                    out.push_str(&format!("{n}{{{labels}}} {v}\n"));
                }
            }
            // Unlabelled counters start at zero rather than being absent.
            if !any
                && (name == "keystead_sessions_created_total"
                    || name == "keystead_rate_limited_total")
            {
                out.push_str(&format!("{name} 0\n"));
            }
        }
        let durations = self.durations.lock().map(|d| d.clone()).unwrap_or_default();
        let name = "keystead_http_request_duration_seconds";
        out.push_str(&format!(
            "# HELP {name} Time to answer HTTP requests, by route template.\n# TYPE {name} histogram\n"
        ));
        for (route, h) in &durations {
            for (i, le) in BUCKETS.iter().enumerate() {
                out.push_str(&format!(
                    "{name}_bucket{{route=\"{route}\",le=\"{le}\"}} {}\n",
                    h.buckets[i]
                ));
            }
            out.push_str(&format!(
                "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n{name}_sum{{route=\"{route}\"}} {}\n{name}_count{{route=\"{route}\"}} {}\n",
                h.count, h.sum, h.count
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_durations_are_a_cumulative_histogram_per_route() {
        let m = Metrics::default();
        m.observe_request("/v1/me", "GET", 200, 0.003);
        m.observe_request("/v1/me", "GET", 401, 0.2);
        let text = m.render();
        for line in [
            "keystead_http_requests_total{route=\"/v1/me\",method=\"GET\",status=\"200\"} 1",
            "keystead_http_request_duration_seconds_bucket{route=\"/v1/me\",le=\"0.0025\"} 0",
            "keystead_http_request_duration_seconds_bucket{route=\"/v1/me\",le=\"0.005\"} 1",
            "keystead_http_request_duration_seconds_bucket{route=\"/v1/me\",le=\"0.25\"} 2",
            "keystead_http_request_duration_seconds_bucket{route=\"/v1/me\",le=\"+Inf\"} 2",
            "keystead_http_request_duration_seconds_count{route=\"/v1/me\"} 2",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.inc("keystead_logins_total", "result=\"ok\"".into());
        m.inc("keystead_logins_total", "result=\"ok\"".into());
        m.inc(
            "keystead_logins_total",
            "result=\"id_token_invalid\"".into(),
        );
        let text = m.render();
        assert!(
            text.contains("keystead_logins_total{result=\"ok\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("keystead_logins_total{result=\"id_token_invalid\"} 1\n"));
        assert!(text.contains("# TYPE keystead_logins_total counter"));
        assert!(text.contains("keystead_sessions_created_total 0\n"));
    }
}
