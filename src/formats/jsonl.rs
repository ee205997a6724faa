//! JSON lines, one object per line. A line that is not valid UTF-8, not JSON, not an object or
//! longer than [`MAX_LINE_BYTES`] is rejected with its line number and the next line is read;
//! a file that starts with `[` (a JSON array, not JSON lines) is an error at once.

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read};

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value as Json};

use super::{BUFFER_BYTES, FileError, Rejection, Row};
use crate::entities::{Field, Fields, Scalar};
use crate::store::nul;

/// The longest line held in memory; longer lines are rejected and skipped. Real lines are under
/// 1 KB, so this only trips on files that are not JSON lines at all.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// How much of an over-long line is kept as the rejection's payload.
pub const LONG_LINE_PAYLOAD: usize = 1024;

/// Iterator over a file's JSON lines, each given to `parse` (which sees a line that starts
/// with `{`, without its line end or a byte-order mark).
pub struct JsonRows<R, T, P> {
    reader: BufReader<R>,
    buffer: Vec<u8>,
    /// Lines read so far, so the next line's number is `line + 1`.
    line: u64,
    seen_content: bool,
    parse: P,
    done: bool,
    _record: std::marker::PhantomData<fn() -> T>,
}

impl<R: Read, T, P: FnMut(&str) -> Result<T, String>> JsonRows<R, T, P> {
    pub fn new(reader: R, parse: P) -> Self {
        JsonRows {
            reader: BufReader::with_capacity(BUFFER_BYTES, reader),
            buffer: Vec::new(),
            line: 0,
            seen_content: false,
            parse,
            done: false,
            _record: std::marker::PhantomData,
        }
    }

    /// Reads the next line into `buffer`, without its terminator. `Ok(None)` at the end;
    /// `Ok(Some(false))` when the line was too long and was skipped (the buffer then holds its
    /// start).
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
            match memchr::memchr(b'\n', available) {
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

impl<R: Read, T, P: FnMut(&str) -> Result<T, String>> Iterator for JsonRows<R, T, P> {
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

pub fn invalid_json(error: serde_json::Error) -> String {
    format!("invalid JSON: {error}")
}

/// One JSON object's members, borrowed from its line: values stay raw JSON text, so numbers
/// beyond u64 and f64 reach the field readers digit for digit.
pub struct JsonFields<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> JsonFields<'a> {
    /// Parses one line that holds a JSON object.
    pub fn parse(line: &'a str) -> Result<JsonFields<'a>, String> {
        serde_json::from_str(line).map_err(invalid_json)
    }

    /// The raw value of the member `name`, if present.
    pub fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| *value)
    }
}

impl<'de> Deserialize<'de> for JsonFields<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = JsonFields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                #[derive(Deserialize)]
                struct Key<'a>(#[serde(borrow)] Cow<'a, str>);
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(12));
                while let Some(Key(key)) = map.next_key()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.push((key, value));
                }
                Ok(JsonFields { members })
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// A raw JSON value as a scalar: a string's contents (its escapes decoded), a number's exact
/// text; `None` for null and blank strings. `column` names the field in errors.
pub fn raw_scalar<'a>(column: &str, raw: &'a RawValue) -> Result<Option<Scalar<'a>>, String> {
    let json = raw.get();
    match json.as_bytes().first() {
        Some(b'"') => {
            // Escapes are rare here (hex and digits); decode only when there are any.
            let inner = json
                .strip_prefix('"')
                .and_then(|rest| rest.strip_suffix('"'));
            let text: Cow<'a, str> = match inner {
                Some(inner) if !inner.contains('\\') => Cow::Borrowed(inner),
                _ => {
                    let text = serde_json::from_str::<String>(json)
                        .map_err(|error| format!("{column}: bad string {json} ({error})"))?;
                    nul::checked(column, &text)?;
                    Cow::Owned(text)
                }
            };
            Ok((!text.trim().is_empty()).then_some(Scalar::Text(text)))
        }
        Some(b'-' | b'0'..=b'9') => Ok(Some(Scalar::Number(Cow::Borrowed(json)))),
        Some(b'n') if json == "null" => Ok(None),
        Some(b'{') => Err(format!(
            "{column}: expected text or a number, got an object"
        )),
        Some(b'[') => Err(format!("{column}: expected text or a number, got an array")),
        _ => Err(format!("{column}: expected text or a number, got {json}")),
    }
}

impl Fields for JsonFields<'_> {
    fn scalar(&self, field: &Field) -> Result<Option<Scalar<'_>>, String> {
        match self.get(field.name) {
            None => Ok(None),
            Some(raw) => raw_scalar(field.name, raw),
        }
    }

    fn object(&self) -> Result<Map<String, Json>, String> {
        let mut object = Map::with_capacity(self.members.len());
        for (key, raw) in &self.members {
            let value = crate::sources::json::parse(raw.get()).map_err(invalid_json)?;
            object.insert(key.to_string(), value);
        }
        Ok(object)
    }
}
