//! A server-side look at the IdP's authorization endpoint, as a browser
//! would see it, for the test login: an IdP that refuses the authorization
//! request (unknown client, redirect URI not registered) shows its own
//! error page and never comes back to keystead, so the test finds it out
//! here instead. Through the SSRF-safe client like every other request to
//! the IdP; redirects are read, not followed.

use url::Url;

use crate::error::{Kind, OidcError};
use crate::fetch::fetch_failure;
use crate::metadata::{AuthorizationRequest, ProviderMetadata};
use crate::printable;
use crate::provider::{DocStore, Provider};

/// How much of the IdP's page is read.
const PAGE_LIMIT: usize = 64 * 1024;

/// What the authorization endpoint did with keystead's request.
#[derive(Debug)]
pub enum AuthorizationProbe {
    /// It went on to its sign-in (a redirect to its own pages, or a page).
    Accepted(String),
    /// It refused: an error page, or an error sent to the redirect URI.
    Refused(OidcError),
    /// It could not be asked (the endpoint did not answer); the test goes
    /// on and the browser finds out.
    Unknown(String),
}

/// The parameters of a real authorization request, with throwaway values
/// for the state, nonce and PKCE challenge.
pub struct ProbeRequest<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: &'a str,
}

impl<S: DocStore> Provider<S> {
    pub async fn probe_authorization(
        &self,
        meta: &ProviderMetadata,
        req: &ProbeRequest<'_>,
    ) -> AuthorizationProbe {
        let throwaway = || keystead_crypto::random_token_bits("", 16);
        let url = meta.authorization_url(&AuthorizationRequest {
            client_id: req.client_id,
            redirect_uri: req.redirect_uri,
            scopes: req.scopes,
            state: &throwaway(),
            nonce: &throwaway(),
            code_challenge: &keystead_crypto::random_token_bits("", 32),
            login_hint: None,
        });
        let resp = match self.outbound().probe_page(&url, PAGE_LIMIT).await {
            Ok(r) => r,
            Err(e) => {
                return AuthorizationProbe::Unknown(
                    fetch_failure("the authorization endpoint", &e, Kind::Idp).message,
                )
            }
        };
        judge(resp.status, resp.location.as_deref(), &resp.body, &url, req)
    }
}

/// The verdict on one answer of the authorization endpoint.
fn judge(
    status: u16,
    location: Option<&str>,
    body: &[u8],
    asked: &Url,
    req: &ProbeRequest<'_>,
) -> AuthorizationProbe {
    let register = || {
        format!(
            "register exactly {} as a redirect URI of client {} at your IdP, and check that the client id is the one the IdP issued",
            req.redirect_uri, req.client_id
        )
    };
    if (300..400).contains(&status) {
        let Some(to) = location.and_then(|l| asked.join(l).ok()) else {
            return AuthorizationProbe::Accepted(format!(
                "the authorization endpoint answered HTTP {status}"
            ));
        };
        // An error sent back to the redirect URI (the client and the URI
        // are known to the IdP, something else is refused: scope, PKCE, …),
        // or to the IdP's own error page (Auth0's `/authorize/error`,
        // Cognito's `/error`: a redirect URI it does not know).
        let q: Vec<(String, String)> = to.query_pairs().into_owned().collect();
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let to_the_app = to.as_str().starts_with(req.redirect_uri);
        let same_idp = to.host_str() == asked.host_str();
        if let (Some(error), true) = (get("error"), to_the_app || same_idp) {
            let refusal = crate::idp_error(req.redirect_uri, error, get("error_description"));
            return AuthorizationProbe::Refused(if to_the_app || refusal.hint.is_some() {
                refusal
            } else {
                OidcError::with_hint(Kind::Idp, refusal.message, register())
            });
        }
        return AuthorizationProbe::Accepted(format!(
            "the authorization endpoint accepted the request and sent the browser on to {}",
            printable(to.host_str().unwrap_or(""), 100)
        ));
    }
    let text = page_text(body);
    let lower = text.to_ascii_lowercase();
    // Named errors in the raw page (Microsoft Entra renders its AADSTS
    // codes from a script, and may answer 200).
    let raw = String::from_utf8_lossy(body).to_ascii_lowercase();
    let named_error = [
        "redirect_uri_mismatch",
        "aadsts50011",
        "aadsts700016",
        "aadsts90014",
    ]
    .iter()
    .any(|n| raw.contains(n));
    // A refusal of the request itself: a 400 that speaks OAuth. Anything
    // else (401/403 from a bot wall, 429, 5xx) proves nothing about the
    // configuration: the browser finds out.
    let oauth_words = [
        "invalid_request",
        "invalid_client",
        "unauthorized_client",
        "invalid_redirect_uri",
        "redirect_uri",
        "redirect uri",
        "client_id",
        "invalid_scope",
        "unsupported_response_type",
    ];
    let speaks_oauth = oauth_words.iter().any(|w| lower.contains(w));
    if named_error || (status == 400 && speaks_oauth) {
        let said = if text.is_empty() {
            String::new()
        } else {
            format!("; its page says: {}", printable(&text, 300))
        };
        let about_client = (lower.contains("client") && !lower.contains("redirect"))
            || raw.contains("aadsts700016");
        let hint = if about_client {
            format!(
                "check the client id: the IdP does not know client {} (and register {} as its redirect URI)",
                req.client_id, req.redirect_uri
            )
        } else {
            register()
        };
        return AuthorizationProbe::Refused(OidcError::with_hint(
            Kind::Idp,
            format!("the IdP refused the authorization request with HTTP {status} and will not come back to keystead{said}"),
            hint,
        ));
    }
    if status >= 400 {
        return AuthorizationProbe::Unknown(format!(
            "the authorization endpoint answered HTTP {status} to keystead's server; the browser may see it differently"
        ));
    }
    AuthorizationProbe::Accepted(format!(
        "the authorization endpoint answered HTTP {status} with a page"
    ))
}

/// The visible text of an HTML page, roughly: tags and scripts dropped,
/// a few entities decoded, white space collapsed.
fn page_text(body: &[u8]) -> String {
    let html = String::from_utf8_lossy(body);
    // lower-cased once: ASCII lower-casing keeps every byte offset
    let lower = html.to_ascii_lowercase();
    let mut out = String::new();
    let mut at = 0;
    while let Some(i) = html[at..].find('<').map(|i| at + i) {
        out.push_str(&html[at..i]);
        out.push(' ');
        let tag = &lower[i..];
        let end_tag = if tag.starts_with("<script") {
            "</script>"
        } else if tag.starts_with("<style") {
            "</style>"
        } else if tag.starts_with("<title") {
            // the heading usually repeats it
            "</title>"
        } else {
            ">"
        };
        at = match tag.find(end_tag) {
            Some(j) => i + j + end_tag.len(),
            None => html.len(),
        };
    }
    out.push_str(&html[at..]);
    let decoded = out
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    // a tag closed before punctuation (`<strong>error</strong>:`) leaves no gap
    decoded
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" :", ":")
        .replace(" ,", ",")
        .replace(" .", ".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> ProbeRequest<'static> {
        ProbeRequest {
            client_id: "app",
            redirect_uri: "https://keystead.example/auth/custom_oidc/callback",
            scopes: "openid email",
        }
    }

    fn asked() -> Url {
        Url::parse("https://idp.example/auth?client_id=app").unwrap()
    }

    #[test]
    fn a_redirect_to_the_idps_own_pages_is_accepted() {
        let r = judge(303, Some("/interaction/abc"), b"", &asked(), &req());
        assert!(matches!(r, AuthorizationProbe::Accepted(d) if d.contains("idp.example")));
    }

    #[test]
    fn an_error_sent_to_the_redirect_uri_is_refused_in_words() {
        let r = judge(
            302,
            Some("https://keystead.example/auth/custom_oidc/callback?error=invalid_scope&error_description=nope&state=x"),
            b"",
            &asked(),
            &req(),
        );
        let AuthorizationProbe::Refused(e) = r else {
            panic!("{r:?}")
        };
        assert!(e.message.contains("invalid_scope"), "{}", e.message);
    }

    #[test]
    fn a_redirect_to_the_idps_error_page_is_a_refusal() {
        // Auth0 and Cognito send the browser to an error page of their own
        let r = judge(
            302,
            Some("/authorize/error?error=invalid_request&error_description=Callback%20URL%20mismatch"),
            b"",
            &asked(),
            &req(),
        );
        let AuthorizationProbe::Refused(e) = r else {
            panic!("{r:?}")
        };
        assert!(e.message.contains("Callback URL mismatch"), "{}", e.message);
        assert!(e.hint.unwrap().contains(req().redirect_uri));
        let r = judge(
            302,
            Some("/error?error=redirect_mismatch"),
            b"",
            &asked(),
            &req(),
        );
        assert!(matches!(r, AuthorizationProbe::Refused(_)), "{r:?}");
        // its own sign-in page is not
        let r = judge(302, Some("/u/login?state=abc"), b"", &asked(), &req());
        assert!(matches!(r, AuthorizationProbe::Accepted(_)), "{r:?}");
    }

    #[test]
    fn an_error_page_names_the_redirect_uri_to_register() {
        let page = b"<html><head><title>oops! something went wrong</title><style>h1{}</style><script>var x='<b>';</script></head><body><h1>oops! something went wrong</h1><pre><strong>error</strong>: invalid_redirect_uri\n<strong>error_description</strong>: redirect_uri did not match any of the client&#39;s registered redirect_uris</pre></body></html>";
        let AuthorizationProbe::Refused(e) = judge(400, None, page, &asked(), &req()) else {
            panic!()
        };
        assert!(e.message.contains("HTTP 400"), "{}", e.message);
        assert_eq!(e.message.matches("oops!").count(), 1, "{}", e.message);
        assert!(
            e.message
                .contains("error: invalid_redirect_uri error_description: redirect_uri did not match any of the client's registered redirect_uris"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("var x"), "{}", e.message);
        let hint = e.hint.unwrap();
        assert!(
            hint.contains("https://keystead.example/auth/custom_oidc/callback"),
            "{hint}"
        );
    }

    #[test]
    fn an_unknown_client_is_named() {
        let page = b"<p>error: invalid_client</p><p>error_description: client is invalid</p>";
        let AuthorizationProbe::Refused(e) = judge(400, None, page, &asked(), &req()) else {
            panic!()
        };
        assert!(e.hint.unwrap().contains("check the client id"));
    }

    #[test]
    fn a_bot_wall_or_an_outage_is_not_a_refusal() {
        for status in [401, 403, 429, 500, 503] {
            let page = b"<p>Access denied. Please verify you are human.</p>";
            let r = judge(status, None, page, &asked(), &req());
            assert!(
                matches!(r, AuthorizationProbe::Unknown(_)),
                "{status}: {r:?}"
            );
        }
        // a 400 that does not speak OAuth either
        let r = judge(400, None, b"<p>Bad Request</p>", &asked(), &req());
        assert!(matches!(r, AuthorizationProbe::Unknown(_)), "{r:?}");
    }

    #[test]
    fn a_login_page_with_200_is_accepted_and_a_named_error_is_not() {
        let login = b"<form><input name=redirect_uri type=hidden><label>Password</label></form>";
        assert!(matches!(
            judge(200, None, login, &asked(), &req()),
            AuthorizationProbe::Accepted(_)
        ));
        let entra =
            b"<script>$Config={\"strServiceExceptionMessage\":\"AADSTS50011: The redirect URI specified in the request does not match\"}</script>";
        assert!(matches!(
            judge(200, None, entra, &asked(), &req()),
            AuthorizationProbe::Refused(_)
        ));
    }
}
