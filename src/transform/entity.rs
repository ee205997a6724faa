//! Entity adapters: a `token`, `transfer` or `product` provider's mapped fields into typed
//! records.
//!
//! Field names are the entity's column names. Each value may be text or a JSON number (the mapper
//! gives `uint256` values as decimal text, timestamps as RFC 3339); null or absent means unknown.
//! Parsing follows the file importer's rules, so the same value is read the same way whichever
//! way it arrived.

use chrono::{DateTime, Utc};
use serde_json::{Map, Number, Value};

use crate::ethereum::{Address, TokenRecord, TransferRecord, TxHash, parse_address, parse_tx_hash};
use crate::store::products::ProductRecord;
use crate::timestamps::parse_timestamp;
use crate::transform::transforms::shown;
use crate::uint256::{U256, parse_decimal};

/// The fields a `transfer` provider maps; `block_timestamp` is optional, the rest required.
pub const TRANSFER_FIELDS: &[&str] = &[
    "token_address",
    "from_address",
    "to_address",
    "value",
    "transaction_hash",
    "log_index",
    "block_number",
    "block_timestamp",
];

/// The fields a `token` provider maps; only `address` is required.
pub const TOKEN_FIELDS: &[&str] = &[
    "address",
    "symbol",
    "name",
    "decimals",
    "total_supply",
    "block_number",
    "block_timestamp",
];

/// The fields a `product` provider maps; only `sku` is required.
pub const PRODUCT_FIELDS: &[&str] = &["sku", "name", "description"];

/// A `product` provider's mapped fields as a [`ProductRecord`], by the file importer's rules
/// (SKU and name trimmed, blank means none; a description keeps its line breaks). Errors name
/// the field.
pub fn to_product(fields: &Map<String, Value>) -> Result<ProductRecord, String> {
    let raw = |name: &str| -> Result<Option<String>, String> {
        match fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(Value::Number(number)) => exact_number(name, number).map(Some),
            Some(other) => Err(format!("{name}: expected text, got {}", shown(other))),
        }
    };
    let sku = raw("sku")?.unwrap_or_default();
    ProductRecord::new(
        &sku,
        raw("name")?.as_deref(),
        raw("description")?.as_deref(),
    )
}

/// A `transfer` provider's mapped fields as a [`TransferRecord`]. Errors name the field.
pub fn to_transfer(fields: &Map<String, Value>) -> Result<TransferRecord, String> {
    Ok(TransferRecord {
        token_address: address(fields, "token_address")?,
        from_address: address(fields, "from_address")?,
        to_address: address(fields, "to_address")?,
        value: required(fields, "value", uint)?,
        transaction_hash: required(fields, "transaction_hash", tx_hash)?,
        log_index: required(fields, "log_index", log_index)?,
        block_number: required(fields, "block_number", block_number)?,
        block_timestamp: optional(fields, "block_timestamp", timestamp)?,
    })
}

/// A `token` provider's mapped fields as a [`TokenRecord`]. Errors name the field.
pub fn to_token(fields: &Map<String, Value>) -> Result<TokenRecord, String> {
    Ok(TokenRecord {
        address: address(fields, "address")?,
        symbol: optional(fields, "symbol", |_, text| Ok(text.to_string()))?,
        name: optional(fields, "name", |_, text| Ok(text.to_string()))?,
        decimals: optional(fields, "decimals", decimals)?,
        total_supply: optional(fields, "total_supply", uint)?,
        block_number: optional(fields, "block_number", block_number)?,
        block_timestamp: optional(fields, "block_timestamp", timestamp)?,
    })
}

/// The field's value as trimmed text; `None` when absent, null or blank (BigQuery leaves many
/// token fields empty).
fn text(fields: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    let text = match fields.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => text.trim().to_string(),
        Some(Value::Number(number)) => exact_number(name, number)?,
        Some(other) => {
            return Err(format!(
                "{name}: expected text or a number, got {}",
                shown(other)
            ));
        }
    };
    Ok((!text.is_empty()).then_some(text))
}

/// A JSON number's text, refusing floats: a value that went through `f64` may have lost digits,
/// and none of these columns hold fractions.
fn exact_number(name: &str, number: &Number) -> Result<String, String> {
    if number.is_f64() {
        return Err(format!(
            "{name}: {number} is not exact; give large values as decimal text"
        ));
    }
    Ok(number.to_string())
}

fn required<T>(
    fields: &Map<String, Value>,
    name: &str,
    parse: impl Fn(&str, &str) -> Result<T, String>,
) -> Result<T, String> {
    match text(fields, name)? {
        Some(text) => parse(name, &text),
        None => Err(format!("{name}: missing")),
    }
}

fn optional<T>(
    fields: &Map<String, Value>,
    name: &str,
    parse: impl Fn(&str, &str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    text(fields, name)?
        .map(|text| parse(name, &text))
        .transpose()
}

fn address(fields: &Map<String, Value>, name: &str) -> Result<Address, String> {
    required(fields, name, parse_address)
}

fn tx_hash(name: &str, text: &str) -> Result<TxHash, String> {
    parse_tx_hash(name, text)
}

fn uint(name: &str, text: &str) -> Result<U256, String> {
    parse_decimal(text).map_err(|error| format!("{name}: {error}"))
}

/// A whole number from 0 to `max`, as the file importer reads block numbers and indexes.
fn count(name: &str, text: &str, max: i64) -> Result<i64, String> {
    match text.parse::<i64>() {
        Ok(number) if (0..=max).contains(&number) => Ok(number),
        _ => Err(format!(
            "{name}: expected a whole number from 0 to {max}, got {text:?}"
        )),
    }
}

fn log_index(name: &str, text: &str) -> Result<i32, String> {
    let number = count(name, text, i64::from(i32::MAX))?;
    i32::try_from(number).map_err(|_| format!("{name}: {number} is out of range"))
}

fn block_number(name: &str, text: &str) -> Result<i64, String> {
    count(name, text, i64::MAX)
}

fn decimals(name: &str, text: &str) -> Result<i32, String> {
    let number = count(name, text, 255)?;
    i32::try_from(number).map_err(|_| format!("{name}: {number} is out of range"))
}

/// RFC 3339 text (what the `timestamp` transform writes), epoch seconds, or any other form
/// [`parse_timestamp`] accepts.
fn timestamp(name: &str, text: &str) -> Result<DateTime<Utc>, String> {
    parse_timestamp(text).map_err(|error| format!("{name}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("test fields must be an object, got {other}"),
        }
    }

    fn transfer() -> Value {
        // The second transfer of ethereum-etl's stream export (block 17173049), whose value is
        // beyond u64 and f64, given as text the way the caller keeps such numbers.
        json!({
            "token_address": "0x1ce270557c1f68cfb577b856766310bf8b47fd9c",
            "from_address": "0x7054b0f980a7eb5b3a6b3446f3c947d80162775c",
            "to_address": "0x6b75d8af000000e20b7a7ddf000ba900b4009a80",
            "value": "150188698577042438264952193024",
            "transaction_hash": "0xeb107a40ba73a50c79a9f2026e902d758d1c5e5e211f7a7db1b294f88f118dd0",
            "log_index": 1,
            "block_number": "17173049",
            "block_timestamp": "2023-05-02T12:19:59Z",
        })
    }

    #[test]
    fn transfer_from_mapped_fields() {
        let record = to_transfer(&fields(transfer())).expect("valid transfer");
        assert_eq!(
            ::hex::encode(record.token_address),
            "1ce270557c1f68cfb577b856766310bf8b47fd9c"
        );
        assert_eq!(
            record.value,
            parse_decimal("150188698577042438264952193024").expect("valid")
        );
        assert!(record.value > U256::from(u64::MAX));
        assert_eq!(record.log_index, 1);
        assert_eq!(record.block_number, 17173049);
        assert_eq!(
            record.block_timestamp.map(|t| t.timestamp()),
            Some(1683029999)
        );

        // Numbers for every numeric column, epoch seconds for the timestamp, no timestamp at all.
        let mut numeric = fields(transfer());
        numeric.insert("value".into(), json!(u64::MAX));
        numeric.insert("block_number".into(), json!(17173049));
        numeric.insert("block_timestamp".into(), json!(1683029999));
        let record = to_transfer(&numeric).expect("numbers");
        assert_eq!(record.value, U256::from(u64::MAX));
        assert_eq!(
            record.block_timestamp.map(|t| t.timestamp()),
            Some(1683029999)
        );
        numeric.remove("block_timestamp");
        assert_eq!(
            to_transfer(&numeric).expect("no timestamp").block_timestamp,
            None
        );
    }

    #[test]
    fn transfer_errors_name_the_field() {
        let with = |name: &str, value: Value| {
            let mut map = fields(transfer());
            map.insert(name.to_string(), value);
            to_transfer(&map).expect_err("should fail")
        };
        assert_eq!(with("from_address", Value::Null), "from_address: missing");
        assert_eq!(
            with("value", json!(1e29)),
            "value: 1e+29 is not exact; give large values as decimal text"
        );
        assert_eq!(with("value", json!("-1")), "value: negative number -1");
        assert_eq!(
            with("log_index", json!(-1)),
            "log_index: expected a whole number from 0 to 2147483647, got \"-1\""
        );
        assert_eq!(
            with("to_address", json!("0x1234")),
            "to_address: expected 20 bytes (40 hex digits), got 4 digits in \"0x1234\""
        );
        assert_eq!(
            with("block_number", json!([1])),
            "block_number: expected text or a number, got [1]"
        );
        assert!(
            with("block_timestamp", json!("soon"))
                .starts_with("block_timestamp: timestamp \"soon\"")
        );
    }

    #[test]
    fn token_from_mapped_fields() {
        let record = to_token(&fields(json!({
            "address": "0xC02AAA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
            "symbol": "WETH",
            "name": " Wrapped Ether ",
            "decimals": "18",
            "total_supply": "115792089237316195423570985008687907853269984665640564039457584007913129639935",
            "block_number": 4719568,
            "block_timestamp": "2017-12-12T11:17:35Z",
        })))
        .expect("valid token");
        assert_eq!(record.symbol.as_deref(), Some("WETH"));
        assert_eq!(record.name.as_deref(), Some("Wrapped Ether"));
        assert_eq!(record.decimals, Some(18));
        assert_eq!(record.total_supply, Some(U256::MAX));
        assert_eq!(record.block_number, Some(4719568));
        assert!(record.block_timestamp.is_some());

        // Only the address is required; blanks are unknown.
        let sparse = to_token(&fields(json!({
            "address": "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
            "symbol": "",
            "decimals": null,
        })))
        .expect("sparse token");
        assert_eq!(sparse.symbol, None);
        assert_eq!(sparse.decimals, None);
        assert_eq!(sparse.total_supply, None);

        assert_eq!(
            to_token(&Map::new()).expect_err("no address"),
            "address: missing"
        );
        assert_eq!(
            to_token(&fields(json!({
                "address": "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
                "decimals": 300,
            })))
            .expect_err("too many decimals"),
            "decimals: expected a whole number from 0 to 255, got \"300\""
        );
    }
}
