//! A small typed client of keystead's HTTP API over the `proto` wire
//! types: the CLI, the integration tests and the bench speak to a server
//! through it, so a renamed field is a compile error on both sides.
//!
//! The bearer credential (admin token, secret key or session token) is a
//! [`SecretString`] that never shows in `Debug`. Errors keep the API's
//! `{code, message, hint}` ([`ClientError::Api`]).

use keystead_proto::{self as proto, ErrorBody, ErrorDetail};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or the connection broke.
    #[error("cannot reach the keystead server at {server}: {detail}")]
    Transport { server: String, detail: String },
    /// The API refused the request: its status and error body.
    #[error("HTTP {status}: {}: {}", .error.code.as_str(), .error.message)]
    Api { status: u16, error: ErrorDetail },
    /// The answer is not the documented body.
    #[error("HTTP {status}: unexpected response body: {detail}")]
    Decode { status: u16, detail: String },
}

impl ClientError {
    /// The API's error code, if the API answered with one.
    pub fn code(&self) -> Option<proto::ErrorCode> {
        match self {
            ClientError::Api { error, .. } => Some(error.code),
            _ => None,
        }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A raw answer: status and JSON body (`Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Raw {
    pub status: u16,
    pub body: Value,
}

/// A client for one server, with or without a bearer credential.
#[derive(Clone)]
pub struct Client {
    server: String,
    http: reqwest::Client,
    bearer: Option<SecretString>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.server)
            .field("bearer", &self.bearer.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl Client {
    /// `server` without a trailing slash, e.g. `http://127.0.0.1:8080`.
    /// The caller builds `http` (TLS roots, timeouts, no redirects).
    pub fn new(server: impl Into<String>, http: reqwest::Client) -> Self {
        Client {
            server: server.into().trim_end_matches('/').to_string(),
            http,
            bearer: None,
        }
    }

    /// The same client sending `Authorization: Bearer <credential>`.
    pub fn with_bearer(&self, credential: SecretString) -> Self {
        Client {
            bearer: Some(credential),
            ..self.clone()
        }
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// Any request; the status and the JSON body as they came, errors
    /// included (the CLI's `--json` prints them as they are).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        header: Option<(&str, &str)>,
    ) -> Result<Raw> {
        let mut req = self.http.request(method, format!("{}{path}", self.server));
        if let Some(b) = &self.bearer {
            req = req.bearer_auth(b.expose_secret());
        }
        if let Some((k, v)) = header {
            req = req.header(k, v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| self.transport(&e))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| self.transport(&e))?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok(Raw { status, body })
    }

    fn transport(&self, e: &reqwest::Error) -> ClientError {
        let mut last: &dyn std::error::Error = e;
        while let Some(s) = last.source() {
            last = s;
        }
        ClientError::Transport {
            server: self.server.clone(),
            detail: last.to_string(),
        }
    }

    /// A typed request: the body of a 2xx answer as `T`, else the API's
    /// error.
    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        header: Option<(&str, &str)>,
    ) -> Result<T> {
        let body = body
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| ClientError::Decode {
                status: 0,
                detail: e.to_string(),
            })?;
        let raw = self.raw(method, path, body.as_ref(), header).await?;
        typed(raw)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.send::<(), T>(Method::GET, path, None, None).await
    }

    async fn no_content(&self, method: Method, path: &str) -> Result<()> {
        let raw = self.raw(method, path, None, None).await?;
        if (200..300).contains(&raw.status) {
            Ok(())
        } else {
            Err(api_error(raw))
        }
    }

    // ---- operator (admin token) ------------------------------------------

    pub async fn create_project(&self, req: &proto::CreateProject) -> Result<proto::Project> {
        self.send(Method::POST, "/v1/admin/projects", Some(req), None)
            .await
    }

    pub async fn create_api_key(
        &self,
        project_id: &str,
        req: &proto::CreateApiKey,
    ) -> Result<proto::CreatedApiKey> {
        let path = format!("/v1/admin/projects/{}/api-keys", segment(project_id));
        self.send(Method::POST, &path, Some(req), None).await
    }

    // ---- partner (secret key) --------------------------------------------

    pub async fn partner(&self) -> Result<proto::Partner> {
        self.get("/v1/partner").await
    }

    pub async fn patch_partner(&self, req: &proto::PatchPartner) -> Result<proto::Partner> {
        self.send(Method::PATCH, "/v1/partner", Some(req), None)
            .await
    }

    pub async fn custom_oidc(&self) -> Result<proto::CustomOidc> {
        self.get("/v1/partner/custom-oidc").await
    }

    pub async fn put_custom_oidc(&self, req: &proto::PutCustomOidc) -> Result<proto::CustomOidc> {
        self.send(Method::PUT, "/v1/partner/custom-oidc", Some(req), None)
            .await
    }

    pub async fn set_client_secret(&self, secret: &SecretString) -> Result<()> {
        let req = proto::PutClientSecret {
            client_secret: secret.expose_secret().to_string(),
        };
        let body = serde_json::to_value(&req).map_err(|e| ClientError::Decode {
            status: 0,
            detail: e.to_string(),
        })?;
        let raw = self
            .raw(
                Method::PUT,
                "/v1/partner/custom-oidc/client-secret",
                Some(&body),
                None,
            )
            .await?;
        if (200..300).contains(&raw.status) {
            Ok(())
        } else {
            Err(api_error(raw))
        }
    }

    pub async fn verify(&self) -> Result<proto::Verification> {
        self.send::<(), _>(Method::POST, "/v1/partner/custom-oidc/verify", None, None)
            .await
    }

    // ---- public and end user ---------------------------------------------

    pub async fn sdk_config(&self, publishable_key: &str) -> Result<proto::SdkConfig> {
        self.get(&format!(
            "/v1/sdk/config?api_key={}",
            segment(publishable_key)
        ))
        .await
    }

    pub async fn create_session(
        &self,
        req: &proto::CreateSession,
    ) -> Result<proto::SessionCreated> {
        self.send(Method::POST, "/v1/sessions", Some(req), None)
            .await
    }

    pub async fn me(&self) -> Result<proto::Me> {
        self.get("/v1/me").await
    }

    pub async fn session_jwt(&self) -> Result<proto::SessionJwt> {
        self.send::<(), _>(Method::POST, "/v1/sessions/jwt", None, None)
            .await
    }

    pub async fn logout(&self) -> Result<()> {
        self.no_content(Method::DELETE, "/v1/sessions/current")
            .await
    }

    pub async fn jwks(&self) -> Result<proto::Jwks> {
        self.get("/.well-known/jwks.json").await
    }

    // ---- wallets ----------------------------------------------------------

    pub async fn create_wallet(
        &self,
        req: &proto::CreateWallet,
        idempotency_key: Option<&str>,
    ) -> Result<proto::WalletBody> {
        let header = idempotency_key.map(|k| ("Idempotency-Key", k));
        self.send(Method::POST, "/v1/wallets", Some(req), header)
            .await
    }

    pub async fn wallet(&self, id: &str) -> Result<proto::WalletBody> {
        self.get(&format!("/v1/wallets/{}", segment(id))).await
    }

    pub async fn wallets_of(
        &self,
        identifier_type: &str,
        identifier: &str,
    ) -> Result<proto::WalletList> {
        self.get(&format!(
            "/v1/wallets?userIdentifierType={}&userIdentifier={}",
            segment(identifier_type),
            segment(identifier)
        ))
        .await
    }

    pub async fn sign_message(&self, id: &str, message: &str) -> Result<proto::Signed> {
        let req = proto::SignMessage {
            message: Some(Value::String(message.to_string())),
        };
        let path = format!("/v1/wallets/{}/sign-message", segment(id));
        self.send(Method::POST, &path, Some(&req), None).await
    }

    pub async fn add_my_wallet(&self, req: &proto::AddWallet) -> Result<proto::WalletBody> {
        self.send(Method::POST, "/v1/me/wallets", Some(req), None)
            .await
    }
}

/// `T` from a 2xx answer, else the error it carries.
fn typed<T: DeserializeOwned>(raw: Raw) -> Result<T> {
    if !(200..300).contains(&raw.status) {
        return Err(api_error(raw));
    }
    serde_json::from_value(raw.body).map_err(|e| ClientError::Decode {
        status: raw.status,
        detail: e.to_string(),
    })
}

fn api_error(raw: Raw) -> ClientError {
    match serde_json::from_value::<ErrorBody>(raw.body) {
        Ok(b) => ClientError::Api {
            status: raw.status,
            error: b.error,
        },
        Err(e) => ClientError::Decode {
            status: raw.status,
            detail: format!("no error body ({e})"),
        },
    }
}

/// A path segment or query value, percent-encoded.
/// One path segment, percent-encoded (unreserved characters kept).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
