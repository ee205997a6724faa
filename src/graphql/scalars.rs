//! The API's own scalars: `BigInt` (exact decimal of any size), `Bytes` (`0x` hex), `DateTime`
//! (RFC 3339, UTC). `JSON` is the GraphQL library's own `Json` scalar.

use std::fmt;

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{SecondsFormat, Utc};

/// An integer of any size, exact, as a decimal string: `"115792089237316195423570985008687907853269984665640564039457584007913129639935"`.
/// Input may also be a JSON integer that fits in 64 bits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BigInt(String);

impl BigInt {
    /// Parses a decimal integer (optional `-`, digits only) into its canonical form.
    pub fn parse_decimal(text: &str) -> Result<Self, String> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "expected a decimal integer string such as \"1000000000000000000\", got {text:?}"
            ));
        }
        let trimmed = digits.trim_start_matches('0');
        let canonical = match (trimmed.is_empty(), negative) {
            (true, _) => "0".to_string(),
            (false, true) => format!("-{trimmed}"),
            (false, false) => trimmed.to_string(),
        };
        Ok(BigInt(canonical))
    }

    /// From a uint256 column as the store reads it (PostgreSQL `numeric` text, or SQLite's
    /// zero-padded digits); the store validated the digits on the way in.
    pub fn from_stored(stored: &str) -> Self {
        BigInt(crate::uint256::canonical(stored))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BigInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[Scalar(name = "BigInt")]
impl ScalarType for BigInt {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => BigInt::parse_decimal(s).map_err(InputValueError::custom),
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(BigInt(n.to_string())),
            _ => Err(InputValueError::custom(format!(
                "expected a decimal integer string such as \"1000000000000000000\", got {value}"
            ))),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// Bytes as `0x`-prefixed hex: lowercase out, any case in. Addresses and hashes use it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    pub fn parse_hex(text: &str) -> Result<Self, String> {
        let digits = text
            .strip_prefix("0x")
            .or_else(|| text.strip_prefix("0X"))
            .ok_or_else(|| {
                format!("expected 0x-prefixed hex such as \"0xdac17f95\", got {text:?}")
            })?;
        hex::decode(digits).map(Bytes).map_err(|e| {
            format!("expected 0x-prefixed hex with an even number of digits, got {text:?} ({e})")
        })
    }
}

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode_prefixed(&self.0))
    }
}

#[Scalar(name = "Bytes")]
impl ScalarType for Bytes {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => Bytes::parse_hex(s).map_err(InputValueError::custom),
            _ => Err(InputValueError::custom(format!(
                "expected 0x-prefixed hex string, got {value}"
            ))),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.to_string())
    }
}

/// A point in time: RFC 3339 in (any offset), RFC 3339 in UTC out (`2023-05-01T00:00:00Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime(pub chrono::DateTime<Utc>);

impl DateTime {
    pub fn parse_rfc3339(text: &str) -> Result<Self, String> {
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| DateTime(t.with_timezone(&Utc)))
            .map_err(|e| {
                format!("expected an RFC 3339 date-time such as \"2023-05-01T00:00:00Z\", got {text:?} ({e})")
            })
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

impl From<chrono::DateTime<Utc>> for DateTime {
    fn from(value: chrono::DateTime<Utc>) -> Self {
        DateTime(value)
    }
}

#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => DateTime::parse_rfc3339(s).map_err(InputValueError::custom),
            _ => Err(InputValueError::custom(format!(
                "expected an RFC 3339 date-time string such as \"2023-05-01T00:00:00Z\", got {value}"
            ))),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U256_MAX: &str =
        "115792089237316195423570985008687907853269984665640564039457584007913129639935";

    fn message<T: std::fmt::Debug + async_graphql::InputType>(r: InputValueResult<T>) -> String {
        r.expect_err("should be rejected")
            .into_server_error(Default::default())
            .message
    }

    #[test]
    fn bigint_is_exact_at_any_size() {
        let v = <BigInt as ScalarType>::parse(Value::String(U256_MAX.into())).expect("valid");
        assert_eq!(v.to_value(), Value::String(U256_MAX.into()));
        let padded = <BigInt as ScalarType>::parse(Value::String("000120".into())).expect("valid");
        assert_eq!(padded.as_str(), "120");
        assert_eq!(BigInt::parse_decimal("-0").expect("valid").as_str(), "0");
        let n = <BigInt as ScalarType>::parse(Value::from(u64::MAX)).expect("valid");
        assert_eq!(n.as_str(), "18446744073709551615");
    }

    #[test]
    fn bigint_rejects_what_is_not_an_integer() {
        for bad in ["", "1e18", "12.5", "0x10", " 1", "-"] {
            let m = message(<BigInt as ScalarType>::parse(Value::String(bad.into())));
            assert!(
                m.contains("expected a decimal integer string"),
                "{bad}: {m}"
            );
            assert!(m.contains("\"BigInt\""), "{m}");
        }
        let m = message(<BigInt as ScalarType>::parse(Value::from(1.5)));
        assert!(m.contains("got 1.5"), "{m}");
    }

    #[test]
    fn bytes_take_any_case_and_give_lowercase() {
        let v = <Bytes as ScalarType>::parse(Value::String("0xDAC17F958D2ee523".into()))
            .expect("valid");
        assert_eq!(v.0, vec![0xda, 0xc1, 0x7f, 0x95, 0x8d, 0x2e, 0xe5, 0x23]);
        assert_eq!(v.to_value(), Value::String("0xdac17f958d2ee523".into()));
        assert_eq!(
            Bytes::parse_hex("0x").expect("empty is valid").0,
            Vec::<u8>::new()
        );
    }

    #[test]
    fn bytes_name_the_expected_form() {
        let m = message(<Bytes as ScalarType>::parse(Value::String("dac1".into())));
        assert!(m.contains("expected 0x-prefixed hex"), "{m}");
        let m = message(<Bytes as ScalarType>::parse(Value::String("0xabc".into())));
        assert!(m.contains("even number of digits"), "{m}");
        let m = message(<Bytes as ScalarType>::parse(Value::String("0xzz".into())));
        assert!(m.contains("0xzz"), "{m}");
    }

    #[test]
    fn datetime_is_utc_out() {
        let v = <DateTime as ScalarType>::parse(Value::String("2023-05-01T02:30:00+02:30".into()))
            .expect("valid");
        assert_eq!(v.to_value(), Value::String("2023-05-01T00:00:00Z".into()));
        let frac = DateTime::parse_rfc3339("2023-05-01T00:00:00.250Z").expect("valid");
        assert_eq!(frac.to_string(), "2023-05-01T00:00:00.250Z");
    }

    #[test]
    fn datetime_names_the_expected_form() {
        let m = message(<DateTime as ScalarType>::parse(Value::String(
            "12/9/2016 18:35:23".into(),
        )));
        assert!(m.contains("expected an RFC 3339 date-time"), "{m}");
        let m = message(<DateTime as ScalarType>::parse(Value::from(1683000000)));
        assert!(m.contains("RFC 3339"), "{m}");
    }
}
