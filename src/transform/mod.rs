//! Where a provider's raw records become entity fields.
//!
//! A provider's `fields` table says, for each entity field, where its value is in a raw record
//! ([`path`]) and what is done to it ([`transforms`]). [`Mapper`] compiles that table once and
//! maps each record; [`TextParser`] turns text input into records first. The entity kind then
//! reads the mapped fields (`crate::entities`).

pub mod path;
mod text;
pub mod transforms;

use std::collections::BTreeMap;
use std::fmt;

use chrono::format::{Item, StrftimeItems};
use serde_json::{Map, Value};

use crate::providers::definition::{FieldSpec, Transform, TransformName, TransformWith};
use path::FieldPath;

pub use text::TextParser;

/// A provider's field mappings, compiled once (JSONPaths parsed, transforms checked). Built from
/// a provider whose `${VAR}`s are expanded (`providers::env`): sha256 keys are taken as they are.
#[derive(Clone)]
pub struct Mapper {
    /// In field-name order; redacted fields are left out, since they are never written.
    fields: Vec<Field>,
}

#[derive(Clone)]
struct Field {
    name: String,
    /// The first that gives a non-null value is the field's. None: the value comes from a
    /// `default` step alone.
    paths: Vec<FieldPath>,
    steps: Vec<Step>,
}

/// One compiled transform. `redact` has no step: a redacted field is not mapped at all.
#[derive(Clone)]
enum Step {
    Trim,
    Lowercase,
    Int {
        default: Option<i64>,
    },
    Uint256,
    Hex,
    Address,
    Mac,
    Ip,
    Timestamp {
        format: Option<String>,
    },
    /// The key is the expanded secret; it must never reach logs or `Debug` output.
    Sha256 {
        key: Option<Vec<u8>>,
    },
    Map(BTreeMap<String, String>),
    Default(Value),
}

impl Mapper {
    /// Errors name the field and what is wrong (e.g. "fields.age: bad JSONPath `$.[`: …").
    pub fn new(fields: &BTreeMap<String, FieldSpec>) -> Result<Mapper, String> {
        let mut compiled = Vec::with_capacity(fields.len());
        for (name, spec) in fields {
            if let Some(field) =
                compile_field(name, spec).map_err(|error| format!("fields.{name}: {error}"))?
            {
                compiled.push(field);
            }
        }
        Ok(Mapper { fields: compiled })
    }

    /// Maps one raw record (a JSON value: an object from JSON/CSV input, or the object of named captures from text input)
    /// into the entity's fields. A field whose path finds nothing is null unless a `default` transform gives a value;
    /// `redact` drops the field entirely. Errors name the field and the problem, e.g. "mac_address: \"zz\" is not a MAC address".
    pub fn map(&self, raw: &Value) -> Result<Map<String, Value>, String> {
        let mut out = Map::new();
        for field in &self.fields {
            let found = field
                .paths
                .iter()
                .find_map(|path| path.find(raw).filter(|value| !value.is_null()))
                .unwrap_or(Value::Null);
            let value = field
                .steps
                .iter()
                .try_fold(found, |value, step| apply(step, value))
                .map_err(|error| format!("{}: {error}", field.name))?;
            out.insert(field.name.clone(), value);
        }
        Ok(out)
    }
}

impl fmt::Debug for Mapper {
    /// Field names only: the steps hold sha256 keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self
            .fields
            .iter()
            .map(|field| field.name.as_str())
            .collect();
        f.debug_struct("Mapper").field("fields", &names).finish()
    }
}

/// One field's mapping, or `None` when it is redacted.
fn compile_field(name: &str, spec: &FieldSpec) -> Result<Option<Field>, String> {
    let (paths, transforms) = spec.parts();
    let paths = paths
        .into_iter()
        .map(|text| {
            FieldPath::parse(text).map_err(|error| format!("bad JSONPath `{text}`: {error}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut steps = Vec::with_capacity(transforms.len());
    let mut redacted = false;
    for transform in transforms {
        match compile_step(transform)? {
            Some(step) => steps.push(step),
            None => redacted = true,
        }
    }
    if redacted {
        return Ok(None);
    }
    if paths.is_empty() && !steps.iter().any(|step| matches!(step, Step::Default(_))) {
        return Err("no path, and no default to give a value".to_string());
    }
    Ok(Some(Field {
        name: name.to_string(),
        paths,
        steps,
    }))
}

/// The step for one transform; `None` for `redact`.
fn compile_step(transform: &Transform) -> Result<Option<Step>, String> {
    let step = match transform {
        Transform::Name(name) => match name {
            TransformName::Trim => Step::Trim,
            TransformName::Lowercase => Step::Lowercase,
            TransformName::Int => Step::Int { default: None },
            TransformName::Uint256 => Step::Uint256,
            TransformName::Hex => Step::Hex,
            TransformName::Address => Step::Address,
            TransformName::Mac => Step::Mac,
            TransformName::Ip => Step::Ip,
            TransformName::Timestamp => Step::Timestamp { format: None },
            TransformName::Redact => return Ok(None),
            TransformName::Sha256 => Step::Sha256 { key: None },
        },
        Transform::With(with) => match with {
            TransformWith::Int { default } => Step::Int { default: *default },
            TransformWith::Timestamp { format } => {
                if let Some(format) = format {
                    check_format(format)?;
                }
                Step::Timestamp {
                    format: format.clone(),
                }
            }
            TransformWith::Sha256 { key } => {
                // An empty key would quietly make the hash a guessable one.
                if key.is_empty() {
                    return Err("sha256 key is empty".to_string());
                }
                Step::Sha256 {
                    key: Some(key.clone().into_bytes()),
                }
            }
            TransformWith::Map(map) => Step::Map(map.clone()),
            TransformWith::Default(value) => Step::Default(value.clone()),
        },
    };
    Ok(Some(step))
}

/// A strftime format chrono understands; checked here so a typo fails at load, not per record.
fn check_format(format: &str) -> Result<(), String> {
    if StrftimeItems::new(format).any(|item| matches!(item, Item::Error)) {
        return Err(format!("bad timestamp format {format:?}"));
    }
    Ok(())
}

/// Applies one step to a field's value: `default` to the value as a whole, every other step to
/// each element of an array (recursively) and never to null.
fn apply(step: &Step, value: Value) -> Result<Value, String> {
    match step {
        Step::Default(given) if value.is_null() => Ok(given.clone()),
        Step::Default(_) => Ok(value),
        _ => each(&value, &|one| apply_one(step, one)),
    }
}

fn each(
    value: &Value,
    transform: &dyn Fn(&Value) -> Result<Value, String>,
) -> Result<Value, String> {
    match value {
        Value::Null => Ok(Value::Null),
        Value::Array(items) => items
            .iter()
            .map(|item| each(item, transform))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        one => transform(one),
    }
}

fn apply_one(step: &Step, value: &Value) -> Result<Value, String> {
    match step {
        Step::Trim => transforms::trim(value),
        Step::Lowercase => transforms::lowercase(value),
        Step::Int { default } => transforms::int(value, *default),
        Step::Uint256 => transforms::uint256(value),
        Step::Hex => transforms::hex(value),
        Step::Address => transforms::address(value),
        Step::Mac => transforms::mac(value),
        Step::Ip => transforms::ip(value),
        Step::Timestamp { format } => transforms::timestamp(value, format.as_deref()),
        Step::Sha256 { key } => transforms::sha256(value, key.as_deref()),
        Step::Map(map) => Ok(match value {
            Value::String(text) => map
                .get(text)
                .map(|to| Value::String(to.clone()))
                .unwrap_or_else(|| value.clone()),
            other => other.clone(),
        }),
        // Handled on the whole value in `apply`.
        Step::Default(_) => Ok(value.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use serde_json::json;
    use sha2::Sha256;

    const CROWDSTRIKE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/hosts/sample_crowdstrike_data.json"
    );
    const QUALYS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/hosts/sample_qualys_data.json"
    );

    fn documents(path: &str) -> Vec<Value> {
        let text = std::fs::read_to_string(path).expect("sample data is readable");
        serde_json::from_str(&text).expect("sample data is a JSON array")
    }

    /// The `[fields]` table of a provider file, as written.
    fn fields(toml_text: &str) -> BTreeMap<String, FieldSpec> {
        #[derive(serde::Deserialize)]
        struct File {
            fields: BTreeMap<String, FieldSpec>,
        }
        toml::from_str::<File>(toml_text)
            .expect("valid fields table")
            .fields
    }

    fn mapper(toml_text: &str) -> Mapper {
        Mapper::new(&fields(toml_text)).expect("valid mapping")
    }

    #[test]
    fn crowdstrike_hosts() {
        let mapper = mapper(
            r#"
            [fields]
            hostname = "hostname"
            mac = { path = "mac_address", transforms = ["mac"] }
            instance_id = "$.instance_id"
            local_ip = { path = "local_ip", transforms = ["ip"] }
            first_seen = { path = "first_seen", transforms = ["timestamp"] }
            modified = { path = "$.modified_timestamp", transforms = ["timestamp"] }
            "#,
        );
        let hosts = documents(CROWDSTRIKE);
        assert_eq!(hosts.len(), 7);
        let first = mapper.map(&hosts[0]).expect("maps");
        assert_eq!(
            Value::Object(first),
            json!({
                "hostname": "ip-172-31-93-76.ec2.internal",
                "mac": "12:5e:2e:db:58:99",
                "instance_id": "i-086fc5a571e41b095",
                "local_ip": "172.31.93.76",
                "first_seen": "2022-09-22T22:35:56Z",
                "modified": "2023-03-16T13:34:51Z",
            })
        );
        // The Mac laptop is not an EC2 instance: no instance id, so null.
        let laptop = mapper.map(&hosts[6]).expect("maps");
        assert_eq!(laptop["hostname"], json!("yoavs-mbp-2.lan"));
        assert_eq!(laptop["mac"], json!("a0:78:17:89:1a:fa"));
        assert_eq!(laptop["instance_id"], Value::Null);
        for host in &hosts {
            mapper.map(host).expect("every document maps");
        }
    }

    #[test]
    fn qualys_hosts() {
        let mapper = mapper(
            r#"
            [fields]
            id = "$._id"
            hostname = { path = "dnsHostName", transforms = ["lowercase"] }
            macs = { path = "$.networkInterface.list[*].HostAssetInterface.macAddress", transforms = ["mac"] }
            addresses = { path = "$.networkInterface.list[*].HostAssetInterface.address", transforms = ["ip"] }
            instance_id = "$.sourceInfo.list[*].Ec2AssetSourceSimple.instanceId"
            last_vuln_scan = { path = "$.lastVulnScan", transforms = ["timestamp"] }
            volume_free = { path = "$.volume.list[*].HostAssetVolume.free", transforms = ["int"] }
            tags = { path = "$.missing[*]", transforms = [{ default = [] }] }
            "#,
        );
        let hosts = documents(QUALYS);
        assert_eq!(hosts.len(), 7);
        let first = mapper.map(&hosts[0]).expect("maps");
        assert_eq!(first["id"], json!(305003660));
        // Interfaces without a MAC are skipped by the wildcard; the rest are normalized.
        assert_eq!(
            first["macs"],
            json!(["0a:9a:0e:ba:3f:d9", "0a:9a:0e:ba:3f:d9"])
        );
        assert_eq!(
            first["addresses"],
            json!(["172.31.19.223", "18.212.216.193", "fe80::89a:eff:feba:3fd9"])
        );
        // One node matched: the value itself, not a one-element array.
        assert_eq!(first["instance_id"], json!("i-0f74daf3d7225083a"));
        assert_eq!(first["last_vuln_scan"], json!("2023-07-26T04:20:52Z"));
        assert_eq!(
            first["volume_free"],
            json!([496959488, 506331136, 506331136, 505962496, 3584946176_i64])
        );
        assert_eq!(first["tags"], json!([]));

        // The Windows host writes its MACs in upper case.
        let windows = mapper.map(&hosts[5]).expect("maps");
        assert_eq!(windows["hostname"], json!("ec2amaz-e8fae79"));
        assert_eq!(
            windows["macs"],
            json!(["0a:1d:96:2e:f5:17", "0a:1d:96:2e:f5:17"])
        );

        // Once normalized, CrowdStrike's dash-form MAC is one of Qualys' for the same machine.
        let crowdstrike = Mapper::new(&fields(
            "[fields]\nmac = { path = \"mac_address\", transforms = [\"mac\"] }",
        ))
        .expect("valid mapping");
        let same_machine = &documents(CROWDSTRIKE)[2];
        assert_eq!(same_machine["local_ip"], json!("172.31.19.223"));
        let mac = crowdstrike.map(same_machine).expect("maps")["mac"].clone();
        assert!(
            first["macs"]
                .as_array()
                .is_some_and(|macs| macs.contains(&mac))
        );
    }

    const PATIENT: &str = "\
ID: 5f0c2a9e-77b1-4c3e-9d2a-1b6f0e8c4d21
NAME: Jane Q. Public
AGE: about 42 years
INSTITUTION: St. Mary's General Hospital
ACTIVITY: cardiology follow-up
COMMENT: Reports mild shortness of breath on exertion.
No change to medication; review again in two weeks.
";

    const PATIENT_PATTERN: &str = r"(?s)ID: (?P<ID>[^\n]*)\nNAME: (?P<NAME>[^\n]*)\nAGE: (?P<AGE>[^\n]*)\nINSTITUTION: (?P<INSTITUTION>[^\n]*)\nACTIVITY: (?P<ACTIVITY>[^\n]*)\nCOMMENT: (?P<COMMENT>.*)";

    #[test]
    fn patient_text_documents() {
        let parser = TextParser::new(PATIENT_PATTERN).expect("valid pattern");
        let records = parser.records(PATIENT);
        assert_eq!(records.len(), 1);
        let mapper = mapper(
            r#"
            [fields]
            id = "ID"
            age = { path = "AGE", transforms = [{ int = { default = 0 } }] }
            name = { path = "NAME", transforms = ["redact"] }
            name_hash = { path = "NAME", transforms = ["trim", "lowercase", { sha256 = { key = "test-pii-key" } }] }
            institution = { path = "INSTITUTION", transforms = ["trim"] }
            activity = "ACTIVITY"
            comment = { path = "COMMENT", transforms = ["trim"] }
            "#,
        );
        let mapped = mapper.map(&records[0]).expect("maps");

        let mut keyed = Hmac::<Sha256>::new_from_slice(b"test-pii-key").expect("any key length");
        keyed.update(b"jane q. public");
        let expected_hash = ::hex::encode(keyed.finalize().into_bytes());
        assert_eq!(
            Value::Object(mapped.clone()),
            json!({
                "id": "5f0c2a9e-77b1-4c3e-9d2a-1b6f0e8c4d21",
                "age": 42,
                "name_hash": expected_hash,
                "institution": "St. Mary's General Hospital",
                "activity": "cardiology follow-up",
                "comment": "Reports mild shortness of breath on exertion.\nNo change to medication; review again in two weeks.",
            })
        );
        // The name is nowhere in what would be stored.
        assert!(!Value::Object(mapped).to_string().contains("Jane"));

        // An age that is not a number takes the default.
        let unknown_age = PATIENT.replace("about 42 years", "N/A");
        let mapped = mapper.map(&parser.records(&unknown_age)[0]).expect("maps");
        assert_eq!(mapped["age"], json!(0));
    }

    #[test]
    fn several_documents_in_one_body() {
        // Lazy COMMENT, ended by a blank line or the end of the body.
        let parser = TextParser::new(
            r"(?s)ID: (?P<ID>[^\n]*)\nNAME: [^\n]*\nAGE: (?P<AGE>[^\n]*)\n.*?COMMENT: (?P<COMMENT>.*?)(?:\n\n|\n?\z)",
        )
        .expect("valid pattern");
        let body = format!("{PATIENT}\n{}", PATIENT.replace("about 42", "37"));
        let records = parser.records(&body);
        let ages: Vec<&Value> = records.iter().map(|record| &record["AGE"]).collect();
        assert_eq!(ages, [&json!("about 42 years"), &json!("37 years")]);
        assert!(records.iter().all(|record| {
            record["COMMENT"]
                .as_str()
                .is_some_and(|comment| comment.ends_with("in two weeks."))
        }));
    }

    #[test]
    fn absent_null_and_defaults() {
        let mapper = mapper(
            r#"
            [fields]
            missing = "nope"
            filled = { path = "nope", transforms = ["mac", { default = "unknown" }] }
            kept = { path = "present", transforms = [{ default = "unknown" }] }
            constant = { transforms = [{ default = 7 }] }
            null_stays = { path = "nothing", transforms = ["int", "sha256"] }
            "#,
        );
        let mapped = mapper
            .map(&json!({"present": "here", "nothing": null}))
            .expect("maps");
        assert_eq!(
            Value::Object(mapped),
            json!({
                "missing": null,
                "filled": "unknown",
                "kept": "here",
                "constant": 7,
                "null_stays": null,
            })
        );
        // Input that is not an object has no keys.
        let mapped = mapper.map(&json!([1, 2])).expect("maps");
        assert_eq!(mapped["kept"], json!("unknown"));
    }

    #[test]
    fn map_errors_name_the_field() {
        let mapper = mapper(
            r#"
            [fields]
            mac_address = { path = "mac", transforms = ["mac"] }
            age = { path = "age", transforms = ["int"] }
            label = { path = "label", transforms = ["lowercase"] }
            macs = { path = "$.nics[*]", transforms = ["mac"] }
            "#,
        );
        let good = json!({"mac": "12-5e-2e-db-58-99", "age": "42", "label": "A", "nics": []});
        mapper.map(&good).expect("valid record");
        let with = |key: &str, value: Value| {
            let mut raw = good.clone();
            raw[key] = value;
            mapper.map(&raw).expect_err("should fail")
        };
        assert_eq!(
            with("mac", json!("zz")),
            "mac_address: \"zz\" is not a MAC address"
        );
        assert_eq!(with("age", json!("N/A")), "age: \"N/A\" has no integer");
        assert_eq!(
            with("label", json!(42)),
            "label: lowercase needs text, got 42"
        );
        assert_eq!(
            with("nics", json!(["12:5e:2e:db:58:99", "bad"])),
            "macs: \"bad\" is not a MAC address"
        );
    }

    #[test]
    fn plain_and_keyed_hashes_differ() {
        let plain = mapper("[fields]\nh = { path = \"n\", transforms = [\"sha256\"] }");
        let keyed = mapper(
            "[fields]\nh = { path = \"n\", transforms = [{ sha256 = { key = \"k-test-pii-key\" } }] }",
        );
        let raw = json!({"n": "abc"});
        assert_eq!(
            plain.map(&raw).expect("maps")["h"],
            json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        let mut expected = Hmac::<Sha256>::new_from_slice(b"k-test-pii-key").expect("any key");
        expected.update(b"abc");
        assert_eq!(
            keyed.map(&raw).expect("maps")["h"],
            json!(::hex::encode(expected.finalize().into_bytes()))
        );
        // The key stays out of debug output.
        assert_eq!(format!("{keyed:?}"), "Mapper { fields: [\"h\"] }");
    }

    #[test]
    fn new_errors_name_the_field() {
        let error =
            |toml_text: &str| Mapper::new(&fields(toml_text)).expect_err("should be refused");
        assert!(
            error("[fields]\nage = \"$.[\"").starts_with("fields.age: bad JSONPath `$.[`: "),
            "{}",
            error("[fields]\nage = \"$.[\"")
        );
        assert_eq!(
            error("[fields]\nid = { path = \"ID\", transforms = [{ sha256 = { key = \"\" } }] }"),
            "fields.id: sha256 key is empty"
        );
        assert_eq!(
            error(
                "[fields]\nat = { path = \"t\", transforms = [{ timestamp = { format = \"%Y-%Q\" } }] }"
            ),
            "fields.at: bad timestamp format \"%Y-%Q\""
        );
        assert_eq!(
            error("[fields]\nx = { transforms = [\"trim\"] }"),
            "fields.x: no path, and no default to give a value"
        );
    }
}
