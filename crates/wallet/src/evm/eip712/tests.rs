//! EIP-712 tests: the Mail example from the EIP, the v4 arrays vector from
//! eth-sig-util, hand-built encodings of every member kind, and the refusals.

use serde_json::json;

use super::super::testutil::{addr, cow_key, err_text, h, h32, pad32};
use super::super::{address_of, keccak256, recover_address};
use super::*;

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
    assert!(
        with(&|d| d["types"]["Person"][1]["type"] = json!("uint")).contains("unknown type `uint`")
    );
    assert!(with(&|d| d["types"]["Person"][1]["type"] = json!("uint7"))
        .contains("unknown type `uint7`"));
    assert!(
        with(&|d| d["types"]["Person"][1]["type"] = json!("bytes33"))
            .contains("unknown type `bytes33`")
    );
    assert!(
        with(&|d| d["types"]["Person"][1]["type"] = json!("address[02]")).contains("array length")
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
    assert!(with(&|d| d["message"]["to"]["wallet"] = json!("bob")).contains("message.to.wallet"));
    assert!(with(
        &|d| d["message"]["to"]["wallet"] = json!("0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbb")
    )
    .contains("checksum"));
    assert!(with(&|d| d["message"]["contents"] = json!(5)).contains("must be a string"));
    assert!(
        with(&|d| d["message"]["to"] = json!("Bob")).contains("must be an object of type Person")
    );
    assert!(with(&|d| d["domain"]["salt"] = json!("0x00")).contains("does not declare"));
    assert!(with(&|d| d["domain"]["chainId"] = json!(-1)).contains("negative"));
    assert!(
        with(&|d| d["types"]["Mail"][2] = json!({"name": "from", "type": "string"}))
            .contains("twice")
    );
    assert!(with(&|d| d["types"]["Mail"][2]["name"] = json!("a,b")).contains("not an identifier"));
    assert!(with(&|d| d["types"]["uint256"] = json!([])).contains("not a usable struct type name"));
    assert!(with(&|d| d["types"]["Mail"][2]["extra"] = json!(1)).contains("unknown key `extra`"));

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
