//! CSV rows and JSON lines through the ERC-20 token and transfer readers and the product reader
//! (`tributary import`), on arbitrary bytes, on the real sample files with one field mutated,
//! and on generated rows with quoted multi-line fields and CRLF line ends.

use std::io::Cursor;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::{Value, json};
use tributary::entities::Entity;
use tributary::entities::product::{Product, ProductRecord};
use tributary::entities::token::Token;
use tributary::entities::transfer::{Transfer, TransferRecord};
use tributary::formats::{FileError, Format, Rejection, Row, Rows};
use tributary::import::read::records;
use tributary::uint256::U256;

use super::{config, data};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    Tokens,
    Transfers,
    Products,
}

const READERS: [Reader; 3] = [Reader::Tokens, Reader::Transfers, Reader::Products];

impl Reader {
    /// The columns (CSV) or keys (JSON lines) this reader reads: the fields providers of the
    /// same entity map.
    fn columns(self) -> Vec<&'static str> {
        let fields = match self {
            Reader::Tokens => Token::FIELDS,
            Reader::Transfers => Transfer::FIELDS,
            Reader::Products => Product::FIELDS,
        };
        fields.iter().map(|f| f.name).collect()
    }
}

/// What a reader made of a file: each row's line and its record (as `Debug` text) or its
/// rejection reason; then the error that ended the file, if one did.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    rows: Vec<(u64, Result<String, String>)>,
    file_error: Option<String>,
}

fn outcome<T: std::fmt::Debug>(rows: Result<Rows<T>, FileError>) -> Outcome {
    let mut out = Outcome {
        rows: Vec::new(),
        file_error: None,
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(error) => {
            out.file_error = Some(error.to_string());
            return out;
        }
    };
    for row in rows {
        match row {
            Ok(Row::Record { line, record }) => out.rows.push((line, Ok(format!("{record:?}")))),
            Ok(Row::Rejected(Rejection { line, reason, .. })) => out.rows.push((line, Err(reason))),
            Err(error) => {
                out.file_error = Some(error.to_string());
                break;
            }
        }
    }
    out
}

fn read(reader: Reader, bytes: &[u8], format: Format) -> Outcome {
    let input = Cursor::new(bytes.to_vec());
    match reader {
        Reader::Tokens => outcome(records::<Token, _>(input, format)),
        Reader::Transfers => outcome(records::<Transfer, _>(input, format)),
        Reader::Products => outcome(records::<Product, _>(input, format)),
    }
}

/// Rows come in order with lines inside the file; every rejection names the column at fault or
/// says what is wrong with the line; a file error says where.
fn assert_says_what_and_where(reader: Reader, bytes: &[u8], out: &Outcome) {
    let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let mut previous = 0;
    for (line, result) in &out.rows {
        assert!(
            *line > previous && *line <= lines,
            "line {line} after line {previous} in a file of {lines} lines: {out:?}"
        );
        previous = *line;
        if let Err(reason) = result {
            let names_column = reader
                .columns()
                .iter()
                .chain(&["type"])
                .any(|c| reason.starts_with(&format!("{c}: ")));
            let says_why = ["missing column ", "row has ", "invalid JSON: ", "line is "]
                .iter()
                .any(|p| reason.starts_with(p));
            assert!(
                names_column || says_why,
                "{reader:?}: rejection reason names no column or cause: {reason:?}"
            );
        }
    }
    if let Some(error) = &out.file_error {
        let located = error.contains("line ")
            || error.starts_with("the file is empty")
            || error.starts_with("the CSV header has no column");
        assert!(located, "{reader:?}: file error without a place: {error:?}");
    }
}

/// Bytes that get past a header often enough: a real header, then separators, quotes, line
/// ends and field-like pieces.
fn csv_like() -> impl Strategy<Value = Vec<u8>> {
    let header = prop::sample::select(vec![
        "token_address,from_address,to_address,value,transaction_hash,log_index,block_number\n",
        "address,symbol,name,decimals,total_supply,block_number,block_timestamp\r\n",
        "name,sku,description\r\n",
        "\u{feff}SKU,Name\n",
        "",
    ]);
    let piece = prop::sample::select(vec![
        ",",
        ",",
        "\"",
        "\n",
        "\r\n",
        "\r",
        "0x",
        "f4eced2f682ce333f96f2d8966c613ded8fc95dd",
        "ff",
        "1",
        "-",
        " ",
        "\u{feff}",
        "é",
        "\0",
        "2023-05-02T12:19:59Z",
        "12/9/2016 18:35:23",
        "1683029999",
        "115792089237316195423570985008687907853269984665640564039457584007913129639936",
        "{\"sku\": ",
        "}",
        "[",
        "null",
    ]);
    (header, prop::collection::vec(piece, 0..60)).prop_map(|(header, pieces)| {
        let mut text = header.to_string();
        text.extend(pieces);
        text.into_bytes()
    })
}

/// Lines that look like JSON lines: pieces of real stream items, braces and odd values.
fn json_lines_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop::sample::select(vec![
        "{",
        "}",
        "\n",
        "\r\n",
        "[",
        "]",
        ",",
        ":",
        "\"value\"",
        "\"sku\"",
        "\"address\"",
        "\"type\"",
        "\"token_transfer\"",
        "\"0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2\"",
        "7786596450288373164569331648084",
        "-1",
        "1e400",
        "null",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "\u{feff}",
        " ",
    ]);
    prop::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat().into_bytes())
}

proptest! {
    #![proptest_config(config(96))]

    /// Whatever the bytes, every reader in both formats gives rows or a located error.
    #[test]
    fn any_bytes_give_rows_or_a_located_error(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..400),
            csv_like(),
            json_lines_like(),
        ]
    ) {
        for reader in READERS {
            for format in [Format::Csv, Format::JsonLines] {
                let out = read(reader, &bytes, format);
                assert_says_what_and_where(reader, &bytes, &out);
            }
        }
    }
}

/// A real sample file as records of fields (the header first), for mutation.
fn sample_records(path: &str, max_rows: usize) -> Vec<Vec<String>> {
    let text = data(path);
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .take(max_rows + 1)
        .map(|r| {
            r.unwrap_or_else(|e| panic!("{path}: {e}"))
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect()
}

/// The records as CSV text with `\n` line ends, quoted where needed.
fn csv_text(records: &[Vec<String>]) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    for record in records {
        writer.write_record(record).expect("write to memory");
    }
    writer.into_inner().expect("flush to memory")
}

const SAMPLES: [(&str, Reader); 5] = [
    ("ethereum/etl_token_transfers.csv", Reader::Transfers),
    ("ethereum/etl_tokens.csv", Reader::Tokens),
    ("ethereum/bigquery_export_tokens.csv", Reader::Tokens),
    (
        "ethereum/bigquery_export_token_transfers.csv",
        Reader::Transfers,
    ),
    ("products/products_first499_twice.csv", Reader::Products),
];

/// Field text: printable text, CSV's special characters, numbers beyond every integer type.
fn field_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,24}",
        "[ ,\"\n\r0-9a-fxX.:/-]{0,24}",
        Just(String::new()),
        "[0-9]{70,90}",
        "-?[0-9]{1,20}",
    ]
}

proptest! {
    #![proptest_config(config(96))]

    /// One field of one row of a real file replaced: the other rows read as before (lines
    /// shifted by the new field's line breaks), and the changed row is a record, or a
    /// rejection at its own line naming that column. A column the reader does not use
    /// changes nothing.
    #[test]
    fn a_mutated_field_is_rejected_at_its_line_naming_its_column(
        sample in 0..SAMPLES.len(),
        row in 1usize..40,
        column in 0usize..16,
        text in field_text(),
    ) {
        let (path, reader) = SAMPLES[sample];
        let mut records = sample_records(path, 40);
        let row = row.min(records.len() - 1);
        let column = column % records[row].len();
        let name = records[0][column].to_ascii_lowercase();
        let before = read(reader, &csv_text(&records), Format::Csv);
        let old = std::mem::replace(&mut records[row][column], text.clone());
        let after = read(reader, &csv_text(&records), Format::Csv);

        assert_eq!(after.file_error, None);
        assert_eq!(before.rows.len(), after.rows.len());
        let shift = text.matches('\n').count() as i64 - old.matches('\n').count() as i64;
        for (index, (old_row, new_row)) in before.rows.iter().zip(&after.rows).enumerate() {
            let changed_row = index + 1 == row;
            let expected_line = if index + 1 > row { old_row.0 as i64 + shift } else { old_row.0 as i64 };
            assert_eq!(new_row.0 as i64, expected_line, "line of row {index} in {path}");
            if !changed_row {
                assert_eq!(&old_row.1, &new_row.1, "row {index} of {path} changed");
                continue;
            }
            if !reader.columns().contains(&name.as_str()) {
                assert_eq!(&old_row.1, &new_row.1, "unused column {name} changed the row");
            } else if let (Ok(_), Err(reason)) = (&old_row.1, &new_row.1) {
                assert!(
                    reason.starts_with(&format!("{name}: ")),
                    "{path} row {row}, {name} = {text:?}: reason {reason:?} does not name the column"
                );
            }
        }
    }
}

/// A value for one key of a JSON stream item.
fn json_value() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        any::<bool>().prop_map(|b| Some(json!(b))),
        any::<i64>().prop_map(|n| Some(json!(n))),
        any::<f64>().prop_map(|x| Some(json!(x))),
        "\\PC{0,30}".prop_map(|s| Some(json!(s))),
        "0x[0-9a-fA-F]{0,66}".prop_map(|s| Some(json!(s))),
        Just(Some(json!([1, "a"]))),
        Just(Some(json!({"$numberLong": "5"}))),
        "[0-9]{20,90}".prop_map(|digits| Some(Value::Number(
            serde_json::from_str::<serde_json::Number>(&digits).unwrap_or_else(|_| 0.into())
        ))),
    ]
}

const STREAM_KEYS: [&str; 9] = [
    "type",
    "token_address",
    "from_address",
    "to_address",
    "value",
    "transaction_hash",
    "log_index",
    "block_number",
    "block_timestamp",
];

proptest! {
    #![proptest_config(config(96))]

    /// One key of one line of the real stream export replaced or removed: the line is a record
    /// or a rejection at its line naming that key; the other lines read as before.
    #[test]
    fn a_mutated_json_line_is_rejected_naming_its_key(
        line in 0usize..30,
        key in 0..STREAM_KEYS.len(),
        value in json_value(),
    ) {
        let text = data("ethereum/stream_token_transfers_17173049.jsonl");
        let mut lines: Vec<String> = text.lines().take(30).map(str::to_string).collect();
        let before = read(Reader::Transfers, lines.join("\n").as_bytes(), Format::JsonLines);
        // Raw values, so the other keys keep their numbers digit for digit.
        let mut item: std::collections::BTreeMap<String, Box<serde_json::value::RawValue>> =
            serde_json::from_str(&lines[line]).expect("the sample is JSON");
        let key = STREAM_KEYS[key];
        match &value {
            Some(value) => item.insert(
                key.to_string(),
                serde_json::value::RawValue::from_string(value.to_string()).expect("JSON"),
            ),
            None => item.remove(key),
        };
        lines[line] = serde_json::to_string(&item).expect("JSON");
        let after = read(Reader::Transfers, lines.join("\n").as_bytes(), Format::JsonLines);
        assert_eq!(before.rows.len(), after.rows.len());
        for (index, (old_row, new_row)) in before.rows.iter().zip(&after.rows).enumerate() {
            assert_eq!(old_row.0, new_row.0);
            if index != line {
                assert_eq!(&old_row.1, &new_row.1);
            } else if let Err(reason) = &new_row.1 {
                assert!(
                    reason.starts_with(&format!("{key}: "))
                        || reason == &format!("missing column {key}"),
                    "{key} = {value:?}: reason {reason:?} does not name the key"
                );
            }
        }
    }
}

/// Product text: anything printable, quotes, commas and line breaks (not `\r`, which a CRLF
/// file cannot hold at the end of its last field).
fn product_text() -> impl Strategy<Value = String> {
    prop_oneof!["\\PC{0,20}", "[ a-z,\"\n#'é]{0,20}"]
}

proptest! {
    #![proptest_config(config(96))]

    /// Products written as CSV (quoted where needed, LF or CRLF, or every field quoted) or as
    /// JSON lines read back as the same records, each at the line it starts on; a row without
    /// a SKU is rejected at its line as `sku: missing`.
    #[test]
    fn products_round_trip_with_multi_line_fields(
        rows in prop::collection::vec((product_text(), product_text(), product_text()), 0..12),
        crlf in any::<bool>(),
        quote_all in any::<bool>(),
    ) {
        let mut writer = csv::WriterBuilder::new()
            .terminator(if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
            .quote_style(if quote_all { csv::QuoteStyle::Always } else { csv::QuoteStyle::Necessary })
            .from_writer(Vec::new());
        writer.write_record(["name", "sku", "description"]).expect("write");
        let mut expected = Vec::new();
        let mut line = 2u64;
        for (name, sku, description) in &rows {
            writer.write_record([name, sku, description]).expect("write");
            let outcome = product(sku, name, description).map(|record| format!("{record:?}"));
            expected.push((line, outcome));
            line += 1 + [name, sku, description].iter().map(|t| t.matches('\n').count() as u64).sum::<u64>();
        }
        let bytes = writer.into_inner().expect("flush");
        let out = read(Reader::Products, &bytes, Format::Csv);
        assert_eq!(out.file_error, None);
        assert_eq!(out.rows, expected, "{}", String::from_utf8_lossy(&bytes));

        let lines: Vec<String> = rows
            .iter()
            .map(|(name, sku, description)| json!({"name": name, "sku": sku, "description": description}).to_string())
            .collect();
        let out = read(Reader::Products, lines.join("\n").as_bytes(), Format::JsonLines);
        let expected: Vec<(u64, Result<String, String>)> = rows
            .iter()
            .enumerate()
            .map(|(i, (name, sku, description))| {
                (i as u64 + 1, product(sku, name, description).map(|r| format!("{r:?}")))
            })
            .collect();
        assert_eq!(out.rows, expected);
    }
}

/// The product the entity makes of these fields, as a provider's mapping gives them.
fn product(sku: &str, name: &str, description: &str) -> Result<ProductRecord, String> {
    let fields = json!({"sku": sku, "name": name, "description": description});
    match fields {
        Value::Object(map) => Product::from_fields(&map, None),
        _ => unreachable!("an object"),
    }
}

fn transfer() -> impl Strategy<Value = TransferRecord> {
    (
        any::<[u8; 20]>(),
        any::<[u8; 20]>(),
        any::<[u8; 20]>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        0..=i32::MAX,
        0..=i64::MAX,
        prop::option::of(0i64..=32_503_680_000),
    )
        .prop_map(
            |(token, from, to, value, hash, log_index, block_number, seconds)| TransferRecord {
                token_address: token,
                from_address: from,
                to_address: to,
                value: U256::from_be_bytes(value),
                transaction_hash: hash,
                log_index,
                block_number,
                block_timestamp: seconds.and_then(|s| DateTime::<Utc>::from_timestamp(s, 0)),
            },
        )
}

proptest! {
    #![proptest_config(config(96))]

    /// Any transfer, written as an ethereum-etl CSV row or a stream JSON line (its value a JSON
    /// number of up to 78 digits), reads back exactly: addresses, hashes, uint256 values and
    /// timestamps are never rounded.
    #[test]
    fn transfers_round_trip_exactly(records in prop::collection::vec(transfer(), 1..8)) {
        let mut csv = String::from(
            "token_address,from_address,to_address,value,transaction_hash,log_index,block_number,block_timestamp\n",
        );
        let mut jsonl = String::new();
        for r in &records {
            let timestamp = r.block_timestamp.map(|t| t.timestamp().to_string()).unwrap_or_default();
            csv.push_str(&format!(
                "{},{},{},{},{},{},{},{}\n",
                hex::encode_prefixed(r.token_address),
                hex::encode_prefixed(r.from_address).to_uppercase().replacen("0X", "0x", 1),
                hex::encode_prefixed(r.to_address),
                r.value,
                hex::encode_prefixed(r.transaction_hash),
                r.log_index,
                r.block_number,
                timestamp,
            ));
            jsonl.push_str(&format!(
                "{{\"type\":\"token_transfer\",\"token_address\":\"{}\",\"from_address\":\"{}\",\"to_address\":\"{}\",\"value\":{},\"transaction_hash\":\"{}\",\"log_index\":{},\"block_number\":{},\"block_timestamp\":{}}}\n",
                hex::encode_prefixed(r.token_address),
                hex::encode_prefixed(r.from_address),
                hex::encode_prefixed(r.to_address),
                r.value,
                hex::encode_prefixed(r.transaction_hash),
                r.log_index,
                r.block_number,
                r.block_timestamp.map(|t| format!("\"{}\"", t.to_rfc3339())).unwrap_or("null".into()),
            ));
        }
        let expected: Vec<(u64, Result<String, String>)> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (i as u64 + 2, Ok(format!("{r:?}"))))
            .collect();
        assert_eq!(read(Reader::Transfers, csv.as_bytes(), Format::Csv).rows, expected);
        let expected: Vec<_> = expected.into_iter().map(|(line, r)| (line - 1, r)).collect();
        assert_eq!(read(Reader::Transfers, jsonl.as_bytes(), Format::JsonLines).rows, expected);
    }
}
