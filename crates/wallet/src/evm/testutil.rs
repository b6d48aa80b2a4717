//! Helpers shared by the EVM tests: keys from the published vectors, hex
//! literals, and the refusal text of an `EvmError::Invalid`.

use k256::ecdsa::SigningKey;
use serde_json::json;

use super::{json::parse_uint, keccak256, EvmError};

pub fn key(hex_key: &str) -> SigningKey {
    let bytes = hex::decode(hex_key.trim_start_matches("0x")).unwrap();
    SigningKey::from_slice(&bytes).unwrap()
}

/// keccak256("cow"), the key of the EIP-712 examples.
pub fn cow_key() -> SigningKey {
    SigningKey::from_slice(&keccak256(b"cow")).unwrap()
}

pub fn h(s: &str) -> Vec<u8> {
    hex::decode(s.trim_start_matches("0x")).unwrap()
}

pub fn h32(s: &str) -> [u8; 32] {
    h(s).try_into().unwrap()
}

pub fn addr(s: &str) -> [u8; 20] {
    h(s).try_into().unwrap()
}

/// A decimal string as 32 big-endian bytes.
pub fn dec32(s: &str) -> [u8; 32] {
    parse_uint(&json!(s), "test", 256).unwrap().to_be_bytes()
}

pub fn pad32(b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[32 - b.len()..].copy_from_slice(b);
    out
}

pub fn err_text(r: Result<impl std::fmt::Debug, EvmError>) -> String {
    match r {
        Err(EvmError::Invalid(msg)) => msg,
        other => panic!("expected EvmError::Invalid, got {other:?}"),
    }
}
