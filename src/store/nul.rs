//! NUL characters: PostgreSQL stores none in `text` or `jsonb` (SQLite does). Input holding one
//! is refused where it enters, with the place named, and text kept for a rejection is cleaned of
//! them: otherwise one value would fail the whole statement it shares with other records.

use std::borrow::Cow;

use serde_json::Value as Json;

/// Why a value with a NUL character is refused.
pub const REASON: &str = "contains a NUL character (\\u0000), which the database cannot store";

/// Whether a text can be stored at all.
pub fn storable(text: &str) -> bool {
    !text.contains('\0')
}

/// `text`, or the reason it is refused, naming `field`.
pub fn checked<'t>(field: &str, text: &'t str) -> Result<&'t str, String> {
    if storable(text) {
        Ok(text)
    } else {
        Err(format!("{field}: {REASON}"))
    }
}

/// The JSON path of the first string or key holding a NUL character, if any.
pub fn in_json(value: &Json) -> Option<String> {
    match value {
        Json::String(text) => text.contains('\0').then(|| "$".to_string()),
        Json::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| in_json(item).map(|path| format!("$[{i}]{}", &path[1..]))),
        Json::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                return Some(format!("$.{}", key.replace('\0', "\\u0000")));
            }
            in_json(item).map(|path| format!("$.{key}{}", &path[1..]))
        }),
        _ => None,
    }
}

/// The first mapped field (with the path inside it) holding a NUL character, if any.
pub fn in_fields(fields: &serde_json::Map<String, Json>) -> Option<String> {
    fields.iter().find_map(|(name, value)| {
        if name.contains('\0') {
            return Some(name.replace('\0', "\\u0000"));
        }
        in_json(value).map(|path| format!("{name}{}", &path[1..]))
    })
}

/// Whether JSON text holds a NUL character in a string or key.
pub fn in_json_text(text: &str) -> bool {
    // Only an escape can put one in valid JSON text.
    text.contains("u0000")
        && serde_json::from_str::<Json>(text).is_ok_and(|value| in_json(&value).is_some())
}

/// `text` with each NUL character replaced by U+FFFD, to keep a refused payload.
pub fn replaced(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{fffd}"))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_path_of_the_first_nul_is_named() {
        assert_eq!(
            in_json(&json!({"a": 1, "b": ["x", {"c": "y\u{0}"}]})),
            Some("$.b[1].c".into())
        );
        assert_eq!(in_json(&json!("a\u{0}")), Some("$".into()));
        assert_eq!(in_json(&json!({"k\u{0}": 1})), Some("$.k\\u0000".into()));
        assert_eq!(in_json(&json!({"a": "\\u0000"})), None);
        assert!(in_json_text(r#"{"a": ["\u0000"]}"#));
        assert!(!in_json_text(r#"{"a": "\\u0000"}"#));
        assert_eq!(replaced("a\u{0}b"), "a\u{fffd}b");
    }
}
