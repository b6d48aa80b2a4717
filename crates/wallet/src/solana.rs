//! Solana wallets. Solana names an account by its ed25519 public key in
//! base58, so there is no hashing between key and address and the 32-byte
//! seed is the whole secret: it lives in a [`Zeroizing`] buffer so it is
//! wiped on every path out, including errors. Signing a transaction means
//! signing its serialized *message*; the signatures that precede the
//! message in a serialized transaction are not signed over. A client that
//! sends the whole transaction would get a signature over the wrong bytes
//! that no validator accepts, so [`decode_message_b64`] recognises that
//! mistake and refuses it with a sentence rather than signing quietly.

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey};
use rand::RngCore as _;
use zeroize::Zeroizing;

/// Largest packet a Solana transaction may occupy (IPv6 MTU less headers).
/// A message must be smaller still, as the signatures share the packet.
pub const PACKET_SIZE: usize = 1232;

#[derive(Debug, thiserror::Error)]
pub enum SolanaError {
    /// A sentence meant for the API caller.
    #[error("{0}")]
    Invalid(String),
}

/// A new ed25519 key from the OS CSPRNG: the 32-byte secret seed (zeroized
/// on drop) and its base58 address, which is also the public key.
pub fn generate() -> (Zeroizing<[u8; 32]>, String) {
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(seed.as_mut());
    let address = address_of(&seed);
    (seed, address)
}

/// The base58 address (= base58 public key) of a seed.
pub fn address_of(seed: &[u8; 32]) -> String {
    let sk = SigningKey::from_bytes(seed);
    bs58::encode(sk.verifying_key().as_bytes()).into_string()
}

/// ed25519 signature over `bytes`: the UTF-8 text for sign-message, the raw
/// bytes for sign-raw, the serialized message from [`decode_message_b64`]
/// for sign-transaction.
pub fn sign(seed: &[u8; 32], bytes: &[u8]) -> [u8; 64] {
    let sk = SigningKey::from_bytes(seed);
    sk.sign(bytes).to_bytes()
}

/// Decodes the base64 serialized Solana *message* (legacy or v0) that
/// sign-transaction signs. Refuses empty input, input over
/// [`PACKET_SIZE`] bytes, and a full serialized transaction (signature
/// count, signatures, then message), which is detected by parsing: bytes
/// that parse exactly as a transaction whose signature count matches its
/// message header, and not as a message, are refused. Anything else is
/// returned as is and signed as given: the service does not interpret the
/// instructions, the caller's client does.
pub fn decode_message_b64(b64: &str) -> Result<Vec<u8>, SolanaError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| SolanaError::Invalid("The transaction message is not valid base64.".into()))?;
    if bytes.is_empty() {
        return Err(SolanaError::Invalid(
            "The transaction message is empty.".into(),
        ));
    }
    if bytes.len() > PACKET_SIZE {
        return Err(SolanaError::Invalid(format!(
            "The transaction message is {} bytes; a Solana transaction fits in {PACKET_SIZE}.",
            bytes.len()
        )));
    }
    if parse_message(&bytes).is_none() && looks_like_transaction(&bytes) {
        return Err(SolanaError::Invalid(
            "This is a whole serialized transaction, signatures included; send only its \
             serialized message (for example transaction.serializeMessage() in web3.js)."
                .into(),
        ));
    }
    Ok(bytes)
}

/// A byte cursor over a serialized message; every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn u8(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        if end > self.bytes.len() {
            return None;
        }
        self.pos = end;
        Some(())
    }

    /// Solana's compact-u16 ("shortvec") length: 1 to 3 bytes, 7 bits each,
    /// canonical encoding only.
    fn shortvec(&mut self) -> Option<usize> {
        let mut value: u32 = 0;
        for i in 0..3 {
            let b = self.u8()?;
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                // A trailing zero byte would be an alias of a shorter form.
                if i > 0 && b == 0 {
                    return None;
                }
                return if value <= u32::from(u16::MAX) {
                    usize::try_from(value).ok()
                } else {
                    None
                };
            }
        }
        None
    }

    fn done(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

/// Parses a legacy or v0 message and returns its number of required
/// signatures when the bytes are exactly one well-formed message.
fn parse_message(bytes: &[u8]) -> Option<u8> {
    let mut r = Reader::new(bytes);
    let first = r.u8()?;
    let versioned = first & 0x80 != 0;
    let required = if versioned {
        if first & 0x7f != 0 {
            return None; // only v0 exists
        }
        r.u8()?
    } else {
        first
    };
    if required == 0 {
        return None;
    }
    r.skip(2)?; // read-only signed and unsigned counts
    let keys = r.shortvec()?;
    if keys < usize::from(required) {
        return None;
    }
    r.skip(keys.checked_mul(32)?)?;
    r.skip(32)?; // recent blockhash
    let instructions = r.shortvec()?;
    for _ in 0..instructions {
        r.u8()?; // program id index
        let accounts = r.shortvec()?;
        r.skip(accounts)?;
        let data = r.shortvec()?;
        r.skip(data)?;
    }
    if versioned {
        let lookups = r.shortvec()?;
        for _ in 0..lookups {
            r.skip(32)?; // table address
            let writable = r.shortvec()?;
            r.skip(writable)?;
            let readonly = r.shortvec()?;
            r.skip(readonly)?;
        }
    }
    r.done().then_some(required)
}

/// True when the bytes are a signature list followed by a message that
/// requires exactly that many signatures.
fn looks_like_transaction(bytes: &[u8]) -> bool {
    let mut r = Reader::new(bytes);
    let Some(count) = r.shortvec() else {
        return false;
    };
    if count == 0 || r.skip(count.saturating_mul(64)).is_none() {
        return false;
    }
    let rest = bytes.get(r.pos..).unwrap_or_default();
    parse_message(rest).is_some_and(|required| usize::from(required) == count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};

    fn seed(hex_str: &str) -> [u8; 32] {
        hex::decode(hex_str).unwrap().try_into().unwrap()
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// Base58 by schoolbook long division, independent of the bs58 crate.
    fn naive_base58(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
        let mut num = bytes.to_vec();
        let mut out = Vec::new();
        while num.iter().any(|&b| b != 0) {
            let mut rem = 0u32;
            for b in num.iter_mut() {
                let acc = (rem << 8) | u32::from(*b);
                *b = (acc / 58) as u8;
                rem = acc % 58;
            }
            out.push(ALPHABET[rem as usize]);
        }
        let zeros = bytes.iter().take_while(|&&b| b == 0).count();
        out.extend(std::iter::repeat_n(b'1', zeros));
        out.reverse();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rfc8032_test_vector_1() {
        let sk = seed("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let sig = sign(&sk, b"");
        assert_eq!(
            hex::encode(sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        let public =
            hex::decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
                .unwrap();
        let addr = address_of(&sk);
        assert_eq!(bs58::decode(&addr).into_vec().unwrap(), public);
        assert_eq!(addr, naive_base58(&public));
        let vk = VerifyingKey::from_bytes(&public.try_into().unwrap()).unwrap();
        vk.verify(b"", &Signature::from_bytes(&sig)).unwrap();
    }

    #[test]
    fn rfc8032_test_vector_2() {
        let sk = seed("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
        let sig = sign(&sk, &[0x72]);
        assert_eq!(
            hex::encode(sig),
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        );
        let public =
            hex::decode("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
                .unwrap();
        assert_eq!(address_of(&sk), naive_base58(&public));
        let vk = VerifyingKey::from_bytes(&public.try_into().unwrap()).unwrap();
        vk.verify(&[0x72], &Signature::from_bytes(&sig)).unwrap();
        assert!(vk.verify(&[0x73], &Signature::from_bytes(&sig)).is_err());
    }

    #[test]
    fn base58_known_answers() {
        // The System Program id is the all-zero key.
        assert_eq!(
            bs58::encode([0u8; 32]).into_string(),
            "11111111111111111111111111111111"
        );
        assert_eq!(naive_base58(&[0u8; 32]), "11111111111111111111111111111111");
        // The SPL Token program id.
        let token = hex::decode("06ddf6e1d765a193d9cbe146ceeb79ac1cb485ed5f5b37913a8cf5857eff00a9")
            .unwrap();
        assert_eq!(
            bs58::encode(&token).into_string(),
            "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
        );
        assert_eq!(
            naive_base58(&token),
            "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
        );
    }

    #[test]
    fn generated_keys_sign_and_verify() {
        let (a_seed, a_addr) = generate();
        let (b_seed, b_addr) = generate();
        assert_ne!(*a_seed, *b_seed);
        assert_ne!(a_addr, b_addr);
        assert_eq!(address_of(&a_seed), a_addr);
        let public: [u8; 32] = bs58::decode(&a_addr)
            .into_vec()
            .unwrap()
            .try_into()
            .unwrap();
        let vk = VerifyingKey::from_bytes(&public).unwrap();
        let msg = "hello solana".as_bytes();
        vk.verify(msg, &Signature::from_bytes(&sign(&a_seed, msg)))
            .unwrap();
        assert!(vk
            .verify(msg, &Signature::from_bytes(&sign(&b_seed, msg)))
            .is_err());
    }

    /// A legacy message: one signer transferring lamports via the System
    /// Program (two keys plus the program id).
    fn legacy_transfer_message() -> Vec<u8> {
        let mut m = vec![1u8, 0, 1]; // header
        m.push(3); // three account keys
        m.extend([7u8; 32]);
        m.extend([8u8; 32]);
        m.extend([0u8; 32]); // System Program
        m.extend([9u8; 32]); // recent blockhash
        m.push(1); // one instruction
        m.push(2); // program id index
        m.extend([2u8, 0, 1]); // two accounts: 0, 1
        m.push(12); // data length
        m.extend([2u8, 0, 0, 0]); // Transfer
        m.extend(1_000_000u64.to_le_bytes());
        m
    }

    fn v0_message() -> Vec<u8> {
        let mut m = vec![0x80u8, 1, 0, 1];
        m.push(2);
        m.extend([7u8; 32]);
        m.extend([0u8; 32]);
        m.extend([9u8; 32]);
        m.push(1);
        m.push(1);
        m.extend([2u8, 0, 2]); // account 2 comes from the lookup table
        m.push(0);
        m.push(1); // one address table lookup
        m.extend([5u8; 32]);
        m.extend([1u8, 0]); // one writable index
        m.push(0); // no read-only index
        m
    }

    fn as_transaction(message: &[u8], signatures: usize) -> Vec<u8> {
        let mut t = vec![u8::try_from(signatures).unwrap()];
        t.extend(vec![0u8; 64 * signatures]);
        t.extend(message);
        t
    }

    #[test]
    fn messages_decode_as_given() {
        for m in [legacy_transfer_message(), v0_message()] {
            assert!(parse_message(&m).is_some());
            assert_eq!(decode_message_b64(&b64(&m)).unwrap(), m);
        }
    }

    #[test]
    fn whole_transactions_are_refused() {
        for m in [legacy_transfer_message(), v0_message()] {
            let err = decode_message_b64(&b64(&as_transaction(&m, 1)))
                .unwrap_err()
                .to_string();
            assert!(err.contains("serializeMessage"), "{err}");
        }
        // A signature count that disagrees with the header is not a
        // transaction of that message: those bytes are signed as given.
        let odd = as_transaction(&legacy_transfer_message(), 2);
        assert_eq!(decode_message_b64(&b64(&odd)).unwrap(), odd);
    }

    #[test]
    fn unparsed_bytes_are_signed_as_given() {
        let bytes = b"not a solana message at all".to_vec();
        assert_eq!(decode_message_b64(&b64(&bytes)).unwrap(), bytes);
    }

    #[test]
    fn empty_oversized_and_bad_base64_are_refused() {
        assert!(decode_message_b64("")
            .unwrap_err()
            .to_string()
            .contains("empty"));
        let big = vec![1u8; PACKET_SIZE + 1];
        assert!(decode_message_b64(&b64(&big))
            .unwrap_err()
            .to_string()
            .contains("1232"));
        assert_eq!(
            decode_message_b64(&b64(&[1u8; PACKET_SIZE])).unwrap().len(),
            PACKET_SIZE
        );
        assert!(decode_message_b64("not base64!")
            .unwrap_err()
            .to_string()
            .contains("base64"));
    }

    #[test]
    fn shortvec_is_strict() {
        assert_eq!(Reader::new(&[0x00]).shortvec(), Some(0));
        assert_eq!(Reader::new(&[0x7f]).shortvec(), Some(0x7f));
        assert_eq!(Reader::new(&[0x80, 0x01]).shortvec(), Some(0x80));
        assert_eq!(Reader::new(&[0xff, 0xff, 0x03]).shortvec(), Some(0xffff));
        assert_eq!(Reader::new(&[0x80, 0x00]).shortvec(), None); // alias of 0
        assert_eq!(Reader::new(&[0xff, 0xff, 0x04]).shortvec(), None); // > u16
        assert_eq!(Reader::new(&[0x80, 0x80, 0x80]).shortvec(), None);
        assert_eq!(Reader::new(&[0x80]).shortvec(), None);
    }
}
