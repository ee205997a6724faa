//! The provider file format: one TOML file in `providers/` says where data comes from, how its
//! format is read, and how its fields become an entity's columns. These types are the one
//! definition of every key: serde reads files into them, the JSON Schema derived from them
//! (`tributary providers --schema`) is what `shape` checks a file against key by key, and each
//! key's documentation is written where it is declared. Defaults are named functions.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

pub use crate::entities::EntityKind;

/// One provider file, as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderFile {
    /// Provider id; defaults to the file name without `.toml`.
    pub name: Option<String>,
    /// Target entity: `token`, `transfer`, `host`, `product` or `record` (a generic dataset).
    pub entity: EntityKind,
    /// Dataset name; required when `entity = "record"`.
    pub dataset: Option<String>,
    /// Cron expression with seconds (`0 0 * * * *` = hourly). Absent: runs only when triggered.
    pub schedule: Option<String>,
    /// A disabled provider is listed but never scheduled.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Keep each record's raw payload in `raw_records`. Default: on for `http`, off otherwise.
    pub keep_raw: Option<bool>,
    /// The mapped field whose value identifies a record (its external id, and for `record`
    /// the natural key). Default: none (`record` needs one).
    pub key: Option<String>,
    pub source: Source,
    /// How each fetched body or file is read. Default: `json`.
    #[serde(default)]
    pub parse: Parse,
    /// Entity field = where its value comes from.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldSpec>,
}

/// Where records come from.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Source {
    Http(Box<HttpSource>),
    File(FileSource),
    /// Records are POSTed to `/ingest/{provider}`.
    Push(Nothing),
    /// Messages of Kafka topics, consumed without end by every replica in one consumer group.
    Kafka(Box<KafkaSource>),
}

/// A choice that takes no other keys (`kind = "push"`): a key beside it is refused, not
/// ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Nothing {}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpSource {
    /// Request URL; `${VAR}` expands from the environment.
    pub url: String,
    /// `GET` (default) or `POST`.
    #[serde(default)]
    pub method: HttpMethod,
    /// Request headers; values expand `${VAR}` and are never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Query parameters added to every request; values expand `${VAR}`.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// JSON body for POST requests.
    pub body: Option<serde_json::Value>,
    /// JSONPath (RFC 9535) to the records in a response, e.g. `$.items[*]`. Default `$`: a
    /// top-level array is its elements, anything else one record.
    #[serde(default = "default_records_path")]
    pub records: String,
    /// Records to leave out, by a field of the raw record.
    #[serde(default)]
    pub skip: Vec<SkipRule>,
    #[serde(default)]
    pub pagination: Pagination,
    /// Fetch a URL taken from each record and use that body as the record.
    pub follow: Option<Follow>,
    /// Requests in flight at once (pages are still committed in order).
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1))]
    pub concurrency: usize,
    /// Requests per second at most, across all of this provider's requests. Absent: no limit.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub rate_limit: Option<f64>,
    /// Seconds one request may take.
    #[serde(default = "default_timeout_secs")]
    #[schemars(range(min = 1))]
    pub timeout_secs: u64,
    /// Tries per request with exponential backoff.
    #[serde(default)]
    pub retry: Retry,
    /// A run stops with an error after this many pages (a cursor that never ends).
    #[serde(default = "default_max_pages")]
    #[schemars(range(min = 1))]
    pub max_pages: u64,
}

/// A Kafka source. Each message becomes one record (or, for `csv` and `text`, one per row or
/// match) that fields map as `$.value…` (the decoded value) beside the message's `topic`,
/// `partition`, `offset`, `timestamp` (RFC 3339, or null), `key` (text, or null) and
/// `headers` (name → text).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaSource {
    /// Bootstrap servers, `host:port[,host:port…]`; `${VAR}` expands from the environment.
    pub brokers: String,
    /// Topics to consume.
    #[schemars(length(min = 1))]
    pub topics: Vec<String>,
    /// The consumer group every replica joins. Default: `tributary-{provider name}`.
    pub group: Option<String>,
    /// How a message's value is read: `json` (default), `csv`, `text` (matched by the
    /// `[parse]` pattern) or `avro` (with `schema`; the Confluent wire format's 5-byte header
    /// is recognised).
    #[serde(default)]
    pub format: MessageFormat,
    /// Where a partition whose offset was never stored starts: `earliest` (default) or
    /// `latest`.
    #[serde(default)]
    pub start: StartAt,
    /// For `avro`: the `.avsc` schema file, relative to the provider file's directory.
    pub schema: Option<String>,
    /// For `csv`: the column names, when messages carry rows without a header. Absent: each
    /// message's first row is its header.
    pub columns: Option<Vec<String>>,
    /// Messages written in one transaction, at most.
    #[serde(default = "default_kafka_batch_size")]
    #[schemars(range(min = 1, max = 100000))]
    pub batch_size: usize,
    /// Milliseconds a batch waits for more messages before it is written.
    #[serde(default = "default_kafka_max_wait_ms")]
    #[schemars(range(max = 60000))]
    pub max_wait_ms: u64,
    /// librdkafka settings (`security.protocol`, `sasl.*`, `ssl.*`, `session.timeout.ms`, …);
    /// values expand `${VAR}` and are never shown. The settings the exactly-once guarantee
    /// rests on (`group.id`, `enable.auto.commit`, `enable.auto.offset.store`,
    /// `auto.offset.reset`) are Tributary's.
    #[serde(default)]
    pub properties: crate::kafka::Properties,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageFormat {
    #[default]
    Json,
    Csv,
    Text,
    Avro,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    #[default]
    Earliest,
    Latest,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Get,
    Post,
}

/// Leave out records whose `field` (a JSONPath into the raw record) matches.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SkipRule {
    /// JSONPath into the raw record.
    pub field: String,
    /// The field's text starts with this.
    pub starts_with: Option<String>,
    /// The field's text is this.
    pub equals: Option<String>,
}

/// How to ask for the next page and recognise the last one.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Pagination {
    /// One request.
    None(Nothing),
    /// `skip`/`limit` style: `offset_param` advances by `page_size`.
    Offset {
        /// Query parameter of the offset.
        #[serde(default = "default_offset_param")]
        offset_param: String,
        /// Query parameter of the page size.
        #[serde(default = "default_limit_param")]
        limit_param: String,
        /// Records asked for per page.
        #[schemars(range(min = 1))]
        page_size: u64,
        /// How the listing ends.
        #[serde(default)]
        end: PageEnd,
    },
    /// `page`/`per_page` style, pages counted from `first_page`.
    Page {
        /// Query parameter of the page number.
        #[serde(default = "default_page_param")]
        page_param: String,
        /// Query parameter of the page size; absent: not sent.
        size_param: Option<String>,
        /// Records per page.
        #[schemars(range(min = 1))]
        page_size: u64,
        /// Number of the first page.
        #[serde(default = "default_first_page")]
        first_page: u64,
        /// How the listing ends.
        #[serde(default)]
        end: PageEnd,
    },
    /// A token from the body (`token_path`, JSONPath) or a header (`token_header`), sent back
    /// as the query parameter `param`. The last page has no token.
    Cursor {
        /// JSONPath to the next page's token in the body.
        token_path: Option<String>,
        /// Header holding the next page's token.
        token_header: Option<String>,
        /// Query parameter the token is sent back as.
        param: String,
    },
    /// The next page's full URL: from the body (`next_path`, JSONPath) or, when absent, the
    /// `Link: <…>; rel="next"` header.
    Link {
        /// JSONPath to the next page's URL in the body.
        next_path: Option<String>,
    },
}

impl Default for Pagination {
    fn default() -> Self {
        Pagination::None(Nothing {})
    }
}

/// How an offset or page listing ends.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PageEnd {
    /// A page with fewer records than the page size is the last (default true; an empty page
    /// always ends the listing).
    #[serde(default = "default_true")]
    pub short_page: bool,
    /// Statuses that mean "past the end" rather than failure (the Silk API answers 500).
    #[serde(default)]
    #[schemars(inner(range(min = 100, max = 599)))]
    pub statuses: Vec<u16>,
    /// On such a status, ask again for the same offset with a smaller page (halving down to
    /// 1), so an API that errors whenever `offset + limit` passes the end still yields its
    /// last records.
    #[serde(default)]
    pub shrink_on_end_status: bool,
}

impl Default for PageEnd {
    fn default() -> Self {
        PageEnd {
            short_page: true,
            statuses: Vec::new(),
            shrink_on_end_status: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Follow {
    /// JSONPath to the URL in each listed record, e.g. `$.mediaLink`.
    pub url: String,
    /// Documents fetched at once.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1))]
    pub concurrency: usize,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Tries per request, the first included.
    #[serde(default = "default_attempts")]
    #[schemars(range(min = 1))]
    pub attempts: u32,
    /// First backoff; doubles each retry, with jitter, up to `max_backoff_ms`. A
    /// `Retry-After` on 429/503 is honoured instead.
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Longest wait between two tries.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: default_attempts(),
            initial_backoff_ms: default_initial_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    /// A local path (relative to the provider file's directory) or an http(s) URL.
    pub path: String,
    /// `csv`, `jsonl` or `json`; default from the file name. `.gz` is decompressed.
    pub format: Option<FileFormat>,
    /// For `json`: JSONPath to the records (default `$`, a top-level array).
    pub records: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Csv,
    Jsonl,
    Json,
}

/// How a fetched body (or followed document) is read into records.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "format", rename_all = "lowercase", deny_unknown_fields)]
pub enum Parse {
    /// JSON; `source.records` selects the records.
    Json(Nothing),
    /// CSV, each row a record, its header naming the fields.
    Csv(Nothing),
    /// A regular expression with named captures; each match is one record, the captures its
    /// fields. `(?s)` lets `.` span lines.
    Text {
        /// The regular expression.
        pattern: String,
    },
}

impl Default for Parse {
    fn default() -> Self {
        Parse::Json(Nothing {})
    }
}

/// Where one entity field's value comes from, and what is done to it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum FieldSpec {
    /// Shorthand: a JSONPath (`$.a.b`), a bare key (`a`) or a capture name.
    Path(String),
    Full(FieldTable),
}

/// A field with transforms: `{ path = "…", transforms = [...] }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldTable {
    /// JSONPath, key or capture name. Absent: the value comes from `transforms` (`default`)
    /// alone.
    pub path: Option<String>,
    /// Steps applied to the value, in order.
    #[serde(default)]
    pub transforms: Vec<Transform>,
}

impl FieldSpec {
    /// Where the value comes from (absent: from a `default` transform alone), and its steps.
    pub fn parts(&self) -> (Option<&str>, &[Transform]) {
        match self {
            FieldSpec::Path(path) => (Some(path), &[]),
            FieldSpec::Full(table) => (table.path.as_deref(), &table.transforms),
        }
    }
}

/// One step applied to a field's value, in order.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Transform {
    /// `"trim"`, `"lowercase"`, `"int"`, `"uint256"`, `"hex"`, `"mac"`, `"ip"`,
    /// `"timestamp"`, `"redact"`, `"sha256"`.
    Name(TransformName),
    /// `{ int = { default = 0 } }`, `{ timestamp = { format = "%m/%d/%Y %H:%M:%S" } }`,
    /// `{ sha256 = { key = "${PII_KEY}" } }`, `{ map = { AWS_EC2_V2 = "AWS" } }`,
    /// `{ default = … }`.
    With(TransformWith),
}

/// A transform that takes no settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransformName {
    Trim,
    Lowercase,
    Int,
    Uint256,
    Hex,
    Mac,
    Ip,
    Timestamp,
    Redact,
    Sha256,
}

/// A transform with settings: a table with one key, the transform's name.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum TransformWith {
    /// First integer in free text; `default` when there is none.
    Int {
        /// The value when the text holds no integer.
        default: Option<i64>,
    },
    /// Epoch seconds or milliseconds, RFC 3339, Mongo `{"$date": …}`, or `format` (strftime).
    Timestamp {
        /// A strftime format, such as `%m/%d/%Y %H:%M:%S`.
        format: Option<String>,
    },
    /// Keyed SHA-256 (HMAC), hex: personal data that must stay joinable but not readable.
    Sha256 {
        /// The secret key, usually `${VAR}`.
        key: String,
    },
    /// Replaces a text equal to a key by the key's value; other values pass unchanged. Makes
    /// one provider's vocabulary match another's (`AWS_EC2_V2` → `AWS`).
    Map(BTreeMap<String, String>),
    /// The value to use when the field is absent or null.
    Default(serde_json::Value),
}

fn default_true() -> bool {
    true
}
fn default_kafka_batch_size() -> usize {
    5_000
}
fn default_kafka_max_wait_ms() -> u64 {
    100
}
fn default_records_path() -> String {
    "$".to_string()
}
fn default_concurrency() -> usize {
    4
}
fn default_timeout_secs() -> u64 {
    30
}
fn default_max_pages() -> u64 {
    100_000
}
fn default_offset_param() -> String {
    "offset".to_string()
}
fn default_limit_param() -> String {
    "limit".to_string()
}
fn default_page_param() -> String {
    "page".to_string()
}
fn default_first_page() -> u64 {
    1
}
fn default_attempts() -> u32 {
    5
}
fn default_initial_backoff_ms() -> u64 {
    200
}
fn default_max_backoff_ms() -> u64 {
    10_000
}
