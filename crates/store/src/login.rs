//! End-user sign-in state: login states, users,
//! identities, wallets, login codes, sessions and the session-JWT keys.
//! Single-use records are consumed with one conditional UPDATE … RETURNING,
//! so two instances (or two requests) can never both use the same state or
//! code.

use crate::repo::*;
use keystead_crypto::Sealed;
pub use keystead_model::{IdentifierType, WalletType};

use crate::db::{query, Row, Tx};
use crate::records::put_secret_tx;
use crate::{Result, Store, StoreError};

pub const PURPOSE_WALLET_KEY: &str = "wallet_key";
pub const PURPOSE_SESSION_JWT_KEY: &str = "session_jwt_key";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginStateRow {
    pub state_hash: String,
    pub partner_id: String,
    pub browser_hash: String,
    pub issuer: String,
    pub return_to: String,
    pub app_state: Option<String>,
    pub app_code_challenge: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// The hosted login page this sign-in started on: errors go back there.
    pub error_to: Option<String>,
    /// The test login this state belongs to (SPEC §11): it only ever
    /// finishes as a test, and writes nothing of a real sign-in.
    pub test_id: Option<String>,
}

/// A test login (SPEC §11) and, once the browser came back, its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestLoginRow {
    pub test_id: String,
    pub partner_id: String,
    /// `pending`, `passed` or `failed` (`expired` is derived).
    pub status: String,
    /// JSON of the checks, claims and outcome.
    pub result: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub finished_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletRow {
    pub id: String,
    pub partner_id: String,
    pub user_id: Option<String>,
    pub kind: WalletType,
    pub address: String,
    pub public_key: String,
    pub user_identifier: Option<String>,
    pub user_identifier_type: Option<IdentifierType>,
    pub status: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRow {
    pub id: String,
    pub user_id: String,
    pub issuer: String,
    pub sub: String,
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginCodeRow {
    pub partner_id: String,
    pub user_id: String,
    pub code_challenge: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub user_id: String,
    pub partner_id: String,
    pub expires_at: i64,
}

pub(crate) fn wallet_from(row: &Row) -> Result<WalletRow> {
    Ok(WalletRow {
        id: row.try_get("id")?,
        partner_id: row.try_get("partner_id")?,
        user_id: row.try_get("user_id")?,
        kind: {
            let raw: String = row.try_get("type")?;
            WalletType::try_from(raw.as_str())
                .map_err(|_| StoreError::Decode(format!("unknown wallet type {raw:?}")))?
        },
        address: row.try_get("address")?,
        public_key: row.try_get("public_key")?,
        user_identifier: row.try_get("user_identifier")?,
        user_identifier_type: match row.try_get::<Option<String>>("user_identifier_type")? {
            None => None,
            Some(raw) => Some(
                IdentifierType::try_from(raw.as_str())
                    .map_err(|_| StoreError::Decode(format!("unknown identifier type {raw:?}")))?,
            ),
        },
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(crate) const WALLET_COLS: &str =
    "id, partner_id, user_id, type, address, public_key, user_identifier, \
    user_identifier_type, status, created_at";

impl Store {
    /// Counts for tests and the benchmark.
    pub async fn count(&self, table: &str) -> Result<i64> {
        if ![
            "users",
            "identities",
            "wallets",
            "sessions",
            "login_codes",
            "secrets",
            "provider_cache",
        ]
        .contains(&table)
        {
            return Err(StoreError::NotFound);
        }
        Ok(query(format!("SELECT COUNT(*) FROM {table}"))
            .scalar(self.pool())
            .await?
            .unwrap_or(0))
    }
}

pub(crate) async fn insert_wallet_tx(tx: &mut Tx, w: &WalletRow) -> Result<()> {
    query(
        "INSERT INTO wallets (id, partner_id, user_id, type, address, public_key, user_identifier, \
         user_identifier_type, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&w.id)
    .bind(&w.partner_id)
    .bind(&w.user_id)
    .bind(w.kind.as_str())
    .bind(&w.address)
    .bind(&w.public_key)
    .bind(&w.user_identifier)
    .bind(w.user_identifier_type.map(IdentifierType::as_str))
    .bind(&w.status)
    .bind(w.created_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The last step of a sign-in, written in one transaction (one fsync):
/// consume the state, create or load the user, claim wallets by verified
/// email, store the login code.
#[derive(Debug)]
pub struct FinishLogin<'a> {
    pub state_hash: &'a str,
    pub now: i64,
    pub partner_id: &'a str,
    pub issuer: &'a str,
    pub sub: &'a str,
    /// A verified email, lower-cased for claiming.
    pub email: Option<&'a str>,
    /// Prepared when the identity was not found: `(user id, identity id,
    /// wallet, sealed wallet key)`.
    pub new_user: Option<(&'a str, &'a str, &'a WalletRow, &'a Sealed)>,
    pub code_hash: &'a str,
    pub code_challenge: &'a str,
    pub code_ttl: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginFinished {
    Done {
        user_id: String,
        created: bool,
        claimed: u64,
    },
    /// Another request used the state first; nothing was written.
    StateUsed,
}

/// How redeeming a login code ended. Any attempt on a live code uses it
/// up — with the wrong verifier, or even with another app's key (`Invalid`
/// then); an unknown, expired or used code changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    Invalid,
    PkceMismatch,
    Session { user_id: String },
}

impl SignInStore for Store {
    async fn insert_login_state(&self, s: &LoginStateRow) -> Result<()> {
        query(
            "INSERT INTO login_states (state_hash, partner_id, browser_hash, issuer, return_to, \
             app_state, app_code_challenge, nonce, pkce_verifier, created_at, expires_at, used_at, error_to, test_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12, $13)",
        )
        .bind(&s.state_hash)
        .bind(&s.partner_id)
        .bind(&s.browser_hash)
        .bind(&s.issuer)
        .bind(&s.return_to)
        .bind(&s.app_state)
        .bind(&s.app_code_challenge)
        .bind(&s.nonce)
        .bind(&s.pkce_verifier)
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(&s.error_to)
        .bind(&s.test_id)
        .execute(self.ephemeral())
        .await?;
        Ok(())
    }

    async fn find_identity(
        &self,
        partner_id: &str,
        issuer: &str,
        sub: &str,
    ) -> Result<Option<(String, String)>> {
        let row = query(
            "SELECT user_id, id FROM identities WHERE partner_id = $1 AND issuer = $2 AND sub = $3",
        )
        .bind(partner_id)
        .bind(issuer)
        .bind(sub)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| Ok((r.try_get("user_id")?, r.try_get("id")?)))
            .transpose()
    }

    async fn wallets_of_user(&self, user_id: &str) -> Result<Vec<WalletRow>> {
        let sql =
            format!("SELECT {WALLET_COLS} FROM wallets WHERE user_id = $1 ORDER BY created_at, id");
        let rows = query(sql).bind(user_id).fetch_all(self.pool()).await?;
        rows.iter().map(wallet_from).collect()
    }

    async fn identities_of_user(&self, user_id: &str) -> Result<Vec<IdentityRow>> {
        let rows = query(
            "SELECT id, user_id, issuer, sub, email FROM identities WHERE user_id = $1 ORDER BY created_at, id",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(IdentityRow {
                    id: r.try_get("id")?,
                    user_id: r.try_get("user_id")?,
                    issuer: r.try_get("issuer")?,
                    sub: r.try_get("sub")?,
                    email: r.try_get("email")?,
                })
            })
            .collect()
    }

    async fn insert_login_code(
        &self,
        code_hash: &str,
        c: &LoginCodeRow,
        now: i64,
        ttl: i64,
    ) -> Result<()> {
        query(
            "INSERT INTO login_codes (code_hash, partner_id, user_id, code_challenge, created_at, expires_at, used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL)",
        )
        .bind(code_hash)
        .bind(&c.partner_id)
        .bind(&c.user_id)
        .bind(&c.code_challenge)
        .bind(now)
        .bind(now + ttl)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn insert_session(&self, token_hash: &str, s: &SessionRow, now: i64) -> Result<()> {
        query(
            "INSERT INTO sessions (token_hash, user_id, partner_id, created_at, expires_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(token_hash)
        .bind(&s.user_id)
        .bind(&s.partner_id)
        .bind(now)
        .bind(s.expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn session(&self, token_hash: &str, now: i64) -> Result<Option<SessionRow>> {
        let row = query(
            "SELECT user_id, partner_id, expires_at FROM sessions \
             WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(SessionRow {
                user_id: r.try_get("user_id")?,
                partner_id: r.try_get("partner_id")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    async fn revoke_session(&self, token_hash: &str, now: i64) -> Result<()> {
        query("UPDATE sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(token_hash)
            .execute(self.ephemeral())
            .await?;
        Ok(())
    }

    async fn purge_expired(&self, now: i64) -> Result<u64> {
        let a = query("DELETE FROM login_states WHERE expires_at < $1")
            .bind(now - 60)
            .execute(self.ephemeral())
            .await?;
        let b = query("DELETE FROM login_codes WHERE expires_at < $1")
            .bind(now - 60)
            .execute(self.ephemeral())
            .await?;
        let c = query("DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1")
            .bind(now - 24 * 3600)
            .execute(self.ephemeral())
            .await?;
        let d = query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(now - 24 * 3600)
            .execute(self.ephemeral())
            .await?;
        // Stale metadata: refetched on the next use anyway.
        let e = query("DELETE FROM provider_cache WHERE expires_at < $1")
            .bind(now - 3600)
            .execute(self.ephemeral())
            .await?;
        let f = query("DELETE FROM portal_sessions WHERE expires_at < $1")
            .bind(now)
            .execute(self.ephemeral())
            .await?;
        // a test login's result is kept a day after its link expired
        let g = query("DELETE FROM test_logins WHERE expires_at < $1")
            .bind(now - 24 * 3600)
            .execute(self.ephemeral())
            .await?;
        // buckets untouched for a day are full again anyway
        query("DELETE FROM rate_buckets WHERE updated_ms < $1")
            .bind((now - 24 * 3600) * 1000)
            .execute(self.ephemeral())
            .await?;
        Ok(a.rows_affected()
            + b.rows_affected()
            + c.rows_affected()
            + d.rows_affected()
            + e.rows_affected()
            + f.rows_affected()
            + g.rows_affected())
    }

    async fn peek_login_state(
        &self,
        state_hash: &str,
        browser_hash: &str,
        now: i64,
    ) -> Result<Option<LoginStateRow>> {
        let row = query(
            "SELECT state_hash, partner_id, browser_hash, issuer, return_to, app_state, \
             app_code_challenge, nonce, pkce_verifier, created_at, expires_at, error_to, test_id FROM login_states \
             WHERE state_hash = $1 AND browser_hash = $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(state_hash)
        .bind(browser_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(LoginStateRow {
                state_hash: r.try_get("state_hash")?,
                partner_id: r.try_get("partner_id")?,
                browser_hash: r.try_get("browser_hash")?,
                issuer: r.try_get("issuer")?,
                return_to: r.try_get("return_to")?,
                app_state: r.try_get("app_state")?,
                app_code_challenge: r.try_get("app_code_challenge")?,
                nonce: r.try_get("nonce")?,
                pkce_verifier: r.try_get("pkce_verifier")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
                error_to: r.try_get("error_to")?,
                test_id: r.try_get("test_id")?,
            })
        })
        .transpose()
    }

    async fn consume_login_state(&self, state_hash: &str, now: i64) -> Result<bool> {
        let done =
            query("UPDATE login_states SET used_at = $1 WHERE state_hash = $2 AND used_at IS NULL")
                .bind(now)
                .bind(state_hash)
                .execute(self.ephemeral())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn finish_login(&self, f: &FinishLogin<'_>) -> Result<LoginFinished> {
        let mut tx = if f.new_user.is_some() {
            self.pool().begin().await?
        } else {
            self.ephemeral().begin().await?
        };
        let consumed = query(
            // a test login's state never finishes a real sign-in
            "UPDATE login_states SET used_at = $1 WHERE state_hash = $2 AND used_at IS NULL AND expires_at > $1 \
             AND test_id IS NULL",
        )
        .bind(f.now)
        .bind(f.state_hash)
        .execute(&mut tx)
        .await?;
        if consumed.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(LoginFinished::StateUsed);
        }
        let mut created = None;
        if let Some((user_id, identity_id, wallet, key)) = f.new_user {
            query("INSERT INTO users (id, partner_id, created_at) VALUES ($1, $2, $3)")
                .bind(user_id)
                .bind(f.partner_id)
                .bind(f.now)
                .execute(&mut tx)
                .await?;
            let inserted: Option<String> = query(
                "INSERT INTO identities (id, user_id, partner_id, issuer, sub, email, created_at, last_login_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT (partner_id, issuer, sub) DO NOTHING RETURNING id",
            )
            .bind(identity_id)
            .bind(user_id)
            .bind(f.partner_id)
            .bind(f.issuer)
            .bind(f.sub)
            .bind(f.email)
            .bind(f.now)
            .scalar(&mut tx)
            .await?;
            if inserted.is_some() {
                insert_wallet_tx(&mut tx, wallet).await?;
                put_secret_tx(&mut tx, &wallet.id, PURPOSE_WALLET_KEY, key, f.now).await?;
                created = Some(user_id.to_string());
            } else {
                // A concurrent first login made the identity: drop ours.
                query("DELETE FROM users WHERE id = $1")
                    .bind(user_id)
                    .execute(&mut tx)
                    .await?;
            }
        }
        let user_id = match &created {
            Some(u) => u.clone(),
            None => {
                let user_id: String = query(
                    "UPDATE identities SET last_login_at = $1, email = COALESCE($2, email) \
                     WHERE partner_id = $3 AND issuer = $4 AND sub = $5 RETURNING user_id",
                )
                .bind(f.now)
                .bind(f.email)
                .bind(f.partner_id)
                .bind(f.issuer)
                .bind(f.sub)
                .scalar(&mut tx)
                .await?
                .ok_or(StoreError::NotFound)?;
                user_id
            }
        };
        let mut claimed = 0;
        if let Some(email) = f.email {
            claimed = query(
                "UPDATE wallets SET user_id = $1 WHERE partner_id = $2 AND user_identifier_type = 'EMAIL' \
                 AND user_identifier = $3 AND user_id IS NULL",
            )
            .bind(&user_id)
            .bind(f.partner_id)
            .bind(email)
            .execute(&mut tx)
            .await?
            .rows_affected();
            if claimed > 0 {
                tx.make_durable()?;
            }
        }
        query(
            "INSERT INTO login_codes (code_hash, partner_id, user_id, code_challenge, created_at, expires_at, used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL)",
        )
        .bind(f.code_hash)
        .bind(f.partner_id)
        .bind(&user_id)
        .bind(f.code_challenge)
        .bind(f.now)
        .bind(f.now + f.code_ttl)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(LoginFinished::Done {
            user_id,
            created: created.is_some(),
            claimed,
        })
    }

    async fn redeem_login_code(
        &self,
        code_hash: &str,
        partner_id: &str,
        now: i64,
        verifier_ok: impl FnOnce(&str) -> bool + Send,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<Redeemed> {
        let mut tx = self.ephemeral().begin().await?;
        let row = query(
            "UPDATE login_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1 \
             RETURNING partner_id, user_id, code_challenge",
        )
        .bind(now)
        .bind(code_hash)
        .fetch_optional(&mut tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(Redeemed::Invalid);
        };
        let code_partner: String = row.try_get("partner_id")?;
        let user_id: String = row.try_get("user_id")?;
        let challenge: String = row.try_get("code_challenge")?;
        let outcome = if code_partner != partner_id {
            Redeemed::Invalid
        } else if !verifier_ok(&challenge) {
            Redeemed::PkceMismatch
        } else {
            query(
                "INSERT INTO sessions (token_hash, user_id, partner_id, created_at, expires_at, revoked_at) \
                 VALUES ($1, $2, $3, $4, $5, NULL)",
            )
            .bind(token_hash)
            .bind(&user_id)
            .bind(partner_id)
            .bind(now)
            .bind(expires_at)
            .execute(&mut tx)
            .await?;
            Redeemed::Session { user_id }
        };
        tx.commit().await?;
        Ok(outcome)
    }
}
