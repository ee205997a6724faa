//! Streaming readers for ERC-20 token and transfer files: ethereum-etl CSV and JSON-lines exports
//! and BigQuery `crypto_ethereum` CSV exports.
//!
//! Each reader turns one input row into one [`Row`]: a record, or a [`Rejection`] that says where
//! and why. Memory stays bounded by the longest row, whatever the file size: CSV rows are read into
//! one reused `ByteRecord`, JSON lines into one reused buffer. Only problems with the file as a
//! whole (I/O, a header without a required column) end the iteration, as a [`FileError`].

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::ethereum::{TokenRecord, TransferRecord, parse_address, parse_tx_hash};
use crate::store::nul;
use crate::timestamps::parse_timestamp;
use crate::uint256::{U256, parse_decimal};

/// The longest JSON line we hold in memory; longer lines are rejected and skipped. Real lines are
/// under 1 KB, so this only trips on files that are not JSON lines at all.
const MAX_LINE_BYTES: usize = 1 << 20;
/// How much of an over-long line is kept as the rejection's payload.
const LONG_LINE_PAYLOAD: usize = 1024;
/// Read buffer: large enough that the per-read overhead disappears on million-row files.
const BUFFER_BYTES: usize = 1 << 16;

/// The shape of an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    /// From the file name, ignoring a trailing `.gz`: `.csv` → Csv; `.jsonl`, `.ndjson`, `.json` → JsonLines.
    /// Error names the file and the accepted extensions.
    pub fn from_path(path: &Path) -> Result<Format, String> {
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        let extension = name.rsplit_once('.').map(|(_, extension)| extension);
        match extension {
            Some("csv") => Ok(Format::Csv),
            Some("jsonl" | "ndjson" | "json") => Ok(Format::JsonLines),
            _ => Err(format!(
                "{}: unknown file type; expected a name ending in .csv, .jsonl, .ndjson or .json \
                 (each optionally followed by .gz)",
                path.display()
            )),
        }
    }
}

/// A row that could not become a record: 1-based line where it starts, why, and the row as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub line: u64,
    pub reason: String,
    pub payload: String,
}

/// One input row's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row<T> {
    Record { line: u64, record: T },
    Rejected(Rejection),
}

/// A problem with the file as a whole (not one row): I/O, a header without a required column, etc.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("reading line {line}: {source}")]
    Io {
        line: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("CSV error at line {line}: {message}")]
    Csv { line: u64, message: String },
    #[error("the file is empty: expected a CSV header line naming the columns")]
    NoHeader,
    #[error(
        "the CSV header has no column {}; required: {}; found: {}",
        .missing.join(", "), .required.join(", "), .found.join(", ")
    )]
    MissingColumns {
        missing: Vec<&'static str>,
        required: Vec<&'static str>,
        found: Vec<String>,
    },
    #[error("line {line} starts a JSON array; expected JSON lines (one object per line)")]
    JsonArray { line: u64 },
}

/// Iterator over one file's rows; a fatal problem is its last item.
pub type Rows<T> = Box<dyn Iterator<Item = Result<Row<T>, FileError>> + Send>;

/// Iterators over a (decompressed) reader. Each item is one row; a fatal problem ends the iteration
/// with `Err`. The header (CSV) is read when the function is called, so a missing required column
/// is reported before any row.
pub fn transfers<R: Read + Send + 'static>(
    reader: R,
    format: Format,
) -> Result<Rows<TransferRecord>, FileError> {
    match format {
        Format::Csv => {
            let (reader, header) = open_csv(reader)?;
            let mut columns = ColumnIndex::new(header);
            let resolved = TransferColumns {
                token_address: columns.required("token_address"),
                from_address: columns.required("from_address"),
                to_address: columns.required("to_address"),
                value: columns.required("value"),
                transaction_hash: columns.required("transaction_hash"),
                log_index: columns.required("log_index"),
                block_number: columns.required("block_number"),
                block_timestamp: columns.optional("block_timestamp"),
            };
            let header = columns.finish()?;
            Ok(Box::new(CsvRows::new(reader, header, move |row| {
                transfer_from_csv(&resolved, row)
            })))
        }
        Format::JsonLines => Ok(Box::new(JsonRows::new(reader, transfer_from_json))),
    }
}

/// See [`transfers`]; tokens need only an `address` column.
pub fn tokens<R: Read + Send + 'static>(
    reader: R,
    format: Format,
) -> Result<Rows<TokenRecord>, FileError> {
    match format {
        Format::Csv => {
            let (reader, header) = open_csv(reader)?;
            let mut columns = ColumnIndex::new(header);
            let resolved = TokenColumns {
                address: columns.required("address"),
                symbol: columns.optional("symbol"),
                name: columns.optional("name"),
                decimals: columns.optional("decimals"),
                total_supply: columns.optional("total_supply"),
                block_number: columns.optional("block_number"),
                block_timestamp: columns.optional("block_timestamp"),
            };
            let header = columns.finish()?;
            Ok(Box::new(CsvRows::new(reader, header, move |row| {
                token_from_csv(&resolved, row)
            })))
        }
        Format::JsonLines => Ok(Box::new(JsonRows::new(reader, token_from_json))),
    }
}

// ---------------------------------------------------------------------------------------------
// Field parsing shared by both formats.

fn parse_uint(column: &str, text: &str) -> Result<U256, String> {
    parse_decimal(text).map_err(|error| format!("{column}: {error}"))
}

/// A whole number from 0 to `max`: block numbers, log indexes, decimals.
fn parse_count(column: &str, text: &str, max: i64) -> Result<i64, String> {
    match text.trim().parse::<i64>() {
        Ok(number) if (0..=max).contains(&number) => Ok(number),
        _ => Err(format!(
            "{column}: expected a whole number from 0 to {max}, got {text:?}"
        )),
    }
}

fn parse_log_index(text: &str) -> Result<i32, String> {
    let number = parse_count("log_index", text, i64::from(i32::MAX))?;
    i32::try_from(number).map_err(|_| format!("log_index: {number} is out of range"))
}

fn parse_block_number(text: &str) -> Result<i64, String> {
    parse_count("block_number", text, i64::MAX)
}

fn parse_decimals(text: &str) -> Result<i32, String> {
    let number = parse_count("decimals", text, 255)?;
    i32::try_from(number).map_err(|_| format!("decimals: {number} is out of range"))
}

fn parse_block_timestamp(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    parse_timestamp(text).map_err(|error| format!("block_timestamp: {error}"))
}

/// Symbols and names: trimmed, and absent when nothing is left.
fn text_or_none(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

// ---------------------------------------------------------------------------------------------
// CSV

pub(super) fn open_csv<R: Read>(reader: R) -> Result<(csv::Reader<R>, Vec<String>), FileError> {
    // Flexible, so a short or long row becomes one rejection instead of ending the file. Only
    // `\n` ends a row: with the default (CR, LF or CRLF), a CRLF row ends at its `\r`, the `\n` is
    // counted with the next row, and every row of a CRLF file would report the line before its own.
    // The `\r` left at the end of the last field is dropped in `field`.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .buffer_capacity(BUFFER_BYTES)
        .from_reader(reader);
    let header = match reader.byte_headers() {
        Ok(header) => header,
        Err(error) => return Err(csv_error(error, 1)),
    };
    let names: Vec<String> = header
        .iter()
        .map(|name| {
            let name = String::from_utf8_lossy(name);
            // Spreadsheets put a byte-order mark before the first column name.
            let name = name.trim_start_matches('\u{feff}').trim();
            name.to_ascii_lowercase()
        })
        .collect();
    if names.iter().all(|name| name.is_empty()) {
        return Err(FileError::NoHeader);
    }
    Ok((reader, names))
}

fn csv_error(error: csv::Error, line: u64) -> FileError {
    let line = error.position().map_or(line, |position| position.line());
    if error.is_io_error() {
        if let csv::ErrorKind::Io(source) = error.into_kind() {
            return FileError::Io { line, source };
        }
        return FileError::Csv {
            line,
            message: "I/O error".to_string(),
        };
    }
    FileError::Csv {
        line,
        message: error.to_string(),
    }
}

/// Resolves column names to positions once per file, collecting every missing required column.
pub(super) struct ColumnIndex {
    header: Vec<String>,
    required: Vec<&'static str>,
    missing: Vec<&'static str>,
    used: Vec<(usize, &'static str)>,
}

impl ColumnIndex {
    pub(super) fn new(header: Vec<String>) -> Self {
        ColumnIndex {
            header,
            required: Vec::new(),
            missing: Vec::new(),
            used: Vec::new(),
        }
    }

    pub(super) fn optional(&mut self, name: &'static str) -> Option<usize> {
        let index = self.header.iter().position(|column| column == name)?;
        self.used.push((index, name));
        Some(index)
    }

    /// The position of a required column; when it is missing, [`ColumnIndex::finish`] fails, so
    /// the placeholder returned here is never used.
    pub(super) fn required(&mut self, name: &'static str) -> usize {
        self.required.push(name);
        match self.optional(name) {
            Some(index) => index,
            None => {
                self.missing.push(name);
                usize::MAX
            }
        }
    }

    pub(super) fn finish(mut self) -> Result<Header, FileError> {
        if !self.missing.is_empty() {
            return Err(FileError::MissingColumns {
                missing: self.missing,
                required: self.required,
                found: self.header,
            });
        }
        self.used.sort_unstable();
        Ok(Header {
            names: self.header,
            used: self.used,
        })
    }
}

/// The header as read, and the columns a record type reads (by position), for short-row reasons.
pub(super) struct Header {
    names: Vec<String>,
    used: Vec<(usize, &'static str)>,
}

impl Header {
    /// Why a row with a different number of fields than the header is rejected.
    fn length_problem(&self, fields: usize) -> Option<String> {
        let expected = self.names.len();
        if fields < expected {
            // Name the first column the record needs that the row lacks, or else the first absent.
            let column = self
                .used
                .iter()
                .find(|(index, _)| *index >= fields)
                .map(|(_, name)| *name)
                .or_else(|| self.names.get(fields).map(String::as_str))
                .unwrap_or_default();
            Some(format!("missing column {column}"))
        } else if fields > expected {
            Some(format!(
                "row has {fields} fields but the header has {expected}"
            ))
        } else {
            None
        }
    }
}

struct TransferColumns {
    token_address: usize,
    from_address: usize,
    to_address: usize,
    value: usize,
    transaction_hash: usize,
    log_index: usize,
    block_number: usize,
    block_timestamp: Option<usize>,
}

struct TokenColumns {
    address: usize,
    symbol: Option<usize>,
    name: Option<usize>,
    decimals: Option<usize>,
    total_supply: Option<usize>,
    block_number: Option<usize>,
    block_timestamp: Option<usize>,
}

/// One field of a CSV row as text, without the `\r` of a CRLF line end.
pub(super) fn field<'r>(
    row: &'r csv::ByteRecord,
    index: usize,
    column: &str,
) -> Result<&'r str, String> {
    let bytes = row
        .get(index)
        .ok_or_else(|| format!("missing column {column}"))?;
    let text = std::str::from_utf8(without_line_end(row, index, bytes))
        .map_err(|_| format!("{column}: not valid UTF-8"))?;
    nul::checked(column, text)
}

/// The `\r` of a CRLF line end stays at the end of the last field (only `\n` ends a row).
fn without_line_end<'r>(row: &csv::ByteRecord, index: usize, bytes: &'r [u8]) -> &'r [u8] {
    if index + 1 == row.len() {
        bytes.strip_suffix(b"\r").unwrap_or(bytes)
    } else {
        bytes
    }
}

/// An optional column's field; `None` when the header lacks the column or the field is empty.
pub(super) fn optional_field<'r>(
    row: &'r csv::ByteRecord,
    index: Option<usize>,
    column: &str,
) -> Result<Option<&'r str>, String> {
    match index {
        None => Ok(None),
        Some(index) => {
            let text = field(row, index, column)?;
            Ok((!text.trim().is_empty()).then_some(text))
        }
    }
}

fn transfer_from_csv(
    columns: &TransferColumns,
    row: &csv::ByteRecord,
) -> Result<TransferRecord, String> {
    let text = |index: usize, column: &str| field(row, index, column).map(str::trim);
    Ok(TransferRecord {
        token_address: parse_address(
            "token_address",
            text(columns.token_address, "token_address")?,
        )?,
        from_address: parse_address("from_address", text(columns.from_address, "from_address")?)?,
        to_address: parse_address("to_address", text(columns.to_address, "to_address")?)?,
        value: parse_uint("value", text(columns.value, "value")?)?,
        transaction_hash: parse_tx_hash(
            "transaction_hash",
            text(columns.transaction_hash, "transaction_hash")?,
        )?,
        log_index: parse_log_index(text(columns.log_index, "log_index")?)?,
        block_number: parse_block_number(text(columns.block_number, "block_number")?)?,
        block_timestamp: optional_field(row, columns.block_timestamp, "block_timestamp")?
            .map(parse_block_timestamp)
            .transpose()?,
    })
}

fn token_from_csv(columns: &TokenColumns, row: &csv::ByteRecord) -> Result<TokenRecord, String> {
    Ok(TokenRecord {
        address: parse_address("address", field(row, columns.address, "address")?.trim())?,
        symbol: optional_field(row, columns.symbol, "symbol")?.and_then(text_or_none),
        name: optional_field(row, columns.name, "name")?.and_then(text_or_none),
        decimals: optional_field(row, columns.decimals, "decimals")?
            .map(parse_decimals)
            .transpose()?,
        total_supply: optional_field(row, columns.total_supply, "total_supply")?
            .map(|text| parse_uint("total_supply", text))
            .transpose()?,
        block_number: optional_field(row, columns.block_number, "block_number")?
            .map(parse_block_number)
            .transpose()?,
        block_timestamp: optional_field(row, columns.block_timestamp, "block_timestamp")?
            .map(parse_block_timestamp)
            .transpose()?,
    })
}

/// A blank CRLF line: csv skips blank LF lines itself, but with `\n` as the only terminator a
/// blank CRLF line reads as a row holding one `\r`.
fn is_blank(row: &csv::ByteRecord) -> bool {
    row.len() == 1 && matches!(row.get(0), Some(b"\r" | b""))
}

/// The line where a row starts. csv records the position before the row, which is before any blank
/// lines it skipped; counting back from the end of the row is exact for every row that ends with a
/// line break. (A final row without one, after blank lines, is placed one line early.)
fn start_line(row: &csv::ByteRecord, before: u64, after: u64) -> u64 {
    if after == before + 1 {
        return before;
    }
    let inner_breaks = row
        .iter()
        .map(|field| field.iter().filter(|&&byte| byte == b'\n').count() as u64)
        .sum::<u64>();
    after.saturating_sub(inner_breaks + 1).max(before)
}

/// The row as CSV text again, quoted where needed, for a rejection's payload.
fn csv_payload(row: &csv::ByteRecord) -> String {
    let fields: Vec<&[u8]> = row
        .iter()
        .enumerate()
        .map(|(index, bytes)| without_line_end(row, index, bytes))
        .collect();
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let written = writer.write_record(&fields).is_ok();
    let bytes = match writer.into_inner() {
        Ok(bytes) if written => bytes,
        // Writing to memory does not fail; fall back to the plain join all the same.
        _ => fields.join(&b","[..]),
    };
    let text = String::from_utf8_lossy(&bytes);
    text.strip_suffix('\n').unwrap_or(&text).to_string()
}

pub(super) struct CsvRows<R, T, P> {
    reader: csv::Reader<R>,
    row: csv::ByteRecord,
    header: Header,
    parse: P,
    done: bool,
    _record: std::marker::PhantomData<fn() -> T>,
}

impl<R, T, P> CsvRows<R, T, P>
where
    R: Read,
    P: FnMut(&csv::ByteRecord) -> Result<T, String>,
{
    pub(super) fn new(reader: csv::Reader<R>, header: Header, parse: P) -> Self {
        CsvRows {
            reader,
            row: csv::ByteRecord::new(),
            header,
            parse,
            done: false,
            _record: std::marker::PhantomData,
        }
    }

    fn outcome(&mut self, line: u64) -> Row<T> {
        let outcome = match self.header.length_problem(self.row.len()) {
            Some(reason) => Err(reason),
            None => (self.parse)(&self.row),
        };
        match outcome {
            Ok(record) => Row::Record { line, record },
            Err(reason) => Row::Rejected(Rejection {
                line,
                reason,
                payload: csv_payload(&self.row),
            }),
        }
    }
}

impl<R, T, P> Iterator for CsvRows<R, T, P>
where
    R: Read,
    P: FnMut(&csv::ByteRecord) -> Result<T, String>,
{
    type Item = Result<Row<T>, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let before = self.reader.position().line();
            match self.reader.read_byte_record(&mut self.row) {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(csv_error(error, before)));
                }
            }
            if is_blank(&self.row) {
                continue;
            }
            let line = start_line(&self.row, before, self.reader.position().line());
            return Some(Ok(self.outcome(line)));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JSON lines

/// An ethereum-etl stream item. Fields stay raw JSON text so numbers beyond u64 and f64 reach
/// `parse_decimal` digit for digit; absent and `null` both read as `None`.
#[derive(Deserialize)]
struct TransferItem<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    token_address: Option<&'a RawValue>,
    #[serde(borrow)]
    from_address: Option<&'a RawValue>,
    #[serde(borrow)]
    to_address: Option<&'a RawValue>,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
    #[serde(borrow)]
    transaction_hash: Option<&'a RawValue>,
    #[serde(borrow)]
    log_index: Option<&'a RawValue>,
    #[serde(borrow)]
    block_number: Option<&'a RawValue>,
    #[serde(borrow)]
    block_timestamp: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct TokenItem<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    address: Option<&'a RawValue>,
    #[serde(borrow)]
    symbol: Option<&'a RawValue>,
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    decimals: Option<&'a RawValue>,
    #[serde(borrow)]
    total_supply: Option<&'a RawValue>,
    #[serde(borrow)]
    block_number: Option<&'a RawValue>,
    #[serde(borrow)]
    block_timestamp: Option<&'a RawValue>,
}

/// A scalar JSON value: a string's contents, or a number's exact text.
enum Scalar<'a> {
    Text(Cow<'a, str>),
    Number(&'a str),
}

impl Scalar<'_> {
    fn as_str(&self) -> &str {
        match self {
            Scalar::Text(text) => text,
            Scalar::Number(text) => text,
        }
    }
}

fn scalar<'a>(column: &str, raw: Option<&'a RawValue>) -> Result<Option<Scalar<'a>>, String> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let json = raw.get();
    match json.as_bytes().first() {
        Some(b'"') => {
            // Escapes are rare here (hex and digits); decode only when there are any.
            let inner = json
                .strip_prefix('"')
                .and_then(|rest| rest.strip_suffix('"'));
            match inner {
                Some(inner) if !inner.contains('\\') => {
                    Ok(Some(Scalar::Text(Cow::Borrowed(inner))))
                }
                _ => {
                    let text = serde_json::from_str::<String>(json)
                        .map_err(|error| format!("{column}: bad string {json} ({error})"))?;
                    nul::checked(column, &text)?;
                    Ok(Some(Scalar::Text(Cow::Owned(text))))
                }
            }
        }
        Some(b'-' | b'0'..=b'9') => Ok(Some(Scalar::Number(json))),
        Some(b'{') => Err(format!(
            "{column}: expected a string or number, got an object"
        )),
        Some(b'[') => Err(format!(
            "{column}: expected a string or number, got an array"
        )),
        _ => Err(format!("{column}: expected a string or number, got {json}")),
    }
}

fn required<'a>(column: &str, raw: Option<&'a RawValue>) -> Result<Scalar<'a>, String> {
    scalar(column, raw)?.ok_or_else(|| format!("missing column {column}"))
}

/// Addresses and hashes are strings; a number there is a mistake, not a value to convert.
fn required_text<'a>(column: &str, raw: Option<&'a RawValue>) -> Result<Cow<'a, str>, String> {
    match required(column, raw)? {
        Scalar::Text(text) => Ok(text),
        Scalar::Number(number) => Err(format!("{column}: expected a string, got {number}")),
    }
}

fn optional_text(column: &str, raw: Option<&RawValue>) -> Result<Option<String>, String> {
    match scalar(column, raw)? {
        None => Ok(None),
        Some(Scalar::Text(text)) => Ok(text_or_none(&text)),
        Some(Scalar::Number(number)) => Err(format!("{column}: expected a string, got {number}")),
    }
}

/// An optional scalar's text; an empty string counts as absent, as an empty CSV field does.
fn optional_scalar<'a>(
    column: &str,
    raw: Option<&'a RawValue>,
) -> Result<Option<Scalar<'a>>, String> {
    Ok(scalar(column, raw)?.filter(|value| !value.as_str().trim().is_empty()))
}

fn check_type(raw: Option<&RawValue>, expected: &str) -> Result<(), String> {
    match scalar("type", raw)? {
        None => Ok(()),
        Some(Scalar::Text(kind)) if kind == expected => Ok(()),
        Some(other) => Err(format!(
            "type: expected {expected:?}, got {:?}",
            other.as_str()
        )),
    }
}

pub(super) fn invalid_json(error: serde_json::Error) -> String {
    format!("invalid JSON: {error}")
}

fn transfer_from_json(line: &str) -> Result<TransferRecord, String> {
    let item: TransferItem = serde_json::from_str(line).map_err(invalid_json)?;
    check_type(item.kind, "token_transfer")?;
    Ok(TransferRecord {
        token_address: parse_address(
            "token_address",
            required_text("token_address", item.token_address)?.trim(),
        )?,
        from_address: parse_address(
            "from_address",
            required_text("from_address", item.from_address)?.trim(),
        )?,
        to_address: parse_address(
            "to_address",
            required_text("to_address", item.to_address)?.trim(),
        )?,
        value: parse_uint("value", required("value", item.value)?.as_str())?,
        transaction_hash: parse_tx_hash(
            "transaction_hash",
            required_text("transaction_hash", item.transaction_hash)?.trim(),
        )?,
        log_index: parse_log_index(required("log_index", item.log_index)?.as_str())?,
        block_number: parse_block_number(required("block_number", item.block_number)?.as_str())?,
        block_timestamp: optional_scalar("block_timestamp", item.block_timestamp)?
            .map(|value| parse_block_timestamp(value.as_str()))
            .transpose()?,
    })
}

fn token_from_json(line: &str) -> Result<TokenRecord, String> {
    let item: TokenItem = serde_json::from_str(line).map_err(invalid_json)?;
    check_type(item.kind, "token")?;
    Ok(TokenRecord {
        address: parse_address("address", required_text("address", item.address)?.trim())?,
        symbol: optional_text("symbol", item.symbol)?,
        name: optional_text("name", item.name)?,
        decimals: optional_scalar("decimals", item.decimals)?
            .map(|value| parse_decimals(value.as_str()))
            .transpose()?,
        total_supply: optional_scalar("total_supply", item.total_supply)?
            .map(|value| parse_uint("total_supply", value.as_str()))
            .transpose()?,
        block_number: optional_scalar("block_number", item.block_number)?
            .map(|value| parse_block_number(value.as_str()))
            .transpose()?,
        block_timestamp: optional_scalar("block_timestamp", item.block_timestamp)?
            .map(|value| parse_block_timestamp(value.as_str()))
            .transpose()?,
    })
}

pub(super) struct JsonRows<R, T> {
    reader: BufReader<R>,
    buffer: Vec<u8>,
    /// Lines read so far, so the next line's number is `line + 1`.
    line: u64,
    seen_content: bool,
    parse: fn(&str) -> Result<T, String>,
    done: bool,
}

impl<R: Read, T> JsonRows<R, T> {
    pub(super) fn new(reader: R, parse: fn(&str) -> Result<T, String>) -> Self {
        JsonRows {
            reader: BufReader::with_capacity(BUFFER_BYTES, reader),
            buffer: Vec::new(),
            line: 0,
            seen_content: false,
            parse,
            done: false,
        }
    }

    /// Reads the next line into `buffer`, without its terminator. `Ok(None)` at the end; `Ok(Some(
    /// false))` when the line was too long and was skipped (the buffer then holds its start).
    fn read_line(&mut self) -> std::io::Result<Option<bool>> {
        self.buffer.clear();
        let limit = (MAX_LINE_BYTES + 1) as u64;
        let read = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buffer)?;
        if read == 0 {
            return Ok(None);
        }
        let complete = self.buffer.last() == Some(&b'\n') || self.buffer.len() <= MAX_LINE_BYTES;
        if !complete {
            self.skip_rest_of_line()?;
        }
        while matches!(self.buffer.last(), Some(b'\n' | b'\r')) {
            self.buffer.pop();
        }
        Ok(Some(complete))
    }

    fn skip_rest_of_line(&mut self) -> std::io::Result<()> {
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                return Ok(());
            }
            match available.iter().position(|&byte| byte == b'\n') {
                Some(end) => {
                    self.reader.consume(end + 1);
                    return Ok(());
                }
                None => {
                    let length = available.len();
                    self.reader.consume(length);
                }
            }
        }
    }
}

impl<R: Read, T> Iterator for JsonRows<R, T> {
    type Item = Result<Row<T>, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let complete = match self.read_line() {
                Ok(Some(complete)) => complete,
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Err(source) => {
                    self.done = true;
                    let line = self.line + 1;
                    return Some(Err(FileError::Io { line, source }));
                }
            };
            self.line += 1;
            let line = self.line;
            if !complete {
                let start = &self.buffer[..LONG_LINE_PAYLOAD.min(self.buffer.len())];
                return Some(Ok(Row::Rejected(Rejection {
                    line,
                    reason: format!(
                        "line is longer than {MAX_LINE_BYTES} bytes; the payload is its first \
                         {LONG_LINE_PAYLOAD} bytes"
                    ),
                    payload: String::from_utf8_lossy(start).into_owned(),
                })));
            }
            let Ok(line_text) = std::str::from_utf8(&self.buffer) else {
                return Some(Ok(Row::Rejected(Rejection {
                    line,
                    reason: "line is not valid UTF-8".to_string(),
                    payload: String::from_utf8_lossy(&self.buffer).into_owned(),
                })));
            };
            // Some tools start a UTF-8 file with a byte-order mark.
            let text = line_text.trim_start_matches('\u{feff}').trim();
            if text.is_empty() {
                continue;
            }
            // A pretty-printed JSON array would otherwise become one rejection per line.
            if !self.seen_content && text.starts_with('[') {
                self.done = true;
                return Some(Err(FileError::JsonArray { line }));
            }
            self.seen_content = true;
            let parsed = if text.starts_with('{') {
                (self.parse)(text)
            } else {
                Err("line is not a JSON object".to_string())
            };
            return Some(Ok(match parsed {
                Ok(record) => Row::Record { line, record },
                Err(reason) => Row::Rejected(Rejection {
                    line,
                    reason,
                    payload: line_text.to_string(),
                }),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    fn address(text: &str) -> [u8; 20] {
        parse_address("test", text).expect("test address")
    }

    fn hash(text: &str) -> [u8; 32] {
        parse_tx_hash("test", text).expect("test hash")
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test timestamp")
            .with_timezone(&Utc)
    }

    type Open<T> = fn(std::io::Cursor<Vec<u8>>, Format) -> Result<Rows<T>, FileError>;

    fn from_text<T>(read: Open<T>, text: &str, format: Format) -> (Vec<(u64, T)>, Vec<Rejection>) {
        collect(read(std::io::Cursor::new(text.as_bytes().to_vec()), format).expect("opens"))
    }

    const ETL_HEADER: &str =
        "token_address,from_address,to_address,value,transaction_hash,log_index,block_number";
    const TOKEN: &str = "0xf4eced2f682ce333f96f2d8966c613ded8fc95dd";
    const FROM: &str = "0x1b63142628311395ceafeea5667e7c9026c862ca";
    const TO: &str = "0xac4df82fe37ea2187bc8c011a23d743b4f39019a";
    const TX: &str = "0x04cbcb236043d8fb7839e07bbc7f5eed692fb2ca55d897f1101eac3e3ad4fab8";

    #[test]
    fn format_from_file_name() {
        let format = |name: &str| Format::from_path(Path::new(name));
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
        let rows = transfers(
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
        assert_eq!(first.value.to_string(), "7056176614974947328");

        // The largest value in the file, beyond u64 (and beyond f64's exact range), digit for digit.
        let (line, largest) = records
            .iter()
            .max_by_key(|(_, record)| record.value)
            .expect("records");
        assert_eq!(*line, 33);
        assert!(largest.value > U256::from(u64::MAX));
        assert_eq!(largest.value.to_string(), "7786596450288373164569331648084");
        assert_eq!(largest.log_index, 81);
        assert_eq!(
            largest.transaction_hash,
            hash("0xcaa1eefe9f8e7ed33dbb8b3f9ed8d338d7d58f564e3dde8b72eda39ae6fe2f19")
        );
        // A value whose nearest f64 differs from it: only exact parsing keeps the trailing nines.
        assert!(
            records
                .iter()
                .any(|(_, record)| record.value.to_string() == "2594212437321327699999999999999")
        );
        assert!(
            records
                .iter()
                .all(|(_, record)| record.block_number == 17173049
                    || record.block_number == 17173050)
        );
    }

    #[test]
    fn ethereum_etl_transfers_csv() {
        let rows = transfers(data("etl_token_transfers.csv"), Format::Csv).expect("opens");
        let (records, rejections) = collect(rows);
        assert_eq!(rejections, Vec::new());
        assert_eq!(
            records,
            vec![
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
                ),
                (
                    3,
                    TransferRecord {
                        token_address: address(TOKEN),
                        from_address: address("0x9b22a80d5c7b3374a05b446081f97d0a34079e7f"),
                        to_address: address("0x66f183060253cfbe45beff1e6e7ebbe318c81e56"),
                        value: U256::from(200000u32),
                        transaction_hash: hash(
                            "0xcea6f89720cc1d2f46cc7a935463ae0b99dd5fad9c91bb7357de5421511cee49"
                        ),
                        log_index: 1,
                        block_number: 483920,
                        block_timestamp: None,
                    }
                ),
            ]
        );
    }

    #[test]
    fn ethereum_etl_tokens_csv() {
        let rows = tokens(data("etl_tokens.csv"), Format::Csv).expect("opens");
        let (records, rejections) = collect(rows);
        assert_eq!(rejections, Vec::new());
        assert_eq!(
            records,
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
    }

    #[test]
    fn bigquery_transfers_with_spreadsheet_timestamps() {
        let rows =
            transfers(data("bigquery_export_token_transfers.csv"), Format::Csv).expect("opens");
        let (records, rejections) = collect(rows);
        assert_eq!(records.len(), 500);
        assert_eq!(rejections, Vec::new());
        assert!(
            records
                .iter()
                .all(|(_, record)| record.block_timestamp.is_some())
        );
        assert_eq!(
            records[0],
            (
                2,
                TransferRecord {
                    token_address: address("0x016dcbef5fa51f354064d505288f3908d84b6411"),
                    from_address: address("0xa055115fc5c00f6cbc8d31c54465ddbbabcc556d"),
                    to_address: address("0x2fe76fdf346ed2620b77756e45801cb51c2aa35d"),
                    value: U256::from(1000u32),
                    transaction_hash: hash(
                        "0xfcd68727243265af7ab78585e9da9041c9052ea523a8ba1586987b935acc60c5"
                    ),
                    log_index: 0,
                    block_number: 2777948,
                    block_timestamp: Some(utc("2016-12-09T18:35:23Z")),
                }
            )
        );
        // "12/9/2016 1:50:03": the spreadsheet drops the hour's leading zero.
        assert_eq!(records[3].0, 5);
        assert_eq!(
            records[3].1.block_timestamp,
            Some(utc("2016-12-09T01:50:03Z"))
        );
        assert_eq!(records[499].0, 501);
    }

    #[test]
    fn bigquery_tokens_with_empty_fields() {
        let rows = tokens(data("bigquery_export_tokens.csv"), Format::Csv).expect("opens");
        let (records, rejections) = collect(rows);
        // Every row is usable: empty fields become None, and every total_supply present is a
        // whole number (the largest is exactly 2^256-1).
        assert_eq!((records.len(), rejections.len()), (500, 0));
        let count = |test: fn(&TokenRecord) -> bool| {
            records.iter().filter(|(_, record)| test(record)).count()
        };
        assert_eq!(count(|token| token.symbol.is_none()), 239);
        assert_eq!(count(|token| token.name.is_none()), 219);
        assert_eq!(count(|token| token.decimals.is_none()), 290);
        assert_eq!(count(|token| token.decimals == Some(0)), 210);
        assert_eq!(count(|token| token.total_supply.is_none()), 97);
        assert_eq!(count(|token| token.block_timestamp.is_none()), 0);

        assert_eq!(
            records[0],
            (
                2,
                TokenRecord {
                    address: address("0xdbfde58017c787803e27af56c422fef6d2dd3541"),
                    symbol: None,
                    name: None,
                    decimals: None,
                    total_supply: None,
                    block_number: Some(8662327),
                    block_timestamp: Some(utc("2019-10-02T10:33:42Z")),
                }
            )
        );
        let at = |line: u64| {
            &records
                .iter()
                .find(|(at, _)| *at == line)
                .expect("line present")
                .1
        };
        assert_eq!(at(291).total_supply, Some(U256::MAX));
        assert_eq!(at(291).block_timestamp, Some(utc("2023-06-09T08:42:35Z")));
        // Names are trimmed, otherwise kept as given.
        assert_eq!(at(106).name.as_deref(), Some("Abtract Ukraine"));
        assert_eq!(at(194).name.as_deref(), Some("Arcona Digital Land"));
        assert_eq!(at(315).symbol.as_deref(), Some("🦄"));
        assert_eq!(at(315).decimals, Some(0));
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
        let (records, rejections) = from_text(transfers, &text, Format::Csv);
        assert_eq!(
            records.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
            vec![2, 10]
        );
        let reasons: Vec<(u64, &str)> = rejections
            .iter()
            .map(|rejection| (rejection.line, rejection.reason.as_str()))
            .collect();
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
                (
                    9,
                    "block_number: expected a whole number from 0 to 9223372036854775807, got \"\""
                ),
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
        let (records, rejections) = from_text(transfers, &text, Format::Csv);
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
        assert_eq!(records[0].1.from_address, address(FROM));
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
            let (records, rejections) = from_text(transfers, &text, Format::Csv);
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
        let (records, rejections) = from_text(tokens, &text, Format::Csv);
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
        let rows = tokens(std::io::Cursor::new(bytes), Format::Csv).expect("opens");
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
        let Err(error) = transfers(
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

        let Err(error) = tokens(std::io::Cursor::new(b"symbol,name\n".to_vec()), Format::Csv)
        else {
            panic!("a header without address must fail");
        };
        assert!(
            error
                .to_string()
                .starts_with("the CSV header has no column address;")
        );

        let Err(error) = tokens(std::io::Cursor::new(Vec::new()), Format::Csv) else {
            panic!("an empty file must fail");
        };
        assert!(matches!(error, FileError::NoHeader));
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
        let (records, rejections) = from_text(transfers, &lines.join("\n"), Format::JsonLines);
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
        let reasons: Vec<(u64, &str)> = rejections
            .iter()
            .map(|rejection| (rejection.line, rejection.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 11);
        assert_eq!(
            reasons[..10],
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
                (12, "missing column value"),
                (13, "missing column value"),
                (
                    16,
                    "from_address: expected 20 bytes (40 hex digits), got 4 digits in \"0x1234\""
                ),
            ]
        );
        assert_eq!(reasons[10], (17, "to_address: expected a string, got 7"));
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
        let (records, rejections) = from_text(tokens, &lines.join("\n"), Format::JsonLines);
        assert_eq!(
            records,
            vec![
                (
                    1,
                    TokenRecord {
                        address: address(TOKEN),
                        symbol: Some("EOS".to_string()),
                        name: Some("EOS\u{a0}Token".to_string()),
                        decimals: Some(18),
                        total_supply: Some(
                            parse_decimal("1000000000000000000000000000").expect("valid")
                        ),
                        block_number: Some(483920),
                        block_timestamp: Some(utc("2023-05-02T12:19:59Z")),
                    }
                ),
                (
                    2,
                    TokenRecord {
                        address: address(TOKEN),
                        symbol: None,
                        name: None,
                        decimals: Some(6),
                        total_supply: Some(U256::from(42u32)),
                        block_number: None,
                        block_timestamp: None,
                    }
                ),
                (
                    3,
                    TokenRecord {
                        address: address(TOKEN),
                        symbol: None,
                        name: None,
                        decimals: None,
                        total_supply: None,
                        block_number: None,
                        block_timestamp: None,
                    }
                ),
            ]
        );
        let reasons: Vec<(u64, &str)> = rejections
            .iter()
            .map(|rejection| (rejection.line, rejection.reason.as_str()))
            .collect();
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
                (8, "name: expected a string or number, got an array"),
                (9, "missing column address"),
                (10, "line is not a JSON object"),
            ]
        );
    }

    #[test]
    fn json_array_file_is_a_file_error() {
        let text = "\n[\n  {\"type\": \"token\"}\n]\n";
        let mut rows = tokens(
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
        let rows = transfers(std::io::Cursor::new(bytes), Format::JsonLines).expect("opens");
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
        let mut rows = transfers(reader, Format::JsonLines).expect("opens");
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
        let mut rows = transfers(reader, Format::Csv).expect("opens");
        assert!(matches!(rows.next(), Some(Ok(Row::Record { line: 2, .. }))));
        assert!(matches!(rows.next(), Some(Err(FileError::Io { .. }))));
        assert!(rows.next().is_none());
    }
}
