//! Wallet keys. A private key exists in clear only inside [`PrivateKey`],
//! which is zeroized on drop and never printed; callers seal it with
//! envelope encryption right after generation and open it only for the
//! duration of one signature.

use k256::ecdsa::SigningKey;
use sha3::{Digest, Keccak256};
use zeroize::Zeroizing;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalletType {
    Evm,
}

impl WalletType {
    pub fn as_str(self) -> &'static str {
        match self {
            WalletType::Evm => "EVM",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "EVM" => Some(WalletType::Evm),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("the stored key is not a valid private key")]
    BadKey,
}

/// Raw private key bytes; redacted `Debug`, zeroized on drop.
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
    let uncompressed = vk.to_encoded_point(false);
    let hash = Keccak256::digest(&uncompressed.as_bytes()[1..]);
    let mut addr = [0u8; 20];
    addr.copy_from_slice(&hash[12..]);
    let compressed = vk.to_encoded_point(true);
    (
        eip55(&addr),
        format!("0x{}", hex::encode(compressed.as_bytes())),
    )
}

pub fn evm_signing_key(key: &PrivateKey) -> Result<SigningKey, WalletError> {
    SigningKey::from_slice(key.bytes()).map_err(|_| WalletError::BadKey)
}

/// EIP-55 mixed-case checksum encoding.
pub fn eip55(addr: &[u8; 20]) -> String {
    let lower = hex::encode(addr);
    let hash = Keccak256::digest(lower.as_bytes());
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
        if c.is_ascii_alphabetic() && nibble >= 8 {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
    }
    out
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
        let a = generate_evm();
        let b = generate_evm();
        assert_ne!(a.address, b.address);
        assert_eq!(a.private_key.bytes().len(), 32);
        let dbg = format!("{a:?}");
        assert!(!dbg.contains(&hex::encode(a.private_key.bytes())));
        assert!(dbg.contains("redacted"));
    }
}
