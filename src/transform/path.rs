//! Where a field's value is found in a raw record: a JSONPath (RFC 9535) or a top-level key.

use serde_json::Value;
use serde_json_path::JsonPath;

/// A field's source in a raw record, parsed once.
#[derive(Debug, Clone)]
pub enum FieldPath {
    /// Text starting with `$`: a JSONPath query.
    Json(JsonPath),
    /// A JSONPath of member names only (`$.value.token_address`): the same nodes, found by
    /// direct lookups instead of the query engine (most mappings are of this form, and a
    /// busy Kafka source maps every field of every message).
    Members(Vec<String>),
    /// Anything else: a key of the top-level object (for text input, a capture name).
    Key(String),
}

impl FieldPath {
    /// Parses `text`; the error is the JSONPath parser's own message.
    pub fn parse(text: &str) -> Result<FieldPath, String> {
        if text.starts_with('$') {
            let path = JsonPath::parse(text).map_err(|error| error.to_string())?;
            Ok(match members(text) {
                Some(names) => FieldPath::Members(names),
                None => FieldPath::Json(path),
            })
        } else {
            Ok(FieldPath::Key(text.to_string()))
        }
    }

    /// The value at this path: none when nothing matches, the node itself when one does, and an
    /// array of the nodes (in document order) when several do.
    pub fn find(&self, raw: &Value) -> Option<Value> {
        match self {
            FieldPath::Key(key) => raw.get(key.as_str()).cloned(),
            FieldPath::Members(names) => names
                .iter()
                .try_fold(raw, |node, name| node.as_object()?.get(name.as_str()))
                .cloned(),
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

/// The member names of `$.a.b…` when the path is nothing else (each name an ASCII
/// identifier, no brackets, wildcards or filters).
fn members(text: &str) -> Option<Vec<String>> {
    let rest = text.strip_prefix("$.")?;
    rest.split('.')
        .map(|name| {
            let mut chars = name.chars();
            let first = chars.next()?;
            let plain = (first.is_ascii_alphabetic() || first == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            plain.then(|| name.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn find(path: &str, raw: &Value) -> Option<Value> {
        FieldPath::parse(path).expect("valid path").find(raw)
    }

    #[test]
    fn member_paths_find_what_the_query_engine_finds() {
        let raw = json!({"value": {"a": 1, "b": {"c": "x"}, "list": [1]}, "n": null});
        for path in [
            "$.value.a",
            "$.value.b.c",
            "$.value.missing",
            "$.value.list.a",
            "$.n",
            "$.n.a",
            "$.value",
        ] {
            let fast = FieldPath::parse(path).expect("valid");
            assert!(matches!(fast, FieldPath::Members(_)), "{path}");
            let engine = FieldPath::Json(JsonPath::parse(path).expect("valid"));
            assert_eq!(fast.find(&raw), engine.find(&raw), "{path}");
        }
        for path in ["$", "$.a[0]", "$.*", "$..a", "$.a-b", "$['a']", "$.1a"] {
            assert!(
                !matches!(FieldPath::parse(path), Ok(FieldPath::Members(_))),
                "{path}"
            );
        }
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
