//! The `aws-kms` key provider: data keys from AWS KMS `GenerateDataKey`,
//! unwrapped with `Decrypt`, through the official SDK (`aws-sdk-kms`) and
//! the standard AWS credential chain (environment, shared profile files,
//! web identity, container and instance roles). The record and purpose a
//! data key protects are its encryption context, so KMS itself refuses to
//! unwrap a key for another record. The KMS endpoint is the operator's,
//! not a partner's, so it does not go through the SSRF-safe client.

use aws_sdk_kms::error::{DisplayErrorContext, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use keystead_crypto::provider::{BoxFuture, DataKey};
use keystead_crypto::{KeyContext, KeyProvider, ProviderError, WrappedKey};
use zeroize::Zeroizing;

/// Prefix of the `key_id` of data keys wrapped by KMS (`aws-kms:<key ARN>`).
pub const KEY_ID_PREFIX: &str = "aws-kms:";
const CONTEXT_OWNER: &str = "keystead:owner";
const CONTEXT_PURPOSE: &str = "keystead:purpose";

pub struct AwsKmsProvider {
    client: aws_sdk_kms::Client,
    key_id: String,
    /// The configured key's ARN, once DescribeKey answered.
    arn: tokio::sync::OnceCell<String>,
    /// KMS calls by operation and result, for `/metrics`.
    calls: std::sync::Mutex<std::collections::BTreeMap<(&'static str, &'static str), u64>>,
}

impl std::fmt::Debug for AwsKmsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKmsProvider")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl AwsKmsProvider {
    /// A provider for KMS key `key_id` (id, ARN or alias) in `region`, at
    /// `endpoint_url` when set (a KMS-compatible endpoint, e.g. for tests).
    pub async fn connect(key_id: &str, region: Option<&str>, endpoint_url: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(r) = region {
            loader = loader.region(aws_config::Region::new(r.to_string()));
        }
        if let Some(e) = endpoint_url {
            loader = loader.endpoint_url(e);
        }
        let conf = loader.load().await;
        AwsKmsProvider {
            client: aws_sdk_kms::Client::new(&conf),
            key_id: key_id.to_string(),
            arn: tokio::sync::OnceCell::new(),
            calls: std::sync::Mutex::default(),
        }
    }
}

impl AwsKmsProvider {
    fn count<T, E>(&self, call: &'static str, r: &Result<T, E>) {
        let result = if r.is_ok() { "ok" } else { "error" };
        if let Ok(mut c) = self.calls.lock() {
            *c.entry((call, result)).or_insert(0) += 1;
        }
    }

    /// The ARN of the configured key (an alias or id resolves to it).
    async fn arn(&self) -> Result<String, ProviderError> {
        self.arn
            .get_or_try_init(|| async {
                let out = self
                    .client
                    .describe_key()
                    .key_id(&self.key_id)
                    .send()
                    .await
                    .map_err(|e| {
                        ProviderError::Unavailable(format!("KMS DescribeKey: {}", describe(&e)))
                    })?;
                out.key_metadata
                    .and_then(|m| m.arn)
                    .ok_or_else(|| ProviderError::Unavailable("KMS described no key ARN".into()))
            })
            .await
            .cloned()
    }
}

/// A KMS error in words, never with key material (KMS errors carry none).
fn describe<E: std::error::Error + 'static, R: std::fmt::Debug>(e: &SdkError<E, R>) -> String {
    let text = DisplayErrorContext(e).to_string();
    text.chars().filter(|c| !c.is_control()).take(300).collect()
}

/// Whether KMS answered that the ciphertext or its context is wrong (as
/// opposed to KMS being unreachable or refusing us).
fn is_bad_ciphertext<E: std::error::Error + 'static, R: std::fmt::Debug>(
    e: &SdkError<E, R>,
) -> bool {
    let text = DisplayErrorContext(e).to_string();
    text.contains("InvalidCiphertextException") || text.contains("IncorrectKeyException")
}

fn data_key(plain: &[u8]) -> Result<Zeroizing<[u8; 32]>, ProviderError> {
    let mut out = Zeroizing::new([0u8; 32]);
    if plain.len() != 32 {
        return Err(ProviderError::Unavailable(format!(
            "KMS returned a {}-byte data key, not 32",
            plain.len()
        )));
    }
    out.copy_from_slice(plain);
    Ok(out)
}

impl KeyProvider for AwsKmsProvider {
    fn generate_data_key<'a>(
        &'a self,
        ctx: KeyContext<'a>,
    ) -> BoxFuture<'a, Result<DataKey, ProviderError>> {
        Box::pin(async move {
            let out = self
                .client
                .generate_data_key()
                .key_id(&self.key_id)
                .key_spec(DataKeySpec::Aes256)
                .encryption_context(CONTEXT_OWNER, ctx.owner_id)
                .encryption_context(CONTEXT_PURPOSE, ctx.purpose)
                .send()
                .await;
            self.count("generate_data_key", &out);
            let out = out.map_err(|e| {
                ProviderError::Unavailable(format!("KMS GenerateDataKey: {}", describe(&e)))
            })?;
            let plain = out
                .plaintext
                .ok_or_else(|| ProviderError::Unavailable("KMS returned no data key".into()))?;
            let dek = data_key(plain.as_ref())?;
            let wrapped = out
                .ciphertext_blob
                .ok_or_else(|| ProviderError::Unavailable("KMS returned no wrapped key".into()))?;
            let arn = out.key_id.unwrap_or_else(|| self.key_id.clone());
            Ok((
                dek,
                WrappedKey {
                    key_id: format!("{KEY_ID_PREFIX}{arn}"),
                    bytes: wrapped.into_inner(),
                },
            ))
        })
    }

    fn unwrap_key<'a>(
        &'a self,
        wrapped: &'a WrappedKey,
        ctx: KeyContext<'a>,
    ) -> BoxFuture<'a, Result<Zeroizing<[u8; 32]>, ProviderError>> {
        Box::pin(async move {
            let Some(arn) = wrapped.key_id.strip_prefix(KEY_ID_PREFIX) else {
                return Err(ProviderError::UnknownKey(wrapped.key_id.clone()));
            };
            let out = self
                .client
                .decrypt()
                .key_id(arn)
                .ciphertext_blob(Blob::new(wrapped.bytes.clone()))
                .encryption_context(CONTEXT_OWNER, ctx.owner_id)
                .encryption_context(CONTEXT_PURPOSE, ctx.purpose)
                .send()
                .await;
            self.count("decrypt", &out);
            let out = out.map_err(|e| {
                if is_bad_ciphertext(&e) {
                    ProviderError::Unwrap
                } else {
                    ProviderError::Unavailable(format!("KMS Decrypt: {}", describe(&e)))
                }
            })?;
            let plain = out
                .plaintext
                .ok_or_else(|| ProviderError::Unavailable("KMS returned no plaintext".into()))?;
            data_key(plain.as_ref())
        })
    }

    fn wrap_key<'a>(
        &'a self,
        dek: &'a [u8; 32],
        ctx: KeyContext<'a>,
    ) -> BoxFuture<'a, Result<WrappedKey, ProviderError>> {
        Box::pin(async move {
            let out = self
                .client
                .encrypt()
                .key_id(&self.key_id)
                .plaintext(Blob::new(dek.to_vec()))
                .encryption_context(CONTEXT_OWNER, ctx.owner_id)
                .encryption_context(CONTEXT_PURPOSE, ctx.purpose)
                .send()
                .await;
            self.count("encrypt", &out);
            let out = out.map_err(|e| {
                ProviderError::Unavailable(format!("KMS Encrypt: {}", describe(&e)))
            })?;
            let wrapped = out
                .ciphertext_blob
                .ok_or_else(|| ProviderError::Unavailable("KMS returned no wrapped key".into()))?;
            let arn = match out.key_id {
                Some(a) => a,
                None => self.arn().await?,
            };
            Ok(WrappedKey {
                key_id: format!("{KEY_ID_PREFIX}{arn}"),
                bytes: wrapped.into_inner(),
            })
        })
    }

    fn current_key_id(&self) -> BoxFuture<'_, Result<String, ProviderError>> {
        Box::pin(async move { Ok(format!("{KEY_ID_PREFIX}{}", self.arn().await?)) })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(async move {
            let out = self.client.describe_key().key_id(&self.key_id).send().await;
            self.count("describe_key", &out);
            out.map_err(|e| {
                ProviderError::Unavailable(format!("KMS DescribeKey: {}", describe(&e)))
            })?;
            Ok(())
        })
    }

    fn call_counts(&self) -> Vec<(&'static str, &'static str, u64)> {
        self.calls
            .lock()
            .map(|c| {
                c.iter()
                    .map(|((call, result), n)| (*call, *result, *n))
                    .collect()
            })
            .unwrap_or_default()
    }
}
