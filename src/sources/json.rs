//! JSON parsing that keeps large integers exact. `serde_json::Value` holds numbers as u64, i64
//! or f64, so `7786596450288373164569331648084` would become a rounded float; here an integer
//! that fits neither 64-bit type becomes its decimal digits as a string instead, which the
//! `uint256` transform reads exactly.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

pub fn parse(text: &str) -> Result<Value, serde_json::Error> {
    let raw: &RawValue = serde_json::from_str(text)?;
    exact(raw)
}

pub fn parse_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let raw: &RawValue = serde_json::from_slice(bytes)?;
    exact(raw)
}

fn exact(raw: &RawValue) -> Result<Value, serde_json::Error> {
    let text = raw.get().trim_start();
    match text.as_bytes().first() {
        Some(b'{') => {
            let fields: Vec<(String, &RawValue)> =
                serde_json::from_str::<indexmap_like::Entries>(raw.get())?.0;
            let mut map = Map::with_capacity(fields.len());
            for (key, value) in fields {
                map.insert(key, exact(value)?);
            }
            Ok(Value::Object(map))
        }
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(raw.get())?;
            items
                .into_iter()
                .map(exact)
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
}
