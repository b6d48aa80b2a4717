//! The shared cache of IdP documents (discovery, JWKS): one row per URL,
//! replaced on refetch, and the claim that limits unknown-kid refetches
//! across instances.

use crate::db::query;
use crate::repo::*;
use crate::{Result, Store};

pub use keystead_model::CachedDoc;

impl DocCacheStore for Store {
    async fn cached_doc(&self, url: &str) -> Result<Option<CachedDoc>> {
        let row = query("SELECT body, fetched_at, expires_at FROM provider_cache WHERE url = $1")
            .bind(url)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(CachedDoc {
                body: r.try_get("body")?,
                fetched_at: r.try_get("fetched_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    async fn put_cached_doc(&self, url: &str, doc: &CachedDoc) -> Result<()> {
        query(
            "INSERT INTO provider_cache (url, body, fetched_at, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (url) DO UPDATE SET body = excluded.body, fetched_at = excluded.fetched_at, \
             expires_at = excluded.expires_at",
        )
        .bind(url)
        .bind(&doc.body)
        .bind(doc.fetched_at)
        .bind(doc.expires_at)
        .execute(self.ephemeral())
        .await?;
        Ok(())
    }

    async fn claim_refetch(&self, url: &str, now: i64, min_age: i64) -> Result<bool> {
        let done = query(
            "UPDATE provider_cache SET refetched_at = $1 WHERE url = $2 AND refetched_at <= $3",
        )
        .bind(now)
        .bind(url)
        .bind(now - min_age)
        .execute(self.ephemeral())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
