//! How the policy of [`crate::addr`] is enforced on real connections: the
//! URL is checked first (scheme, userinfo, IP literals — reqwest never asks a
//! resolver for those), then our resolver resolves the name exactly once,
//! rejects the whole answer if any address is not allowed, and hands the
//! checked addresses to the connector. There is no second lookup, so a DNS
//! answer that changes between check and connect (rebinding) cannot win.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::Policy;
use url::Url;

use crate::addr::{address_allowed, check_url, Rejection, Target};

/// Bodies above this are cut off with an error, not buffered.
pub const MAX_BODY: usize = 1024 * 1024;
/// Discovery documents and JWKS: real IdPs serve a few KiB (the largest
/// public ones stay under 64 KiB); anything near this is an attack on memory.
pub const MAX_METADATA_BODY: usize = 256 * 1024;
/// Outbound requests in flight at once, all partners together, unless
/// configured otherwise: a failing IdP must not let public sign-in starts
/// pile up connections.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;

#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// CIDRs exempt from the address rules (dev/tests only).
    pub allow_networks: Vec<IpNet>,
    /// Extra trusted root certificates, PEM (dev/tests only).
    pub extra_ca_pem: Option<Vec<u8>>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// Requests in flight at once; a request waits at most `connect_timeout`
    /// for a slot, then fails with [`FetchError::Busy`].
    pub max_in_flight: usize,
    /// Name resolution; `None` is the system resolver (tests inject one).
    pub lookup: Option<NameLookup>,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            allow_networks: Vec::new(),
            extra_ca_pem: None,
            connect_timeout: Duration::from_millis(5000),
            timeout: Duration::from_millis(10000),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            lookup: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The destination is not allowed. The message names only the host as
    /// written, never the resolved address (SPEC §8).
    #[error("{host}: not a public address keystead may connect to")]
    NotAllowed { host: String, reason: Rejection },
    #[error("{host}: the name could not be resolved")]
    Resolve { host: String },
    #[error("{host}: timed out")]
    Timeout { host: String },
    #[error("{host}: TLS or connection failure: {detail}")]
    Connect { host: String, detail: String },
    #[error("{host}: the response body is larger than {limit} bytes")]
    TooLarge { host: String, limit: usize },
    #[error("{host}: too many outbound requests in flight; try again shortly")]
    Busy { host: String },
    #[error("{host}: {detail}")]
    Other { host: String, detail: String },
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// The `Location` header of a redirect (never followed).
    pub location: Option<String>,
}

/// What to do with a body longer than the limit.
enum BodyLimit {
    /// Refuse the answer (`too_large`): a document cut short is no document.
    Refuse(usize),
    /// Keep the first bytes (a page, to look at).
    Cut(usize),
}

impl From<usize> for BodyLimit {
    fn from(n: usize) -> Self {
        BodyLimit::Refuse(n)
    }
}

#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    allow: Arc<Vec<IpNet>>,
    slots: Arc<tokio::sync::Semaphore>,
    slot_wait: Duration,
    outcomes: Arc<Outcomes>,
    lookup: NameLookup,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("allow", &self.allow)
            .finish()
    }
}

/// Why the resolver refused; found again in reqwest's error source chain.
#[derive(Debug)]
struct ResolverRejected(Rejection);

impl std::fmt::Display for ResolverRejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
impl std::error::Error for ResolverRejected {}

#[derive(Debug)]
struct ResolverFailed;
impl std::fmt::Display for ResolverFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("name could not be resolved")
    }
}
impl std::error::Error for ResolverFailed {}

/// How names become addresses: the system resolver, or one a test injects
/// (so SSRF by name is tested without asking any DNS server).
#[derive(Clone)]
pub struct NameLookup(
    #[allow(clippy::type_complexity)]
    Arc<
        dyn Fn(
                String,
            ) -> std::pin::Pin<
                Box<dyn std::future::Future<Output = std::io::Result<Vec<IpAddr>>> + Send>,
            > + Send
            + Sync,
    >,
);

impl NameLookup {
    /// The system resolver.
    pub fn system() -> Self {
        NameLookup(Arc::new(|host: String| {
            Box::pin(async move {
                Ok(tokio::net::lookup_host((host.as_str(), 0))
                    .await?
                    .map(|a| a.ip())
                    .collect())
            })
        }))
    }

    /// A fixed table (tests): unknown names do not resolve.
    pub fn table(entries: Vec<(&str, Vec<IpAddr>)>) -> Self {
        let table: Arc<std::collections::HashMap<String, Vec<IpAddr>>> = Arc::new(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        );
        NameLookup(Arc::new(move |host: String| {
            let answer = table.get(&host).cloned();
            Box::pin(async move { answer.ok_or_else(|| std::io::Error::other("no such name")) })
        }))
    }

    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        (self.0)(host.to_string()).await
    }
}

/// Why a name was not accepted.
enum NameRefused {
    Unresolved,
    Address(IpAddr),
}

/// A name's addresses, all of them allowed: one bad address poisons the
/// whole answer (a name that mixes a public and a private address is an
/// attack, not a fallback).
async fn resolve_allowed(
    lookup: &NameLookup,
    allow: &[IpNet],
    name: &str,
) -> Result<Vec<IpAddr>, NameRefused> {
    let ips = lookup
        .lookup(name)
        .await
        .map_err(|_| NameRefused::Unresolved)?;
    if let Some(bad) = ips.iter().find(|ip| !address_allowed(**ip, allow)) {
        return Err(NameRefused::Address(*bad));
    }
    if ips.is_empty() {
        return Err(NameRefused::Unresolved);
    }
    Ok(ips)
}

impl std::fmt::Debug for NameLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NameLookup")
    }
}

struct CheckingResolver {
    allow: Arc<Vec<IpNet>>,
    lookup: NameLookup,
}

impl Resolve for CheckingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        let lookup = self.lookup.clone();
        Box::pin(async move {
            type Failure = Box<dyn std::error::Error + Send + Sync>;
            // Port 0: reqwest replaces it with the URL's port.
            let addrs = match resolve_allowed(&lookup, &allow, name.as_str()).await {
                Ok(ips) => ips.into_iter().map(|ip| SocketAddr::new(ip, 0)),
                Err(NameRefused::Unresolved) => return Err(Box::new(ResolverFailed) as Failure),
                Err(NameRefused::Address(bad)) => {
                    return Err(Box::new(ResolverRejected(Rejection::Address(bad))) as Failure)
                }
            };
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

impl Outbound {
    pub fn new(cfg: &OutboundConfig) -> Result<Self, String> {
        let allow = Arc::new(cfg.allow_networks.clone());
        let lookup = cfg.lookup.clone().unwrap_or_else(NameLookup::system);
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .redirect(Policy::none())
            .no_proxy()
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.timeout)
            .user_agent(concat!("keystead/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(CheckingResolver {
                allow: allow.clone(),
                lookup: lookup.clone(),
            }));
        if let Some(pem) = &cfg.extra_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("outbound.extra_ca_file: {e}"))?;
            if certs.is_empty() {
                return Err("outbound.extra_ca_file holds no certificate".into());
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let client = builder.build().map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            allow,
            slots: Arc::new(tokio::sync::Semaphore::new(cfg.max_in_flight.max(1))),
            outcomes: Arc::new(Outcomes::default()),
            slot_wait: cfg.connect_timeout,
            lookup,
        })
    }

    /// Checks a URL against the policy without sending anything; domains
    /// are resolved and every address checked.
    pub async fn check(&self, url: &Url) -> Result<(), FetchError> {
        let host = host_of(url);
        match check_url(url, &self.allow) {
            Err(reason) => Err(FetchError::NotAllowed { host, reason }),
            Ok(Target::Ip(_)) => Ok(()),
            Ok(Target::Domain(name)) => {
                match resolve_allowed(&self.lookup, &self.allow, &name).await {
                    Ok(_) => Ok(()),
                    Err(NameRefused::Unresolved) => Err(FetchError::Resolve { host }),
                    Err(NameRefused::Address(bad)) => Err(FetchError::NotAllowed {
                        host,
                        reason: Rejection::Address(bad),
                    }),
                }
            }
        }
    }

    /// A GET whose body may be at most `max_body` bytes.
    pub async fn get(
        &self,
        url: &Url,
        accept: &str,
        max_body: usize,
    ) -> Result<Response, FetchError> {
        self.send(
            url,
            self.client.get(url.clone()).header("accept", accept),
            max_body,
        )
        .await
    }

    /// A form POST (token endpoint). `basic` is `(user, password)` already
    /// form-encoded by the caller as RFC 6749 §2.3.1 requires.
    pub async fn post_form(
        &self,
        url: &Url,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<Response, FetchError> {
        let mut req = self
            .client
            .post(url.clone())
            .header("accept", "application/json")
            .form(form);
        if let Some((u, p)) = basic {
            req = req.basic_auth(u, Some(p));
        }
        self.send(url, req, MAX_BODY).await
    }

    /// A browser-like GET of a page (the IdP's authorization endpoint) to
    /// see how it answers: at most `max_body` bytes of the body are kept,
    /// the rest is not read (a page, unlike a document, may be cut).
    pub async fn probe_page(&self, url: &Url, max_body: usize) -> Result<Response, FetchError> {
        let req = self
            .client
            .get(url.clone())
            .header("accept", "text/html,application/xhtml+xml");
        self.send(url, req, BodyLimit::Cut(max_body)).await
    }

    pub async fn get_bearer(&self, url: &Url, token: &str) -> Result<Response, FetchError> {
        self.send(
            url,
            self.client
                .get(url.clone())
                .header("accept", "application/json")
                .bearer_auth(token),
            MAX_BODY,
        )
        .await
    }

    async fn send(
        &self,
        url: &Url,
        req: reqwest::RequestBuilder,
        limit: impl Into<BodyLimit>,
    ) -> Result<Response, FetchError> {
        let result = self.send_inner(url, req, limit.into()).await;
        self.outcomes.count(&result);
        result
    }

    /// How outbound requests ended so far, by outcome (`ok`,
    /// `address_not_allowed`, `resolve`, `timeout`, `connect`, `too_large`,
    /// `busy`, `other`), for `/metrics`.
    pub fn outcome_counts(&self) -> Vec<(&'static str, u64)> {
        self.outcomes.snapshot()
    }

    async fn send_inner(
        &self,
        url: &Url,
        req: reqwest::RequestBuilder,
        limit: BodyLimit,
    ) -> Result<Response, FetchError> {
        let (max_body, cut) = match limit {
            BodyLimit::Refuse(n) => (n, false),
            BodyLimit::Cut(n) => (n, true),
        };
        let host = host_of(url);
        // IP literals and scheme/userinfo are checked here; reqwest only
        // consults the resolver for names.
        if let Err(reason) = check_url(url, &self.allow) {
            return Err(FetchError::NotAllowed { host, reason });
        }
        let _slot = match tokio::time::timeout(self.slot_wait, self.slots.acquire()).await {
            Ok(Ok(permit)) => permit,
            _ => return Err(FetchError::Busy { host }),
        };
        let mut resp = req.send().await.map_err(|e| classify(&host, &e))?;
        let status = resp.status().as_u16();
        let too_large = || FetchError::TooLarge {
            host: host.clone(),
            limit: max_body,
        };
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if !cut && resp.content_length().is_some_and(|n| n > max_body as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| classify(&host, &e))? {
            if body.len() + chunk.len() > max_body {
                if cut {
                    body.extend_from_slice(&chunk[..max_body - body.len()]);
                    break;
                }
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            body,
            location,
        })
    }
}

/// Counters of outbound request outcomes.
#[derive(Debug, Default)]
struct Outcomes([std::sync::atomic::AtomicU64; 8]);

const OUTCOMES: [&str; 8] = [
    "ok",
    "address_not_allowed",
    "resolve",
    "timeout",
    "connect",
    "too_large",
    "busy",
    "other",
];

impl Outcomes {
    fn count(&self, r: &Result<Response, FetchError>) {
        let i = match r {
            Ok(_) => 0,
            Err(FetchError::NotAllowed { .. }) => 1,
            Err(FetchError::Resolve { .. }) => 2,
            Err(FetchError::Timeout { .. }) => 3,
            Err(FetchError::Connect { .. }) => 4,
            Err(FetchError::TooLarge { .. }) => 5,
            Err(FetchError::Busy { .. }) => 6,
            Err(FetchError::Other { .. }) => 7,
        };
        self.0[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn snapshot(&self) -> Vec<(&'static str, u64)> {
        OUTCOMES
            .iter()
            .zip(self.0.iter())
            .map(|(n, c)| (*n, c.load(std::sync::atomic::Ordering::Relaxed)))
            .collect()
    }
}

fn host_of(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => String::new(),
    }
}

fn classify(host: &str, e: &reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<ResolverRejected>() {
            return FetchError::NotAllowed {
                host: host.to_string(),
                reason: r.0.clone(),
            };
        }
        if s.downcast_ref::<ResolverFailed>().is_some() {
            return FetchError::Resolve {
                host: host.to_string(),
            };
        }
        source = s.source();
    }
    if e.is_timeout() {
        return FetchError::Timeout {
            host: host.to_string(),
        };
    }
    if e.is_connect() {
        return FetchError::Connect {
            host: host.to_string(),
            detail: root_cause(e),
        };
    }
    FetchError::Other {
        host: host.to_string(),
        detail: root_cause(e),
    }
}

/// The innermost error message (e.g. the TLS verifier's reason), which is
/// what a person needs; reqwest's outer messages repeat the URL.
fn root_cause(e: &reqwest::Error) -> String {
    let mut last: &(dyn std::error::Error + 'static) = e;
    while let Some(s) = last.source() {
        last = s;
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback(max_in_flight: usize) -> Outbound {
        Outbound::new(&OutboundConfig {
            allow_networks: vec!["127.0.0.0/8".parse().unwrap()],
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            max_in_flight,
            ..OutboundConfig::default()
        })
        .unwrap()
    }

    /// A loopback server that accepts connections and never answers.
    async fn silent_server() -> Url {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("https://{}/doc", l.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        url
    }

    #[tokio::test]
    async fn requests_over_the_in_flight_cap_fail_fast_instead_of_queueing() {
        // a server that accepts and never answers: each request holds its
        // slot until the connect timeout (1 s) ends its TLS handshake
        let url = silent_server().await;
        let out = loopback(1);
        let spawn = |out: Outbound, url: Url| {
            tokio::spawn(async move { out.get(&url, "application/json", 1024).await })
        };
        let first = spawn(out.clone(), url.clone());
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = spawn(out.clone(), url.clone());
        tokio::time::sleep(Duration::from_millis(50)).await;
        // the third waits one connect timeout for a slot; the first frees
        // its slot then, but the second is ahead in the queue
        let started = std::time::Instant::now();
        let third = out.get(&url, "application/json", 1024).await;
        assert!(matches!(third, Err(FetchError::Busy { .. })), "{third:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
        for r in [first.await.unwrap(), second.await.unwrap()] {
            assert!(
                matches!(
                    r,
                    Err(FetchError::Timeout { .. } | FetchError::Connect { .. })
                ),
                "{r:?}"
            );
        }
    }

    /// SSRF by name (SPEC §8): a name that resolves to a private, loopback
    /// or mixed set of addresses is refused before any connection; the
    /// resolver is a table, so no DNS server is asked and no traffic leaves.
    #[tokio::test]
    async fn names_resolving_to_special_addresses_are_refused_without_connecting() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let out = Outbound::new(&OutboundConfig {
            lookup: Some(NameLookup::table(vec![
                ("private.test", vec![ip("10.1.2.3")]),
                ("loopback.test", vec![ip("127.0.0.1")]),
                ("v6-loopback.test", vec![ip("::1")]),
                ("mapped.test", vec![ip("::ffff:192.168.1.1")]),
                ("link-local.test", vec![ip("169.254.169.254")]),
                ("mixed.test", vec![ip("93.184.216.34"), ip("10.0.0.1")]),
                ("public.test", vec![ip("93.184.216.34")]),
            ])),
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            ..OutboundConfig::default()
        })
        .unwrap();
        for name in [
            "private.test",
            "loopback.test",
            "v6-loopback.test",
            "mapped.test",
            "link-local.test",
            "mixed.test",
        ] {
            let url =
                Url::parse(&format!("https://{name}/.well-known/openid-configuration")).unwrap();
            let checked = out.check(&url).await;
            assert!(
                matches!(checked, Err(FetchError::NotAllowed { .. })),
                "{name}: {checked:?}"
            );
            // the request itself is refused by the resolver: nothing connects
            let started = std::time::Instant::now();
            let fetched = out.get(&url, "application/json", 1024).await;
            assert!(
                matches!(fetched, Err(FetchError::NotAllowed { .. })),
                "{name}: {fetched:?}"
            );
            assert!(started.elapsed() < Duration::from_millis(500), "{name}");
            // the error names the host as written, never the address
            let text = fetched.unwrap_err().to_string();
            assert!(
                text.contains(name) && !text.contains("10.") && !text.contains("127.0"),
                "{text}"
            );
        }
        // a name with only public addresses passes the check (nothing sent)
        let url = Url::parse("https://public.test/x").unwrap();
        assert!(out.check(&url).await.is_ok());
        // an unknown name does not resolve
        let url = Url::parse("https://nowhere.test/x").unwrap();
        assert!(matches!(
            out.check(&url).await,
            Err(FetchError::Resolve { .. })
        ));
        let counts = out.outcome_counts();
        assert!(counts.contains(&("address_not_allowed", 6)), "{counts:?}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out_as_configured() {
        let url = silent_server().await;
        let out = loopback(4);
        let started = std::time::Instant::now();
        let r = out.get(&url, "application/json", 1024).await;
        assert!(
            matches!(
                r,
                Err(FetchError::Timeout { .. } | FetchError::Connect { .. })
            ),
            "{r:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
    }
}
