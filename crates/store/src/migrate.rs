//! Versioned migrations. Each is applied once, inside a transaction together
//! with its row in `schema_migrations`, so a crash mid-migration leaves the
//! previous version intact. `{blob}` is the only dialect difference.

use crate::db::query;
use crate::{Backend, Result, Store, StoreError};

const MIGRATIONS: &[(i64, &str)] = &[
    (
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
    ),
    (
        2,
        r#"
CREATE TABLE provider_cache (
    url TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    fetched_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE login_states (
    state_hash TEXT PRIMARY KEY,
    partner_id TEXT NOT NULL REFERENCES partners(id),
    browser_hash TEXT NOT NULL,
    issuer TEXT NOT NULL,
    return_to TEXT NOT NULL,
    app_state TEXT,
    app_code_challenge TEXT NOT NULL,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX login_states_expiry ON login_states(expires_at);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    partner_id TEXT NOT NULL REFERENCES partners(id),
    created_at BIGINT NOT NULL
);
CREATE TABLE identities (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    partner_id TEXT NOT NULL REFERENCES partners(id),
    issuer TEXT NOT NULL,
    sub TEXT NOT NULL,
    email TEXT,
    created_at BIGINT NOT NULL,
    last_login_at BIGINT NOT NULL,
    UNIQUE (partner_id, issuer, sub)
);
CREATE INDEX identities_user ON identities(user_id);
CREATE TABLE wallets (
    id TEXT PRIMARY KEY,
    partner_id TEXT NOT NULL REFERENCES partners(id),
    user_id TEXT REFERENCES users(id),
    type TEXT NOT NULL,
    address TEXT NOT NULL,
    public_key TEXT NOT NULL,
    user_identifier TEXT,
    user_identifier_type TEXT,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX wallets_user ON wallets(user_id);
CREATE TABLE login_codes (
    code_hash TEXT PRIMARY KEY,
    partner_id TEXT NOT NULL REFERENCES partners(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    code_challenge TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX login_codes_expiry ON login_codes(expires_at);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    partner_id TEXT NOT NULL REFERENCES partners(id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
"#,
    ),
    (
        3,
        r#"
CREATE UNIQUE INDEX wallets_pregenerated ON wallets(partner_id, type, user_identifier_type, user_identifier);
CREATE UNIQUE INDEX wallets_user_own_type ON wallets(user_id, type) WHERE user_identifier IS NULL;
CREATE INDEX wallets_identifier ON wallets(partner_id, user_identifier_type, user_identifier);
CREATE TABLE idempotency_keys (
    partner_id TEXT NOT NULL REFERENCES partners(id),
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (partner_id, idem_key)
);
"#,
    ),
    (
        4,
        // The cache now holds only the checked, typed fields: drop rows of
        // whole documents (they are refetched on demand). `refetched_at`
        // rate-limits unknown-kid refetches apart from ordinary fetches.
        r#"
DELETE FROM provider_cache;
ALTER TABLE provider_cache ADD COLUMN refetched_at BIGINT NOT NULL DEFAULT 0
"#,
    ),
    (
        5,
        // Developer sessions of the portal; the CSRF token of the session's
        // forms lives with it.
        r#"
CREATE TABLE portal_sessions (
    token_hash TEXT PRIMARY KEY,
    developer_id TEXT NOT NULL REFERENCES developers(id),
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX portal_sessions_expiry ON portal_sessions(expires_at)
"#,
    ),
    (
        6,
        // Where a failed sign-in started on the hosted login page shows its
        // error (the page itself, built by keystead), instead of the app.
        r#"
ALTER TABLE login_states ADD COLUMN error_to TEXT
"#,
    ),
    (
        7,
        // Token buckets shared by every instance on PostgreSQL (micro-tokens).
        r#"
CREATE TABLE rate_buckets (
    bucket TEXT PRIMARY KEY,
    tokens BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    allowed BIGINT NOT NULL
)
"#,
    ),
    (
        8,
        // Sign-in rules (SPEC §11): domains one per line, flags as 0/1.
        r#"
ALTER TABLE custom_oidc ADD COLUMN allowed_email_domains TEXT NOT NULL DEFAULT '';
ALTER TABLE custom_oidc ADD COLUMN require_verified_email BIGINT NOT NULL DEFAULT 0;
ALTER TABLE custom_oidc ADD COLUMN allow_sign_up BIGINT NOT NULL DEFAULT 1
"#,
    ),
    (
        9,
        // Test logins (SPEC §11): their results; a login state that belongs
        // to one carries its id and can only ever finish as a test.
        r#"
CREATE TABLE test_logins (
    test_id TEXT PRIMARY KEY,
    partner_id TEXT NOT NULL REFERENCES partners(id),
    start_hash TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    result TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    finished_at BIGINT
);
ALTER TABLE login_states ADD COLUMN test_id TEXT
"#,
    ),
];

pub(crate) async fn run(store: &Store) -> Result<()> {
    let pool = store.pool();
    query(
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
            query("LOCK TABLE schema_migrations IN EXCLUSIVE MODE")
                .execute(&mut tx)
                .await?;
        }
        let done: Option<i64> = query("SELECT version FROM schema_migrations WHERE version = $1")
            .bind(*version)
            .scalar(&mut tx)
            .await?;
        if done.is_some() {
            tx.rollback().await?;
            continue;
        }
        let sql = sql.replace("{blob}", blob);
        for stmt in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            query(stmt.to_string())
                .execute(&mut tx)
                .await
                .map_err(|source| StoreError::Migration {
                    version: *version,
                    source: Box::new(source),
                })?;
        }
        query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(crate::now_unix())
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}
