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
