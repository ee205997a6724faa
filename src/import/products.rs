//! Streaming reader for product files: CSV with the columns `name,sku,description` (in any
//! order; quoted multi-line fields, CRLF or LF line ends), or JSON lines with those keys.
//!
//! The CSV and JSON-lines machinery (line numbers, rejections, bounded memory) is the one the
//! ERC-20 readers use; this module only says what a product row is.

use std::io::Read;

use serde::Deserialize;

use super::ethereum::{
    ColumnIndex, CsvRows, FileError, Format, JsonRows, Row, Rows, field, invalid_json, open_csv,
    optional_field,
};
use crate::store::nul;
use crate::store::products::ProductRecord;

/// Iterator over a (decompressed) reader's products. The CSV header is read at once, so a file
/// without a `sku` column fails before any row.
pub fn products<R: Read + Send + 'static>(
    reader: R,
    format: Format,
) -> Result<Rows<ProductRecord>, FileError> {
    match format {
        Format::Csv => csv_rows(reader, ProductRecord::new),
        Format::JsonLines => Ok(Box::new(JsonRows::new(reader, product_from_json))),
    }
}

/// What a CSV product reader makes of a row's fields (SKU, name, description).
type Keep<T> = fn(&str, Option<&str>, Option<&str>) -> Result<T, String>;

/// CSV rows through `keep`, which gets each row's validated fields borrowed from the row.
/// Both passes of an import read through here, so they accept and reject the same rows.
fn csv_rows<R, T>(reader: R, keep: Keep<T>) -> Result<Rows<T>, FileError>
where
    R: Read + Send + 'static,
    T: 'static,
{
    let (reader, header) = open_csv(reader)?;
    let mut columns = ColumnIndex::new(header);
    let sku = columns.required("sku");
    let name = columns.optional("name");
    let description = columns.optional("description");
    let header = columns.finish()?;
    Ok(Box::new(CsvRows::new(reader, header, move |row| {
        keep(
            field(row, sku, "sku")?,
            optional_field(row, name, "name")?,
            optional_field(row, description, "description")?,
        )
    })))
}

/// What the first pass keeps of a row: its SKU (the row is checked as the second pass will,
/// so a rejected row is not taken for a SKU's last).
fn scanned<R: Read + Send + 'static>(reader: R, format: Format) -> Result<Rows<String>, FileError> {
    match format {
        // No copy of the name and description: the first pass reads every byte of the file
        // while the database waits.
        Format::Csv => csv_rows(reader, |sku, name, description| {
            let (sku, _, _) = ProductRecord::fields(sku, name, description)?;
            Ok(sku.to_string())
        }),
        Format::JsonLines => Ok(Box::new(JsonRows::new(reader, |line| {
            product_from_json(line).map(|record| record.sku)
        }))),
    }
}

/// Where each SKU's last row is in a file: found by a first pass over the file, so the import
/// writes each product once, with its final values. Rows a later row of the same SKU replaces
/// are then only counted (as superseded), and importing the same file again changes nothing (a
/// streaming upsert would rewrite every SKU that repeats across batches twice, and move its
/// `updated_at`).
///
/// Memory follows the rows, compactly: the SKUs' text in one buffer plus 24 bytes per row
/// (about 22 MB for 500,000 rows), sorted once and searched by binary search.
#[derive(Debug, Default)]
pub struct LastRows {
    skus: String,
    /// Sorted by SKU, one entry per SKU: the last row's.
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    start: usize,
    len: usize,
    ordinal: u64,
}

/// What to do with one product row of the second pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Write,
    /// A later row of the file with the same SKU replaces it.
    Superseded,
}

impl LastRows {
    /// Reads the whole file once. A file-level error is returned as the import would report it.
    pub fn scan<R: Read + Send + 'static>(reader: R, format: Format) -> Result<Self, FileError> {
        let mut last = LastRows::default();
        let mut ordinal = 0u64;
        for row in scanned(reader, format)? {
            if let Row::Record { record: sku, .. } = row? {
                last.entries.push(Entry {
                    start: last.skus.len(),
                    len: sku.len(),
                    ordinal,
                });
                last.skus.push_str(&sku);
                ordinal += 1;
            }
        }
        let skus = &last.skus;
        let sku = |e: &Entry| &skus[e.start..e.start + e.len];
        // By SKU, the last row first; then keep that one of each SKU.
        last.entries
            .sort_unstable_by(|a, b| sku(a).cmp(sku(b)).then(b.ordinal.cmp(&a.ordinal)));
        last.entries.dedup_by(|later, kept| sku(later) == sku(kept));
        last.entries.shrink_to_fit();
        Ok(last)
    }

    /// How many distinct SKUs the file has.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The fate of the `ordinal`-th product row (rejections are not counted) of the same file.
    pub fn fate(&self, ordinal: u64, record: &ProductRecord) -> Fate {
        let found = self
            .entries
            .binary_search_by(|e| self.skus[e.start..e.start + e.len].cmp(record.sku.as_str()))
            .ok()
            .map(|i| self.entries[i]);
        match found {
            Some(e) if e.ordinal == ordinal => Fate::Write,
            Some(_) => Fate::Superseded,
            // The file changed between the passes: write what this pass read.
            None => Fate::Write,
        }
    }
}

#[derive(Deserialize)]
struct ProductItem {
    sku: Option<serde_json::Value>,
    name: Option<serde_json::Value>,
    description: Option<serde_json::Value>,
}

fn text_value(column: &str, value: Option<serde_json::Value>) -> Result<Option<String>, String> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(text)) => {
            nul::checked(column, &text)?;
            Ok(Some(text))
        }
        Some(serde_json::Value::Number(number)) => Ok(Some(number.to_string())),
        Some(other) => Err(format!("{column}: expected text, got {other}")),
    }
}

fn product_from_json(line: &str) -> Result<ProductRecord, String> {
    let item: ProductItem = serde_json::from_str(line).map_err(invalid_json)?;
    let sku = text_value("sku", item.sku)?.unwrap_or_default();
    let name = text_value("name", item.name)?;
    let description = text_value("description", item.description)?;
    ProductRecord::new(&sku, name.as_deref(), description.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::ethereum::{Rejection, Row};

    fn read(text: &str, format: Format) -> (Vec<(u64, ProductRecord)>, Vec<Rejection>) {
        let rows =
            products(std::io::Cursor::new(text.as_bytes().to_vec()), format).expect("header");
        let mut records = Vec::new();
        let mut rejected = Vec::new();
        for row in rows {
            match row.expect("no file error") {
                Row::Record { line, record } => records.push((line, record)),
                Row::Rejected(r) => rejected.push(r),
            }
        }
        (records, rejected)
    }

    fn product(sku: &str, name: Option<&str>, description: Option<&str>) -> ProductRecord {
        ProductRecord {
            sku: sku.into(),
            name: name.map(Into::into),
            description: description.map(Into::into),
        }
    }

    #[test]
    fn crlf_quoted_multi_line_rows_keep_their_lines() {
        let text = "name,sku,description\r\nBryce Jones,lay-raise-best-end,Art community.\r\nTheresa Taylor,step-onto,\"Choice should lead.\nOften stuff.\"\r\n ,blank-name,\r\nX,,no sku\r\nRoy,\"help-return-art\",\"Pm, daughter\"\r\n";
        let (records, rejected) = read(text, Format::Csv);
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
    fn only_the_last_row_of_a_sku_is_written() {
        let text = "name,sku,description\nA,s1,x\nB,s2,y\nA,s1,x\nC,s2,z\n,,bad\nD,s3,w\n";
        let last = LastRows::scan(std::io::Cursor::new(text.as_bytes().to_vec()), Format::Csv)
            .expect("scan");
        let (records, rejected) = read(text, Format::Csv);
        assert_eq!(rejected.len(), 1);
        let fates: Vec<(&str, Fate)> = records
            .iter()
            .enumerate()
            .map(|(i, (_, r))| (r.sku.as_str(), last.fate(i as u64, r)))
            .collect();
        assert_eq!(
            fates,
            vec![
                ("s1", Fate::Superseded),
                ("s2", Fate::Superseded),
                ("s1", Fate::Write),
                ("s2", Fate::Write),
                ("s3", Fate::Write),
            ]
        );
    }

    #[test]
    fn a_nul_character_rejects_its_row_naming_the_column() {
        let (records, rejected) = read(
            "{\"sku\": \"s1\", \"name\": \"A\\u0000\"}\n{\"sku\": \"s2\"}\n",
            Format::JsonLines,
        );
        assert_eq!(records.len(), 1);
        assert_eq!(rejected.len(), 1);
        assert_eq!(
            (rejected[0].line, rejected[0].reason.as_str()),
            (
                1,
                "name: contains a NUL character (\\u0000), which the database cannot store"
            )
        );
    }

    #[test]
    fn a_file_without_sku_is_a_file_error() {
        let error = products(
            std::io::Cursor::new(b"name,description\nA,B\n".to_vec()),
            Format::Csv,
        )
        .err()
        .expect("missing column");
        assert_eq!(
            error.to_string(),
            "the CSV header has no column sku; required: sku; found: name, description"
        );
    }

    #[test]
    fn json_lines_products() {
        let text = "{\"sku\":\" a \",\"name\":\"N\",\"description\":\"d\"}\n{\"name\":\"x\"}\n{\"sku\":7,\"name\":[1]}\n";
        let (records, rejected) = read(text, Format::JsonLines);
        assert_eq!(records, vec![(1, product("a", Some("N"), Some("d")))]);
        let reasons: Vec<(u64, &str)> = rejected
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            vec![(2, "sku: missing"), (3, "name: expected text, got [1]")]
        );
    }
}
