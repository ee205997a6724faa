//! Reading and validating provider files.
//!
//! A file is checked in three steps, and every problem found is reported with the file, the
//! key path (`source.pagination.page_size`) and what was expected:
//!
//! 1. TOML syntax.
//! 2. Shape: every key known, every required key present, every value of the right type and
//!    range. This is done on the raw TOML rather than left to serde because serde loses the
//!    key path inside tagged and untagged enums (`source`, `pagination`, `parse`, fields and
//!    transforms), and silently ignores extra keys next to a unit variant (`kind = "push"`).
//! 3. Meaning: names, entity columns, cron expressions, JSONPaths, regular expressions, URLs
//!    and `${VAR}` references, checked on the typed [`ProviderFile`].
//!
//! `${VAR}` references are only checked for syntax here; [`expand_provider`] replaces them when
//! a run starts, so secrets live in memory only while a run needs them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use croner::parser::{CronParser, Seconds, Year};
use regex::Regex;

use serde_json_path::JsonPath;
use toml::Value;

use super::definition::{
    EntityKind, FieldSpec, FileFormat, FileSource, HttpMethod, HttpSource, PageEnd, Pagination,
    Parse, Provider, ProviderFile, Source, Transform, TransformWith,
};

/// One problem with one provider file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}{}", .file.display(), key_prefix(.key), .message)]
pub struct LoadError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// Dotted key path (`source.pagination.page_size`, `source.skip[0].field`); empty when the
    /// problem is the file as a whole (unreadable, TOML syntax).
    pub key: String,
    /// What is wrong, phrased as what was expected. Never contains a secret.
    pub message: String,
}

/// Every problem found in a providers directory, in file order.
#[derive(Debug, thiserror::Error)]
#[error("{}", lines(.0))]
pub struct LoadErrors(pub Vec<LoadError>);

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

fn lines(errors: &[LoadError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads every `*.toml` in `dir` (sorted by file name), parses and validates each. Collects
/// ALL problems, not just the first, including names used by more than one file.
/// Subdirectories (such as `templates/`) and other extensions are not read.
pub fn load_dir(dir: &Path) -> Result<Vec<Provider>, LoadErrors> {
    let mut errors = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            return Err(LoadErrors(vec![LoadError {
                file: dir.to_path_buf(),
                key: String::new(),
                message: format!("cannot read the providers directory: {e}"),
            }]));
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => {
                let path = entry.path();
                if path.extension().is_some_and(|ext| ext == "toml") && path.is_file() {
                    files.push(path);
                }
            }
            Err(e) => errors.push(LoadError {
                file: dir.to_path_buf(),
                key: String::new(),
                message: format!("cannot list the providers directory: {e}"),
            }),
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));

    let mut providers = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for path in files {
        match check_file(&path) {
            Ok(provider) => {
                if let Some(first) = seen.get(&provider.name) {
                    errors.push(LoadError {
                        file: path,
                        key: "name".to_string(),
                        message: format!(
                            "`{}` is already the name of {}",
                            provider.name,
                            first.display()
                        ),
                    });
                } else {
                    seen.insert(provider.name.clone(), path);
                    providers.push(provider);
                }
            }
            Err(mut problems) => errors.append(&mut problems),
        }
    }
    if errors.is_empty() {
        Ok(providers)
    } else {
        Err(LoadErrors(errors))
    }
}

/// Reads, parses and validates one provider file. On failure returns the first problem;
/// [`load_dir`] reports all of them.
pub fn load_file(path: &Path) -> Result<Provider, LoadError> {
    check_file(path).map_err(|problems| {
        problems.into_iter().next().unwrap_or_else(|| LoadError {
            file: path.to_path_buf(),
            key: String::new(),
            message: "invalid provider file".to_string(),
        })
    })
}

/// Expands `${VAR}` references from `env` (`|name| std::env::var(name).ok()` for the process
/// environment). `$${` stands for a literal `${`; a `$` not followed by `{` is kept as it is.
/// Values are inserted as they are, never expanded again. The error names the variable, never
/// a value.
pub fn expand_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                return Err("`${` without a closing `}`".to_string());
            };
            let name = &after[..end];
            if !valid_var_name(name) {
                return Err(
                    "`${…}` must hold a variable name: letters, digits and `_`, not starting with a digit"
                        .to_string(),
                );
            }
            match env(name) {
                Some(value) => out.push_str(&value),
                None => return Err(format!("environment variable `{name}` is not set")),
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A copy of `provider` with `${VAR}` expanded in the request URL, header values, query
/// values, body strings and `sha256` keys. Called when a run starts; the copy holds secrets,
/// so it is dropped when the run ends and never logged. An unset variable is an error naming
/// the file, the key and the variable.
pub fn expand_provider(
    provider: &Provider,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Provider, LoadError> {
    let fail = |key: String, message: String| LoadError {
        file: provider.path.clone(),
        key,
        message,
    };
    let mut out = provider.clone();
    if let Source::Http(http) = &mut out.def.source {
        http.url = expand_env(&http.url, env).map_err(|m| fail("source.url".to_string(), m))?;
        if !is_http_url(&http.url) {
            return Err(fail(
                "source.url".to_string(),
                "after `${…}` expansion, not an http:// or https:// URL".to_string(),
            ));
        }
        for (name, value) in http.headers.iter_mut() {
            *value =
                expand_env(value, env).map_err(|m| fail(format!("source.headers.{name}"), m))?;
        }
        for (name, value) in http.query.iter_mut() {
            *value = expand_env(value, env).map_err(|m| fail(format!("source.query.{name}"), m))?;
        }
        if let Some(body) = &mut http.body {
            expand_json(body, "source.body", env).map_err(|(key, m)| fail(key, m))?;
        }
    }
    for (name, spec) in out.def.fields.iter_mut() {
        if let FieldSpec::Full { transforms, .. } = spec {
            for (i, transform) in transforms.iter_mut().enumerate() {
                if let Transform::With(TransformWith::Sha256 { key }) = transform {
                    *key = expand_env(key, env).map_err(|m| {
                        fail(format!("fields.{name}.transforms[{i}].sha256.key"), m)
                    })?;
                }
            }
        }
    }
    Ok(out)
}

fn expand_json(
    value: &mut serde_json::Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), (String, String)> {
    match value {
        serde_json::Value::String(s) => {
            *s = expand_env(s, env).map_err(|m| (path.to_string(), m))?;
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_json(item, &format!("{path}[{i}]"), env)?;
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                expand_json(item, &child(path, key), env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Where a `file` source reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileLocation {
    /// A local file; relative paths are resolved against the provider file's directory.
    Local(PathBuf),
    /// An http(s) URL.
    Url(String),
}

/// Resolves a `file` source's `path` against the directory of the provider's file.
pub fn file_location(provider: &Provider, source: &FileSource) -> FileLocation {
    if has_http_scheme(&source.path) {
        FileLocation::Url(source.path.clone())
    } else {
        let base = provider.path.parent().unwrap_or_else(|| Path::new(""));
        FileLocation::Local(base.join(&source.path))
    }
}

/// A `file` source's name as its format and compression are told from: lower case, without a
/// URL's query or fragment.
fn file_name(source: &FileSource) -> String {
    source
        .path
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Whether a `file` source is gzipped: its name ends in `.gz` (any case; a URL's query is
/// ignored).
pub fn file_gzip(source: &FileSource) -> bool {
    file_name(source).ends_with(".gz")
}

/// A `file` source's format: `format` when given, otherwise from the name (`.csv`, `.jsonl`
/// or `.ndjson`, `.json`, each optionally followed by `.gz`; any case; a URL's query is
/// ignored).
pub fn file_format(source: &FileSource) -> Option<FileFormat> {
    if let Some(format) = source.format {
        return Some(format);
    }
    let name = file_name(source);
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name.ends_with(".csv") {
        Some(FileFormat::Csv)
    } else if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
        Some(FileFormat::Jsonl)
    } else if name.ends_with(".json") {
        Some(FileFormat::Json)
    } else {
        None
    }
}

/// The smallest `rate_limit`: one request per 10^9 seconds. Below it the wait between two
/// requests is past what a `Duration` holds (`5e-324` makes it infinite).
const MIN_RATE_LIMIT: f64 = 1e-9;

/// Collects problems for one file.
struct Problems<'a> {
    file: &'a Path,
    list: Vec<LoadError>,
}

impl Problems<'_> {
    fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.list.push(LoadError {
            file: self.file.to_path_buf(),
            key: key.into(),
            message: message.into(),
        });
    }
}

/// Reads and validates one file, returning every problem found.
fn check_file(path: &Path) -> Result<Provider, Vec<LoadError>> {
    let mut problems = Problems {
        file: path,
        list: Vec::new(),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            problems.add("", format!("cannot read the file: {e}"));
            return Err(problems.list);
        }
    };
    let raw: toml::Table = match toml::from_str(&text) {
        Ok(raw) => raw,
        Err(e) => {
            problems.add("", toml_message(&text, &e));
            return Err(problems.list);
        }
    };
    check_table(&raw, TOP_KEYS, "", None, &mut problems);
    if !problems.list.is_empty() {
        return Err(problems.list);
    }
    // The shape check above accepts only what these types accept, so this fails only if the
    // two drift apart; the error then still points at a line.
    let def: ProviderFile = match toml::from_str(&text) {
        Ok(def) => def,
        Err(e) => {
            problems.add("", toml_message(&text, &e));
            return Err(problems.list);
        }
    };
    let (name, from_file_name) = match &def.name {
        Some(name) => (name.clone(), false),
        None => (
            path.file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default(),
            true,
        ),
    };
    validate(&def, &raw, &name, from_file_name, &mut problems);
    if problems.list.is_empty() {
        Ok(Provider {
            name,
            path: path.to_path_buf(),
            def,
        })
    } else {
        Err(problems.list)
    }
}

/// A TOML error as `line L, column C: message`, on one line.
fn toml_message(text: &str, error: &toml::de::Error) -> String {
    let message = error
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

// ---------------------------------------------------------------------------------------------
// Shape: the file format of `definition.rs`, key by key.

/// What a value must be.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    Bool,
    /// A whole number, 0 or more.
    Uint,
    /// A whole number, 1 or more.
    Count,
    Int,
    /// A finite number greater than 0.
    Positive,
    OneOf(&'static [&'static str]),
    /// A table whose values are strings.
    StrMap,
    /// Any value but a TOML date (serde would turn one into an odd object).
    Any,
    /// A list of HTTP status codes.
    Statuses,
    Table(&'static [Key]),
    /// `[[…]]`: a list of tables.
    TableList(&'static [Key]),
    /// A table whose keys depend on the value of its tag key (`kind`, `format`).
    Tagged(&'static str, &'static [Variant]),
    /// The `fields` table.
    Fields,
    /// A field's `transforms` list.
    Transforms,
}

struct Key {
    name: &'static str,
    ty: Ty,
    required: bool,
}

struct Variant {
    tag: &'static str,
    keys: &'static [Key],
}

const fn opt(name: &'static str, ty: Ty) -> Key {
    Key {
        name,
        ty,
        required: false,
    }
}

const fn req(name: &'static str, ty: Ty) -> Key {
    Key {
        name,
        ty,
        required: true,
    }
}

const TOP_KEYS: &[Key] = &[
    opt("name", Ty::Str),
    req(
        "entity",
        Ty::OneOf(&["token", "transfer", "host", "product", "record"]),
    ),
    opt("dataset", Ty::Str),
    opt("schedule", Ty::Str),
    opt("enabled", Ty::Bool),
    opt("keep_raw", Ty::Bool),
    opt("key", Ty::Str),
    req("source", Ty::Tagged("kind", SOURCE_KINDS)),
    opt("parse", Ty::Tagged("format", PARSE_FORMATS)),
    opt("fields", Ty::Fields),
];

const SOURCE_KINDS: &[Variant] = &[
    Variant {
        tag: "http",
        keys: HTTP_KEYS,
    },
    Variant {
        tag: "file",
        keys: FILE_KEYS,
    },
    Variant {
        tag: "push",
        keys: &[],
    },
];

const HTTP_KEYS: &[Key] = &[
    req("url", Ty::Str),
    opt("method", Ty::OneOf(&["GET", "POST"])),
    opt("headers", Ty::StrMap),
    opt("query", Ty::StrMap),
    opt("body", Ty::Any),
    opt("records", Ty::Str),
    opt("skip", Ty::TableList(SKIP_KEYS)),
    opt("pagination", Ty::Tagged("kind", PAGINATION_KINDS)),
    opt("follow", Ty::Table(FOLLOW_KEYS)),
    opt("concurrency", Ty::Count),
    opt("rate_limit", Ty::Positive),
    opt("timeout_secs", Ty::Count),
    opt("retry", Ty::Table(RETRY_KEYS)),
    opt("max_pages", Ty::Count),
];

const SKIP_KEYS: &[Key] = &[
    req("field", Ty::Str),
    opt("starts_with", Ty::Str),
    opt("equals", Ty::Str),
];

const PAGINATION_KINDS: &[Variant] = &[
    Variant {
        tag: "none",
        keys: &[],
    },
    Variant {
        tag: "offset",
        keys: &[
            opt("offset_param", Ty::Str),
            opt("limit_param", Ty::Str),
            req("page_size", Ty::Count),
            opt("end", Ty::Table(END_KEYS)),
        ],
    },
    Variant {
        tag: "page",
        keys: &[
            opt("page_param", Ty::Str),
            opt("size_param", Ty::Str),
            req("page_size", Ty::Count),
            opt("first_page", Ty::Uint),
            opt("end", Ty::Table(END_KEYS)),
        ],
    },
    Variant {
        tag: "cursor",
        keys: &[
            opt("token_path", Ty::Str),
            opt("token_header", Ty::Str),
            req("param", Ty::Str),
        ],
    },
    Variant {
        tag: "link",
        keys: &[opt("next_path", Ty::Str)],
    },
];

const END_KEYS: &[Key] = &[
    opt("short_page", Ty::Bool),
    opt("statuses", Ty::Statuses),
    opt("shrink_on_end_status", Ty::Bool),
];

const FOLLOW_KEYS: &[Key] = &[req("url", Ty::Str), opt("concurrency", Ty::Count)];

const RETRY_KEYS: &[Key] = &[
    opt("attempts", Ty::Count),
    opt("initial_backoff_ms", Ty::Uint),
    opt("max_backoff_ms", Ty::Uint),
];

const FILE_KEYS: &[Key] = &[
    req("path", Ty::Str),
    opt("format", Ty::OneOf(&["csv", "jsonl", "json"])),
    opt("records", Ty::Str),
];

const PARSE_FORMATS: &[Variant] = &[
    Variant {
        tag: "json",
        keys: &[],
    },
    Variant {
        tag: "csv",
        keys: &[],
    },
    Variant {
        tag: "text",
        keys: &[req("pattern", Ty::Str)],
    },
];

const FIELD_KEYS: &[Key] = &[opt("path", Ty::Str), opt("transforms", Ty::Transforms)];

const TRANSFORM_NAMES: &[&str] = &[
    "trim",
    "lowercase",
    "int",
    "uint256",
    "hex",
    "mac",
    "ip",
    "timestamp",
    "redact",
    "sha256",
];

const INT_KEYS: &[Key] = &[opt("default", Ty::Int)];
const TIMESTAMP_KEYS: &[Key] = &[opt("format", Ty::Str)];
const SHA256_KEYS: &[Key] = &[req("key", Ty::Str)];

impl Ty {
    /// What a value of this type looks like, for messages.
    fn expected(self) -> String {
        match self {
            Ty::Str => "expected a string".to_string(),
            Ty::Bool => "expected true or false".to_string(),
            Ty::Uint => "expected a whole number (0 or more)".to_string(),
            Ty::Count => "expected a whole number of at least 1".to_string(),
            Ty::Int => "expected a whole number".to_string(),
            Ty::Positive => "expected a number greater than 0".to_string(),
            Ty::OneOf(names) => format!("expected one of {}", quoted(names.iter().copied())),
            Ty::StrMap => "expected a table of strings".to_string(),
            Ty::Any => "expected a value".to_string(),
            Ty::Statuses => "expected a list of HTTP status codes (100 to 599)".to_string(),
            Ty::Table(_) => "expected a table".to_string(),
            Ty::TableList(_) => "expected a list of tables (`[[…]]`)".to_string(),
            Ty::Tagged(tag, variants) => format!(
                "expected a table with `{tag}` = {}",
                quoted(variants.iter().map(|v| v.tag))
            ),
            Ty::Fields => "expected a table of entity field = path".to_string(),
            Ty::Transforms => "expected a list of transforms".to_string(),
        }
    }
}

/// `` `a`, `b`, `c` ``
fn quoted<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Checks a table's keys against `keys`. `tag` is the tag key and its value when the table is
/// one variant of a tagged enum; the tag key is then allowed too.
fn check_table(
    table: &toml::Table,
    keys: &[Key],
    path: &str,
    tag: Option<(&str, &str)>,
    problems: &mut Problems,
) {
    for (name, value) in table {
        if tag.is_some_and(|(tag_key, _)| tag_key == name) {
            continue;
        }
        let key_path = child(path, name);
        match keys.iter().find(|k| k.name == name) {
            Some(key) => check_value(value, key.ty, &key_path, problems),
            None => {
                let message = match tag {
                    Some((tag_key, variant)) if keys.is_empty() => {
                        format!("unknown key; `{tag_key} = \"{variant}\"` takes no other keys")
                    }
                    Some((tag_key, _)) => format!(
                        "unknown key; expected one of {}",
                        quoted(std::iter::once(tag_key).chain(keys.iter().map(|k| k.name)))
                    ),
                    None => format!(
                        "unknown key; expected one of {}",
                        quoted(keys.iter().map(|k| k.name))
                    ),
                };
                problems.add(key_path, message);
            }
        }
    }
    for key in keys.iter().filter(|k| k.required) {
        if !table.contains_key(key.name) {
            problems.add(
                child(path, key.name),
                format!("missing; {}", key.ty.expected()),
            );
        }
    }
}

fn check_value(value: &Value, ty: Ty, path: &str, problems: &mut Problems) {
    let fits = match (ty, value) {
        (Ty::Str, Value::String(_)) => true,
        (Ty::Bool, Value::Boolean(_)) => true,
        (Ty::Uint, Value::Integer(n)) => *n >= 0,
        (Ty::Count, Value::Integer(n)) => *n >= 1,
        (Ty::Int, Value::Integer(_)) => true,
        (Ty::Positive, Value::Integer(n)) => *n > 0,
        (Ty::Positive, Value::Float(x)) => x.is_finite() && *x > 0.0,
        (Ty::OneOf(names), Value::String(s)) => {
            if !names.contains(&s.as_str()) {
                problems.add(path, format!("{} (found `{s}`)", ty.expected()));
            }
            true
        }
        (Ty::StrMap, Value::Table(table)) => {
            for (name, item) in table {
                check_value(item, Ty::Str, &child(path, name), problems);
            }
            true
        }
        (Ty::Any, _) => {
            check_no_dates(value, path, problems);
            true
        }
        (Ty::Statuses, Value::Array(items)) => items
            .iter()
            .all(|item| matches!(item, Value::Integer(n) if (100..=599).contains(n))),
        (Ty::Table(keys), Value::Table(table)) => {
            check_table(table, keys, path, None, problems);
            true
        }
        (Ty::TableList(keys), Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                match item {
                    Value::Table(table) => check_table(table, keys, &item_path, None, problems),
                    _ => problems.add(item_path, "expected a table"),
                }
            }
            true
        }
        (Ty::Tagged(tag, variants), Value::Table(table)) => {
            check_tagged(table, tag, variants, path, problems);
            true
        }
        (Ty::Fields, Value::Table(table)) => {
            check_fields(table, path, problems);
            true
        }
        (Ty::Transforms, Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                check_transform(item, &format!("{path}[{i}]"), problems);
            }
            true
        }
        _ => false,
    };
    if !fits {
        problems.add(path, ty.expected());
    }
}

fn check_tagged(
    table: &toml::Table,
    tag: &str,
    variants: &[Variant],
    path: &str,
    problems: &mut Problems,
) {
    let names = || quoted(variants.iter().map(|v| v.tag));
    let tag_path = child(path, tag);
    match table.get(tag) {
        None => problems.add(tag_path, format!("missing; expected one of {}", names())),
        Some(Value::String(value)) => match variants.iter().find(|v| v.tag == value) {
            Some(variant) => check_table(table, variant.keys, path, Some((tag, value)), problems),
            None => problems.add(
                tag_path,
                format!("expected one of {} (found `{value}`)", names()),
            ),
        },
        Some(_) => problems.add(tag_path, format!("expected one of {}", names())),
    }
}

fn check_fields(table: &toml::Table, path: &str, problems: &mut Problems) {
    for (name, spec) in table {
        let field_path = child(path, name);
        match spec {
            Value::String(_) => {}
            Value::Table(table) => check_table(table, FIELD_KEYS, &field_path, None, problems),
            _ => problems.add(
                field_path,
                "expected a path (a string) or a table with `path` and `transforms`",
            ),
        }
    }
}

fn check_transform(item: &Value, path: &str, problems: &mut Problems) {
    let unknown = |name: &str| {
        format!(
            "unknown transform `{name}`; expected one of {}, or a table such as `{{ int = {{ default = 0 }} }}`",
            quoted(TRANSFORM_NAMES.iter().copied())
        )
    };
    match item {
        Value::String(name) => {
            if !TRANSFORM_NAMES.contains(&name.as_str()) {
                problems.add(path, unknown(name));
            }
        }
        Value::Table(table) if table.len() == 1 => {
            for (name, value) in table {
                let with_path = child(path, name);
                match name.as_str() {
                    "int" => check_value(value, Ty::Table(INT_KEYS), &with_path, problems),
                    "timestamp" => {
                        check_value(value, Ty::Table(TIMESTAMP_KEYS), &with_path, problems)
                    }
                    "sha256" => check_value(value, Ty::Table(SHA256_KEYS), &with_path, problems),
                    "map" => check_value(value, Ty::StrMap, &with_path, problems),
                    "default" => check_value(value, Ty::Any, &with_path, problems),
                    _ => problems.add(with_path, unknown(name)),
                }
            }
        }
        Value::Table(_) => problems.add(
            path,
            "expected a table with exactly one transform, such as `{ timestamp = { format = \"%Y-%m-%d\" } }`",
        ),
        _ => problems.add(path, "expected a transform name or a table"),
    }
}

fn check_no_dates(value: &Value, path: &str, problems: &mut Problems) {
    match value {
        Value::Datetime(_) => problems.add(
            path,
            "TOML dates are not supported here; write the date as a string",
        ),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_no_dates(item, &format!("{path}[{i}]"), problems);
            }
        }
        Value::Table(table) => {
            for (name, item) in table {
                check_no_dates(item, &child(path, name), problems);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Meaning.

fn validate(
    def: &ProviderFile,
    raw: &toml::Table,
    name: &str,
    from_file_name: bool,
    problems: &mut Problems,
) {
    if !valid_name(name) {
        let origin = if from_file_name {
            " (from the file name)"
        } else {
            ""
        };
        problems.add(
            "name",
            format!(
                "`{name}`{origin} is not a valid provider name; expected lowercase letters, digits, `_` and `-`"
            ),
        );
    }

    match (def.entity, &def.dataset) {
        (EntityKind::Record, None) => {
            problems.add("dataset", "missing; required when entity = \"record\"")
        }
        (EntityKind::Record, Some(dataset)) if !valid_name(dataset) => problems.add(
            "dataset",
            format!(
                "`{dataset}` is not a valid dataset name; expected lowercase letters, digits, `_` and `-`"
            ),
        ),
        (EntityKind::Record, Some(_)) => {}
        (_, Some(_)) => problems.add("dataset", "only allowed when entity = \"record\""),
        (_, None) => {}
    }
    if def.entity == EntityKind::Host && def.key.is_some() {
        problems.add(
            "key",
            "not used with entity = \"host\": the `id` field is the provider's id for the host",
        );
    }
    if def.entity == EntityKind::Record && def.key.is_none() {
        problems.add("key", "missing; required when entity = \"record\"");
    }

    if let Some(schedule) = &def.schedule
        && let Err(e) = check_cron(schedule)
    {
        problems.add("schedule", e);
    }

    // Capture names of a text pattern: the only field paths such a provider can use.
    let captures = match &def.parse {
        Parse::Text { pattern } => match Regex::new(pattern) {
            Ok(re) => {
                let names: Vec<String> = re.capture_names().flatten().map(String::from).collect();
                if names.is_empty() {
                    problems.add(
                        "parse.pattern",
                        "has no named capture; each record's fields come from `(?P<name>…)` groups",
                    );
                    None
                } else {
                    Some(names)
                }
            }
            Err(e) => {
                problems.add(
                    "parse.pattern",
                    format!("not a valid regular expression: {}", regex_message(&e)),
                );
                None
            }
        },
        Parse::Json | Parse::Csv => None,
    };

    let raw_source = raw.get("source").and_then(Value::as_table);
    match &def.source {
        Source::Http(http) => check_http(http, raw_source, &def.parse, problems),
        Source::File(file) => {
            check_file_source(file, problems);
            if raw.contains_key("parse") {
                problems.add(
                    "parse",
                    "not used by file sources; the file's format is `source.format`",
                );
            }
        }
        Source::Push => {
            if raw.contains_key("parse") {
                problems.add(
                    "parse",
                    "not used by push sources; records are posted as JSON or JSON lines",
                );
            }
        }
    }

    check_mapping(def, captures.as_deref(), problems);
}

fn check_http(
    http: &HttpSource,
    raw: Option<&toml::Table>,
    parse: &Parse,
    problems: &mut Problems,
) {
    if !url_shape_ok(&http.url) {
        problems.add(
            "source.url",
            "expected an http:// or https:// URL (or one starting with `${VAR}`)",
        );
    }
    check_env_syntax(&http.url, "source.url", problems);
    for (name, value) in &http.headers {
        let key = format!("source.headers.{name}");
        if !valid_header_name(name) {
            problems.add(&key, "not a valid HTTP header name");
        }
        check_env_syntax(value, &key, problems);
    }
    for (name, value) in &http.query {
        check_env_syntax(value, &format!("source.query.{name}"), problems);
    }
    if let Some(body) = &http.body {
        if http.method == HttpMethod::Get {
            problems.add("source.body", "only sent with method = \"POST\"");
        }
        check_body_env(body, "source.body", problems);
    }

    check_jsonpath(&http.records, "source.records", problems);
    let records_given = raw.is_some_and(|t| t.contains_key("records"));
    if records_given && http.follow.is_none() && !matches!(parse, Parse::Json) {
        problems.add(
            "source.records",
            "only used when responses are JSON (parse.format = \"json\") or with `follow`",
        );
    }

    for (i, rule) in http.skip.iter().enumerate() {
        check_jsonpath(&rule.field, &format!("source.skip[{i}].field"), problems);
        if rule.starts_with.is_none() && rule.equals.is_none() {
            problems.add(
                format!("source.skip[{i}]"),
                "expected `starts_with` or `equals` (or both: either one matching skips)",
            );
        }
    }

    match &http.pagination {
        Pagination::None => {}
        Pagination::Offset { end, .. } | Pagination::Page { end, .. } => check_end(end, problems),
        Pagination::Cursor {
            token_path,
            token_header,
            ..
        } => {
            if token_path.is_some() == token_header.is_some() {
                problems.add(
                    "source.pagination",
                    "expected exactly one of `token_path` or `token_header`",
                );
            }
            if let Some(path) = token_path {
                check_jsonpath(path, "source.pagination.token_path", problems);
            }
        }
        Pagination::Link { next_path } => {
            if let Some(path) = next_path {
                check_jsonpath(path, "source.pagination.next_path", problems);
            }
        }
    }

    if let Some(follow) = &http.follow {
        check_jsonpath(&follow.url, "source.follow.url", problems);
    }
    if http.rate_limit.is_some_and(|rate| rate < MIN_RATE_LIMIT) {
        problems.add(
            "source.rate_limit",
            format!("expected at least {MIN_RATE_LIMIT} requests per second"),
        );
    }
    if http.retry.initial_backoff_ms > http.retry.max_backoff_ms {
        problems.add(
            "source.retry.max_backoff_ms",
            "expected at least `initial_backoff_ms`",
        );
    }
}

fn check_end(end: &PageEnd, problems: &mut Problems) {
    if end.shrink_on_end_status && end.statuses.is_empty() {
        problems.add(
            "source.pagination.end.shrink_on_end_status",
            "needs at least one status in `statuses`",
        );
    }
}

fn check_file_source(file: &FileSource, problems: &mut Problems) {
    if file.path.trim().is_empty() {
        problems.add("source.path", "expected a file path or an http(s) URL");
    } else if has_http_scheme(&file.path) {
        if !is_http_url(&file.path) {
            problems.add("source.path", "not a valid http(s) URL");
        }
    } else if file.path.contains("://") {
        problems.add(
            "source.path",
            "expected a local path or an http:// or https:// URL",
        );
    }
    let format = file_format(file);
    if format.is_none() {
        problems.add(
            "source.format",
            "missing; the file name does not tell the format; expected one of `csv`, `jsonl`, `json`",
        );
    }
    if let Some(records) = &file.records {
        if format == Some(FileFormat::Json) {
            check_jsonpath(records, "source.records", problems);
        } else {
            problems.add("source.records", "only used with format = \"json\"");
        }
    }
}

/// Fields against the entity's columns, field paths, transforms and `key`.
///
/// A `record` provider may leave `fields` empty: each raw record is then stored whole, and
/// `key` is read from the raw record (a key, a JSONPath or a capture name) instead of naming a
/// field.
fn check_mapping(def: &ProviderFile, captures: Option<&[String]>, problems: &mut Problems) {
    let entity = def.entity.name();
    // A kind with no field list (`record`) keeps whatever fields are mapped.
    let columns = def.entity.fields();
    if def.fields.is_empty() && !columns.is_empty() {
        problems.add(
            "fields",
            format!("expected at least one field for entity = \"{entity}\""),
        );
    }
    if !columns.is_empty() {
        for name in def.fields.keys() {
            if !columns.iter().any(|c| c.name == name) {
                problems.add(
                    format!("fields.{name}"),
                    format!(
                        "not a column of {entity}; expected one of {}",
                        quoted(columns.iter().map(|c| c.name))
                    ),
                );
            }
        }
        if !def.fields.is_empty() {
            for column in columns
                .iter()
                .filter(|c| c.required && !def.fields.contains_key(c.name))
            {
                problems.add(
                    format!("fields.{}", column.name),
                    format!("missing; required for entity = \"{entity}\""),
                );
            }
        }
    }

    for (name, spec) in &def.fields {
        let (path, path_key, transforms) = match spec {
            FieldSpec::Path(path) => (Some(path.as_str()), format!("fields.{name}"), &[][..]),
            FieldSpec::Full { path, transforms } => (
                path.as_deref(),
                format!("fields.{name}.path"),
                transforms.as_slice(),
            ),
        };
        match path {
            Some(path) => check_value_path(path, &path_key, captures, problems),
            None => {
                let has_default = transforms
                    .iter()
                    .any(|t| matches!(t, Transform::With(TransformWith::Default(_))));
                if !has_default {
                    problems.add(
                        format!("fields.{name}"),
                        "no `path`, so `transforms` needs a `default`",
                    );
                }
            }
        }
        for (i, transform) in transforms.iter().enumerate() {
            let key = format!("fields.{name}.transforms[{i}]");
            match transform {
                Transform::With(TransformWith::Sha256 { key: secret }) => {
                    let key = format!("{key}.sha256.key");
                    if secret.trim().is_empty() {
                        problems.add(&key, "expected a key, usually `${VAR}`");
                    }
                    check_env_syntax(secret, &key, problems);
                }
                Transform::With(TransformWith::Timestamp {
                    format: Some(format),
                }) if !valid_strftime(format) => {
                    problems.add(
                        format!("{key}.timestamp.format"),
                        "not a valid strftime format (such as `%m/%d/%Y %H:%M:%S`)",
                    );
                }
                _ => {}
            }
        }
    }

    if let Some(key) = &def.key {
        if def.fields.is_empty() {
            check_value_path(key, "key", captures, problems);
        } else if !def.fields.contains_key(key) {
            problems.add(
                "key",
                format!(
                    "`{key}` is not one of the fields; expected one of {}",
                    quoted(def.fields.keys().map(String::as_str))
                ),
            );
        }
    }
}

/// A path to a value in a raw record: a JSONPath (starting with `$`), or else a top-level key:
/// a JSON key, a CSV column, or for text patterns a capture name.
fn check_value_path(path: &str, key: &str, captures: Option<&[String]>, problems: &mut Problems) {
    if path.is_empty() {
        problems.add(key, "expected a JSONPath, a key or a capture name");
    } else if path.starts_with('$') {
        check_jsonpath(path, key, problems);
    } else if let Some(captures) = captures
        && !captures.iter().any(|c| c == path)
    {
        problems.add(
            key,
            format!(
                "`{path}` is not a named capture of parse.pattern; expected one of {}",
                quoted(captures.iter().map(String::as_str))
            ),
        );
    }
}

/// A cron expression as the scheduler reads it: six fields, seconds first.
fn check_cron(expr: &str) -> Result<(), String> {
    const EXPECTED: &str = "expected a cron expression with 6 fields (second minute hour day-of-month month day-of-week)";
    let count = expr.split_whitespace().count();
    if count != 6 {
        return Err(format!("{EXPECTED}, found {count}"));
    }
    CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Disallowed)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .map(|_| ())
        .map_err(|e| format!("{EXPECTED}: {e}"))
}

fn check_jsonpath(path: &str, key: &str, problems: &mut Problems) {
    if let Err(e) = JsonPath::parse(path) {
        problems.add(key, format!("not a valid JSONPath (RFC 9535): {e}"));
    }
}

fn check_env_syntax(text: &str, key: &str, problems: &mut Problems) {
    // Any value will do: only the syntax of the references is checked at load time.
    if let Err(e) = expand_env(text, &|_| Some(String::new())) {
        problems.add(key, e);
    }
}

fn check_body_env(value: &serde_json::Value, path: &str, problems: &mut Problems) {
    match value {
        serde_json::Value::String(s) => check_env_syntax(s, path, problems),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_body_env(item, &format!("{path}[{i}]"), problems);
            }
        }
        serde_json::Value::Object(map) => {
            for (name, item) in map {
                check_body_env(item, &child(path, name), problems);
            }
        }
        _ => {}
    }
}

/// The last `error: …` line of the regex crate's multi-line message.
fn regex_message(error: &regex::Error) -> String {
    let text = error.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().next().unwrap_or_default())
        .to_string()
}

fn valid_strftime(format: &str) -> bool {
    !chrono::format::StrftimeItems::new(format)
        .any(|item| matches!(item, chrono::format::Item::Error))
}

/// Provider and dataset names: `[a-z0-9_-]+`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn valid_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// An HTTP header name (RFC 9110 token).
fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn has_http_scheme(text: &str) -> bool {
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

fn is_http_url(text: &str) -> bool {
    url::Url::parse(text)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// The URL before expansion: `${VAR}` first (the whole base comes from the environment), or a
/// literal http(s) scheme; fully literal URLs must parse.
fn url_shape_ok(url: &str) -> bool {
    if url.starts_with("${") {
        true
    } else if !has_http_scheme(url) {
        false
    } else {
        url.contains("${") || is_http_url(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid token provider to start from.
    const PUSH_TOKEN: &str = r#"
entity = "token"
[source]
kind = "push"
[fields]
address = { path = "address", transforms = ["hex"] }
"#;

    /// Writes `files` into a fresh directory and loads it.
    fn load(files: &[(&str, &str)]) -> (tempfile::TempDir, Result<Vec<Provider>, LoadErrors>) {
        let dir = tempfile::tempdir().expect("temporary directory");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write provider file");
        }
        let loaded = load_dir(dir.path());
        (dir, loaded)
    }

    /// Loads one file named `p.toml`, which must load.
    fn good(text: &str) -> Provider {
        match load(&[("p.toml", text)]).1 {
            Ok(mut providers) => providers.remove(0),
            Err(e) => panic!("expected the file to load, got:\n{e}"),
        }
    }

    /// The problems with one file named `p.toml`, as `key: message`.
    fn problems(text: &str) -> Vec<String> {
        match load(&[("p.toml", text)]).1 {
            Ok(_) => panic!("expected problems, the file loaded:\n{text}"),
            Err(LoadErrors(errors)) => errors
                .into_iter()
                .map(|e| {
                    assert_eq!(e.file.file_name().and_then(|n| n.to_str()), Some("p.toml"));
                    format!("{}{}", key_prefix(&e.key), e.message)
                })
                .collect(),
        }
    }

    fn http(extra_source: &str, rest: &str) -> String {
        format!(
            "entity = \"record\"\ndataset = \"hosts\"\nkey = \"id\"\n[source]\nkind = \"http\"\nurl = \"https://api.example.com/hosts\"\n{extra_source}\n{rest}\n[fields]\nid = \"$.id\"\n"
        )
    }

    fn repo_providers() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("providers")
    }

    #[test]
    fn shipped_providers_load() {
        let providers = match load_dir(&repo_providers()) {
            Ok(providers) => providers,
            Err(e) => panic!("providers/ must load:\n{e}"),
        };
        let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["crowdstrike", "qualys", "sample-tokens", "sample-transfers"]
        );
        for provider in providers.iter().filter(|p| p.name.starts_with("sample-")) {
            let Source::File(file) = &provider.def.source else {
                panic!("{} should be a file source", provider.name);
            };
            let FileLocation::Local(path) = file_location(provider, file) else {
                panic!("{} should read a local file", provider.name);
            };
            assert!(path.is_file(), "{} is missing", path.display());
            assert!(provider.def.schedule.is_none());
        }
    }

    #[test]
    fn templates_load() {
        let templates = repo_providers().join("templates");
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut expected = Vec::new();
        for entry in std::fs::read_dir(&templates).expect("providers/templates") {
            let path = entry.expect("directory entry").path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(stem) = name.strip_suffix(".toml.example") {
                std::fs::copy(&path, dir.path().join(format!("{stem}.toml"))).expect("copy");
                expected.push(stem.to_string());
            }
        }
        expected.sort();
        assert_eq!(expected, ["http-cursor", "http-offset"]);
        let providers = match load_dir(dir.path()) {
            Ok(providers) => providers,
            Err(e) => panic!("templates must load:\n{e}"),
        };
        let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, expected);

        let offset = &providers[1].def;
        let Source::Http(source) = &offset.source else {
            panic!("http-offset is an http source");
        };
        assert_eq!(source.method, HttpMethod::Post);
        assert!(matches!(
            &source.pagination,
            Pagination::Offset { end, .. } if end.statuses == [500] && end.shrink_on_end_status
        ));
        let cursor = &providers[0].def;
        assert!(matches!(cursor.parse, Parse::Text { .. }));
        assert!(matches!(&cursor.source, Source::Http(h) if h.follow.is_some()));
    }

    #[test]
    fn readme_examples_load() {
        let readme = std::fs::read_to_string(repo_providers().join("README.md")).expect("README");
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut block: Option<String> = None;
        let mut count = 0;
        for line in readme.lines() {
            match (&mut block, line) {
                (None, "```toml") => block = Some(String::new()),
                (Some(text), "```") => {
                    // Complete examples only; snippets have no source.
                    if text.contains("[source]") {
                        let file = dir.path().join(format!("example-{count}.toml"));
                        std::fs::write(file, text.as_str()).expect("write example");
                        count += 1;
                    }
                    block = None;
                }
                (Some(text), line) => {
                    text.push_str(line);
                    text.push('\n');
                }
                (None, _) => {}
            }
        }
        let providers = match load_dir(dir.path()) {
            Ok(providers) => providers,
            Err(e) => panic!("README examples must load:\n{e}"),
        };
        let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "products-csv",
                "crowdstrike-hosts",
                "slack-users",
                "patients",
                "bigquery-transfers",
                "indexer-tokens",
            ]
        );
    }

    #[test]
    fn good_files_load_with_defaults() {
        let token = good(PUSH_TOKEN);
        assert_eq!(token.name, "p");
        assert!(token.def.enabled);
        assert!(!token.keep_raw());

        let full = good(
            &http(
                r#"method = "POST"
headers = { token = "${SILK_TOKEN}", Accept = "application/json" }
query = { since = "2024-01-01" }
body = { filter = { os = "linux" }, tags = ["a", "${TAG}"] }
records = "$[*]"
concurrency = 2
rate_limit = 0.5
timeout_secs = 10
max_pages = 50
[[source.skip]]
field = "$.name"
starts_with = "index"
equals = "README"
[source.pagination]
kind = "offset"
offset_param = "skip"
limit_param = "limit"
page_size = 2
[source.pagination.end]
statuses = [500]
shrink_on_end_status = true
[source.retry]
attempts = 3
initial_backoff_ms = 100
max_backoff_ms = 1000"#,
                "",
            )
            .replace("entity =", "schedule = \"0 */5 * * * *\"\nentity ="),
        );
        assert!(full.keep_raw());
        let Source::Http(source) = &full.def.source else {
            panic!("an http source");
        };
        assert_eq!(source.rate_limit, Some(0.5));
        assert_eq!(source.skip.len(), 1);

        let file = good(
            r#"name = "bq-transfers"
entity = "transfer"
schedule = "0 0 3 * * MON-FRI"
[source]
kind = "file"
path = "https://example.com/exports/transfers.csv.gz?sig=abc"
[fields]
token_address = { path = "token_address", transforms = ["trim", "lowercase", "hex"] }
from_address = "from_address"
to_address = "to_address"
value = { path = "value", transforms = ["uint256"] }
transaction_hash = "transaction_hash"
log_index = { path = "log_index", transforms = [{ int = { default = 0 } }] }
block_number = { path = "block_number", transforms = ["int"] }
block_timestamp = { path = "block_timestamp", transforms = [{ timestamp = { format = "%m/%d/%Y %H:%M" } }] }"#,
        );
        assert_eq!(file.name, "bq-transfers");
        let Source::File(source) = &file.def.source else {
            panic!("a file source");
        };
        assert_eq!(file_format(source), Some(FileFormat::Csv));

        // A record provider may store whole raw records: no fields, the key read from the raw record.
        let whole = good(
            "entity = \"record\"\ndataset = \"events\"\nkey = \"$.id\"\n[source]\nkind = \"push\"\n",
        );
        assert!(whole.def.fields.is_empty());

        // Cursor pagination from a header, link pagination, a page listing, a default-only field.
        good(&http(
            "[source.pagination]\nkind = \"cursor\"\ntoken_header = \"X-Next\"\nparam = \"cursor\"",
            "",
        ));
        good(&http(
            "[source.pagination]\nkind = \"link\"\nnext_path = \"$.links.next\"",
            "",
        ));
        good(&http(
            "[source.pagination]\nkind = \"page\"\nsize_param = \"per_page\"\npage_size = 100\nfirst_page = 0",
            "",
        ));
        good(
            "entity = \"record\"\ndataset = \"d\"\nkey = \"id\"\n[source]\nkind = \"push\"\n[fields]\nid = \"id\"\norigin = { transforms = [{ default = \"push\" }] }\n",
        );
    }

    #[test]
    fn error_display_names_file_key_and_expectation() {
        let error = LoadError {
            file: PathBuf::from("providers/qualys.toml"),
            key: "source.pagination.page_size".to_string(),
            message: "expected a whole number of at least 1".to_string(),
        };
        assert_eq!(
            error.to_string(),
            "providers/qualys.toml: source.pagination.page_size: expected a whole number of at least 1"
        );
        let whole_file = LoadError {
            file: PathBuf::from("providers/x.toml"),
            key: String::new(),
            message: "line 1, column 1: bad".to_string(),
        };
        assert_eq!(
            whole_file.to_string(),
            "providers/x.toml: line 1, column 1: bad"
        );
        assert_eq!(
            LoadErrors(vec![error, whole_file]).to_string(),
            "providers/qualys.toml: source.pagination.page_size: expected a whole number of at least 1\nproviders/x.toml: line 1, column 1: bad"
        );

        // The same message from a real file.
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("qualys.toml");
        std::fs::write(
            &path,
            http("[source.pagination]\nkind = \"offset\"\npage_size = 0", ""),
        )
        .expect("write");
        let error = load_file(&path).expect_err("page_size 0 is refused");
        assert_eq!(
            error.to_string(),
            format!(
                "{}: source.pagination.page_size: expected a whole number of at least 1",
                path.display()
            )
        );
    }

    #[test]
    fn toml_syntax_errors_give_line_and_column() {
        let found = problems("entity = \"token\"\n[source\nkind = \"push\"\n");
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("line 2, column 8: "), "{found:?}");
        assert!(!found[0].contains('\n'));
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        assert_eq!(
            problems(&format!("bogus = 1\n{PUSH_TOKEN}")),
            [
                "bogus: unknown key; expected one of `name`, `entity`, `dataset`, `schedule`, `enabled`, `keep_raw`, `key`, `source`, `parse`, `fields`"
            ]
        );
        assert_eq!(
            problems(&http("method = \"POST\"\nheader = { a = \"b\" }", "")),
            [
                "source.header: unknown key; expected one of `kind`, `url`, `method`, `headers`, `query`, `body`, `records`, `skip`, `pagination`, `follow`, `concurrency`, `rate_limit`, `timeout_secs`, `retry`, `max_pages`"
            ]
        );
        assert_eq!(
            problems(&http(
                "[source.pagination]\nkind = \"offset\"\npage_size = 10\npagesize = 5",
                ""
            )),
            [
                "source.pagination.pagesize: unknown key; expected one of `kind`, `offset_param`, `limit_param`, `page_size`, `end`"
            ]
        );
        assert_eq!(
            problems(&http(
                "[source.pagination]\nkind = \"offset\"\npage_size = 10\n[source.pagination.end]\nstatus = [500]",
                ""
            )),
            [
                "source.pagination.end.status: unknown key; expected one of `short_page`, `statuses`, `shrink_on_end_status`"
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
            ["fields.address.transform: unknown key; expected one of `path`, `transforms`"]
        );
        assert_eq!(
            problems(
                &PUSH_TOKEN.replace("[\"hex\"]", "[{ sha256 = { key = \"k\", salt = \"s\" } }]")
            ),
            ["fields.address.transforms[0].sha256.salt: unknown key; expected one of `key`"]
        );
    }

    #[test]
    fn host_providers_map_host_fields_and_need_an_id() {
        let host = r#"
entity = "host"
[source]
kind = "push"
[fields]
id = "device_id"
cloud_provider = { path = "service_provider", transforms = [{ map = { AWS_EC2_V2 = "AWS" } }] }
"#;
        let (_dir, loaded) = load(&[("h.toml", host)]);
        assert!(loaded.is_ok(), "{loaded:?}");
        assert_eq!(
            problems(
                &host
                    .replace("id = \"device_id\"", "mac = \"mac_address\"")
                    .replace("entity = \"host\"", "entity = \"host\"\nkey = \"mac\"")
            ),
            [
                "key: not used with entity = \"host\": the `id` field is the provider's id for the host",
                "fields.mac: not a column of host; expected one of `id`, `hostname`, `fqdn`, `os`, `platform`, `cloud_provider`, `cloud_instance_id`, `ips`, `private_ips`, `public_ips`, `macs`, `first_seen`, `last_seen`",
                "fields.id: missing; required for entity = \"host\"",
            ]
        );
        assert_eq!(
            problems(&host.replace("AWS_EC2_V2 = \"AWS\"", "AWS_EC2_V2 = 1")),
            ["fields.cloud_provider.transforms[0].map.AWS_EC2_V2: expected a string"]
        );
    }

    #[test]
    fn missing_keys_and_wrong_types() {
        assert_eq!(
            problems("entity = \"token\"\n"),
            ["source: missing; expected a table with `kind` = `http`, `file`, `push`"]
        );
        assert_eq!(
            problems("[source]\nkind = \"push\"\n"),
            ["entity: missing; expected one of `token`, `transfer`, `host`, `product`, `record`"]
        );
        assert_eq!(
            problems(&PUSH_TOKEN.replace("\"token\"", "\"tokens\"")),
            [
                "entity: expected one of `token`, `transfer`, `host`, `product`, `record` (found `tokens`)"
            ]
        );
        assert_eq!(
            problems(&PUSH_TOKEN.replace("\"push\"", "\"ftp\"")),
            ["source.kind: expected one of `http`, `file`, `push` (found `ftp`)"]
        );
        assert_eq!(
            problems(&PUSH_TOKEN.replace("kind = \"push\"", "")),
            ["source.kind: missing; expected one of `http`, `file`, `push`"]
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
                "fields.address.transforms[0]: unknown transform `hexx`; expected one of `trim`, `lowercase`, `int`, `uint256`, `hex`, `mac`, `ip`, `timestamp`, `redact`, `sha256`, or a table such as `{ int = { default = 0 } }`"
            ]
        );
        assert_eq!(
            problems(&PUSH_TOKEN.replace("[\"hex\"]", "[{ sha256 = {} }]")),
            ["fields.address.transforms[0].sha256.key: missing; expected a string"]
        );
        assert_eq!(
            problems(&PUSH_TOKEN.replace("{ path = \"address\", transforms = [\"hex\"] }", "3")),
            ["fields.address: expected a path (a string) or a table with `path` and `transforms`"]
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
    fn names_must_be_valid_and_unique() {
        assert_eq!(
            problems(&format!("name = \"Qualys Hosts\"\n{PUSH_TOKEN}")),
            [
                "name: `Qualys Hosts` is not a valid provider name; expected lowercase letters, digits, `_` and `-`"
            ]
        );
        let (_dir, loaded) = load(&[("Qualys.toml", PUSH_TOKEN)]);
        let errors = loaded.expect_err("an upper-case file name is refused").0;
        assert_eq!(
            errors[0].message,
            "`Qualys` (from the file name) is not a valid provider name; expected lowercase letters, digits, `_` and `-`"
        );

        let (dir, loaded) = load(&[
            ("a.toml", &format!("name = \"hosts\"\n{PUSH_TOKEN}")),
            ("b.toml", PUSH_TOKEN),
            ("hosts.toml", PUSH_TOKEN),
        ]);
        let errors = loaded.expect_err("duplicate names are refused").0;
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].to_string(),
            format!(
                "{}: name: `hosts` is already the name of {}",
                dir.path().join("hosts.toml").display(),
                dir.path().join("a.toml").display()
            )
        );
    }

    #[test]
    fn record_needs_dataset_and_key() {
        assert_eq!(
            problems("entity = \"record\"\n[source]\nkind = \"push\"\n"),
            [
                "dataset: missing; required when entity = \"record\"",
                "key: missing; required when entity = \"record\"",
            ]
        );
        assert_eq!(
            problems(&format!("dataset = \"tokens\"\n{PUSH_TOKEN}")),
            ["dataset: only allowed when entity = \"record\""]
        );
        assert_eq!(
            problems(
                "entity = \"record\"\ndataset = \"My Hosts\"\nkey = \"id\"\n[source]\nkind = \"push\"\n"
            ),
            [
                "dataset: `My Hosts` is not a valid dataset name; expected lowercase letters, digits, `_` and `-`"
            ]
        );
    }

    #[test]
    fn schedule_is_a_six_field_cron() {
        good(&format!("schedule = \"0 0 * * * *\"\n{PUSH_TOKEN}"));
        assert_eq!(
            problems(&format!("schedule = \"0 * * * *\"\n{PUSH_TOKEN}")),
            [
                "schedule: expected a cron expression with 6 fields (second minute hour day-of-month month day-of-week), found 5"
            ]
        );
        let found = problems(&format!("schedule = \"0 0 25 * * *\"\n{PUSH_TOKEN}"));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("schedule: expected a cron expression with 6 fields (second minute hour day-of-month month day-of-week): "),
            "{found:?}"
        );
        let found = problems(&format!("schedule = \"every hour\"\n{PUSH_TOKEN}"));
        assert_eq!(
            found,
            [
                "schedule: expected a cron expression with 6 fields (second minute hour day-of-month month day-of-week), found 2"
            ]
        );
    }

    #[test]
    fn jsonpaths_must_compile() {
        let found = problems(&http(
            r#"records = "$.items[*"
[[source.skip]]
field = "name"
equals = "x"
[source.pagination]
kind = "cursor"
token_path = "$.."
param = "pageToken"
[source.follow]
url = "mediaLink""#,
            "",
        ));
        let keys: Vec<&str> = found
            .iter()
            .map(|p| p.split(": ").next().unwrap_or_default())
            .collect();
        assert_eq!(
            keys,
            [
                "source.records",
                "source.skip[0].field",
                "source.pagination.token_path",
                "source.follow.url",
            ]
        );
        for problem in &found {
            assert!(
                problem.contains(": not a valid JSONPath (RFC 9535): "),
                "{problem}"
            );
        }
        let found = problems(&http(
            "[source.pagination]\nkind = \"link\"\nnext_path = \"$.[\"",
            "",
        ));
        assert!(found[0].starts_with("source.pagination.next_path: not a valid JSONPath"));
        let found = problems(&PUSH_TOKEN.replace("path = \"address\"", "path = \"$.a[\""));
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("fields.address.path: not a valid JSONPath (RFC 9535): "));
        let found = problems(
            &PUSH_TOKEN.replace("{ path = \"address\", transforms = [\"hex\"] }", "\"$.a[\""),
        );
        assert!(found[0].starts_with("fields.address: not a valid JSONPath (RFC 9535): "));
    }

    #[test]
    fn text_patterns_need_named_captures() {
        let text = |pattern: &str, fields: &str| {
            format!(
                "entity = \"record\"\ndataset = \"patients\"\nkey = \"id\"\n[source]\nkind = \"http\"\nurl = \"https://example.com/doc\"\n[parse]\nformat = \"text\"\npattern = '{pattern}'\n[fields]\n{fields}\n"
            )
        };
        good(&text(
            r"ID: (?P<id>\S+)\nAGE: (?P<age>.*)",
            "id = \"id\"\nage = \"age\"",
        ));
        assert_eq!(
            problems(&text(r"ID: (\S+)", "id = \"id\"")),
            [
                "parse.pattern: has no named capture; each record's fields come from `(?P<name>…)` groups"
            ]
        );
        let found = problems(&text(r"ID: (?P<id>\S+", "id = \"id\""));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("parse.pattern: not a valid regular expression: "),
            "{found:?}"
        );
        assert_eq!(
            problems(&text(r"ID: (?P<id>\S+)", "id = \"ID\"")),
            ["fields.id: `ID` is not a named capture of parse.pattern; expected one of `id`"]
        );
    }

    #[test]
    fn a_rate_limit_too_small_to_wait_for_is_refused() {
        // 1 / 5e-324 is infinite: the HTTP client could not build its rate limiter.
        assert_eq!(
            problems(&http("rate_limit = 5e-324", "")),
            ["source.rate_limit: expected at least 0.000000001 requests per second"]
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
                "source.pagination.end.statuses: expected a list of HTTP status codes (100 to 599)",
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
                "source.skip[0]: expected `starts_with` or `equals` (or both: either one matching skips)",
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

    #[test]
    fn urls_are_http_or_start_with_a_variable() {
        let with_url = |url: &str| http("", "").replace("https://api.example.com/hosts", url);
        good(&with_url("${SILK_BASE_URL}/api/qualys/hosts/get"));
        good(&with_url("https://${HOST}/api"));
        good(&with_url("HTTP://example.com"));
        let expected =
            ["source.url: expected an http:// or https:// URL (or one starting with `${VAR}`)"];
        assert_eq!(problems(&with_url("ftp://example.com/x")), expected);
        assert_eq!(problems(&with_url("api.example.com/hosts")), expected);
        assert_eq!(problems(&with_url("https://")), expected);
        assert_eq!(
            problems(&with_url("${BASE/api")),
            ["source.url: `${` without a closing `}`"]
        );
        assert_eq!(
            problems(&http("headers = { token = \"${1TOKEN}\" }", "")),
            [
                "source.headers.token: `${…}` must hold a variable name: letters, digits and `_`, not starting with a digit"
            ]
        );
    }

    #[test]
    fn fields_match_the_entity() {
        assert_eq!(
            problems("entity = \"token\"\n[source]\nkind = \"push\"\n"),
            ["fields: expected at least one field for entity = \"token\""]
        );
        assert_eq!(
            problems(&format!("{PUSH_TOKEN}sybmol = \"symbol\"\n")),
            [
                "fields.sybmol: not a column of token; expected one of `address`, `symbol`, `name`, `decimals`, `total_supply`, `block_number`, `block_timestamp`"
            ]
        );
        assert_eq!(
            problems(&PUSH_TOKEN.replace("address =", "symbol =")),
            ["fields.address: missing; required for entity = \"token\""]
        );
        assert_eq!(
            problems(
                "entity = \"transfer\"\n[source]\nkind = \"push\"\n[fields]\ntoken_address = \"a\"\nvalue = \"v\"\nblock_timestamp = \"t\"\n"
            ),
            [
                "fields.from_address: missing; required for entity = \"transfer\"",
                "fields.to_address: missing; required for entity = \"transfer\"",
                "fields.transaction_hash: missing; required for entity = \"transfer\"",
                "fields.log_index: missing; required for entity = \"transfer\"",
                "fields.block_number: missing; required for entity = \"transfer\"",
            ]
        );
        assert_eq!(
            problems(&format!("key = \"addr\"\n{PUSH_TOKEN}")),
            ["key: `addr` is not one of the fields; expected one of `address`"]
        );
        assert_eq!(
            problems(&format!(
                "{PUSH_TOKEN}symbol = {{ transforms = [\"trim\"] }}\n"
            )),
            ["fields.symbol: no `path`, so `transforms` needs a `default`"]
        );
        assert_eq!(
            problems(&PUSH_TOKEN.replace(
                "[\"hex\"]",
                "[{ timestamp = { format = \"%Q\" } }, { sha256 = { key = \"\" } }]"
            )),
            [
                "fields.address.transforms[0].timestamp.format: not a valid strftime format (such as `%m/%d/%Y %H:%M:%S`)",
                "fields.address.transforms[1].sha256.key: expected a key, usually `${VAR}`",
            ]
        );
    }

    #[test]
    fn file_sources() {
        let file = |source: &str| {
            format!(
                "entity = \"token\"\n[source]\nkind = \"file\"\n{source}\n[fields]\naddress = \"address\"\n"
            )
        };
        good(&file("path = \"../data/tokens.jsonl.gz\""));
        good(&file("path = \"/srv/exports/tokens\"\nformat = \"csv\""));
        good(&file("path = \"tokens.json\"\nrecords = \"$.result[*]\""));
        assert_eq!(
            problems(&file("path = \"s3://bucket/tokens.csv\"")),
            ["source.path: expected a local path or an http:// or https:// URL"]
        );
        assert_eq!(
            problems(&file("path = \"tokens.dat\"")),
            [
                "source.format: missing; the file name does not tell the format; expected one of `csv`, `jsonl`, `json`"
            ]
        );
        assert_eq!(
            problems(&file("path = \"tokens.csv\"\nrecords = \"$[*]\"")),
            ["source.records: only used with format = \"json\""]
        );
        assert_eq!(
            problems(&format!(
                "{}[parse]\nformat = \"csv\"\n",
                file("path = \"t.csv\"")
            )),
            ["parse: not used by file sources; the file's format is `source.format`"]
        );
    }

    #[test]
    fn load_dir_collects_every_problem_in_file_order() {
        let (dir, loaded) = load(&[
            ("b.toml", "entity = \"token\"\n[source]\nkind = \"push\"\n"),
            (
                "a.toml",
                &format!("schedule = \"x\"\ndataset = \"d\"\n{PUSH_TOKEN}"),
            ),
            ("c.toml", PUSH_TOKEN),
            ("notes.txt", "not a provider"),
            ("d.toml.example", "not loaded"),
        ]);
        std::fs::create_dir(dir.path().join("templates")).expect("subdirectory");
        std::fs::write(dir.path().join("templates/e.toml"), "not loaded").expect("write");
        let errors = loaded.expect_err("a.toml and b.toml are invalid").0;
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let a = dir.path().join("a.toml");
        let b = dir.path().join("b.toml");
        assert_eq!(
            lines,
            [
                format!(
                    "{}: dataset: only allowed when entity = \"record\"",
                    a.display()
                ),
                format!(
                    "{}: schedule: expected a cron expression with 6 fields (second minute hour day-of-month month day-of-week), found 1",
                    a.display()
                ),
                format!(
                    "{}: fields: expected at least one field for entity = \"token\"",
                    b.display()
                ),
            ]
        );
        // The subdirectory and other extensions are not read.
        let loaded = load_dir(dir.path());
        assert_eq!(loaded.expect_err("still invalid").0.len(), 3);

        // load_file reports the first problem of one file.
        let first = load_file(&a).expect_err("invalid");
        assert_eq!(first.key, "dataset");

        let missing = load_dir(&dir.path().join("nope"))
            .expect_err("no such directory")
            .0;
        assert_eq!(missing.len(), 1);
        assert!(
            missing[0]
                .message
                .starts_with("cannot read the providers directory: ")
        );
    }

    #[test]
    fn expand_env_replaces_variables_and_never_shows_values() {
        let env = |name: &str| match name {
            "SILK_TOKEN" => Some("s3cr3t".to_string()),
            "EMPTY" => Some(String::new()),
            "TRICKY" => Some("${SILK_TOKEN}".to_string()),
            _ => None,
        };
        assert_eq!(
            expand_env("plain $5 text", &env).as_deref(),
            Ok("plain $5 text")
        );
        assert_eq!(
            expand_env("Bearer ${SILK_TOKEN}!", &env).as_deref(),
            Ok("Bearer s3cr3t!")
        );
        assert_eq!(expand_env("a${EMPTY}b", &env).as_deref(), Ok("ab"));
        // A value is inserted as it is, never expanded again.
        assert_eq!(
            expand_env("${TRICKY}", &env).as_deref(),
            Ok("${SILK_TOKEN}")
        );
        assert_eq!(
            expand_env("$${SILK_TOKEN}", &env).as_deref(),
            Ok("${SILK_TOKEN}")
        );
        assert_eq!(
            expand_env("${SILK_TOKEN}${UNSET_VAR}", &env),
            Err("environment variable `UNSET_VAR` is not set".to_string())
        );
        assert_eq!(
            expand_env("${SILK_TOKEN", &env),
            Err("`${` without a closing `}`".to_string())
        );
        assert!(expand_env("${}", &env).is_err());
        assert!(expand_env("${A-B}", &env).is_err());
    }

    #[test]
    fn expand_provider_expands_secrets_and_names_the_key() {
        let provider = good(&format!(
            "{}\n",
            http(
                "method = \"POST\"\nheaders = { token = \"${SILK_TOKEN}\" }\nquery = { k = \"${SILK_TOKEN}\" }\nbody = { auth = [\"${SILK_TOKEN}\"] }",
                "",
            )
            .replace("https://api.example.com", "${SILK_BASE_URL}")
            .replace(
                "id = \"$.id\"",
                "id = \"$.id\"\nname = { path = \"$.name\", transforms = [{ sha256 = { key = \"${PII_KEY}\" } }] }"
            )
        ));
        let env = |name: &str| match name {
            "SILK_BASE_URL" => Some("https://silk.example.com".to_string()),
            "SILK_TOKEN" => Some("s3cr3t".to_string()),
            "PII_KEY" => Some("pepper".to_string()),
            _ => None,
        };
        let expanded = expand_provider(&provider, &env).expect("all variables set");
        let Source::Http(source) = &expanded.def.source else {
            panic!("an http source");
        };
        assert_eq!(source.url, "https://silk.example.com/hosts");
        assert_eq!(source.headers["token"], "s3cr3t");
        assert_eq!(source.query["k"], "s3cr3t");
        assert_eq!(source.body, Some(serde_json::json!({"auth": ["s3cr3t"]})));
        assert!(matches!(
            &expanded.def.fields["name"],
            FieldSpec::Full { transforms, .. }
                if matches!(&transforms[0], Transform::With(TransformWith::Sha256 { key }) if key == "pepper")
        ));
        // The loaded provider itself keeps the references.
        let Source::Http(original) = &provider.def.source else {
            panic!("an http source");
        };
        assert_eq!(original.headers["token"], "${SILK_TOKEN}");

        let without_pii = |name: &str| if name == "PII_KEY" { None } else { env(name) };
        let error = expand_provider(&provider, &without_pii).expect_err("PII_KEY is unset");
        assert_eq!(
            error.to_string(),
            format!(
                "{}: fields.name.transforms[0].sha256.key: environment variable `PII_KEY` is not set",
                provider.path.display()
            )
        );
        let bad_base = |name: &str| match name {
            "SILK_BASE_URL" => Some("not a url s3cr3t".to_string()),
            _ => env(name),
        };
        let error = expand_provider(&provider, &bad_base).expect_err("not a URL");
        assert_eq!(error.key, "source.url");
        assert!(!error.to_string().contains("s3cr3t"));
    }

    #[test]
    fn file_formats_and_locations() {
        let source = |path: &str| FileSource {
            path: path.to_string(),
            format: None,
            records: None,
        };
        assert_eq!(file_format(&source("a.CSV.gz")), Some(FileFormat::Csv));
        assert_eq!(file_format(&source("a.ndjson")), Some(FileFormat::Jsonl));
        assert_eq!(
            file_format(&source("https://x/a.json?x=1.csv")),
            Some(FileFormat::Json)
        );
        assert_eq!(file_format(&source("a.txt")), None);
        let provider = Provider {
            name: "p".to_string(),
            path: PathBuf::from("providers/p.toml"),
            def: toml::from_str(PUSH_TOKEN).expect("valid"),
        };
        assert_eq!(
            file_location(&provider, &source("../data/a.csv")),
            FileLocation::Local(PathBuf::from("providers/../data/a.csv"))
        );
        assert_eq!(
            file_location(&provider, &source("https://x/a.csv")),
            FileLocation::Url("https://x/a.csv".to_string())
        );
    }
}
