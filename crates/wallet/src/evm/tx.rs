//! Transactions: the JSON that ethers, viem and eth-account send, checked
//! field by field, signed as a legacy (EIP-155) or EIP-1559 transaction and
//! returned as the raw bytes a node accepts. The field order of each type is
//! written out below, next to the EIP it comes from; `alloy-rlp` encodes it.

use alloy_primitives::{keccak256, Address, TxKind, B256, U256};
use alloy_rlp::{BufMut, Encodable, Header};
use k256::ecdsa::SigningKey;
use serde_json::Value;

use super::json::{kind_of, parse_address, parse_hex_bytes, parse_u64, parse_uint};
use super::{evm_address, invalid, sign_digest, EvmError};

#[cfg(test)]
mod tests;

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

/// One EIP-2930 access-list entry, RLP `[address, [storageKey, …]]`.
#[derive(Debug, PartialEq, Eq)]
struct AccessListItem {
    address: Address,
    storage_keys: Vec<B256>,
}

impl AccessListItem {
    fn header(&self) -> Header {
        Header {
            list: true,
            payload_length: self.address.length() + self.storage_keys.length(),
        }
    }
}

impl Encodable for AccessListItem {
    fn encode(&self, out: &mut dyn BufMut) {
        self.header().encode(out);
        self.address.encode(out);
        self.storage_keys.encode(out);
    }

    fn length(&self) -> usize {
        self.header().length_with_payload()
    }
}

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
        Some(v) => match u64::try_from(parse_uint(v, &what("type"), 256)?).ok() {
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
        let own = evm_address(key.verifying_key());
        if from != own {
            return invalid(format!(
                "transaction field `from` is not the address of this wallet (0x{}); remove it or correct it",
                hex::encode(own)
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

    let to = match to {
        Some(address) => TxKind::Call(address),
        None => TxKind::Create,
    };
    let data = data.as_slice();
    match tx_type {
        TxType::Legacy => {
            // EIP-155: sign [nonce, gasPrice, gas, to, value, data, chainId, 0, 0],
            // send [nonce, gasPrice, gas, to, value, data, v, r, s].
            let fields: [&dyn Encodable; 6] = [&nonce, &fees.gas_price, &gas, &to, &value, &data];
            let unsigned = rlp_list(&[&fields[..], &[&chain_id, &0u8, &0u8]].concat());
            let (r, s, parity) = split_signature(&sign_digest(key, &keccak256(&unsigned).0)?);
            let v = u128::from(chain_id) * 2 + 35 + u128::from(parity);
            Ok(rlp_list(&[&fields[..], &[&v, &r, &s]].concat()))
        }
        TxType::Eip1559 => {
            // EIP-1559: 0x02 ‖ rlp([chainId, nonce, maxPriorityFeePerGas,
            // maxFeePerGas, gas, to, value, data, accessList]) is signed, and
            // the sent form appends [yParity, r, s] to the list.
            let fields: [&dyn Encodable; 9] = [
                &chain_id,
                &nonce,
                &fees.max_priority_fee,
                &fees.max_fee,
                &gas,
                &to,
                &value,
                &data,
                &access_list,
            ];
            let unsigned = typed(0x02, rlp_list(&fields));
            let (r, s, parity) = split_signature(&sign_digest(key, &keccak256(&unsigned).0)?);
            Ok(typed(
                0x02,
                rlp_list(&[&fields[..], &[&parity, &r, &s]].concat()),
            ))
        }
    }
}

/// The RLP list of `items`, in order.
fn rlp_list(items: &[&dyn Encodable]) -> Vec<u8> {
    let mut out = Vec::with_capacity(alloy_rlp::list_length::<_, dyn Encodable>(items));
    alloy_rlp::encode_list::<_, dyn Encodable>(items, &mut out);
    out
}

/// An EIP-2718 typed transaction envelope: the type byte, then the payload.
fn typed(tx_type: u8, payload: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 1);
    out.push(tx_type);
    out.extend(payload);
    out
}

/// r, s and the y parity of an r‖s‖v signature (v = 27/28), as a
/// transaction carries them: integers without leading zeros.
fn split_signature(sig: &[u8; 65]) -> (U256, U256, u8) {
    (
        U256::from_be_slice(&sig[..32]),
        U256::from_be_slice(&sig[32..64]),
        sig[64] - 27,
    )
}

fn parse_access_list(v: &Value) -> Result<Vec<AccessListItem>, EvmError> {
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
                    let Ok(word) = B256::try_from(bytes.as_slice()) else {
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
        out.push(AccessListItem {
            address,
            storage_keys: keys,
        });
    }
    Ok(out)
}
