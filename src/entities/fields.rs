//! How an entity reads its fields, whatever the record came in as. [`Fields`] is one record's
//! fields by name — the fields a provider's mapping produced, a CSV row, a JSON line — and the
//! value readers here ([`address`], [`uint256`], [`whole`], …) are the rules every path
//! applies, so the same value is read the same way whichever way it arrived.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json};

use crate::timestamps::parse_timestamp;
use crate::uint256::{U256, parse_decimal};

/// An Ethereum address: 20 bytes.
pub type Address = [u8; 20];
/// A transaction hash: 32 bytes.
pub type TxHash = [u8; 32];

/// One field of an entity kind: a column a provider maps and an import file carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    /// A record without it is rejected.
    pub required: bool,
    /// Its place in the entity's `FIELDS`, so a reader that resolved the columns once (a CSV
    /// file's header) finds it without a name lookup.
    pub index: usize,
    /// What it holds, for the provider reference.
    pub about: &'static str,
}

impl Field {
    pub const fn required(name: &'static str, index: usize, about: &'static str) -> Field {
        Field {
            name,
            required: true,
            index,
            about,
        }
    }

    pub const fn optional(name: &'static str, index: usize, about: &'static str) -> Field {
        Field {
            name,
            required: false,
            index,
            about,
        }
    }
}

/// A field's value as its source holds it: text, or a JSON number's exact digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scalar<'a> {
    Text(Cow<'a, str>),
    Number(Cow<'a, str>),
}

impl Scalar<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            Scalar::Text(text) | Scalar::Number(text) => text,
        }
    }
}

/// One record's fields, by name.
pub trait Fields {
    /// The field's value; `None` when it is absent, null or blank. An error names the field
    /// (a list or an object where one value belongs, text that is not UTF-8, …).
    fn scalar(&self, field: &Field) -> Result<Option<Scalar<'_>>, String>;

    /// Every value of a field that may hold one value or a list, blanks left out.
    fn list(&self, field: &Field) -> Result<Vec<Scalar<'_>>, String> {
        Ok(self.scalar(field)?.into_iter().collect())
    }

    /// Every field, as a JSON object (a generic record keeps them all).
    fn object(&self) -> Result<Map<String, Json>, String>;

    /// A required field read by `read`; errors are prefixed with the field's name.
    fn required<'s, T>(
        &'s self,
        field: &Field,
        read: impl FnOnce(Scalar<'s>) -> Result<T, String>,
    ) -> Result<T, String>
    where
        Self: Sized,
    {
        match self.scalar(field)? {
            Some(value) => read(value).map_err(|error| format!("{}: {error}", field.name)),
            None => Err(format!("{}: missing", field.name)),
        }
    }

    /// An optional field read by `read`; absent, null and blank are `None`.
    fn optional<'s, T>(
        &'s self,
        field: &Field,
        read: impl FnOnce(Scalar<'s>) -> Result<T, String>,
    ) -> Result<Option<T>, String>
    where
        Self: Sized,
    {
        self.scalar(field)?
            .map(|value| read(value).map_err(|error| format!("{}: {error}", field.name)))
            .transpose()
    }
}

/// A provider's mapped fields: a JSON object of field name → value.
impl Fields for Map<String, Json> {
    fn scalar(&self, field: &Field) -> Result<Option<Scalar<'_>>, String> {
        match self.get(field.name) {
            None => Ok(None),
            Some(value) => json_scalar(field.name, value),
        }
    }

    fn list(&self, field: &Field) -> Result<Vec<Scalar<'_>>, String> {
        match self.get(field.name) {
            Some(Json::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.extend(json_scalar(field.name, item)?);
                }
                Ok(out)
            }
            _ => self.scalar(field).map(|one| one.into_iter().collect()),
        }
    }

    fn object(&self) -> Result<Map<String, Json>, String> {
        Ok(self.clone())
    }
}

fn json_scalar<'a>(name: &str, value: &'a Json) -> Result<Option<Scalar<'a>>, String> {
    match value {
        Json::Null => Ok(None),
        Json::String(text) if text.trim().is_empty() => Ok(None),
        Json::String(text) => Ok(Some(Scalar::Text(Cow::Borrowed(text)))),
        Json::Number(number) => Ok(Some(Scalar::Number(Cow::Owned(number.to_string())))),
        Json::Array(_) => Err(format!("{name}: expected text or a number, got an array")),
        Json::Object(_) => Err(format!("{name}: expected text or a number, got an object")),
        Json::Bool(b) => Err(format!("{name}: expected text or a number, got {b}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Value readers: the rules for each kind of value. Errors say what is wrong without the field's
// name, which `required` and `optional` add.

/// Text, trimmed; a number is refused (an address or a name given as a number is a mistake).
pub fn string(value: Scalar<'_>) -> Result<Cow<'_, str>, String> {
    match value {
        Scalar::Text(Cow::Borrowed(text)) => Ok(Cow::Borrowed(text.trim())),
        Scalar::Text(Cow::Owned(text)) => Ok(Cow::Owned(text.trim().to_string())),
        Scalar::Number(number) => Err(format!("expected a string, got {number}")),
    }
}

/// Names and symbols: a string, trimmed.
pub fn name(value: Scalar<'_>) -> Result<String, String> {
    string(value).map(Cow::into_owned)
}

/// A `0x`-prefixed hex string of exactly `N` bytes, in any case.
pub fn fixed_hex<const N: usize>(value: Scalar<'_>) -> Result<[u8; N], String> {
    let text = string(value)?;
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .ok_or_else(|| format!("expected 0x-prefixed hex, got {text:?}"))?;
    if digits.len() != N * 2 {
        return Err(format!(
            "expected {N} bytes ({} hex digits), got {} digits in {text:?}",
            N * 2,
            digits.len()
        ));
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(digits, &mut out).map_err(|e| format!("bad hex in {text:?} ({e})"))?;
    Ok(out)
}

pub fn address(value: Scalar<'_>) -> Result<Address, String> {
    fixed_hex::<20>(value)
}

pub fn tx_hash(value: Scalar<'_>) -> Result<TxHash, String> {
    fixed_hex::<32>(value)
}

/// A whole number from 0 to 2^256-1, exactly: decimal digits, as text or a JSON number.
pub fn uint256(value: Scalar<'_>) -> Result<U256, String> {
    parse_decimal(value.as_str())
}

/// A whole number from 0 to `max` (block numbers, log indexes, decimals).
pub fn whole(max: i64) -> impl Fn(Scalar<'_>) -> Result<i64, String> {
    move |value| {
        let text = value.as_str();
        match text.trim().parse::<i64>() {
            Ok(number) if (0..=max).contains(&number) => Ok(number),
            _ => Err(format!(
                "expected a whole number from 0 to {max}, got {text:?}"
            )),
        }
    }
}

/// A whole number from 0 to `i32::MAX` at most.
pub fn whole_i32(max: i32) -> impl Fn(Scalar<'_>) -> Result<i32, String> {
    let read = whole(i64::from(max));
    move |value| {
        let number = read(value)?;
        i32::try_from(number).map_err(|_| format!("{number} is out of range"))
    }
}

/// RFC 3339, epoch seconds or milliseconds, or any other form [`parse_timestamp`] reads.
pub fn timestamp(value: Scalar<'_>) -> Result<DateTime<Utc>, String> {
    parse_timestamp(value.as_str())
}

/// Any text or number, as it is (a product's SKU).
pub fn text(value: Scalar<'_>) -> Result<Cow<'_, str>, String> {
    Ok(match value {
        Scalar::Text(text) | Scalar::Number(text) => text,
    })
}

/// Test fields from a JSON object literal, as a provider's mapping produces them.
#[cfg(test)]
pub fn mapped(value: Json) -> Map<String, Json> {
    match value {
        Json::Object(map) => map,
        other => panic!("test fields must be an object, got {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ADDRESS: Field = Field::required("address", 0, "");

    #[test]
    fn addresses_in_any_case_and_errors_that_say_where() {
        let a = mapped(json!({"address": "0xC02AAA39b223FE8D0A0e5C4F27eAD9083C756Cc2"}))
            .required(&ADDRESS, address)
            .expect("valid");
        assert_eq!(hex::encode(a), "c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2");
        let error = |value: Json| {
            mapped(json!({ "address": value }))
                .required(&ADDRESS, address)
                .expect_err("refused")
        };
        assert_eq!(
            error(json!("0x1234")),
            "address: expected 20 bytes (40 hex digits), got 4 digits in \"0x1234\""
        );
        assert_eq!(
            error(json!("abc")),
            "address: expected 0x-prefixed hex, got \"abc\""
        );
        assert!(error(json!(format!("0x{}", "zz".repeat(20)))).starts_with("address: bad hex"));
        assert_eq!(error(json!(7)), "address: expected a string, got 7");
        assert_eq!(error(json!(" ")), "address: missing");
        assert_eq!(
            error(json!(["0x1"])),
            "address: expected text or a number, got an array"
        );
    }

    #[test]
    fn numbers_keep_their_digits_and_refuse_fractions() {
        let read = |value: Json| uint256(json_scalar("v", &value).expect("scalar").expect("value"));
        assert_eq!(read(json!(u64::MAX)), Ok(U256::from(u64::MAX)));
        assert_eq!(
            read(json!("150188698577042438264952193024")).map(|v| v.to_string()),
            Ok("150188698577042438264952193024".to_string())
        );
        assert_eq!(
            read(json!(1.5)),
            Err("\"1.5\" is not a whole decimal number".to_string())
        );
        assert_eq!(read(json!("-1")), Err("negative number -1".to_string()));
        let count = |value: Json| whole(255)(json_scalar("v", &value).expect("s").expect("v"));
        assert_eq!(count(json!("18")), Ok(18));
        assert_eq!(
            count(json!(300)),
            Err("expected a whole number from 0 to 255, got \"300\"".to_string())
        );
    }
}
