//! JSON body extractors whose rejections speak SPEC §6. Two flavours of one
//! parser: [`ApiJson`] explains what is wrong (serde's message), and
//! [`SecretJson`] does not, because serde's messages can quote the offending
//! value and that body may hold a secret (client secret, password, login
//! code).

use axum::extract::{FromRequest, Request};
use keystead_proto::ErrorCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct ApiJson<T>(pub T);

pub struct SecretJson<T>(pub T);

async fn parse<S, T>(req: Request, state: &S, explain: bool) -> Result<T, ApiError>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    match axum::Json::<T>::from_request(req, state).await {
        Ok(axum::Json(v)) => Ok(v),
        // a chunked body that grew past the limit while being read
        Err(rejection) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the request body is larger than {} KiB",
                    crate::MAX_REQUEST_BODY / 1024
                ),
            ))
        }
        // the body stopped arriving (the body timeout of `[http]`)
        Err(rejection) if stalled(&rejection) => Err(ApiError::new(
            ErrorCode::RequestTimeout,
            "the request body arrived too slowly",
        )),
        Err(rejection) => Err(ApiError::new(
            ErrorCode::InvalidRequest,
            if explain {
                format!("the request body is not valid: {}", rejection.body_text())
            } else {
                "the body must be a JSON object with the documented fields (see /openapi.json), sent with Content-Type: application/json".to_string()
            },
        )),
    }
}

fn stalled(rejection: &axum::extract::rejection::JsonRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = e.source();
    }
    false
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        parse(req, state, true).await.map(ApiJson)
    }
}

impl<S, T> FromRequest<S> for SecretJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        parse(req, state, false).await.map(SecretJson)
    }
}
