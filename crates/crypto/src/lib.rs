//! Keys and secrets (SPEC §7). Everything that must never be readable at rest
//! goes through [`envelope`]: a fresh AES-256-GCM data key per record, wrapped
//! by a [`KeyProvider`], with the owning record's id and purpose bound as AAD
//! so that a ciphertext moved to another row no longer decrypts. Tokens that
//! only need to be recognised (API secret keys, session tokens) are stored as
//! SHA-256 hashes; passwords as argon2id.

pub mod envelope;
pub mod hashing;
pub mod local;
pub mod provider;

pub use envelope::{open, seal, Sealed};
pub use provider::{KeyContext, KeyProvider, ProviderError, Routing, WrappedKey};
pub use secrecy::{ExposeSecret, SecretString};

use rand::RngCore;

/// `n` bytes from the OS CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut out);
    out
}

/// A random identifier or token: `prefix` followed by 32 lowercase base32
/// characters (160 bits), safe in URLs, headers and file names.
pub fn random_token(prefix: &str) -> String {
    random_token_bits(prefix, 20)
}

/// Like [`random_token`] with `bytes` bytes of entropy.
pub fn random_token_bits(prefix: &str, bytes: usize) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut raw = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let mut out = String::with_capacity(prefix.len() + bytes * 8 / 5 + 1);
    out.push_str(prefix);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in raw {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_prefixed() {
        let a = random_token("sk_");
        let b = random_token("sk_");
        assert!(a.starts_with("sk_"));
        assert_eq!(a.len(), 3 + 32);
        assert_ne!(a, b);
    }
}
