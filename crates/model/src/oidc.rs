//! The Custom OIDC configuration (SPEC §3) and the return URLs (§4).

use std::fmt;

use url::Url;

use crate::{ErrorCode, Invalid, Result};

text_type!(
    /// The IdP's issuer, exactly as the partner gave it (SPEC §3).
    Issuer,
    issuer
);
text_type!(
    /// The client ID the IdP gave keystead's registration.
    ClientId,
    client_id
);
text_type!(
    /// Scopes, normalised to single spaces, order kept, no duplicates;
    /// always with `openid`.
    Scopes,
    scopes
);
text_type!(
    /// The text of the sign-in button.
    ButtonLabel,
    button_label
);
text_type!(
    /// An allowed return URL of the partner's app.
    ReturnUrl,
    return_url
);

impl Issuer {
    /// `{issuer without trailing slash}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        discovery_url(&self.0)
    }
}

impl Default for Scopes {
    fn default() -> Self {
        Scopes(DEFAULT_SCOPES.to_string())
    }
}

/// How keystead authenticates at the IdP's token endpoint. A new method
/// (e.g. `private_key_jwt`) is one new arm here; the compiler then points
/// at every place that must handle it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AuthMethod {
    #[default]
    ClientSecretPost,
    ClientSecretBasic,
    /// A public client: PKCE only, no secret.
    None,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 3] = [
        AuthMethod::ClientSecretPost,
        AuthMethod::ClientSecretBasic,
        AuthMethod::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::None => "none",
        }
    }

    /// Whether the method sends a client secret (so one must be stored).
    pub fn needs_secret(self) -> bool {
        self != AuthMethod::None
    }
}

impl TryFrom<&str> for AuthMethod {
    type Error = Invalid;
    fn try_from(raw: &str) -> Result<Self> {
        AuthMethod::ALL
            .into_iter()
            .find(|m| m.as_str() == raw)
            .ok_or_else(|| {
                Invalid::new(
                    ErrorCode::AuthMethodInvalid,
                    format!(
                        "token_endpoint_auth_method {raw:?} is not supported: use client_secret_post, client_secret_basic or none"
                    ),
                )
            })
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub const DEFAULT_SCOPES: &str = "openid email profile";
/// Asymmetric algorithms accepted for ID tokens; HS* and `none` never are.
pub const SUPPORTED_ALGS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];
pub const MAX_RETURN_URLS: usize = 50;

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// The issuer is stored exactly as given, so validation works on the raw
/// string as much as on the parsed URL (the parser would silently drop an
/// empty `?` or `#`).
fn issuer(raw: &str) -> Result<String> {
    let bad = |msg: &str| Invalid::new(ErrorCode::IssuerInvalid, msg.to_string());
    if raw.is_empty() {
        return Err(bad("issuer is required: the https URL of your OpenID Provider, e.g. https://idp.example.com"));
    }
    if raw.len() > 2048 {
        return Err(bad("issuer is longer than 2048 characters"));
    }
    if has_control(raw) || raw.chars().any(char::is_whitespace) {
        return Err(bad("issuer must not contain spaces or control characters"));
    }
    let url = Url::parse(raw).map_err(|e| {
        bad(&format!(
            "issuer is not an absolute URL ({e}); give the full https URL, e.g. https://idp.example.com"
        ))
    })?;
    if url.scheme() != "https" {
        return Err(Invalid::new(
            ErrorCode::IssuerNotHttps,
            format!(
                "issuer must use https, not {}: OpenID Connect requires TLS for the issuer",
                url.scheme()
            ),
        ));
    }
    if !raw
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
    {
        return Err(bad("issuer must start with https://"));
    }
    if !url.username().is_empty() || url.password().is_some() || authority(raw).contains('@') {
        return Err(bad(
            "issuer must not contain user info (user:pass@); remove it",
        ));
    }
    if raw.contains('?') {
        return Err(bad("issuer must not have a query (?…); remove it"));
    }
    if raw.contains('#') {
        return Err(bad("issuer must not have a fragment (#…); remove it"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("issuer has no host"));
    }
    Ok(raw.to_string())
}

fn authority(raw: &str) -> &str {
    let rest = raw.get(8..).unwrap_or("");
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    &rest[..end]
}

/// `{issuer without trailing slash}/.well-known/openid-configuration`.
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.strip_suffix('/').unwrap_or(issuer)
    )
}

fn client_id(raw: &str) -> Result<String> {
    if raw.is_empty() {
        return Err(Invalid::new(
            ErrorCode::ClientIdInvalid,
            "client_id is required: the client ID your IdP gave keystead's registration",
        ));
    }
    if raw.chars().count() > 255 {
        return Err(Invalid::new(
            ErrorCode::ClientIdInvalid,
            "client_id is longer than 255 characters",
        ));
    }
    if has_control(raw) {
        return Err(Invalid::new(
            ErrorCode::ClientIdInvalid,
            "client_id must not contain control characters (check for a pasted newline or tab)",
        ));
    }
    Ok(raw.to_string())
}

/// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
fn scope_token_ok(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// Normalises to single spaces, order kept, duplicates dropped.
fn scopes(raw: &str) -> Result<String> {
    let mut out: Vec<&str> = Vec::new();
    for t in raw.split(' ').filter(|t| !t.is_empty()) {
        if !scope_token_ok(t) {
            return Err(Invalid::new(
                ErrorCode::ScopesInvalid,
                format!(
                    "scope {t:?} is not a valid scope token: use printable ASCII without quotes, backslashes or whitespace, separated by single spaces"
                ),
            ));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if !out.contains(&"openid") {
        return Err(Invalid::new(
            ErrorCode::ScopesInvalid,
            "scopes must include openid, e.g. \"openid email profile\"",
        ));
    }
    Ok(out.join(" "))
}

fn button_label(raw: &str) -> Result<String> {
    let n = raw.chars().count();
    if n == 0 || raw.trim().is_empty() {
        return Err(Invalid::new(
            ErrorCode::ButtonLabelInvalid,
            "button_label is required: the text of the sign-in button, e.g. \"Sign in with Acme\"",
        ));
    }
    if n > 64 {
        return Err(Invalid::new(
            ErrorCode::ButtonLabelInvalid,
            format!("button_label is {n} characters long; use at most 64"),
        ));
    }
    if has_control(raw) {
        return Err(Invalid::new(
            ErrorCode::ButtonLabelInvalid,
            "button_label must not contain control characters (newlines, tabs)",
        ));
    }
    Ok(raw.to_string())
}

/// Client secrets are opaque, but an empty one or one with a pasted newline
/// is always a mistake.
pub fn client_secret(raw: &str) -> Result<()> {
    if raw.is_empty() {
        return Err(Invalid::new(
            ErrorCode::ClientSecretInvalid,
            "client_secret is empty",
        ));
    }
    if raw.len() > 4096 {
        return Err(Invalid::new(
            ErrorCode::ClientSecretInvalid,
            "client_secret is longer than 4096 bytes",
        ));
    }
    if has_control(raw) {
        return Err(Invalid::new(
            ErrorCode::ClientSecretInvalid,
            "client_secret contains control characters (a trailing newline?); send the secret alone",
        ));
    }
    Ok(())
}

const FORBIDDEN_SCHEMES: [&str; 6] = ["javascript", "data", "file", "vbscript", "blob", "about"];

/// An allowed return URL: https, http only on loopback (local development),
/// or a native app scheme (`myapp://callback`); never a script scheme, no
/// fragment, no user info.
fn return_url(raw: &str) -> Result<String> {
    let bad = |msg: String| Invalid::new(ErrorCode::ReturnUrlInvalid, msg);
    if has_control(raw) || raw.chars().any(char::is_whitespace) {
        return Err(bad(format!(
            "{raw:?}: return URLs must not contain spaces or control characters"
        )));
    }
    let url = Url::parse(raw).map_err(|e| bad(format!("{raw:?} is not an absolute URL ({e})")))?;
    let scheme = url.scheme();
    if FORBIDDEN_SCHEMES.contains(&scheme) {
        return Err(bad(format!(
            "{raw:?}: the {scheme}: scheme is never allowed as a return URL"
        )));
    }
    if url.fragment().is_some() {
        return Err(bad(format!(
            "{raw:?}: return URLs must not have a fragment (#…)"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(format!(
            "{raw:?}: return URLs must not contain user info"
        )));
    }
    match scheme {
        "https" => {}
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if !loopback {
                return Err(bad(format!(
                    "{raw:?}: http is only allowed for localhost during development; use https"
                )));
            }
        }
        _ => {
            // Native app: a private-use scheme with a host or path.
            if !scheme.contains('.') && url.cannot_be_a_base() && url.path().is_empty() {
                return Err(bad(format!(
                    "{raw:?}: a native app return URL needs a path, e.g. myapp://callback"
                )));
            }
        }
    }
    if matches!(scheme, "https" | "http") && url.host_str().is_none_or(str::is_empty) {
        return Err(bad(format!("{raw:?} has no host")));
    }
    Ok(raw.to_string())
}

/// A list of return URLs: each checked, duplicates dropped, at most
/// [`MAX_RETURN_URLS`].
pub fn return_urls(raw: &[String]) -> Result<Vec<ReturnUrl>> {
    if raw.len() > MAX_RETURN_URLS {
        return Err(Invalid::new(
            ErrorCode::ReturnUrlInvalid,
            format!("at most {MAX_RETURN_URLS} return URLs are allowed"),
        ));
    }
    let mut out: Vec<ReturnUrl> = Vec::with_capacity(raw.len());
    for r in raw {
        let v = ReturnUrl::try_from(r.as_str())?;
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn code<T: std::fmt::Debug>(r: Result<T>) -> ErrorCode {
        r.unwrap_err().code
    }
    #[test]
    fn issuer_rules() {
        assert_eq!(
            issuer("https://idp.example.com").unwrap(),
            "https://idp.example.com"
        );
        assert_eq!(
            issuer("https://idp.example.com/").unwrap(),
            "https://idp.example.com/"
        );
        assert!(issuer("https://idp.example.com/tenant-123").is_ok());
        assert!(issuer("https://127.0.0.1:8443/main").is_ok());
        for (raw, want) in [
            ("http://idp.example.com", ErrorCode::IssuerNotHttps),
            ("ftp://idp.example.com", ErrorCode::IssuerNotHttps),
            ("https://idp.example.com?x=1", ErrorCode::IssuerInvalid),
            ("https://idp.example.com/?", ErrorCode::IssuerInvalid),
            ("https://idp.example.com#f", ErrorCode::IssuerInvalid),
            ("https://idp.example.com/#", ErrorCode::IssuerInvalid),
            ("https://u:p@idp.example.com", ErrorCode::IssuerInvalid),
            ("https://@idp.example.com", ErrorCode::IssuerInvalid),
            ("idp.example.com", ErrorCode::IssuerInvalid),
            ("", ErrorCode::IssuerInvalid),
            ("https://idp.example.com/ x", ErrorCode::IssuerInvalid),
            ("https://", ErrorCode::IssuerInvalid),
        ] {
            assert_eq!(code(issuer(raw)), want, "{raw:?}");
        }
    }

    #[test]
    fn discovery_url_strips_one_trailing_slash() {
        assert_eq!(
            discovery_url("https://a.example/t/"),
            "https://a.example/t/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://a.example"),
            "https://a.example/.well-known/openid-configuration"
        );
    }

    #[test]
    fn scope_rules() {
        assert_eq!(scopes("openid  email openid").unwrap(), "openid email");
        assert_eq!(code(scopes("email profile")), ErrorCode::ScopesInvalid);
        assert_eq!(code(scopes("openid\temail")), ErrorCode::ScopesInvalid);
        assert_eq!(code(scopes("openid \"x\"")), ErrorCode::ScopesInvalid);
        assert_eq!(code(scopes("openid é")), ErrorCode::ScopesInvalid);
        assert_eq!(code(scopes("")), ErrorCode::ScopesInvalid);
    }

    #[test]
    fn label_and_client_id_rules() {
        assert!(button_label("Sign in with Acme").is_ok());
        assert!(button_label(&"é".repeat(64)).is_ok());
        assert_eq!(
            code(button_label(&"a".repeat(65))),
            ErrorCode::ButtonLabelInvalid
        );
        assert_eq!(code(button_label("")), ErrorCode::ButtonLabelInvalid);
        assert_eq!(code(button_label("a\nb")), ErrorCode::ButtonLabelInvalid);
        assert!(client_id(&"c".repeat(255)).is_ok());
        assert_eq!(
            code(client_id(&"c".repeat(256))),
            ErrorCode::ClientIdInvalid
        );
        assert_eq!(code(client_id("a\u{7f}")), ErrorCode::ClientIdInvalid);
        assert_eq!(
            code(AuthMethod::try_from("private_key_jwt")),
            ErrorCode::AuthMethodInvalid
        );
    }

    #[test]
    fn auth_methods_round_trip() {
        for m in AuthMethod::ALL {
            assert_eq!(AuthMethod::try_from(m.as_str()).unwrap(), m);
        }
        assert!(!AuthMethod::None.needs_secret());
        assert!(AuthMethod::ClientSecretBasic.needs_secret());
        assert_eq!(AuthMethod::default().as_str(), "client_secret_post");
    }

    #[test]
    fn types_are_built_by_their_rules() {
        assert_eq!(
            Scopes::try_from("openid  email openid").unwrap().as_str(),
            "openid email"
        );
        assert_eq!(
            Issuer::try_from("http://idp.example").unwrap_err().code,
            ErrorCode::IssuerNotHttps
        );
        assert_eq!(
            Issuer::try_from("https://idp.example/")
                .unwrap()
                .discovery_url(),
            "https://idp.example/.well-known/openid-configuration"
        );
        assert_eq!(
            return_urls(&["https://a.example/cb".into(), "https://a.example/cb".into()])
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn return_url_rules() {
        assert!(return_url("https://app.example.com/cb").is_ok());
        assert!(return_url("http://localhost:3000/cb").is_ok());
        assert!(return_url("http://127.0.0.1:3000/cb").is_ok());
        assert!(return_url("myapp://callback").is_ok());
        for bad in [
            "javascript:alert(1)",
            "data:text/html,x",
            "//evil.example",
            "http://evil.example/cb",
            "https://app.example.com/cb#x",
            "https://u@app.example.com/cb",
            "not a url",
        ] {
            assert_eq!(code(return_url(bad)), ErrorCode::ReturnUrlInvalid, "{bad}");
        }
    }
}
