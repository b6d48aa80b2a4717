//! HTTP: thin axum handlers that extract, call one domain service (each
//! handler takes the one it needs from the state, [`AppState`]) and map
//! the result. Errors become `{"error": {code, message, hint?}}` in one
//! place ([`error`]); authentication lives in extractors ([`auth`]).

mod auth;
mod error;
mod extract;
mod login;
mod pages;
mod portal;
mod routes;
mod serve;
mod wallets;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::http::StatusCode;
use axum::http::{header, HeaderValue, Request};
use axum::Router;
use keystead_domain::{
    Admin, Configuration, Ops, Portal, Services, Sessions, SignIn, Verify, Wallets,
};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use routes::openapi;
pub use serve::{serve, HttpLimits};

/// The router's state: every service. A handler extracts only its own
/// (`State<Arc<SignIn>>`, `State<Arc<Wallets>>`, …).
#[derive(Clone)]
pub struct AppState {
    /// Shared: axum clones the state for every request.
    pub services: Arc<Services>,
}

macro_rules! service_state {
    ($($ty:ident => $field:ident),* $(,)?) => {$(
        impl FromRef<AppState> for Arc<$ty> {
            fn from_ref(s: &AppState) -> Self {
                s.services.$field.clone()
            }
        }
    )*};
}

service_state! {
    Admin => admin,
    Configuration => configuration,
    Verify => verify,
    SignIn => sign_in,
    Sessions => sessions,
    Wallets => wallets,
    Ops => ops,
    Portal => portal,
}

/// Counts every routed request by its route template, method and status,
/// with its duration (`GET /metrics`).
async fn count_request(
    axum::extract::State(s): axum::extract::State<AppState>,
    path: Option<axum::extract::MatchedPath>,
    req: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    // a fixed vocabulary: any other method is "other"
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "HEAD" => "HEAD",
        _ => "other",
    };
    let resp = next.run(req).await;
    let route = path.as_ref().map_or("other", |p| p.as_str());
    s.services.ops.observe_request(
        route,
        method,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

/// Largest request body accepted (SPEC §6: 413 `payload_too_large`).
pub const MAX_REQUEST_BODY: usize = 64 * 1024;

pub fn router(services: Services, limits: &HttpLimits) -> Router {
    let state = AppState {
        services: Arc::new(services),
    };
    routes::routes()
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_request,
        ))
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(MAX_REQUEST_BODY))
        .layer(RequestBodyTimeoutLayer::new(limits.header_timeout))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        // The layers above answer 408/413 without a body: give them the
        // JSON error shape every other error has.
        .layer(axum::middleware::map_response(error::json_status_bodies))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(
            // The path only: query strings carry login codes and states.
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
                })
                .on_response(
                    |res: &axum::http::Response<_>, latency: Duration, _span: &tracing::Span| {
                        tracing::info!(status = res.status().as_u16(), latency_ms = latency.as_millis() as u64, "response");
                    },
                ),
        )
}
