//! Hashes for things we only need to recognise. API secret keys and session
//! tokens carry ≥160 bits of randomness, so one SHA-256 is enough and keeps
//! lookups O(1) by hash; passwords are low-entropy and get argon2id.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};

/// Hex SHA-256 of a high-entropy token, with a domain-separation tag.
pub fn token_hash(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"keystead-token-v1:");
    h.update(token.as_bytes());
    hex::encode(h.finalize())
}

pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Constant-time comparison for short secrets (CSRF tokens, state cookies).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_roundtrip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
    }

    #[test]
    fn token_hash_is_stable_and_hides_token() {
        let t = "sk_abc";
        assert_eq!(token_hash(t), token_hash(t));
        assert!(!token_hash(t).contains("abc"));
        assert_ne!(token_hash(t), token_hash("sk_abd"));
    }
}
