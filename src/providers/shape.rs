//! The shape of a provider file, checked key by key against the JSON Schema derived from
//! `definition.rs` — so the keys a file may hold are defined once, by the types serde reads it
//! into. Every problem names its key path (`source.pagination.page_size`) and says what was
//! expected. serde alone would lose the path inside tagged and untagged enums (`source`,
//! `pagination`, `parse`, fields and transforms); this walk keeps it.
//!
//! The walk understands the parts of JSON Schema that schemars writes for these types:
//! `$ref`, `type` (with `null` for options), `enum`, `minimum`/`maximum`/`exclusiveMinimum`,
//! `properties`/`required`/`additionalProperties`, `items`, `oneOf` of tables told apart by a
//! tag key (`kind = "http"`) or by their one key (`{ int = … }`), and `anyOf` of alternatives
//! told apart by the value's type.

use std::sync::LazyLock;

use serde_json::{Map, Value as Schema};
use toml::Value;

use super::definition::ProviderFile;
use super::load::Problems;

/// A schema any value fits.
static ANY: Schema = Schema::Bool(true);

/// The provider file's schema, derived once.
static PROVIDER_FILE: LazyLock<Schema> =
    LazyLock::new(|| schemars::schema_for!(ProviderFile).to_value());

/// The JSON Schema of a provider file (for editors: `tributary providers --schema`).
pub fn provider_file_schema() -> &'static Schema {
    &PROVIDER_FILE
}

/// Checks a provider file's top-level table against the schema, adding every problem.
pub(super) fn check(table: &toml::Table, problems: &mut Problems) {
    let walk = Walk {
        root: provider_file_schema(),
    };
    walk.table(table, walk.root, "", None, problems);
}

struct Walk<'s> {
    root: &'s Schema,
}

/// A table that is one choice of a tagged enum: its tag key and value.
type Tag<'a> = Option<(&'a str, &'a str)>;

impl<'s> Walk<'s> {
    /// `schema` with `$ref`s followed.
    fn resolve(&self, mut schema: &'s Schema) -> &'s Schema {
        for _ in 0..16 {
            let Some(reference) = schema.get("$ref").and_then(Schema::as_str) else {
                return schema;
            };
            let name = reference.trim_start_matches("#/$defs/");
            match self.root.get("$defs").and_then(|defs| defs.get(name)) {
                Some(target) => schema = target,
                None => return schema,
            }
        }
        schema
    }

    fn check(&self, value: &Value, schema: &'s Schema, path: &str, problems: &mut Problems) {
        let schema = self.resolve(schema);
        if schema.as_bool() == Some(true) || is_any(schema) {
            no_dates(value, path, problems);
            return;
        }
        if let Some(alternatives) = schema.get("oneOf").and_then(Schema::as_array) {
            return self.one_of(value, schema, alternatives, path, problems);
        }
        if let Some(alternatives) = schema.get("anyOf").and_then(Schema::as_array) {
            return self.any_of(value, alternatives, path, problems);
        }
        if let Some(names) = schema.get("enum").and_then(Schema::as_array) {
            let names: Vec<&str> = names.iter().filter_map(Schema::as_str).collect();
            match value {
                Value::String(found) if names.contains(&found.as_str()) => {}
                Value::String(found) => problems.add(
                    path,
                    format!(
                        "expected one of {} (found `{found}`)",
                        quoted(names.iter().copied())
                    ),
                ),
                _ => problems.add(
                    path,
                    format!("expected one of {}", quoted(names.into_iter())),
                ),
            }
            return;
        }
        match (type_of(schema), value) {
            (Some("string"), Value::String(_)) => {}
            (Some("boolean"), Value::Boolean(_)) => {}
            (Some("integer"), Value::Integer(n)) if in_range(schema, *n as f64) => {}
            (Some("number"), Value::Integer(n)) if in_range(schema, *n as f64) => {}
            (Some("number"), Value::Float(x)) if x.is_finite() && in_range(schema, *x) => {}
            (Some("object"), Value::Table(table)) => {
                self.table(table, schema, path, None, problems)
            }
            (Some("array"), Value::Array(items)) => {
                let item_schema = schema.get("items").unwrap_or(&ANY);
                if self.is_scalar(item_schema) {
                    // A list of plain values with a bad one is described as the list.
                    if !items.iter().all(|item| self.accepts(item_schema, item)) {
                        problems.add(path, self.expected(schema));
                    }
                } else {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item, item_schema, &format!("{path}[{i}]"), problems);
                    }
                }
            }
            _ => problems.add(path, self.expected(schema)),
        }
    }

    /// Checks a table's keys against an object schema: unknown keys, each value, missing
    /// required keys. `tag` is the tag key and its value when the table is one choice of a
    /// tagged enum; the tag key is then allowed too.
    fn table(
        &self,
        table: &toml::Table,
        schema: &'s Schema,
        path: &str,
        tag: Tag<'_>,
        problems: &mut Problems,
    ) {
        let empty = Map::new();
        let properties = schema
            .get("properties")
            .and_then(Schema::as_object)
            .unwrap_or(&empty);
        let additional = schema.get("additionalProperties");
        for (name, value) in table {
            if tag.is_some_and(|(tag_key, _)| tag_key == name) {
                continue;
            }
            let key_path = child(path, name);
            match (properties.get(name), additional) {
                (Some(property), _) => self.check(value, property, &key_path, problems),
                (None, Some(Schema::Bool(false))) => {
                    let keys: Vec<&str> = properties
                        .keys()
                        .map(String::as_str)
                        .filter(|k| tag.is_none_or(|(tag_key, _)| tag_key != *k))
                        .collect();
                    let message = match tag {
                        Some((tag_key, variant)) if keys.is_empty() => {
                            format!("unknown key; `{tag_key} = \"{variant}\"` takes no other keys")
                        }
                        Some((tag_key, _)) => format!(
                            "unknown key; expected one of {}",
                            quoted(std::iter::once(tag_key).chain(keys))
                        ),
                        None => {
                            format!("unknown key; expected one of {}", quoted(keys.into_iter()))
                        }
                    };
                    problems.add(key_path, message);
                }
                (None, Some(schema)) if schema.is_object() => {
                    self.check(value, schema, &key_path, problems)
                }
                (None, _) => {}
            }
        }
        let required = schema.get("required").and_then(Schema::as_array);
        for name in required.into_iter().flatten().filter_map(Schema::as_str) {
            if tag.is_some_and(|(tag_key, _)| tag_key == name) || table.contains_key(name) {
                continue;
            }
            let expected = properties
                .get(name)
                .map(|p| self.expected(p))
                .unwrap_or_else(|| "expected a value".to_string());
            problems.add(child(path, name), format!("missing; {expected}"));
        }
    }

    /// Tables told apart by a tag key, or by their one key.
    fn one_of(
        &self,
        value: &Value,
        schema: &'s Schema,
        alternatives: &'s [Schema],
        path: &str,
        problems: &mut Problems,
    ) {
        let alternatives: Vec<&Schema> = alternatives.iter().map(|a| self.resolve(a)).collect();
        let Value::Table(table) = value else {
            problems.add(path, self.expected(schema));
            return;
        };
        if let Some(tag) = tag_key(&alternatives) {
            let tags: Vec<&str> = alternatives
                .iter()
                .filter_map(|a| tag_value(a, tag))
                .collect();
            let tag_path = child(path, tag);
            match table.get(tag) {
                None => problems.add(
                    tag_path,
                    format!("missing; expected one of {}", quoted(tags.iter().copied())),
                ),
                Some(Value::String(found)) => {
                    match alternatives
                        .iter()
                        .find(|a| tag_value(a, tag) == Some(found))
                    {
                        Some(chosen) => {
                            self.table(table, chosen, path, Some((tag, found)), problems)
                        }
                        None => problems.add(
                            tag_path,
                            format!(
                                "expected one of {} (found `{found}`)",
                                quoted(tags.iter().copied())
                            ),
                        ),
                    }
                }
                Some(_) => problems.add(
                    tag_path,
                    format!("expected one of {}", quoted(tags.iter().copied())),
                ),
            }
            return;
        }
        // Each choice a table of one key: `{ int = { … } }`.
        let names: Vec<&str> = alternatives.iter().filter_map(|a| only_key(a)).collect();
        if table.len() != 1 {
            problems.add(
                path,
                format!(
                    "expected a table with exactly one of {}",
                    quoted(names.iter().copied())
                ),
            );
            return;
        }
        for name in table.keys() {
            match alternatives.iter().find(|a| only_key(a) == Some(name)) {
                Some(chosen) => self.table(table, chosen, path, None, problems),
                None => problems.add(
                    child(path, name),
                    format!(
                        "unknown key; expected one of {}",
                        quoted(names.iter().copied())
                    ),
                ),
            }
        }
    }

    /// Alternatives told apart by the value's type; an option's `null` never is a TOML value.
    fn any_of(
        &self,
        value: &Value,
        alternatives: &'s [Schema],
        path: &str,
        problems: &mut Problems,
    ) {
        let alternatives: Vec<&'s Schema> = alternatives
            .iter()
            .map(|a| self.resolve(a))
            .filter(|a| type_of(a) != Some("null"))
            .collect();
        let fitting: Vec<&'s Schema> = alternatives
            .iter()
            .copied()
            .filter(|a| self.kind_fits(a, value))
            .collect();
        match fitting.as_slice() {
            [one] => self.check(value, one, path, problems),
            [] => {
                let expected: Vec<String> = alternatives.iter().map(|a| self.describe(a)).collect();
                problems.add(path, format!("expected {}", expected.join(" or ")));
            }
            // Several of the same type: the first that fits without a problem, else the first's.
            [first, ..] => {
                if !fitting.iter().any(|a| self.accepts(a, value)) {
                    self.check(value, first, path, problems);
                }
            }
        }
    }

    /// Whether `value` fits `schema` with no problem at all.
    fn accepts(&self, schema: &'s Schema, value: &Value) -> bool {
        let mut trial = Problems::detached();
        self.check(value, schema, "", &mut trial);
        trial.is_empty()
    }

    /// Whether the value's TOML type is one the schema takes (not whether its contents are).
    fn kind_fits(&self, schema: &'s Schema, value: &Value) -> bool {
        let schema = self.resolve(schema);
        if schema.as_bool() == Some(true) || is_any(schema) {
            return true;
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(alternatives) = schema.get(key).and_then(Schema::as_array) {
                return alternatives.iter().any(|a| self.kind_fits(a, value));
            }
        }
        if schema.get("enum").is_some() {
            return matches!(value, Value::String(_));
        }
        matches!(
            (type_of(schema), value),
            (Some("string"), Value::String(_))
                | (Some("boolean"), Value::Boolean(_))
                | (Some("integer"), Value::Integer(_))
                | (Some("number"), Value::Integer(_) | Value::Float(_))
                | (Some("object"), Value::Table(_))
                | (Some("array"), Value::Array(_))
        )
    }

    /// A value that is neither a table nor a list.
    fn is_scalar(&self, schema: &'s Schema) -> bool {
        let schema = self.resolve(schema);
        matches!(
            type_of(schema),
            Some("string" | "boolean" | "integer" | "number")
        ) || schema.get("enum").is_some()
    }

    /// "expected …", for a value of `schema` that is missing or of the wrong type.
    fn expected(&self, schema: &'s Schema) -> String {
        format!("expected {}", self.describe(schema))
    }

    /// What a value of `schema` is, in words.
    fn describe(&self, schema: &'s Schema) -> String {
        let schema = self.resolve(schema);
        if schema.as_bool() == Some(true) || is_any(schema) {
            return "a value".to_string();
        }
        if let Some(names) = schema.get("enum").and_then(Schema::as_array) {
            return format!("one of {}", quoted(names.iter().filter_map(Schema::as_str)));
        }
        if let Some(alternatives) = schema.get("oneOf").and_then(Schema::as_array) {
            let alternatives: Vec<&Schema> = alternatives.iter().map(|a| self.resolve(a)).collect();
            if let Some(tag) = tag_key(&alternatives) {
                let tags = alternatives.iter().filter_map(|a| tag_value(a, tag));
                return format!("a table with `{tag}` = {}", quoted(tags));
            }
            let names = alternatives.iter().filter_map(|a| only_key(a));
            return format!("a table with one of {}", quoted(names));
        }
        if let Some(alternatives) = schema.get("anyOf").and_then(Schema::as_array) {
            let described: Vec<String> = alternatives
                .iter()
                .map(|a| self.resolve(a))
                .filter(|a| type_of(a) != Some("null"))
                .map(|a| self.describe(a))
                .collect();
            return described.join(" or ");
        }
        match type_of(schema) {
            Some("string") => "a string".to_string(),
            Some("boolean") => "true or false".to_string(),
            Some("integer") => format!("a whole number{}", range_words(schema)),
            Some("number") => format!("a number{}", range_words(schema)),
            Some("array") => {
                let items = schema.get("items").map(|i| self.resolve(i));
                match items {
                    Some(items) if type_of(items) == Some("object") => {
                        "a list of tables (`[[…]]`)".to_string()
                    }
                    Some(items) if type_of(items) == Some("integer") => {
                        format!("a list of whole numbers{}", range_words(items))
                    }
                    Some(items) => format!("a list of {}", self.describe(items)),
                    None => "a list".to_string(),
                }
            }
            Some("object") => match schema.get("additionalProperties") {
                Some(values) if values.is_object() => {
                    let values = self.resolve(values);
                    if type_of(values) == Some("string") {
                        "a table of strings".to_string()
                    } else {
                        "a table".to_string()
                    }
                }
                _ => {
                    let keys: Vec<&str> = schema
                        .get("properties")
                        .and_then(Schema::as_object)
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    if keys.is_empty() {
                        "a table".to_string()
                    } else {
                        format!("a table with {}", quoted(keys.into_iter()))
                    }
                }
            },
            _ => "a value".to_string(),
        }
    }
}

/// `{}` or a schema with only a description: any value.
fn is_any(schema: &Schema) -> bool {
    schema
        .as_object()
        .is_some_and(|o| o.keys().all(|k| k == "description" || k == "default"))
}

/// The schema's type, the non-null one of `["string", "null"]`.
fn type_of(schema: &Schema) -> Option<&str> {
    match schema.get("type")? {
        Schema::String(kind) => Some(kind),
        Schema::Array(kinds) => kinds
            .iter()
            .filter_map(Schema::as_str)
            .find(|kind| *kind != "null"),
        _ => None,
    }
}

fn in_range(schema: &Schema, n: f64) -> bool {
    let bound = |key: &str| schema.get(key).and_then(Schema::as_f64);
    bound("minimum").is_none_or(|min| n >= min)
        && bound("maximum").is_none_or(|max| n <= max)
        && bound("exclusiveMinimum").is_none_or(|min| n > min)
}

/// " of at least 1", " from 100 to 599", " greater than 0", " (0 or more)", or nothing.
fn range_words(schema: &Schema) -> String {
    let bound = |key: &str| schema.get(key).and_then(Schema::as_f64);
    // A format's own limits (`uint16`'s 65535) say nothing a user chose.
    let max = bound("maximum").filter(|max| *max < 65_535.0);
    match (bound("minimum"), max, bound("exclusiveMinimum")) {
        (_, _, Some(min)) => format!(" greater than {min}"),
        (Some(min), Some(max), None) => format!(" from {min} to {max}"),
        (Some(0.0), None, None) => " (0 or more)".to_string(),
        (Some(min), None, None) => format!(" of at least {min}"),
        (None, Some(max), None) => format!(" of at most {max}"),
        (None, None, None) => String::new(),
    }
}

/// The key every alternative of a tagged enum holds as a constant (`kind`, `format`).
fn tag_key<'a>(alternatives: &[&'a Schema]) -> Option<&'a str> {
    let first = alternatives.first()?.get("properties")?.as_object()?;
    first
        .iter()
        .find(|(name, _)| alternatives.iter().all(|a| tag_value(a, name).is_some()))
        .map(|(name, _)| name.as_str())
}

fn tag_value<'a>(alternative: &'a Schema, tag: &str) -> Option<&'a str> {
    let property = alternative.get("properties")?.get(tag)?;
    property.get("const").and_then(Schema::as_str).or_else(|| {
        match property.get("enum").and_then(Schema::as_array)?.as_slice() {
            [one] => one.as_str(),
            _ => None,
        }
    })
}

/// The one key of a table that is a choice by its key (`{ int = … }`).
fn only_key(alternative: &Schema) -> Option<&str> {
    match alternative.get("required")?.as_array()?.as_slice() {
        [one] => one.as_str(),
        _ => None,
    }
}

/// `` `a`, `b`, `c` ``
pub(super) fn quoted<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// TOML dates have no JSON form: serde would turn one into an odd object.
fn no_dates(value: &Value, path: &str, problems: &mut Problems) {
    match value {
        Value::Datetime(_) => problems.add(
            path,
            "TOML dates are not supported here; write the date as a string",
        ),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                no_dates(item, &format!("{path}[{i}]"), problems);
            }
        }
        Value::Table(table) => {
            for (name, item) in table {
                no_dates(item, &child(path, name), problems);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::providers::load::fixtures::{PUSH_TOKEN, http, problems};
    use std::path::Path;

    use proptest::prelude::*;
    use toml::Value;

    use super::*;

    /// Whether the shape check finds no problem.
    fn shape_ok(table: &toml::Table) -> bool {
        let mut problems = Problems::detached();
        check(table, &mut problems);
        problems.is_empty()
    }

    /// Whether serde reads the file into the definition.
    fn serde_ok(table: &toml::Table) -> bool {
        toml::to_string(table).is_ok_and(|text| toml::from_str::<ProviderFile>(&text).is_ok())
    }

    /// Every provider file the project ships or documents: the starting points for mutations.
    fn known_files() -> &'static [toml::Table] {
        static FILES: std::sync::LazyLock<Vec<toml::Table>> =
            std::sync::LazyLock::new(read_known_files);
        &FILES
    }

    fn read_known_files() -> Vec<toml::Table> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut texts = Vec::new();
        for dir in ["providers", "providers/templates"] {
            for entry in std::fs::read_dir(root.join(dir)).expect("providers directory") {
                let path = entry.expect("entry").path();
                let name = path.to_string_lossy().to_string();
                if name.ends_with(".toml") || name.ends_with(".toml.example") {
                    texts.push(std::fs::read_to_string(&path).expect("read"));
                }
            }
        }
        // The reference's examples, fenced as ```toml.
        let readme = std::fs::read_to_string(root.join("providers/README.md")).expect("README");
        let mut rest = readme.as_str();
        while let Some(start) = rest.find("```toml\n") {
            let body = &rest[start + 8..];
            let end = body.find("```").unwrap_or(body.len());
            texts.push(body[..end].to_string());
            rest = &body[end..];
        }
        texts
            .iter()
            .filter_map(|text| toml::from_str::<toml::Table>(text).ok())
            // Whole files only: a snippet such as `[source.auth]` alone is not one.
            .filter(|table| table.contains_key("source") && table.contains_key("entity"))
            .collect()
    }

    /// A step of a path into a TOML document.
    #[derive(Debug, Clone)]
    enum Step {
        Key(String),
        Index(usize),
    }

    /// Every path to a value in `value`.
    fn paths(value: &Value, at: Vec<Step>, out: &mut Vec<Vec<Step>>) {
        match value {
            Value::Table(table) => {
                for (key, inner) in table {
                    let mut path = at.clone();
                    path.push(Step::Key(key.clone()));
                    out.push(path.clone());
                    paths(inner, path, out);
                }
            }
            Value::Array(items) => {
                for (i, inner) in items.iter().enumerate() {
                    let mut path = at.clone();
                    path.push(Step::Index(i));
                    out.push(path.clone());
                    paths(inner, path, out);
                }
            }
            _ => {}
        }
    }

    fn at_mut<'v>(value: &'v mut Value, path: &[Step]) -> Option<&'v mut Value> {
        match path.split_first() {
            None => Some(value),
            Some((Step::Key(key), rest)) => at_mut(value.as_table_mut()?.get_mut(key)?, rest),
            Some((Step::Index(i), rest)) => at_mut(value.as_array_mut()?.get_mut(*i)?, rest),
        }
    }

    /// Values a mutation puts somewhere: of every TOML type, in and out of ranges, and the
    /// tags and names the schema knows.
    fn replacement() -> impl Strategy<Value = Value> {
        prop::sample::select(vec![
            Value::String("x".into()),
            Value::String("$.id".into()),
            Value::String("http".into()),
            Value::String("offset".into()),
            Value::String("trim".into()),
            Value::String("GET".into()),
            Value::String("record".into()),
            Value::Integer(0),
            Value::Integer(1),
            Value::Integer(-1),
            Value::Integer(500),
            Value::Integer(70_000),
            Value::Float(0.5),
            Value::Float(-0.5),
            Value::Boolean(true),
            Value::Array(vec![]),
            Value::Array(vec![Value::Integer(404)]),
            Value::Array(vec![Value::String("trim".into())]),
            Value::Table(toml::Table::new()),
            Value::Table(toml::Table::from_iter([(
                "kind".to_string(),
                Value::String("none".into()),
            )])),
            Value::Table(toml::Table::from_iter([(
                "int".to_string(),
                Value::Table(toml::Table::new()),
            )])),
        ])
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        Remove,
        Replace(Value),
        AddKey(String, Value),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            Just(Mutation::Remove),
            replacement().prop_map(Mutation::Replace),
            (
                prop::sample::select(vec!["bogus", "kind", "path", "url", "page_size", "end"]),
                replacement()
            )
                .prop_map(|(key, value)| Mutation::AddKey(key.to_string(), value)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

        /// The shape check accepts exactly what serde reads: the keys are defined once, and
        /// the check derived from them cannot disagree with them.
        #[test]
        fn the_shape_check_and_serde_agree(
            which in any::<prop::sample::Index>(),
            mutations in prop::collection::vec((any::<prop::sample::Index>(), mutation()), 1..4),
        ) {
            let files = known_files();
            prop_assume!(!files.is_empty());
            let mut document = Value::Table(files[which.index(files.len())].clone());
            for (place, mutation) in mutations {
                let mut all = Vec::new();
                paths(&document, Vec::new(), &mut all);
                if all.is_empty() {
                    break;
                }
                let path = &all[place.index(all.len())];
                let (last, parent) = path.split_last().expect("a path is not empty");
                match mutation {
                    Mutation::Remove => match (at_mut(&mut document, parent), last) {
                        (Some(Value::Table(table)), Step::Key(key)) => {
                            table.remove(key);
                        }
                        (Some(Value::Array(items)), Step::Index(i)) => {
                            items.remove(*i);
                        }
                        _ => {}
                    },
                    Mutation::Replace(value) => {
                        if let Some(slot) = at_mut(&mut document, path) {
                            *slot = value;
                        }
                    }
                    Mutation::AddKey(key, value) => {
                        if let Some(Value::Table(table)) = at_mut(&mut document, parent) {
                            table.insert(key, value);
                        }
                    }
                }
            }
            let Value::Table(table) = &document else {
                unreachable!("the document stays a table");
            };
            let text = toml::to_string(table).unwrap_or_default();
            // Whatever the check accepts, serde reads: a file `tributary providers` accepts
            // loads, and a run reads it as checked.
            if shape_ok(table) {
                prop_assert!(serde_ok(table), "the check accepts what serde refuses:\n{text}");
            } else if serde_ok(table) {
                // The check is stricter than serde's types in two ways only: the ranges the
                // definition declares (`page_size` at least 1), and lists where tables belong
                // (serde reads a struct from a list of its fields' values, `retry = [5]`, which
                // the file format does not have). Both are refused before serde reads a file.
                prop_assert!(only_ranges_or_lists(table), "serde reads what the check refuses:\n{text}");
            }
        }
    }

    /// Whether every problem the check finds is a number out of its declared range, or a list
    /// where a table belongs.
    fn only_ranges_or_lists(table: &toml::Table) -> bool {
        let mut problems = Problems::detached();
        check(table, &mut problems);
        let document = Value::Table(table.clone());
        problems.list().iter().all(|problem| {
            let mut value = Some(&document);
            for part in problem.key.split('.') {
                let (name, index) = match part.split_once('[') {
                    Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
                    None => (part, None),
                };
                value = value.and_then(|v| v.get(name));
                if let Some(i) = index {
                    value = value.and_then(|v| v.get(i));
                }
            }
            match value {
                Some(Value::Array(_)) if problem.message.contains("table") => true,
                Some(Value::Array(items)) => {
                    problem.message.contains("list of whole numbers")
                        && items.iter().all(Value::is_integer)
                }
                Some(Value::Integer(_) | Value::Float(_)) => problem.message.contains("number"),
                _ => false,
            }
        })
    }

    #[test]
    fn every_file_the_project_ships_fits_its_shape() {
        let files = known_files();
        assert!(files.len() >= 8, "{} files", files.len());
        for table in files {
            assert!(shape_ok(table), "{table:?}");
            assert!(serde_ok(table), "{table:?}");
        }
    }

    /// Every key the schema knows, every tag and transform name, and every entity's fields
    /// (required ones in bold) are in the provider reference.
    #[test]
    fn the_provider_reference_documents_every_key() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/providers/README.md"))
                .expect("providers/README.md");
        let mut names = std::collections::BTreeSet::new();
        fn collect(schema: &Schema, names: &mut std::collections::BTreeSet<String>) {
            match schema {
                Schema::Object(object) => {
                    if let Some(Schema::Object(properties)) = object.get("properties") {
                        names.extend(properties.keys().cloned());
                    }
                    for key in ["const", "enum"] {
                        match object.get(key) {
                            Some(Schema::String(name)) => {
                                names.insert(name.clone());
                            }
                            Some(Schema::Array(all)) => {
                                names.extend(
                                    all.iter().filter_map(|n| n.as_str().map(String::from)),
                                );
                            }
                            _ => {}
                        }
                    }
                    for (key, inner) in object {
                        // A `properties` map names keys; its values are the schemas (a key
                        // may itself be called `properties`).
                        match (key.as_str(), inner) {
                            ("properties", Schema::Object(properties)) => {
                                properties.values().for_each(|p| collect(p, names))
                            }
                            _ => collect(inner, names),
                        }
                    }
                }
                Schema::Array(items) => items.iter().for_each(|i| collect(i, names)),
                _ => {}
            }
        }
        collect(provider_file_schema(), &mut names);
        // The words written as code, inline or fenced: `retry.attempts`, `"trim"`, examples.
        let mut documented = std::collections::BTreeSet::new();
        for (i, part) in readme.split("```").enumerate() {
            let code: Vec<&str> = if i % 2 == 1 {
                vec![part]
            } else {
                part.split('`').skip(1).step_by(2).collect()
            };
            for span in code {
                documented.extend(
                    span.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .filter(|w| !w.is_empty())
                        .map(str::to_string),
                );
            }
        }
        let missing: Vec<&String> = names
            .iter()
            .filter(|name| !documented.contains(*name))
            .collect();
        assert!(
            missing.is_empty(),
            "not in providers/README.md: {missing:?}"
        );
        for kind in crate::entities::EntityKind::ALL {
            for field in kind.fields() {
                let written = if field.required {
                    format!("**`{}`**", field.name)
                } else {
                    format!("`{}`", field.name)
                };
                let row = readme
                    .lines()
                    .find(|line| line.starts_with(&format!("| `{}` |", kind.name())))
                    .unwrap_or_else(|| panic!("no row for entity `{kind}`"));
                assert!(row.contains(&written), "{kind}: {written} in {row}");
            }
        }
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        assert_eq!(
            problems(&format!("bogus = 1\n{PUSH_TOKEN}")),
            [
                "bogus: unknown key; expected one of `dataset`, `enabled`, `entity`, `fields`, `keep`, `keep_raw`, `key`, `name`, `on_missing`, `parse`, `schedule`, `skip`, `source`"
            ]
        );
        assert_eq!(
            problems(&http("method = \"POST\"\nheader = { a = \"b\" }", "")),
            [
                "source.header: unknown key; expected one of `kind`, `auth`, `body`, `concurrency`, `error`, `follow`, `headers`, `incremental`, `max_pages`, `method`, `pagination`, `query`, `rate_limit`, `records`, `retry`, `skip`, `timeout_secs`, `url`"
            ]
        );
        assert_eq!(
            problems(&http(
                "[source.pagination]\nkind = \"offset\"\npage_size = 10\npagesize = 5",
                ""
            )),
            [
                "source.pagination.pagesize: unknown key; expected one of `kind`, `end`, `limit_param`, `offset_param`, `page_size`"
            ]
        );
        assert_eq!(
            problems(&http(
                "[source.pagination]\nkind = \"offset\"\npage_size = 10\n[source.pagination.end]\nstatus = [500]",
                ""
            )),
            [
                "source.pagination.end.status: unknown key; expected one of `short_page`, `shrink_on_end_status`, `statuses`"
            ]
        );
        // Extra keys next to a kind that takes none are not silently ignored.
        assert_eq!(
            problems(&PUSH_TOKEN.replace("kind = \"push\"", "kind = \"push\"\nurl = \"x\"")),
            ["source.url: unknown key; `kind = \"push\"` takes no other keys"]
        );
        assert_eq!(
            problems(&http(
                "[source.pagination]\nkind = \"none\"\npage_size = 10",
                ""
            )),
            ["source.pagination.page_size: unknown key; `kind = \"none\"` takes no other keys"]
        );
        assert_eq!(
            problems(&http("", "[parse]\nformat = \"json\"\npattern = \"x\"")),
            ["parse.pattern: unknown key; `format = \"json\"` takes no other keys"]
        );
        // A misspelt `transforms` would otherwise drop the transforms without a word.
        assert_eq!(
            problems(&PUSH_TOKEN.replace("transforms", "transform")),
            [
                "fields.address.transform: unknown key; expected one of `path`, `paths`, `transforms`"
            ]
        );
        assert_eq!(
            problems(
                &PUSH_TOKEN.replace("[\"hex\"]", "[{ sha256 = { key = \"k\", salt = \"s\" } }]")
            ),
            ["fields.address.transforms[0].sha256.salt: unknown key; expected one of `key`"]
        );
    }

    #[test]
    fn missing_keys_and_wrong_types() {
        assert_eq!(
            problems("entity = \"token\"\n"),
            ["source: missing; expected a table with `kind` = `http`, `file`, `push`, `kafka`"]
        );
        assert_eq!(
            problems("[source]\nkind = \"push\"\n"),
            [
                "entity: missing; expected one of `token`, `transfer`, `host`, `product`, `record`, `event`"
            ]
        );
        assert_eq!(
            problems(&PUSH_TOKEN.replace("\"token\"", "\"tokens\"")),
            [
                "entity: expected one of `token`, `transfer`, `host`, `product`, `record`, `event` (found `tokens`)"
            ]
        );
        assert_eq!(
            problems(&PUSH_TOKEN.replace("\"push\"", "\"ftp\"")),
            ["source.kind: expected one of `http`, `file`, `push`, `kafka` (found `ftp`)"]
        );
        assert_eq!(
            problems(&PUSH_TOKEN.replace("kind = \"push\"", "")),
            ["source.kind: missing; expected one of `http`, `file`, `push`, `kafka`"]
        );
        assert_eq!(
            problems(
                "entity = \"record\"\ndataset = \"d\"\nkey = \"id\"\n[source]\nkind = \"http\"\n"
            ),
            ["source.url: missing; expected a string"]
        );
        assert_eq!(
            problems(&http("[source.pagination]\nkind = \"offset\"", "")),
            ["source.pagination.page_size: missing; expected a whole number of at least 1"]
        );
        assert_eq!(
            problems(&http(
                "[source.pagination]\nkind = \"offset\"\npage_size = \"ten\"",
                ""
            )),
            ["source.pagination.page_size: expected a whole number of at least 1"]
        );
        assert_eq!(
            problems(&http(
                "[source.pagination]\nkind = \"cursor\"\ntoken_path = \"$.next\"",
                ""
            )),
            ["source.pagination.param: missing; expected a string"]
        );
        assert_eq!(
            problems(&http(
                "method = \"PUT\"\nheaders = { a = 1 }\n[[source.skip]]\nequals = \"x\"\n[source.follow]\nconcurrency = 2",
                ""
            )),
            [
                "source.follow.url: missing; expected a string",
                "source.headers.a: expected a string",
                "source.method: expected one of `GET`, `POST` (found `PUT`)",
                "source.skip[0].field: missing; expected a string",
            ]
        );
        assert_eq!(
            problems(&http("", "[parse]\nformat = \"text\"")),
            ["parse.pattern: missing; expected a string"]
        );
        assert_eq!(
            problems(&format!("enabled = \"yes\"\n{}", http("", ""))),
            ["enabled: expected true or false"]
        );
        assert_eq!(
            problems(&PUSH_TOKEN.replace("[\"hex\"]", "[\"hexx\"]")),
            [
                "fields.address.transforms[0]: expected one of `trim`, `lowercase`, `int`, `uint256`, `hex`, `address`, `mac`, `ip`, `timestamp`, `redact`, `sha256` (found `hexx`)"
            ]
        );
        assert_eq!(
            problems(&PUSH_TOKEN.replace("[\"hex\"]", "[{ sha256 = {} }]")),
            ["fields.address.transforms[0].sha256.key: missing; expected a string"]
        );
        assert_eq!(
            problems(&PUSH_TOKEN.replace("{ path = \"address\", transforms = [\"hex\"] }", "3")),
            ["fields.address: expected a string or a table with `path`, `paths`, `transforms`"]
        );
        assert_eq!(
            problems(&http(
                "method = \"POST\"\nbody = { since = 2024-01-01 }",
                ""
            )),
            ["source.body.since: TOML dates are not supported here; write the date as a string"]
        );
    }

    #[test]
    fn http_numbers_and_pagination() {
        assert_eq!(
            problems(&http(
                "concurrency = 0\ntimeout_secs = 0\nrate_limit = 0\nmax_pages = -1\n[source.retry]\nattempts = 0\n[source.follow]\nurl = \"$.u\"\nconcurrency = 0",
                ""
            )),
            [
                "source.concurrency: expected a whole number of at least 1",
                "source.follow.concurrency: expected a whole number of at least 1",
                "source.max_pages: expected a whole number of at least 1",
                "source.rate_limit: expected a number greater than 0",
                "source.retry.attempts: expected a whole number of at least 1",
                "source.timeout_secs: expected a whole number of at least 1",
            ]
        );
        assert_eq!(
            problems(&http(
                "[source.pagination]\nkind = \"page\"\npage_size = 0\n[source.pagination.end]\nstatuses = [500, 42]",
                ""
            )),
            [
                "source.pagination.end.statuses: expected a list of whole numbers from 100 to 599",
                "source.pagination.page_size: expected a whole number of at least 1",
            ]
        );
        assert_eq!(
            problems(&http(
                "[source.pagination]\nkind = \"offset\"\npage_size = 5\n[source.pagination.end]\nshrink_on_end_status = true",
                ""
            )),
            ["source.pagination.end.shrink_on_end_status: needs at least one status in `statuses`"]
        );
        let cursor = "[source.pagination]\nkind = \"cursor\"\nparam = \"pageToken\"";
        assert_eq!(
            problems(&http(cursor, "")),
            ["source.pagination: expected exactly one of `token_path` or `token_header`"]
        );
        assert_eq!(
            problems(&http(
                &format!("{cursor}\ntoken_path = \"$.next\"\ntoken_header = \"X-Next\""),
                ""
            )),
            ["source.pagination: expected exactly one of `token_path` or `token_header`"]
        );
        assert_eq!(
            problems(&http(
                "[source.retry]\ninitial_backoff_ms = 5000\nmax_backoff_ms = 100\n[[source.skip]]\nfield = \"$.a\"",
                ""
            )),
            [
                "source.skip[0]: expected `equals`, `in`, `starts_with` or `length` (the rule matches when any one holds)",
                "source.retry.max_backoff_ms: expected at least `initial_backoff_ms`",
            ]
        );
        assert_eq!(
            problems(&http(
                "body = { a = 1 }\nheaders = { \"bad header\" = \"x\" }",
                ""
            )),
            [
                "source.headers.bad header: not a valid HTTP header name",
                "source.body: only sent with method = \"POST\"",
            ]
        );
        assert_eq!(
            problems(
                &http("", "[parse]\nformat = \"csv\"")
                    .replace("kind = \"http\"", "kind = \"http\"\nrecords = \"$.items\"")
            ),
            [
                "source.records: only used when responses are JSON (parse.format = \"json\") or with `follow`"
            ]
        );
    }
}
