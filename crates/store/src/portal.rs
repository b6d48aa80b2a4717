//! The portal's storage: developer sessions and what a developer may see
//! (their projects and those projects' API keys).

use crate::db::query;
use crate::records::partner_from;
use crate::repo::{PortalStore, RateStore, TestLoginStore};
use crate::{Backend, PartnerRow, ProjectRow, Result, Store, TestLoginRow};

/// A signed-in developer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSessionRow {
    pub developer_id: String,
    pub email: String,
    pub csrf_token: String,
    pub expires_at: i64,
}

impl PortalStore for Store {
    async fn insert_portal_session(
        &self,
        token_hash: &str,
        developer_id: &str,
        csrf_token: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        query(
            "INSERT INTO portal_sessions (token_hash, developer_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(developer_id)
        .bind(csrf_token)
        .bind(now)
        .bind(expires_at)
        .execute(self.ephemeral())
        .await?;
        Ok(())
    }

    async fn portal_session(&self, token_hash: &str, now: i64) -> Result<Option<PortalSessionRow>> {
        let row = query(
            "SELECT s.developer_id, d.email, s.csrf_token, s.expires_at FROM portal_sessions s \
             JOIN developers d ON d.id = s.developer_id WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(PortalSessionRow {
                developer_id: r.try_get("developer_id")?,
                email: r.try_get("email")?,
                csrf_token: r.try_get("csrf_token")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    async fn delete_portal_session(&self, token_hash: &str) -> Result<()> {
        query("DELETE FROM portal_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.ephemeral())
            .await?;
        Ok(())
    }

    async fn projects_of_developer(&self, developer_id: &str) -> Result<Vec<ProjectRow>> {
        query(
            "SELECT p.id, p.name, p.created_at FROM projects p \
             JOIN developer_projects dp ON dp.project_id = p.id \
             WHERE dp.developer_id = $1 ORDER BY p.created_at, p.id",
        )
        .bind(developer_id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(|r| {
            Ok(ProjectRow {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
    }

    async fn partners_of_project(&self, project_id: &str) -> Result<Vec<PartnerRow>> {
        query(format!(
            "SELECT {} FROM partners WHERE project_id = $1 ORDER BY created_at, id",
            Store::PARTNER_COLS
        ))
        .bind(project_id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(partner_from)
        .collect()
    }
}

/// One token, in micro-tokens.
const TOKEN: i64 = 1_000_000;

/// One statement: refill by the time since the last take, then take one
/// token if there is one (every expression sees the old row).
static TAKE_TOKEN_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let refilled =
        "LEAST($2, rate_buckets.tokens + GREATEST(0, $3 - rate_buckets.updated_ms) * $4)";
    format!(
        "INSERT INTO rate_buckets (bucket, tokens, updated_ms, allowed) VALUES ($1, $2 - {TOKEN}, $3, 1) \
         ON CONFLICT (bucket) DO UPDATE SET \
         tokens = CASE WHEN {refilled} >= {TOKEN} THEN {refilled} - {TOKEN} ELSE {refilled} END, \
         allowed = CASE WHEN {refilled} >= {TOKEN} THEN 1 ELSE 0 END, \
         updated_ms = GREATEST($3, rate_buckets.updated_ms) \
         RETURNING allowed, tokens"
    )
});

impl RateStore for Store {
    async fn take_token(
        &self,
        bucket: &str,
        rate_per_sec: f64,
        burst: f64,
        now_ms: i64,
    ) -> Result<Option<std::result::Result<(), u64>>> {
        if self.backend() != Backend::Postgres {
            return Ok(None);
        }
        // micro-tokens per millisecond, and the bucket's size
        let rate = ((rate_per_sec * 1000.0).round() as i64).max(1);
        let burst = ((burst * TOKEN as f64).round() as i64).max(TOKEN);
        let row = query(TAKE_TOKEN_SQL.as_str())
            .bind(bucket)
            .bind(burst)
            .bind(now_ms)
            .bind(rate)
            .fetch_optional(self.ephemeral())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let allowed: i64 = row.try_get("allowed")?;
        let tokens: i64 = row.try_get("tokens")?;
        if allowed == 1 {
            return Ok(Some(Ok(())));
        }
        let wait_ms = (TOKEN - tokens).max(0) / rate;
        Ok(Some(Err((wait_ms as u64).div_ceil(1000).max(1))))
    }
}

fn test_login_from(r: &crate::db::Row) -> Result<TestLoginRow> {
    Ok(TestLoginRow {
        test_id: r.try_get("test_id")?,
        partner_id: r.try_get("partner_id")?,
        status: r.try_get("status")?,
        result: r.try_get("result")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

impl TestLoginStore for Store {
    async fn insert_test_login(&self, t: &TestLoginRow, start_hash: &str) -> Result<()> {
        query(
            "INSERT INTO test_logins (test_id, partner_id, start_hash, status, result, created_at, expires_at, finished_at) \
             VALUES ($1, $2, $3, $4, NULL, $5, $6, NULL)",
        )
        .bind(&t.test_id)
        .bind(&t.partner_id)
        .bind(start_hash)
        .bind(&t.status)
        .bind(t.created_at)
        .bind(t.expires_at)
        .execute(self.ephemeral())
        .await?;
        Ok(())
    }

    async fn test_login(&self, test_id: &str) -> Result<Option<TestLoginRow>> {
        query(
            "SELECT test_id, partner_id, status, result, created_at, expires_at, finished_at \
             FROM test_logins WHERE test_id = $1",
        )
        .bind(test_id)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(test_login_from)
        .transpose()
    }

    async fn take_test_login_start(
        &self,
        start_hash: &str,
        now: i64,
    ) -> Result<Option<TestLoginRow>> {
        query(
            "UPDATE test_logins SET start_hash = 'used:' || test_id \
             WHERE start_hash = $1 AND status = 'pending' AND expires_at > $2 \
             RETURNING test_id, partner_id, status, result, created_at, expires_at, finished_at",
        )
        .bind(start_hash)
        .bind(now)
        .fetch_optional(self.ephemeral())
        .await?
        .as_ref()
        .map(test_login_from)
        .transpose()
    }

    async fn finish_test_login(
        &self,
        test_id: &str,
        status: &str,
        result: &str,
        now: i64,
    ) -> Result<bool> {
        let done = query(
            "UPDATE test_logins SET status = $1, result = $2, finished_at = $3 \
             WHERE test_id = $4 AND status = 'pending'",
        )
        .bind(status)
        .bind(result)
        .bind(now)
        .bind(test_id)
        .execute(self.ephemeral())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
