//! Counters for `GET /metrics` (Prometheus text format). Labels are fixed
//! vocabularies (outcome codes, wallet types), never user input, so no
//! secret or identifier can reach a scrape.

use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
}

const HELP: [(&str, &str); 6] = [
    (
        "keystead_logins_total",
        "Custom OIDC sign-ins that reached the callback, by result (ok or an error code).",
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
        "Wallet requests refused by the rate limit.",
    ),
];

impl Metrics {
    /// `labels` is a preformatted label set such as `result="ok"`.
    pub fn inc(&self, name: &'static str, labels: String) {
        if let Ok(mut c) = self.counters.lock() {
            *c.entry((name, labels)).or_insert(0) += 1;
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
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
