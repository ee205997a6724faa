//! JSON pages as an HTTP source reads them (records selected by a JSONPath, skip rules, the next
//! cursor or link taken from the body), exact JSON parsing, and the transform pipeline from raw
//! records to entity fields.

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::DateTime;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use serde_json_path::JsonPath;
use tributary::entities::host::Host;
use tributary::entities::{Entity, EntityKind, Visit};
use tributary::providers::definition::{FieldSpec, RecordRule};
use tributary::sources::filter::RecordFilter;
use tributary::sources::json;
use tributary::sources::listing::{
    BodyFormat, ListingError, next_token, next_url, page_records, parse_path,
};
use tributary::transform::{Mapper, transforms};
use tributary::uint256::U256;

use super::{config, data};

/// Any JSON value without floats (whose text form may not read back bit for bit), nested a few
/// levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::String),
        "[ -~]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z$._ ]{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Record paths as provider files write them, and a few odd ones.
const RECORD_PATHS: [&str; 8] = [
    "$",
    "$[*]",
    "$.items[*]",
    "$.data.results",
    "$..id",
    "$.items[?@.id > 2]",
    "$['a b'][0:2]",
    "$.*",
];

fn skip_rules() -> RecordFilter {
    let rule: RecordRule =
        serde_json::from_value(json!({"field": "$.name", "starts_with": "index"}))
            .expect("skip rule");
    RecordFilter::new(vec![rule], vec![]).expect("filter")
}

proptest! {
    #![proptest_config(config(128))]

    /// Any body, read as JSON, text or CSV: records, or an error that says the body is not
    /// JSON (with the line and column) or what is wrong with the CSV.
    #[test]
    fn any_page_body_gives_records_or_says_why(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            json_value().prop_map(|v| v.to_string().into_bytes()),
            "[\\[\\]{}\",:0-9a-z\n\r ]{0,80}".prop_map(String::into_bytes),
        ],
        path in 0..RECORD_PATHS.len(),
    ) {
        let path = parse_path("source.records", RECORD_PATHS[path]).expect("valid path");
        let skip = skip_rules();
        match page_records(BodyFormat::Json, &body, &path, &skip) {
            Ok(records) => {
                let parsed = json::parse_slice(&body).expect("a page read as records is JSON");
                assert!(records.len() <= 1 + parsed.to_string().len());
            }
            Err(ListingError::Invalid(message)) => {
                assert!(message.starts_with("response is not JSON: "), "{message}");
                assert!(message.contains(" line ") && message.contains(" column "), "{message}");
            }
            Err(other) => panic!("unexpected error kind: {other}"),
        }
        let text = page_records(BodyFormat::Text, &body, &path, &skip).expect("text always reads");
        assert_eq!(text.len(), 1);
        match page_records(BodyFormat::Csv, &body, &path, &skip) {
            Ok(records) => assert!(records.iter().all(Value::is_object)),
            Err(ListingError::Invalid(message)) => {
                assert!(message.starts_with("CSV"), "{message}");
            }
            Err(other) => panic!("unexpected error kind: {other}"),
        }
    }

    /// A page of records holding integers of any size gives each record back with its numbers
    /// exact: beyond 64 bits as their digits, never a rounded float.
    #[test]
    fn page_records_keep_big_integers_exact(
        values in prop::collection::vec("[1-9][0-9]{0,90}", 1..10),
        names in prop::collection::vec(prop::option::of("index[a-z]{0,3}|[a-z]{1,5}"), 10),
    ) {
        let items: Vec<String> = values
            .iter()
            .zip(&names)
            .enumerate()
            .map(|(i, (value, name))| match name {
                Some(name) => format!("{{\"id\": {i}, \"name\": \"{name}\", \"value\": {value}}}"),
                None => format!("{{\"id\": {i}, \"value\": {value}}}"),
            })
            .collect();
        let body = format!("{{\"items\": [{}], \"next\": {}}}", items.join(", "), values[0]);
        let path = parse_path("source.records", "$.items[*]").expect("valid path");
        let records = page_records(BodyFormat::Json, body.as_bytes(), &path, &skip_rules())
            .expect("valid page");
        let kept: Vec<usize> = (0..values.len())
            .filter(|&i| !names[i].as_deref().is_some_and(|n| n.starts_with("index")))
            .collect();
        assert_eq!(records.len(), kept.len());
        for (record, &i) in records.iter().zip(&kept) {
            assert_eq!(record["id"], json!(i));
            let expected = match values[i].parse::<u64>() {
                Ok(n) => Value::from(n),
                Err(_) => Value::String(values[i].clone()),
            };
            assert_eq!(record["value"], expected);
        }
        // A cursor that is a big integer stays exact too.
        let parsed = json::parse(&body).expect("valid JSON");
        let token = next_token(&JsonPath::parse("$.next").expect("path"), &parsed);
        assert_eq!(token.as_deref(), Some(values[0].as_str()));
    }

    /// The next cursor is the one string (not empty) or number the path selects; the next link
    /// the one string. Anything else, or several nodes, ends the listing.
    #[test]
    fn next_cursor_and_link_come_from_one_node(next in json_value(), extra in json_value()) {
        let body = json!({"next": next, "page": {"next": extra}});
        let token = next_token(&JsonPath::parse("$.next").expect("path"), &body);
        let expected = match &next {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        assert_eq!(token, expected);
        let link = next_url(&JsonPath::parse("$.next").expect("path"), &body);
        assert_eq!(link, next.as_str().map(str::to_string));
        // `$..next` selects two nodes: no token, whatever they hold.
        let descendants = JsonPath::parse("$..next").expect("path");
        assert_eq!(next_token(&descendants, &body), None);
        assert_eq!(next_url(&descendants, &body), None);
    }

    /// Exact parsing reads back what serde_json writes, and never panics on any text.
    #[test]
    fn exact_json_round_trips(value in json_value(), noise in "\\PC{0,40}") {
        assert_eq!(json::parse(&value.to_string()).expect("valid JSON"), value);
        assert_eq!(json::parse_slice(value.to_string().as_bytes()).expect("valid JSON"), value);
        let _ = json::parse(&noise);
        let _ = json::parse(&format!("{}{noise}", value));
    }

    /// JSONPaths from arbitrary text: parsed or refused with the key and the path named.
    #[test]
    fn any_record_path_parses_or_is_refused(path in "\\$[\\[\\]?@.*'a-z0-9:,() <>=!&|-]{0,20}") {
        match parse_path("source.records", &path) {
            Ok(parsed) => {
                let _ = page_records(BodyFormat::Json, b"{\"a\": [1, {\"b\": 2}]}", &parsed, &RecordFilter::default());
            }
            Err(error) => {
                let message = error.to_string();
                assert!(message.starts_with(&format!("source.records: bad JSONPath `{path}`: ")), "{message}");
            }
        }
    }
}

#[test]
fn deeply_nested_json_is_refused_without_overflowing_the_stack() {
    for depth in [200, 10_000, 200_000] {
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let error = json::parse(&text).expect_err("too deep");
        assert!(
            error.to_string().starts_with("recursion limit exceeded"),
            "{error}"
        );
        let path = JsonPath::parse("$").expect("path");
        match page_records(
            BodyFormat::Json,
            text.as_bytes(),
            &path,
            &RecordFilter::default(),
        ) {
            Err(ListingError::Invalid(message)) => assert!(
                message.starts_with("response is not JSON: recursion limit exceeded"),
                "{message}"
            ),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

/// The `[fields]` of a provider file using every transform, read the way a provider file is.
fn every_transform() -> BTreeMap<String, FieldSpec> {
    #[derive(serde::Deserialize)]
    struct File {
        fields: BTreeMap<String, FieldSpec>,
    }
    let text = r#"
        [fields]
        trimmed = { path = "$.v", transforms = ["trim", "lowercase"] }
        number = { path = "$.v", transforms = ["int"] }
        number_or_zero = { path = "$.v", transforms = [{ int = { default = 0 } }] }
        big = { path = "$.v", transforms = ["uint256"] }
        bytes = { path = "$.v", transforms = ["hex"] }
        mac = { path = "$.v", transforms = ["mac"] }
        ip = { path = "$.v", transforms = ["ip"] }
        at = { path = "$.v", transforms = ["timestamp"] }
        formatted = { path = "$.v", transforms = [{ timestamp = { format = "%d.%m.%Y %H:%M" } }] }
        hashed = { path = "$.v", transforms = ["sha256"] }
        keyed = { path = "$.v", transforms = [{ sha256 = { key = "k" } }] }
        mapped = { path = "$.v", transforms = [{ map = { a = "b" } }, { default = "none" }] }
        all = { path = "$..v", transforms = ["trim"] }
        hidden = { path = "$.v", transforms = ["redact"] }
    "#;
    toml::from_str::<File>(text).expect("fields").fields
}

proptest! {
    #![proptest_config(config(128))]

    /// Every transform on any value: a value, or an error that starts with the field's name.
    #[test]
    fn transforms_on_any_value_name_the_field(v in json_value(), text in "\\PC{0,30}") {
        let mapper = Mapper::new(&every_transform()).expect("valid mapping");
        let names: Vec<String> = every_transform().into_keys().collect();
        for raw in [json!({"v": v}), json!({"v": text}), v.clone()] {
            match mapper.map(&raw) {
                Ok(mapped) => assert!(!mapped.contains_key("hidden")),
                Err(error) => assert!(
                    names.iter().any(|n| error.starts_with(&format!("{n}: "))),
                    "error names no field: {error}"
                ),
            }
        }
    }

    /// Mapped fields of any shape become a typed record, or an error naming the field.
    #[test]
    fn entities_from_any_fields_name_the_field(
        values in prop::collection::vec(json_value(), 16),
        texts in prop::collection::vec("0x[0-9a-f]{0,64}|[0-9]{1,80}|\\PC{0,12}", 16),
    ) {
        for kind in EntityKind::ALL.iter().filter(|k| !k.fields().is_empty()) {
            for use_text in [false, true] {
                let map: Map<String, Value> = kind
                    .fields()
                    .iter()
                    .enumerate()
                    .map(|(i, field)| {
                        let value = if use_text { Value::String(texts[i % 16].clone()) } else { values[i % 16].clone() };
                        (field.name.to_string(), value)
                    })
                    .collect();
                if let Err(error) = kind.visit(FromFields(&map)) {
                    assert!(
                        kind.fields().iter().any(|f| error.starts_with(&format!("{}: ", f.name))),
                        "error names no field: {error}"
                    );
                }
            }
        }
    }

    /// uint256 text and JSON integers, epoch timestamps, MAC spellings, IP addresses and hex
    /// keep their value through their transform.
    #[test]
    fn transforms_round_trip(
        value in any::<[u8; 32]>(),
        // Years 1 to 9999: RFC 3339 has four-digit years.
        seconds in -62_135_596_800i64..=253_402_300_799,
        mac in any::<[u8; 6]>(),
        ip in any::<IpAddr>(),
        bytes in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let value = U256::from_be_bytes(value);
        let text = value.to_string();
        assert_eq!(transforms::uint256(&json!(text)), Ok(json!(text)));
        let exact = json::parse(&format!("{{\"v\": {text}}}")).expect("valid JSON");
        assert_eq!(transforms::uint256(&exact["v"]), Ok(json!(text)));

        let instant = DateTime::from_timestamp(seconds, 0).expect("in range");
        let stamped = transforms::timestamp(&json!(seconds), None).expect("epoch seconds");
        let back = DateTime::parse_from_rfc3339(stamped.as_str().expect("text")).expect("RFC 3339");
        assert_eq!(back, instant);
        assert_eq!(transforms::timestamp(&stamped, None), Ok(stamped.clone()));

        let canonical = mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
        let upper = canonical.to_uppercase();
        let dotted = format!("{}.{}.{}", &canonical.replace(':', "")[0..4], &canonical.replace(':', "")[4..8], &canonical.replace(':', "")[8..12]);
        for spelling in [canonical.clone(), upper.replace(':', "-"), upper.replace(':', ""), dotted] {
            assert_eq!(transforms::mac(&json!(spelling)), Ok(json!(canonical)), "{spelling}");
        }

        assert_eq!(transforms::ip(&json!(format!(" {ip} "))), Ok(json!(ip.to_string())));

        let hex_text = format!("0X{}", hex::encode_upper(&bytes));
        assert_eq!(transforms::hex(&json!(hex_text)), Ok(json!(hex::encode_prefixed(&bytes))));
    }
}

/// The real host documents through a real provider mapping, with one value replaced: a
/// mapped record or an error naming the field.
#[test]
fn real_host_documents_with_odd_values_name_the_field() {
    let documents: Vec<Value> =
        serde_json::from_str(&data("hosts/sample_crowdstrike_data.json")).expect("JSON array");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/providers/crowdstrike.toml"
    ))
    .expect("provider file");
    #[derive(serde::Deserialize)]
    struct File {
        fields: BTreeMap<String, FieldSpec>,
    }
    let fields: File = toml::from_str(&text).expect("provider file");
    let mapper = Mapper::new(&fields.fields).expect("mapping");
    let odd = [
        json!(null),
        json!(""),
        json!("zz"),
        json!(-1),
        json!(1e300),
        json!([1, [2]]),
        json!({"$date": "x"}),
    ];
    let mut rejected = 0;
    for document in &documents {
        let Value::Object(object) = document else {
            panic!("object")
        };
        for key in object.keys() {
            for value in &odd {
                let mut changed = object.clone();
                changed.insert(key.clone(), value.clone());
                match mapper
                    .map(&Value::Object(changed))
                    .and_then(|mapped| Host::from_fields(&mapped, None))
                {
                    Ok(_) => {}
                    Err(error) => {
                        rejected += 1;
                        assert!(
                            fields
                                .fields
                                .keys()
                                .any(|n| error.starts_with(&format!("{n}: "))),
                            "error names no field: {error}"
                        );
                    }
                }
            }
        }
    }
    assert!(rejected > 0);
}

/// A kind's record from mapped fields, whatever the kind: `Ok(())` or the error.
struct FromFields<'a>(&'a Map<String, Value>);

impl Visit for FromFields<'_> {
    type Output = Result<(), String>;
    fn visit<E: Entity>(self) -> Self::Output {
        E::from_fields(self.0, None).map(|_| ())
    }
}
