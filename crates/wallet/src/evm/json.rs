//! The scalar values of a signing request, read strictly from JSON: integers
//! (a JSON number, a decimal string or a 0x-hex string), 0x-hex bytes and
//! addresses. The types are `alloy-primitives`'; the grammar is ours, because
//! the crate's own parsers are friendlier than a signer may be (ruint skips
//! `_` in digit strings, `Address::from_str` takes hex without `0x` and does
//! not look at the checksum of a mixed-case address).

use alloy_primitives::{Address, Sign, I256, U256};
use serde_json::Value;

use super::{invalid, EvmError};

pub(super) fn kind_of(v: &Value) -> &'static str {
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
                Ok((false, U256::from(u)))
            } else if let Some(i) = n.as_i64() {
                Ok((true, U256::from(i.unsigned_abs())))
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
    if !digits.chars().all(|c| c.is_digit(radix)) {
        let (form, allowed) = if radix == 16 {
            ("0x-hex", " 0-9 and a-f after 0x")
        } else {
            ("decimal", " 0-9, or 0x-hex")
        };
        return invalid(format!(
            "{what} is \"{s}\", which is not a {form} integer; use only digits{allowed}"
        ));
    }
    // Only digits are left, so the one way to fail is a value past 2^256 - 1.
    let Ok(magnitude) = U256::from_str_radix(digits, u64::from(radix)) else {
        return invalid(format!("{what} is larger than 2^256 - 1"));
    };
    Ok((negative && !magnitude.is_zero(), magnitude))
}

/// An unsigned integer that must fit in `bits` bits.
pub(super) fn parse_uint(v: &Value, what: &str, bits: usize) -> Result<U256, EvmError> {
    let (negative, value) = parse_integer(v, what)?;
    if negative {
        return invalid(format!("{what} is negative; it must be zero or more"));
    }
    if value.bit_len() > bits {
        return invalid(format!("{what} is too large for uint{bits}"));
    }
    Ok(value)
}

pub(super) fn parse_u64(v: &Value, what: &str) -> Result<u64, EvmError> {
    let value = parse_uint(v, what, 64)?;
    match u64::try_from(value) {
        Ok(n) => Ok(n),
        Err(_) => invalid(format!("{what} is too large for uint64")),
    }
}

/// A signed integer that must fit in `bits` bits (two's complement, so
/// int8 runs from -128 to 127).
pub(super) fn parse_int(v: &Value, what: &str, bits: usize) -> Result<I256, EvmError> {
    let (negative, magnitude) = parse_integer(v, what)?;
    let sign = if negative {
        Sign::Negative
    } else {
        Sign::Positive
    };
    match I256::checked_from_sign_and_abs(sign, magnitude) {
        Some(value) if value.bits() as usize <= bits => Ok(value),
        _ => invalid(format!("{what} is out of range for int{bits}")),
    }
}

pub(super) fn parse_hex_bytes(v: &Value, what: &str) -> Result<Vec<u8>, EvmError> {
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

pub(super) fn parse_address(v: &Value, what: &str) -> Result<Address, EvmError> {
    let bytes = parse_hex_bytes(v, what)?;
    let Ok(address) = <[u8; 20]>::try_from(bytes.as_slice()).map(Address::from) else {
        return invalid(format!(
            "{what} must be a 20-byte address (0x and 40 hex digits), not {} bytes",
            bytes.len()
        ));
    };
    // A mixed-case address carries an EIP-55 checksum; check it, since a
    // mismatch almost always means a mistyped address.
    let text = v.as_str().unwrap_or_default().get(2..).unwrap_or_default();
    let has_upper = text.bytes().any(|c| c.is_ascii_uppercase());
    let has_lower = text.bytes().any(|c| c.is_ascii_lowercase());
    if has_upper && has_lower && address.to_checksum(None).get(2..) != Some(text) {
        return invalid(format!(
            "{what} has a mixed-case EIP-55 checksum that does not match; check the address for a typo or give it in all lowercase"
        ));
    }
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::err_text;
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_parse_from_numbers_decimal_and_hex() {
        let expected = U256::from(1_000_000_000_000_000_000u64);
        for v in [
            json!(1_000_000_000_000_000_000u64),
            json!("1000000000000000000"),
            json!("0xde0b6b3a7640000"),
            json!("0x0DE0B6B3A7640000"),
        ] {
            assert_eq!(parse_uint(&v, "x", 256).unwrap(), expected, "{v}");
        }
        let max = "0x".to_string() + &"ff".repeat(32);
        assert_eq!(
            parse_uint(&json!(max), "x", 256).unwrap().to_be_bytes(),
            [0xff; 32]
        );
        assert_eq!(
            parse_uint(&json!("115792089237316195423570985008687907853269984665640564039457584007913129639935"), "x", 256).unwrap().to_be_bytes(),
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
        assert_eq!(parse_uint(&json!(255), "x", 8).unwrap(), U256::from(255));
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
        // ruint's own parser would skip the underscores.
        assert!(err_text(parse_uint(&json!("1_000"), "x", 256)).contains("not a decimal integer"));
        assert!(err_text(parse_uint(&json!("0x1_0"), "x", 256)).contains("not a 0x-hex integer"));
    }

    #[test]
    fn signed_integers_use_twos_complement_and_check_range() {
        let word = |v: Value, bits| parse_int(&v, "x", bits).unwrap().to_be_bytes::<32>();
        assert_eq!(word(json!(-1), 256), [0xff; 32]);
        assert_eq!(word(json!("-1"), 8), [0xff; 32]);
        let mut minus_five = [0xff; 32];
        minus_five[31] = 0xfb;
        assert_eq!(word(json!(-5), 16), minus_five);
        let mut minus_128 = [0xff; 32];
        minus_128[31] = 0x80;
        assert_eq!(word(json!(-128), 8), minus_128);
        assert_eq!(
            parse_int(&json!(127), "x", 8).unwrap(),
            I256::try_from(127).unwrap()
        );
        assert!(err_text(parse_int(&json!(128), "x", 8)).contains("out of range for int8"));
        assert!(err_text(parse_int(&json!(-129), "x", 8)).contains("out of range for int8"));
        // int256 extremes
        let min = format!("-0x8{}", "0".repeat(63));
        let mut min_word = [0u8; 32];
        min_word[0] = 0x80;
        assert_eq!(word(json!(min), 256), min_word);
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
}
