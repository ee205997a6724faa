//! Entity adapters: a `token`, `transfer` or `product` provider's mapped fields into typed
//! records.
//!
//! Field names are the entity's column names. Each value may be text or a JSON number (the mapper
//! gives `uint256` values as decimal text, timestamps as RFC 3339); null or absent means unknown.
//! Parsing follows the file importer's rules, so the same value is read the same way whichever
//! way it arrived.

use std::collections::BTreeSet;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde_json::{Map, Number, Value};

use crate::ethereum::{Address, TokenRecord, TransferRecord, TxHash, parse_address, parse_tx_hash};
use crate::hosts::{self, Observation};
use crate::store::products::ProductRecord;
use crate::timestamps::parse_timestamp;
use crate::transform::transforms::{self, shown};
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

/// The fields a `host` provider maps; only `id` (the provider's own id for the machine) is
/// required. `ips` are sorted into private and public ones by address range; `private_ips` and
/// `public_ips` are taken as the provider says.
pub const HOST_FIELDS: &[&str] = &[
    "id",
    "hostname",
    "fqdn",
    "os",
    "platform",
    "cloud_provider",
    "cloud_instance_id",
    "ips",
    "private_ips",
    "public_ips",
    "macs",
    "first_seen",
    "last_seen",
];

/// A `host` provider's mapped fields: the external id and the observation. Single-valued
/// fields accept a list whose values are all the same (nested lists often repeat one value);
/// list fields accept one value or a list. Errors name the field.
pub fn to_host(fields: &Map<String, Value>) -> Result<(String, Observation), String> {
    let id = single(fields, "id")?.ok_or_else(|| "id: missing".to_string())?;
    let mut private_ips = ips(fields, "private_ips")?;
    let mut public_ips = ips(fields, "public_ips")?;
    for ip in ips(fields, "ips")? {
        if hosts::is_private(&ip) {
            private_ips.insert(ip);
        } else {
            public_ips.insert(ip);
        }
    }
    let text_list = |set: BTreeSet<IpAddr>| set.into_iter().map(|ip| ip.to_string()).collect();
    let mut macs = BTreeSet::new();
    for value in many(fields, "macs")? {
        match transforms::mac(&Value::String(value)) {
            Ok(Value::String(mac)) => {
                macs.insert(mac);
            }
            Ok(_) => {}
            Err(error) => return Err(format!("macs: {error}")),
        }
    }
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, String> {
        single(fields, name)?
            .map(|text| timestamp(name, &text))
            .transpose()
    };
    Ok((
        id,
        Observation {
            hostname: single(fields, "hostname")?,
            fqdn: single(fields, "fqdn")?,
            os: single(fields, "os")?,
            platform: single(fields, "platform")?,
            cloud_provider: single(fields, "cloud_provider")?,
            cloud_instance_id: single(fields, "cloud_instance_id")?,
            private_ips: text_list(private_ips),
            public_ips: text_list(public_ips),
            macs: macs.into_iter().collect(),
            first_seen: time("first_seen")?,
            last_seen: time("last_seen")?,
        },
    ))
}

/// The distinct non-blank texts of a field that may hold one value or a list.
fn many(fields: &Map<String, Value>, name: &str) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    let mut add = |value: &Value| -> Result<(), String> {
        match value {
            Value::Null => {}
            Value::String(text) if text.trim().is_empty() => {}
            Value::String(text) => {
                out.insert(text.trim().to_string());
            }
            Value::Number(number) => {
                out.insert(exact_number(name, number)?);
            }
            other => {
                return Err(format!(
                    "{name}: expected text or a number, got {}",
                    shown(other)
                ));
            }
        }
        Ok(())
    };
    match fields.get(name) {
        None => {}
        Some(Value::Array(items)) => items.iter().try_for_each(&mut add)?,
        Some(value) => add(value)?,
    }
    Ok(out)
}

/// A field that holds one value: one text, or a list whose values are all that text.
fn single(fields: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    let values = many(fields, name)?;
    if values.len() > 1 {
        return Err(format!(
            "{name}: expected one value, got {} different ones ({})",
            values.len(),
            values.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(values.into_iter().next())
}

fn ips(fields: &Map<String, Value>, name: &str) -> Result<BTreeSet<IpAddr>, String> {
    many(fields, name)?
        .into_iter()
        .map(|text| {
            text.parse::<IpAddr>()
                .map_err(|_| format!("{name}: {text:?} is not an IP address"))
        })
        .collect()
}

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

#[cfg(test)]
mod host_tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_host_files_addresses_by_range_and_normalizes_macs() {
        let (id, o) = to_host(&fields(json!({
            "id": 305003660,
            "hostname": "ip-172-31-19-223.ec2.internal",
            "cloud_instance_id": ["i-0f74daf3d7225083a", "i-0f74daf3d7225083a"],
            "macs": ["0A:9A:0E:BA:3F:D9", "0a-9a-0e-ba-3f-d9", null],
            "ips": ["172.31.19.223", "18.212.216.193", "fe80:0:0:0:89a:eff:feba:3fd9"],
            "last_seen": "2023-07-26T04:27:35Z",
        })))
        .expect("maps");
        assert_eq!(id, "305003660");
        assert_eq!(o.cloud_instance_id.as_deref(), Some("i-0f74daf3d7225083a"));
        assert_eq!(o.macs, ["0a:9a:0e:ba:3f:d9"]);
        assert_eq!(o.private_ips, ["172.31.19.223", "fe80::89a:eff:feba:3fd9"]);
        assert_eq!(o.public_ips, ["18.212.216.193"]);
        assert_eq!(
            o.last_seen.map(|t| t.to_rfc3339()).as_deref(),
            Some("2023-07-26T04:27:35+00:00")
        );
    }

    #[test]
    fn bad_host_fields_are_named() {
        let error = |value: Value| to_host(&fields(value)).expect_err("refused");
        assert_eq!(error(json!({ "hostname": "a" })), "id: missing");
        assert_eq!(
            error(json!({ "id": "1", "os": ["Linux", "Windows"] })),
            "os: expected one value, got 2 different ones (Linux, Windows)"
        );
        assert_eq!(
            error(json!({ "id": "1", "ips": ["10.0.0.1", "ten"] })),
            "ips: \"ten\" is not an IP address"
        );
        assert_eq!(
            error(json!({ "id": "1", "macs": "zz" })),
            "macs: \"zz\" is not a MAC address"
        );
    }
}
