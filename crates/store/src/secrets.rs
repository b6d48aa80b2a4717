//! Sealed secrets (client secrets, wallet keys) and their rewrap, and the
//! server's settings and session-JWT signing keys.

use crate::repo::*;
use keystead_crypto::{Sealed, WrappedKey};

use crate::db::query;
use crate::{now_unix, put_secret_tx, Result, Store};

impl SecretStore for Store {
    async fn secret(&self, owner_id: &str, purpose: &str) -> Result<Option<Sealed>> {
        let row = query(
            "SELECT key_id, wrapped_key, nonce, ciphertext FROM secrets \
             WHERE owner_id = $1 AND purpose = $2",
        )
        .bind(owner_id)
        .bind(purpose)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Sealed {
            key: WrappedKey {
                key_id: row.try_get("key_id")?,
                bytes: row.try_get("wrapped_key")?,
            },
            nonce: row.try_get("nonce")?,
            ciphertext: row.try_get("ciphertext")?,
        }))
    }

    async fn overwrite_secret(&self, owner_id: &str, purpose: &str, sealed: &Sealed) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        put_secret_tx(&mut tx, owner_id, purpose, sealed, now_unix()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn any_secret(&self) -> Result<Option<(String, String, Sealed)>> {
        let row = query(
            "SELECT owner_id, purpose, key_id, wrapped_key, nonce, ciphertext FROM secrets LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok((
                r.try_get("owner_id")?,
                r.try_get("purpose")?,
                Sealed {
                    key: keystead_crypto::WrappedKey {
                        key_id: r.try_get("key_id")?,
                        bytes: r.try_get("wrapped_key")?,
                    },
                    nonce: r.try_get("nonce")?,
                    ciphertext: r.try_get("ciphertext")?,
                },
            ))
        })
        .transpose()
    }

    async fn key_id_counts(&self) -> Result<Vec<(String, i64)>> {
        query("SELECT key_id, COUNT(*) AS n FROM secrets GROUP BY key_id ORDER BY key_id")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| Ok((r.try_get("key_id")?, r.try_get("n")?)))
            .collect()
    }

    async fn wrapped_keys_not_on(
        &self,
        key_id: &str,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<(String, String, WrappedKey)>> {
        let (owner, purpose) = after.unwrap_or(("", ""));
        query(
            "SELECT owner_id, purpose, key_id, wrapped_key FROM secrets \
             WHERE key_id <> $1 AND (owner_id > $2 OR (owner_id = $2 AND purpose > $3)) \
             ORDER BY owner_id, purpose LIMIT $4",
        )
        .bind(key_id)
        .bind(owner)
        .bind(purpose)
        .bind(limit)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("owner_id")?,
                r.try_get("purpose")?,
                WrappedKey {
                    key_id: r.try_get("key_id")?,
                    bytes: r.try_get("wrapped_key")?,
                },
            ))
        })
        .collect()
    }

    async fn replace_wrapped_key(
        &self,
        owner_id: &str,
        purpose: &str,
        old: &WrappedKey,
        new: &WrappedKey,
    ) -> Result<bool> {
        let done = query(
            "UPDATE secrets SET key_id = $1, wrapped_key = $2 \
             WHERE owner_id = $3 AND purpose = $4 AND key_id = $5 AND wrapped_key = $6",
        )
        .bind(&new.key_id)
        .bind(&new.bytes)
        .bind(owner_id)
        .bind(purpose)
        .bind(&old.key_id)
        .bind(&old.bytes)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl SettingStore for Store {
    async fn setting(&self, name: &str) -> Result<Option<String>> {
        query("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .scalar(self.pool())
            .await
    }

    async fn init_setting(&self, name: &str, value: &str) -> Result<bool> {
        let done = query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_setting(&self, name: &str, value: &str) -> Result<()> {
        query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn insert_signing_key(
        &self,
        kid: &str,
        public_jwk: &str,
        sealed: &Sealed,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        query("INSERT INTO signing_keys (kid, public_jwk, created_at) VALUES ($1, $2, $3)")
            .bind(kid)
            .bind(public_jwk)
            .bind(now)
            .execute(&mut tx)
            .await?;
        put_secret_tx(&mut tx, kid, crate::PURPOSE_SESSION_JWT_KEY, sealed, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_signing_key(&self, kid: &str) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        query("DELETE FROM secrets WHERE owner_id = $1 AND purpose = $2")
            .bind(kid)
            .bind(crate::PURPOSE_SESSION_JWT_KEY)
            .execute(&mut tx)
            .await?;
        query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn signing_keys(&self) -> Result<Vec<(String, String)>> {
        let rows = query("SELECT kid, public_jwk FROM signing_keys ORDER BY created_at, kid")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("kid")?, r.try_get("public_jwk")?)))
            .collect()
    }
}
