use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keystead_domain::Error;
use keystead_proto::{ErrorBody, ErrorCode};

/// The web layer's one error: a domain error rendered as SPEC §6 JSON.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError(Error::new(code, message))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let detail = self.0.detail();
        let mut retry_after = None;
        match &self.0 {
            // The detail goes to the log only; it never contains secrets
            // because domain errors are built without them.
            Error::Internal(msg) => tracing::error!(error = %msg, "internal error"),
            Error::Api { code, .. } => tracing::debug!(code = %code, "request refused"),
            Error::RateLimited { retry_after: s } => retry_after = Some(*s),
            Error::Unavailable(msg) => {
                tracing::warn!(error = %msg, "a dependency is unavailable");
                retry_after = Some(keystead_domain::UNAVAILABLE_RETRY_AFTER);
            }
        }
        let status = StatusCode::from_u16(detail.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, Json(ErrorBody { error: detail })).into_response();
        if let Some(s) = retry_after {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(s),
            );
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// 408 and 413 answered by tower layers (no body, or plain text) become
/// SPEC §6 JSON; responses that already are JSON pass unchanged.
pub(crate) async fn json_status_bodies(resp: Response) -> Response {
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return resp;
    }
    match resp.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the request body is larger than {} KiB",
                crate::MAX_REQUEST_BODY / 1024
            ),
        )
        .into_response(),
        StatusCode::REQUEST_TIMEOUT => ApiError::new(
            ErrorCode::RequestTimeout,
            "the request took too long (the body arrived too slowly, or the work did)",
        )
        .into_response(),
        _ => resp,
    }
}
