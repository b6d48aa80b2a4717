//! The portal's storage: developer sessions and what a developer may see
//! (their projects and those projects' API keys).

use crate::db::query;
use crate::records::partner_from;
use crate::repo::PortalStore;
use crate::{PartnerRow, ProjectRow, Result, Store};

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
        query(
            "SELECT id, project_id, name, publishable_key, allowed_return_urls, session_ttl_secs, created_at \
             FROM partners WHERE project_id = $1 ORDER BY created_at, id",
        )
        .bind(project_id)
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(partner_from)
        .collect()
    }
}
