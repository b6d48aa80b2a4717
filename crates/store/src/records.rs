//! Row types and the queries that read and write them.

use crate::repo::*;
use keystead_crypto::Sealed;
pub use keystead_model::AuthMethod;

use crate::db::{query, Row, Tx};
use crate::{now_unix, Result, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerRow {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub publishable_key: String,
    pub allowed_return_urls: Vec<String>,
    pub session_ttl_secs: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeveloperRow {
    pub id: String,
    pub email: String,
    pub project_ids: Vec<String>,
    pub created_at: i64,
}

/// The stored Custom OIDC settings of one partner (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomOidcRow {
    pub partner_id: String,
    pub issuer: String,
    pub client_id: String,
    pub scopes: String,
    pub auth_method: AuthMethod,
    pub button_label: String,
    pub enabled: bool,
    pub client_secret_updated_at: Option<i64>,
    /// JSON of the last Verify result.
    pub last_verification: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Sign-in rules (SPEC §11), as configured (already normalised).
    pub allowed_email_domains: Vec<String>,
    pub require_verified_email: bool,
    pub allow_sign_up: bool,
}

pub const PURPOSE_OIDC_CLIENT_SECRET: &str = "oidc_client_secret";

pub(crate) fn partner_from(row: &Row) -> Result<PartnerRow> {
    let urls: String = row.try_get("allowed_return_urls")?;
    Ok(PartnerRow {
        id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        name: row.try_get("name")?,
        publishable_key: row.try_get("publishable_key")?,
        allowed_return_urls: decode_list(&urls),
        session_ttl_secs: row.try_get("session_ttl_secs")?,
        created_at: row.try_get("created_at")?,
    })
}

fn oidc_from(row: &Row) -> Result<CustomOidcRow> {
    oidc_cols(row, ["partner_id", "created_at", "updated_at"])
}

/// A Custom OIDC row; `[partner_id, created_at, updated_at]` name the
/// columns another table of a join also has.
fn oidc_cols(row: &Row, [partner_id, created_at, updated_at]: [&str; 3]) -> Result<CustomOidcRow> {
    Ok(CustomOidcRow {
        partner_id: row.try_get(partner_id)?,
        issuer: row.try_get("issuer")?,
        client_id: row.try_get("client_id")?,
        scopes: row.try_get("scopes")?,
        auth_method: auth_method_from(row)?,
        button_label: row.try_get("button_label")?,
        enabled: row.try_get::<i64>("enabled")? != 0,
        client_secret_updated_at: row.try_get("client_secret_updated_at")?,
        last_verification: row.try_get::<Option<String>>("last_verification")?,
        allowed_email_domains: row
            .try_get::<String>("allowed_email_domains")?
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        require_verified_email: row.try_get::<i64>("require_verified_email")? != 0,
        allow_sign_up: row.try_get::<i64>("allow_sign_up")? != 0,
        created_at: row.try_get(created_at)?,
        updated_at: row.try_get(updated_at)?,
    })
}

fn auth_method_from(row: &Row) -> Result<AuthMethod> {
    let raw: String = row.try_get("auth_method")?;
    AuthMethod::try_from(raw.as_str())
        .map_err(|_| StoreError::Decode(format!("unknown auth_method {raw:?}")))
}

/// Lists are stored as JSON arrays of strings in a TEXT column.
fn encode_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

fn decode_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

impl Store {
    pub(crate) const PARTNER_COLS: &'static str = "id, project_id, name, publishable_key, \
        allowed_return_urls, session_ttl_secs, created_at";

    /// The partner whose unique `column` holds `value`.
    async fn partner_where(&self, column: &'static str, value: &str) -> Result<Option<PartnerRow>> {
        let sql = format!(
            "SELECT {} FROM partners WHERE {column} = $1",
            Self::PARTNER_COLS
        );
        query(sql)
            .bind(value)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(partner_from)
            .transpose()
    }

    // ---- custom OIDC ----------------------------------------------------

    const OIDC_COLS: &'static str = "partner_id, issuer, client_id, scopes, auth_method, \
        button_label, enabled, client_secret_updated_at, last_verification, created_at, updated_at, \
        allowed_email_domains, require_verified_email, allow_sign_up";
}

pub(crate) async fn put_secret_tx(
    tx: &mut Tx,
    owner_id: &str,
    purpose: &str,
    sealed: &Sealed,
    now: i64,
) -> Result<()> {
    query(
        "INSERT INTO secrets (owner_id, purpose, key_id, wrapped_key, nonce, ciphertext, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (owner_id, purpose) DO UPDATE SET key_id = excluded.key_id, \
         wrapped_key = excluded.wrapped_key, nonce = excluded.nonce, \
         ciphertext = excluded.ciphertext, created_at = excluded.created_at",
    )
    .bind(owner_id)
    .bind(purpose)
    .bind(&sealed.key.key_id)
    .bind(&sealed.key.bytes)
    .bind(&sealed.nonce)
    .bind(&sealed.ciphertext)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl PartnerStore for Store {
    async fn insert_project(&self, id: &str, name: &str) -> Result<ProjectRow> {
        let now = now_unix();
        query("INSERT INTO projects (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(name)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(ProjectRow {
            id: id.into(),
            name: name.into(),
            created_at: now,
        })
    }

    async fn project(&self, id: &str) -> Result<Option<ProjectRow>> {
        let row = query("SELECT id, name, created_at FROM projects WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(ProjectRow {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
        }))
    }

    async fn insert_partner(
        &self,
        id: &str,
        project_id: &str,
        name: &str,
        publishable_key: &str,
        secret_key_hash: &str,
        session_ttl_secs: i64,
    ) -> Result<PartnerRow> {
        let now = now_unix();
        query(
            "INSERT INTO partners (id, project_id, name, publishable_key, secret_key_hash, \
             allowed_return_urls, session_ttl_secs, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(project_id)
        .bind(name)
        .bind(publishable_key)
        .bind(secret_key_hash)
        .bind(encode_list(&[]))
        .bind(session_ttl_secs)
        .bind(now)
        .execute(self.pool())
        .await?;
        self.partner(id).await?.ok_or(StoreError::NotFound)
    }

    async fn partner(&self, id: &str) -> Result<Option<PartnerRow>> {
        self.partner_where("id", id).await
    }

    async fn partner_by_secret_hash(&self, hash: &str) -> Result<Option<PartnerRow>> {
        self.partner_where("secret_key_hash", hash).await
    }

    async fn partner_by_publishable_key(&self, key: &str) -> Result<Option<PartnerRow>> {
        self.partner_where("publishable_key", key).await
    }

    async fn partner_with_oidc_by_publishable_key(
        &self,
        key: &str,
    ) -> Result<Option<(PartnerRow, Option<CustomOidcRow>)>> {
        let row = query(
            "SELECT p.id, p.project_id, p.name, p.publishable_key, p.allowed_return_urls, \
             p.session_ttl_secs, p.created_at, c.partner_id AS c_partner_id, c.issuer, \
             c.client_id, c.scopes, c.auth_method, c.button_label, c.enabled, \
             c.client_secret_updated_at, c.last_verification, c.created_at AS c_created_at, \
             c.updated_at AS c_updated_at, c.allowed_email_domains, c.require_verified_email, \
             c.allow_sign_up \
             FROM partners p LEFT JOIN custom_oidc c ON c.partner_id = p.id \
             WHERE p.publishable_key = $1",
        )
        .bind(key)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let partner = partner_from(&row)?;
        let oidc = match row.try_get::<Option<String>>("c_partner_id")? {
            None => None,
            Some(_) => Some(oidc_cols(
                &row,
                ["c_partner_id", "c_created_at", "c_updated_at"],
            )?),
        };
        Ok(Some((partner, oidc)))
    }

    async fn set_allowed_return_urls(&self, partner_id: &str, urls: &[String]) -> Result<()> {
        let done = query("UPDATE partners SET allowed_return_urls = $1 WHERE id = $2")
            .bind(encode_list(urls))
            .bind(partner_id)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn insert_developer(
        &self,
        id: &str,
        email: &str,
        password_hash: &str,
        project_ids: &[String],
    ) -> Result<DeveloperRow> {
        let now = now_unix();
        let mut tx = self.pool().begin().await?;
        query(
            "INSERT INTO developers (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(email)
        .bind(password_hash)
        .bind(now)
        .execute(&mut tx)
        .await?;
        for p in project_ids {
            let exists: Option<String> = query("SELECT id FROM projects WHERE id = $1")
                .bind(p)
                .scalar(&mut tx)
                .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound);
            }
            query(
                "INSERT INTO developer_projects (developer_id, project_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(p)
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(DeveloperRow {
            id: id.into(),
            email: email.into(),
            project_ids: project_ids.to_vec(),
            created_at: now,
        })
    }

    async fn developer_credentials(&self, email: &str) -> Result<Option<(String, String)>> {
        let row = query("SELECT id, password_hash FROM developers WHERE email = $1")
            .bind(email)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some((row.try_get("id")?, row.try_get("password_hash")?)))
    }
}

impl OidcConfigStore for Store {
    async fn custom_oidc(&self, partner_id: &str) -> Result<Option<CustomOidcRow>> {
        let sql = format!(
            "SELECT {} FROM custom_oidc WHERE partner_id = $1",
            Self::OIDC_COLS
        );
        query(sql)
            .bind(partner_id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(oidc_from)
            .transpose()
    }

    async fn upsert_custom_oidc(&self, c: &CustomOidcRow) -> Result<CustomOidcRow> {
        let now = now_unix();
        query(
            "INSERT INTO custom_oidc (partner_id, issuer, client_id, scopes, auth_method, \
             button_label, enabled, client_secret_updated_at, last_verification, created_at, updated_at, \
             allowed_email_domains, require_verified_email, allow_sign_up) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, $8, $8, $9, $10, $11) \
             ON CONFLICT (partner_id) DO UPDATE SET issuer = excluded.issuer, \
             allowed_email_domains = excluded.allowed_email_domains, \
             require_verified_email = excluded.require_verified_email, \
             allow_sign_up = excluded.allow_sign_up, \
             client_id = excluded.client_id, scopes = excluded.scopes, \
             auth_method = excluded.auth_method, button_label = excluded.button_label, \
             enabled = CASE WHEN excluded.auth_method <> 'none' \
                AND custom_oidc.client_secret_updated_at IS NULL THEN 0 ELSE excluded.enabled END, \
             updated_at = excluded.updated_at, \
             last_verification = CASE WHEN custom_oidc.issuer = excluded.issuer \
                AND custom_oidc.client_id = excluded.client_id \
                AND custom_oidc.auth_method = excluded.auth_method \
                AND custom_oidc.scopes = excluded.scopes \
                THEN custom_oidc.last_verification ELSE NULL END",
        )
        .bind(&c.partner_id)
        .bind(&c.issuer)
        .bind(&c.client_id)
        .bind(&c.scopes)
        .bind(c.auth_method.as_str())
        .bind(&c.button_label)
        .bind(i64::from(c.enabled))
        .bind(now)
        .bind(c.allowed_email_domains.join("\n"))
        .bind(i64::from(c.require_verified_email))
        .bind(i64::from(c.allow_sign_up))
        .execute(self.pool())
        .await?;
        self.custom_oidc(&c.partner_id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn set_verification(&self, partner_id: &str, json: &str) -> Result<()> {
        query("UPDATE custom_oidc SET last_verification = $1 WHERE partner_id = $2")
            .bind(json)
            .bind(partner_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn delete_custom_oidc(&self, partner_id: &str) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        query("DELETE FROM secrets WHERE owner_id = $1 AND purpose = $2")
            .bind(partner_id)
            .bind(PURPOSE_OIDC_CLIENT_SECRET)
            .execute(&mut tx)
            .await?;
        let done = query("DELETE FROM custom_oidc WHERE partner_id = $1")
            .bind(partner_id)
            .execute(&mut tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_client_secret(&self, partner_id: &str, sealed: &Sealed) -> Result<()> {
        let now = now_unix();
        let mut tx = self.pool().begin().await?;
        let done = query(
            "UPDATE custom_oidc SET client_secret_updated_at = $1, updated_at = $1 \
             WHERE partner_id = $2 AND auth_method <> 'none'",
        )
        .bind(now)
        .bind(partner_id)
        .execute(&mut tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        put_secret_tx(&mut tx, partner_id, PURPOSE_OIDC_CLIENT_SECRET, sealed, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn clear_client_secret(&self, partner_id: &str, disable: bool) -> Result<()> {
        let now = now_unix();
        let mut tx = self.pool().begin().await?;
        let done = query(
            "UPDATE custom_oidc SET client_secret_updated_at = NULL, updated_at = $1, \
             enabled = CASE WHEN $2 = 1 THEN 0 ELSE enabled END WHERE partner_id = $3",
        )
        .bind(now)
        .bind(i64::from(disable))
        .bind(partner_id)
        .execute(&mut tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        query("DELETE FROM secrets WHERE owner_id = $1 AND purpose = $2")
            .bind(partner_id)
            .bind(PURPOSE_OIDC_CLIENT_SECRET)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_encoding_roundtrips() {
        let items = vec![
            "https://app.example.com/cb".to_string(),
            "myapp://callback".to_string(),
            "q\"uote\\back\u{1}".to_string(),
        ];
        assert_eq!(decode_list(&encode_list(&items)), items);
        assert!(decode_list(&encode_list(&[])).is_empty());
    }
}
