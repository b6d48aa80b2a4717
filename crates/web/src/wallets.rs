//! Wallet routes in the shapes of Para's REST API v1 (SPEC §5 "Wallets").
//! Every route is rate-limited per partner in the `WalletCaller` extractor.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use keystead_domain::wallets::{Caller, SignKind};
use keystead_domain::Wallets;
use keystead_proto as proto;
use keystead_proto::ErrorCode;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{User, WalletCaller};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/wallets", post(create_wallet).get(list_wallets))
        .route("/v1/wallets/{id}", get(get_wallet))
        .route("/v1/wallets/{id}/sign-message", post(sign_message))
        .route("/v1/wallets/{id}/sign-typed-data", post(sign_typed_data))
        .route("/v1/wallets/{id}/sign-transaction", post(sign_transaction))
        .route("/v1/wallets/{id}/sign-raw", post(sign_raw))
        .route("/v1/me/wallets", post(add_my_wallet))
        // The JSON 405 first, then CORS around it (preflights are OPTIONS).
        .method_not_allowed_fallback(crate::routes::method_not_allowed)
        // Browsers call these with a session token (never a secret key:
        // X-API-Key is not an allowed header), so any origin is fine.
        .layer(crate::login::cors())
}

fn partner_only(c: Caller) -> Result<keystead_domain::PartnerAuth, ApiError> {
    match c {
        Caller::Partner(p) => Ok(p),
        Caller::User(_) => Err(ApiError::new(
            ErrorCode::Forbidden,
            "this route is for the partner's secret key",
        )),
    }
}

#[utoipa::path(post, path = "/v1/wallets", tag = "wallets",
    request_body(content = proto::CreateWallet, description = "Idempotency-Key header optional"),
    responses((status = 201, body = proto::WalletBody), (status = 400, body = proto::ErrorBody),
              (status = 409, body = proto::ErrorBody, description = "wallet_exists"),
              (status = 429, body = proto::ErrorBody, description = "rate_limited")))]
pub async fn create_wallet(
    WalletCaller(c): WalletCaller,
    State(s): State<Arc<Wallets>>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<proto::CreateWallet>,
) -> ApiResult<Response> {
    let p = partner_only(c)?;
    let key = headers
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap_or("\u{1}"));
    let created = s.create_pregenerated_wallet(&p, &req, key).await?;
    let mut resp = (StatusCode::CREATED, Json(created.body)).into_response();
    if created.replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(resp)
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(rename = "userIdentifier", default)]
    user_identifier: String,
    #[serde(rename = "userIdentifierType", default)]
    user_identifier_type: String,
}

#[utoipa::path(get, path = "/v1/wallets", tag = "wallets",
    params(("userIdentifier" = String, Query), ("userIdentifierType" = String, Query)),
    responses((status = 200, body = proto::WalletList), (status = 400, body = proto::ErrorBody)))]
pub async fn list_wallets(
    WalletCaller(c): WalletCaller,
    State(s): State<Arc<Wallets>>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<proto::WalletList>> {
    let p = partner_only(c)?;
    Ok(Json(
        s.list_wallets(&p, &q.user_identifier, &q.user_identifier_type)
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/wallets/{id}", tag = "wallets",
    params(("id" = String, Path)), responses((status = 200, body = proto::WalletBody), (status = 404, body = proto::ErrorBody, description = "not_found")))]
pub async fn get_wallet(
    WalletCaller(c): WalletCaller,
    State(s): State<Arc<Wallets>>,
    Path(id): Path<String>,
) -> ApiResult<Json<proto::WalletBody>> {
    Ok(Json(s.get_wallet(&c, &id).await?))
}

async fn sign(
    c: Caller,
    s: Arc<Wallets>,
    id: String,
    kind: SignKind,
    input: Option<Value>,
) -> ApiResult<Json<proto::Signed>> {
    Ok(Json(
        s.sign_with_wallet(&c, &id, kind, input.as_ref()).await?,
    ))
}

#[utoipa::path(post, path = "/v1/wallets/{id}/sign-message", tag = "wallets", params(("id" = String, Path)),
    request_body = proto::SignMessage,
    responses((status = 200, body = proto::Signed, description = "EVM EIP-191 0x-hex r‖s‖v; SOLANA base58; COSMOS ADR-036 base64"),
              (status = 403, description = "claimed or user wallet"), (status = 404, description = "not yours")))]
pub async fn sign_message(
    WalletCaller(c): WalletCaller,
    State(s): State<Arc<Wallets>>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<proto::SignMessage>,
) -> ApiResult<Json<proto::Signed>> {
    sign(c, s, id, SignKind::Message, b.message).await
}

#[utoipa::path(post, path = "/v1/wallets/{id}/sign-typed-data", tag = "wallets", params(("id" = String, Path)),
    request_body = proto::SignTypedData, responses((status = 200, body = proto::Signed), (status = 400, body = proto::ErrorBody)))]
pub async fn sign_typed_data(
    WalletCaller(c): WalletCaller,
    State(s): State<Arc<Wallets>>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<proto::SignTypedData>,
) -> ApiResult<Json<proto::Signed>> {
    sign(c, s, id, SignKind::TypedData, b.typed_data).await
}

#[utoipa::path(post, path = "/v1/wallets/{id}/sign-transaction", tag = "wallets", params(("id" = String, Path)),
    request_body = proto::SignTransaction,
    responses((status = 200, body = proto::Signed, description = "EVM {signedTransaction}; SOLANA {signature}"), (status = 400, body = proto::ErrorBody)))]
pub async fn sign_transaction(
    WalletCaller(c): WalletCaller,
    State(s): State<Arc<Wallets>>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<proto::SignTransaction>,
) -> ApiResult<Json<proto::Signed>> {
    sign(c, s, id, SignKind::Transaction, b.transaction).await
}

#[utoipa::path(post, path = "/v1/wallets/{id}/sign-raw", tag = "wallets", params(("id" = String, Path)),
    request_body = proto::SignRaw, responses((status = 200, body = proto::Signed), (status = 400, body = proto::ErrorBody)))]
pub async fn sign_raw(
    WalletCaller(c): WalletCaller,
    State(s): State<Arc<Wallets>>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<proto::SignRaw>,
) -> ApiResult<Json<proto::Signed>> {
    sign(c, s, id, SignKind::Raw, b.data).await
}

#[utoipa::path(post, path = "/v1/me/wallets", tag = "user",
    request_body = proto::AddWallet,
    responses((status = 201, body = proto::WalletBody, description = "created"), (status = 200, body = proto::WalletBody, description = "already there"),
              (status = 400, body = proto::ErrorBody)))]
pub async fn add_my_wallet(
    User(u): User,
    State(s): State<Arc<Wallets>>,
    ApiJson(b): ApiJson<proto::AddWallet>,
) -> ApiResult<Response> {
    s.rate_check(keystead_domain::wallets::RateBucket::User(
        &u.session.user_id,
    ))
    .await?;
    let (created, body) = s.add_user_wallet(&u, &b).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(body)).into_response())
}
