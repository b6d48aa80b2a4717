//! The developer portal (SPEC §9): server-rendered pages from templates
//! compiled into the binary (`templates/portal/`), on the same services as
//! the API. A session cookie (`HttpOnly; SameSite=Lax`, `Secure` and the
//! `__Host-` prefix when `public_url` is https) and a CSRF token in every
//! form. It works without JavaScript; `portal.js` only adds Copy buttons.

use std::sync::Arc;

use askama::Template;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use keystead_crypto::{ExposeSecret, SecretString};
use keystead_domain::portal::{DeveloperSession, ProjectKeys};
use keystead_domain::{Configuration, Error, Portal, Verify};
use keystead_proto::{self as proto, ErrorCode};
use serde::Deserialize;

use crate::login::cookie;
use crate::AppState;

mod authentication;

/// Pages with keys and secrets: scripts only from keystead itself, never
/// framed, never cached.
const PORTAL_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/portal", get(home))
        .route("/portal/", get(|| async { Redirect::to("/portal") }))
        .route("/portal/login", get(login_form).post(login))
        .route("/portal/logout", post(logout))
        .route("/portal/projects/{project}/keys", post(create_key))
        .merge(authentication::routes())
        .route("/assets/portal.css", get(css))
        .route("/assets/portal.js", get(js))
        .method_not_allowed_fallback(crate::routes::method_not_allowed)
}

async fn css() -> Response {
    static_asset(
        include_str!("../assets/portal.css"),
        "text/css; charset=utf-8",
    )
}

async fn js() -> Response {
    static_asset(
        include_str!("../assets/portal.js"),
        "text/javascript; charset=utf-8",
    )
}

fn static_asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

// ---- cookies ------------------------------------------------------------------

struct Cookies {
    https: bool,
}

impl Cookies {
    fn of(s: &AppState) -> Self {
        Cookies {
            https: s.services.ops.config().public_url.scheme() == "https",
        }
    }

    fn session_name(&self) -> &'static str {
        if self.https {
            "__Host-ks_portal"
        } else {
            "ks_portal"
        }
    }

    fn login_csrf_name(&self) -> &'static str {
        if self.https {
            "__Host-ks_portal_csrf"
        } else {
            "ks_portal_csrf"
        }
    }

    fn set(&self, name: &str, value: &str, max_age: i64) -> HeaderValue {
        let path = if self.https { "/" } else { "/portal" };
        let secure = if self.https { "; Secure" } else { "" };
        let v = format!(
            "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
        );
        HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static(""))
    }
}

// ---- rendering ----------------------------------------------------------------

fn html(status: StatusCode, body: Result<String, askama::Error>) -> Response {
    match body {
        Ok(body) => crate::pages::page_with_csp(status, body, PORTAL_CSP),
        Err(e) => {
            tracing::error!(error = %e, "portal template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "portal/message.html")]
struct MessagePage<'a> {
    signed_in: Option<&'a str>,
    csrf: &'a str,
    heading: &'a str,
    text: &'a str,
}

fn message(
    status: StatusCode,
    dev: Option<&DeveloperSession>,
    heading: &str,
    text: &str,
) -> Response {
    html(
        status,
        MessagePage {
            signed_in: dev.map(|d| d.email.as_str()),
            csrf: dev.map_or("", |d| d.csrf_token.as_str()),
            heading,
            text,
        }
        .render(),
    )
}

/// A domain error as a page: not found, refused, or (logged) internal.
fn error_page(dev: Option<&DeveloperSession>, e: &Error) -> Response {
    match e {
        Error::Internal(m) => {
            tracing::error!(error = %m, "internal error in the portal");
            message(
                StatusCode::INTERNAL_SERVER_ERROR,
                dev,
                "Something went wrong",
                "The server log has the details.",
            )
        }
        e if e.code() == ErrorCode::NotFound => message(
            StatusCode::NOT_FOUND,
            dev,
            "Not found",
            "There is no such page, or it belongs to a project you are not a member of.",
        ),
        e => {
            let d = e.detail();
            let status =
                StatusCode::from_u16(d.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            message(status, dev, "That did not work", &d.message)
        }
    }
}

fn csrf_refused(dev: &DeveloperSession) -> Response {
    message(
        StatusCode::FORBIDDEN,
        Some(dev),
        "The form expired",
        "The form was sent without its security token. Reload the page and try again.",
    )
}

// ---- the signed-in developer ---------------------------------------------------

/// The developer of the session cookie; without one, the browser goes to
/// the sign-in page.
struct Dev {
    session: DeveloperSession,
    token: String,
}

impl FromRequestParts<AppState> for Dev {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let name = Cookies::of(s).session_name();
        let token = cookie(&parts.headers, name).unwrap_or_default();
        match s.services.portal.session(&token).await {
            Ok(session) => Ok(Dev { session, token }),
            Err(Error::Internal(m)) => {
                tracing::error!(error = %m, "portal session lookup failed");
                Err((StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response())
            }
            Err(_) => Err(Redirect::to("/portal/login").into_response()),
        }
    }
}

// ---- sign-in ------------------------------------------------------------------

#[derive(Template)]
#[template(path = "portal/login.html")]
struct LoginPage<'a> {
    signed_in: Option<&'a str>,
    csrf: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

/// Before a session exists, the sign-in form's CSRF token is a random
/// value in a cookie and in the form (double submit).
async fn login_form(State(s): State<AppState>) -> Response {
    let csrf = keystead_crypto::random_token_bits("", 24);
    let cookies = Cookies::of(&s);
    let mut resp = html(
        StatusCode::OK,
        LoginPage {
            signed_in: None,
            csrf: &csrf,
            email: "",
            error: None,
        }
        .render(),
    );
    resp.headers_mut().append(
        header::SET_COOKIE,
        cookies.set(cookies.login_csrf_name(), &csrf, 3600),
    );
    resp
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

async fn login(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let cookies = Cookies::of(&s);
    let password = SecretString::from(f.password);
    let expected = cookie(&headers, cookies.login_csrf_name()).unwrap_or_default();
    let again = |status: StatusCode, error: &str| {
        html(
            status,
            LoginPage {
                signed_in: None,
                csrf: &expected,
                email: &f.email,
                error: Some(error),
            }
            .render(),
        )
    };
    if expected.is_empty()
        || !keystead_crypto::hashing::constant_time_eq(expected.as_bytes(), f.csrf.as_bytes())
    {
        return message(
            StatusCode::FORBIDDEN,
            None,
            "The form expired",
            "The sign-in form was sent without its security token. Open the sign-in page again.",
        );
    }
    match s.services.portal.sign_in(&f.email, &password).await {
        Ok(token) => {
            let mut resp = Redirect::to("/portal").into_response();
            let h = resp.headers_mut();
            h.append(
                header::SET_COOKIE,
                cookies.set(
                    cookies.session_name(),
                    token.expose_secret(),
                    keystead_domain::portal::PORTAL_SESSION_SECS,
                ),
            );
            h.append(
                header::SET_COOKIE,
                cookies.set(cookies.login_csrf_name(), "", 0),
            );
            resp
        }
        Err(Error::RateLimited { retry_after }) => again(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many sign-in attempts; try again in {retry_after} s."),
        ),
        Err(Error::Internal(m)) => {
            tracing::error!(error = %m, "portal sign-in failed");
            again(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong; the server log has the details.",
            )
        }
        Err(e) => again(StatusCode::UNAUTHORIZED, &e.detail().message),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(State(s): State<AppState>, dev: Dev, Form(f): Form<CsrfForm>) -> Response {
    if !s.services.portal.csrf_ok(&dev.session, &f.csrf) {
        return csrf_refused(&dev.session);
    }
    if let Err(e) = s.services.portal.sign_out(&dev.token).await {
        return error_page(Some(&dev.session), &e);
    }
    let cookies = Cookies::of(&s);
    let mut resp = Redirect::to("/portal/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        cookies.set(cookies.session_name(), "", 0),
    );
    resp
}

// ---- projects and API keys ------------------------------------------------------

#[derive(Template)]
#[template(path = "portal/home.html")]
struct HomePage<'a> {
    signed_in: Option<&'a str>,
    csrf: &'a str,
    projects: &'a [ProjectKeys],
    created: Option<&'a proto::CreatedApiKey>,
}

async fn home(State(portal): State<Arc<Portal>>, dev: Dev) -> Response {
    render_home(&portal, &dev.session, None, StatusCode::OK).await
}

async fn render_home(
    portal: &Portal,
    dev: &DeveloperSession,
    created: Option<&proto::CreatedApiKey>,
    status: StatusCode,
) -> Response {
    match portal.projects(dev).await {
        Ok(projects) => html(
            status,
            HomePage {
                signed_in: Some(&dev.email),
                csrf: &dev.csrf_token,
                projects: &projects,
                created,
            }
            .render(),
        ),
        Err(e) => error_page(Some(dev), &e),
    }
}

#[derive(Deserialize)]
struct KeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

async fn create_key(
    State(portal): State<Arc<Portal>>,
    dev: Dev,
    Path(project): Path<String>,
    Form(f): Form<KeyForm>,
) -> Response {
    if !portal.csrf_ok(&dev.session, &f.csrf) {
        return csrf_refused(&dev.session);
    }
    match portal.create_api_key(&dev.session, &project, &f.name).await {
        // Shown once, on this answer only (no-store).
        Ok(created) => {
            render_home(&portal, &dev.session, Some(&created), StatusCode::CREATED).await
        }
        Err(e) => error_page(Some(&dev.session), &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_host_only_and_secure_on_https() {
        let https = Cookies { https: true };
        assert_eq!(https.session_name(), "__Host-ks_portal");
        let v = https.set(https.session_name(), "kps_x", 60);
        let v = v.to_str().unwrap();
        for part in [
            "__Host-ks_portal=kps_x",
            "Path=/;",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
        ] {
            assert!(v.contains(part), "{v}");
        }
        let http = Cookies { https: false };
        let v = http.set(http.session_name(), "kps_x", 60);
        let v = v.to_str().unwrap();
        assert!(v.starts_with("ks_portal=kps_x; Path=/portal;"), "{v}");
        assert!(!v.contains("Secure"), "{v}");
    }
}
