//! What a provider file means, checked on its typed definition once its shape is right: names,
//! the entity's fields, cron expressions, JSONPaths, regular expressions, URLs and the syntax
//! of `${VAR}` references (their values are read only when a run starts, `env`).

use croner::parser::{CronParser, Seconds, Year};
use regex::Regex;
use serde_json_path::JsonPath;
use toml::Value;

use super::definition::{
    EntityKind, FieldSpec, FileFormat, FileSource, HttpMethod, HttpSource, KafkaSource,
    MessageFormat, PageEnd, Pagination, Parse, ProviderFile, Source, Transform, TransformWith,
};
use super::env::expand_env;
use super::load::Problems;
use super::resolve::file_format;
use super::shape::{child, quoted};

/// The smallest `rate_limit`: one request per 10^9 seconds. Below it the wait between two
/// requests is past what a `Duration` holds (`5e-324` makes it infinite).
const MIN_RATE_LIMIT: f64 = 1e-9;

/// Every meaning check of one file, on its typed definition; `raw` is the file as written
/// (for keys whose absence differs from their default).
pub(super) fn validate(
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
        Parse::Json(_) | Parse::Csv(_) => None,
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
        Source::Push(_) => {
            if raw.contains_key("parse") {
                problems.add(
                    "parse",
                    "not used by push sources; records are posted as JSON or JSON lines",
                );
            }
        }
        Source::Kafka(kafka) => {
            check_kafka(kafka, &def.parse, raw.contains_key("parse"), problems);
            if def.schedule.is_some() {
                problems.add(
                    "schedule",
                    "not used by kafka sources: every replica consumes continuously",
                );
            }
        }
    }

    check_mapping(def, captures.as_deref(), problems);
}

fn check_kafka(kafka: &KafkaSource, parse: &Parse, parse_given: bool, problems: &mut Problems) {
    check_env_syntax(&kafka.brokers, "source.brokers", problems);
    if kafka.brokers.trim().is_empty() {
        problems.add("source.brokers", "expected `host:port[,host:port…]`");
    }
    for (i, topic) in kafka.topics.iter().enumerate() {
        check_env_syntax(topic, &format!("source.topics[{i}]"), problems);
        if topic.trim().is_empty() {
            problems.add(format!("source.topics[{i}]"), "empty topic name");
        }
    }
    if let Some(group) = &kafka.group {
        check_env_syntax(group, "source.group", problems);
    }
    for (name, value) in &kafka.properties.0 {
        let key = format!("source.properties.{name}");
        if name == "bootstrap.servers" {
            problems.add(&key, "given by `source.brokers`");
        } else if crate::sources::kafka::OWNED.contains(&name.as_str()) {
            problems.add(
                &key,
                "set by Tributary: exactly-once delivery rests on it (the group is `source.group`)",
            );
        }
        check_env_syntax(value, &key, problems);
    }
    match (kafka.format, &kafka.schema) {
        (MessageFormat::Avro, None) => {
            problems.add("source.schema", "missing; required when format = \"avro\"")
        }
        (MessageFormat::Avro, Some(_)) | (_, None) => {}
        (_, Some(_)) => problems.add("source.schema", "only used when format = \"avro\""),
    }
    if kafka.columns.is_some() && kafka.format != MessageFormat::Csv {
        problems.add("source.columns", "only used when format = \"csv\"");
    }
    match (kafka.format, parse) {
        (MessageFormat::Text, Parse::Text { .. }) => {}
        (MessageFormat::Text, _) => problems.add(
            "parse",
            "missing; format = \"text\" needs `[parse] format = \"text\"` with a pattern",
        ),
        (_, _) if parse_given => problems.add(
            "parse",
            "only used by kafka sources with format = \"text\"; the message format is `source.format`",
        ),
        _ => {}
    }
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
    if records_given && http.follow.is_none() && !matches!(parse, Parse::Json(_)) {
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
        Pagination::None(_) => {}
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
        let (path, transforms) = spec.parts();
        let path_key = match spec {
            FieldSpec::Path(_) => format!("fields.{name}"),
            FieldSpec::Full(_) => format!("fields.{name}.path"),
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

/// An HTTP header name (RFC 9110 token).
fn valid_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

pub(super) fn has_http_scheme(text: &str) -> bool {
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

pub(super) fn is_http_url(text: &str) -> bool {
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
    use crate::providers::load::fixtures::{PUSH_TOKEN, good, http, load, problems};

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
}
