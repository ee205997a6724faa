//! The value transforms of a provider's field mappings, one pure function each.
//!
//! Each function takes one value — never an array (the mapper applies transforms element-wise)
//! and never null (absent values pass every transform untouched) — and returns the new value, or
//! an error saying what is wrong with the value. The mapper prefixes the field's name.

use std::borrow::Cow;
use std::net::IpAddr;

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

use crate::timestamps::{parse_timestamp, parse_with_format};
use crate::uint256::parse_decimal;

/// An epoch number larger than this (in magnitude) is milliseconds: as seconds it would be
/// past the year 33,000.
const MILLIS_ABOVE: u64 = 1_000_000_000_000;

/// How much of a value an error message quotes; free-text fields can be long.
const SHOWN_CHARS: usize = 60;

/// `value` as JSON text for an error message, cut short when long.
pub fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= SHOWN_CHARS {
        text
    } else {
        let cut: String = text.chars().take(SHOWN_CHARS).collect();
        format!("{cut}…")
    }
}

/// Surrounding whitespace removed.
pub fn trim(value: &Value) -> Result<Value, String> {
    match value {
        Value::String(text) => Ok(Value::String(text.trim().to_string())),
        other => Err(format!("trim needs text, got {}", shown(other))),
    }
}

/// Lower case (Unicode-aware).
pub fn lowercase(value: &Value) -> Result<Value, String> {
    match value {
        Value::String(text) => Ok(Value::String(text.to_lowercase())),
        other => Err(format!("lowercase needs text, got {}", shown(other))),
    }
}

/// A 64-bit integer: a JSON integer as it is, a `0x` hex quantity (`"0x76250"`, as JSON-RPC
/// writes block numbers), the first integer in a text ("about 42 years" → 42), or Mongo's
/// `{"$numberLong": "123"}`. A text without one gives `default`, or an error when there is no
/// default.
pub fn int(value: &Value, default: Option<i64>) -> Result<Value, String> {
    let number = match value {
        Value::Number(number) => whole_number(number)?,
        Value::String(text) if let Some(hex) = crate::uint256::parse_hex(text) => {
            let hex = hex?;
            i64::try_from(hex)
                .map_err(|_| format!("{} is out of range for a 64-bit integer", shown(value)))?
        }
        Value::String(text) => match first_integer(text)? {
            Some(number) => number,
            None => {
                return default
                    .map(Value::from)
                    .ok_or_else(|| format!("{} has no integer", shown(value)));
            }
        },
        Value::Object(object) => match mongo_number(object) {
            Some(Value::String(text)) => text
                .trim()
                .parse::<i64>()
                .map_err(|_| format!("{} is not a 64-bit integer", shown(value)))?,
            Some(Value::Number(number)) => whole_number(number)?,
            _ => return Err(format!("int needs a number or text, got {}", shown(value))),
        },
        other => return Err(format!("int needs a number or text, got {}", shown(other))),
    };
    Ok(Value::from(number))
}

/// The first run of ASCII digits in `text`, negative when a `-` stands right before it and is
/// not itself part of a word ("-3 °C" is -3; "ID-42" and "30-40" give 42 and 30).
fn first_integer(text: &str) -> Result<Option<i64>, String> {
    let bytes = text.as_bytes();
    let Some(start) = bytes.iter().position(u8::is_ascii_digit) else {
        return Ok(None);
    };
    let end = bytes[start..]
        .iter()
        .position(|byte| !byte.is_ascii_digit())
        .map_or(bytes.len(), |length| start + length);
    let negative = start > 0
        && bytes[start - 1] == b'-'
        && (start == 1 || !bytes[start - 2].is_ascii_alphanumeric());
    // Both ends sit next to ASCII bytes, so they are character boundaries.
    let digits = &text[start..end];
    let parsed = if negative {
        format!("-{digits}").parse::<i64>()
    } else {
        digits.parse::<i64>()
    };
    parsed
        .map(Some)
        .map_err(|_| format!("{digits} is out of range for a 64-bit integer"))
}

/// A JSON number that is a whole 64-bit integer.
fn whole_number(number: &Number) -> Result<i64, String> {
    if let Some(whole) = number.as_i64() {
        Ok(whole)
    } else if number.is_u64() {
        Err(format!("{number} is out of range for a 64-bit integer"))
    } else {
        Err(format!("{number} is not a whole number"))
    }
}

/// The inside of a Mongo extended-JSON number wrapper, `{"$numberLong": …}` or `{"$numberInt": …}`.
fn mongo_number(object: &Map<String, Value>) -> Option<&Value> {
    if object.len() != 1 {
        return None;
    }
    object
        .get("$numberLong")
        .or_else(|| object.get("$numberInt"))
}

/// An unsigned 256-bit integer as canonical decimal text. Accepts decimal text, a `0x` hex
/// quantity (a JSON-RPC amount, a 32-byte word), a JSON integer or `{"$numberLong": …}`. A JSON number with a fraction or beyond u64 has already lost digits
/// to floating point, so it is refused rather than stored wrong.
pub fn uint256(value: &Value) -> Result<Value, String> {
    let text = match value {
        Value::String(text) => text,
        Value::Number(number) => return uint256_number(number),
        Value::Object(object) => match mongo_number(object) {
            Some(Value::String(text)) => text,
            Some(Value::Number(number)) => return uint256_number(number),
            _ => return Err(format!("uint256 needs decimal text, got {}", shown(value))),
        },
        other => return Err(format!("uint256 needs decimal text, got {}", shown(other))),
    };
    match crate::uint256::parse_hex(text) {
        Some(hex) => hex,
        None => parse_decimal(text),
    }
    .map(|number| Value::String(number.to_string()))
}

fn uint256_number(number: &Number) -> Result<Value, String> {
    if let Some(unsigned) = number.as_u64() {
        Ok(Value::String(unsigned.to_string()))
    } else if let Some(signed) = number.as_i64() {
        Err(format!("negative number {signed}"))
    } else {
        Err(format!(
            "{number} is not exact; large values must be given as decimal text"
        ))
    }
}

/// `0x`-prefixed hex of whole bytes, in any case, as lower-case `0x…`.
pub fn hex(value: &Value) -> Result<Value, String> {
    let not_hex = || format!("{} is not 0x-prefixed hex", shown(value));
    let Value::String(text) = value else {
        return Err(not_hex());
    };
    let text = text.trim();
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .filter(|digits| digits.bytes().all(|byte| byte.is_ascii_hexdigit()))
        .ok_or_else(not_hex)?;
    if digits.len() % 2 != 0 {
        return Err(format!("{} has an odd number of hex digits", shown(value)));
    }
    Ok(Value::String(format!("0x{}", digits.to_ascii_lowercase())))
}

/// An Ethereum address as lower-case `0x` and 40 hex digits: given as such, or as a 32-byte
/// word (a log topic) whose first 12 bytes are zero and whose last 20 are the address.
pub fn address(value: &Value) -> Result<Value, String> {
    let Value::String(hex) = self::hex(value)? else {
        return Err(format!("{} is not an address", shown(value)));
    };
    let digits = &hex[2..];
    match digits.len() {
        40 => Ok(Value::String(hex)),
        64 if digits[..24].bytes().all(|b| b == b'0') => {
            Ok(Value::String(format!("0x{}", &digits[24..])))
        }
        64 => Err(format!(
            "{} is a 32-byte word whose first 12 bytes are not zero, so not an address",
            shown(value)
        )),
        n => Err(format!(
            "{} has {} bytes; an address has 20 (or a 32-byte word holding one)",
            shown(value),
            n / 2
        )),
    }
}

/// A MAC address as lower-case colon pairs. Accepts `12-5e-2e-db-58-99`, `12:5E:2E:DB:58:99`,
/// `125e.2edb.5899` and `125E2EDB5899`.
pub fn mac(value: &Value) -> Result<Value, String> {
    let invalid = || format!("{} is not a MAC address", shown(value));
    let Value::String(text) = value else {
        return Err(invalid());
    };
    let digits = mac_digits(text.trim()).ok_or_else(invalid)?;
    let mut out = String::with_capacity(17);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && index % 2 == 0 {
            out.push(':');
        }
        out.push(digit);
    }
    Ok(Value::String(out))
}

/// The twelve hex digits of a MAC address in one of the accepted spellings, lower case.
fn mac_digits(text: &str) -> Option<String> {
    let all_hex = |group: &str| group.bytes().all(|byte| byte.is_ascii_hexdigit());
    let (separator, group_len) = match text.len() {
        17 => (text.chars().nth(2).filter(|c| matches!(c, ':' | '-'))?, 2),
        14 => ('.', 4),
        12 => return all_hex(text).then(|| text.to_ascii_lowercase()),
        _ => return None,
    };
    let groups: Vec<&str> = text.split(separator).collect();
    let well_formed = groups.len() == 12 / group_len
        && groups
            .iter()
            .all(|group| group.len() == group_len && all_hex(group));
    well_formed.then(|| groups.concat().to_ascii_lowercase())
}

/// An IPv4 or IPv6 address in its canonical text (`fe80:0:0:0:89a:…` → `fe80::89a:…`).
pub fn ip(value: &Value) -> Result<Value, String> {
    let invalid = || format!("{} is not an IP address", shown(value));
    let Value::String(text) = value else {
        return Err(invalid());
    };
    let address: IpAddr = text.trim().parse().map_err(|_| invalid())?;
    Ok(Value::String(address.to_string()))
}

/// An instant as RFC 3339 UTC text with `Z` (fractional seconds only when there are some).
///
/// Text is parsed with `format` when one is given, else as any form
/// [`parse_timestamp`] accepts, or as epoch digits. Numbers are epoch seconds, or milliseconds
/// above 10^12. Mongo's `{"$date": …}` holds text or milliseconds. `format` applies to text only.
pub fn timestamp(value: &Value, format: Option<&str>) -> Result<Value, String> {
    let instant = match value {
        Value::String(text) => match format {
            Some(format) => parse_with_format(text, format)?,
            None => text_instant(text)?,
        },
        Value::Number(number) => from_epoch(whole_number(number)?)?,
        Value::Object(object) => mongo_date(value, object)?,
        other => {
            return Err(format!(
                "timestamp needs text, a number or {{\"$date\": …}}, got {}",
                shown(other)
            ));
        }
    };
    Ok(Value::String(
        instant.to_rfc3339_opts(SecondsFormat::AutoSi, true),
    ))
}

fn text_instant(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()) {
        // Epoch digits get the same seconds-or-milliseconds rule as JSON numbers.
        let epoch: i64 = text
            .parse()
            .map_err(|_| format!("epoch {text} is out of range"))?;
        return from_epoch(epoch);
    }
    parse_timestamp(text)
}

fn from_epoch(epoch: i64) -> Result<DateTime<Utc>, String> {
    let instant = if epoch.unsigned_abs() > MILLIS_ABOVE {
        DateTime::from_timestamp_millis(epoch)
    } else {
        DateTime::from_timestamp(epoch, 0)
    };
    instant.ok_or_else(|| format!("epoch {epoch} is out of range"))
}

/// `{"$date": "2023-03-05T10:00:00.000Z"}`, `{"$date": 1677…}` or
/// `{"$date": {"$numberLong": "1677…"}}`. Mongo's numbers here are always milliseconds.
fn mongo_date(value: &Value, object: &Map<String, Value>) -> Result<DateTime<Utc>, String> {
    let unexpected = || {
        format!(
            "timestamp needs text, a number or {{\"$date\": …}}, got {}",
            shown(value)
        )
    };
    let inner = match object.get("$date") {
        Some(inner) if object.len() == 1 => inner,
        _ => return Err(unexpected()),
    };
    let millis = match inner {
        Value::String(text) => return parse_timestamp(text),
        Value::Number(number) => whole_number(number)?,
        Value::Object(wrapper) => match mongo_number(wrapper) {
            Some(Value::String(text)) => text.trim().parse::<i64>().map_err(|_| unexpected())?,
            Some(Value::Number(number)) => whole_number(number)?,
            _ => return Err(unexpected()),
        },
        _ => return Err(unexpected()),
    };
    DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| format!("epoch milliseconds {millis} are out of range"))
}

/// SHA-256 of the value's text (a number's or boolean's JSON text), as lower-case hex; keyed
/// (HMAC-SHA256) when `key` is given.
///
/// A key matters for personal data: names, emails and the like come from small, guessable sets,
/// so a plain hash is undone by hashing candidates until one matches. With a secret key the hash
/// still joins records about the same person but cannot be reversed without the key.
pub fn sha256(value: &Value, key: Option<&[u8]>) -> Result<Value, String> {
    let text: Cow<'_, str> = match value {
        Value::String(text) => Cow::Borrowed(text),
        Value::Number(number) => Cow::Owned(number.to_string()),
        Value::Bool(flag) => Cow::Owned(flag.to_string()),
        Value::Object(_) => return Err("sha256 needs text or a number, got an object".into()),
        Value::Array(_) => return Err("sha256 needs text or a number, got an array".into()),
        Value::Null => return Err("sha256 needs text or a number, got null".into()),
    };
    let digest = match key {
        Some(key) => {
            let mut mac = Hmac::<Sha256>::new_from_slice(key)
                .map_err(|error| format!("sha256 key: {error}"))?;
            mac.update(text.as_bytes());
            ::hex::encode(mac.finalize().into_bytes())
        }
        None => ::hex::encode(Sha256::digest(text.as_bytes())),
    };
    Ok(Value::String(digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error(result: Result<Value, String>) -> String {
        result.expect_err("should fail")
    }

    #[test]
    fn trim_and_lowercase_need_text() {
        assert_eq!(trim(&json!("  a b \n")), Ok(json!("a b")));
        assert_eq!(
            lowercase(&json!("EC2AMAZ-E8FAE79")),
            Ok(json!("ec2amaz-e8fae79"))
        );
        assert_eq!(error(lowercase(&json!(42))), "lowercase needs text, got 42");
        assert_eq!(
            error(trim(&json!({"a": 1}))),
            "trim needs text, got {\"a\":1}"
        );
    }

    #[test]
    fn int_finds_the_first_integer() {
        assert_eq!(int(&json!(42), None), Ok(json!(42)));
        assert_eq!(int(&json!("42 years"), None), Ok(json!(42)));
        assert_eq!(int(&json!("about 37"), None), Ok(json!(37)));
        assert_eq!(int(&json!("between 30-40"), None), Ok(json!(30)));
        assert_eq!(int(&json!("-3 degrees"), None), Ok(json!(-3)));
        assert_eq!(int(&json!("room ID-42"), None), Ok(json!(42)));
        assert_eq!(
            int(&json!({"$numberLong": "3584946176"}), None),
            Ok(json!(3584946176_i64))
        );
        assert_eq!(int(&json!({"$numberInt": "7"}), None), Ok(json!(7)));
        assert_eq!(int(&json!("N/A"), Some(0)), Ok(json!(0)));
        assert_eq!(error(int(&json!("N/A"), None)), "\"N/A\" has no integer");
        assert_eq!(error(int(&json!(4.5), None)), "4.5 is not a whole number");
        assert_eq!(
            error(int(&json!(u64::MAX), None)),
            "18446744073709551615 is out of range for a 64-bit integer"
        );
        assert_eq!(
            error(int(&json!("age 99999999999999999999"), None)),
            "99999999999999999999 is out of range for a 64-bit integer"
        );
        assert_eq!(
            error(int(&json!(true), None)),
            "int needs a number or text, got true"
        );
        assert_eq!(
            error(int(&json!({"$numberLong": "12x"}), None)),
            "{\"$numberLong\":\"12x\"} is not a 64-bit integer"
        );
    }

    #[test]
    fn uint256_is_exact() {
        let big = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        assert_eq!(uint256(&json!(big)), Ok(json!(big)));
        assert_eq!(uint256(&json!("007")), Ok(json!("7")));
        assert_eq!(uint256(&json!(u64::MAX)), Ok(json!("18446744073709551615")));
        assert_eq!(uint256(&json!({"$numberLong": "12"})), Ok(json!("12")));
        assert_eq!(error(uint256(&json!(-5))), "negative number -5");
        assert_eq!(
            error(uint256(&json!(1e29))),
            "1e+29 is not exact; large values must be given as decimal text"
        );
        assert_eq!(
            error(uint256(&json!("12 tokens"))),
            "\"12 tokens\" is not a whole decimal number"
        );
        assert_eq!(
            error(uint256(&json!(format!("{big}0")))),
            format!("{big}0 exceeds 2^256-1")
        );
        assert_eq!(
            error(uint256(&json!([1]))),
            "uint256 needs decimal text, got [1]"
        );
    }

    #[test]
    fn hex_is_lower_case_whole_bytes() {
        assert_eq!(hex(&json!("0xDeadBEEF")), Ok(json!("0xdeadbeef")));
        assert_eq!(hex(&json!("0X00")), Ok(json!("0x00")));
        assert_eq!(hex(&json!("0x")), Ok(json!("0x")));
        assert_eq!(
            error(hex(&json!("deadbeef"))),
            "\"deadbeef\" is not 0x-prefixed hex"
        );
        assert_eq!(
            error(hex(&json!("0xzz"))),
            "\"0xzz\" is not 0x-prefixed hex"
        );
        assert_eq!(
            error(hex(&json!("0xabc"))),
            "\"0xabc\" has an odd number of hex digits"
        );
        assert_eq!(error(hex(&json!(12))), "12 is not 0x-prefixed hex");
    }

    #[test]
    fn mac_in_every_spelling() {
        for spelling in [
            "12-5e-2e-db-58-99",
            "12:5E:2E:DB:58:99",
            "125e.2edb.5899",
            "125E2EDB5899",
            " 12:5e:2e:db:58:99 ",
        ] {
            assert_eq!(
                mac(&json!(spelling)),
                Ok(json!("12:5e:2e:db:58:99")),
                "{spelling}"
            );
        }
        for bad in [
            "zz",
            "12:5e:2e:db:58",
            "12:5e-2e:db:58:99",
            "12.5e.2e.db.58.99",
            "125e:2edb:5899",
            "12:5e:2e:db:58:9g",
            "125e2edb589",
            "1:25e:2e:db:58:99",
        ] {
            assert_eq!(
                error(mac(&json!(bad))),
                format!("\"{bad}\" is not a MAC address")
            );
        }
        assert_eq!(error(mac(&json!(5))), "5 is not a MAC address");
    }

    #[test]
    fn ip_is_canonical() {
        assert_eq!(ip(&json!("172.31.19.223")), Ok(json!("172.31.19.223")));
        assert_eq!(
            ip(&json!("fe80:0:0:0:89a:eff:feba:3fd9")),
            Ok(json!("fe80::89a:eff:feba:3fd9"))
        );
        assert_eq!(ip(&json!("2001:DB8::1")), Ok(json!("2001:db8::1")));
        assert_eq!(
            error(ip(&json!("172.31.19"))),
            "\"172.31.19\" is not an IP address"
        );
        assert_eq!(error(ip(&json!(17))), "17 is not an IP address");
    }

    #[test]
    fn timestamps_in_every_form() {
        let expected = json!("2023-05-02T12:19:59Z");
        assert_eq!(timestamp(&json!(1683029999), None), Ok(expected.clone()));
        assert_eq!(
            timestamp(&json!(1683029999000_i64), None),
            Ok(expected.clone())
        );
        assert_eq!(timestamp(&json!("1683029999"), None), Ok(expected.clone()));
        assert_eq!(
            timestamp(&json!("1683029999000"), None),
            Ok(expected.clone())
        );
        assert_eq!(
            timestamp(&json!("2023-05-02T14:19:59+02:00"), None),
            Ok(expected.clone())
        );
        assert_eq!(
            timestamp(&json!("2023-05-02 12:19:59 UTC"), None),
            Ok(expected.clone())
        );
        assert_eq!(
            timestamp(&json!("5/2/2023 12:19:59"), None),
            Ok(expected.clone())
        );
        assert_eq!(
            timestamp(&json!("02.05.2023 12:19:59"), Some("%d.%m.%Y %H:%M:%S")),
            Ok(expected.clone())
        );
        assert_eq!(
            timestamp(&json!(1683029999250_i64), None),
            Ok(json!("2023-05-02T12:19:59.250Z"))
        );
        // Mongo extended JSON: text, or milliseconds however small.
        assert_eq!(
            timestamp(&json!({"$date": "2023-03-05T10:00:00.000Z"}), None),
            Ok(json!("2023-03-05T10:00:00Z"))
        );
        assert_eq!(
            timestamp(&json!({"$date": {"$numberLong": "1683029999000"}}), None),
            Ok(expected.clone())
        );
        assert_eq!(
            timestamp(&json!({"$date": 86400000}), None),
            Ok(json!("1970-01-02T00:00:00Z"))
        );
    }

    #[test]
    fn timestamp_errors_say_what_is_wrong() {
        assert!(
            error(timestamp(&json!("yesterday"), None))
                .starts_with("timestamp \"yesterday\" is not one of: epoch seconds")
        );
        assert!(
            error(timestamp(&json!("2023-05-02"), Some("%d.%m.%Y")))
                .starts_with("timestamp \"2023-05-02\" does not match the format \"%d.%m.%Y\"")
        );
        assert_eq!(
            error(timestamp(&json!(i64::MAX), None)),
            "epoch 9223372036854775807 is out of range"
        );
        assert_eq!(
            error(timestamp(&json!(1.5), None)),
            "1.5 is not a whole number"
        );
        assert_eq!(
            error(timestamp(&json!({"date": 1}), None)),
            "timestamp needs text, a number or {\"$date\": …}, got {\"date\":1}"
        );
        assert_eq!(
            error(timestamp(&json!({"$date": {"$numberLong": "soon"}}), None)),
            "timestamp needs text, a number or {\"$date\": …}, got {\"$date\":{\"$numberLong\":\"soon\"}}"
        );
    }

    #[test]
    fn sha256_plain_and_keyed() {
        // Known answers: SHA-256("abc") and RFC 4231 test case 2.
        assert_eq!(
            sha256(&json!("abc"), None),
            Ok(json!(
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            ))
        );
        assert_eq!(
            sha256(&json!("what do ya want for nothing?"), Some(b"Jefe")),
            Ok(json!(
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
            ))
        );
        assert_eq!(sha256(&json!(42), None), sha256(&json!("42"), None));
        assert_ne!(
            sha256(&json!("abc"), Some(b"k1")),
            sha256(&json!("abc"), Some(b"k2"))
        );
        assert_eq!(
            error(sha256(&json!({"name": "x"}), None)),
            "sha256 needs text or a number, got an object"
        );
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "x".repeat(200);
        let message = error(mac(&json!(long)));
        assert!(message.ends_with("… is not a MAC address"), "{message}");
        assert!(message.chars().count() < 90, "{message}");
    }
}
