//! Envelope encryption of one secret. The AAD is `owner id ‖ purpose`, so a
//! ciphertext only opens for the row and use it was sealed for.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use crate::provider::{KeyContext, KeyProvider, ProviderError, WrappedKey};
use crate::random_bytes;

/// A sealed secret as stored: the wrapped data key, the nonce and the
/// ciphertext (with its GCM tag). Nothing here is sensitive on its own.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key: WrappedKey,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

fn aad(owner_id: &str, purpose: &str) -> Vec<u8> {
    // Length-prefix the owner id so ("ab","c") and ("a","bc") differ.
    let mut out = Vec::with_capacity(owner_id.len() + purpose.len() + 9);
    out.extend_from_slice(b"ks1");
    out.extend_from_slice(&(owner_id.len() as u32).to_be_bytes());
    out.extend_from_slice(owner_id.as_bytes());
    out.extend_from_slice(purpose.as_bytes());
    out
}

pub async fn seal(
    provider: &dyn KeyProvider,
    owner_id: &str,
    purpose: &str,
    plaintext: &[u8],
) -> Result<Sealed, ProviderError> {
    let ctx = KeyContext { owner_id, purpose };
    let (dek, key) = provider.generate_data_key(ctx).await?;
    let cipher = Aes256Gcm::new_from_slice(&dek[..]).map_err(|_| ProviderError::Unwrap)?;
    let nonce = random_bytes::<12>();
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad(owner_id, purpose),
            },
        )
        .map_err(|_| ProviderError::Unwrap)?;
    Ok(Sealed {
        key,
        nonce: nonce.to_vec(),
        ciphertext,
    })
}

/// Opens a sealed secret; the plaintext is zeroized when dropped.
pub async fn open(
    provider: &dyn KeyProvider,
    owner_id: &str,
    purpose: &str,
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
    if sealed.nonce.len() != 12 {
        return Err(ProviderError::Unwrap);
    }
    let ctx = KeyContext { owner_id, purpose };
    let dek = provider.unwrap_key(&sealed.key, ctx).await?;
    let cipher = Aes256Gcm::new_from_slice(&dek[..]).map_err(|_| ProviderError::Unwrap)?;
    cipher
        .decrypt(
            Nonce::from_slice(&sealed.nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad: &aad(owner_id, purpose),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| ProviderError::Unwrap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::LocalKeyProvider;

    #[tokio::test]
    async fn sealed_secret_opens_only_for_its_row_and_purpose() {
        let dir = tempfile::tempdir().unwrap();
        let p = LocalKeyProvider::open_or_create(&dir.path().join("k")).unwrap();
        let a = seal(&p, "ptn_a", "oidc_client_secret", b"alpha")
            .await
            .unwrap();
        let b = seal(&p, "ptn_b", "oidc_client_secret", b"bravo")
            .await
            .unwrap();
        assert_eq!(
            &open(&p, "ptn_a", "oidc_client_secret", &a).await.unwrap()[..],
            b"alpha"
        );
        assert!(!a.ciphertext.windows(5).any(|w| w == b"alpha"));
        // Swapped rows: each ciphertext now sits under the other record id.
        assert!(open(&p, "ptn_b", "oidc_client_secret", &a).await.is_err());
        assert!(open(&p, "ptn_a", "oidc_client_secret", &b).await.is_err());
        // Same row, other purpose.
        assert!(open(&p, "ptn_a", "wallet_key", &a).await.is_err());
        // Ciphertext with another row's data key.
        let mixed = Sealed {
            key: b.key.clone(),
            ..a.clone()
        };
        assert!(open(&p, "ptn_a", "oidc_client_secret", &mixed)
            .await
            .is_err());
    }
}
