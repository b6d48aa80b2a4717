//! Cosmos wallets. One secp256k1 key serves every Cosmos SDK chain; only
//! the bech32 prefix of the address differs, so the prefix is the caller's
//! choice and is checked here, where a wrong one would otherwise yield an
//! address that no chain recognises. Arbitrary data is signed the way
//! Keplr and CosmJS do it (ADR-036), so that signatures verify in the
//! tools people already use: the sign doc must match theirs byte for byte,
//! and the signature is the low-s 64-byte form that the SDK accepts.

use bech32::{Bech32, Hrp};
use k256::ecdsa::signature::hazmat::PrehashSigner as _;
use k256::ecdsa::{Signature, SigningKey};
use ripemd::Ripemd160;
use sha2::{Digest, Sha256};

/// The Cosmos Hub's prefix, used when the caller names none.
pub const DEFAULT_PREFIX: &str = "cosmos";

/// Longest prefix whose 20-byte address stays within BIP-173's 90
/// characters: prefix + "1" + 32 data characters + 6 checksum characters.
pub const MAX_PREFIX_LEN: usize = 90 - 1 - 32 - 6;

#[derive(Debug, thiserror::Error)]
pub enum CosmosError {
    /// A sentence meant for the API caller.
    #[error("{0}")]
    Invalid(String),
}

/// bech32 (not bech32m) address: `prefix` + ripemd160(sha256(33-byte
/// compressed secp256k1 public key)).
pub fn address(compressed_pubkey: &[u8; 33], prefix: &str) -> Result<String, CosmosError> {
    validate_prefix(prefix)?;
    if k256::PublicKey::from_sec1_bytes(compressed_pubkey).is_err() {
        return Err(CosmosError::Invalid(
            "The public key is not a compressed secp256k1 point.".into(),
        ));
    }
    let hash = Ripemd160::digest(Sha256::digest(compressed_pubkey));
    let hrp = Hrp::parse(prefix)
        .map_err(|e| CosmosError::Invalid(format!("The address prefix is not usable: {e}.")))?;
    bech32::encode::<Bech32>(hrp, &hash)
        .map_err(|e| CosmosError::Invalid(format!("The address could not be encoded: {e}.")))
}

/// A prefix is 1 to [`MAX_PREFIX_LEN`] lowercase ASCII letters or digits.
/// BIP-173 allows up to 83 characters of most printable ASCII, but Cosmos
/// SDK chains use lowercase letters and digits only, and a prefix over 51
/// characters would make the address exceed BIP-173's 90-character limit.
pub fn validate_prefix(prefix: &str) -> Result<(), CosmosError> {
    if prefix.is_empty() {
        return Err(CosmosError::Invalid(
            "The address prefix is empty; use the chain's prefix, such as \"cosmos\".".into(),
        ));
    }
    if prefix.len() > MAX_PREFIX_LEN {
        return Err(CosmosError::Invalid(format!(
            "The address prefix is {} characters long; at most {MAX_PREFIX_LEN} keep the \
             address within bech32's 90 characters.",
            prefix.len()
        )));
    }
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(CosmosError::Invalid(
            "The address prefix may hold only lowercase letters a-z and digits 0-9.".into(),
        ));
    }
    Ok(())
}

/// The ADR-036 sign doc for arbitrary `data` signed by `signer`, as amino
/// JSON with sorted keys and no whitespace, exactly as CosmJS's
/// `serializeSignDoc(makeADR36AminoSignDoc(..))` writes it:
///
/// `{"account_number":"0","chain_id":"","fee":{"amount":[],"gas":"0"},"memo":"","msgs":[{"type":"sign/MsgSignData","value":{"data":"<base64 data>","signer":"<bech32>"}}],"sequence":"0"}`
pub fn adr036_sign_doc(signer: &str, data: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let data_b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let mut doc = String::with_capacity(220 + data_b64.len() + signer.len());
    doc.push_str(
        r#"{"account_number":"0","chain_id":"","fee":{"amount":[],"gas":"0"},"memo":"","msgs":[{"type":"sign/MsgSignData","value":{"data":""#,
    );
    doc.push_str(&data_b64);
    doc.push_str(r#"","signer":""#);
    push_json_escaped(&mut doc, signer);
    doc.push_str(r#""}}],"sequence":"0"}"#);
    doc.into_bytes()
}

/// JSON string escaping as CosmJS does it: `JSON.stringify`, then `&`, `<`
/// and `>` as `\u0026`, `\u003c`, `\u003e`. A real signer is a bech32
/// address and needs none of it; this keeps the doc valid JSON regardless.
fn push_json_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '&' => out.push_str("\\u0026"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
}

/// secp256k1 ECDSA over sha256 of the ADR-036 sign doc: low-s, 64 bytes
/// r‖s, no recovery byte (the Cosmos convention). `signer` must be this
/// key's own address under some valid prefix, lowercase, since verifiers
/// check that the signer is the address of the public key; anything else
/// is refused rather than signed into a doc that cannot verify.
pub fn sign_adr036(key: &SigningKey, signer: &str, data: &[u8]) -> Result<[u8; 64], CosmosError> {
    let Some((prefix, _)) = signer.rsplit_once('1') else {
        return Err(CosmosError::Invalid(
            "The signer is not a bech32 address.".into(),
        ));
    };
    let compressed: [u8; 33] = key
        .verifying_key()
        .to_encoded_point(true)
        .as_bytes()
        .try_into()
        .map_err(|_| CosmosError::Invalid("The key has no compressed public form.".into()))?;
    let own = address(&compressed, prefix)?;
    if own != signer {
        return Err(CosmosError::Invalid(format!(
            "The signer {signer} is not this wallet's address, which is {own}."
        )));
    }
    let digest: [u8; 32] = Sha256::digest(adr036_sign_doc(signer, data)).into();
    sign_digest(key, &digest)
}

/// secp256k1 ECDSA (RFC 6979 deterministic) over a 32-byte digest as
/// given, for sign-raw: low-s, 64 bytes r‖s.
pub fn sign_digest(key: &SigningKey, digest: &[u8; 32]) -> Result<[u8; 64], CosmosError> {
    let sig: Signature = key
        .sign_prehash(digest)
        .map_err(|_| CosmosError::Invalid("The digest could not be signed.".into()))?;
    let sig = sig.normalize_s().unwrap_or(sig);
    let mut out = [0u8; 64];
    out.copy_from_slice(&sig.to_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use bech32::primitives::decode::CheckedHrpstring;
    use k256::ecdsa::signature::hazmat::PrehashVerifier as _;
    use k256::ecdsa::signature::Verifier as _;
    use k256::ecdsa::VerifyingKey;

    fn pubkey_b64(s: &str) -> [u8; 33] {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .unwrap()
            .try_into()
            .unwrap()
    }

    fn pubkey_hex(s: &str) -> [u8; 33] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    fn key_from_scalar(n: u8) -> SigningKey {
        let mut b = [0u8; 32];
        b[31] = n;
        SigningKey::from_slice(&b).unwrap()
    }

    fn compressed(key: &SigningKey) -> [u8; 33] {
        key.verifying_key()
            .to_encoded_point(true)
            .as_bytes()
            .try_into()
            .unwrap()
    }

    /// The address by a second path: decode the expected bech32 with the
    /// bech32 crate and compare its payload to a fresh hash of the key.
    fn independently_matches(pk: &[u8; 33], expected: &str) {
        let (hrp, payload) = bech32::decode(expected).unwrap();
        let mut h = Ripemd160::new();
        h.update(Sha256::digest(pk));
        assert_eq!(payload, h.finalize().to_vec());
        assert_eq!(address(pk, hrp.as_str()).unwrap(), expected);
    }

    #[test]
    fn cosmjs_address_vectors() {
        // CosmJS (launchpad/amino address.spec.ts): "works for Secp256k1 compressed".
        let pk = pubkey_b64("AtQaCqFnshaZQp6rIkvAPyzThvCvXSDO+9AzbxVErqJP");
        assert_eq!(
            hex::encode(pk),
            "02d41a0aa167b21699429eab224bc03f2cd386f0af5d20cefbd0336f1544aea24f"
        );
        assert_eq!(
            address(&pk, DEFAULT_PREFIX).unwrap(),
            "cosmos1h806c7khnvmjlywdrkdgk2vrayy2mmvf9rxk2r"
        );
        independently_matches(&pk, "cosmos1h806c7khnvmjlywdrkdgk2vrayy2mmvf9rxk2r");

        // CosmJS (iov cosmos address.spec.ts): the same key uncompressed,
        // BE8EGB7r…, and compressed, A08EGB7r… = 034f0418…, both map here.
        let pk = pubkey_hex("034f04181eeba35391b858633a765c4a0c189697b40d216354d50890d350c70290");
        assert_eq!(
            pk,
            pubkey_b64("A08EGB7ro1ORuFhjOnZcSgwYlpe0DSFjVNUIkNNQxwKQ")
        );
        assert_eq!(
            address(&pk, "cosmos").unwrap(),
            "cosmos1pkptre7fdkl6gfrzlesjjvhxhlc3r4gmmk8rs6"
        );
        independently_matches(&pk, "cosmos1pkptre7fdkl6gfrzlesjjvhxhlc3r4gmmk8rs6");
    }

    #[test]
    fn other_prefixes_and_key_one() {
        // Private key 1: its public key is the generator point G.
        let g = compressed(&key_from_scalar(1));
        assert_eq!(
            hex::encode(g),
            "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
        );
        let cosmos = address(&g, "cosmos").unwrap();
        let osmo = address(&g, "osmo").unwrap();
        assert!(cosmos.starts_with("cosmos1") && osmo.starts_with("osmo1"));
        // Same payload under both prefixes: it is bitcoin's hash160 of G.
        assert_eq!(
            hex::encode(bech32::decode(&cosmos).unwrap().1),
            "751e76e8199196d454941c45d1b3a323f1433bd6"
        );
        assert_eq!(
            bech32::decode(&osmo).unwrap().1,
            bech32::decode(&cosmos).unwrap().1
        );
        // bech32, not bech32m.
        assert!(CheckedHrpstring::new::<Bech32>(&cosmos).is_ok());
        assert!(CheckedHrpstring::new::<bech32::Bech32m>(&cosmos).is_err());
    }

    #[test]
    fn prefixes_are_checked() {
        for good in [
            "cosmos",
            "osmo",
            "a",
            "terra2",
            "0",
            &"a".repeat(MAX_PREFIX_LEN),
        ] {
            validate_prefix(good).unwrap();
        }
        for bad in [
            "",
            "Cosmos",
            "COSMOS",
            "cos-mos",
            "cosmos ",
            "?",
            "cösmos",
            &"a".repeat(52),
        ] {
            let err = validate_prefix(bad).unwrap_err().to_string();
            assert!(err.ends_with('.'), "{err}");
            assert!(address(&compressed(&key_from_scalar(1)), bad).is_err());
        }
        let longest = address(
            &compressed(&key_from_scalar(1)),
            &"a".repeat(MAX_PREFIX_LEN),
        )
        .unwrap();
        assert_eq!(longest.len(), 90);
    }

    #[test]
    fn not_a_point_is_refused() {
        let mut pk = [0u8; 33];
        pk[0] = 0x02; // x = 0 is not on the curve
        assert!(address(&pk, "cosmos").is_err());
        let mut pk = compressed(&key_from_scalar(1));
        pk[0] = 0x04;
        assert!(address(&pk, "cosmos").is_err());
    }

    #[test]
    fn bip173_checksum_vectors() {
        for valid in [
            "A12UEL5L",
            "a12uel5l",
            "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
            "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
            "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
            "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
            "?1ezyfcl",
        ] {
            assert!(CheckedHrpstring::new::<Bech32>(valid).is_ok(), "{valid}");
        }
        for invalid in [
            "\u{20}1nwldj5",  // HRP character out of range
            "\u{7f}1axkwrx",  // HRP character out of range
            "\u{80}1eym55h",  // HRP character out of range
            "pzry9x0s0muk",   // no separator
            "1pzry9x0s0muk",  // empty HRP
            "x1b4n0q5v",      // invalid data character
            "li1dgmt3",       // checksum too short
            "de1lg7wt\u{ff}", // invalid character in checksum
            "A1G7SGD8",       // checksum computed with uppercase HRP
            "10a06t8",        // empty HRP
            "1qzzfhee",       // empty HRP
            "a12UEL5L",       // mixed case
            "a1lqfn3a",       // a valid bech32m string (BIP-350)
        ] {
            assert!(
                CheckedHrpstring::new::<Bech32>(invalid).is_err(),
                "{invalid:?}"
            );
        }
    }

    #[test]
    fn adr036_sign_doc_is_byte_exact() {
        let doc = adr036_sign_doc("cosmos1qypqxpq9qcrsszg2pvxq6rs0zqg3yyc5lzv7xu", b"hello");
        assert_eq!(
            String::from_utf8(doc.clone()).unwrap(),
            r#"{"account_number":"0","chain_id":"","fee":{"amount":[],"gas":"0"},"memo":"","msgs":[{"type":"sign/MsgSignData","value":{"data":"aGVsbG8=","signer":"cosmos1qypqxpq9qcrsszg2pvxq6rs0zqg3yyc5lzv7xu"}}],"sequence":"0"}"#
        );
        // Valid JSON that re-serializes (serde_json sorts keys) to itself.
        let v: serde_json::Value = serde_json::from_slice(&doc).unwrap();
        assert_eq!(serde_json::to_vec(&v).unwrap(), doc);
    }

    #[test]
    fn adr036_outside_signature_verifies() {
        // A vector published as made with CosmJS (serializeSignDoc +
        // Secp256k1.createSignature); a valid signature cannot verify over
        // a doc that differs by one byte, so this checks our doc and
        // address derivation against a signer we did not write.
        let pk = pubkey_b64("AgLXVXtcu4Cs8rIbxfCep3tfgRhOMN3fT0LV9B4TqyAi");
        let signer = "sprkdrm1f6d7jjsknyvthgy5e0c8heragxt4tq95xcmpgh";
        assert_eq!(address(&pk, "sprkdrm").unwrap(), signer);
        let data = "Sign in to social.phoenix.example as a Spark Dream member.\n\nNonce: abc<&>\nIssued: 2026-09-27T00:00:00Z";
        let doc = adr036_sign_doc(signer, data.as_bytes());
        assert_eq!(
            String::from_utf8(doc.clone()).unwrap(),
            r#"{"account_number":"0","chain_id":"","fee":{"amount":[],"gas":"0"},"memo":"","msgs":[{"type":"sign/MsgSignData","value":{"data":"U2lnbiBpbiB0byBzb2NpYWwucGhvZW5peC5leGFtcGxlIGFzIGEgU3BhcmsgRHJlYW0gbWVtYmVyLgoKTm9uY2U6IGFiYzwmPgpJc3N1ZWQ6IDIwMjYtMDktMjdUMDA6MDA6MDBa","signer":"sprkdrm1f6d7jjsknyvthgy5e0c8heragxt4tq95xcmpgh"}}],"sequence":"0"}"#
        );
        let sig = Signature::from_slice(
            &base64::engine::general_purpose::STANDARD
                .decode("ReWq9zx99uonmG4f5P/ssSu5NG215fjWxSIZui54I4srxl+4MUhHaDfZea7TtA8eDBdVB6pZsvAbXCu5hG36oA==")
                .unwrap(),
        )
        .unwrap();
        let vk = VerifyingKey::from_sec1_bytes(&pk).unwrap();
        vk.verify(&doc, &sig).unwrap();
        assert!(vk.verify(&adr036_sign_doc(signer, b"other"), &sig).is_err());
    }

    #[test]
    fn sign_adr036_verifies_and_is_low_s() {
        for n in 1..=16u8 {
            let key = key_from_scalar(n);
            let signer = address(&compressed(&key), "cosmos").unwrap();
            let raw = sign_adr036(&key, &signer, b"hello").unwrap();
            let sig = Signature::from_slice(&raw).unwrap();
            assert!(sig.normalize_s().is_none(), "high s for key {n}");
            // Verifier hashes with sha256, as the SDK does over the sign doc.
            key.verifying_key()
                .verify(&adr036_sign_doc(&signer, b"hello"), &sig)
                .unwrap();
            assert!(key
                .verifying_key()
                .verify(&adr036_sign_doc(&signer, b"hellO"), &sig)
                .is_err());
            // Deterministic (RFC 6979).
            assert_eq!(raw, sign_adr036(&key, &signer, b"hello").unwrap());
        }
    }

    #[test]
    fn sign_adr036_refuses_a_signer_that_is_not_the_key() {
        let key = key_from_scalar(1);
        let own = address(&compressed(&key), "cosmos").unwrap();
        let other = address(&compressed(&key_from_scalar(2)), "cosmos").unwrap();
        let err = sign_adr036(&key, &other, b"x").unwrap_err().to_string();
        assert!(err.contains(&own), "{err}");
        assert!(sign_adr036(&key, &own.to_uppercase(), b"x").is_err());
        assert!(sign_adr036(&key, "no separator here", b"x").is_err());
        // The same payload under bech32m is not the address.
        let hrp = Hrp::parse("cosmos").unwrap();
        let payload = bech32::decode(&own).unwrap().1;
        let m = bech32::encode::<bech32::Bech32m>(hrp, &payload).unwrap();
        assert!(sign_adr036(&key, &m, b"x").is_err());
        // Another chain's prefix for the same key is fine.
        let osmo = address(&compressed(&key), "osmo").unwrap();
        sign_adr036(&key, &osmo, b"x").unwrap();
    }

    #[test]
    fn sign_digest_verifies_and_is_low_s() {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        for i in 0..64u8 {
            let digest: [u8; 32] = Sha256::digest([i]).into();
            let sig = Signature::from_slice(&sign_digest(&key, &digest).unwrap()).unwrap();
            assert!(sig.normalize_s().is_none());
            key.verifying_key().verify_prehash(&digest, &sig).unwrap();
        }
    }

    #[test]
    fn json_escaping_matches_cosmjs() {
        let doc = String::from_utf8(adr036_sign_doc("a\"b\\c<&>\n\u{1}", b"")).unwrap();
        assert!(
            doc.contains(r#""signer":"a\"b\\c\u003c\u0026\u003e\n\u0001""#),
            "{doc}"
        );
        serde_json::from_str::<serde_json::Value>(&doc).unwrap();
    }
}
