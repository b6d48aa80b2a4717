//! A scripted browser: a cookie jar, the test CA, and redirects followed by
//! hand so the test sees every hop and stops at the app's return URL.

#![allow(dead_code)]

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::kit::{http, tls, Partner, Resp, Server, PUBLIC_URL};

pub const RETURN_TO: &str = "https://app.example.test/auth/done";
/// The test app's origin (a name that resolves nowhere).
pub const APP_ORIGIN: &str = "https://app.example.test/";

pub struct Browser {
    client: reqwest::Client,
    pub jar: Arc<reqwest::cookie::Jar>,
    server_url: String,
    rt: tokio::runtime::Runtime,
}

/// Where a login ended.
#[derive(Debug)]
pub enum Outcome {
    /// Back at the app: the final URL's query.
    Returned {
        url: String,
        query: Vec<(String, String)>,
    },
    /// A page (keystead's error page or anything not a redirect).
    Page {
        status: u16,
        error_header: Option<String>,
        body: String,
    },
}

impl Outcome {
    pub fn param(&self, name: &str) -> Option<String> {
        match self {
            Outcome::Returned { query, .. } => query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone()),
            Outcome::Page { .. } => None,
        }
    }

    pub fn login_code(&self) -> String {
        self.param("login_code")
            .unwrap_or_else(|| panic!("no login_code: {self:?}"))
    }

    /// The error code, whether sent back to the app or shown on a page.
    pub fn error(&self) -> Option<String> {
        match self {
            Outcome::Returned { .. } => self.param("error"),
            Outcome::Page { error_header, .. } => error_header.clone(),
        }
    }
}

/// One answer of [`Browser::get`].
#[derive(Debug)]
pub struct Hop {
    pub status: u16,
    pub location: Option<String>,
    /// keystead's error code on its error pages.
    pub error: Option<String>,
    pub text: String,
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = keystead_crypto::random_token_bits("v", 40);
    let challenge = B64URL.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

impl Browser {
    pub fn new(server: &Server) -> Browser {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&tls().ca_pem).unwrap()).unwrap();
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .add_root_certificate(ca)
            .no_proxy()
            .build()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Browser {
            client,
            jar,
            server_url: server.url.clone(),
            rt,
        }
    }

    /// Maps the public URL to the server's real address.
    fn real(&self, url: &str) -> String {
        match url.strip_prefix(PUBLIC_URL) {
            Some(rest) => format!("{}{rest}", self.server_url),
            None => url.to_string(),
        }
    }

    /// Follows redirects from `url` until the app's return URL or a page.
    pub fn follow(&self, url: &str) -> Outcome {
        self.follow_until(url, |_| false).0
    }

    /// Like `follow`, but stops before requesting a URL for which `stop`
    /// is true and returns that URL too.
    pub fn follow_until(
        &self,
        url: &str,
        stop: impl Fn(&str) -> bool,
    ) -> (Outcome, Option<String>) {
        let mut current = self.real(url);
        for _ in 0..20 {
            // Anything on the app's host is the app: never fetched (the
            // host does not exist, and tests send no traffic off loopback).
            if current.starts_with(APP_ORIGIN) || current.starts_with("myapp:") {
                let parsed = url::Url::parse(&current).unwrap();
                let query = parsed
                    .query_pairs()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                return (
                    Outcome::Returned {
                        url: current,
                        query,
                    },
                    None,
                );
            }
            if stop(&current) {
                return (
                    Outcome::Page {
                        status: 0,
                        error_header: None,
                        body: String::new(),
                    },
                    Some(current),
                );
            }
            let resp = self.rt.block_on(self.client.get(&current).send()).unwrap();
            let status = resp.status().as_u16();
            if (300..400).contains(&status) {
                let loc = resp.headers()["location"].to_str().unwrap().to_string();
                let next = url::Url::parse(&current)
                    .unwrap()
                    .join(&loc)
                    .unwrap()
                    .to_string();
                current = self.real(&next);
                continue;
            }
            let error_header = resp
                .headers()
                .get("x-keystead-error")
                .map(|v| v.to_str().unwrap().to_string());
            let body = self.rt.block_on(resp.text()).unwrap();
            return (
                Outcome::Page {
                    status,
                    error_header,
                    body,
                },
                None,
            );
        }
        panic!("too many redirects from {url}");
    }

    /// One request, redirects not followed.
    pub fn get(&self, url: &str) -> Hop {
        let resp = self
            .rt
            .block_on(self.client.get(self.real(url)).send())
            .unwrap();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        let (status, location, error) = (
            resp.status().as_u16(),
            header("location"),
            header("x-keystead-error"),
        );
        let text = self.rt.block_on(resp.text()).unwrap();
        Hop {
            status,
            location,
            error,
            text,
        }
    }

    pub fn start_url(&self, p: &Partner, return_to: &str, pkce: &Pkce, login_hint: &str) -> String {
        let mut u =
            url::Url::parse(&format!("{}/auth/custom_oidc/start", self.server_url)).unwrap();
        u.query_pairs_mut()
            .append_pair("api_key", &p.publishable_key)
            .append_pair("return_to", return_to)
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", "app-state-123")
            .append_pair("login_hint", login_hint);
        u.to_string()
    }

    /// A whole login up to the app's return URL.
    pub fn login(&self, p: &Partner, login_hint: &str) -> (Outcome, Pkce) {
        let pk = pkce();
        let outcome = self.follow(&self.start_url(p, RETURN_TO, &pk, login_hint));
        (outcome, pk)
    }
}

/// Trades a login code for a session: the app's last step.
pub fn session(p: &Partner, code: &str, verifier: &str) -> Resp {
    http(
        "POST",
        &format!("{}/v1/sessions", p.server),
        None,
        Some(json!({"api_key": p.publishable_key, "login_code": code, "code_verifier": verifier})),
    )
}

/// login → session → /v1/me, asserting each step worked.
pub fn login_to_me(b: &Browser, p: &Partner, hint: &str) -> (String, Value) {
    let (outcome, pk) = b.login(p, hint);
    assert_eq!(
        outcome.param("state").as_deref(),
        Some("app-state-123"),
        "{outcome:?}"
    );
    let s = session(p, &outcome.login_code(), &pk.verifier);
    assert_eq!(s.status, 200, "{}", s.text);
    let token = s.json["session_token"].as_str().unwrap().to_string();
    let me = http("GET", &format!("{}/v1/me", p.server), Some(&token), None);
    assert_eq!(me.status, 200, "{}", me.text);
    (token, me.json)
}

/// A partner with Custom OIDC configured, enabled and RETURN_TO allowed.
pub fn oidc_partner(
    server: &Server,
    issuer: &str,
    client_id: &str,
    method: &str,
    secret: Option<&str>,
) -> Partner {
    let p = server.new_partner();
    let r = p.call(
        "PUT",
        "/v1/partner/custom-oidc",
        Some(json!({
            "issuer": issuer, "client_id": client_id, "button_label": "Sign in with Acme",
            "token_endpoint_auth_method": method,
        })),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    if let Some(s) = secret {
        let r = p.call(
            "PUT",
            "/v1/partner/custom-oidc/client-secret",
            Some(json!({"client_secret": s})),
        );
        assert_eq!(r.status, 204, "{}", r.text);
    }
    let r = p.call("PUT", "/v1/partner/custom-oidc", Some(json!({
        "issuer": issuer, "client_id": client_id, "button_label": "Sign in with Acme", "enabled": true,
        "token_endpoint_auth_method": method,
    })));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = p.call(
        "PATCH",
        "/v1/partner",
        Some(json!({"allowed_return_urls": [RETURN_TO, "myapp://callback"]})),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    p
}

/// Reads the partner's Custom OIDC config and PUTs back its issuer, client
/// id and button label, enabled, with `patch`'s fields on top; asserts 200.
pub fn put_oidc(p: &Partner, patch: Value) -> Resp {
    let cfg = p.call("GET", "/v1/partner/custom-oidc", None).json;
    let mut body = json!({"issuer": cfg["issuer"], "client_id": cfg["client_id"],
                          "button_label": cfg["button_label"], "enabled": true});
    for (k, v) in patch.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = p.call("PUT", "/v1/partner/custom-oidc", Some(body));
    assert_eq!(r.status, 200, "{}", r.text);
    r
}

/// The common case: the `main` IdP, client_secret_basic, RS256.
pub fn basic_partner(server: &Server) -> Partner {
    oidc_partner(
        server,
        &crate::kit::idp().issuer("main"),
        &format!("{}-client_secret_basic", crate::kit::CLIENT_ID),
        "client_secret_basic",
        Some(crate::kit::CLIENT_SECRET),
    )
}
