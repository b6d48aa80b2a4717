use std::future::Future;
use std::pin::Pin;

use zeroize::Zeroizing;

/// A data key wrapped by a key provider. `key_id` names the provider and the
/// key version that wrapped it (`local:3`), so old rows stay readable after a
/// rotation and `kms rewrap` can find what is not on the newest version yet.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub key_id: String,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrappedKey")
            .field("key_id", &self.key_id)
            .field("bytes", &format_args!("{} bytes", self.bytes.len()))
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("key provider unavailable: {0}")]
    Unavailable(String),
    #[error("key version {0} is not known to this key provider")]
    UnknownKey(String),
    #[error("the data key could not be unwrapped (wrong key or tampered record)")]
    Unwrap,
    #[error("key file: {0}")]
    KeyFile(String),
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A fresh data key in clear (zeroized on drop) and its wrapped form.
pub type DataKey = (Zeroizing<[u8; 32]>, WrappedKey);

/// What a data key protects: the record and the use. The envelope binds
/// them as AAD; a KMS binds them as the encryption context, so a wrapped
/// key copied to another record does not even unwrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyContext<'a> {
    pub owner_id: &'a str,
    pub purpose: &'a str,
}

/// Wraps and unwraps 256-bit data keys. Implementations: `local` (a key file)
/// and `aws-kms`. Async because a KMS is a network call.
pub trait KeyProvider: Send + Sync + 'static {
    /// Creates a fresh data key for `ctx` and returns it with its wrapped
    /// form.
    fn generate_data_key<'a>(
        &'a self,
        ctx: KeyContext<'a>,
    ) -> BoxFuture<'a, Result<DataKey, ProviderError>>;

    /// The data key of `wrapped`, which must have been made for `ctx`.
    fn unwrap_key<'a>(
        &'a self,
        wrapped: &'a WrappedKey,
        ctx: KeyContext<'a>,
    ) -> BoxFuture<'a, Result<Zeroizing<[u8; 32]>, ProviderError>>;

    /// Wraps an existing data key for `ctx` under the newest key (what
    /// `keystead kms rewrap` does to every row not on it yet).
    fn wrap_key<'a>(
        &'a self,
        dek: &'a [u8; 32],
        ctx: KeyContext<'a>,
    ) -> BoxFuture<'a, Result<WrappedKey, ProviderError>>;

    /// The `key_id` new data keys get (`local:3`, `aws-kms:<ARN>`).
    fn current_key_id(&self) -> BoxFuture<'_, Result<String, ProviderError>>;

    /// A cheap liveness check for `/readyz`.
    fn check(&self) -> BoxFuture<'_, Result<(), ProviderError>>;

    /// Calls to a remote key service so far, as `(call, result, count)`
    /// (`/metrics`); a local provider makes none.
    fn call_counts(&self) -> Vec<(&'static str, &'static str, u64)> {
        Vec::new()
    }
}

/// New keys from `primary`; rows wrapped by another provider (by the
/// prefix of their `key_id`) still open through it. This is how a `local`
/// install moves to KMS: both work until `keystead kms migrate` has
/// re-wrapped every row.
pub struct Routing {
    pub primary: std::sync::Arc<dyn KeyProvider>,
    pub primary_prefix: &'static str,
    pub others: Vec<(&'static str, std::sync::Arc<dyn KeyProvider>)>,
}

impl Routing {
    fn for_key(&self, key_id: &str) -> Result<&dyn KeyProvider, ProviderError> {
        if key_id.starts_with(self.primary_prefix) {
            return Ok(self.primary.as_ref());
        }
        self.others
            .iter()
            .find(|(prefix, _)| key_id.starts_with(prefix))
            .map(|(_, p)| p.as_ref())
            .ok_or_else(|| ProviderError::UnknownKey(key_id.to_string()))
    }
}

impl KeyProvider for Routing {
    fn generate_data_key<'a>(
        &'a self,
        ctx: KeyContext<'a>,
    ) -> BoxFuture<'a, Result<DataKey, ProviderError>> {
        self.primary.generate_data_key(ctx)
    }

    fn unwrap_key<'a>(
        &'a self,
        wrapped: &'a WrappedKey,
        ctx: KeyContext<'a>,
    ) -> BoxFuture<'a, Result<Zeroizing<[u8; 32]>, ProviderError>> {
        match self.for_key(&wrapped.key_id) {
            Ok(p) => p.unwrap_key(wrapped, ctx),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn wrap_key<'a>(
        &'a self,
        dek: &'a [u8; 32],
        ctx: KeyContext<'a>,
    ) -> BoxFuture<'a, Result<WrappedKey, ProviderError>> {
        self.primary.wrap_key(dek, ctx)
    }

    fn current_key_id(&self) -> BoxFuture<'_, Result<String, ProviderError>> {
        self.primary.current_key_id()
    }

    fn check(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        self.primary.check()
    }

    fn call_counts(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut all = self.primary.call_counts();
        for (_, p) in &self.others {
            all.extend(p.call_counts());
        }
        all
    }
}
