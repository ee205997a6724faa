//! Reading files row by row: CSV and JSON lines, with every row's line number, a located
//! rejection for a bad row (the rest of the file goes on), and a located error for a problem
//! with the file as a whole. Memory stays bounded by the longest row whatever the file size.
//!
//! Both the bulk importer (`tributary import`) and file providers (`source.kind = "file"`)
//! read through here, so a file is read the same way whichever path reads it.

pub mod csv;
pub mod jsonl;

use std::path::Path;

/// The shape of an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    JsonLines,
}

impl Format {
    /// From the file name, ignoring a trailing `.gz`: `.csv` → Csv; `.jsonl`, `.ndjson`,
    /// `.json` → JsonLines. The error names the file and the accepted extensions.
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

/// A row that could not become a record: 1-based line where it starts, why, and the row as
/// text.
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

/// A problem with the file as a whole (not one row): I/O, a header without a required column,
/// line ends or quotes that make the rest of the file unreadable.
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
    #[error(
        "line {line}: lines end with a carriage return alone (CR, the old Mac line end); \
         convert the file to LF or CRLF line ends"
    )]
    BareCarriageReturn { line: u64 },
    #[error(
        "line {line}: a quoted field is not closed before the end of the file (a `\"` without \
         its closing `\"`); every row from line {line} on was read as one field"
    )]
    UnclosedQuote { line: u64 },
    #[error("line {line} starts a JSON array; expected JSON lines (one object per line)")]
    JsonArray { line: u64 },
}

/// Iterator over one file's rows; a fatal problem is its last item.
pub type Rows<T> = Box<dyn Iterator<Item = Result<Row<T>, FileError>> + Send>;

/// Read buffer: large enough that the per-read overhead disappears on million-row files.
const BUFFER_BYTES: usize = 1 << 16;
