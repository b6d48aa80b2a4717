//! Storage. The SQL is written once and runs on two native drivers (see
//! `db`): SQLite through `rusqlite` (the embedded default) and PostgreSQL
//! through `sqlx`'s postgres driver. The schema sticks to TEXT/BIGINT/BLOB,
//! `$n` placeholders (both read them), `ON CONFLICT` and `RETURNING`, and
//! timestamps are unix seconds. Everything that another instance must see —
//! including login state — lives here, never in process memory.
//!
//! Methods are grouped by record type in the submodules; the domain layer
//! only ever calls these methods, never SQL.

mod db;
mod doc_cache;
mod login;
mod migrate;
mod portal;
mod records;
pub mod repo;
mod secrets;
mod wallets;

pub use doc_cache::CachedDoc;
pub use login::*;
pub use portal::PortalSessionRow;
pub use records::*;
pub use repo::{
    DocCacheStore, OidcConfigStore, PartnerStore, PortalStore, RateStore, SecretStore,
    SettingStore, SignInStore, TestLoginStore, WalletStore,
};
pub use wallets::*;

pub use db::PgOptions;
use db::{Db, Sqlite};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    Conflict,
    #[error("database: {0}")]
    Db(#[source] BoxError),
    /// The database did not answer (down, restarting, no free connection).
    #[error("database unavailable: {0}")]
    Unavailable(#[source] BoxError),
    #[error("database row: {0}")]
    Decode(String),
    #[error("migration {version}: {source}")]
    Migration {
        version: i64,
        #[source]
        source: Box<StoreError>,
    },
    #[error("unsupported database url (use sqlite://PATH or postgres://…)")]
    UnsupportedUrl,
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            // class 08: connection exception; 57P0x: the server is shutting
            // down, crashed or starting
            sqlx::Error::Database(db)
                if db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P0")) =>
            {
                StoreError::Unavailable(Box::new(e))
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => StoreError::Unavailable(Box::new(e)),
            _ => StoreError::Db(Box::new(e)),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi;
        match &e {
            rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
            rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                    || f.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                StoreError::Conflict
            }
            _ => StoreError::Db(Box::new(e)),
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
    pool: Db,
    /// For records whose loss in a power cut costs a user one retry and
    /// nothing else (login states, login-code redemption and sessions,
    /// provider caches, purges): on SQLite its connections commit with
    /// synchronous=NORMAL (no fsync); the next durable commit on `pool`
    /// syncs the shared WAL, these commits included. On PostgreSQL it is
    /// the same pool.
    ephemeral: Db,
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
        Self::connect_with(url, &PgOptions::default()).await
    }

    /// [`Store::connect`] with PostgreSQL pool limits.
    pub async fn connect_with(url: &str, pg: &PgOptions) -> Result<Self> {
        let (pool, ephemeral, backend) = if url.starts_with("sqlite:") {
            // One writer and a few readers on one file in WAL mode.
            // Durable writes commit with synchronous=FULL: an acknowledged write (a
            // wallet address a partner may already have funded) survives a
            // power loss, not only a process crash; we pay one fsync per
            // durable transaction.
            let db = Sqlite::open(url, 4)?;
            (
                Db::Sqlite(db.clone(), true),
                Db::Sqlite(db, false),
                Backend::Sqlite,
            )
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = db::pg_connect(url, pg).await?;
            (Db::Pg(pool.clone()), Db::Pg(pool), Backend::Postgres)
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let store = Store {
            pool,
            ephemeral,
            backend,
        };
        migrate::run(&store).await?;
        Ok(store)
    }

    /// PostgreSQL pool connections `(in use, idle)`; `None` on SQLite.
    pub fn pool_use(&self) -> Option<(u32, u32)> {
        match &self.pool {
            Db::Pg(pool) => {
                let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
                Some((pool.size().saturating_sub(idle), idle))
            }
            Db::Sqlite(..) => None,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn ping(&self) -> Result<()> {
        db::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.ephemeral.close().await;
        self.pool.close().await;
    }

    pub(crate) fn ephemeral(&self) -> &Db {
        &self.ephemeral
    }

    pub(crate) fn pool(&self) -> &Db {
        &self.pool
    }
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
