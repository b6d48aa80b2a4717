//! Wallets (SPEC §5 "Wallets"): Para-shaped REST for pregenerated wallets
//! (Bring Your Own Auth), users' extra wallets, signing for the one caller
//! allowed to, claiming by verified email, and the per-partner rate limit.
//!
//! Who may use a wallet: the partner that pregenerated it while nobody has
//! claimed it; otherwise only the owning user's session. Callers that are
//! not related to the wallet at all get 404, never a hint that it exists.

use keystead_model::UserIdentifier;
use keystead_proto::{self as proto, ErrorCode};
use keystead_store::{RateStore, SecretStore, WalletStore};
use keystead_store::{WalletInsert, WalletRow, PURPOSE_WALLET_KEY};
use keystead_wallet::{SignRequest, Signed, WalletType};
use serde_json::Value;
use sha2::{Digest, Sha256};

use std::sync::Arc;

use keystead_crypto::KeyProvider;
use keystead_store::Store;

use crate::configuration::PartnerAuth;
use crate::error::{Error, Result};
use crate::limits::SharedLimiter;
use crate::metrics::Metrics;
use crate::sessions::UserSession;
use crate::views::{wallet_body, wallet_view};
use crate::Clock;

pub const IDEMPOTENCY_WINDOW_SECS: i64 = 24 * 3600;
/// Who is calling a wallet route.
#[derive(Debug, Clone)]
pub enum Caller {
    Partner(PartnerAuth),
    User(UserSession),
}

/// Whose allowance a wallet call spends.
#[derive(Debug, Clone, Copy)]
pub enum RateBucket<'a> {
    /// A partner's backend, by partner id.
    Partner(&'a str),
    /// An end user, by user id.
    User(&'a str),
}

impl Caller {
    pub fn rate_bucket(&self) -> RateBucket<'_> {
        match self {
            Caller::Partner(p) => RateBucket::Partner(&p.partner.id),
            Caller::User(u) => RateBucket::User(&u.session.user_id),
        }
    }
}

/// Which signing route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignKind {
    Message,
    TypedData,
    Transaction,
    Raw,
}

impl SignKind {
    /// The request body's field that holds what to sign.
    pub fn field(self) -> &'static str {
        match self {
            SignKind::Message => "message",
            SignKind::TypedData => "typedData",
            SignKind::Transaction => "transaction",
            SignKind::Raw => "data",
        }
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidRequest, msg)
}

fn not_found() -> Error {
    Error::new(ErrorCode::NotFound, "no such wallet")
}

/// Wallets: the store, the key provider (wallet keys are sealed), the
/// per-caller rate limit, metrics and the clock.
#[derive(Clone)]
pub struct Wallets<S = Store> {
    store: S,
    keys: Arc<dyn KeyProvider>,
    limiter: Arc<SharedLimiter>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
}

impl<S: WalletStore + SecretStore + RateStore> Wallets<S> {
    pub(crate) fn new(
        store: S,
        keys: Arc<dyn KeyProvider>,
        limiter: Arc<SharedLimiter>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Wallets {
            store,
            keys,
            limiter,
            metrics,
            clock,
        }
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The wallet routes' rate limit. A partner's backend (secret key) and
    /// each of its end users (session) have buckets of their own, so one
    /// user cannot starve the partner or the partner's other users.
    pub async fn rate_check(&self, bucket: RateBucket<'_>) -> Result<()> {
        let bucket = match bucket {
            RateBucket::Partner(id) => format!("p {id}"),
            RateBucket::User(id) => format!("u {id}"),
        };
        self.limiter
            .check(&self.store, &bucket)
            .await
            .map_err(|after| self.metrics.rate_limited(after))
    }

    async fn new_wallet_row(
        &self,
        kind: WalletType,
        prefix: Option<&str>,
        partner_id: &str,
        user_id: Option<&str>,
        identifier: Option<&UserIdentifier>,
    ) -> Result<(WalletRow, keystead_crypto::Sealed)> {
        let fresh = keystead_wallet::generate(kind, prefix).map_err(|e| invalid(e.to_string()))?;
        let id = keystead_crypto::random_token("wal_");
        let sealed = keystead_crypto::seal(
            self.keys.as_ref(),
            &id,
            PURPOSE_WALLET_KEY,
            fresh.private_key.bytes(),
        )
        .await?;
        let row = WalletRow {
            id,
            partner_id: partner_id.to_string(),
            user_id: user_id.map(str::to_string),
            kind,
            address: fresh.address,
            public_key: fresh.public_key,
            user_identifier: identifier.map(|i| i.value().to_string()),
            user_identifier_type: identifier.map(UserIdentifier::kind),
            status: "READY".into(),
            created_at: self.now(),
        };
        Ok((row, sealed))
    }

    /// `POST /v1/wallets`; replays the first response of an
    /// `Idempotency-Key` for 24 h.
    pub async fn create_pregenerated_wallet(
        &self,
        p: &PartnerAuth,
        req: &proto::CreateWallet,
        idem_key: Option<&str>,
    ) -> Result<WalletCreated> {
        let kind = WalletType::try_from(req.kind.as_deref().unwrap_or(""))?;
        let identifier = UserIdentifier::new(
            req.user_identifier_type.as_deref().unwrap_or(""),
            req.user_identifier.as_deref().unwrap_or(""),
        )?;
        let prefix = req.cosmos_prefix.as_deref();
        if prefix.is_some() && kind != WalletType::Cosmos {
            return Err(invalid("cosmosPrefix is only for COSMOS wallets"));
        }
        let now = self.now();
        // The fields serialize in the order of their names, as a JSON
        // object's keys did in earlier versions: the same request hashes
        // the same.
        let request_hash = hex::encode(Sha256::digest(
            serde_json::to_string(req)
                .map_err(Error::internal)?
                .as_bytes(),
        ));
        if let Some(key) = idem_key {
            if key.is_empty() || key.len() > 255 || key.chars().any(char::is_control) {
                return Err(invalid(
                    "Idempotency-Key must be 1–255 printable characters",
                ));
            }
            if let Some(r) = self
                .store
                .idempotent_response(&p.partner.id, key, now - IDEMPOTENCY_WINDOW_SECS)
                .await?
            {
                return replay(r, &request_hash);
            }
        }
        let (row, sealed) = self
            .new_wallet_row(kind, prefix, &p.partner.id, None, Some(&identifier))
            .await?;
        let response = wallet_body(&row);
        let response_text = serde_json::to_string(&response).map_err(Error::internal)?;
        let idem = idem_key.map(|k| {
            (
                p.partner.id.as_str(),
                k,
                request_hash.as_str(),
                201i64,
                response_text.as_str(),
            )
        });
        match self.store.insert_wallet(&row, &sealed, idem, now).await? {
            WalletInsert::Created => {
                self.metrics.count_wallet(kind);
                Ok(WalletCreated {
                    body: response,
                    replayed: false,
                })
            }
            WalletInsert::Replay(r) => replay(r, &request_hash),
            WalletInsert::Exists => Err(Error::new(
                ErrorCode::WalletExists,
                format!(
                    "a {} wallet for this {} already exists",
                    kind.as_str(),
                    identifier.kind().as_str()
                ),
            )),
        }
    }

    /// Loads a wallet the caller may see; 404 for anything else.
    async fn visible_wallet(&self, caller: &Caller, id: &str) -> Result<WalletRow> {
        let w = self.store.wallet(id).await?.ok_or_else(not_found)?;
        let visible = match caller {
            Caller::Partner(p) => w.partner_id == p.partner.id,
            Caller::User(u) => w.user_id.as_deref() == Some(u.session.user_id.as_str()),
        };
        if visible {
            Ok(w)
        } else {
            Err(not_found())
        }
    }

    pub async fn get_wallet(&self, caller: &Caller, id: &str) -> Result<proto::WalletBody> {
        Ok(wallet_body(&self.visible_wallet(caller, id).await?))
    }

    pub async fn list_wallets(
        &self,
        p: &PartnerAuth,
        identifier: &str,
        id_type: &str,
    ) -> Result<proto::WalletList> {
        let identifier = UserIdentifier::new(id_type, identifier)?;
        let rows = self
            .store
            .wallets_by_identifier(&p.partner.id, identifier.kind(), identifier.value())
            .await?;
        Ok(proto::WalletList {
            wallets: rows.iter().map(wallet_view).collect(),
        })
    }

    pub async fn sign_with_wallet(
        &self,
        caller: &Caller,
        id: &str,
        kind: SignKind,
        input: Option<&Value>,
    ) -> Result<proto::Signed> {
        let w = self.visible_wallet(caller, id).await?;
        if let Caller::Partner(_) = caller {
            if w.user_id.is_some() {
                return Err(Error::new(
                    ErrorCode::Forbidden,
                    "this wallet belongs to a signed-in user (created at login or claimed); only the user's session can sign with it",
                ));
            }
        }
        let wallet_kind = w.kind;
        let name = kind.field();
        let field = || input.ok_or_else(|| invalid(format!("{name} is required")));
        let as_str = || -> Result<&str> {
            input
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("{name} is required and must be a string")))
        };
        let req = match kind {
            SignKind::Message => SignRequest::Message(as_str()?),
            SignKind::TypedData => SignRequest::TypedData(field()?),
            SignKind::Transaction => SignRequest::Transaction(field()?),
            SignKind::Raw => SignRequest::Raw(as_str()?),
        };
        let sealed = self
            .store
            .secret(&w.id, PURPOSE_WALLET_KEY)
            .await?
            .ok_or_else(|| Error::internal("the wallet's sealed key is missing"))?;
        let plain =
            keystead_crypto::open(self.keys.as_ref(), &w.id, PURPOSE_WALLET_KEY, &sealed).await?;
        let key = keystead_wallet::PrivateKey::from_bytes(&plain);
        drop(plain);
        let signed =
            keystead_wallet::sign(wallet_kind, &key, &w.address, &req).map_err(|e| match e {
                keystead_wallet::WalletError::Invalid(m) => invalid(m),
                other => Error::internal(other),
            })?;
        drop(key);
        self.metrics.inc(
            "keystead_signatures_total",
            format!("type=\"{}\",kind=\"{kind:?}\"", wallet_kind.as_str()),
        );
        Ok(match signed {
            Signed::Signature(signature) => proto::Signed::Signature { signature },
            Signed::SignedTransaction(t) => proto::Signed::Transaction {
                signed_transaction: t,
            },
        })
    }

    /// `POST /v1/me/wallets`: one own wallet per type; `(created, body)`.
    pub async fn add_user_wallet(
        &self,
        s: &UserSession,
        req: &proto::AddWallet,
    ) -> Result<(bool, proto::WalletBody)> {
        let kind = WalletType::try_from(req.kind.as_deref().unwrap_or(""))?;
        let prefix = req.cosmos_prefix.as_deref();
        if prefix.is_some() && kind != WalletType::Cosmos {
            return Err(invalid("cosmosPrefix is only for COSMOS wallets"));
        }
        let user = &s.session.user_id;
        if let Some(w) = self.store.own_wallet_of_type(user, kind).await? {
            return Ok((false, wallet_body(&w)));
        }
        let (row, sealed) = self
            .new_wallet_row(kind, prefix, &s.session.partner_id, Some(user), None)
            .await?;
        match self
            .store
            .insert_wallet(&row, &sealed, None, self.now())
            .await?
        {
            WalletInsert::Created => {
                self.metrics.count_wallet(kind);
                Ok((true, wallet_body(&row)))
            }
            _ => {
                let w = self
                    .store
                    .own_wallet_of_type(user, kind)
                    .await?
                    .ok_or_else(|| Error::internal("wallet vanished after a conflict"))?;
                Ok((false, wallet_body(&w)))
            }
        }
    }
}

/// A created pregenerated wallet, or the replay of the first answer to the
/// same `Idempotency-Key`.
#[derive(Debug)]
pub struct WalletCreated {
    pub body: proto::WalletBody,
    pub replayed: bool,
}

fn replay(r: keystead_store::IdempotentResponse, request_hash: &str) -> Result<WalletCreated> {
    if r.request_hash != request_hash {
        return Err(invalid(
            "this Idempotency-Key was already used with a different request body; use a new key",
        ));
    }
    let body = serde_json::from_str(&r.body).map_err(Error::internal)?;
    Ok(WalletCreated {
        body,
        replayed: true,
    })
}
