//! keystead's browser-facing files: the hosted login page (`/login`), the
//! browser SDK (`/sdk/keystead.js` and its types), and the stylesheet of
//! keystead's pages. The page works without JavaScript: its buttons are
//! links to `/auth/custom_oidc/start`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use keystead_domain::SignIn;
use serde::Deserialize;

use crate::login::StartQuery;
use crate::AppState;

const SDK_JS: &str = include_str!("../assets/keystead.js");
const SDK_DTS: &str = include_str!("../assets/keystead.d.ts");
const CSS: &str = include_str!("../assets/keystead.css");

/// Pages: no script at all, styles from our own origin, not framed, and
/// nothing sent to other sites in `Referer`.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page))
        .route("/sdk/keystead.js", get(sdk_js))
        .route("/sdk/keystead.d.ts", get(sdk_dts))
        .route("/assets/keystead.css", get(css))
        .method_not_allowed_fallback(crate::routes::method_not_allowed)
}

/// A static file; the SDK is loaded cross-origin by apps (module scripts
/// are fetched in CORS mode), so it allows any origin.
fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (
                header::HeaderName::from_static("cross-origin-resource-policy"),
                "cross-origin",
            ),
        ],
        body,
    )
        .into_response()
}

async fn sdk_js() -> Response {
    asset(SDK_JS, "text/javascript; charset=utf-8")
}

async fn sdk_dts() -> Response {
    asset(SDK_DTS, "application/typescript; charset=utf-8")
}

async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

/// A page with the headers of every page keystead renders.
pub fn page(status: StatusCode, html: String) -> Response {
    page_with_csp(status, html, PAGE_CSP)
}

/// A page under `csp`, never framed, cached or named in `Referer`.
pub fn page_with_csp(status: StatusCode, html: String, csp: &'static str) -> Response {
    let mut resp = (status, Html(html)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The frame of keystead's pages.
pub fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/assets/keystead.css\"></head>\
         <body><main>{body}<footer>Secured by keystead</footer></main></body></html>",
        escape(title)
    )
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    #[serde(flatten)]
    start: StartQuery,
    /// An error the app got back and hands to the page to show.
    error: Option<String>,
    error_description: Option<String>,
}

impl LoginQuery {
    /// The query of this sign-in without `error`: for the button and for
    /// "Try again".
    fn query(&self) -> String {
        let q0 = &self.start;
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("api_key", &q0.api_key),
            ("return_to", &q0.return_to),
            ("code_challenge", &q0.code_challenge),
            ("code_challenge_method", &q0.code_challenge_method),
            ("state", &q0.state),
            ("login_hint", &q0.login_hint),
        ] {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
        q.finish()
    }
}

/// Words for the errors a sign-in can come back with (SPEC §6).
fn error_words(code: &str, description: Option<&str>) -> String {
    let base = match code {
        "idp_error" => "Your sign-in provider reported a problem.",
        "access_denied" => "The sign-in was cancelled.",
        "state_invalid" | "state_expired" => "The sign-in took too long or was opened twice.",
        "token_exchange_failed" | "id_token_invalid" | "discovery_failed" | "jwks_failed" => {
            "The app's sign-in provider could not be reached or answered in a way keystead does not accept."
        }
        "custom_oidc_disabled" => "Sign-in with this provider is switched off for this app.",
        _ => "The sign-in did not complete.",
    };
    match description.map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => format!("{base} ({})", d.chars().take(300).collect::<String>()),
        None => base.to_string(),
    }
}

#[utoipa::path(get, path = "/login", tag = "public",
    params(("api_key" = String, Query), ("return_to" = String, Query), ("code_challenge" = String, Query),
           ("code_challenge_method" = String, Query), ("state" = Option<String>, Query)),
    responses((status = 200, content_type = "text/html", description = "the hosted login page"),
              (status = 400, content_type = "text/html", description = "a parameter is wrong (the page says which)")))]
pub async fn login_page(State(s): State<Arc<SignIn>>, Query(q): Query<LoginQuery>) -> Response {
    let info = match s.login_page(&q.start.params()).await {
        Ok(info) => info,
        Err(e) => return crate::login::error_page(&e),
    };
    let title = format!("Sign in to {}", info.project_name);
    let mut body = format!("<h1>{}</h1>", escape(&title));
    if let Some(code) = q.error.as_deref() {
        body.push_str(&format!(
            "<div class=\"alert\" role=\"alert\"><p>{}</p><p><a href=\"/login?{}\">Try again</a></p></div>",
            escape(&error_words(code, q.error_description.as_deref())),
            escape(&q.query())
        ));
    }
    match &info.custom_oidc_label {
        Some(label) => body.push_str(&format!(
            "<p class=\"muted\">Choose how to sign in.</p><ul class=\"methods\"><li>\
             <a class=\"button\" href=\"/auth/custom_oidc/start?{}&amp;via=login\">{}</a></li></ul>",
            escape(&q.query()),
            escape(label)
        )),
        None => body.push_str(
            "<p>Sign-in is not available for this app right now: its sign-in provider is \
             switched off. Please try again later or contact the app's support.</p>",
        ),
    }
    page(StatusCode::OK, layout(&title, &body))
}
