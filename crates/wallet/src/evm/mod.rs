//! EVM signatures: EIP-191 personal messages, EIP-712 typed data, and legacy
//! (EIP-155) and EIP-1559 transactions.
//!
//! Requests arrive as the JSON that ethers, viem and eth-account produce, and
//! a signature is only worth something if it covers exactly the bytes those
//! libraries would have signed. A lenient parser is the dangerous kind here:
//! a dropped field, a truncated number or an EIP-712 property the type does
//! not declare would make the signature cover something other than what the
//! user was shown. So input is parsed strictly (`json.rs`), and anything
//! unknown, ambiguous or out of range is refused with a sentence saying what
//! to fix. Every signature is recovered once before it is returned, so a
//! fault in the signing path shows up as an error rather than as a useless
//! signature. The 256-bit quantities, addresses, EIP-55 and keccak come from
//! `alloy-primitives`, the transaction encoding from `alloy-rlp`; signing
//! and recovery stay on `k256`, which the Cosmos wallets share.

mod eip712;
mod json;
mod tx;

#[cfg(test)]
mod testutil;

use alloy_primitives::Address;
use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};

pub use eip712::{eip712_digest, sign_typed_data};
pub use tx::sign_transaction;

#[derive(Debug, thiserror::Error)]
pub enum EvmError {
    /// The request cannot be signed as given; the text says what to change.
    #[error("{0}")]
    Invalid(String),
    /// A signature that is malformed or does not recover to a public key.
    #[error("{0}")]
    BadSignature(String),
    /// The signing primitive failed or its self-check did not hold; not caused
    /// by the request.
    #[error("signing failed: {0}")]
    Signing(String),
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, EvmError> {
    Err(EvmError::Invalid(msg.into()))
}

pub fn keccak256(data: &[u8]) -> [u8; 32] {
    alloy_primitives::keccak256(data).0
}

/// The digest that personal_sign signs: keccak256 of
/// "\x19Ethereum Signed Message:\n" ‖ decimal byte length ‖ message.
pub fn personal_message_digest(message: &[u8]) -> [u8; 32] {
    alloy_primitives::eip191_hash_message(message).0
}

/// EIP-191 personal_sign of the message bytes: keccak256("\x19Ethereum Signed Message:\n" + decimal len + message); returns r‖s‖v, v = 27/28.
///
/// The bytes are signed as given: a text that looks like 0x-hex is still text
/// to the caller, who decides whether to decode it before calling.
pub fn sign_personal_message(key: &SigningKey, message: &[u8]) -> Result<[u8; 65], EvmError> {
    sign_digest(key, &personal_message_digest(message))
}

/// Signs a 32-byte digest as is; r‖s‖v with v = 27/28.
pub fn sign_digest(key: &SigningKey, digest: &[u8; 32]) -> Result<[u8; 65], EvmError> {
    let (sig, recid) = key
        .sign_prehash_recoverable(digest)
        .map_err(|e| EvmError::Signing(e.to_string()))?;
    // k256 already returns low-s; normalizing again is free and keeps the
    // recovery id right should that ever change.
    let (sig, recid) = match sig.normalize_s() {
        Some(low) => (
            low,
            RecoveryId::new(!recid.is_y_odd(), recid.is_x_reduced()),
        ),
        None => (sig, recid),
    };
    if recid.is_x_reduced() {
        return Err(EvmError::Signing(
            "the nonce point's x coordinate exceeds the group order, which Ethereum's v cannot express"
                .into(),
        ));
    }
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(&sig.to_bytes());
    out[64] = 27 + u8::from(recid.is_y_odd());
    let recovered = recover_address(digest, &out)
        .map_err(|e| EvmError::Signing(format!("self-check failed: {e}")))?;
    if recovered != address_of(key.verifying_key()) {
        return Err(EvmError::Signing(
            "self-check failed: the signature does not recover to the signing key".into(),
        ));
    }
    Ok(out)
}

/// Recovers the address (EIP-55 not required here, lowercase 0x-hex is fine) that signed `digest` — for tests and self-checks.
///
/// Accepts v as 27/28 or 0/1. High-s signatures are refused, as Ethereum
/// transactions refuse them (EIP-2).
pub fn recover_address(digest: &[u8; 32], sig: &[u8; 65]) -> Result<[u8; 20], EvmError> {
    let odd = match sig[64] {
        0 | 27 => false,
        1 | 28 => true,
        v => {
            return Err(EvmError::BadSignature(format!(
                "the signature's v is {v}; it must be 27 or 28 (or 0 or 1)"
            )))
        }
    };
    let signature = Signature::from_slice(&sig[..64]).map_err(|_| {
        EvmError::BadSignature("the signature's r or s is zero or not below the curve order".into())
    })?;
    if signature.normalize_s().is_some() {
        return Err(EvmError::BadSignature(
            "the signature's s is in the upper half of the curve order; only low-s signatures are accepted"
                .into(),
        ));
    }
    let key = VerifyingKey::recover_from_prehash(digest, &signature, RecoveryId::new(odd, false))
        .map_err(|_| {
        EvmError::BadSignature("the signature does not recover to a public key".into())
    })?;
    Ok(address_of(&key))
}

fn address_of(key: &VerifyingKey) -> [u8; 20] {
    evm_address(key).into_array()
}

/// The address of a secp256k1 public key: the last 20 bytes of keccak256 of
/// the uncompressed point without its 0x04 tag.
pub(crate) fn evm_address(key: &VerifyingKey) -> Address {
    let point = key.to_encoded_point(false);
    Address::from_word(alloy_primitives::keccak256(&point.as_bytes()[1..]))
}

#[cfg(test)]
mod tests {
    use super::testutil::{cow_key, h32, key};
    use super::*;

    #[test]
    fn keccak_of_empty_input() {
        assert_eq!(
            hex::encode(keccak256(b"")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
    }

    // --- EIP-191 ------------------------------------------------------------------

    #[test]
    fn personal_sign_matches_the_web3js_docs_vector() {
        let k = key("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318");
        assert_eq!(
            hex::encode(address_of(k.verifying_key())),
            "2c7536e3605d9c16a7a3d7b1898e529396a65c23"
        );
        assert_eq!(
            hex::encode(personal_message_digest(b"Some data")),
            "1da44b586eb0729ff70a73c326926f6ed5a25f5b056e7f47fbc6e58d86871655"
        );
        let sig = sign_personal_message(&k, b"Some data").unwrap();
        assert_eq!(
            hex::encode(sig),
            "b91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a0291c"
        );
        assert_eq!(
            recover_address(&personal_message_digest(b"Some data"), &sig).unwrap(),
            address_of(k.verifying_key())
        );
    }

    #[test]
    fn personal_sign_counts_bytes_and_treats_hex_looking_text_as_text() {
        let d = personal_message_digest("é".as_bytes());
        assert_eq!(d, keccak256("\x19Ethereum Signed Message:\n2é".as_bytes()));
        assert_ne!(
            personal_message_digest(b"0x1234"),
            personal_message_digest(&[0x12, 0x34])
        );
        let k = cow_key();
        let sig = sign_personal_message(&k, b"0x1234").unwrap();
        assert_eq!(
            recover_address(&personal_message_digest(b"0x1234"), &sig).unwrap(),
            address_of(k.verifying_key())
        );
    }

    // --- signatures and recovery ----------------------------------------------------

    #[test]
    fn sign_digest_is_low_s_and_recovers_for_many_digests() {
        let half_order = h32("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0");
        let k = key("0x4646464646464646464646464646464646464646464646464646464646464646");
        let mut seen = [false; 2];
        for i in 0u32..64 {
            let digest = keccak256(&i.to_be_bytes());
            let sig = sign_digest(&k, &digest).unwrap();
            assert!(sig[32..64] <= half_order[..], "high s");
            assert!(sig[64] == 27 || sig[64] == 28);
            seen[usize::from(sig[64] - 27)] = true;
            assert_eq!(
                recover_address(&digest, &sig).unwrap(),
                address_of(k.verifying_key())
            );
            // v as 0/1 recovers the same; the other parity does not.
            let mut zero_one = sig;
            zero_one[64] -= 27;
            assert_eq!(
                recover_address(&digest, &zero_one).unwrap(),
                address_of(k.verifying_key())
            );
            let mut flipped = sig;
            flipped[64] = if sig[64] == 27 { 28 } else { 27 };
            assert_ne!(
                recover_address(&digest, &flipped).ok(),
                Some(address_of(k.verifying_key()))
            );
        }
        assert!(
            seen[0] && seen[1],
            "both parities should occur in 64 signatures"
        );
    }

    #[test]
    fn recover_refuses_malformed_signatures() {
        let k = cow_key();
        let digest = keccak256(b"x");
        let sig = sign_digest(&k, &digest).unwrap();
        let bad =
            |s: [u8; 65]| matches!(recover_address(&digest, &s), Err(EvmError::BadSignature(_)));
        let mut v29 = sig;
        v29[64] = 29;
        assert!(bad(v29));
        let mut zero_r = sig;
        zero_r[..32].fill(0);
        assert!(bad(zero_r));
        let mut big_s = sig;
        big_s[32..64].fill(0xff);
        assert!(bad(big_s));
        // The high-s twin (n - s, flipped v) is refused.
        let n = h32("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
        let mut twin = sig;
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let d = i16::from(n[i]) - i16::from(sig[32 + i]) - borrow;
            twin[32 + i] = (d.rem_euclid(256)) as u8;
            borrow = i16::from(d < 0);
        }
        twin[64] = if sig[64] == 27 { 28 } else { 27 };
        assert!(bad(twin));
    }
}
