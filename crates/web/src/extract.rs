//! A JSON body extractor whose rejections speak SPEC §6.

use axum::extract::{FromRequest, Request};
use keystead_proto::ErrorCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("the request body is not valid: {}", rejection.body_text()),
            )),
        }
    }
}

/// Like [`ApiJson`] for bodies holding a secret: serde's messages can quote
/// the offending value, so the rejection says nothing about the content.
pub struct SecretJson<T>(pub T);

impl<S, T> FromRequest<S> for SecretJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(SecretJson(v)),
            Err(_) => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "the body must be a JSON object with the documented fields (see /openapi.json), sent with Content-Type: application/json",
            )),
        }
    }
}
