//! Record filters (`skip` and `keep`): which records a provider leaves out, decided on each
//! record as its source lists it, whatever the source kind. An HTTP listing applies them
//! before `follow` (a skipped entry's document is never fetched); every other kind when its
//! records are mapped.

use serde_json::Value as Json;
use serde_json_path::JsonPath;

use crate::providers::Provider;
use crate::providers::definition::{RecordRule, Source};

/// A provider's filters, compiled once.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    skip: Vec<(JsonPath, RecordRule)>,
    keep: Vec<(JsonPath, RecordRule)>,
}

impl RecordFilter {
    /// The provider's `skip` and `keep` rules, with an HTTP source's `source.skip`.
    pub fn of(provider: &Provider) -> Result<RecordFilter, String> {
        let def = &provider.def;
        let mut skip = def.skip.clone();
        if let Source::Http(http) = &def.source {
            skip.extend(http.skip.iter().cloned());
        }
        RecordFilter::new(skip, def.keep.clone())
    }

    /// Compiles the rules; the error names a rule whose field is not a JSONPath.
    pub fn new(skip: Vec<RecordRule>, keep: Vec<RecordRule>) -> Result<RecordFilter, String> {
        let compile = |key: &str, rules: Vec<RecordRule>| {
            rules
                .into_iter()
                .enumerate()
                .map(|(i, rule)| match JsonPath::parse(&rule.field) {
                    Ok(path) => Ok((path, rule)),
                    Err(e) => Err(format!(
                        "{key}[{i}].field: bad JSONPath `{}`: {e}",
                        rule.field
                    )),
                })
                .collect::<Result<Vec<_>, String>>()
        };
        Ok(RecordFilter {
            skip: compile("skip", skip)?,
            keep: compile("keep", keep)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.skip.is_empty() && self.keep.is_empty()
    }

    /// Whether `record` stays: no `skip` rule matches it and every `keep` rule does.
    pub fn passes(&self, record: &Json) -> bool {
        !self
            .skip
            .iter()
            .any(|(path, rule)| matches(path, rule, record))
            && self
                .keep
                .iter()
                .all(|(path, rule)| matches(path, rule, record))
    }
}

/// A rule matches when its field is present and any one of its conditions holds.
fn matches(path: &JsonPath, rule: &RecordRule, record: &Json) -> bool {
    let Ok(value) = path.query(record).exactly_one() else {
        return false;
    };
    if let (Some(lengths), Json::Array(items)) = (&rule.length, value)
        && lengths.allows(items.len() as u64)
    {
        return true;
    }
    let text = match value {
        Json::String(text) => text.clone(),
        Json::Number(n) => n.to_string(),
        Json::Bool(b) => b.to_string(),
        _ => return false,
    };
    rule.starts_with
        .as_deref()
        .is_some_and(|prefix| text.starts_with(prefix))
        || rule.equals.as_deref().is_some_and(|equal| text == equal)
        || rule
            .one_of
            .as_ref()
            .is_some_and(|list| list.contains(&text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(skip: &[Json], keep: &[Json]) -> RecordFilter {
        let rules = |list: &[Json]| {
            list.iter()
                .map(|r| {
                    let rule: RecordRule = serde_json::from_value(r.clone()).expect("rule");
                    (JsonPath::parse(&rule.field).expect("path"), rule)
                })
                .collect()
        };
        RecordFilter {
            skip: rules(skip),
            keep: rules(keep),
        }
    }

    #[test]
    fn skip_any_keep_all() {
        let transfer = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
        let f = filter(
            &[json!({"field": "$.name", "starts_with": "index"})],
            &[
                json!({"field": "$.topics[0]", "equals": transfer}),
                json!({"field": "$.topics", "length": [3, 4]}),
            ],
        );
        let log = |topics: usize, name: &str| {
            let mut list = vec![json!(transfer)];
            list.extend((1..topics).map(|i| json!(format!("0x{i:064x}"))));
            json!({"name": name, "topics": list})
        };
        assert!(f.passes(&log(3, "a")));
        assert!(f.passes(&log(4, "a")));
        assert!(!f.passes(&log(2, "a")));
        assert!(!f.passes(&log(3, "index-1")));
        assert!(!f.passes(&json!({"topics": ["0xother", "a", "b"]})));
        let numbers = filter(&[json!({"field": "$.n", "in": ["1", "2"]})], &[]);
        assert!(!numbers.passes(&json!({"n": 2})));
        assert!(numbers.passes(&json!({"n": 3})));
        assert!(numbers.passes(&json!({})));
    }
}
