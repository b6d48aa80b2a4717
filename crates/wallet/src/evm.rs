//! EVM signatures: EIP-191 personal messages, EIP-712 typed data, and legacy
//! (EIP-155) and EIP-1559 transactions.
//!
//! Requests arrive as the JSON that ethers, viem and eth-account produce, and
//! a signature is only worth something if it covers exactly the bytes those
//! libraries would have signed. A lenient parser is the dangerous kind here:
//! a dropped field, a truncated number or an EIP-712 property the type does
//! not declare would make the signature cover something other than what the
//! user was shown. So input is parsed strictly, and anything unknown,
//! ambiguous or out of range is refused with a sentence saying what to fix.
//! Every signature is recovered once before it is returned, so a fault in the
//! signing path shows up as an error rather than as a useless signature.
//! RLP and the 256-bit quantities are a few dozen lines of well-specified
//! encoding, written here so the wallet needs no Ethereum framework.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use serde_json::{Map, Value};
use sha3::{Digest, Keccak256};

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
    let mut out = [0u8; 32];
    out.copy_from_slice(&Keccak256::digest(data));
    out
}

/// The digest that personal_sign signs: keccak256 of
/// "\x19Ethereum Signed Message:\n" ‖ decimal byte length ‖ message.
pub fn personal_message_digest(message: &[u8]) -> [u8; 32] {
    let mut hasher = Keccak256::new();
    hasher.update(b"\x19Ethereum Signed Message:\n");
    hasher.update(message.len().to_string().as_bytes());
    hasher.update(message);
    let mut out = [0u8; 32];
    out.copy_from_slice(&hasher.finalize());
    out
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
    let point = key.to_encoded_point(false);
    let hash = keccak256(&point.as_bytes()[1..]);
    let mut out = [0u8; 20];
    out.copy_from_slice(&hash[12..]);
    out
}

// ---------------------------------------------------------------------------
// Numbers and hex
// ---------------------------------------------------------------------------

/// An unsigned 256-bit integer, big-endian.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct U256([u8; 32]);

impl U256 {
    const ZERO: U256 = U256([0; 32]);

    fn from_u64(v: u64) -> Self {
        let mut out = [0u8; 32];
        out[24..].copy_from_slice(&v.to_be_bytes());
        U256(out)
    }

    /// 2^n for n < 256.
    fn pow2(n: u32) -> Self {
        let mut out = [0u8; 32];
        let n = (n % 256) as usize;
        out[31 - n / 8] = 1 << (n % 8);
        U256(out)
    }

    fn is_zero(&self) -> bool {
        self.0.iter().all(|b| *b == 0)
    }

    /// self = self * m + a; false when the result does not fit.
    fn mul_add(&mut self, m: u32, a: u32) -> bool {
        let mut carry = u64::from(a);
        for b in self.0.iter_mut().rev() {
            let v = u64::from(*b) * u64::from(m) + carry;
            *b = (v & 0xff) as u8;
            carry = v >> 8;
        }
        carry == 0
    }

    fn bits(&self) -> u32 {
        match self.0.iter().position(|b| *b != 0) {
            Some(i) => (32 - i as u32) * 8 - self.0[i].leading_zeros(),
            None => 0,
        }
    }

    /// Big-endian bytes without leading zeros (empty for zero), as RLP wants.
    fn minimal(&self) -> &[u8] {
        strip_leading_zeros(&self.0)
    }

    fn to_u64(self) -> Option<u64> {
        if self.bits() > 64 {
            return None;
        }
        Some(
            self.0[24..]
                .iter()
                .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
        )
    }

    /// Two's complement negation modulo 2^256.
    fn negated(&self) -> Self {
        let mut out = [0u8; 32];
        let mut carry = 1u16;
        for i in (0..32).rev() {
            let v = u16::from(!self.0[i]) + carry;
            out[i] = (v & 0xff) as u8;
            carry = v >> 8;
        }
        U256(out)
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An integer given as a JSON number, a decimal string or a 0x-hex string,
/// either with a leading '-'; returned as (negative, magnitude).
fn parse_integer(v: &Value, what: &str) -> Result<(bool, U256), EvmError> {
    match v {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Ok((false, U256::from_u64(u)))
            } else if let Some(i) = n.as_i64() {
                Ok((true, U256::from_u64(i.unsigned_abs())))
            } else {
                invalid(format!(
                    "{what} is {n}, which is not an integer a JSON number can carry exactly; give it as a decimal or 0x-hex string"
                ))
            }
        }
        Value::String(s) => parse_integer_str(s, what),
        other => invalid(format!(
            "{what} must be an integer (a JSON number, a decimal string or a 0x-hex string), not {}",
            kind_of(other)
        )),
    }
}

fn parse_integer_str(s: &str, what: &str) -> Result<(bool, U256), EvmError> {
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (radix, digits) = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some(hex_digits) => (16, hex_digits),
        None => (10, body),
    };
    if digits.is_empty() {
        return invalid(format!(
            "{what} is \"{s}\", which has no digits; write zero as 0 or 0x0"
        ));
    }
    let mut acc = U256::ZERO;
    for c in digits.chars() {
        let Some(d) = c.to_digit(radix) else {
            let form = if radix == 16 { "0x-hex" } else { "decimal" };
            return invalid(format!(
                "{what} is \"{s}\", which is not a {form} integer; use only digits{}",
                if radix == 16 {
                    " 0-9 and a-f after 0x"
                } else {
                    " 0-9, or 0x-hex"
                }
            ));
        };
        if !acc.mul_add(radix, d) {
            return invalid(format!("{what} is larger than 2^256 - 1"));
        }
    }
    Ok((negative && !acc.is_zero(), acc))
}

/// An unsigned integer that must fit in `bits` bits.
fn parse_uint(v: &Value, what: &str, bits: u32) -> Result<U256, EvmError> {
    let (negative, value) = parse_integer(v, what)?;
    if negative {
        return invalid(format!("{what} is negative; it must be zero or more"));
    }
    if value.bits() > bits {
        return invalid(format!("{what} is too large for uint{bits}"));
    }
    Ok(value)
}

fn parse_u64(v: &Value, what: &str) -> Result<u64, EvmError> {
    let value = parse_uint(v, what, 64)?;
    match value.to_u64() {
        Some(n) => Ok(n),
        None => invalid(format!("{what} is too large for uint64")),
    }
}

/// A signed integer that must fit in `bits` bits, as a 256-bit two's
/// complement word.
fn parse_int(v: &Value, what: &str, bits: u32) -> Result<U256, EvmError> {
    let (negative, magnitude) = parse_integer(v, what)?;
    let fits = if negative {
        // -2^(bits-1) is the most negative value.
        magnitude.bits() < bits || magnitude == U256::pow2(bits - 1)
    } else {
        magnitude.bits() < bits
    };
    if !fits {
        return invalid(format!("{what} is out of range for int{bits}"));
    }
    Ok(if negative {
        magnitude.negated()
    } else {
        magnitude
    })
}

fn parse_hex_bytes(v: &Value, what: &str) -> Result<Vec<u8>, EvmError> {
    let Some(s) = v.as_str() else {
        return invalid(format!(
            "{what} must be a 0x-prefixed hex string, not {}",
            kind_of(v)
        ));
    };
    let Some(body) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) else {
        return invalid(format!(
            "{what} must be a 0x-prefixed hex string; add the 0x prefix"
        ));
    };
    if body.len() % 2 != 0 {
        return invalid(format!(
            "{what} has an odd number of hex digits; each byte takes two, so pad it with a 0"
        ));
    }
    hex::decode(body).map_err(|_| {
        EvmError::Invalid(format!(
            "{what} contains characters that are not hex digits"
        ))
    })
}

fn parse_address(v: &Value, what: &str) -> Result<[u8; 20], EvmError> {
    let bytes = parse_hex_bytes(v, what)?;
    if bytes.len() != 20 {
        return invalid(format!(
            "{what} must be a 20-byte address (0x and 40 hex digits), not {} bytes",
            bytes.len()
        ));
    }
    // A mixed-case address carries an EIP-55 checksum; check it, since a
    // mismatch almost always means a mistyped address.
    let text = v.as_str().unwrap_or_default().get(2..).unwrap_or_default();
    let has_upper = text.bytes().any(|c| c.is_ascii_uppercase());
    let has_lower = text.bytes().any(|c| c.is_ascii_lowercase());
    if has_upper && has_lower {
        let hash = keccak256(text.to_ascii_lowercase().as_bytes());
        let ok = text.bytes().enumerate().all(|(i, c)| {
            if !c.is_ascii_alphabetic() {
                return true;
            }
            let nibble = if i % 2 == 0 {
                hash[i / 2] >> 4
            } else {
                hash[i / 2] & 0x0f
            };
            c.is_ascii_uppercase() == (nibble >= 8)
        });
        if !ok {
            return invalid(format!(
                "{what} has a mixed-case EIP-55 checksum that does not match; check the address for a typo or give it in all lowercase"
            ));
        }
    }
    let mut out = [0u8; 20];
    out.copy_from_slice(&bytes);
    Ok(out)
}

// ---------------------------------------------------------------------------
// RLP
// ---------------------------------------------------------------------------

fn rlp_length_prefix(out: &mut Vec<u8>, short_base: u8, len: usize) {
    if len <= 55 {
        out.push(short_base + len as u8);
    } else {
        let be = (len as u64).to_be_bytes();
        let len_bytes = strip_leading_zeros(&be);
        out.push(short_base + 55 + len_bytes.len() as u8);
        out.extend_from_slice(len_bytes);
    }
}

/// RLP of a byte string.
fn rlp_bytes(data: &[u8]) -> Vec<u8> {
    if data.len() == 1 && data[0] < 0x80 {
        return vec![data[0]];
    }
    let mut out = Vec::with_capacity(data.len() + 9);
    rlp_length_prefix(&mut out, 0x80, data.len());
    out.extend_from_slice(data);
    out
}

/// RLP of an unsigned integer: big-endian without leading zeros.
fn rlp_uint(value: &U256) -> Vec<u8> {
    rlp_bytes(value.minimal())
}

fn rlp_u64(value: u64) -> Vec<u8> {
    rlp_bytes(strip_leading_zeros(&value.to_be_bytes()))
}

fn rlp_u128(value: u128) -> Vec<u8> {
    rlp_bytes(strip_leading_zeros(&value.to_be_bytes()))
}

/// RLP of a list whose items are already RLP-encoded.
fn rlp_list(items: &[Vec<u8>]) -> Vec<u8> {
    let len = items.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(len + 9);
    rlp_length_prefix(&mut out, 0xc0, len);
    for item in items {
        out.extend_from_slice(item);
    }
    out
}

// ---------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------

const TX_FIELDS: &[&str] = &[
    "type",
    "chainId",
    "nonce",
    "to",
    "from",
    "value",
    "gas",
    "gasLimit",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
    "gasPrice",
    "data",
    "input",
    "accessList",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum TxType {
    Legacy,
    Eip1559,
}

type AccessList = Vec<([u8; 20], Vec<[u8; 32]>)>;

struct Fees {
    gas_price: U256,
    max_fee: U256,
    max_priority_fee: U256,
}

/// Signs a transaction given as JSON with ethers/viem/eth-account field names and returns the raw signed transaction bytes
/// (caller hex-encodes with 0x). Fields: type (2 = EIP-1559, the default when absent; 0 = legacy), chainId, nonce, to (absent/null = contract creation),
/// value, gas or gasLimit, maxFeePerGas, maxPriorityFeePerGas, gasPrice (legacy), data (or input) as 0x-hex, accessList [{address, storageKeys}].
/// Quantities may be JSON numbers, decimal strings or 0x-hex strings. Legacy → EIP-155 (v = chainId*2+35+recid).
/// Every transaction requires chainId (SPEC §5): a pre-EIP-155 signature would replay on every chain. Unknown fields or wrong types are refused with a sentence.
///
/// A `null` field counts as absent. `from`, when given, must be the signing
/// key's address (as eth-account checks). type may also be "legacy" or
/// "eip1559" (viem's names). nonce, gas and the fee fields are required: a
/// signer without a node has no safe default for them.
pub fn sign_transaction(key: &SigningKey, tx: &Value) -> Result<Vec<u8>, EvmError> {
    let Some(obj) = tx.as_object() else {
        return invalid(format!(
            "the transaction must be a JSON object with fields such as to, value, nonce, gas and chainId, not {}",
            kind_of(tx)
        ));
    };
    if let Some(unknown) = obj.keys().find(|k| !TX_FIELDS.contains(&k.as_str())) {
        return invalid(format!(
            "the transaction has an unknown field `{unknown}`; remove it (accepted fields: {})",
            TX_FIELDS.join(", ")
        ));
    }
    let field = |name: &str| obj.get(name).filter(|v| !v.is_null());
    let what = |name: &str| format!("transaction field `{name}`");

    let explicit_type = field("type");
    let tx_type = match explicit_type {
        None => TxType::Eip1559,
        Some(Value::String(s)) if s == "legacy" => TxType::Legacy,
        Some(Value::String(s)) if s == "eip1559" => TxType::Eip1559,
        Some(v) => match parse_uint(v, &what("type"), 256)?.to_u64() {
            Some(0) => TxType::Legacy,
            Some(2) => TxType::Eip1559,
            Some(1) => {
                return invalid(
                    "transaction type 1 (EIP-2930) is not supported; use type 2 (EIP-1559) or type 0 (legacy)",
                )
            }
            _ => {
                return invalid(
                    "transaction field `type` must be 2 (EIP-1559) or 0 (legacy); other transaction types are not supported",
                )
            }
        },
    };

    let chain_id = match field("chainId") {
        None => {
            return invalid(
                "the transaction has no `chainId`; give the id of the chain it is meant for (keystead never makes a pre-EIP-155 signature, which would be valid on every chain)",
            )
        }
        Some(v) => {
            let id = parse_u64(v, &what("chainId"))?;
            if id == 0 {
                return invalid(
                    "transaction field `chainId` is 0, which names no chain; give the real chain id",
                );
            }
            id
        }
    };
    let nonce = match field("nonce") {
        Some(v) => parse_u64(v, &what("nonce"))?,
        None => return invalid("the transaction has no `nonce`; give the sender's next nonce"),
    };
    let gas = match (field("gas"), field("gasLimit")) {
        (Some(a), Some(b)) => {
            let (a, b) = (
                parse_u64(a, &what("gas"))?,
                parse_u64(b, &what("gasLimit"))?,
            );
            if a != b {
                return invalid(
                    "the transaction gives both `gas` and `gasLimit` with different values; give only one",
                );
            }
            a
        }
        (Some(v), None) => parse_u64(v, &what("gas"))?,
        (None, Some(v)) => parse_u64(v, &what("gasLimit"))?,
        (None, None) => {
            return invalid("the transaction has no gas limit; give `gas` (or `gasLimit`)")
        }
    };
    let to = match field("to") {
        Some(v) => Some(parse_address(v, &what("to"))?),
        None => None,
    };
    let value = match field("value") {
        Some(v) => parse_uint(v, &what("value"), 256)?,
        None => U256::ZERO,
    };
    let data = match (field("data"), field("input")) {
        (Some(a), Some(b)) => {
            let (a, b) = (
                parse_hex_bytes(a, &what("data"))?,
                parse_hex_bytes(b, &what("input"))?,
            );
            if a != b {
                return invalid(
                    "the transaction gives both `data` and `input` with different bytes; give only one",
                );
            }
            a
        }
        (Some(v), None) => parse_hex_bytes(v, &what("data"))?,
        (None, Some(v)) => parse_hex_bytes(v, &what("input"))?,
        (None, None) => Vec::new(),
    };
    let access_list = match field("accessList") {
        Some(v) => parse_access_list(v)?,
        None => Vec::new(),
    };
    if let Some(v) = field("from") {
        let from = parse_address(v, &what("from"))?;
        if from != address_of(key.verifying_key()) {
            return invalid(format!(
                "transaction field `from` is not the address of this wallet (0x{}); remove it or correct it",
                hex::encode(address_of(key.verifying_key()))
            ));
        }
    }

    let fees = match tx_type {
        TxType::Legacy => {
            for name in ["maxFeePerGas", "maxPriorityFeePerGas"] {
                if field(name).is_some() {
                    return invalid(format!(
                        "transaction field `{name}` belongs to EIP-1559 transactions; a legacy (type 0) transaction takes `gasPrice`"
                    ));
                }
            }
            if !access_list.is_empty() {
                return invalid(
                    "a legacy (type 0) transaction cannot carry an access list; use type 2 or remove `accessList`",
                );
            }
            let Some(v) = field("gasPrice") else {
                return invalid("the legacy transaction has no `gasPrice`; give it in wei");
            };
            Fees {
                gas_price: parse_uint(v, &what("gasPrice"), 256)?,
                max_fee: U256::ZERO,
                max_priority_fee: U256::ZERO,
            }
        }
        TxType::Eip1559 => {
            if field("gasPrice").is_some() {
                return invalid(if explicit_type.is_none() {
                    "transaction field `gasPrice` belongs to legacy transactions; set \"type\": 0 for a legacy transaction, or give maxFeePerGas and maxPriorityFeePerGas for EIP-1559 (the default type)"
                } else {
                    "transaction field `gasPrice` belongs to legacy transactions; an EIP-1559 (type 2) transaction takes maxFeePerGas and maxPriorityFeePerGas"
                });
            }
            let Some(max_fee) = field("maxFeePerGas") else {
                return invalid("the EIP-1559 transaction has no `maxFeePerGas`; give it in wei");
            };
            let Some(max_priority_fee) = field("maxPriorityFeePerGas") else {
                return invalid(
                    "the EIP-1559 transaction has no `maxPriorityFeePerGas`; give it in wei",
                );
            };
            let max_fee = parse_uint(max_fee, &what("maxFeePerGas"), 256)?;
            let max_priority_fee =
                parse_uint(max_priority_fee, &what("maxPriorityFeePerGas"), 256)?;
            if max_priority_fee > max_fee {
                return invalid(
                    "maxPriorityFeePerGas is larger than maxFeePerGas, which no node accepts; lower the priority fee or raise the max fee",
                );
            }
            Fees {
                gas_price: U256::ZERO,
                max_fee,
                max_priority_fee,
            }
        }
    };

    let to_item = rlp_bytes(to.as_ref().map(|a| a.as_slice()).unwrap_or(&[]));
    match tx_type {
        TxType::Legacy => {
            let mut items = vec![
                rlp_u64(nonce),
                rlp_uint(&fees.gas_price),
                rlp_u64(gas),
                to_item,
                rlp_uint(&value),
                rlp_bytes(&data),
            ];
            let mut unsigned = items.clone();
            unsigned.extend([rlp_u64(chain_id), rlp_bytes(&[]), rlp_bytes(&[])]);
            let sig = sign_digest(key, &keccak256(&rlp_list(&unsigned)))?;
            let parity = u128::from(sig[64] - 27);
            let v = u128::from(chain_id) * 2 + 35 + parity;
            items.extend([
                rlp_u128(v),
                rlp_bytes(strip_leading_zeros(&sig[..32])),
                rlp_bytes(strip_leading_zeros(&sig[32..64])),
            ]);
            Ok(rlp_list(&items))
        }
        TxType::Eip1559 => {
            let access_items: Vec<Vec<u8>> = access_list
                .iter()
                .map(|(address, keys)| {
                    let keys: Vec<Vec<u8>> = keys.iter().map(|k| rlp_bytes(k)).collect();
                    rlp_list(&[rlp_bytes(address), rlp_list(&keys)])
                })
                .collect();
            let mut items = vec![
                rlp_u64(chain_id),
                rlp_u64(nonce),
                rlp_uint(&fees.max_priority_fee),
                rlp_uint(&fees.max_fee),
                rlp_u64(gas),
                to_item,
                rlp_uint(&value),
                rlp_bytes(&data),
                rlp_list(&access_items),
            ];
            let mut preimage = vec![0x02];
            preimage.extend(rlp_list(&items));
            let sig = sign_digest(key, &keccak256(&preimage))?;
            items.extend([
                rlp_u64(u64::from(sig[64] - 27)),
                rlp_bytes(strip_leading_zeros(&sig[..32])),
                rlp_bytes(strip_leading_zeros(&sig[32..64])),
            ]);
            let mut out = vec![0x02];
            out.extend(rlp_list(&items));
            Ok(out)
        }
    }
}

fn parse_access_list(v: &Value) -> Result<AccessList, EvmError> {
    let Some(entries) = v.as_array() else {
        return invalid(format!(
            "transaction field `accessList` must be an array of {{address, storageKeys}} objects, not {}",
            kind_of(v)
        ));
    };
    let mut out = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let at = format!("accessList[{i}]");
        let Some(obj) = entry.as_object() else {
            return invalid(format!(
                "{at} must be an object {{address, storageKeys}}, not {}",
                kind_of(entry)
            ));
        };
        if let Some(unknown) = obj.keys().find(|k| *k != "address" && *k != "storageKeys") {
            return invalid(format!(
                "{at} has an unknown field `{unknown}`; an entry has only address and storageKeys"
            ));
        }
        let Some(address) = obj.get("address") else {
            return invalid(format!("{at} has no `address`"));
        };
        let address = parse_address(address, &format!("{at}.address"))?;
        let keys = match obj.get("storageKeys") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(keys)) => {
                let mut parsed = Vec::with_capacity(keys.len());
                for (j, key) in keys.iter().enumerate() {
                    let what = format!("{at}.storageKeys[{j}]");
                    let bytes = parse_hex_bytes(key, &what)?;
                    let Ok(word) = <[u8; 32]>::try_from(bytes.as_slice()) else {
                        return invalid(format!(
                            "{what} must be 32 bytes (0x and 64 hex digits), not {} bytes",
                            bytes.len()
                        ));
                    };
                    parsed.push(word);
                }
                parsed
            }
            Some(other) => {
                return invalid(format!(
                    "{at}.storageKeys must be an array of 32-byte hex strings, not {}",
                    kind_of(other)
                ))
            }
        };
        out.push((address, keys));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// EIP-712
// ---------------------------------------------------------------------------

/// Nesting depth (structs and arrays) beyond which typed data is refused,
/// so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

const DOMAIN_FIELDS: [(&str, &str); 5] = [
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
    ("salt", "bytes32"),
];

struct Member {
    name: String,
    ty: String,
}

enum FieldType<'a> {
    Uint(u32),
    Int(u32),
    Address,
    Bool,
    FixedBytes(usize),
    Bytes,
    String,
    Array(&'a str, Option<usize>),
    Struct(&'a str),
}

/// A number written canonically: digits only, no leading zero.
fn canonical_number(s: &str) -> Option<usize> {
    if s.is_empty() || s.starts_with('0') || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn atomic_type(ty: &str) -> Option<FieldType<'static>> {
    match ty {
        "address" => return Some(FieldType::Address),
        "bool" => return Some(FieldType::Bool),
        "bytes" => return Some(FieldType::Bytes),
        "string" => return Some(FieldType::String),
        _ => {}
    }
    let int_bits = |s: &str| {
        canonical_number(s)
            .filter(|n| *n >= 8 && *n <= 256 && n % 8 == 0)
            .map(|n| n as u32)
    };
    if let Some(bits) = ty.strip_prefix("uint") {
        return int_bits(bits).map(FieldType::Uint);
    }
    if let Some(bits) = ty.strip_prefix("int") {
        return int_bits(bits).map(FieldType::Int);
    }
    if let Some(size) = ty.strip_prefix("bytes") {
        return canonical_number(size)
            .filter(|n| *n <= 32)
            .map(FieldType::FixedBytes);
    }
    None
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

struct TypedData {
    structs: BTreeMap<String, Vec<Member>>,
    type_hashes: RefCell<BTreeMap<String, [u8; 32]>>,
}

impl TypedData {
    fn parse(types: &Value) -> Result<Self, EvmError> {
        let Some(obj) = types.as_object() else {
            return invalid(format!(
                "typed data `types` must be an object mapping type names to [{{name, type}}] lists, not {}",
                kind_of(types)
            ));
        };
        let mut structs = BTreeMap::new();
        for (name, members) in obj {
            if !is_identifier(name) || atomic_type(name).is_some() {
                return invalid(format!(
                    "`{name}` is not a usable struct type name; use letters, digits and _ and do not reuse an atomic type name"
                ));
            }
            let Some(list) = members.as_array() else {
                return invalid(format!(
                    "types.{name} must be an array of {{name, type}} objects, not {}",
                    kind_of(members)
                ));
            };
            let mut parsed: Vec<Member> = Vec::with_capacity(list.len());
            for (i, member) in list.iter().enumerate() {
                let at = format!("types.{name}[{i}]");
                let Some(m) = member.as_object() else {
                    return invalid(format!("{at} must be an object {{name, type}}"));
                };
                if let Some(unknown) = m.keys().find(|k| *k != "name" && *k != "type") {
                    return invalid(format!(
                        "{at} has an unknown key `{unknown}`; a member has only name and type"
                    ));
                }
                let (Some(Value::String(field)), Some(Value::String(ty))) =
                    (m.get("name"), m.get("type"))
                else {
                    return invalid(format!("{at} needs a string `name` and a string `type`"));
                };
                if !is_identifier(field) {
                    return invalid(format!(
                        "{at} has the name \"{field}\", which is not an identifier; use letters, digits and _"
                    ));
                }
                if parsed.iter().any(|p| p.name == *field) {
                    return invalid(format!(
                        "type {name} declares `{field}` twice (duplicate member)"
                    ));
                }
                if ty.bytes().filter(|b| *b == b'[').count() > MAX_DEPTH {
                    return invalid(format!(
                        "{at} has a type with more than {MAX_DEPTH} array dimensions"
                    ));
                }
                parsed.push(Member {
                    name: field.clone(),
                    ty: ty.clone(),
                });
            }
            structs.insert(name.clone(), parsed);
        }
        let data = TypedData {
            structs,
            type_hashes: RefCell::new(BTreeMap::new()),
        };
        for (name, members) in &data.structs {
            for member in members {
                data.classify(&member.ty).map_err(|e| {
                    EvmError::Invalid(format!("in type {name}, member `{}`: {e}", member.name))
                })?;
            }
        }
        Ok(data)
    }

    fn classify<'a>(&self, ty: &'a str) -> Result<FieldType<'a>, EvmError> {
        if let Some(head) = ty.strip_suffix(']') {
            let Some(open) = head.rfind('[') else {
                return invalid(format!("type `{ty}` has a `]` without a matching `[`"));
            };
            let (inner, len) = (&head[..open], &head[open + 1..]);
            let len = if len.is_empty() {
                None
            } else {
                match canonical_number(len) {
                    Some(n) => Some(n),
                    None => {
                        return invalid(format!(
                            "type `{ty}` has the array length \"{len}\"; write a positive whole number without leading zeros, or [] for a dynamic array"
                        ))
                    }
                }
            };
            if inner.is_empty() {
                return invalid(format!(
                    "type `{ty}` is an array of nothing; name the element type"
                ));
            }
            self.classify(inner)?;
            return Ok(FieldType::Array(inner, len));
        }
        if let Some(atomic) = atomic_type(ty) {
            return Ok(atomic);
        }
        if self.structs.contains_key(ty) {
            return Ok(FieldType::Struct(ty));
        }
        invalid(format!(
            "unknown type `{ty}`; declare it in `types` or use a canonical EIP-712 type such as uint256, int8, address, bool, bytes32, bytes or string"
        ))
    }

    /// encodeType: the primary type, then every struct it references
    /// (directly or not) sorted by name.
    fn encode_type(&self, primary: &str) -> String {
        let mut deps = BTreeSet::new();
        let mut pending = vec![primary];
        while let Some(name) = pending.pop() {
            for member in self
                .structs
                .get(name)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let base = member.ty.split('[').next().unwrap_or_default();
                if self.structs.contains_key(base) && base != primary && deps.insert(base) {
                    pending.push(base);
                }
            }
        }
        let mut out = String::new();
        for name in std::iter::once(primary).chain(deps) {
            out.push_str(name);
            out.push('(');
            let members = self
                .structs
                .get(name)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for (i, member) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&member.ty);
                out.push(' ');
                out.push_str(&member.name);
            }
            out.push(')');
        }
        out
    }

    fn type_hash(&self, name: &str) -> [u8; 32] {
        if let Some(hash) = self.type_hashes.borrow().get(name) {
            return *hash;
        }
        let hash = keccak256(self.encode_type(name).as_bytes());
        self.type_hashes.borrow_mut().insert(name.to_string(), hash);
        hash
    }

    fn hash_struct(
        &self,
        name: &str,
        value: &Value,
        path: &str,
        depth: usize,
    ) -> Result<[u8; 32], EvmError> {
        if depth > MAX_DEPTH {
            return invalid(format!("{path} nests deeper than {MAX_DEPTH} levels"));
        }
        let Some(members) = self.structs.get(name) else {
            return invalid(format!("unknown type `{name}`; declare it in `types`"));
        };
        let Some(obj) = value.as_object() else {
            return invalid(format!(
                "{path} must be an object of type {name}, not {}",
                kind_of(value)
            ));
        };
        if let Some(extra) = obj.keys().find(|k| !members.iter().any(|m| m.name == **k)) {
            return invalid(format!(
                "{path} has a property `{extra}` that type {name} does not declare; remove it or declare it (it would not be covered by the signature)"
            ));
        }
        let mut buf = Vec::with_capacity(32 * (members.len() + 1));
        buf.extend_from_slice(&self.type_hash(name));
        for member in members {
            let at = format!("{path}.{}", member.name);
            let Some(v) = obj.get(&member.name) else {
                return invalid(format!(
                    "{at} is missing; type {name} declares it as {}",
                    member.ty
                ));
            };
            buf.extend_from_slice(&self.encode_value(&member.ty, v, &at, depth + 1)?);
        }
        Ok(keccak256(&buf))
    }

    /// The 32-byte encodeData word for one value.
    fn encode_value(
        &self,
        ty: &str,
        v: &Value,
        path: &str,
        depth: usize,
    ) -> Result<[u8; 32], EvmError> {
        let mut word = [0u8; 32];
        match self.classify(ty)? {
            FieldType::Struct(name) => return self.hash_struct(name, v, path, depth),
            FieldType::Array(inner, len) => {
                if depth > MAX_DEPTH {
                    return invalid(format!("{path} nests deeper than {MAX_DEPTH} levels"));
                }
                let Some(items) = v.as_array() else {
                    return invalid(format!(
                        "{path} must be an array ({ty}), not {}",
                        kind_of(v)
                    ));
                };
                if let Some(n) = len {
                    if items.len() != n {
                        return invalid(format!(
                            "{path} must have exactly {n} elements ({ty}), not {}",
                            items.len()
                        ));
                    }
                }
                let mut buf = Vec::with_capacity(32 * items.len());
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{path}[{i}]");
                    buf.extend_from_slice(&self.encode_value(inner, item, &at, depth + 1)?);
                }
                return Ok(keccak256(&buf));
            }
            FieldType::Bytes => return Ok(keccak256(&parse_hex_bytes(v, path)?)),
            FieldType::String => {
                let Some(s) = v.as_str() else {
                    return invalid(format!("{path} must be a string, not {}", kind_of(v)));
                };
                return Ok(keccak256(s.as_bytes()));
            }
            FieldType::Bool => {
                let Some(b) = v.as_bool() else {
                    return invalid(format!("{path} must be true or false, not {}", kind_of(v)));
                };
                word[31] = u8::from(b);
            }
            FieldType::Address => word[12..].copy_from_slice(&parse_address(v, path)?),
            FieldType::Uint(bits) => word = parse_uint(v, path, bits)?.0,
            FieldType::Int(bits) => word = parse_int(v, path, bits)?.0,
            FieldType::FixedBytes(n) => {
                let bytes = parse_hex_bytes(v, path)?;
                if bytes.len() != n {
                    return invalid(format!(
                        "{path} must be exactly {n} bytes ({ty}), not {} bytes",
                        bytes.len()
                    ));
                }
                word[..n].copy_from_slice(&bytes);
            }
        }
        Ok(word)
    }
}

/// EIP-712 digest of a full typed-data JSON object {types, primaryType, domain, message} as produced by ethers/viem/eth_signTypedData_v4
/// (types includes or omits EIP712Domain; if omitted, derive the domain type from the domain fields present, in the canonical order name, version, chainId, verifyingContract, salt).
///
/// Every declared member must be present and every present property must
/// be declared (null domain fields count as absent when the domain type is
/// derived). With primaryType "EIP712Domain" the digest covers the domain
/// only, as in eth-sig-util and viem.
pub fn eip712_digest(typed_data: &Value) -> Result<[u8; 32], EvmError> {
    let Some(obj) = typed_data.as_object() else {
        return invalid(format!(
            "typed data must be a JSON object {{types, primaryType, domain, message}}, not {}",
            kind_of(typed_data)
        ));
    };
    if let Some(unknown) = obj
        .keys()
        .find(|k| !["types", "primaryType", "domain", "message"].contains(&k.as_str()))
    {
        return invalid(format!(
            "typed data has an unknown key `{unknown}`; it takes only types, primaryType, domain and message"
        ));
    }
    let Some(types) = obj.get("types") else {
        return invalid("typed data has no `types`");
    };
    let Some(primary) = obj.get("primaryType").and_then(Value::as_str) else {
        return invalid("typed data needs `primaryType`, the name of the message's struct type");
    };
    let Some(domain) = obj.get("domain").and_then(Value::as_object) else {
        return invalid("typed data needs a `domain` object (it may be empty)");
    };
    let mut data = TypedData::parse(types)?;

    let domain_value = if data.structs.contains_key("EIP712Domain") {
        Value::Object(domain.clone())
    } else {
        let present: Map<String, Value> = domain
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(unknown) = present
            .keys()
            .find(|k| !DOMAIN_FIELDS.iter().any(|(n, _)| n == k))
        {
            return invalid(format!(
                "domain has the field `{unknown}`, which cannot be typed without an EIP712Domain entry in `types`; declare EIP712Domain or remove the field (known fields: name, version, chainId, verifyingContract, salt)"
            ));
        }
        let members = DOMAIN_FIELDS
            .iter()
            .filter(|(n, _)| present.contains_key(*n))
            .map(|(n, t)| Member {
                name: (*n).to_string(),
                ty: (*t).to_string(),
            })
            .collect();
        data.structs.insert("EIP712Domain".to_string(), members);
        Value::Object(present)
    };
    let domain_separator = data.hash_struct("EIP712Domain", &domain_value, "domain", 0)?;

    let mut preimage = Vec::with_capacity(66);
    preimage.extend_from_slice(b"\x19\x01");
    preimage.extend_from_slice(&domain_separator);
    if primary == "EIP712Domain" {
        match obj.get("message") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) if m.is_empty() => {}
            Some(_) => {
                return invalid(
                    "with primaryType EIP712Domain only the domain is signed; remove `message` or name the message's type in primaryType",
                )
            }
        }
    } else {
        if !data.structs.contains_key(primary) {
            return invalid(format!(
                "primaryType `{primary}` is not declared in `types`"
            ));
        }
        let Some(message) = obj.get("message") else {
            return invalid("typed data has no `message`");
        };
        preimage.extend_from_slice(&data.hash_struct(primary, message, "message", 0)?);
    }
    Ok(keccak256(&preimage))
}

pub fn sign_typed_data(key: &SigningKey, typed_data: &Value) -> Result<[u8; 65], EvmError> {
    sign_digest(key, &eip712_digest(typed_data)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(hex_key: &str) -> SigningKey {
        let bytes = hex::decode(hex_key.trim_start_matches("0x")).unwrap();
        SigningKey::from_slice(&bytes).unwrap()
    }

    fn cow_key() -> SigningKey {
        SigningKey::from_slice(&keccak256(b"cow")).unwrap()
    }

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.trim_start_matches("0x")).unwrap()
    }

    fn h32(s: &str) -> [u8; 32] {
        h(s).try_into().unwrap()
    }

    fn addr(s: &str) -> [u8; 20] {
        h(s).try_into().unwrap()
    }

    /// A decimal string as 32 big-endian bytes.
    fn dec32(s: &str) -> [u8; 32] {
        parse_uint(&json!(s), "test", 256).unwrap().0
    }

    fn err_text(r: Result<impl std::fmt::Debug, EvmError>) -> String {
        match r {
            Err(EvmError::Invalid(msg)) => msg,
            other => panic!("expected EvmError::Invalid, got {other:?}"),
        }
    }

    // --- a test-only RLP decoder ------------------------------------------------

    #[derive(Debug, PartialEq)]
    enum Rlp {
        Bytes(Vec<u8>),
        List(Vec<Rlp>),
    }

    impl Rlp {
        fn bytes(&self) -> &[u8] {
            match self {
                Rlp::Bytes(b) => b,
                Rlp::List(_) => panic!("expected bytes"),
            }
        }
        fn list(&self) -> &[Rlp] {
            match self {
                Rlp::List(l) => l,
                Rlp::Bytes(_) => panic!("expected a list"),
            }
        }
    }

    fn rlp_decode(buf: &[u8]) -> Rlp {
        let (item, rest) = rlp_decode_one(buf);
        assert!(rest.is_empty(), "trailing bytes after RLP item");
        item
    }

    fn rlp_decode_one(buf: &[u8]) -> (Rlp, &[u8]) {
        let b = buf[0];
        let be_len = |bytes: &[u8]| {
            assert!(bytes[0] != 0, "non-canonical length");
            bytes.iter().fold(0usize, |a, x| (a << 8) | usize::from(*x))
        };
        match b {
            0x00..=0x7f => (Rlp::Bytes(vec![b]), &buf[1..]),
            0x80..=0xb7 => {
                let n = usize::from(b - 0x80);
                if n == 1 {
                    assert!(buf[1] >= 0x80, "non-canonical single byte");
                }
                (Rlp::Bytes(buf[1..1 + n].to_vec()), &buf[1 + n..])
            }
            0xb8..=0xbf => {
                let ll = usize::from(b - 0xb7);
                let n = be_len(&buf[1..1 + ll]);
                assert!(n > 55);
                (
                    Rlp::Bytes(buf[1 + ll..1 + ll + n].to_vec()),
                    &buf[1 + ll + n..],
                )
            }
            0xc0..=0xf7 => {
                let n = usize::from(b - 0xc0);
                (Rlp::List(rlp_decode_items(&buf[1..1 + n])), &buf[1 + n..])
            }
            0xf8..=0xff => {
                let ll = usize::from(b - 0xf7);
                let n = be_len(&buf[1..1 + ll]);
                assert!(n > 55);
                (
                    Rlp::List(rlp_decode_items(&buf[1 + ll..1 + ll + n])),
                    &buf[1 + ll + n..],
                )
            }
        }
    }

    fn rlp_decode_items(mut buf: &[u8]) -> Vec<Rlp> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            let (item, rest) = rlp_decode_one(buf);
            out.push(item);
            buf = rest;
        }
        out
    }

    /// Re-encodes a decoded item, to rebuild signing payloads in tests.
    fn rlp_reencode(item: &Rlp) -> Vec<u8> {
        match item {
            Rlp::Bytes(b) => rlp_bytes(b),
            Rlp::List(l) => rlp_list(&l.iter().map(rlp_reencode).collect::<Vec<_>>()),
        }
    }

    fn pad32(b: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[32 - b.len()..].copy_from_slice(b);
        out
    }

    // --- basics -------------------------------------------------------------------

    #[test]
    fn keccak_of_empty_input() {
        assert_eq!(
            hex::encode(keccak256(b"")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
    }

    #[test]
    fn rlp_encoder_matches_the_spec_examples() {
        assert_eq!(rlp_bytes(b"dog"), h("83646f67"));
        assert_eq!(
            rlp_list(&[rlp_bytes(b"cat"), rlp_bytes(b"dog")]),
            h("c88363617483646f67")
        );
        assert_eq!(rlp_bytes(b""), h("80"));
        assert_eq!(rlp_list(&[]), h("c0"));
        assert_eq!(rlp_u64(0), h("80"));
        assert_eq!(rlp_bytes(&[0]), h("00"));
        assert_eq!(rlp_u64(15), h("0f"));
        assert_eq!(rlp_u64(1024), h("820400"));
        assert_eq!(rlp_u64(0x80), h("8180"));
        // [ [], [[]], [ [], [[]] ] ]
        let empty = rlp_list(&[]);
        let one = rlp_list(std::slice::from_ref(&empty));
        assert_eq!(
            rlp_list(&[empty.clone(), one.clone(), rlp_list(&[empty, one])]),
            h("c7c0c1c0c3c0c1c0")
        );
        let lorem = b"Lorem ipsum dolor sit amet, consectetur adipisicing elit";
        let mut expected = h("b838");
        expected.extend_from_slice(lorem);
        assert_eq!(rlp_bytes(lorem), expected);
        let long = vec![0xaa; 1024];
        assert_eq!(&rlp_bytes(&long)[..3], &h("b90400")[..]);
        assert_eq!(&rlp_list(&[rlp_bytes(&long)])[..3], &h("f90403")[..]);
    }

    #[test]
    fn quantities_parse_from_numbers_decimal_and_hex() {
        let expected = U256::from_u64(1_000_000_000_000_000_000);
        for v in [
            json!(1_000_000_000_000_000_000u64),
            json!("1000000000000000000"),
            json!("0xde0b6b3a7640000"),
            json!("0x0DE0B6B3A7640000"),
        ] {
            assert_eq!(parse_uint(&v, "x", 256).unwrap(), expected, "{v}");
        }
        let max = "0x".to_string() + &"ff".repeat(32);
        assert_eq!(parse_uint(&json!(max), "x", 256).unwrap().0, [0xff; 32]);
        assert_eq!(
            parse_uint(&json!("115792089237316195423570985008687907853269984665640564039457584007913129639935"), "x", 256).unwrap().0,
            [0xff; 32]
        );
        assert!(err_text(parse_uint(
            &json!(
                "115792089237316195423570985008687907853269984665640564039457584007913129639936"
            ),
            "x",
            256
        ))
        .contains("larger than 2^256"));
        assert!(err_text(parse_uint(
            &json!(format!("0x1{}", "00".repeat(32))),
            "x",
            256
        ))
        .contains("larger than 2^256"));
        assert!(err_text(parse_uint(&json!(256), "x", 8)).contains("too large for uint8"));
        assert_eq!(
            parse_uint(&json!(255), "x", 8).unwrap(),
            U256::from_u64(255)
        );
        assert!(err_text(parse_uint(&json!(-1), "x", 256)).contains("negative"));
        assert!(err_text(parse_uint(&json!("-1"), "x", 256)).contains("negative"));
        assert_eq!(parse_uint(&json!("-0"), "x", 256).unwrap(), U256::ZERO);
        assert!(err_text(parse_uint(&json!(1.5), "x", 256)).contains("decimal or 0x-hex string"));
        assert!(err_text(parse_uint(&json!(1e30), "x", 256)).contains("decimal or 0x-hex string"));
        assert!(err_text(parse_uint(&json!("0x"), "x", 256)).contains("no digits"));
        assert!(err_text(parse_uint(&json!("12a"), "x", 256)).contains("not a decimal integer"));
        assert!(err_text(parse_uint(&json!("0xzz"), "x", 256)).contains("not a 0x-hex integer"));
        assert!(err_text(parse_uint(&json!(" 1"), "x", 256)).contains("not a decimal integer"));
        assert!(err_text(parse_uint(&json!(true), "x", 256)).contains("not a boolean"));
    }

    #[test]
    fn signed_integers_use_twos_complement_and_check_range() {
        assert_eq!(parse_int(&json!(-1), "x", 256).unwrap().0, [0xff; 32]);
        assert_eq!(parse_int(&json!("-1"), "x", 8).unwrap().0, [0xff; 32]);
        let mut minus_five = [0xff; 32];
        minus_five[31] = 0xfb;
        assert_eq!(parse_int(&json!(-5), "x", 16).unwrap().0, minus_five);
        let mut minus_128 = [0xff; 32];
        minus_128[31] = 0x80;
        assert_eq!(parse_int(&json!(-128), "x", 8).unwrap().0, minus_128);
        assert_eq!(parse_int(&json!(127), "x", 8).unwrap(), U256::from_u64(127));
        assert!(err_text(parse_int(&json!(128), "x", 8)).contains("out of range for int8"));
        assert!(err_text(parse_int(&json!(-129), "x", 8)).contains("out of range for int8"));
        // int256 extremes
        let min = format!("-0x8{}", "0".repeat(63));
        let mut min_word = [0u8; 32];
        min_word[0] = 0x80;
        assert_eq!(parse_int(&json!(min), "x", 256).unwrap().0, min_word);
        let too_big = format!("0x8{}", "0".repeat(63));
        assert!(err_text(parse_int(&json!(too_big), "x", 256)).contains("out of range"));
    }

    #[test]
    fn addresses_check_mixed_case_checksums() {
        for good in [
            "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
            "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826",
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xcd2a3d9f938e13cd947ec05abc7fe734df8dd826",
            "0xCD2A3D9F938E13CD947EC05ABC7FE734DF8DD826",
        ] {
            parse_address(&json!(good), "a").unwrap();
        }
        assert!(err_text(parse_address(
            &json!("0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD827"),
            "a"
        ))
        .contains("checksum"));
        assert!(err_text(parse_address(
            &json!("0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
            "a"
        ))
        .contains("checksum"));
        assert!(err_text(parse_address(&json!("0x1234"), "a")).contains("20-byte"));
        assert!(err_text(parse_address(
            &json!("cd2a3d9f938e13cd947ec05abc7fe734df8dd826"),
            "a"
        ))
        .contains("0x prefix"));
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

    // --- EIP-712 --------------------------------------------------------------------

    fn mail() -> Value {
        json!({
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"}
                ],
                "Person": [
                    {"name": "name", "type": "string"},
                    {"name": "wallet", "type": "address"}
                ],
                "Mail": [
                    {"name": "from", "type": "Person"},
                    {"name": "to", "type": "Person"},
                    {"name": "contents", "type": "string"}
                ]
            },
            "primaryType": "Mail",
            "domain": {
                "name": "Ether Mail",
                "version": "1",
                "chainId": 1,
                "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
            },
            "message": {
                "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
                "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
                "contents": "Hello, Bob!"
            }
        })
    }

    #[test]
    fn eip712_mail_example_from_the_spec() {
        let data = mail();
        let types = TypedData::parse(&data["types"]).unwrap();
        assert_eq!(
            types.encode_type("Mail"),
            "Mail(Person from,Person to,string contents)Person(string name,address wallet)"
        );
        assert_eq!(
            hex::encode(types.type_hash("Mail")),
            "a0cedeb2dc280ba39b857546d74f5549c3a1d7bdc2dd96bf881f76108e23dac2"
        );
        assert_eq!(
            hex::encode(
                types
                    .hash_struct("EIP712Domain", &data["domain"], "domain", 0)
                    .unwrap()
            ),
            "f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"
        );
        assert_eq!(
            hex::encode(
                types
                    .hash_struct("Mail", &data["message"], "message", 0)
                    .unwrap()
            ),
            "c52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e"
        );
        let digest = eip712_digest(&data).unwrap();
        assert_eq!(
            hex::encode(digest),
            "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
        );

        let k = cow_key();
        assert_eq!(
            hex::encode(address_of(k.verifying_key())),
            "cd2a3d9f938e13cd947ec05abc7fe734df8dd826"
        );
        let sig = sign_typed_data(&k, &data).unwrap();
        assert_eq!(
            hex::encode(&sig[..32]),
            "4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d"
        );
        assert_eq!(
            hex::encode(&sig[32..64]),
            "07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562"
        );
        assert_eq!(sig[64], 28);
        assert_eq!(
            recover_address(&digest, &sig).unwrap(),
            address_of(k.verifying_key())
        );
    }

    #[test]
    fn eip712_domain_type_is_derived_when_types_omit_it() {
        let mut data = mail();
        data["types"]
            .as_object_mut()
            .unwrap()
            .remove("EIP712Domain");
        assert_eq!(
            hex::encode(eip712_digest(&data).unwrap()),
            "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
        );
        // The field order in the JSON does not matter; null fields are absent.
        data["domain"] = json!({
            "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
            "salt": null,
            "chainId": "0x1",
            "version": "1",
            "name": "Ether Mail"
        });
        assert_eq!(
            hex::encode(eip712_digest(&data).unwrap()),
            "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
        );
        // A subset: EIP712Domain(string name,uint256 chainId).
        data["domain"] = json!({"chainId": 5, "name": "x"});
        let types = TypedData::parse(&data["types"]).unwrap();
        let message_hash = types
            .hash_struct("Mail", &data["message"], "message", 0)
            .unwrap();
        let mut sep = keccak256(b"EIP712Domain(string name,uint256 chainId)").to_vec();
        sep.extend(keccak256(b"x"));
        sep.extend(pad32(&[5]));
        let mut pre = b"\x19\x01".to_vec();
        pre.extend(keccak256(&sep));
        pre.extend(message_hash);
        assert_eq!(eip712_digest(&data).unwrap(), keccak256(&pre));
        // An unknown domain key cannot be typed.
        data["domain"] = json!({"name": "x", "foo": 1});
        assert!(err_text(eip712_digest(&data)).contains("`foo`"));
    }

    #[test]
    fn eip712_v4_arrays_vector_from_eth_sig_util() {
        let data = json!({
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"}
                ],
                "Person": [
                    {"name": "name", "type": "string"},
                    {"name": "wallets", "type": "address[]"}
                ],
                "Mail": [
                    {"name": "from", "type": "Person"},
                    {"name": "to", "type": "Person[]"},
                    {"name": "contents", "type": "string"}
                ],
                "Group": [
                    {"name": "name", "type": "string"},
                    {"name": "members", "type": "Person[]"}
                ]
            },
            "domain": {
                "name": "Ether Mail",
                "version": "1",
                "chainId": 1,
                "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
            },
            "primaryType": "Mail",
            "message": {
                "from": {
                    "name": "Cow",
                    "wallets": [
                        "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826",
                        "0xDeaDbeefdEAdbeefdEadbEEFdeadbeEFdEaDbeeF"
                    ]
                },
                "to": [{
                    "name": "Bob",
                    "wallets": [
                        "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB",
                        "0xB0BdaBea57B0BDABeA57b0bdABEA57b0BDabEa57",
                        "0xB0B0b0b0b0b0B000000000000000000000000000"
                    ]
                }],
                "contents": "Hello, Bob!"
            }
        });
        let types = TypedData::parse(&data["types"]).unwrap();
        assert_eq!(
            types.encode_type("Mail"),
            "Mail(Person from,Person[] to,string contents)Person(string name,address[] wallets)"
        );
        assert_eq!(
            hex::encode(types.type_hash("Mail")),
            "4bd8a9a2b93427bb184aca81e24beb30ffa3c747e2a33d4225ec08bf12e2e753"
        );
        assert_eq!(
            hex::encode(
                types
                    .hash_struct("Person", &data["message"]["from"], "from", 0)
                    .unwrap()
            ),
            "9b4846dd48b866f0ac54d61b9b21a9e746f921cefa4ee94c4c0a1c49c774f67f"
        );
        assert_eq!(
            hex::encode(
                types
                    .hash_struct("Mail", &data["message"], "message", 0)
                    .unwrap()
            ),
            "eb4221181ff3f1a83ea7313993ca9218496e424604ba9492bb4052c03d5c3df8"
        );
        let digest = eip712_digest(&data).unwrap();
        assert_eq!(
            hex::encode(digest),
            "a85c2e2b118698e88db68a8105b794a8cc7cec074e89ef991cb4f5f533819cc2"
        );
        let sig = sign_typed_data(&cow_key(), &data).unwrap();
        assert_eq!(
            hex::encode(sig),
            "65cbd956f2fae28a601bebc9b906cea0191744bd4c4247bcd27cd08f8eb6b71c78efdf7a31dc9abee78f492292721f362d296cf86b4538e07b51303b67f749061b"
        );
        assert_eq!(
            recover_address(&digest, &sig).unwrap(),
            address_of(cow_key().verifying_key())
        );
    }

    #[test]
    fn eip712_encode_type_sorts_indirect_dependencies() {
        let types = TypedData::parse(&json!({
            "Zed": [{"name": "b", "type": "Beta"}, {"name": "a", "type": "Alpha[]"}],
            "Beta": [{"name": "a", "type": "Alpha"}, {"name": "g", "type": "Gamma[2][]"}],
            "Alpha": [{"name": "x", "type": "uint8"}],
            "Gamma": [{"name": "z", "type": "Zed"}],
            "Unused": [{"name": "x", "type": "bool"}]
        }))
        .unwrap();
        assert_eq!(
            types.encode_type("Zed"),
            "Zed(Beta b,Alpha[] a)Alpha(uint8 x)Beta(Alpha a,Gamma[2][] g)Gamma(Zed z)"
        );
    }

    #[test]
    fn eip712_every_kind_of_member_matches_a_hand_built_encoding() {
        let data = json!({
            "types": {
                "Item": [{"name": "id", "type": "uint256"}, {"name": "tags", "type": "string[]"}],
                "Order": [
                    {"name": "items", "type": "Item[]"},
                    {"name": "grid", "type": "uint8[2][]"},
                    {"name": "blob", "type": "bytes"},
                    {"name": "pair", "type": "address[2]"},
                    {"name": "flag", "type": "bool"},
                    {"name": "b4", "type": "bytes4"},
                    {"name": "delta", "type": "int16"},
                    {"name": "big", "type": "int256"},
                    {"name": "h", "type": "bytes32"}
                ]
            },
            "primaryType": "Order",
            "domain": {"name": "Shop", "chainId": "10"},
            "message": {
                "items": [{"id": "0x07", "tags": ["a", "é"]}, {"id": 8, "tags": []}],
                "grid": [[1, "2"], ["0x3", 4]],
                "blob": "0xc0ffee",
                "pair": ["0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826", "0xcccccccccccccccccccccccccccccccccccccccc"],
                "flag": true,
                "b4": "0xdeadbeef",
                "delta": -5,
                "big": "-57896044618658097711785492504343953926634992332820282019728792003956564819968",
                "h": format!("0x{}", "ab".repeat(32))
            }
        });
        let k = |parts: &[&[u8]]| keccak256(&parts.concat());
        let item_type = keccak256(b"Item(uint256 id,string[] tags)");
        let order_type = keccak256(b"Order(Item[] items,uint8[2][] grid,bytes blob,address[2] pair,bool flag,bytes4 b4,int16 delta,int256 big,bytes32 h)Item(uint256 id,string[] tags)");
        let item1 = k(&[
            &item_type,
            &pad32(&[7]),
            &k(&[&keccak256(b"a"), &keccak256("é".as_bytes())]),
        ]);
        let item2 = k(&[&item_type, &pad32(&[8]), &keccak256(b"")]);
        let row1 = k(&[&pad32(&[1]), &pad32(&[2])]);
        let row2 = k(&[&pad32(&[3]), &pad32(&[4])]);
        let mut minus_five = [0xff; 32];
        minus_five[31] = 0xfb;
        let mut int256_min = [0u8; 32];
        int256_min[0] = 0x80;
        let mut b4 = [0u8; 32];
        b4[..4].copy_from_slice(&h("deadbeef"));
        let order = k(&[
            &order_type,
            &k(&[&item1, &item2]),
            &k(&[&row1, &row2]),
            &keccak256(&h("c0ffee")),
            &k(&[
                &pad32(&addr("cd2a3d9f938e13cd947ec05abc7fe734df8dd826")),
                &pad32(&[0xcc; 20]),
            ]),
            &pad32(&[1]),
            &b4,
            &minus_five,
            &int256_min,
            &[0xab; 32],
        ]);
        let domain = k(&[
            &keccak256(b"EIP712Domain(string name,uint256 chainId)"),
            &keccak256(b"Shop"),
            &pad32(&[10]),
        ]);
        let expected = k(&[b"\x19\x01", &domain, &order]);
        assert_eq!(eip712_digest(&data).unwrap(), expected);

        let key = cow_key();
        let sig = sign_typed_data(&key, &data).unwrap();
        assert_eq!(
            recover_address(&expected, &sig).unwrap(),
            address_of(key.verifying_key())
        );
    }

    #[test]
    fn eip712_primary_type_domain_signs_the_domain_only() {
        let mut data = mail();
        data["primaryType"] = json!("EIP712Domain");
        data.as_object_mut().unwrap().remove("message");
        let sep = h32("f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f");
        assert_eq!(
            eip712_digest(&data).unwrap(),
            keccak256(&[&b"\x19\x01"[..], &sep].concat())
        );
        data["message"] = mail()["message"].clone();
        assert!(err_text(eip712_digest(&data)).contains("only the domain is signed"));
    }

    #[test]
    fn eip712_refuses_bad_input() {
        let with = |edit: &dyn Fn(&mut Value)| {
            let mut d = mail();
            edit(&mut d);
            err_text(eip712_digest(&d))
        };
        assert!(with(&|d| d["types"]["Person"][1]["type"] = json!("Wallet"))
            .contains("unknown type `Wallet`"));
        assert!(with(&|d| d["types"]["Person"][1]["type"] = json!("uint"))
            .contains("unknown type `uint`"));
        assert!(with(&|d| d["types"]["Person"][1]["type"] = json!("uint7"))
            .contains("unknown type `uint7`"));
        assert!(
            with(&|d| d["types"]["Person"][1]["type"] = json!("bytes33"))
                .contains("unknown type `bytes33`")
        );
        assert!(
            with(&|d| d["types"]["Person"][1]["type"] = json!("address[02]"))
                .contains("array length")
        );
        assert!(
            with(&|d| d["types"]["Person"][1]["type"] = json!("address]"))
                .contains("without a matching")
        );
        assert!(with(&|d| d["primaryType"] = json!("Nope")).contains("primaryType `Nope`"));
        assert!(with(&|d| {
            d.as_object_mut().unwrap().remove("primaryType");
        })
        .contains("primaryType"));
        assert!(with(&|d| d["extra"] = json!(1)).contains("unknown key `extra`"));
        assert!(with(&|d| d["message"]["bcc"] = json!("x")).contains("does not declare"));
        assert!(with(&|d| {
            d["message"].as_object_mut().unwrap().remove("contents");
        })
        .contains("message.contents is missing"));
        assert!(
            with(&|d| d["message"]["to"]["wallet"] = json!("bob")).contains("message.to.wallet")
        );
        assert!(with(
            &|d| d["message"]["to"]["wallet"] = json!("0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbb")
        )
        .contains("checksum"));
        assert!(with(&|d| d["message"]["contents"] = json!(5)).contains("must be a string"));
        assert!(with(&|d| d["message"]["to"] = json!("Bob"))
            .contains("must be an object of type Person"));
        assert!(with(&|d| d["domain"]["salt"] = json!("0x00")).contains("does not declare"));
        assert!(with(&|d| d["domain"]["chainId"] = json!(-1)).contains("negative"));
        assert!(
            with(&|d| d["types"]["Mail"][2] = json!({"name": "from", "type": "string"}))
                .contains("twice")
        );
        assert!(
            with(&|d| d["types"]["Mail"][2]["name"] = json!("a,b")).contains("not an identifier")
        );
        assert!(
            with(&|d| d["types"]["uint256"] = json!([])).contains("not a usable struct type name")
        );
        assert!(
            with(&|d| d["types"]["Mail"][2]["extra"] = json!(1)).contains("unknown key `extra`")
        );

        let typed = |ty: &str, v: Value| {
            let d = json!({
                "types": {"T": [{"name": "x", "type": ty}]},
                "primaryType": "T",
                "domain": {},
                "message": {"x": v}
            });
            eip712_digest(&d)
        };
        assert!(typed("uint8", json!(255)).is_ok());
        assert!(err_text(typed("uint8", json!(256))).contains("too large for uint8"));
        assert!(err_text(typed("uint256", json!(-1))).contains("negative"));
        assert!(err_text(typed("int8", json!(-129))).contains("out of range for int8"));
        assert!(err_text(typed("bool", json!(1))).contains("true or false"));
        assert!(err_text(typed("bytes4", json!("0xdead"))).contains("exactly 4 bytes"));
        assert!(err_text(typed("bytes", json!("dead"))).contains("0x prefix"));
        assert!(err_text(typed("bytes", json!("0xabc"))).contains("odd number"));
        assert!(err_text(typed("bytes", json!("0xzz"))).contains("not hex digits"));
        assert!(err_text(typed("uint8[2]", json!([1]))).contains("exactly 2 elements"));
        assert!(err_text(typed("uint8[]", json!(1))).contains("must be an array"));
        assert!(err_text(typed("string", Value::Null)).contains("not null"));
        assert!(typed("uint8[][]", json!([[1, 2], [], [3]])).is_ok());

        // Nesting is bounded, in the values and in the type names.
        let mut deep = json!({"next": []});
        for _ in 0..80 {
            deep = json!({"next": [deep]});
        }
        let d = json!({
            "types": {"Node": [{"name": "next", "type": "Node[]"}]},
            "primaryType": "Node",
            "domain": {},
            "message": deep
        });
        assert!(err_text(eip712_digest(&d)).contains("nests deeper"));
        let ty = format!("uint8{}", "[]".repeat(100_000));
        assert!(err_text(typed(&ty, json!([]))).contains("array dimensions"));
    }

    // --- transactions -----------------------------------------------------------------

    #[test]
    fn eip155_example_from_the_eip() {
        let k = key("0x4646464646464646464646464646464646464646464646464646464646464646");
        let tx = json!({
            "type": 0,
            "nonce": 9,
            "gasPrice": "20000000000",
            "gas": 21000,
            "to": "0x3535353535353535353535353535353535353535",
            "value": "1000000000000000000",
            "data": "0x",
            "chainId": 1
        });
        let raw = sign_transaction(&k, &tx).unwrap();
        assert_eq!(
            hex::encode(&raw),
            "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"
        );
        // The signing hash given in the EIP.
        let fields = rlp_decode(&raw);
        let mut unsigned: Vec<Vec<u8>> = fields.list()[..6].iter().map(rlp_reencode).collect();
        unsigned.extend([rlp_u64(1), rlp_bytes(&[]), rlp_bytes(&[])]);
        assert_eq!(
            hex::encode(keccak256(&rlp_list(&unsigned))),
            "daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53"
        );
    }

    #[test]
    fn legacy_vector_from_the_eth_account_docs() {
        let k = key("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318");
        let tx = json!({
            "type": "legacy",
            "to": "0xF0109fC8DF283027b6285cc889F5aA624EaC1F55",
            "value": 1000000000,
            "gas": 2000000,
            "gasPrice": 234567897654321u64,
            "nonce": 0,
            "chainId": 1337
        });
        let raw = sign_transaction(&k, &tx).unwrap();
        assert!(hex::encode(&raw).starts_with("f86c8086d55698372431831e848094f0109fc8df283027b6285cc889f5aa624eac1f55843b9aca0080820a95a01a7"));
        assert!(hex::encode(&raw).ends_with("c0bfdb52"));
        assert_eq!(
            hex::encode(keccak256(&raw)),
            "d0a3e5dc7439f260c64cb0220139ec5dc7e016f82ce272a25a0f0b38fe751673"
        );
        let fields = rlp_decode(&raw);
        let f = fields.list();
        assert_eq!(f[6].bytes(), &2709u16.to_be_bytes()[..]);
        assert_eq!(
            pad32(f[7].bytes()),
            dec32("11971260903864915610009019893820767192081275151191539081612245320300335068143")
        );
        assert_eq!(
            pad32(f[8].bytes()),
            dec32("35365272040292958794699923036506252105590820339897221552886630515981233937234")
        );
    }

    #[test]
    fn eip1559_vector_from_the_eth_account_docs() {
        let k = key("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318");
        let tx = json!({
            "type": 2,
            "gas": 100000,
            "maxFeePerGas": 2000000000,
            "maxPriorityFeePerGas": 2000000000,
            "data": "0x616263646566",
            "nonce": 34,
            "to": "0x09616C3d61b3331fc4109a9E41a8BDB7d9776609",
            "value": "0x5af3107a4000",
            "accessList": [{
                "address": "0x0000000000000000000000000000000000000001",
                "storageKeys": ["0x0100000000000000000000000000000000000000000000000000000000000000"]
            }],
            "chainId": 1337
        });
        let raw = sign_transaction(&k, &tx).unwrap();
        let text = hex::encode(&raw);
        assert!(text.starts_with("02f8b28205392284773594008477359400830186a09409616c3d61b3331fc4109a9e41a8bdb7d9776609865af3107"), "{text}");
        assert!(text.ends_with("d58b85d5"), "{text}");
        assert_eq!(
            hex::encode(keccak256(&raw)),
            "2721b2ac99d878695e410af9e8968859b6f6e94f544840be0eb2935bead7deba"
        );
        let fields = rlp_decode(&raw[1..]);
        let f = fields.list();
        assert_eq!(f[9].bytes(), &[1u8][..]);
        assert_eq!(
            pad32(f[10].bytes()),
            dec32("48949965662841329840326477994465373664672499148507933176648302825256944281697")
        );
        assert_eq!(
            pad32(f[11].bytes()),
            dec32("1123041608316060268133200864147951676126406077675157976022772782796802590165")
        );
    }

    #[test]
    fn eip1559_round_trip_recovers_the_signer() {
        let k = cow_key();
        let me = address_of(k.verifying_key());
        let tx = json!({
            "chainId": "0x89",
            "nonce": "7",
            "maxPriorityFeePerGas": "1500000000",
            "maxFeePerGas": "0x6fc23ac00",
            "gasLimit": "0x5208",
            "to": "0x3535353535353535353535353535353535353535",
            "value": "123456789012345678901234567890",
            "input": "0xa9059cbb",
            "from": format!("0x{}", hex::encode(me)),
            "accessList": []
        });
        let raw = sign_transaction(&k, &tx).unwrap();
        assert_eq!(raw[0], 0x02);
        let decoded = rlp_decode(&raw[1..]);
        let f = decoded.list();
        assert_eq!(f.len(), 12);
        assert_eq!(f[0].bytes(), &[0x89][..]);
        assert_eq!(f[1].bytes(), &[7][..]);
        assert_eq!(f[2].bytes(), &1_500_000_000u32.to_be_bytes()[..]);
        assert_eq!(f[3].bytes(), &h("06fc23ac00")[..]);
        assert_eq!(f[4].bytes(), &h("5208")[..]);
        assert_eq!(f[5].bytes(), &[0x35; 20][..]);
        assert_eq!(pad32(f[6].bytes()), dec32("123456789012345678901234567890"));
        assert_eq!(f[7].bytes(), &h("a9059cbb")[..]);
        assert!(f[8].list().is_empty());

        let mut preimage = vec![0x02];
        preimage.extend(rlp_list(
            &f[..9].iter().map(rlp_reencode).collect::<Vec<_>>(),
        ));
        let digest = keccak256(&preimage);
        let mut sig = [0u8; 65];
        sig[..32].copy_from_slice(&pad32(f[10].bytes()));
        sig[32..64].copy_from_slice(&pad32(f[11].bytes()));
        sig[64] = 27 + f[9].bytes().first().copied().unwrap_or(0);
        assert_eq!(recover_address(&digest, &sig).unwrap(), me);
        // The whole envelope re-encodes to the same bytes: the encoding is canonical.
        assert_eq!(rlp_reencode(&decoded), raw[1..].to_vec());
    }

    #[test]
    fn every_transaction_needs_a_chain_id_and_creation_has_no_to() {
        let k = cow_key();
        for tx in [
            json!({"type": 0, "nonce": 0, "gasPrice": 1, "gas": 53000, "data": "0x6000", "to": null}),
            json!({"type": 2, "nonce": 0, "maxFeePerGas": 2, "maxPriorityFeePerGas": 1, "gas": 21000, "to": null}),
            json!({"type": 0, "nonce": 0, "gasPrice": 1, "gas": 53000, "to": null, "chainId": null}),
        ] {
            let e = sign_transaction(&k, &tx).unwrap_err().to_string();
            assert!(e.contains("`chainId`"), "{e}");
        }
        let tx = json!({"type": 0, "nonce": 0, "gasPrice": 1, "gas": 53000, "data": "0x6000", "to": null, "chainId": 1});
        let raw = sign_transaction(&k, &tx).unwrap();
        let decoded = rlp_decode(&raw);
        let f = decoded.list();
        assert_eq!(f.len(), 9);
        assert_eq!(f[3].bytes(), &[] as &[u8], "creation encodes an empty `to`");
        let v = f[6].bytes();
        assert!(
            v == [37] || v == [38],
            "EIP-155 v on chain 1 is 37/38, got {v:?}"
        );

        // EIP-155 with a large chain id: v = chainId * 2 + 35 + parity.
        let tx = json!({"type": 0, "nonce": 1, "gasPrice": 1, "gas": 21000, "to": "0x3535353535353535353535353535353535353535", "chainId": "0xffffffffffffffff"});
        let raw = sign_transaction(&k, &tx).unwrap();
        let decoded = rlp_decode(&raw);
        let v = decoded.list()[6].bytes();
        let v = v.iter().fold(0u128, |a, b| (a << 8) | u128::from(*b));
        let parity = v - (u128::from(u64::MAX) * 2 + 35);
        assert!(parity <= 1);
        let mut unsigned: Vec<Vec<u8>> = decoded.list()[..6].iter().map(rlp_reencode).collect();
        unsigned.extend([rlp_u64(u64::MAX), rlp_bytes(&[]), rlp_bytes(&[])]);
        let mut sig = [0u8; 65];
        sig[..32].copy_from_slice(&pad32(decoded.list()[7].bytes()));
        sig[32..64].copy_from_slice(&pad32(decoded.list()[8].bytes()));
        sig[64] = 27 + parity as u8;
        assert_eq!(
            recover_address(&keccak256(&rlp_list(&unsigned)), &sig).unwrap(),
            address_of(k.verifying_key())
        );
    }

    #[test]
    fn transactions_refuse_bad_input() {
        let k = cow_key();
        let base = || {
            json!({
                "chainId": 1, "nonce": 0, "gas": 21000, "maxFeePerGas": 2, "maxPriorityFeePerGas": 1,
                "to": "0x3535353535353535353535353535353535353535", "value": 1
            })
        };
        assert!(sign_transaction(&k, &base()).is_ok());
        let with = |edit: &dyn Fn(&mut Map<String, Value>)| {
            let mut tx = base();
            edit(tx.as_object_mut().unwrap());
            err_text(sign_transaction(&k, &tx))
        };
        assert!(with(&|t| {
            t.remove("chainId");
        })
        .contains("has no `chainId`"));
        assert!(with(&|t| {
            t.insert("type".into(), json!(2));
            t.remove("chainId");
        })
        .contains("has no `chainId`"));
        assert!(with(&|t| {
            t.insert("chainId".into(), json!(0));
        })
        .contains("names no chain"));
        assert!(with(&|t| {
            t.insert("data".into(), json!("0xzz"));
        })
        .contains("not hex digits"));
        assert!(with(&|t| {
            t.insert("data".into(), json!("abcd"));
        })
        .contains("0x prefix"));
        assert!(with(&|t| {
            t.insert("data".into(), json!("0x123"));
        })
        .contains("odd number"));
        assert!(with(&|t| {
            t.insert("data".into(), json!("0x12"));
            t.insert("input".into(), json!("0x34"));
        })
        .contains("both `data` and `input`"));
        assert!(with(&|t| {
            t.insert("value".into(), json!(-1));
        })
        .contains("negative"));
        assert!(with(&|t| {
            t.insert("value".into(), json!("-5"));
        })
        .contains("negative"));
        assert!(with(&|t| {
            t.insert("value".into(), json!(format!("0x1{}", "0".repeat(64))));
        })
        .contains("larger than 2^256"));
        assert!(with(&|t| {
            t.insert("nonce".into(), json!("18446744073709551616"));
        })
        .contains("too large for uint64"));
        assert!(with(&|t| {
            t.insert("gas".into(), json!(1.5));
        })
        .contains("decimal or 0x-hex string"));
        assert!(with(&|t| {
            t.insert("value".into(), json!(true));
        })
        .contains("not a boolean"));
        assert!(with(&|t| {
            t.insert("gasLimit".into(), json!(1));
        })
        .contains("both `gas` and `gasLimit`"));
        assert!(with(&|t| {
            t.remove("gas");
        })
        .contains("no gas limit"));
        assert!(with(&|t| {
            t.remove("nonce");
        })
        .contains("no `nonce`"));
        assert!(with(&|t| {
            t.remove("maxFeePerGas");
        })
        .contains("no `maxFeePerGas`"));
        assert!(with(&|t| {
            t.insert("maxPriorityFeePerGas".into(), json!(3));
        })
        .contains("larger than maxFeePerGas"));
        assert!(with(&|t| {
            t.insert("gasPrice".into(), json!(1));
        })
        .contains("set \"type\": 0"));
        assert!(with(&|t| {
            t.insert("type".into(), json!(1));
        })
        .contains("EIP-2930"));
        assert!(with(&|t| {
            t.insert("type".into(), json!(3));
        })
        .contains("must be 2"));
        assert!(with(&|t| {
            t.insert("type".into(), json!("eip4844"));
        })
        .contains("not a decimal integer"));
        assert!(with(&|t| {
            t.insert("hash".into(), json!("0x"));
        })
        .contains("unknown field `hash`"));
        assert!(with(&|t| {
            t.insert("to".into(), json!("0x35"));
        })
        .contains("20-byte"));
        assert!(with(&|t| {
            t.insert(
                "from".into(),
                json!("0x3535353535353535353535353535353535353535"),
            );
        })
        .contains("not the address of this wallet"));
        assert!(with(&|t| { t.insert("accessList".into(), json!([{"address": "0x3535353535353535353535353535353535353535", "storageKeys": ["0x01"]}])); }).contains("32 bytes"));
        assert!(with(&|t| {
            t.insert(
                "accessList".into(),
                json!([{"address": "0x3535353535353535353535353535353535353535", "keys": []}]),
            );
        })
        .contains("unknown field `keys`"));
        assert!(with(&|t| {
            t.insert("accessList".into(), json!({}));
        })
        .contains("must be an array"));

        let legacy = |edit: &dyn Fn(&mut Map<String, Value>)| {
            let mut tx =
                json!({"type": "0x0", "nonce": 0, "gas": 21000, "gasPrice": 1, "chainId": 1});
            edit(tx.as_object_mut().unwrap());
            sign_transaction(&k, &tx)
        };
        assert!(legacy(&|_| {}).is_ok());
        assert!(legacy(&|t| {
            t.insert("accessList".into(), json!([]));
        })
        .is_ok());
        assert!(err_text(legacy(&|t| {
            t.remove("gasPrice");
        }))
        .contains("no `gasPrice`"));
        assert!(err_text(legacy(&|t| {
            t.insert("maxFeePerGas".into(), json!(1));
        }))
        .contains("belongs to EIP-1559"));
        assert!(err_text(legacy(&|t| { t.insert("accessList".into(), json!([{"address": "0x3535353535353535353535353535353535353535", "storageKeys": []}])); })).contains("cannot carry an access list"));
        assert!(err_text(sign_transaction(&k, &json!([1]))).contains("JSON object"));
    }
}
