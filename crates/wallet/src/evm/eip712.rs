//! EIP-712 typed data: the JSON of eth_signTypedData_v4 (ethers, viem,
//! MetaMask) checked against its own `types`, then hashed as the EIP says.
//!
//! The encoder is ours on purpose. `alloy-dyn-abi`'s `TypedData` was
//! measured against what this module must do and does not fit: it refuses
//! types that refer to each other in a cycle (`A(B b)B(A[] a)`, which
//! EIP-712 and eth-sig-util accept) and any recursive value at all, since a
//! `DynSolValue` cannot hold one; it hashes the domain with its fixed
//! `Eip712Domain` struct instead of the `EIP712Domain` the request declares;
//! and its JSON coercion is lenient where we must not be (undeclared
//! properties are skipped, checksums are not looked at, `"true"` is a bool,
//! `_` is skipped in numbers). Keeping our strict reader would have left it
//! only encodeType and hashStruct, some sixty lines, for the price of
//! `alloy-sol-types` and its proc-macro stack in the build. The words
//! themselves (U256, I256, addresses, keccak) are `alloy-primitives`'.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::{keccak256, B256};
use k256::ecdsa::SigningKey;
use serde_json::{Map, Value};

use super::json::{kind_of, parse_address, parse_hex_bytes, parse_int, parse_uint};
use super::{invalid, sign_digest, EvmError};

#[cfg(test)]
mod tests;

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
    Uint(usize),
    Int(usize),
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
    let int_bits = |s: &str| canonical_number(s).filter(|n| *n >= 8 && *n <= 256 && n % 8 == 0);
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
    type_hashes: RefCell<BTreeMap<String, B256>>,
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

    fn type_hash(&self, name: &str) -> B256 {
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
    ) -> Result<B256, EvmError> {
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
        buf.extend_from_slice(self.type_hash(name).as_slice());
        for member in members {
            let at = format!("{path}.{}", member.name);
            let Some(v) = obj.get(&member.name) else {
                return invalid(format!(
                    "{at} is missing; type {name} declares it as {}",
                    member.ty
                ));
            };
            buf.extend_from_slice(self.encode_value(&member.ty, v, &at, depth + 1)?.as_slice());
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
    ) -> Result<B256, EvmError> {
        let mut word = B256::ZERO;
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
                    buf.extend_from_slice(
                        self.encode_value(inner, item, &at, depth + 1)?.as_slice(),
                    );
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
                word = B256::with_last_byte(u8::from(b));
            }
            FieldType::Address => word = parse_address(v, path)?.into_word(),
            FieldType::Uint(bits) => word = parse_uint(v, path, bits)?.into(),
            FieldType::Int(bits) => word = parse_int(v, path, bits)?.to_be_bytes().into(),
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
    preimage.extend_from_slice(domain_separator.as_slice());
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
        preimage.extend_from_slice(data.hash_struct(primary, message, "message", 0)?.as_slice());
    }
    Ok(keccak256(&preimage).0)
}

pub fn sign_typed_data(key: &SigningKey, typed_data: &Value) -> Result<[u8; 65], EvmError> {
    sign_digest(key, &eip712_digest(typed_data)?)
}
