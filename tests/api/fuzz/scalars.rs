//! The scalars: uint256 text, provider timestamps, addresses and hashes, the GraphQL `BigInt`,
//! `Bytes` and `DateTime` scalars, and keyset cursors (any string a client passes back as
//! `after` or `before`).

use async_graphql::{ScalarType, Value as GqlValue};
use chrono::{DateTime, Utc};
use entity::transfer;
use proptest::prelude::*;
use sea_orm::sea_query::Order;
use tributary::entities::{Field, Fields, Scalar, fields};
use tributary::graphql::scalars::{BigInt, Bytes, DateTime as GqlDateTime};
use tributary::store::keyset::{Cursor, KeyValue, PageError, PageRequest, SortOrder};
use tributary::timestamps::{parse_timestamp, parse_with_format};
use tributary::uint256::{self, U256};

use super::config;

/// Digits, signs, spaces, exponents and the like.
fn number_text() -> impl Strategy<Value = String> {
    prop_oneof!["\\PC{0,20}", "[-+ 0-9.eExX_]{0,90}", "0{0,5}[0-9]{70,80}",]
}

proptest! {
    #![proptest_config(config(256))]

    /// uint256: any value → decimal text → value again; the fixed-width stored form sorts like
    /// the numbers and reads back as the canonical text.
    #[test]
    fn uint256_round_trips(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
        let (a, b) = (U256::from_be_bytes(a), U256::from_be_bytes(b));
        assert_eq!(uint256::parse_decimal(&a.to_string()), Ok(a));
        assert_eq!(uint256::parse_decimal(&format!(" 000{a} ")), Ok(a));
        let (fa, fb) = (uint256::to_fixed_width(a), uint256::to_fixed_width(b));
        assert_eq!(fa.len(), uint256::WIDTH);
        assert_eq!(fa.cmp(&fb), a.cmp(&b));
        assert_eq!(uint256::canonical(&fa), a.to_string());
        assert_eq!(BigInt::parse_decimal(&a.to_string()).map(|v| v.to_string()), Ok(a.to_string()));
    }

    /// uint256 and BigInt on any text: a value, or an error quoting what was wrong.
    #[test]
    fn uint256_text_parses_or_says_why(text in number_text()) {
        match uint256::parse_decimal(&text) {
            Ok(value) => assert_eq!(value.to_string(), uint256::canonical(text.trim())),
            Err(error) => {
                let trimmed = text.trim();
                assert!(
                    error == "empty value"
                        || error.contains(trimmed)
                        || error.contains(&format!("{trimmed:?}")),
                    "{error} does not quote {text:?}"
                );
            }
        }
        match BigInt::parse_decimal(&text) {
            Ok(value) => assert!(value.as_str().trim_start_matches('-').bytes().all(|b| b.is_ascii_digit())),
            Err(error) => assert!(error.contains(&format!("{text:?}")), "{error}"),
        }
    }

    /// Timestamps in every accepted spelling read back as the same instant; any other text is
    /// an error that quotes it and lists the accepted forms.
    #[test]
    fn timestamps_round_trip(seconds in -62_135_596_800i64..=253_402_300_799, text in "\\PC{0,30}|[0-9/: TZ+.-]{0,30}") {
        let instant = DateTime::<Utc>::from_timestamp(seconds, 0).expect("in range");
        for spelling in [
            seconds.to_string(),
            instant.to_rfc3339(),
            instant.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            instant.format("%Y-%m-%dT%H:%M:%S").to_string(),
        ] {
            assert_eq!(parse_timestamp(&spelling), Ok(instant), "{spelling}");
        }
        let spreadsheet = instant.format("%-m/%-d/%Y %-H:%M:%S").to_string();
        assert_eq!(parse_timestamp(&spreadsheet), Ok(instant), "{spreadsheet}");
        if let Err(error) = parse_timestamp(&text) {
            assert!(
                error.contains("epoch seconds") || error.contains("out of range"),
                "{error}"
            );
        }
        let gql = GqlDateTime::parse_rfc3339(&instant.to_rfc3339()).expect("RFC 3339");
        assert_eq!(gql.0, instant);
        assert_eq!(GqlDateTime::parse_rfc3339(&gql.to_string()), Ok(gql));
    }

    /// Explicit formats: any format and text give an instant or an error naming both.
    #[test]
    fn any_timestamp_format_parses_or_says_why(
        format in "[%a-zA-Z0-9 :./+-]{0,16}",
        text in "[0-9a-zA-Z :./+-]{0,20}",
    ) {
        if let Err(error) = parse_with_format(&text, &format) {
            assert!(error.contains(&format!("{format:?}")), "{error}");
        }
    }

    /// Addresses and hashes: exact bytes in any case; other text quoted in the error with the
    /// field's name.
    #[test]
    fn addresses_and_hashes(address in any::<[u8; 20]>(), hash in any::<[u8; 32]>(), text in "\\PC{0,70}|0[xX][0-9a-fA-Fg]{0,66}") {
        let upper = format!("0x{}", hex::encode_upper(address));
        assert_eq!(fields::address(Scalar::Text(upper.as_str().into())), Ok(address));
        assert_eq!(fields::tx_hash(Scalar::Text(hex::encode_prefixed(hash).into())), Ok(hash));
        // Through a record's fields, as every path reads them: the error names the field.
        let record = serde_json::Map::from_iter([("to_address".to_string(), serde_json::Value::String(text.clone()))]);
        if let Err(error) = record.required(&Field::required("to_address", 0, ""), fields::address) {
            assert!(error.starts_with("to_address: "), "{error}");
        }
        if let Err(error) = record.required(&Field::required("to_address", 0, ""), fields::tx_hash) {
            assert!(error.starts_with("to_address: "), "{error}");
        }
    }

    /// The GraphQL scalars: `Bytes` reads any case and writes lower case; any input value is
    /// a scalar or an error, never a panic.
    #[test]
    fn graphql_scalars(bytes in prop::collection::vec(any::<u8>(), 0..40), text in "\\PC{0,40}|0[xX][0-9a-fA-F]{0,41}", n in any::<i64>(), x in any::<f64>()) {
        let upper = format!("0X{}", hex::encode_upper(&bytes));
        let parsed = <Bytes as ScalarType>::parse(GqlValue::String(upper)).expect("hex");
        assert_eq!(parsed.0, bytes);
        assert_eq!(parsed.to_value(), GqlValue::String(hex::encode_prefixed(&bytes)));
        for value in [
            GqlValue::String(text.clone()),
            GqlValue::Number(n.into()),
            GqlValue::Number(async_graphql::Number::from_f64(x).unwrap_or_else(|| 0.into())),
            GqlValue::Boolean(true),
            GqlValue::Null,
            GqlValue::List(vec![GqlValue::String(text.clone())]),
        ] {
            if let Ok(v) = <BigInt as ScalarType>::parse(value.clone()) {
                assert_eq!(<BigInt as ScalarType>::parse(v.to_value()).ok(), Some(v));
            }
            if let Ok(v) = <Bytes as ScalarType>::parse(value.clone()) {
                assert_eq!(<Bytes as ScalarType>::parse(v.to_value()).ok(), Some(v));
            }
            if let Ok(v) = <GqlDateTime as ScalarType>::parse(value.clone()) {
                assert_eq!(<GqlDateTime as ScalarType>::parse(v.to_value()).ok(), Some(v));
            }
        }
    }
}

/// The order cursors are checked against: nullable time, text, uint256, bytes, then the id.
fn order() -> SortOrder<transfer::Column> {
    SortOrder::new()
        .then_nullable(transfer::Column::BlockTimestamp, Order::Desc)
        .then_uint256(transfer::Column::Value, Order::Asc)
        .then(transfer::Column::TokenAddress, Order::Asc)
        .then(transfer::Column::Id, Order::Desc)
}

fn key_values() -> impl Strategy<Value = Vec<KeyValue>> {
    (
        prop::option::of(-62_135_596_800i64..=253_402_300_799),
        0u32..1_000_000_000,
        any::<[u8; 32]>(),
        prop::collection::vec(any::<u8>(), 0..20),
        any::<i64>(),
    )
        .prop_map(|(seconds, nanos, value, bytes, id)| {
            vec![
                KeyValue::time(seconds.and_then(|s| DateTime::from_timestamp(s, nanos))),
                KeyValue::Uint(U256::from_be_bytes(value).to_string()),
                KeyValue::Bytes(bytes),
                KeyValue::Int(id),
            ]
        })
}

fn is_refusal(error: &PageError, name: &str) -> bool {
    matches!(error, PageError::BadCursor(n) | PageError::OtherOrder(n) if *n == name)
}

proptest! {
    #![proptest_config(config(256))]

    /// A cursor the server made reads back as the same sort values.
    #[test]
    fn cursors_round_trip(values in key_values(), size in 0i64..=1000) {
        let order = order();
        let text = Cursor::new(&order, values.clone()).encode();
        let request = PageRequest::new(&order, Some(size), Some(&text), None, None).expect("own cursor");
        assert_eq!(request.cursor, Some(values.clone()));
        assert_eq!(request.limit, size as u64);
        let request = PageRequest::new(&order, None, None, Some(size), Some(&text)).expect("own cursor");
        assert_eq!((request.cursor, request.backward), (Some(values), true));
    }

    /// Any string passed as `after` or `before`, or a real cursor with bytes changed, is read
    /// as a cursor of this order or refused naming the argument; never a panic.
    #[test]
    fn any_cursor_string_is_read_or_refused(
        values in key_values(),
        text in "\\PC{0,60}|[A-Za-z0-9_-]{0,120}",
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let order = order();
        let mut mutated = Cursor::new(&order, values).encode().into_bytes();
        for (at, byte) in flips {
            let at = at.index(mutated.len());
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/";
            mutated[at] = alphabet[byte as usize % alphabet.len()];
        }
        let mutated = String::from_utf8(mutated).expect("ASCII");
        for candidate in [text.as_str(), mutated.as_str()] {
            match PageRequest::new(&order, Some(10), Some(candidate), None, None) {
                Ok(request) => assert_eq!(request.cursor.map(|c| c.len()), Some(4)),
                Err(error) => assert!(is_refusal(&error, "after"), "{error:?}"),
            }
            match PageRequest::new(&order, None, None, Some(10), Some(candidate)) {
                Ok(request) => assert_eq!(request.cursor.map(|c| c.len()), Some(4)),
                Err(error) => assert!(is_refusal(&error, "before"), "{error:?}"),
            }
        }
    }
}
