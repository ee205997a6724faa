//! An import file's rows as an entity kind's records: CSV columns found by name in the header,
//! JSON lines by key, each row through the kind's own `from_fields`.

use std::io::Read;

use serde_json::{Map, Value as Json};

use crate::entities::{Entity, Field, Fields, Scalar};
use crate::formats::csv::{self, CsvFields};
use crate::formats::jsonl::{JsonFields, JsonRows, raw_scalar};
use crate::formats::{FileError, Format, Rows};

/// The fields of one row of an import file, CSV or JSON lines.
pub enum FileFields<'a, 'r> {
    Csv(CsvFields<'a, 'r>),
    Json(&'a JsonFields<'r>),
}

impl Fields for FileFields<'_, '_> {
    fn scalar(&self, field: &Field) -> Result<Option<Scalar<'_>>, String> {
        match self {
            FileFields::Csv(fields) => fields.scalar(field),
            FileFields::Json(fields) => fields.scalar(field),
        }
    }

    fn object(&self) -> Result<Map<String, Json>, String> {
        match self {
            FileFields::Csv(fields) => fields.object(),
            FileFields::Json(fields) => fields.object(),
        }
    }
}

/// What a reader makes of each row's fields.
pub type Make<T> = fn(&FileFields<'_, '_>) -> Result<T, String>;

/// The rows of a (decompressed) file of kind `E`, each made by `make`. A CSV header is read at
/// once, so a file without a required column fails before any row.
pub fn rows<E: Entity, T: 'static, R: Read + Send + 'static>(
    reader: R,
    format: Format,
    make: Make<T>,
) -> Result<Rows<T>, FileError> {
    match format {
        Format::Csv => {
            let file = csv::open(reader)?;
            let columns = csv::Columns::resolve(&file.header, E::FIELDS)?;
            let used = columns.used();
            Ok(Box::new(file.rows(used, move |row| {
                make(&FileFields::Csv(row.fields(&columns)))
            })))
        }
        Format::JsonLines => {
            let etl_type = E::IMPORT.and_then(|rules| rules.etl_type);
            Ok(Box::new(JsonRows::new(reader, move |line| {
                let fields = JsonFields::parse(line)?;
                if let Some(expected) = etl_type {
                    check_type(&fields, expected)?;
                }
                make(&FileFields::Json(&fields))
            })))
        }
    }
}

/// The records of a file of kind `E`.
pub fn records<E: Entity, R: Read + Send + 'static>(
    reader: R,
    format: Format,
) -> Result<Rows<E::Record>, FileError> {
    rows::<E, _, _>(reader, format, |fields| E::from_fields(fields, None))
}

/// ethereum-etl marks each JSON line with what it is; a line of another kind is refused.
fn check_type(fields: &JsonFields<'_>, expected: &str) -> Result<(), String> {
    let Some(raw) = fields.get("type") else {
        return Ok(());
    };
    match raw_scalar("type", raw)? {
        None => Ok(()),
        Some(Scalar::Text(kind)) if kind == expected => Ok(()),
        Some(other) => Err(format!(
            "type: expected {expected:?}, got {:?}",
            other.as_str()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::product::{Product, ProductRecord};
    use crate::entities::token::{Token, TokenRecord};
    use crate::entities::transfer::{Transfer, TransferRecord};
    use crate::entities::{Address, TxHash, fields};
    use crate::formats::jsonl::{LONG_LINE_PAYLOAD, MAX_LINE_BYTES};
    use crate::formats::{Rejection, Row};
    use crate::uint256::{U256, parse_decimal};
    use chrono::{DateTime, Utc};

    fn data(name: &str) -> std::fs::File {
        let path = format!(
            "{}/../shared/data/ethereum/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::File::open(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
    }

    /// Records with their lines, and rejections; a file error fails the test.
    fn collect<T>(rows: Rows<T>) -> (Vec<(u64, T)>, Vec<Rejection>) {
        let mut records = Vec::new();
        let mut rejections = Vec::new();
        for row in rows {
            match row.expect("no file error") {
                Row::Record { line, record } => records.push((line, record)),
                Row::Rejected(rejection) => rejections.push(rejection),
            }
        }
        (records, rejections)
    }

    fn from_text<E: Entity>(text: &str, format: Format) -> (Vec<(u64, E::Record)>, Vec<Rejection>) {
        collect(
            records::<E, _>(std::io::Cursor::new(text.as_bytes().to_vec()), format).expect("opens"),
        )
    }

    /// Each rejection's line and reason.
    fn line_reasons(rejections: &[Rejection]) -> Vec<(u64, &str)> {
        rejections
            .iter()
            .map(|rejection| (rejection.line, rejection.reason.as_str()))
            .collect()
    }

    fn address(text: &str) -> Address {
        fields::address(Scalar::Text(text.into())).expect("test address")
    }

    fn hash(text: &str) -> TxHash {
        fields::tx_hash(Scalar::Text(text.into())).expect("test hash")
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test timestamp")
            .with_timezone(&Utc)
    }

    const ETL_HEADER: &str =
        "token_address,from_address,to_address,value,transaction_hash,log_index,block_number";
    const TOKEN: &str = "0xf4eced2f682ce333f96f2d8966c613ded8fc95dd";
    const FROM: &str = "0x1b63142628311395ceafeea5667e7c9026c862ca";
    const TO: &str = "0xac4df82fe37ea2187bc8c011a23d743b4f39019a";
    const TX: &str = "0x04cbcb236043d8fb7839e07bbc7f5eed692fb2ca55d897f1101eac3e3ad4fab8";

    #[test]
    fn format_from_file_name() {
        let format = |name: &str| Format::from_path(std::path::Path::new(name));
        assert_eq!(format("data/transfers.csv"), Ok(Format::Csv));
        assert_eq!(format("transfers.CSV.gz"), Ok(Format::Csv));
        assert_eq!(format("stream.jsonl"), Ok(Format::JsonLines));
        assert_eq!(format("stream.ndjson.gz"), Ok(Format::JsonLines));
        assert_eq!(
            format("expected_token_transfers.json"),
            Ok(Format::JsonLines)
        );
        let error = format("dump/transfers.txt.gz").expect_err("unknown");
        assert!(
            error.starts_with("dump/transfers.txt.gz: unknown file type"),
            "{error}"
        );
        assert!(error.contains(".csv, .jsonl, .ndjson or .json"), "{error}");
        assert!(format("csv").is_err());
        assert!(format("transfers.gz").is_err());
    }

    #[test]
    fn stream_export_is_exact() {
        let rows = records::<Transfer, _>(
            data("stream_token_transfers_17173049.jsonl"),
            Format::JsonLines,
        )
        .expect("opens");
        let (records, rejections) = collect(rows);
        assert_eq!(records.len(), 291);
        assert_eq!(rejections, Vec::new());

        let (line, first) = &records[0];
        assert_eq!(*line, 1);
        assert_eq!(
            *first,
            TransferRecord {
                token_address: address("0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"),
                from_address: address("0x6b75d8af000000e20b7a7ddf000ba900b4009a80"),
                to_address: address("0x7054b0f980a7eb5b3a6b3446f3c947d80162775c"),
                value: parse_decimal("7056176614974947328").expect("valid"),
                transaction_hash: hash(
                    "0xeb107a40ba73a50c79a9f2026e902d758d1c5e5e211f7a7db1b294f88f118dd0"
                ),
                log_index: 0,
                block_number: 17173049,
                block_timestamp: Some(utc("2023-05-02T12:19:59Z")),
            }
        );

        // The largest value in the file, beyond u64 (and beyond f64's exact range), digit for digit.
        let (line, largest) = records
            .iter()
            .max_by_key(|(_, record)| record.value)
            .expect("records");
        assert_eq!(*line, 33);
        assert!(largest.value > U256::from(u64::MAX));
        assert_eq!(largest.value.to_string(), "7786596450288373164569331648084");
        assert_eq!(largest.log_index, 81);
        // A value whose nearest f64 differs from it: only exact parsing keeps the trailing nines.
        assert!(
            records
                .iter()
                .any(|(_, record)| record.value.to_string() == "2594212437321327699999999999999")
        );
    }

    #[test]
    fn ethereum_etl_and_bigquery_csv() {
        let (transfers, rejections) = collect(
            records::<Transfer, _>(data("etl_token_transfers.csv"), Format::Csv).expect("opens"),
        );
        assert_eq!(rejections, Vec::new());
        assert_eq!(
            transfers[0],
            (
                2,
                TransferRecord {
                    token_address: address(TOKEN),
                    from_address: address(FROM),
                    to_address: address(TO),
                    value: U256::from(100000u32),
                    transaction_hash: hash(TX),
                    log_index: 0,
                    block_number: 483920,
                    block_timestamp: None,
                }
            )
        );
        assert_eq!(transfers.len(), 2);

        let (tokens, rejections) =
            collect(records::<Token, _>(data("etl_tokens.csv"), Format::Csv).expect("opens"));
        assert_eq!(rejections, Vec::new());
        assert_eq!(
            tokens,
            vec![(
                2,
                TokenRecord {
                    address: address("0x86fa049857e0209aa7d9e616f7eb3b3b78ecfdb0"),
                    symbol: Some("EOS".to_string()),
                    name: None,
                    decimals: Some(18),
                    total_supply: Some(
                        parse_decimal("1000000000000000000000000000").expect("valid")
                    ),
                    block_number: None,
                    block_timestamp: None,
                }
            )]
        );

        let (transfers, rejections) = collect(
            records::<Transfer, _>(data("bigquery_export_token_transfers.csv"), Format::Csv)
                .expect("opens"),
        );
        assert_eq!((transfers.len(), rejections.len()), (500, 0));
        // "12/9/2016 1:50:03": the spreadsheet drops the hour's leading zero.
        assert_eq!(transfers[3].0, 5);
        assert_eq!(
            transfers[3].1.block_timestamp,
            Some(utc("2016-12-09T01:50:03Z"))
        );
        assert_eq!(transfers[499].0, 501);

        let (tokens, rejections) = collect(
            records::<Token, _>(data("bigquery_export_tokens.csv"), Format::Csv).expect("opens"),
        );
        // Every row is usable: empty fields become None, and every total_supply present is a
        // whole number (the largest is exactly 2^256-1).
        assert_eq!((tokens.len(), rejections.len()), (500, 0));
        let count = |test: fn(&TokenRecord) -> bool| tokens.iter().filter(|(_, t)| test(t)).count();
        assert_eq!(count(|token| token.symbol.is_none()), 239);
        assert_eq!(count(|token| token.name.is_none()), 219);
        assert_eq!(count(|token| token.decimals.is_none()), 290);
        assert_eq!(count(|token| token.decimals == Some(0)), 210);
        assert_eq!(count(|token| token.total_supply.is_none()), 97);
        let at = |line: u64| &tokens.iter().find(|(at, _)| *at == line).expect("line").1;
        assert_eq!(at(291).total_supply, Some(U256::MAX));
        // Names are trimmed, otherwise kept as given.
        assert_eq!(at(106).name.as_deref(), Some("Abtract Ukraine"));
        assert_eq!(at(315).symbol.as_deref(), Some("🦄"));
    }

    #[test]
    fn bad_csv_rows_are_rejected_and_good_rows_around_them_kept() {
        let good = format!("{TOKEN},{FROM},{TO},5,{TX},0,100");
        let text = [
            ETL_HEADER.to_string(),
            good.clone(),
            format!("{TOKEN},0x1234,{TO},5,{TX},1,100"),
            format!("{TOKEN},{FROM},{TO},-5,{TX},2,100"),
            format!("{TOKEN},{FROM},{TO},five,{TX},3,100"),
            format!("{TOKEN},{FROM},{TO}"),
            format!("{TOKEN},{FROM},{TO},5,{TX},4,100,extra"),
            format!("{TOKEN},{FROM},{TO},5,{TX},-1,100"),
            format!("{TOKEN},{FROM},{TO},5,{TX},5,"),
            good.clone(),
        ]
        .join("\n");
        let (records, rejections) = from_text::<Transfer>(&text, Format::Csv);
        assert_eq!(
            records.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
            vec![2, 10]
        );
        let reasons = line_reasons(&rejections);
        assert_eq!(
            reasons,
            vec![
                (
                    3,
                    "from_address: expected 20 bytes (40 hex digits), got 4 digits in \"0x1234\""
                ),
                (4, "value: negative number -5"),
                (5, "value: \"five\" is not a whole decimal number"),
                (6, "missing column value"),
                (7, "row has 8 fields but the header has 7"),
                (
                    8,
                    "log_index: expected a whole number from 0 to 2147483647, got \"-1\""
                ),
                (9, "block_number: missing"),
            ]
        );
        assert_eq!(
            rejections[0].payload,
            format!("{TOKEN},0x1234,{TO},5,{TX},1,100")
        );
        assert_eq!(rejections[3].payload, format!("{TOKEN},{FROM},{TO}"));
    }

    #[test]
    fn csv_columns_by_name_in_any_order() {
        // A byte-order mark, CRLF line ends, upper-case names, extra columns, and a quoted
        // multi-line field: the rows after it still get the lines where they start.
        let text = format!(
            "\u{feff}Note,BLOCK_NUMBER,block_timestamp,log_index,transaction_hash,value,to_address,\
             from_address,token_address\r\n\
             \"two\r\nlines\",7,2023-05-02 12:19:59 UTC,3,{TX},12,{TO},{FROM},{TOKEN}\r\n\
             plain,8,,4,{TX},zz,{TO},{FROM},{TOKEN}\r\n\
             \"a, b\",9,1683029999,5,{TX},13,{TO},{FROM},{TOKEN}\r\n"
        );
        let (records, rejections) = from_text::<Transfer>(&text, Format::Csv);
        assert_eq!(
            records
                .iter()
                .map(|(line, record)| (
                    *line,
                    record.block_number,
                    record.log_index,
                    record.value.to_string(),
                    record.block_timestamp
                ))
                .collect::<Vec<_>>(),
            vec![
                (2, 7, 3, "12".to_string(), Some(utc("2023-05-02T12:19:59Z"))),
                (5, 9, 5, "13".to_string(), Some(utc("2023-05-02T12:19:59Z"))),
            ]
        );
        assert_eq!(records[0].1.token_address, address(TOKEN));
        assert_eq!(rejections.len(), 1);
        assert_eq!(rejections[0].line, 4);
        assert_eq!(
            rejections[0].reason,
            "value: \"zz\" is not a whole decimal number"
        );
    }

    #[test]
    fn csv_lines_count_blank_lines_and_crlf() {
        let row = |log_index: u32| format!("{TOKEN},{FROM},{TO},5,{TX},{log_index},100");
        for end in ["\n", "\r\n"] {
            let text = format!(
                "{ETL_HEADER}{end}{end}{}{end}{end}{end}{}{end}\"x\",{}{end}{}",
                row(0),
                row(1),
                row(2),
                row(3)
            );
            let (records, rejections) = from_text::<Transfer>(&text, Format::Csv);
            assert_eq!(
                records
                    .iter()
                    .map(|(line, record)| (*line, record.log_index))
                    .collect::<Vec<_>>(),
                vec![(3, 0), (6, 1), (8, 3)],
                "{end:?}"
            );
            assert_eq!(rejections.len(), 1);
            assert_eq!(rejections[0].line, 7);
            assert_eq!(
                rejections[0].reason,
                "row has 8 fields but the header has 7"
            );
            assert_eq!(rejections[0].payload, format!("x,{}", row(2)));
        }
    }

    #[test]
    fn csv_payload_is_quoted_where_needed() {
        let text =
            format!("address,symbol,name,decimals\n{TOKEN},\"A,B\",\"say \"\"hi\"\"\",300\n");
        let (records, rejections) = from_text::<Token>(&text, Format::Csv);
        assert!(records.is_empty());
        assert_eq!(
            rejections,
            vec![Rejection {
                line: 2,
                reason: "decimals: expected a whole number from 0 to 255, got \"300\"".to_string(),
                payload: format!("{TOKEN},\"A,B\",\"say \"\"hi\"\"\",300"),
            }]
        );
    }

    #[test]
    fn csv_field_that_is_not_utf8_is_rejected() {
        let mut bytes = format!("address,symbol\n{TOKEN},").into_bytes();
        bytes.extend_from_slice(b"\xff\xfe\n");
        bytes.extend_from_slice(format!("{TOKEN},OK\n").as_bytes());
        let rows = records::<Token, _>(std::io::Cursor::new(bytes), Format::Csv).expect("opens");
        let (records, rejections) = collect(rows);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].1.symbol.as_deref(), Some("OK"));
        assert_eq!(rejections[0].line, 2);
        assert_eq!(rejections[0].reason, "symbol: not valid UTF-8");
    }

    #[test]
    fn header_without_a_required_column_is_a_file_error() {
        let header =
            "token_address,from_address,to_address,transaction_hash,log_index,block_number";
        let Err(error) = records::<Transfer, _>(
            std::io::Cursor::new(header.as_bytes().to_vec()),
            Format::Csv,
        ) else {
            panic!("a header without value must fail");
        };
        assert!(
            matches!(error, FileError::MissingColumns { ref missing, .. } if missing == &["value"])
        );
        let message = error.to_string();
        assert!(
            message.starts_with("the CSV header has no column value; required: token_address,"),
            "{message}"
        );
        assert!(
            message.ends_with(&format!("found: {}", header.replace(',', ", "))),
            "{message}"
        );
        let Err(error) = records::<Token, _>(std::io::Cursor::new(Vec::new()), Format::Csv) else {
            panic!("an empty file must fail");
        };
        assert!(matches!(error, FileError::NoHeader));
        let Err(error) = records::<Product, _>(
            std::io::Cursor::new(b"name,description\nA,B\n".to_vec()),
            Format::Csv,
        ) else {
            panic!("a product file without sku must fail");
        };
        assert_eq!(
            error.to_string(),
            "the CSV header has no column sku; required: sku; found: name, description"
        );
    }

    fn json_transfer(value: &str, log_index: u32) -> String {
        format!(
            "{{\"type\": \"token_transfer\", \"token_address\": \"{TOKEN}\", \"from_address\": \
             \"{FROM}\", \"to_address\": \"{TO}\", \"value\": {value}, \"transaction_hash\": \
             \"{TX}\", \"log_index\": {log_index}, \"block_number\": 17173049, \
             \"block_timestamp\": 1683029999, \"item_id\": \"x\"}}"
        )
    }

    #[test]
    fn bad_json_lines_are_rejected_and_good_lines_around_them_kept() {
        let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        let lines = [
            json_transfer("1", 0),
            String::new(),
            json_transfer("1.5", 1),
            json_transfer("-5", 2),
            json_transfer("1e21", 3),
            json_transfer("\"1000000000000000000000000000000\"", 4),
            json_transfer("\"lots\"", 5),
            json_transfer(max, 6),
            json_transfer(&format!("{max}0"), 7),
            "{\"type\": \"block\", \"number\": 1}".to_string(),
            "{\"type\": \"token_transfer\", \"token_address\": ".to_string(),
            json_transfer("1", 8).replace("\"value\": 1, ", ""),
            json_transfer("null", 9),
            json_transfer("2", 10).replace("\"log_index\": 10", "\"log_index\": \"10\""),
            json_transfer("3", 11).replace("1683029999", "\"12/9/2016 18:35:23\""),
            json_transfer("4", 12).replace(FROM, "0x1234"),
            json_transfer("5", 13).replace(&format!("\"{TO}\""), "7"),
            "   ".to_string(),
        ];
        let (records, rejections) = from_text::<Transfer>(&lines.join("\n"), Format::JsonLines);
        assert_eq!(
            records
                .iter()
                .map(|(line, record)| (*line, record.log_index, record.value.to_string()))
                .collect::<Vec<_>>(),
            vec![
                (1, 0, "1".to_string()),
                (6, 4, "1000000000000000000000000000000".to_string()),
                (8, 6, max.to_string()),
                (14, 10, "2".to_string()),
                (15, 11, "3".to_string()),
            ]
        );
        assert_eq!(
            records[4].1.block_timestamp,
            Some(utc("2016-12-09T18:35:23Z"))
        );
        let reasons = line_reasons(&rejections);
        assert_eq!(
            reasons,
            [
                (3, "value: \"1.5\" is not a whole decimal number"),
                (4, "value: negative number -5"),
                (5, "value: \"1e21\" is not a whole decimal number"),
                (7, "value: \"lots\" is not a whole decimal number"),
                (9, &*format!("value: {max}0 exceeds 2^256-1")),
                (10, "type: expected \"token_transfer\", got \"block\""),
                (
                    11,
                    "invalid JSON: EOF while parsing a value at line 1 column 43"
                ),
                (12, "value: missing"),
                (13, "value: missing"),
                (
                    16,
                    "from_address: expected 20 bytes (40 hex digits), got 4 digits in \"0x1234\""
                ),
                (17, "to_address: expected a string, got 7"),
            ]
        );
        assert_eq!(rejections[0].payload, lines[2]);
    }

    #[test]
    fn json_token_items() {
        let lines = [
            format!(
                "\u{feff}{{\"type\": \"token\", \"address\": \"{TOKEN}\", \"symbol\": \" EOS \", \
                 \"name\": \"EOS\\u00a0Token\", \"decimals\": 18, \"total_supply\": \
                 1000000000000000000000000000, \"block_number\": 483920, \"block_timestamp\": \
                 1683029999}}"
            ),
            format!(
                "{{\"type\": \"token\", \"address\": \"{TOKEN}\", \"symbol\": null, \"name\": \"\", \
                 \"decimals\": \"6\", \"total_supply\": \"42\", \"block_number\": null}}"
            ),
            format!("{{\"address\": \"{TOKEN}\"}}"),
            format!("{{\"type\": \"token_transfer\", \"address\": \"{TOKEN}\"}}"),
            format!("{{\"type\": \"token\", \"address\": \"{TOKEN}\", \"decimals\": 256}}"),
            format!("{{\"type\": \"token\", \"address\": \"{TOKEN}\", \"total_supply\": 1.0}}"),
            format!("{{\"type\": \"token\", \"address\": \"{TOKEN}\", \"symbol\": 7}}"),
            format!("{{\"type\": \"token\", \"address\": \"{TOKEN}\", \"name\": [\"x\"]}}"),
            "{\"type\": \"token\", \"symbol\": \"X\"}".to_string(),
            "\"token\"".to_string(),
        ];
        let (records, rejections) = from_text::<Token>(&lines.join("\n"), Format::JsonLines);
        assert_eq!(
            records.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(
            records[0].1,
            TokenRecord {
                address: address(TOKEN),
                symbol: Some("EOS".to_string()),
                name: Some("EOS\u{a0}Token".to_string()),
                decimals: Some(18),
                total_supply: Some(parse_decimal("1000000000000000000000000000").expect("valid")),
                block_number: Some(483920),
                block_timestamp: Some(utc("2023-05-02T12:19:59Z")),
            }
        );
        assert_eq!(
            (
                records[1].1.symbol.as_deref(),
                records[1].1.name.as_deref(),
                records[1].1.decimals
            ),
            (None, None, Some(6))
        );
        let reasons = line_reasons(&rejections);
        assert_eq!(
            reasons,
            vec![
                (4, "type: expected \"token\", got \"token_transfer\""),
                (
                    5,
                    "decimals: expected a whole number from 0 to 255, got \"256\""
                ),
                (6, "total_supply: \"1.0\" is not a whole decimal number"),
                (7, "symbol: expected a string, got 7"),
                (8, "name: expected text or a number, got an array"),
                (9, "address: missing"),
                (10, "line is not a JSON object"),
            ]
        );
    }

    #[test]
    fn json_array_file_is_a_file_error() {
        let text = "\n[\n  {\"type\": \"token\"}\n]\n";
        let mut rows = records::<Token, _>(
            std::io::Cursor::new(text.as_bytes().to_vec()),
            Format::JsonLines,
        )
        .expect("opens");
        match rows.next() {
            Some(Err(FileError::JsonArray { line: 2 })) => {}
            other => panic!("expected a JSON array error, got {other:?}"),
        }
        assert!(rows.next().is_none());
    }

    #[test]
    fn over_long_and_non_utf8_json_lines_are_skipped() {
        let mut bytes = json_transfer("1", 0).into_bytes();
        bytes.push(b'\n');
        bytes.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
        bytes.push(b'\n');
        bytes.extend_from_slice(b"{\"type\": \"\xff\"}\r\n");
        bytes.extend_from_slice(json_transfer("2", 1).as_bytes());
        let rows =
            records::<Transfer, _>(std::io::Cursor::new(bytes), Format::JsonLines).expect("opens");
        let (records, rejections) = collect(rows);
        assert_eq!(
            records.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
            vec![1, 4]
        );
        assert_eq!(rejections.len(), 2);
        assert_eq!(rejections[0].line, 2);
        assert!(
            rejections[0]
                .reason
                .starts_with("line is longer than 1048576 bytes")
        );
        assert_eq!(rejections[0].payload.len(), LONG_LINE_PAYLOAD);
        assert_eq!(rejections[1].line, 3);
        assert_eq!(rejections[1].reason, "line is not valid UTF-8");
    }

    /// Yields its bytes, then fails.
    struct FailingReader(std::io::Cursor<Vec<u8>>);

    impl Read for FailingReader {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(std::io::Error::other("disk on fire")),
                read => Ok(read),
            }
        }
    }

    #[test]
    fn read_errors_end_the_file_with_the_line() {
        let text = format!("{}\n{}\n", json_transfer("1", 0), json_transfer("2", 1));
        let reader = FailingReader(std::io::Cursor::new(text.into_bytes()));
        let mut rows = records::<Transfer, _>(reader, Format::JsonLines).expect("opens");
        assert!(matches!(rows.next(), Some(Ok(Row::Record { line: 1, .. }))));
        assert!(matches!(rows.next(), Some(Ok(Row::Record { line: 2, .. }))));
        match rows.next() {
            Some(Err(error @ FileError::Io { line: 3, .. })) => {
                assert_eq!(error.to_string(), "reading line 3: disk on fire");
            }
            other => panic!("expected an I/O error, got {other:?}"),
        }
        assert!(rows.next().is_none());

        let text = format!("{ETL_HEADER}\n{TOKEN},{FROM},{TO},5,{TX},0,100\n");
        let reader = FailingReader(std::io::Cursor::new(text.into_bytes()));
        let mut rows = records::<Transfer, _>(reader, Format::Csv).expect("opens");
        assert!(matches!(rows.next(), Some(Ok(Row::Record { line: 2, .. }))));
        assert!(matches!(rows.next(), Some(Err(FileError::Io { .. }))));
        assert!(rows.next().is_none());
    }

    fn product(sku: &str, name: Option<&str>, description: Option<&str>) -> ProductRecord {
        ProductRecord {
            sku: sku.into(),
            name: name.map(Into::into),
            description: description.map(Into::into),
        }
    }

    #[test]
    fn crlf_quoted_multi_line_product_rows_keep_their_lines() {
        let text = "name,sku,description\r\nBryce Jones,lay-raise-best-end,Art community.\r\nTheresa Taylor,step-onto,\"Choice should lead.\nOften stuff.\"\r\n ,blank-name,\r\nX,,no sku\r\nRoy,\"help-return-art\",\"Pm, daughter\"\r\n";
        let (records, rejected) = from_text::<Product>(text, Format::Csv);
        assert_eq!(
            records,
            vec![
                (
                    2,
                    product(
                        "lay-raise-best-end",
                        Some("Bryce Jones"),
                        Some("Art community.")
                    )
                ),
                (
                    3,
                    product(
                        "step-onto",
                        Some("Theresa Taylor"),
                        Some("Choice should lead.\nOften stuff.")
                    )
                ),
                (5, product("blank-name", None, None)),
                (
                    7,
                    product("help-return-art", Some("Roy"), Some("Pm, daughter"))
                ),
            ]
        );
        assert_eq!(
            rejected,
            vec![Rejection {
                line: 6,
                reason: "sku: missing".into(),
                payload: "X,,no sku".into(),
            }]
        );
    }

    #[test]
    fn product_json_lines_and_nul_characters() {
        let text = "{\"sku\":\" a \",\"name\":\"N\",\"description\":\"d\"}\n{\"name\":\"x\"}\n{\"sku\":7,\"name\":[1]}\n{\"sku\": \"s1\", \"name\": \"A\\u0000\"}\n";
        let (records, rejected) = from_text::<Product>(text, Format::JsonLines);
        assert_eq!(records, vec![(1, product("a", Some("N"), Some("d")))]);
        let reasons: Vec<(u64, &str)> = rejected
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            vec![
                (2, "sku: missing"),
                (3, "name: expected text or a number, got an array"),
                (
                    4,
                    "name: contains a NUL character (\\u0000), which the database cannot store"
                ),
            ]
        );
    }
}
