//! Versioned migrations. Each is applied once, inside a transaction together
//! with its row in `schema_migrations`, so a crash mid-migration leaves the
//! previous version intact. `{blob}` is the only dialect difference.

use crate::{Backend, Result, Store, StoreError};

const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    r#"
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE partners (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    publishable_key TEXT NOT NULL UNIQUE,
    secret_key_hash TEXT NOT NULL UNIQUE,
    allowed_return_urls TEXT NOT NULL,
    session_ttl_secs BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX partners_project ON partners(project_id);
CREATE TABLE developers (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE developer_projects (
    developer_id TEXT NOT NULL REFERENCES developers(id),
    project_id TEXT NOT NULL REFERENCES projects(id),
    PRIMARY KEY (developer_id, project_id)
);
CREATE TABLE custom_oidc (
    partner_id TEXT PRIMARY KEY REFERENCES partners(id),
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    auth_method TEXT NOT NULL,
    button_label TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    client_secret_updated_at BIGINT,
    last_verification TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE secrets (
    owner_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    key_id TEXT NOT NULL,
    wrapped_key {blob} NOT NULL,
    nonce {blob} NOT NULL,
    ciphertext {blob} NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (owner_id, purpose)
);
CREATE INDEX secrets_key_id ON secrets(key_id);
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
)];

pub(crate) async fn run(store: &Store) -> Result<()> {
    let pool = store.pool();
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(pool)
    .await?;
    let blob = match store.backend() {
        Backend::Sqlite => "BLOB",
        Backend::Postgres => "BYTEA",
    };
    for (version, sql) in MIGRATIONS {
        let mut tx = pool.begin().await?;
        // Re-check inside the transaction; on PostgreSQL a second instance
        // starting at the same moment blocks on the lock and then skips.
        if store.backend() == Backend::Postgres {
            sqlx::query("LOCK TABLE schema_migrations IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(*version)
                .fetch_optional(&mut *tx)
                .await?;
        if done.is_some() {
            tx.rollback().await?;
            continue;
        }
        let sql = sql.replace("{blob}", blob);
        for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            sqlx::query(stmt)
                .execute(&mut *tx)
                .await
                .map_err(|source| StoreError::Migration {
                    version: *version,
                    source,
                })?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(crate::now_unix())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}
