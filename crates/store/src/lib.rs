//! Storage. One implementation over `sqlx::Any` serves SQLite (the embedded
//! default) and PostgreSQL: the schema sticks to TEXT/BIGINT/BLOB, `$n`
//! placeholders (both drivers read them), `ON CONFLICT` and `RETURNING`, and
//! timestamps are unix seconds. Everything that another instance must see —
//! including login state later — lives here, never in process memory.
//!
//! Methods are grouped by record type in the submodules; the domain layer
//! only ever calls these methods, never SQL.

mod login;
mod migrate;
mod records;
mod wallets;

pub use login::*;
pub use records::*;
pub use wallets::*;

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    Conflict,
    #[error("database: {0}")]
    Db(#[source] sqlx::Error),
    #[error("migration {version}: {source}")]
    Migration {
        version: i64,
        #[source]
        source: sqlx::Error,
    },
    #[error("unsupported database url (use sqlite://… or postgres://…)")]
    UnsupportedUrl,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            _ => StoreError::Db(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// For records whose loss in a power cut costs a user one retry and
    /// nothing else (login states, login-code redemption and sessions,
    /// provider caches, purges): on SQLite its connections commit with
    /// synchronous=NORMAL (no fsync); the next durable commit on `pool`
    /// syncs the shared WAL, these commits included. On PostgreSQL it is
    /// the same pool.
    ephemeral: AnyPool,
    backend: Backend,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Store {
    /// Connects and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let (pool, ephemeral) = match backend {
            // A few connections: WAL lets reads run beside the one writer.
            // Every multi-statement transaction here begins with a write,
            // so a writer never has to upgrade a stale read snapshot (the
            // one case busy_timeout cannot wait out).
            // synchronous=FULL: an acknowledged write (a wallet address a
            // partner may already have funded) survives a power loss, not
            // only a process crash; we pay one fsync per transaction.
            Backend::Sqlite => {
                let url = if url.contains('?') {
                    url.to_string()
                } else {
                    format!("{url}?mode=rwc")
                };
                let pool = sqlite_pool(&url, 4, "FULL").await?;
                let ephemeral = sqlite_pool(&url, 2, "NORMAL").await?;
                (pool, ephemeral)
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await?;
                (pool.clone(), pool)
            }
        };
        let store = Store {
            pool,
            ephemeral,
            backend,
        };
        migrate::run(&store).await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.ephemeral.close().await;
        self.pool.close().await;
    }

    pub(crate) fn ephemeral(&self) -> &AnyPool {
        &self.ephemeral
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

async fn sqlite_pool(url: &str, connections: u32, synchronous: &'static str) -> Result<AnyPool> {
    Ok(AnyPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute(
                    format!(
                        "PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous}; \
                         PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;"
                    )
                    .as_str(),
                )
                .await?;
                Ok(())
            })
        })
        .connect(url)
        .await?)
}

/// Current unix time in seconds.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
