//! Public and end-user routes: SDK config, the Custom OIDC start/callback
//! pair, sessions, `/v1/me`, session JWTs and their JWKS. Browser-facing
//! failures without a trusted return URL render an HTML page (with the
//! error code in the page and in `X-Keystead-Error`).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use keystead_domain::login::{
    CallbackParams, StartParams, BROWSER_COOKIE, BROWSER_COOKIE_HOST, STATE_TTL_SECS,
};
use keystead_domain::{Error, Sessions, SignIn};
use keystead_proto as proto;
use serde::Deserialize;
use tower_http::cors::{Any, CorsLayer};

use crate::auth::User;
use crate::error::{ApiError, ApiResult};
use crate::extract::SecretJson;
use crate::pages::escape;
use crate::AppState;

/// CORS for browser-called routes: any origin, bearer tokens only, no
/// cookies (`allow_credentials` stays off).
pub fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            axum::http::Method::GET,
            axum::http::Method::POST,
            axum::http::Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("idempotency-key"),
        ])
}

pub fn routes() -> Router<AppState> {
    let cors = cors();
    let api = Router::new()
        .route("/v1/sdk/config", get(sdk_config))
        .route("/v1/sessions", post(create_session))
        .route("/v1/sessions/jwt", post(session_jwt))
        .route("/v1/sessions/current", delete(logout))
        .route("/v1/me", get(me))
        .route("/.well-known/jwks.json", get(jwks))
        .method_not_allowed_fallback(crate::routes::method_not_allowed)
        .layer(cors);
    Router::new()
        .route("/auth/custom_oidc/start", get(start))
        .route("/auth/custom_oidc/callback", get(callback))
        .route("/auth/custom_oidc/test-start", get(test_start))
        .route("/auth/custom_oidc/test-result", get(test_result))
        .method_not_allowed_fallback(crate::routes::method_not_allowed)
        .merge(api)
}

#[derive(Deserialize)]
pub struct ApiKeyQuery {
    api_key: Option<String>,
}

#[utoipa::path(get, path = "/v1/sdk/config", tag = "public",
    params(("api_key" = String, Query, description = "publishable key pk_…")),
    responses((status = 200, body = proto::SdkConfig), (status = 401, body = proto::ErrorBody, description = "unknown key")))]
pub async fn sdk_config(
    State(s): State<Arc<SignIn>>,
    Query(q): Query<ApiKeyQuery>,
) -> ApiResult<Response> {
    let v = s.sdk_config(q.api_key.as_deref().unwrap_or("")).await?;
    let mut resp = Json(v).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=5"),
    );
    Ok(resp)
}

/// The value of the request's cookie `name`.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn https(s: &SignIn) -> bool {
    s.public_url().scheme() == "https"
}

/// The page shown when there is no trusted place to send the browser.
pub(crate) fn error_page(e: &Error) -> Response {
    if let Error::Internal(m) = e {
        tracing::error!(error = %m, "internal error during sign-in");
    }
    let d = e.detail();
    let status = StatusCode::from_u16(d.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let hint = d
        .hint
        .as_deref()
        .map(|h| format!("<p class=\"muted\">{}</p>", escape(h)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Sign-in failed</h1><p>{}</p>{hint}<p>Error code: <code>{}</code></p>",
        escape(&d.message),
        d.code.as_str()
    );
    let mut resp = crate::pages::page(status, crate::pages::layout("Sign-in failed", &body));
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(d.code.as_str()) {
        h.insert("x-keystead-error", v);
    }
    if let Error::RateLimited { retry_after } = e {
        h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    resp
}

fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut r = StatusCode::FOUND.into_response();
            r.headers_mut().insert(header::LOCATION, v);
            r.headers_mut().insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            r
        }
        Err(_) => error_page(&Error::internal("redirect location is not a valid header")),
    }
}

/// The parameters of a sign-in start (also the hosted login page's).
#[derive(Deserialize, Default)]
pub struct StartQuery {
    pub(crate) api_key: Option<String>,
    pub(crate) return_to: Option<String>,
    pub(crate) code_challenge: Option<String>,
    pub(crate) code_challenge_method: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) login_hint: Option<String>,
    /// `login` when the hosted login page sent the browser.
    pub(crate) via: Option<String>,
}

impl StartQuery {
    pub(crate) fn params(&self) -> StartParams {
        StartParams {
            api_key: self.api_key.clone().unwrap_or_default(),
            return_to: self.return_to.clone().unwrap_or_default(),
            code_challenge: self.code_challenge.clone().unwrap_or_default(),
            code_challenge_method: self.code_challenge_method.clone().unwrap_or_default(),
            state: self.state.clone(),
            login_hint: self.login_hint.clone(),
            via_login_page: self.via.as_deref() == Some("login"),
        }
    }
}

#[utoipa::path(get, path = "/auth/custom_oidc/start", tag = "public",
    params(("api_key" = String, Query), ("return_to" = String, Query), ("code_challenge" = String, Query),
           ("code_challenge_method" = String, Query, description = "S256"), ("state" = Option<String>, Query),
           ("login_hint" = Option<String>, Query)),
    responses((status = 302, description = "to the IdP's authorization endpoint"), (status = 400, description = "error page")))]
pub async fn start(State(s): State<Arc<SignIn>>, Query(q): Query<StartQuery>) -> Response {
    match s.start_login(&q.params()).await {
        Ok(started) => to_the_idp(&s, &started),
        Err(e) => error_page(&e),
    }
}

/// The browser to the IdP, bound to this browser by a cookie minted here.
fn to_the_idp(s: &SignIn, started: &keystead_domain::login::Started) -> Response {
    let set = if https(s) {
        // `__Host-` demands Path=/ and Secure.
        format!(
            "{BROWSER_COOKIE_HOST}={}; Path=/; Max-Age={STATE_TTL_SECS}; HttpOnly; SameSite=Lax; Secure",
            started.browser_id
        )
    } else {
        // Under public_url's path, so a deployment behind a path prefix
        // still gets the cookie back on its callback.
        let path = format!(
            "{}/auth/custom_oidc",
            s.public_url().path().trim_end_matches('/')
        );
        format!(
            "{BROWSER_COOKIE}={}; Path={path}; Max-Age={STATE_TTL_SECS}; HttpOnly; SameSite=Lax",
            started.browser_id
        )
    };
    let mut r = redirect(&started.location);
    if let Ok(v) = HeaderValue::from_str(&set) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize, Default)]
pub struct TestStartQuery {
    t: Option<String>,
    /// Passed on to the IdP (pre-fills or picks the account there).
    login_hint: Option<String>,
}

#[utoipa::path(get, path = "/auth/custom_oidc/test-start", tag = "public",
    params(("t" = String, Query, description = "the start token of a test login")),
    responses((status = 302, description = "to the IdP"), (status = 400, description = "error page")))]
pub async fn test_start(State(s): State<Arc<SignIn>>, Query(q): Query<TestStartQuery>) -> Response {
    match s
        .start_test_login(q.t.as_deref().unwrap_or(""), q.login_hint.as_deref())
        .await
    {
        Ok(started) => to_the_idp(&s, &started),
        Err(e) => error_page(&e),
    }
}

#[derive(Deserialize, Default)]
pub struct TestResultQuery {
    test_id: Option<String>,
}

/// The result page of a test login: its status and every check (the
/// claims are in the API's answer only).
pub async fn test_result(
    State(s): State<Arc<SignIn>>,
    Query(q): Query<TestResultQuery>,
) -> Response {
    let id = q.test_id.unwrap_or_default();
    let t = match s.test_login_page(&id).await {
        Ok(t) => t,
        Err(e) => return error_page(&e),
    };
    let would = match &t.outcome {
        Some(o) => {
            let claim = if o.would_claim.is_empty() {
                String::new()
            } else {
                format!(", and claim {} pregenerated wallet(s)", o.would_claim.len())
            };
            if o.user == "existing" {
                format!(
                    "<p>A real sign-in would sign in an existing user, with {} wallet(s){claim}.</p>",
                    o.wallets.len()
                )
            } else {
                format!(
                    "<p>A real sign-in would create a new user with a new EVM wallet{claim}.</p>"
                )
            }
        }
        None => String::new(),
    };
    let mut body = format!(
        "<h1>Test sign-in: {}</h1><p class=\"muted\">Nothing was written: no user, wallet or session. \
         The same result, with the claims, is shown by <code>keystead oidc test-login --id {}</code> and the API.</p>{would}<ul>",
        escape(&t.status),
        escape(&t.test_id)
    );
    for c in &t.checks {
        body.push_str(&format!(
            "<li><strong>{}</strong> <code>{}</code>: {}{}</li>",
            c.status.as_str(),
            escape(&c.name),
            escape(&c.detail),
            c.hint
                .as_deref()
                .map(|h| format!(" <span class=\"muted\">Hint: {}</span>", escape(h)))
                .unwrap_or_default()
        ));
    }
    body.push_str("</ul>");
    crate::pages::page(StatusCode::OK, crate::pages::layout("Test sign-in", &body))
}

#[derive(Deserialize, Default)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[utoipa::path(get, path = "/auth/custom_oidc/callback", tag = "public",
    responses((status = 302, description = "to return_to with login_code and state, or error and error_description"),
              (status = 400, description = "error page (state invalid)")))]
pub async fn callback(
    State(s): State<Arc<SignIn>>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let params = CallbackParams {
        code: q.code,
        state: q.state,
        iss: q.iss,
        error: q.error,
        error_description: q.error_description,
    };
    let name = if https(&s) {
        BROWSER_COOKIE_HOST
    } else {
        BROWSER_COOKIE
    };
    let browser = cookie(&headers, name);
    match s.finish_login(&params, browser.as_deref()).await {
        Ok(location) => redirect(&location),
        Err(f) => match f.back_to {
            Some(back) => {
                if let Error::Internal(m) = &f.error {
                    tracing::error!(error = %m, "internal error during sign-in");
                }
                redirect(&back)
            }
            None => error_page(&f.error),
        },
    }
}

#[utoipa::path(post, path = "/v1/sessions", tag = "user",
    request_body = proto::CreateSession,
    responses((status = 200, body = proto::SessionCreated),
              (status = 400, body = proto::ErrorBody, description = "login_code_invalid or pkce_invalid"),
              (status = 401, body = proto::ErrorBody, description = "unknown publishable key")))]
pub async fn create_session(
    State(s): State<Arc<Sessions>>,
    SecretJson(req): SecretJson<proto::CreateSession>,
) -> ApiResult<Json<proto::SessionCreated>> {
    Ok(Json(
        s.create_session(&req.api_key, &req.login_code, &req.code_verifier)
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/me", tag = "user",
    responses((status = 200, body = proto::Me), (status = 401, body = proto::ErrorBody, description = "no session")))]
pub async fn me(User(u): User, State(s): State<Arc<Sessions>>) -> ApiResult<Json<proto::Me>> {
    Ok(Json(s.me(&u.session.user_id).await?))
}

#[utoipa::path(post, path = "/v1/sessions/jwt", tag = "user",
    responses((status = 200, body = proto::SessionJwt, description = "ES256, verify with /.well-known/jwks.json"),
              (status = 401, body = proto::ErrorBody, description = "no session")))]
pub async fn session_jwt(
    User(u): User,
    State(s): State<Arc<Sessions>>,
) -> ApiResult<Json<proto::SessionJwt>> {
    Ok(Json(s.session_jwt(&u).await?))
}

#[utoipa::path(delete, path = "/v1/sessions/current", tag = "user", responses((status = 204, description = "logged out")))]
pub async fn logout(User(u): User, State(s): State<Arc<Sessions>>) -> ApiResult<StatusCode> {
    s.logout(&u).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "public", responses((status = 200, body = proto::Jwks, description = "session JWT keys")))]
pub async fn jwks(State(s): State<Arc<Sessions>>) -> Result<Response, ApiError> {
    let mut resp = Json(s.session_jwks().await?).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}
