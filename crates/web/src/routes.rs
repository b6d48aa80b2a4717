//! Every route of SPEC §5 that exists so far, each with its OpenAPI entry.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use keystead_crypto::SecretString;
use keystead_proto::{self as proto, ErrorCode};
use utoipa::OpenApi;

use crate::auth::{Admin, Partner};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, SecretJson};
use keystead_domain::{Configuration, Ops, Verify};

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi_json))
        .route("/metrics", get(metrics))
        .route("/v1/admin/projects", post(create_project))
        .route("/v1/admin/projects/{id}/api-keys", post(create_api_key))
        .route("/v1/admin/developers", post(create_developer))
        .route("/v1/partner", get(get_partner).patch(patch_partner))
        .route(
            "/v1/partner/custom-oidc",
            get(get_custom_oidc)
                .put(put_custom_oidc)
                .delete(delete_custom_oidc),
        )
        .route(
            "/v1/partner/custom-oidc/client-secret",
            put(put_client_secret).delete(delete_client_secret),
        )
        .route("/v1/partner/custom-oidc/verify", post(verify_custom_oidc))
        .route(
            "/v1/partner/custom-oidc/test-logins",
            post(create_test_login),
        )
        .route(
            "/v1/partner/custom-oidc/test-logins/{id}",
            get(get_test_login),
        )
        .method_not_allowed_fallback(method_not_allowed)
        // Browser-called routes set their 405 before their CORS layer, so
        // the layer still answers preflights (OPTIONS) for them.
        .merge(crate::login::routes())
        .merge(crate::wallets::routes())
        .merge(crate::pages::routes())
        .merge(crate::portal::routes())
        .fallback(not_found)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "keystead",
        description = "Wallets and Custom OIDC sign-in, self-hosted."
    ),
    paths(
        healthz,
        readyz,
        openapi_json,
        metrics,
        create_project,
        create_api_key,
        create_developer,
        get_partner,
        patch_partner,
        get_custom_oidc,
        put_custom_oidc,
        delete_custom_oidc,
        put_client_secret,
        delete_client_secret,
        verify_custom_oidc,
        crate::login::sdk_config,
        crate::login::start,
        crate::login::callback,
        crate::pages::login_page,
        crate::login::test_start,
        create_test_login,
        get_test_login,
        crate::login::create_session,
        crate::login::me,
        crate::login::session_jwt,
        crate::login::logout,
        crate::login::jwks,
        crate::wallets::create_wallet,
        crate::wallets::list_wallets,
        crate::wallets::get_wallet,
        crate::wallets::sign_message,
        crate::wallets::sign_typed_data,
        crate::wallets::sign_transaction,
        crate::wallets::sign_raw,
        crate::wallets::add_my_wallet,
    )
)]
struct ApiDoc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

pub(crate) async fn method_not_allowed() -> Response {
    let body = proto::ErrorBody {
        error: proto::ErrorDetail {
            code: ErrorCode::InvalidRequest,
            message: "this route does not accept that HTTP method".into(),
            hint: None,
        },
    };
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = proto::Health, description = "The process is up")))]
async fn healthz() -> Json<proto::Health> {
    Json(proto::Health {
        status: "ok".into(),
    })
}

#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, body = proto::Health, description = "Database and key provider reachable"),
    (status = 503, body = proto::Health, description = "Not ready")))]
async fn readyz(State(s): State<Arc<Ops>>) -> Response {
    match s.ready().await {
        Ok(()) => Json(proto::Health {
            status: "ready".into(),
        })
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(proto::Health {
                    status: "unavailable".into(),
                }),
            )
                .into_response()
        }
    }
}

#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format")))]
async fn metrics(State(s): State<Arc<Ops>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        s.metrics_text(),
    )
        .into_response()
}

#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "This document (OpenAPI 3.1)")))]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}

#[utoipa::path(post, path = "/v1/admin/projects", tag = "admin",
    request_body = proto::CreateProject,
    responses((status = 201, body = proto::Project), (status = 400, body = proto::ErrorBody, description = "invalid input; nothing was changed"), (status = 401, body = proto::ErrorBody, description = "unauthorized")),
    security(("admin_token" = [])))]
async fn create_project(
    _: Admin,
    State(s): State<Arc<keystead_domain::Admin>>,
    ApiJson(req): ApiJson<proto::CreateProject>,
) -> ApiResult<(StatusCode, Json<proto::Project>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.create_project(&req.name).await?),
    ))
}

#[utoipa::path(post, path = "/v1/admin/projects/{id}/api-keys", tag = "admin",
    params(("id" = String, Path, description = "project id")),
    request_body = proto::CreateApiKey,
    responses((status = 201, body = proto::CreatedApiKey, description = "the secret key is shown only here"), (status = 400, body = proto::ErrorBody, description = "invalid input; nothing was changed"), (status = 401, body = proto::ErrorBody, description = "unauthorized")))]
async fn create_api_key(
    _: Admin,
    State(s): State<Arc<keystead_domain::Admin>>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<proto::CreateApiKey>,
) -> ApiResult<(StatusCode, Json<proto::CreatedApiKey>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.create_api_key(&id, &req.name).await?),
    ))
}

#[utoipa::path(post, path = "/v1/admin/developers", tag = "admin",
    request_body = proto::CreateDeveloper,
    responses((status = 201, body = proto::Developer), (status = 400, body = proto::ErrorBody, description = "invalid input; nothing was changed"), (status = 401, body = proto::ErrorBody, description = "unauthorized")))]
async fn create_developer(
    _: Admin,
    State(s): State<Arc<keystead_domain::Admin>>,
    SecretJson(req): SecretJson<proto::CreateDeveloper>,
) -> ApiResult<(StatusCode, Json<proto::Developer>)> {
    Ok((StatusCode::CREATED, Json(s.create_developer(&req).await?)))
}

#[utoipa::path(get, path = "/v1/partner", tag = "partner",
    responses((status = 200, body = proto::Partner), (status = 401, body = proto::ErrorBody, description = "unauthorized")))]
async fn get_partner(
    Partner(p): Partner,
    State(s): State<Arc<Configuration>>,
) -> Json<proto::Partner> {
    Json(s.partner_view(&p.partner))
}

#[utoipa::path(patch, path = "/v1/partner", tag = "partner",
    request_body = proto::PatchPartner,
    responses((status = 200, body = proto::Partner), (status = 400, body = proto::ErrorBody, description = "invalid input; nothing was changed"), (status = 401, body = proto::ErrorBody, description = "unauthorized")))]
async fn patch_partner(
    Partner(p): Partner,
    State(s): State<Arc<Configuration>>,
    ApiJson(req): ApiJson<proto::PatchPartner>,
) -> ApiResult<Json<proto::Partner>> {
    Ok(Json(s.patch_partner(&p, &req).await?))
}

#[utoipa::path(get, path = "/v1/partner/custom-oidc", tag = "partner",
    responses((status = 200, body = proto::CustomOidc, description = "the Custom OIDC settings (never the secret)"),
              (status = 404, body = proto::ErrorBody, description = "custom_oidc_not_configured")))]
async fn get_custom_oidc(
    Partner(p): Partner,
    State(s): State<Arc<Configuration>>,
) -> ApiResult<Json<proto::CustomOidc>> {
    Ok(Json(s.get_custom_oidc(&p).await?))
}

#[utoipa::path(put, path = "/v1/partner/custom-oidc", tag = "partner",
    request_body(content = proto::PutCustomOidc, description = "issuer, client_id, button_label required; scopes, token_endpoint_auth_method, enabled optional"),
    responses((status = 200, body = proto::CustomOidc, description = "the stored settings"), (status = 400, body = proto::ErrorBody, description = "invalid input; nothing was changed"), (status = 401, body = proto::ErrorBody, description = "unauthorized")))]
async fn put_custom_oidc(
    Partner(p): Partner,
    State(s): State<Arc<Configuration>>,
    ApiJson(req): ApiJson<proto::PutCustomOidc>,
) -> ApiResult<Json<proto::CustomOidc>> {
    Ok(Json(s.put_custom_oidc(&p, &req).await?))
}

#[utoipa::path(delete, path = "/v1/partner/custom-oidc", tag = "partner",
    responses((status = 204, description = "removed with its secret")))]
async fn delete_custom_oidc(
    Partner(p): Partner,
    State(s): State<Arc<Configuration>>,
) -> ApiResult<StatusCode> {
    s.delete_custom_oidc(&p).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/v1/partner/custom-oidc/client-secret", tag = "partner",
    request_body(content = proto::PutClientSecret, description = "write-only"),
    responses((status = 204, description = "stored, envelope-encrypted"), (status = 400, body = proto::ErrorBody, description = "invalid input; nothing was changed"), (status = 401, body = proto::ErrorBody, description = "unauthorized")))]
async fn put_client_secret(
    Partner(p): Partner,
    State(s): State<Arc<Configuration>>,
    SecretJson(req): SecretJson<proto::PutClientSecret>,
) -> ApiResult<StatusCode> {
    let secret = SecretString::from(req.client_secret);
    s.set_client_secret(&p, &secret).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/partner/custom-oidc/client-secret", tag = "partner",
    responses((status = 204, description = "removed; the config is disabled when its method needs a secret")))]
async fn delete_client_secret(
    Partner(p): Partner,
    State(s): State<Arc<Configuration>>,
) -> ApiResult<StatusCode> {
    s.clear_client_secret(&p).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/partner/custom-oidc/verify", tag = "partner",
    responses((status = 200, body = proto::Verification), (status = 429, body = proto::ErrorBody, description = "rate_limited")))]
async fn verify_custom_oidc(
    Partner(p): Partner,
    State(s): State<Arc<Verify>>,
) -> ApiResult<Json<proto::Verification>> {
    Ok(Json(s.verify_custom_oidc(&p).await?))
}

#[utoipa::path(post, path = "/v1/partner/custom-oidc/test-logins", tag = "partner",
    responses((status = 201, body = proto::TestLoginCreated),
              (status = 400, body = proto::ErrorBody, description = "a secret method without a stored secret"),
              (status = 404, body = proto::ErrorBody, description = "custom_oidc_not_configured")))]
async fn create_test_login(
    Partner(p): Partner,
    State(s): State<Arc<keystead_domain::SignIn>>,
) -> ApiResult<(StatusCode, Json<proto::TestLoginCreated>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.create_test_login(&p.partner.id).await?.created),
    ))
}

#[utoipa::path(get, path = "/v1/partner/custom-oidc/test-logins/{id}", tag = "partner",
    params(("id" = String, Path)),
    responses((status = 200, body = proto::TestLogin), (status = 404, body = proto::ErrorBody)))]
async fn get_test_login(
    Partner(p): Partner,
    State(s): State<Arc<keystead_domain::SignIn>>,
    Path(id): Path<String>,
) -> ApiResult<Json<proto::TestLogin>> {
    Ok(Json(s.test_login(&p.partner.id, &id).await?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// The document names the wire types: request and response bodies are
    /// schemas, and request bodies refuse unknown fields as the server does.
    #[test]
    fn openapi_has_the_wire_schemas() {
        let doc = serde_json::to_value(super::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        for name in [
            "CreateProject",
            "CreatedApiKey",
            "PatchPartner",
            "PutCustomOidc",
            "CustomOidc",
            "PutClientSecret",
            "Verification",
            "Check",
            "ErrorBody",
            "ErrorCode",
            "SdkConfig",
            "CreateSession",
            "SessionCreated",
            "Me",
            "SessionJwt",
            "Jwks",
            "CreateWallet",
            "WalletBody",
            "WalletList",
            "SignMessage",
            "SignTypedData",
            "SignTransaction",
            "SignRaw",
            "Signed",
            "AddWallet",
        ] {
            assert!(schemas[name].is_object(), "schema {name} missing");
        }
        // every operation's successful answer is a named schema
        let mut bare = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let ok = op["responses"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .find(|(status, _)| status.starts_with('2'));
                let Some((status, resp)) = ok else { continue };
                if status == "204" || path == "/openapi.json" || path == "/metrics" {
                    continue;
                }
                if !resp["content"].is_object() {
                    bare.push(format!("{method} {path} {status}"));
                }
            }
        }
        assert!(bare.is_empty(), "answers without a schema: {bare:?}");
        assert_eq!(schemas["CreateWallet"]["additionalProperties"], false);
        assert_eq!(schemas["CreateSession"]["additionalProperties"], false);
        let put = &doc["paths"]["/v1/partner/custom-oidc"]["put"];
        assert_eq!(
            put["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/PutCustomOidc"
        );
        assert_eq!(
            put["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/CustomOidc"
        );
        assert_eq!(schemas["PutCustomOidc"]["additionalProperties"], false);
        assert!(schemas["ErrorCode"]["enum"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("issuer_not_https")));
    }
}
