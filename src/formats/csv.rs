//! CSV, row by row. Only `\n` ends a row (a CRLF row's `\r` is dropped from its last field),
//! so every row reports the line it starts on, also after quoted multi-line fields. A row with
//! another number of fields than the header is rejected on its own; a file whose lines end with
//! a bare `\r`, or whose quote is never closed, is an error naming the line — either would
//! otherwise read as one giant row and lose the rest of the file without a word.

use std::io::Read;

use serde_json::{Map, Value as Json};

use super::{BUFFER_BYTES, FileError, Rejection, Row};
use crate::entities::{Field, Fields, Scalar};
use crate::store::nul;

/// A CSV file whose header has been read.
pub struct CsvFile<R: Read> {
    reader: csv::Reader<QuoteTracker<R>>,
    /// Column names as written (byte-order mark and surrounding blanks removed).
    pub header: Vec<String>,
}

/// Opens a CSV file and reads its header.
pub fn open<R: Read>(reader: R) -> Result<CsvFile<R>, FileError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        // A short or long row becomes one rejection instead of ending the file.
        .flexible(true)
        .terminator(csv::Terminator::Any(b'\n'))
        .buffer_capacity(BUFFER_BYTES)
        .from_reader(QuoteTracker::new(reader));
    let header = match reader.byte_headers() {
        Ok(header) => header.clone(),
        Err(error) => return Err(csv_error(error, 1)),
    };
    // Lines that end with CR alone are one "line" to a reader that ends rows at LF: the
    // header would hold the whole file.
    let last = header.len().saturating_sub(1);
    let bare_cr = header.iter().enumerate().any(|(i, name)| {
        let name = if i == last {
            name.strip_suffix(b"\r").unwrap_or(name)
        } else {
            name
        };
        name.contains(&b'\r')
    });
    if bare_cr {
        return Err(FileError::BareCarriageReturn { line: 1 });
    }
    let names: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let name = if i == last {
                name.strip_suffix(b"\r").unwrap_or(name)
            } else {
                name
            };
            let name = String::from_utf8_lossy(name);
            // Spreadsheets put a byte-order mark before the first column name.
            name.trim_start_matches('\u{feff}').trim().to_string()
        })
        .collect();
    if names.iter().all(|name| name.is_empty()) {
        return Err(FileError::NoHeader);
    }
    Ok(CsvFile {
        reader,
        header: names,
    })
}

impl<R: Read> CsvFile<R> {
    /// The rows, each given to `parse`. `used` names the columns `parse` reads, by position,
    /// so a short row is rejected naming the first one it lacks.
    pub fn rows<T, P>(self, used: Vec<(usize, &'static str)>, parse: P) -> CsvRows<R, T, P>
    where
        P: FnMut(&CsvRow<'_>) -> Result<T, String>,
    {
        let mut used = used;
        used.sort_unstable();
        CsvRows {
            reader: self.reader,
            row: csv::ByteRecord::new(),
            header: self.header,
            used,
            parse,
            done: false,
            _record: std::marker::PhantomData,
        }
    }
}

/// Where each of an entity's fields is in a CSV file's header: matched by name, in any case.
pub struct Columns {
    /// By the field's index in the entity's field list.
    by_field: Vec<Option<usize>>,
    /// (position, name) of every column found, for short-row reasons.
    used: Vec<(usize, &'static str)>,
}

impl Columns {
    /// Finds `fields` in `header`; every required field missing is named in one error.
    pub fn resolve(header: &[String], fields: &'static [Field]) -> Result<Columns, FileError> {
        let lower: Vec<String> = header.iter().map(|h| h.to_ascii_lowercase()).collect();
        let mut by_field = vec![None; fields.len()];
        let mut used = Vec::new();
        let mut missing = Vec::new();
        for field in fields {
            match lower.iter().position(|name| name == field.name) {
                Some(index) => {
                    by_field[field.index] = Some(index);
                    used.push((index, field.name));
                }
                None if field.required => missing.push(field.name),
                None => {}
            }
        }
        if !missing.is_empty() {
            return Err(FileError::MissingColumns {
                missing,
                required: fields
                    .iter()
                    .filter(|f| f.required)
                    .map(|f| f.name)
                    .collect(),
                found: lower,
            });
        }
        Ok(Columns { by_field, used })
    }

    /// The columns found, for [`CsvFile::rows`].
    pub fn used(&self) -> Vec<(usize, &'static str)> {
        self.used.clone()
    }
}

/// One CSV row, with the file's header.
pub struct CsvRow<'r> {
    row: &'r csv::ByteRecord,
    header: &'r [String],
}

impl<'r> CsvRow<'r> {
    /// One field as text, without the `\r` of a CRLF line end; an error names the column.
    pub fn text(&self, index: usize, column: &str) -> Result<&'r str, String> {
        let bytes = self
            .row
            .get(index)
            .ok_or_else(|| format!("missing column {column}"))?;
        let text = std::str::from_utf8(without_line_end(self.row, index, bytes))
            .map_err(|_| format!("{column}: not valid UTF-8"))?;
        nul::checked(column, text)
    }

    /// The row as a JSON object: header name → text.
    pub fn object(&self) -> Result<Map<String, Json>, String> {
        let mut object = Map::with_capacity(self.header.len());
        for (index, name) in self.header.iter().enumerate() {
            object.insert(
                name.clone(),
                Json::String(self.text(index, name)?.to_string()),
            );
        }
        Ok(object)
    }

    /// An entity's fields in this row.
    pub fn fields<'a>(&'a self, columns: &'a Columns) -> CsvFields<'a, 'r> {
        CsvFields { row: self, columns }
    }
}

/// An entity's fields read from a CSV row by position.
pub struct CsvFields<'a, 'r> {
    row: &'a CsvRow<'r>,
    columns: &'a Columns,
}

impl Fields for CsvFields<'_, '_> {
    fn scalar(&self, field: &Field) -> Result<Option<Scalar<'_>>, String> {
        let Some(Some(index)) = self.columns.by_field.get(field.index) else {
            return Ok(None);
        };
        let text = self.row.text(*index, field.name)?;
        Ok((!text.trim().is_empty()).then_some(Scalar::Text(text.into())))
    }

    fn object(&self) -> Result<Map<String, Json>, String> {
        self.row.object()
    }
}

/// The `\r` of a CRLF line end stays at the end of the last field (only `\n` ends a row).
fn without_line_end<'r>(row: &csv::ByteRecord, index: usize, bytes: &'r [u8]) -> &'r [u8] {
    if index + 1 == row.len() {
        bytes.strip_suffix(b"\r").unwrap_or(bytes)
    } else {
        bytes
    }
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

/// A blank CRLF line: csv skips blank LF lines itself, but with `\n` as the only terminator a
/// blank CRLF line reads as a row holding one `\r`.
fn is_blank(row: &csv::ByteRecord) -> bool {
    row.len() == 1 && matches!(row.get(0), Some(b"\r" | b""))
}

/// The line where a row starts. csv records the position before the row, which is before any
/// blank lines it skipped; counting back from the end of the row is exact for every row that
/// ends with a line break. (A final row without one, after blank lines, is placed one line
/// early.)
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

/// Iterator over a CSV file's rows.
pub struct CsvRows<R: Read, T, P> {
    reader: csv::Reader<QuoteTracker<R>>,
    row: csv::ByteRecord,
    header: Vec<String>,
    used: Vec<(usize, &'static str)>,
    parse: P,
    done: bool,
    _record: std::marker::PhantomData<fn() -> T>,
}

impl<R: Read, T, P> CsvRows<R, T, P>
where
    P: FnMut(&CsvRow<'_>) -> Result<T, String>,
{
    /// Why a row with another number of fields than the header is rejected.
    fn length_problem(&self) -> Option<String> {
        let fields = self.row.len();
        let expected = self.header.len();
        if fields < expected {
            // Name the first column the record needs that the row lacks, or else the first absent.
            let column = self
                .used
                .iter()
                .find(|(index, _)| *index >= fields)
                .map(|(_, name)| *name)
                .or_else(|| self.header.get(fields).map(String::as_str))
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

    fn outcome(&mut self, line: u64) -> Row<T> {
        let outcome = match self.length_problem() {
            Some(reason) => Err(reason),
            None => (self.parse)(&CsvRow {
                row: &self.row,
                header: &self.header,
            }),
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

impl<R: Read, T, P> Iterator for CsvRows<R, T, P>
where
    P: FnMut(&CsvRow<'_>) -> Result<T, String>,
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
            // The input ended inside quotes: this row is the rest of the file.
            if self.reader.get_ref().ended_in_quotes() {
                self.done = true;
                return Some(Err(FileError::UnclosedQuote { line }));
            }
            return Some(Ok(self.outcome(line)));
        }
    }
}

/// Follows the input's quoting as the CSV parser reads it (RFC 4180: `"` opens a quoted field
/// at a field's start, `""` inside is a quote, the next `"` closes it), so that the end of the
/// input inside a quoted field is noticed. It only looks at quotes, commas and line ends.
struct QuoteTracker<R> {
    inner: R,
    state: QuoteState,
    at_end: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    FieldStart,
    Unquoted,
    Quoted,
    /// A `"` inside a quoted field: closing, or the first of `""`.
    QuoteInQuoted,
}

impl<R> QuoteTracker<R> {
    fn new(inner: R) -> Self {
        QuoteTracker {
            inner,
            state: QuoteState::FieldStart,
            at_end: false,
        }
    }

    /// The input has ended, inside a quoted field.
    fn ended_in_quotes(&self) -> bool {
        self.at_end && self.state == QuoteState::Quoted
    }

    fn follow(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.state {
                QuoteState::Quoted => match memchr::memchr(b'"', bytes) {
                    Some(at) => {
                        self.state = QuoteState::QuoteInQuoted;
                        bytes = &bytes[at + 1..];
                    }
                    None => return,
                },
                QuoteState::Unquoted => match memchr::memchr2(b',', b'\n', bytes) {
                    Some(at) => {
                        self.state = QuoteState::FieldStart;
                        bytes = &bytes[at + 1..];
                    }
                    None => return,
                },
                QuoteState::FieldStart | QuoteState::QuoteInQuoted => {
                    let quoted = self.state == QuoteState::QuoteInQuoted;
                    self.state = match (bytes[0], quoted) {
                        (b'"', _) => QuoteState::Quoted,
                        (b',' | b'\n', _) => QuoteState::FieldStart,
                        _ => QuoteState::Unquoted,
                    };
                    bytes = &bytes[1..];
                }
            }
        }
    }
}

impl<R: Read> Read for QuoteTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.at_end = true;
        }
        self.follow(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row's line, and its fields or why it was rejected.
    type RowRead = (u64, Result<Vec<String>, String>);

    /// Every row, or the file error that ended the file.
    fn read(text: &str) -> Result<Vec<RowRead>, String> {
        let file =
            open(std::io::Cursor::new(text.as_bytes().to_vec())).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for row in file.rows(Vec::new(), |row: &CsvRow<'_>| {
            Ok(row
                .object()?
                .values()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect::<Vec<_>>())
        }) {
            match row.map_err(|e| e.to_string())? {
                Row::Record { line, record } => out.push((line, Ok(record))),
                Row::Rejected(r) => out.push((r.line, Err(r.reason))),
            }
        }
        Ok(out)
    }

    #[test]
    fn bare_carriage_returns_are_a_located_error() {
        assert_eq!(
            read("name,sku\rA,1\rB,2\r"),
            Err(
                "line 1: lines end with a carriage return alone (CR, the old Mac line end); \
                 convert the file to LF or CRLF line ends"
                    .to_string()
            )
        );
        // CRLF and LF files read as before.
        assert_eq!(
            read("name,sku\r\nA,1\r\nB,2\r\n").map(|rows| rows.len()),
            Ok(2)
        );
    }

    #[test]
    fn an_unclosed_quote_is_a_located_error() {
        let text = "name,sku\nA,1\n\"B,2\nC,3\nD,4\n";
        match read(text) {
            Err(error) => assert_eq!(
                error,
                "line 3: a quoted field is not closed before the end of the file (a `\"` without \
                 its closing `\"`); every row from line 3 on was read as one field"
            ),
            Ok(rows) => panic!("expected an error, read {rows:?}"),
        }
        // Quoted fields that close, with `""` and line breaks inside, are fine.
        assert_eq!(
            read("name,sku\n\"a \"\"b\"\"\nc\",1\nd,\"2\"\n"),
            Ok(vec![
                (2, Ok(vec!["a \"b\"\nc".to_string(), "1".to_string()])),
                (4, Ok(vec!["d".to_string(), "2".to_string()])),
            ])
        );
        // A quote inside an unquoted field is a plain character.
        assert_eq!(read("name,sku\nsay \"hi,1\n").map(|rows| rows.len()), Ok(1));
    }

    #[test]
    fn the_tracker_follows_quotes_across_reads() {
        // One byte per read: every state change happens at a read boundary.
        struct ByteAtATime(std::io::Cursor<Vec<u8>>);
        impl Read for ByteAtATime {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(1);
                self.0.read(&mut buf[..n])
            }
        }
        for (text, unclosed) in [
            ("a,\"b\"\"c\",d\n", false),
            ("a,\"b\n", true),
            ("\"\"\n", false),
            ("x,\"\"\"\n", true),
        ] {
            let mut tracker =
                QuoteTracker::new(ByteAtATime(std::io::Cursor::new(text.as_bytes().to_vec())));
            let mut sink = Vec::new();
            tracker.read_to_end(&mut sink).expect("read");
            assert_eq!(tracker.ended_in_quotes(), unclosed, "{text:?}");
        }
    }
}
