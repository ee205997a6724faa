//! Text input: a regular expression with named captures turns a body into records.

use regex::Regex;
use serde_json::{Map, Value};

/// Text input: every match of the regex is one record whose fields are its named captures (strings).
///
/// A named group that took no part in a match is absent from that record, so a mapping can give
/// it a `default`.
#[derive(Debug, Clone)]
pub struct TextParser {
    regex: Regex,
}

impl TextParser {
    /// Compiles `pattern`. A pattern without named captures is refused: it could only give
    /// empty records.
    pub fn new(pattern: &str) -> Result<TextParser, String> {
        let regex = Regex::new(pattern).map_err(|error| format!("bad text pattern: {error}"))?;
        if regex.capture_names().flatten().next().is_none() {
            return Err(format!(
                "text pattern {pattern:?} has no named captures such as (?P<id>…)"
            ));
        }
        Ok(TextParser { regex })
    }

    /// One JSON object per match, in order of appearance.
    pub fn records(&self, body: &str) -> Vec<Value> {
        self.regex
            .captures_iter(body)
            .map(|captures| {
                let mut record = Map::new();
                for name in self.regex.capture_names().flatten() {
                    if let Some(found) = captures.name(name) {
                        record.insert(name.to_string(), Value::String(found.as_str().to_string()));
                    }
                }
                Value::Object(record)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_match_is_a_record() {
        let parser = TextParser::new(r"(?m)^(?P<key>\w+)=(?P<value>\d+)?$").expect("valid");
        assert_eq!(
            parser.records("a=1\nb=\nnot a line\nc=3"),
            vec![
                json!({"key": "a", "value": "1"}),
                json!({"key": "b"}),
                json!({"key": "c", "value": "3"}),
            ]
        );
        assert!(parser.records("").is_empty());
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(
            TextParser::new("(?P<a>")
                .expect_err("unclosed group")
                .starts_with("bad text pattern: ")
        );
        assert_eq!(
            TextParser::new(r"(\d+)").expect_err("no names"),
            "text pattern \"(\\\\d+)\" has no named captures such as (?P<id>…)"
        );
    }
}
