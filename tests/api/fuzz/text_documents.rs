//! Regex text documents: the patients documents (as the stand-in bucket serves them) through
//! the pattern and fields of the shipped `http-cursor` template, intact, with CRLF line ends,
//! mutated and arbitrary; and arbitrary patterns.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};
use tributary::providers::definition::FieldSpec;
use tributary::transform::{Mapper, TextParser};

use super::config;
use crate::common::mock_provider::{PATIENTS, patient_document};

/// The template's `parse.pattern` and `[fields]`, as shipped.
fn template() -> (TextParser, Mapper, Vec<String>) {
    #[derive(serde::Deserialize)]
    struct Parse {
        pattern: String,
    }
    #[derive(serde::Deserialize)]
    struct File {
        parse: Parse,
        fields: BTreeMap<String, FieldSpec>,
    }
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/providers/templates/http-cursor.toml.example"
    ))
    .expect("template");
    // The template's key comes from the environment; a run expands it before mapping.
    let text = text.replace("${PATIENTS_PII_KEY}", "fuzz-key");
    let file: File = toml::from_str(&text).expect("template TOML");
    let parser = TextParser::new(&file.parse.pattern).expect("template pattern");
    let mapper = Mapper::new(&file.fields).expect("template fields");
    (parser, mapper, file.fields.into_keys().collect())
}

/// An edit to a document: where (a fraction of its length) and what.
#[derive(Debug, Clone)]
enum Edit {
    Insert(f64, String),
    Delete(f64, usize),
    Crlf,
    Repeat,
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (
            0.0..1.0,
            "\\PC{0,12}|[\n\r: ]{1,4}|ID: |\nCOMMENT: |[0-9]{19,30}"
        )
            .prop_map(|(at, text)| Edit::Insert(at, text)),
        (0.0..1.0, 0usize..40).prop_map(|(at, n)| Edit::Delete(at, n)),
        Just(Edit::Crlf),
        Just(Edit::Repeat),
    ]
}

/// The char boundary nearest below `fraction` of `text`'s length.
fn boundary(text: &str, fraction: f64) -> usize {
    let mut at = (text.len() as f64 * fraction) as usize;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(mut text: String, edit: &Edit) -> String {
    match edit {
        Edit::Insert(at, insert) => {
            let at = boundary(&text, *at);
            text.insert_str(at, insert);
            text
        }
        Edit::Delete(at, n) => {
            let start = boundary(&text, *at);
            let end = boundary(
                &text,
                ((start + n) as f64 / text.len().max(1) as f64).min(1.0),
            );
            text.replace_range(start..end.max(start), "");
            text
        }
        Edit::Crlf => text.replace('\n', "\r\n"),
        Edit::Repeat => text.repeat(2),
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// An intact document, LF or CRLF, is one record with every capture, and maps to the same
    /// fields either way (the template trims).
    #[test]
    fn an_intact_document_is_one_record(id in 1..=PATIENTS as u32) {
        let (parser, mapper, _) = template();
        let document = patient_document(id);
        let records = parser.records(&document);
        assert_eq!(records.len(), 1);
        let record = &records[0];
        assert_eq!(record["id"], json!(id.to_string()));
        let comment = document.split("COMMENT: ").nth(1).expect("comment");
        assert_eq!(record["comment"], json!(comment));
        let mapped = mapper.map(record).expect("maps");
        assert_eq!(mapped["id"], json!(id.to_string()));
        assert!(mapped["age"].is_i64(), "{mapped:?}");
        assert!(!Value::Object(mapped.clone()).to_string().contains(&format!("\"{}\"", record["name"].as_str().unwrap_or_default())));

        let crlf = document.replace('\n', "\r\n");
        let records = parser.records(&crlf);
        assert_eq!(records.len(), 1);
        let crlf_mapped = mapper.map(&records[0]).expect("maps");
        for field in ["id", "name_hash", "age", "institution", "activity"] {
            assert_eq!(crlf_mapped[field], mapped[field], "{field}");
        }
    }

    /// A mutated document gives at most one record (COMMENT runs to the end), each capture a
    /// piece of the text, and maps to fields or to an error naming the field.
    #[test]
    fn a_mutated_document_maps_or_names_the_field(
        id in 1..=PATIENTS as u32,
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        let (parser, mapper, names) = template();
        let document = edits.iter().fold(patient_document(id), apply);
        let records = parser.records(&document);
        assert!(records.len() <= 1, "{records:?}");
        for record in &records {
            for value in record.as_object().expect("object").values() {
                assert!(document.contains(value.as_str().expect("captures are text")));
            }
            if let Err(error) = mapper.map(record) {
                assert!(
                    names.iter().any(|n| error.starts_with(&format!("{n}: "))),
                    "error names no field: {error}"
                );
            }
        }
    }

    /// Any text: records whose captures are pieces of the text, no panic.
    #[test]
    fn any_text_gives_captures_from_the_text(text in "\\PC{0,200}|[IDNAMECOT: \n\r0-9]{0,200}") {
        let (parser, _, _) = template();
        for record in parser.records(&text) {
            for value in record.as_object().expect("object").values() {
                assert!(text.contains(value.as_str().expect("captures are text")));
            }
        }
    }

    /// Any pattern compiles or is refused saying why; one with captures gives records from
    /// any text.
    #[test]
    fn any_pattern_compiles_or_says_why(
        pattern in "[(?P<>a-z)\\\\.*+{},0-9|\\[\\]^$sdw]{0,30}",
        text in "[a-z0-9 \n]{0,60}",
    ) {
        match TextParser::new(&pattern) {
            Ok(parser) => {
                let _ = parser.records(&text);
            }
            Err(error) => assert!(
                error.starts_with("bad text pattern: ") || error.contains("has no named captures"),
                "{error}"
            ),
        }
    }
}

#[test]
fn an_oversized_pattern_is_refused() {
    let error = TextParser::new("(?P<a>(?:a{1000}){1000})").expect_err("too big");
    assert!(error.starts_with("bad text pattern: "), "{error}");
}
