//! What a provider file means, checked on its typed definition once its shape is right: names,
//! the entity's fields, cron expressions, JSONPaths, regular expressions, URLs and the syntax
//! of `${VAR}` references (their values are read only when a run starts, `env`).

use croner::parser::{CronParser, Seconds, Year};
use regex::Regex;
use serde_json_path::JsonPath;
use toml::Value;

use super::definition::{
    CursorValue, EntityKind, FieldSpec, FileFormat, FileSource, HttpMethod, HttpSource,
    KafkaSource, MessageFormat, OnMissing, PageEnd, Pagination, Parse, ProviderFile, RecordRule,
    Source, Transform, TransformWith, WindowEnd,
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
    for (i, rule) in def.skip.iter().enumerate() {
        check_rule(rule, &format!("skip[{i}]"), problems);
    }
    if def.on_missing == OnMissing::MarkDeleted {
        if def.entity != EntityKind::Record {
            problems.add(
                "on_missing",
                "`mark_deleted` is for entity = \"record\": other kinds merge several providers' rows (hosts) or have no provider of their own (tokens, transfers, products, events)",
            );
        }
        if !matches!(def.source, Source::Http(_) | Source::File(_)) {
            problems.add(
                "on_missing",
                "`mark_deleted` needs a source that a run lists whole (http or file); push and kafka runs never see the whole source",
            );
        }
    }
    for (i, rule) in def.keep.iter().enumerate() {
        check_rule(rule, &format!("keep[{i}]"), problems);
    }
}

fn check_rule(rule: &RecordRule, key: &str, problems: &mut Problems) {
    check_jsonpath(&rule.field, &format!("{key}.field"), problems);
    if rule.starts_with.is_none()
        && rule.equals.is_none()
        && rule.one_of.is_none()
        && rule.length.is_none()
    {
        problems.add(
            key,
            "expected `equals`, `in`, `starts_with` or `length` (the rule matches when any one holds)",
        );
    }
}

/// `${name}` is written in one of the request's texts.
fn request_uses(http: &HttpSource, name: &str) -> bool {
    let needle = format!("${{{name}}}");
    let mut texts = vec![http.url.clone()];
    texts.extend(http.query.values().cloned());
    if let Some(body) = &http.body {
        texts.push(body.to_string());
    }
    texts.iter().any(|t| t.contains(&needle))
}

/// `[source.incremental]` and `window` pagination: the cursor's type comes from `initial` (or
/// the window's `start`), and every other value must be of that type.
fn check_cursor(http: &HttpSource, problems: &mut Problems) {
    use crate::sources::incremental::{Format, Kind, Mark, Step};
    let window = match &http.pagination {
        Pagination::Window(window) => Some(window),
        _ => None,
    };
    let mut kind = None;
    if let Some(inc) = &http.incremental {
        check_jsonpath(&inc.cursor, "source.incremental.cursor", problems);
        let k = Mark::of_config(&inc.initial).kind();
        kind = Some(k);
        if let Some(lookback) = &inc.lookback {
            match Step::of_config(lookback, k) {
                Ok(_) => {}
                Err(e) => problems.add("source.incremental.lookback", e),
            }
        }
        if let Err(e) = Format::of_config(inc.format.as_deref(), k) {
            problems.add("source.incremental.format", e);
        }
        let reaches = inc.param.is_some() || window.is_some() || request_uses(http, "cursor");
        if !reaches {
            problems.add(
                "source.incremental",
                "the mark reaches no request: set `param`, write `${cursor}` into the url, a query value or the body, or use `window` pagination",
            );
        }
        if let Some(param) = &inc.param
            && param.trim().is_empty()
        {
            problems.add(
                "source.incremental.param",
                "expected a query parameter name",
            );
        }
    } else if request_uses(http, "cursor") {
        problems.add(
            "source",
            "`${cursor}` is used, but there is no `[source.incremental]` to give it",
        );
    }
    let Some(window) = window else {
        for name in ["window.from", "window.to", "window.last"] {
            if request_uses(http, name) {
                problems.add(
                    "source",
                    format!("`${{{name}}}` is used, but pagination is not `window`"),
                );
            }
        }
        return;
    };
    if let Some(start) = &window.start {
        let k = Mark::of_config(start).kind();
        match kind {
            Some(inc) if inc != k => problems.add(
                "source.pagination.start",
                format!(
                    "expected {} like `incremental.initial`, found {}",
                    inc.name(),
                    k.name()
                ),
            ),
            _ => kind = Some(k),
        }
    }
    let Some(kind) = kind else {
        problems.add(
            "source.pagination",
            "a window needs `start`, or `[source.incremental]` to start from",
        );
        return;
    };
    if kind == Kind::Text {
        problems.add(
            "source.pagination.start",
            "expected an integer or an RFC 3339 timestamp: text cannot be cut into windows",
        );
        return;
    }
    match Step::of_config(&window.step, kind) {
        Ok(step) if step.is_zero() => {
            problems.add("source.pagination.step", "expected a step greater than 0")
        }
        Ok(_) => {}
        Err(e) => problems.add("source.pagination.step", e),
    }
    if let Err(e) = Format::of_config(window.format.as_deref(), kind) {
        problems.add("source.pagination.format", e);
    }
    match &window.end {
        WindowEnd::Value(CursorValue::Text(text)) if text == "now" => {
            if kind != Kind::Time {
                problems.add(
                    "source.pagination.end",
                    "`now` ends a window of timestamps; expected an integer",
                );
            }
        }
        WindowEnd::Value(value) => {
            let k = Mark::of_config(value).kind();
            if k != kind {
                problems.add(
                    "source.pagination.end",
                    format!(
                        "expected {}, `now`, or a head request {{ path = … }}",
                        kind.name()
                    ),
                );
            }
        }
        WindowEnd::Head(head) => {
            check_jsonpath(&head.path, "source.pagination.end.path", problems);
            if let Some(url) = &head.url {
                if !url_shape_ok(url) {
                    problems.add(
                        "source.pagination.end.url",
                        "expected an http:// or https:// URL (or one starting with `${VAR}`)",
                    );
                }
                check_env_syntax(url, "source.pagination.end.url", problems);
            }
            if let Some(body) = &head.body {
                check_body_env(body, "source.pagination.end.body", problems);
            }
        }
    }
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
    if let Some(auth) = &http.auth {
        check_auth(auth, &http.headers, problems);
    }

    check_jsonpath(&http.records, "source.records", problems);
    if let Some(error) = &http.error {
        check_jsonpath(error, "source.error", problems);
    }
    let records_given = raw.is_some_and(|t| t.contains_key("records"));
    if records_given && http.follow.is_none() && !matches!(parse, Parse::Json(_)) {
        problems.add(
            "source.records",
            "only used when responses are JSON (parse.format = \"json\") or with `follow`",
        );
    }

    for (i, rule) in http.skip.iter().enumerate() {
        check_rule(rule, &format!("source.skip[{i}]"), problems);
    }
    check_cursor(http, problems);

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
        Pagination::Window(_) => {}
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

/// `source.auth`: header names, the token URL, `${VAR}` syntax, and no second set of
/// credentials in `source.headers`.
fn check_auth(
    auth: &super::definition::Auth,
    headers: &std::collections::BTreeMap<String, String>,
    problems: &mut Problems,
) {
    use super::definition::Auth;
    // One request carries one set of credentials: a second would be sent beside the first, and
    // which one the provider reads is anyone's guess.
    let sets = match auth {
        Auth::Header { name, .. } => name.as_str(),
        _ => "Authorization",
    };
    for name in headers.keys() {
        if name.eq_ignore_ascii_case("Authorization") || name.eq_ignore_ascii_case(sets) {
            problems.add(
                format!("source.headers.{name}"),
                format!(
                    "conflicts with `source.auth` (kind = \"{}\"): requests carry one set of credentials; remove one of them",
                    auth.kind()
                ),
            );
        }
    }
    let text = |value: &str, key: &str, problems: &mut Problems| {
        let key = format!("source.auth.{key}");
        if value.trim().is_empty() {
            problems.add(&key, "expected a value, usually `${VAR}`");
        }
        check_env_syntax(value, &key, problems);
    };
    match auth {
        Auth::Bearer { token } => text(token, "token", problems),
        Auth::Basic { username, password } => {
            text(username, "username", problems);
            if username.contains(':') {
                problems.add(
                    "source.auth.username",
                    "must not contain `:` (HTTP Basic separates the user name from the password with it)",
                );
            }
            check_env_syntax(password, "source.auth.password", problems);
        }
        Auth::Header { name, value } => {
            if !valid_header_name(name) {
                problems.add("source.auth.name", "not a valid HTTP header name");
            }
            text(value, "value", problems);
        }
        Auth::Oauth2ClientCredentials {
            token_url,
            client_id,
            client_secret,
            scopes,
            audience,
        } => {
            if !url_shape_ok(token_url) {
                problems.add(
                    "source.auth.token_url",
                    "expected an http:// or https:// URL (or one starting with `${VAR}`)",
                );
            }
            check_env_syntax(token_url, "source.auth.token_url", problems);
            text(client_id, "client_id", problems);
            text(client_secret, "client_secret", problems);
            for (i, scope) in scopes.iter().enumerate() {
                let key = format!("scopes[{i}]");
                if scope.trim().is_empty() || scope.contains(char::is_whitespace) {
                    problems.add(
                        format!("source.auth.{key}"),
                        "expected one scope: not empty, no spaces (each scope is its own entry)",
                    );
                }
                check_env_syntax(scope, &format!("source.auth.{key}"), problems);
            }
            if let Some(audience) = audience {
                check_env_syntax(audience, "source.auth.audience", problems);
            }
        }
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
        let (paths, transforms) = spec.parts();
        if let FieldSpec::Full(table) = spec
            && let Some(list) = &table.paths
        {
            if table.path.is_some() {
                problems.add(
                    format!("fields.{name}"),
                    "expected `path` or `paths`, not both",
                );
            }
            if list.is_empty() {
                problems.add(format!("fields.{name}.paths"), "expected at least one path");
            }
        }
        for (i, path) in paths.iter().enumerate() {
            let path_key = match spec {
                FieldSpec::Path(_) => format!("fields.{name}"),
                FieldSpec::Full(table) if table.path.is_some() => format!("fields.{name}.path"),
                FieldSpec::Full(_) => format!("fields.{name}.paths[{i}]"),
            };
            check_value_path(path, &path_key, captures, problems);
        }
        match paths.first() {
            Some(_) => {}
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
    fn incremental_and_window_keys_agree_with_the_cursor_type() {
        let since = "[source.incremental]\ncursor = \"$.updated_at\"\nparam = \"since\"\ninitial = \"2024-01-01T00:00:00Z\"";
        good(&http(since, ""));
        good(&http(
            "body = { from = \"${window.from}\", last = \"${window.last}\" }\nmethod = \"POST\"",
            "[source.pagination]\nkind = \"window\"\nstep = 10\nstart = 100\nend = { path = \"$.result\", body = { method = \"eth_blockNumber\" } }\nformat = \"hex\"",
        ));
        assert_eq!(
            problems(&http(
                &("query = { a = \"${window.to}\" }\n".to_string()
                    + &since
                        .replace("param = \"since\"\n", "lookback = 5\nformat = \"hex\"\n")
                        .replace("$.updated_at", "$.[")),
                ""
            )),
            [
                "source.incremental.cursor: not a valid JSONPath (RFC 9535): at position 2, in dot member name, must start with lowercase alpha or '_'",
                "source.incremental.lookback: expected a duration such as \"1h\" (the cursor is a timestamp)",
                "source.incremental.format: expected `rfc3339`, `epoch`, `epoch_ms` or a strftime format such as `%Y-%m-%dT%H:%M:%SZ`",
                "source.incremental: the mark reaches no request: set `param`, write `${cursor}` into the url, a query value or the body, or use `window` pagination",
                "source: `${window.to}` is used, but pagination is not `window`",
            ]
        );
        assert_eq!(
            problems(&http(
                "query = { since = \"${cursor}\" }",
                "[source.pagination]\nkind = \"window\"\nstep = \"1h\"\nend = \"now\""
            )),
            [
                "source: `${cursor}` is used, but there is no `[source.incremental]` to give it",
                "source.pagination: a window needs `start`, or `[source.incremental]` to start from",
            ]
        );
        assert_eq!(
            problems(&http(
                "",
                "[source.pagination]\nkind = \"window\"\nstep = 0\nstart = 5\nend = \"now\"\nformat = \"%Y\""
            )),
            [
                "source.pagination.step: expected a step greater than 0",
                "source.pagination.format: expected `decimal` or `hex` for an integer cursor",
                "source.pagination.end: `now` ends a window of timestamps; expected an integer",
            ]
        );
        assert_eq!(
            problems(&http(
                "",
                "[source.pagination]\nkind = \"window\"\nstep = \"soon\"\nstart = \"2024-01-01T00:00:00Z\"\nend = 7"
            )),
            [
                "source.pagination.step: \"soon\" is not a duration; expected e.g. \"30s\", \"15m\", \"1h\", \"1d\"",
                "source.pagination.end: expected a timestamp, `now`, or a head request { path = … }",
            ]
        );
    }

    #[test]
    fn filters_and_paths_are_checked() {
        assert_eq!(
            problems(&format!(
                "{PUSH_TOKEN}[[skip]]\nfield = \"$.a\"\n[[keep]]\nfield = \"$.[\"\nlength = 3\n"
            )),
            [
                "skip[0]: expected `equals`, `in`, `starts_with` or `length` (the rule matches when any one holds)",
                "keep[0].field: not a valid JSONPath (RFC 9535): at position 2, in dot member name, must start with lowercase alpha or '_'",
            ]
        );
        assert_eq!(
            problems(&format!(
                "{PUSH_TOKEN}[[keep]]\nfield = \"$.a\"\nlength = \"3\"\n"
            )),
            [
                "keep[0].length: expected a whole number (0 or more) or a list of whole numbers (0 or more)"
            ]
        );
        let text = PUSH_TOKEN.replace(
            "[fields]",
            "[fields]\nsymbol = { path = \"a\", paths = [\"b\"] }\nname = { paths = [] }",
        );
        assert_eq!(
            problems(&text),
            [
                "fields.name.paths: expected at least one path",
                "fields.name: no `path`, so `transforms` needs a `default`",
                "fields.symbol: expected `path` or `paths`, not both",
            ]
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
    fn source_auth_names_every_bad_key() {
        let auth = |table: &str| http(&format!("[source.auth]\n{table}"), "");
        good(&auth("kind = \"bearer\"\ntoken = \"${API_TOKEN}\""));
        good(&auth(
            "kind = \"basic\"\nusername = \"ingest\"\npassword = \"${API_PASSWORD}\"",
        ));
        good(&auth(
            "kind = \"header\"\nname = \"X-Api-Key\"\nvalue = \"${API_KEY}\"",
        ));
        let oauth = "kind = \"oauth2_client_credentials\"\ntoken_url = \"${AUTH_BASE}/oauth/token\"\nclient_id = \"${CLIENT_ID}\"\nclient_secret = \"${CLIENT_SECRET}\"";
        let provider = good(&auth(&format!(
            "{oauth}\nscopes = [\"hosts:read\"]\naudience = \"https://api.example.com\""
        )));
        let crate::providers::definition::Source::Http(source) = &provider.def.source else {
            panic!("an http source");
        };
        assert!(matches!(
            &source.auth,
            Some(crate::providers::definition::Auth::Oauth2ClientCredentials { scopes, audience: Some(_), .. })
                if scopes == &["hosts:read"]
        ));
        // `scopes` defaults to none.
        let provider = good(&auth(oauth));
        let crate::providers::definition::Source::Http(source) = &provider.def.source else {
            panic!("an http source");
        };
        assert!(matches!(
            &source.auth,
            Some(crate::providers::definition::Auth::Oauth2ClientCredentials { scopes, audience: None, .. })
                if scopes.is_empty()
        ));

        assert_eq!(
            problems(&auth("kind = \"digest\"\ntoken = \"t\"")),
            [
                "source.auth.kind: expected one of `bearer`, `basic`, `header`, `oauth2_client_credentials` (found `digest`)"
            ]
        );
        assert_eq!(
            problems(&auth("token = \"t\"")),
            [
                "source.auth.kind: missing; expected one of `bearer`, `basic`, `header`, `oauth2_client_credentials`"
            ]
        );
        assert_eq!(
            problems(&auth(&oauth.replace("client_id = \"${CLIENT_ID}\"\n", ""))),
            ["source.auth.client_id: missing; expected a string"]
        );
        assert_eq!(
            problems(&auth(&format!("{oauth}\nsecret = \"x\""))),
            [
                "source.auth.secret: unknown key; expected one of `kind`, `audience`, `client_id`, `client_secret`, `scopes`, `token_url`"
            ]
        );
        assert_eq!(
            problems(&auth("kind = \"bearer\"\ntoken = 5")),
            ["source.auth.token: expected a string"]
        );
        assert_eq!(
            problems(&auth(
                "kind = \"header\"\nname = \"X Api Key\"\nvalue = \"${API_KEY}\""
            )),
            ["source.auth.name: not a valid HTTP header name"]
        );
        assert_eq!(
            problems(&auth(
                &oauth.replace("${AUTH_BASE}/oauth/token", "auth.example.com/token")
            )),
            [
                "source.auth.token_url: expected an http:// or https:// URL (or one starting with `${VAR}`)"
            ]
        );
        assert_eq!(
            problems(&auth(
                &oauth.replace("${AUTH_BASE}", "ftp://auth.example.com")
            )),
            [
                "source.auth.token_url: expected an http:// or https:// URL (or one starting with `${VAR}`)"
            ]
        );
        assert_eq!(
            problems(&auth(&format!(
                "{oauth}\nscopes = [\"read write\", \"${{2SCOPE}}\"]"
            ))),
            [
                "source.auth.scopes[0]: expected one scope: not empty, no spaces (each scope is its own entry)",
                "source.auth.scopes[1]: `${…}` must hold a variable name: letters, digits and `_`, not starting with a digit",
            ]
        );
        assert_eq!(
            problems(&auth(
                &oauth
                    .replace("\"${CLIENT_SECRET}\"", "\"\"")
                    .replace("${CLIENT_ID}", "${CLIENT_ID")
            )),
            [
                "source.auth.client_id: `${` without a closing `}`",
                "source.auth.client_secret: expected a value, usually `${VAR}`",
            ]
        );
        assert_eq!(
            problems(&auth(
                "kind = \"basic\"\nusername = \"a:b\"\npassword = \"${P}\""
            )),
            [
                "source.auth.username: must not contain `:` (HTTP Basic separates the user name from the password with it)"
            ]
        );
        // Two sets of credentials on one request.
        assert_eq!(
            problems(&http(
                "headers = { authorization = \"Bearer ${OTHER}\" }\n[source.auth]\nkind = \"bearer\"\ntoken = \"${API_TOKEN}\"",
                ""
            )),
            [
                "source.headers.authorization: conflicts with `source.auth` (kind = \"bearer\"): requests carry one set of credentials; remove one of them"
            ]
        );
        assert_eq!(
            problems(&http(
                "headers = { x-api-key = \"${OTHER}\", Accept = \"application/json\" }\n[source.auth]\nkind = \"header\"\nname = \"X-Api-Key\"\nvalue = \"${API_KEY}\"",
                ""
            )),
            [
                "source.headers.x-api-key: conflicts with `source.auth` (kind = \"header\"): requests carry one set of credentials; remove one of them"
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
}
