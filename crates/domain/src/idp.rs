//! The partner IdPs through the `oidc` crate: its shared document cache
//! lives in the store, and its errors become the domain's.

use keystead_oidc::{CachedDoc, DocStore, Kind, OidcError, Provider, StoreFailure};
use keystead_store::{DocCacheStore, Store};

use crate::error::Error;

/// The IdP client keystead runs with: provider documents cached in the
/// database.
pub type Idp = Provider<StoreDocs>;

/// The store as the `oidc` crate's [`DocStore`].
#[derive(Debug, Clone)]
pub struct StoreDocs(pub Store);

impl DocStore for StoreDocs {
    async fn cached_doc(&self, url: &str) -> Result<Option<CachedDoc>, StoreFailure> {
        Ok(self.0.cached_doc(url).await?)
    }

    async fn put_cached_doc(&self, url: &str, doc: &CachedDoc) -> Result<(), StoreFailure> {
        Ok(self.0.put_cached_doc(url, doc).await?)
    }

    async fn claim_refetch(&self, url: &str, now: i64, min_gap: i64) -> Result<bool, StoreFailure> {
        Ok(self.0.claim_refetch(url, now, min_gap).await?)
    }
}

impl From<OidcError> for Error {
    fn from(e: OidcError) -> Self {
        match e.kind {
            Kind::Internal => Error::internal(e.message),
            kind => Error::Api {
                code: kind.code(),
                message: e.message,
                hint: e.hint,
            },
        }
    }
}
