//! Wallet rows for the wallet routes: pregenerated wallets (Bring Your Own
//! Auth) with their idempotency records, users' extra wallets, claiming.

use crate::repo::*;
use keystead_crypto::Sealed;

use crate::db::query;
use crate::login::{insert_wallet_tx, wallet_from, WalletRow, PURPOSE_WALLET_KEY, WALLET_COLS};
use crate::login::{IdentifierType, WalletType};
use crate::records::put_secret_tx;
use crate::{Result, Store, StoreError};

/// The stored first answer to an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentResponse {
    pub request_hash: String,
    pub status: i64,
    pub body: String,
}

/// How a wallet insert ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalletInsert {
    Created,
    /// The unique identity of the wallet (pregenerated: partner + type +
    /// identifier; user: user + type) is taken.
    Exists,
    /// The idempotency key was used before (maybe concurrently): replay.
    Replay(IdempotentResponse),
}

impl WalletStore for Store {
    async fn unclaimed_wallets_for_email(
        &self,
        partner_id: &str,
        email: &str,
    ) -> Result<Vec<String>> {
        query(
            "SELECT id FROM wallets WHERE partner_id = $1 AND user_identifier_type = 'EMAIL' \
             AND user_identifier = $2 AND user_id IS NULL ORDER BY id",
        )
        .bind(partner_id)
        .bind(email)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect()
    }

    async fn wallet(&self, id: &str) -> Result<Option<WalletRow>> {
        let sql = format!("SELECT {WALLET_COLS} FROM wallets WHERE id = $1");
        query(sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(wallet_from)
            .transpose()
    }

    async fn wallets_by_identifier(
        &self,
        partner_id: &str,
        kind: IdentifierType,
        identifier: &str,
    ) -> Result<Vec<WalletRow>> {
        let sql = format!(
            "SELECT {WALLET_COLS} FROM wallets WHERE partner_id = $1 AND user_identifier_type = $2 \
             AND user_identifier = $3 ORDER BY created_at, id"
        );
        let rows = query(sql)
            .bind(partner_id)
            .bind(kind.as_str())
            .bind(identifier)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(wallet_from).collect()
    }

    async fn idempotent_response(
        &self,
        partner_id: &str,
        key: &str,
        since: i64,
    ) -> Result<Option<IdempotentResponse>> {
        let row = query(
            "SELECT request_hash, status, body FROM idempotency_keys \
             WHERE partner_id = $1 AND idem_key = $2 AND created_at > $3",
        )
        .bind(partner_id)
        .bind(key)
        .bind(since)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(IdempotentResponse {
                request_hash: r.try_get("request_hash")?,
                status: r.try_get("status")?,
                body: r.try_get("body")?,
            })
        })
        .transpose()
    }

    async fn insert_wallet(
        &self,
        w: &WalletRow,
        key: &Sealed,
        idem: Option<(&str, &str, &str, i64, &str)>,
        now: i64,
    ) -> Result<WalletInsert> {
        let mut tx = self.pool().begin().await?;
        if let Some((partner_id, idem_key, hash, status, body)) = idem {
            // Stale keys (older than the replay window) are replaced.
            query("DELETE FROM idempotency_keys WHERE partner_id = $1 AND idem_key = $2 AND created_at <= $3")
                .bind(partner_id)
                .bind(idem_key)
                .bind(now - 24 * 3600)
                .execute(&mut tx)
                .await?;
            let inserted = query(
                "INSERT INTO idempotency_keys (partner_id, idem_key, request_hash, status, body, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (partner_id, idem_key) DO NOTHING",
            )
            .bind(partner_id)
            .bind(idem_key)
            .bind(hash)
            .bind(status)
            .bind(body)
            .bind(now)
            .execute(&mut tx)
            .await?;
            if inserted.rows_affected() == 0 {
                tx.rollback().await?;
                return match self
                    .idempotent_response(partner_id, idem_key, now - 24 * 3600)
                    .await?
                {
                    Some(r) => Ok(WalletInsert::Replay(r)),
                    None => Err(StoreError::Conflict),
                };
            }
        }
        match insert_wallet_tx(&mut tx, w).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                tx.rollback().await?;
                return Ok(WalletInsert::Exists);
            }
            Err(e) => return Err(e),
        }
        put_secret_tx(&mut tx, &w.id, PURPOSE_WALLET_KEY, key, now).await?;
        tx.commit().await?;
        Ok(WalletInsert::Created)
    }

    async fn own_wallet_of_type(
        &self,
        user_id: &str,
        kind: WalletType,
    ) -> Result<Option<WalletRow>> {
        let sql = format!(
            "SELECT {WALLET_COLS} FROM wallets WHERE user_id = $1 AND type = $2 AND user_identifier IS NULL"
        );
        let row = query(sql)
            .bind(user_id)
            .bind(kind.as_str())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(wallet_from).transpose()
    }
}
