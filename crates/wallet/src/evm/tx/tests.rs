//! Transaction tests: the published EIP-155 and eth-account vectors, a
//! round trip through an independent RLP decoder, and the refusals.

use alloy_rlp::Header;
use serde_json::{json, Map, Value};

use super::super::testutil::{cow_key, dec32, err_text, h, key, pad32};
use super::super::{address_of, keccak256, recover_address};
use super::*;

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
        Rlp::List(l) => rlp_items(&l.iter().map(rlp_reencode).collect::<Vec<_>>()),
    }
}

/// RLP of a byte string, as the transaction fields are encoded.
fn rlp_bytes(data: &[u8]) -> Vec<u8> {
    alloy_rlp::encode(data)
}

fn rlp_u64(value: u64) -> Vec<u8> {
    alloy_rlp::encode(value)
}

/// RLP of a list whose items are already RLP-encoded.
fn rlp_items(items: &[Vec<u8>]) -> Vec<u8> {
    let payload = items.concat();
    let mut out = Vec::with_capacity(payload.len() + 9);
    Header {
        list: true,
        payload_length: payload.len(),
    }
    .encode(&mut out);
    out.extend(payload);
    out
}

#[test]
fn rlp_encoder_matches_the_spec_examples() {
    assert_eq!(rlp_bytes(b"dog"), h("83646f67"));
    assert_eq!(
        rlp_items(&[rlp_bytes(b"cat"), rlp_bytes(b"dog")]),
        h("c88363617483646f67")
    );
    assert_eq!(rlp_bytes(b""), h("80"));
    assert_eq!(rlp_items(&[]), h("c0"));
    assert_eq!(rlp_u64(0), h("80"));
    assert_eq!(rlp_bytes(&[0]), h("00"));
    assert_eq!(rlp_u64(15), h("0f"));
    assert_eq!(rlp_u64(1024), h("820400"));
    assert_eq!(rlp_u64(0x80), h("8180"));
    // [ [], [[]], [ [], [[]] ] ]
    let empty = rlp_items(&[]);
    let one = rlp_items(std::slice::from_ref(&empty));
    assert_eq!(
        rlp_items(&[empty.clone(), one.clone(), rlp_items(&[empty, one])]),
        h("c7c0c1c0c3c0c1c0")
    );
    let lorem = b"Lorem ipsum dolor sit amet, consectetur adipisicing elit";
    let mut expected = h("b838");
    expected.extend_from_slice(lorem);
    assert_eq!(rlp_bytes(lorem), expected);
    let long = vec![0xaa; 1024];
    assert_eq!(&rlp_bytes(&long)[..3], &h("b90400")[..]);
    assert_eq!(&rlp_items(&[rlp_bytes(&long)])[..3], &h("f90403")[..]);

    // The list builder the transactions use, over alloy's encodings of the
    // field types.
    assert_eq!(rlp_list(&[&"cat", &"dog"]), h("c88363617483646f67"));
    assert_eq!(rlp_list(&[]), h("c0"));
    assert_eq!(alloy_rlp::encode(U256::ZERO), h("80"));
    assert_eq!(alloy_rlp::encode(U256::from(1024)), h("820400"));
    assert_eq!(alloy_rlp::encode(TxKind::Create), h("80"));
    let entry = AccessListItem {
        address: Address::repeat_byte(0x35),
        storage_keys: vec![B256::repeat_byte(1)],
    };
    let mut expected = h("f7");
    expected.extend(h("94"));
    expected.extend([0x35; 20]);
    expected.extend(h("e1a0"));
    expected.extend([1; 32]);
    assert_eq!(alloy_rlp::encode(&entry), expected);
    assert_eq!(entry.length(), expected.len());
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
        hex::encode(keccak256(&rlp_items(&unsigned))),
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
    preimage.extend(rlp_items(
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
        recover_address(&keccak256(&rlp_items(&unsigned)), &sig).unwrap(),
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
        let mut tx = json!({"type": "0x0", "nonce": 0, "gas": 21000, "gasPrice": 1, "chainId": 1});
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
    assert!(err_text(legacy(&|t| {
        t.insert(
            "accessList".into(),
            json!([{"address": "0x3535353535353535353535353535353535353535", "storageKeys": []}]),
        );
    }))
    .contains("cannot carry an access list"));
    assert!(err_text(sign_transaction(&k, &json!([1]))).contains("JSON object"));
}
