//! Where a field's value is found in a raw record: a JSONPath (RFC 9535) or a top-level key.

use serde_json::Value;
use serde_json_path::JsonPath;

/// A field's source in a raw record, parsed once.
#[derive(Debug, Clone)]
pub enum FieldPath {
    /// Text starting with `$`: a JSONPath query.
    Json(JsonPath),
    /// Anything else: a key of the top-level object (for text input, a capture name).
    Key(String),
}

impl FieldPath {
    /// Parses `text`; the error is the JSONPath parser's own message.
    pub fn parse(text: &str) -> Result<FieldPath, String> {
        if text.starts_with('$') {
            JsonPath::parse(text)
                .map(FieldPath::Json)
                .map_err(|error| error.to_string())
        } else {
            Ok(FieldPath::Key(text.to_string()))
        }
    }

    /// The value at this path: none when nothing matches, the node itself when one does, and an
    /// array of the nodes (in document order) when several do.
    pub fn find(&self, raw: &Value) -> Option<Value> {
        match self {
            FieldPath::Key(key) => raw.get(key.as_str()).cloned(),
            FieldPath::Json(path) => {
                let mut nodes = path.query(raw).all();
                match nodes.len() {
                    0 => None,
                    1 => nodes.pop().cloned(),
                    _ => Some(Value::Array(nodes.into_iter().cloned().collect())),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn find(path: &str, raw: &Value) -> Option<Value> {
        FieldPath::parse(path).expect("valid path").find(raw)
    }

    #[test]
    fn keys_and_paths() {
        let raw = json!({"a": {"b": 1}, "$odd": 2, "list": [{"x": 1}, {"y": 2}, {"x": 3}]});
        assert_eq!(find("a", &raw), Some(json!({"b": 1})));
        assert_eq!(find("missing", &raw), None);
        assert_eq!(find("$.a.b", &raw), Some(json!(1)));
        assert_eq!(find("$.a.c", &raw), None);
        // Several nodes become an array; elements without the key are simply not matched.
        assert_eq!(find("$.list[*].x", &raw), Some(json!([1, 3])));
        assert_eq!(find("$.list[*].y", &raw), Some(json!(2)));
        // A key lookup on something that is not an object finds nothing.
        assert_eq!(find("a", &json!([1, 2])), None);
    }

    #[test]
    fn bad_paths_say_why() {
        assert!(FieldPath::parse("$.[").is_err());
        assert!(FieldPath::parse("$..").is_err());
    }
}
