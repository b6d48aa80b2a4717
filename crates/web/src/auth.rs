//! Who is calling: the operator (admin token) or a partner (secret key as
//! `X-API-Key` or `Authorization: Bearer`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use keystead_domain::PartnerAuth;
use keystead_proto::ErrorCode;

use crate::error::ApiError;
use crate::AppState;

fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A credential that must be present; `what` says how to send it.
fn required<'a>(credential: Option<&'a str>, what: &str) -> Result<&'a str, ApiError> {
    credential.ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, format!("{what} is required")))
}

pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = required(
            bearer(parts),
            "the admin token, as Authorization: Bearer <token>,",
        )?;
        state.services.admin.check_admin_token(token).await?;
        Ok(Admin)
    }
}

pub struct Partner(pub PartnerAuth);

impl FromRequestParts<AppState> for Partner {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = parts
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .or_else(|| bearer(parts));
        let key = required(
            key,
            "a secret key (X-API-Key: sk_… or Authorization: Bearer sk_…)",
        )?;
        Ok(Partner(
            state
                .services
                .configuration
                .authenticate_secret_key(key)
                .await?,
        ))
    }
}

/// An end user's session (`Authorization: Bearer kst_…`).
pub struct User(pub keystead_domain::sessions::UserSession);

impl FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = required(bearer(parts), "a session token (Authorization: Bearer …)")?;
        Ok(User(
            state.services.sessions.authenticate_session(token).await?,
        ))
    }
}

/// A wallet route's caller: a partner (secret key) or an end user (session).
pub struct WalletCaller(pub keystead_domain::wallets::Caller);

impl FromRequestParts<AppState> for WalletCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        use keystead_domain::wallets::Caller;
        let has_api_key = parts.headers.contains_key("x-api-key");
        let caller = match bearer(parts) {
            Some(t) if t.starts_with("kst_") && !has_api_key => {
                Caller::User(state.services.sessions.authenticate_session(t).await?)
            }
            _ => Caller::Partner(Partner::from_request_parts(parts, state).await?.0),
        };
        state
            .services
            .wallets
            .rate_check(caller.rate_bucket())
            .await?;
        Ok(WalletCaller(caller))
    }
}
