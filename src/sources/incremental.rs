//! Cursor values: the high-water mark of incremental sync and the bounds of window
//! pagination. One home for how such a value is read from a provider file, from a record and
//! from the database, how it is compared and stepped, and how it is written into a request.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::Value as Json;

use crate::providers::definition::CursorValue;

/// A cursor's type, fixed by `incremental.initial` (or a window's `start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Integer,
    Time,
    Text,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Integer => "an integer",
            Kind::Time => "a timestamp",
            Kind::Text => "a text",
        }
    }
}

/// One cursor value. Values of one provider are all of one [`Kind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    Integer(i64),
    Time(DateTime<Utc>),
    Text(String),
}

impl Mark {
    pub fn kind(&self) -> Kind {
        match self {
            Mark::Integer(_) => Kind::Integer,
            Mark::Time(_) => Kind::Time,
            Mark::Text(_) => Kind::Text,
        }
    }

    /// A value written in a provider file: an integer, an RFC 3339 timestamp, or other text.
    pub fn of_config(value: &CursorValue) -> Mark {
        match value {
            CursorValue::Integer(n) => Mark::Integer(*n),
            CursorValue::Text(text) => match DateTime::parse_from_rfc3339(text.trim()) {
                Ok(time) => Mark::Time(time.with_timezone(&Utc)),
                Err(_) => Mark::Text(text.clone()),
            },
        }
    }

    /// A record's cursor value read as `kind`; the error says what was found.
    pub fn of_record(kind: Kind, value: &Json) -> Result<Mark, String> {
        let shown = || crate::transform::transforms::shown(value);
        match (kind, value) {
            (_, Json::Null) => Err("missing".to_string()),
            (Kind::Integer, Json::Number(n)) => n
                .as_i64()
                .map(Mark::Integer)
                .ok_or_else(|| format!("{} is not a 64-bit integer", shown())),
            (Kind::Integer, Json::String(text)) => parse_integer(text).map(Mark::Integer),
            (Kind::Time, Json::Number(_) | Json::String(_)) => {
                let text = match value {
                    Json::String(text) => text.clone(),
                    other => other.to_string(),
                };
                crate::timestamps::parse_timestamp(&text).map(Mark::Time)
            }
            (Kind::Text, Json::String(text)) if !text.is_empty() => Ok(Mark::Text(text.clone())),
            (Kind::Text, Json::Number(n)) => Ok(Mark::Text(n.to_string())),
            _ => Err(format!("{} is not {}", shown(), kind.name())),
        }
    }

    /// The form stored in `provider_state.cursor`.
    pub fn stored(&self) -> String {
        match self {
            Mark::Integer(n) => n.to_string(),
            Mark::Time(time) => time.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            Mark::Text(text) => text.clone(),
        }
    }

    /// Reads a stored (or user-given) value as `kind`.
    pub fn parse(kind: Kind, text: &str) -> Result<Mark, String> {
        Mark::of_record(kind, &Json::String(text.to_string()))
    }

    /// Whether `self` is past `other` (values of different kinds never are).
    pub fn after(&self, other: &Mark) -> bool {
        match (self, other) {
            (Mark::Integer(a), Mark::Integer(b)) => a > b,
            (Mark::Time(a), Mark::Time(b)) => a > b,
            (Mark::Text(a), Mark::Text(b)) => a > b,
            _ => false,
        }
    }

    /// `self` moved by `step` (negative `times` to go back); saturates at the ends.
    pub fn moved(&self, step: &Step, times: i64) -> Mark {
        match (self, step) {
            (Mark::Integer(n), Step::Integer(by)) => {
                Mark::Integer(n.saturating_add(by.saturating_mul(times)))
            }
            (Mark::Time(t), Step::Duration(by)) => {
                let delta = by.checked_mul(times as i32).unwrap_or(TimeDelta::MAX);
                Mark::Time(t.checked_add_signed(delta).unwrap_or(*t))
            }
            (other, _) => other.clone(),
        }
    }

    /// The value as a request carries it.
    pub fn format(&self, format: &Format) -> String {
        match (self, format) {
            (Mark::Integer(n), Format::Hex) => format!("{n:#x}"),
            (Mark::Integer(n), _) => n.to_string(),
            (Mark::Time(t), Format::Epoch) => t.timestamp().to_string(),
            (Mark::Time(t), Format::EpochMs) => t.timestamp_millis().to_string(),
            (Mark::Time(t), Format::Strftime(pattern)) => t.format(pattern).to_string(),
            (Mark::Time(t), _) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            (Mark::Text(text), _) => text.clone(),
        }
    }
}

/// An integer as JSON-RPC (`0x1060a39`) or anyone else (`17173049`) writes it.
fn parse_integer(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Some(hex) = crate::uint256::parse_hex(text) {
        return hex.and_then(|n| {
            i64::try_from(n).map_err(|_| format!("{text} is out of range for a 64-bit integer"))
        });
    }
    text.parse::<i64>()
        .map_err(|_| format!("{text:?} is not an integer"))
}

/// A window's size, or an incremental lookback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Integer(i64),
    Duration(TimeDelta),
}

impl Step {
    /// A step for cursors of `kind`: an integer for integers, a duration (`1h`, `15m`, `1d`,
    /// `1h 30m`) for timestamps.
    pub fn of_config(value: &CursorValue, kind: Kind) -> Result<Step, String> {
        match (kind, value) {
            (Kind::Integer, CursorValue::Integer(n)) if *n >= 0 => Ok(Step::Integer(*n)),
            (Kind::Integer, _) => Err("expected a whole number of at least 0".to_string()),
            (Kind::Time, CursorValue::Text(text)) => humantime::parse_duration(text)
                .ok()
                .and_then(|d| TimeDelta::from_std(d).ok())
                .map(Step::Duration)
                .ok_or_else(|| {
                    format!(
                        "{text:?} is not a duration; expected e.g. \"30s\", \"15m\", \"1h\", \"1d\""
                    )
                }),
            (Kind::Time, _) => {
                Err("expected a duration such as \"1h\" (the cursor is a timestamp)".to_string())
            }
            (Kind::Text, _) => Err("a text cursor cannot be stepped".to_string()),
        }
    }

    pub fn is_zero(&self) -> bool {
        match self {
            Step::Integer(n) => *n == 0,
            Step::Duration(d) => d.is_zero(),
        }
    }

    /// The smallest step of `kind`: `${window.last}` is `to` less this.
    pub fn unit(kind: Kind) -> Step {
        match kind {
            Kind::Time => Step::Duration(TimeDelta::seconds(1)),
            _ => Step::Integer(1),
        }
    }
}

/// How a cursor value is written into a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Decimal,
    Hex,
    Rfc3339,
    Epoch,
    EpochMs,
    Strftime(String),
}

impl Format {
    /// `format` as given for cursors of `kind` (absent: decimal, or RFC 3339).
    pub fn of_config(format: Option<&str>, kind: Kind) -> Result<Format, String> {
        let format = match (kind, format) {
            (Kind::Integer, None | Some("decimal")) => Format::Decimal,
            (Kind::Integer, Some("hex")) => Format::Hex,
            (Kind::Integer, Some(_)) => {
                return Err("expected `decimal` or `hex` for an integer cursor".to_string());
            }
            (Kind::Time, None | Some("rfc3339")) => Format::Rfc3339,
            (Kind::Time, Some("epoch")) => Format::Epoch,
            (Kind::Time, Some("epoch_ms")) => Format::EpochMs,
            (Kind::Time, Some(pattern)) if pattern.contains('%') => {
                if chrono::format::StrftimeItems::new(pattern)
                    .any(|item| matches!(item, chrono::format::Item::Error))
                {
                    return Err(format!("{pattern:?} is not a valid strftime format"));
                }
                Format::Strftime(pattern.to_string())
            }
            (Kind::Time, Some(_)) => {
                return Err(
                    "expected `rfc3339`, `epoch`, `epoch_ms` or a strftime format such as `%Y-%m-%dT%H:%M:%SZ`"
                        .to_string(),
                );
            }
            (Kind::Text, None) => Format::Decimal,
            (Kind::Text, Some(_)) => {
                return Err("a text cursor is written as it is; remove `format`".to_string());
            }
        };
        Ok(format)
    }
}

/// Request values that change per run or per request: `${cursor}` and `${window.from}`,
/// `${window.to}`, `${window.last}`, replaced in the URL, query values and body strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars(Vec<(&'static str, String)>);

impl Vars {
    pub fn set(&mut self, name: &'static str, value: String) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every `${name}` of these variables replaced.
    pub fn apply(&self, text: &str) -> String {
        if !text.contains("${") {
            return text.to_string();
        }
        let mut out = text.to_string();
        for (name, value) in &self.0 {
            out = out.replace(&format!("${{{name}}}"), value);
        }
        out
    }

    /// A JSON body with the variables replaced in its strings.
    pub fn apply_json(&self, value: &Json) -> Json {
        match value {
            Json::String(text) => Json::String(self.apply(text)),
            Json::Array(items) => Json::Array(items.iter().map(|v| self.apply_json(v)).collect()),
            Json::Object(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.apply_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// The names a provider file may write as `${…}` that are not environment variables.
pub const REQUEST_VARS: [&str; 4] = ["cursor", "window.from", "window.to", "window.last"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_from_files_records_and_the_database() {
        assert_eq!(
            Mark::of_config(&CursorValue::Integer(17173049)),
            Mark::Integer(17173049)
        );
        let time = Mark::of_config(&CursorValue::Text("2024-01-01T00:00:00Z".into()));
        assert_eq!(time.kind(), Kind::Time);
        assert_eq!(time.stored(), "2024-01-01T00:00:00Z");
        assert_eq!(
            Mark::of_config(&CursorValue::Text("a".into())).kind(),
            Kind::Text
        );
        assert_eq!(
            Mark::of_record(Kind::Integer, &Json::String("0x1060a39".into())),
            Ok(Mark::Integer(17173049))
        );
        assert_eq!(
            Mark::of_record(Kind::Integer, &serde_json::json!(42)),
            Ok(Mark::Integer(42))
        );
        assert_eq!(
            Mark::of_record(Kind::Integer, &Json::Null),
            Err("missing".to_string())
        );
        assert!(Mark::of_record(Kind::Integer, &serde_json::json!("soon")).is_err());
        assert_eq!(
            Mark::of_record(Kind::Time, &serde_json::json!(1683029999)),
            Ok(Mark::Time(
                DateTime::from_timestamp(1683029999, 0).expect("time")
            ))
        );
        assert_eq!(Mark::parse(Kind::Time, &time.stored()), Ok(time));
    }

    #[test]
    fn steps_formats_and_comparisons() {
        let day = Step::of_config(&CursorValue::Text("1d".into()), Kind::Time).expect("step");
        assert_eq!(day, Step::Duration(TimeDelta::days(1)));
        assert!(Step::of_config(&CursorValue::Text("soon".into()), Kind::Time).is_err());
        assert!(Step::of_config(&CursorValue::Integer(-1), Kind::Integer).is_err());
        let t = Mark::parse(Kind::Time, "2024-01-02T00:00:00Z").expect("time");
        assert_eq!(
            t.moved(&day, -1).format(&Format::Rfc3339),
            "2024-01-01T00:00:00Z"
        );
        let f = Format::of_config(Some("%Y%m%d"), Kind::Time).expect("format");
        assert_eq!(t.format(&f), "20240102");
        assert_eq!(
            Mark::Integer(17173049).format(&Format::Hex),
            "0x1060a39".to_string()
        );
        assert!(Format::of_config(Some("hex"), Kind::Time).is_err());
        assert!(Mark::Integer(2).after(&Mark::Integer(1)));
        assert!(!Mark::Integer(2).after(&Mark::Text("1".into())));
    }

    #[test]
    fn request_variables_are_replaced_in_text_and_bodies() {
        let mut vars = Vars::default();
        vars.set("window.from", "0x1".into());
        vars.set("window.from", "0x2".into());
        vars.set("cursor", "5".into());
        assert_eq!(
            vars.apply("a=${window.from}&b=${cursor}&c=${x}"),
            "a=0x2&b=5&c=${x}"
        );
        let body = serde_json::json!({"params": [{"fromBlock": "${window.from}", "n": 1}]});
        assert_eq!(
            vars.apply_json(&body),
            serde_json::json!({"params": [{"fromBlock": "0x2", "n": 1}]})
        );
    }
}
