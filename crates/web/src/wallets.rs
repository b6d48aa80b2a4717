//! Wallet routes in the shapes of Para's REST API v1 (SPEC §5 "Wallets").
//! Every route is rate-limited per partner in the `WalletCaller` extractor.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use keystead_domain::wallets::{Caller, SignKind};
use keystead_domain::Wallets;
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
    request_body(content = serde_json::Value, description = "{type, userIdentifier, userIdentifierType, cosmosPrefix?}; Idempotency-Key header optional"),
    responses((status = 201, description = "{wallet}"), (status = 409, description = "wallet_exists"), (status = 429, description = "rate_limited")))]
pub async fn create_wallet(
    WalletCaller(c): WalletCaller,
    State(s): State<Wallets>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Response> {
    let p = partner_only(c)?;
    let key = headers
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap_or("\u{1}"));
    let (status, body, replayed) = s.create_pregenerated_wallet(&p, &body, key).await?;
    let mut resp = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED),
        Json(body),
    )
        .into_response();
    if replayed {
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
    responses((status = 200, description = "{wallets: [...]}")))]
pub async fn list_wallets(
    WalletCaller(c): WalletCaller,
    State(s): State<Wallets>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let p = partner_only(c)?;
    Ok(Json(
        s.list_wallets(&p, &q.user_identifier, &q.user_identifier_type)
            .await?,
    ))
}

#[utoipa::path(get, path = "/v1/wallets/{id}", tag = "wallets",
    params(("id" = String, Path)), responses((status = 200, description = "{wallet}"), (status = 404, description = "not_found")))]
pub async fn get_wallet(
    WalletCaller(c): WalletCaller,
    State(s): State<Wallets>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(s.get_wallet(&c, &id).await?))
}

async fn sign(
    c: Caller,
    s: AppState,
    id: String,
    kind: SignKind,
    body: Value,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        s.services
            .wallets
            .sign_with_wallet(&c, &id, kind, &body)
            .await?,
    ))
}

#[utoipa::path(post, path = "/v1/wallets/{id}/sign-message", tag = "wallets", params(("id" = String, Path)),
    request_body(content = serde_json::Value, description = "{message}"),
    responses((status = 200, description = "{signature}: EVM EIP-191 0x-hex r‖s‖v; SOLANA base58; COSMOS ADR-036 base64"),
              (status = 403, description = "claimed or user wallet"), (status = 404, description = "not yours")))]
pub async fn sign_message(
    WalletCaller(c): WalletCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    sign(c, s, id, SignKind::Message, b).await
}

#[utoipa::path(post, path = "/v1/wallets/{id}/sign-typed-data", tag = "wallets", params(("id" = String, Path)),
    request_body(content = serde_json::Value, description = "{typedData}"), responses((status = 200, description = "{signature}")))]
pub async fn sign_typed_data(
    WalletCaller(c): WalletCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    sign(c, s, id, SignKind::TypedData, b).await
}

#[utoipa::path(post, path = "/v1/wallets/{id}/sign-transaction", tag = "wallets", params(("id" = String, Path)),
    request_body(content = serde_json::Value, description = "{transaction}"),
    responses((status = 200, description = "EVM {signedTransaction}; SOLANA {signature}")))]
pub async fn sign_transaction(
    WalletCaller(c): WalletCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    sign(c, s, id, SignKind::Transaction, b).await
}

#[utoipa::path(post, path = "/v1/wallets/{id}/sign-raw", tag = "wallets", params(("id" = String, Path)),
    request_body(content = serde_json::Value, description = "{data}"), responses((status = 200, description = "{signature}")))]
pub async fn sign_raw(
    WalletCaller(c): WalletCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    sign(c, s, id, SignKind::Raw, b).await
}

#[utoipa::path(post, path = "/v1/me/wallets", tag = "user",
    request_body(content = serde_json::Value, description = "{type, cosmosPrefix?}"),
    responses((status = 201, description = "{wallet} created"), (status = 200, description = "{wallet} already there")))]
pub async fn add_my_wallet(
    User(u): User,
    State(s): State<Wallets>,
    ApiJson(b): ApiJson<Value>,
) -> ApiResult<Response> {
    s.rate_check(keystead_domain::wallets::RateBucket::User(
        &u.session.user_id,
    ))?;
    let (created, body) = s.add_user_wallet(&u, &b).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(body)).into_response())
}
