//! Wallet keys and signatures. A private key exists in clear only inside
//! [`PrivateKey`], which is zeroized on drop and never printed; callers seal
//! it with envelope encryption right after generation and open it only for
//! the duration of one signature. The chain-specific encodings live in
//! [`evm`], [`solana`] and [`cosmos`]; this module is the one entry point
//! the domain uses: generate a key, sign a request.

pub mod cosmos;
pub mod evm;
pub mod solana;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use k256::ecdsa::SigningKey;
use serde_json::Value;
use zeroize::Zeroizing;

pub use keystead_model::WalletType;

/// A refused signing request; the sentence says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("{0}")]
    Invalid(String),
    #[error("the stored key is not a valid private key")]
    BadKey,
    #[error("signing failed")]
    Signing,
}

impl From<evm::EvmError> for WalletError {
    fn from(e: evm::EvmError) -> Self {
        match e {
            evm::EvmError::Signing(_) => WalletError::Signing,
            other => WalletError::Invalid(other.to_string()),
        }
    }
}

impl From<solana::SolanaError> for WalletError {
    fn from(e: solana::SolanaError) -> Self {
        WalletError::Invalid(e.to_string())
    }
}

impl From<cosmos::CosmosError> for WalletError {
    fn from(e: cosmos::CosmosError) -> Self {
        WalletError::Invalid(e.to_string())
    }
}

/// Raw private key bytes (secp256k1 scalar or ed25519 seed); redacted
/// `Debug`, zeroized on drop.
pub struct PrivateKey(Zeroizing<Vec<u8>>);

impl PrivateKey {
    pub fn from_bytes(bytes: &[u8]) -> Self {
        PrivateKey(Zeroizing::new(bytes.to_vec()))
    }
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey([redacted])")
    }
}

/// A freshly generated key and its public forms.
#[derive(Debug)]
pub struct NewWallet {
    pub kind: WalletType,
    pub private_key: PrivateKey,
    pub address: String,
    pub public_key: String,
}

/// A new key of `kind` from the OS CSPRNG. `cosmos_prefix` is used for
/// COSMOS only (default `cosmos`).
pub fn generate(kind: WalletType, cosmos_prefix: Option<&str>) -> Result<NewWallet, WalletError> {
    match kind {
        WalletType::Evm => Ok(generate_evm()),
        WalletType::Solana => {
            let (seed, address) = solana::generate();
            Ok(NewWallet {
                kind,
                private_key: PrivateKey(Zeroizing::new(seed.to_vec())),
                public_key: address.clone(),
                address,
            })
        }
        WalletType::Cosmos => {
            let prefix = cosmos_prefix.unwrap_or(cosmos::DEFAULT_PREFIX);
            cosmos::validate_prefix(prefix)?;
            let sk = SigningKey::random(&mut rand::rngs::OsRng);
            let compressed: [u8; 33] = sk
                .verifying_key()
                .to_encoded_point(true)
                .as_bytes()
                .try_into()
                .map_err(|_| WalletError::BadKey)?;
            Ok(NewWallet {
                kind,
                private_key: PrivateKey(Zeroizing::new(sk.to_bytes().to_vec())),
                address: cosmos::address(&compressed, prefix)?,
                public_key: format!("0x{}", hex::encode(compressed)),
            })
        }
    }
}

/// A new EVM (secp256k1) key from the OS CSPRNG.
pub fn generate_evm() -> NewWallet {
    let sk = SigningKey::random(&mut rand::rngs::OsRng);
    let private_key = PrivateKey(Zeroizing::new(sk.to_bytes().to_vec()));
    let (address, public_key) = evm_public(&sk);
    NewWallet {
        kind: WalletType::Evm,
        private_key,
        address,
        public_key,
    }
}

/// `(EIP-55 address, 0x compressed public key)` of a secp256k1 key.
pub fn evm_public(sk: &SigningKey) -> (String, String) {
    let vk = sk.verifying_key();
    let compressed = vk.to_encoded_point(true);
    (
        evm::evm_address(vk).to_checksum(None),
        format!("0x{}", hex::encode(compressed.as_bytes())),
    )
}

pub fn evm_signing_key(key: &PrivateKey) -> Result<SigningKey, WalletError> {
    SigningKey::from_slice(key.bytes()).map_err(|_| WalletError::BadKey)
}

fn seed(key: &PrivateKey) -> Result<Zeroizing<[u8; 32]>, WalletError> {
    let mut out = Zeroizing::new([0u8; 32]);
    if key.bytes().len() != 32 {
        return Err(WalletError::BadKey);
    }
    out.copy_from_slice(key.bytes());
    Ok(out)
}

/// EIP-55 mixed-case checksum encoding.
pub fn eip55(addr: &[u8; 20]) -> String {
    alloy_primitives::Address::from(*addr).to_checksum(None)
}

/// What the caller asked to have signed (SPEC §5 wallet routes).
#[derive(Debug)]
pub enum SignRequest<'a> {
    Message(&'a str),
    TypedData(&'a Value),
    Transaction(&'a Value),
    Raw(&'a str),
}

/// The answer: `{signature}` or `{signedTransaction}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signed {
    Signature(String),
    SignedTransaction(String),
}

fn digest32(data: &str) -> Result<[u8; 32], WalletError> {
    let hex_part = data.strip_prefix("0x").unwrap_or(data);
    let bytes = hex::decode(hex_part)
        .map_err(|_| WalletError::Invalid("data must be a 32-byte digest as 0x-hex".into()))?;
    bytes
        .try_into()
        .map_err(|_| WalletError::Invalid("data must be exactly 32 bytes (64 hex digits)".into()))
}

fn not_for(kind: WalletType, what: &str) -> WalletError {
    WalletError::Invalid(format!(
        "{what} is not available for {} wallets",
        kind.as_str()
    ))
}

/// Signs `req` with `key` of a wallet of `kind` at `address`.
pub fn sign(
    kind: WalletType,
    key: &PrivateKey,
    address: &str,
    req: &SignRequest<'_>,
) -> Result<Signed, WalletError> {
    let hex0x = |b: &[u8]| format!("0x{}", hex::encode(b));
    match kind {
        WalletType::Evm => {
            let sk = evm_signing_key(key)?;
            Ok(match req {
                SignRequest::Message(m) => {
                    Signed::Signature(hex0x(&evm::sign_personal_message(&sk, m.as_bytes())?))
                }
                SignRequest::TypedData(t) => {
                    Signed::Signature(hex0x(&evm::sign_typed_data(&sk, t)?))
                }
                SignRequest::Transaction(tx) => {
                    Signed::SignedTransaction(hex0x(&evm::sign_transaction(&sk, tx)?))
                }
                SignRequest::Raw(d) => {
                    Signed::Signature(hex0x(&evm::sign_digest(&sk, &digest32(d)?)?))
                }
            })
        }
        WalletType::Solana => {
            let seed = seed(key)?;
            let bytes: Vec<u8> = match req {
                SignRequest::Message(m) => m.as_bytes().to_vec(),
                SignRequest::Transaction(Value::String(b64)) => solana::decode_message_b64(b64)?,
                SignRequest::Transaction(_) => {
                    return Err(WalletError::Invalid(
                        "for SOLANA, transaction is the serialized message as a base64 string"
                            .into(),
                    ))
                }
                SignRequest::Raw(d) => match d.strip_prefix("0x") {
                    Some(h) => hex::decode(h)
                        .map_err(|_| WalletError::Invalid("data is not valid 0x-hex".into()))?,
                    None => B64.decode(d.trim()).map_err(|_| {
                        WalletError::Invalid("data must be 0x-hex or base64".into())
                    })?,
                },
                SignRequest::TypedData(_) => return Err(not_for(kind, "sign-typed-data")),
            };
            if bytes.is_empty() {
                return Err(WalletError::Invalid("nothing to sign".into()));
            }
            Ok(Signed::Signature(
                bs58::encode(solana::sign(&seed, &bytes)).into_string(),
            ))
        }
        WalletType::Cosmos => {
            let sk = evm_signing_key(key)?;
            Ok(match req {
                SignRequest::Message(m) => {
                    Signed::Signature(B64.encode(cosmos::sign_adr036(&sk, address, m.as_bytes())?))
                }
                SignRequest::Raw(d) => {
                    Signed::Signature(B64.encode(cosmos::sign_digest(&sk, &digest32(d)?)?))
                }
                SignRequest::TypedData(_) => return Err(not_for(kind, "sign-typed-data")),
                SignRequest::Transaction(_) => return Err(not_for(kind, "sign-transaction")),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eip55_vectors_from_the_eip() {
        for a in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
            "0x52908400098527886E0F7030069857D2E4169EE7",
            "0xde709f2102306220921060314715629080e2fb77",
        ] {
            let raw: [u8; 20] = hex::decode(&a[2..]).unwrap().try_into().unwrap();
            assert_eq!(eip55(&raw), a);
        }
    }

    #[test]
    fn known_private_keys_give_known_addresses() {
        let one = PrivateKey::from_bytes(&{
            let mut k = [0u8; 32];
            k[31] = 1;
            k
        });
        let (addr, pubkey) = evm_public(&evm_signing_key(&one).unwrap());
        assert_eq!(addr, "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf");
        assert_eq!(
            pubkey,
            "0x0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
        );
        let k = PrivateKey::from_bytes(
            &hex::decode("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
                .unwrap(),
        );
        assert_eq!(
            evm_public(&evm_signing_key(&k).unwrap()).0,
            "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
        );
    }

    #[test]
    fn generated_keys_differ_and_never_print() {
        for kind in [WalletType::Evm, WalletType::Solana, WalletType::Cosmos] {
            let a = generate(kind, None).unwrap();
            let b = generate(kind, None).unwrap();
            assert_ne!(a.address, b.address);
            assert_eq!(a.private_key.bytes().len(), 32);
            let dbg = format!("{a:?}");
            assert!(!dbg.contains(&hex::encode(a.private_key.bytes())));
            assert!(dbg.contains("redacted"));
        }
        assert!(generate(WalletType::Cosmos, Some("osmo"))
            .unwrap()
            .address
            .starts_with("osmo1"));
        assert!(generate(WalletType::Cosmos, Some("Bad!")).is_err());
    }

    #[test]
    fn requests_a_wallet_type_cannot_do_are_refused() {
        let s = generate(WalletType::Solana, None).unwrap();
        let v = serde_json::json!({});
        assert!(sign(
            WalletType::Solana,
            &s.private_key,
            &s.address,
            &SignRequest::TypedData(&v)
        )
        .is_err());
        let c = generate(WalletType::Cosmos, None).unwrap();
        assert!(sign(
            WalletType::Cosmos,
            &c.private_key,
            &c.address,
            &SignRequest::Transaction(&v)
        )
        .is_err());
        let e = generate(WalletType::Evm, None).unwrap();
        assert!(sign(
            WalletType::Evm,
            &e.private_key,
            &e.address,
            &SignRequest::Raw("0x1234")
        )
        .is_err());
    }
}
