//! JSON parsing that keeps large integers exact. `serde_json::Value` holds numbers as u64, i64
//! or f64, so `7786596450288373164569331648084` would become a rounded float; here an integer
//! that fits neither 64-bit type becomes its decimal digits as a string instead, which the
//! `uint256` transform reads exactly.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Deepest nesting of arrays and objects accepted: serde_json's own limit. Reading a raw value
/// has none, and [`exact`] recurses once per level, so without it a body of a few hundred
/// thousand `[` would overflow the stack.
const MAX_DEPTH: usize = 128;

pub fn parse(text: &str) -> Result<Value, serde_json::Error> {
    let raw: &RawValue = serde_json::from_str(text)?;
    exact(raw, 0)
}

pub fn parse_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let raw: &RawValue = serde_json::from_slice(bytes)?;
    exact(raw, 0)
}

fn exact(raw: &RawValue, depth: usize) -> Result<Value, serde_json::Error> {
    let text = raw.get().trim_start();
    if depth >= MAX_DEPTH && matches!(text.as_bytes().first(), Some(b'{' | b'[')) {
        return Err(serde::de::Error::custom(format!(
            "recursion limit exceeded: arrays and objects nested more than {MAX_DEPTH} deep"
        )));
    }
    match text.as_bytes().first() {
        Some(b'{') => {
            let fields: Vec<(String, &RawValue)> =
                serde_json::from_str::<indexmap_like::Entries>(raw.get())?.0;
            let mut map = Map::with_capacity(fields.len());
            for (key, value) in fields {
                map.insert(key, exact(value, depth + 1)?);
            }
            Ok(Value::Object(map))
        }
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(raw.get())?;
            items
                .into_iter()
                .map(|item| exact(item, depth + 1))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        Some(b'-' | b'0'..=b'9') => {
            let number = text.trim_end();
            let integer = !number.contains(['.', 'e', 'E']);
            let fits = number.parse::<i64>().is_ok() || number.parse::<u64>().is_ok();
            if integer && !fits {
                Ok(Value::String(number.to_string()))
            } else {
                serde_json::from_str(number)
            }
        }
        _ => serde_json::from_str(raw.get()),
    }
}

/// An object's entries in document order, borrowing each value's raw text.
mod indexmap_like {
    use std::fmt;

    use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
    use serde_json::value::RawValue;

    pub struct Entries<'a>(pub Vec<(String, &'a RawValue)>);

    impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct EntriesVisitor;
            impl<'de> Visitor<'de> for EntriesVisitor {
                type Value = Entries<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                    let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(8));
                    while let Some((key, value)) = map.next_entry::<String, &'de RawValue>()? {
                        entries.push((key, value));
                    }
                    Ok(Entries(entries))
                }
            }
            deserializer.deserialize_map(EntriesVisitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_integers_keep_their_digits() {
        let v = parse(r#"{"value": 7786596450288373164569331648084, "n": 5, "f": 1.5, "neg": -3, "list": [1, 18446744073709551616], "s": "x", "nested": {"b": true, "z": null}}"#)
            .expect("valid");
        assert_eq!(
            v["value"],
            Value::String("7786596450288373164569331648084".into())
        );
        assert_eq!(v["n"], 5);
        assert_eq!(v["f"], 1.5);
        assert_eq!(v["neg"], -3);
        assert_eq!(v["list"][1], Value::String("18446744073709551616".into()));
        assert_eq!(v["nested"]["b"], true);
        assert!(v["nested"]["z"].is_null());
        assert!(parse("{\"a\": ").is_err());
    }

    #[test]
    fn nesting_is_limited_like_serde_json() {
        // Reading the raw value checks no depth; recursing once per level, 200,000 levels
        // overflowed the stack.
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(parse(&deep(128)).is_ok());
        for n in [129, 200_000] {
            let error = parse(&deep(n)).expect_err("too deep").to_string();
            assert_eq!(
                error,
                "recursion limit exceeded: arrays and objects nested more than 128 deep"
            );
        }
        assert!(parse_slice(format!("{{\"a\": {}}}", deep(127)).as_bytes()).is_ok());
        assert!(parse_slice(format!("{{\"a\": {}}}", deep(128)).as_bytes()).is_err());
    }
}
