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
    /// Records to leave out: one matching any rule is dropped, whatever the source kind.
    #[serde(default)]
    pub skip: Vec<RecordRule>,
    /// Records to keep: one that fails any rule is dropped, whatever the source kind.
    #[serde(default)]
    pub keep: Vec<RecordRule>,
    /// What a complete run does with stored records it did not see: `keep` them (default), or
    /// `mark_deleted` (kept, with `deletedAt`, and left out of lists unless asked for).
    #[serde(default)]
    pub on_missing: OnMissing,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnMissing {
    #[default]
    Keep,
    MarkDeleted,
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
    /// JSONPath to an error in a JSON answer (`$.error` for JSON-RPC): an answer where it finds
    /// a non-null value fails the run with that value, instead of counting as a page of no
    /// records.
    pub error: Option<String>,
    /// Records to leave out: the same rules as the top-level `skip`, accepted here too for
    /// files written before filters applied to every source kind.
    #[serde(default)]
    pub skip: Vec<RecordRule>,
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
    /// How requests prove who is asking: sent with every request of the source, `follow`
    /// requests included. Strings expand `${VAR}` and are never logged or shown.
    pub auth: Option<Auth>,
    /// Fetch only what changed since the last run, by a cursor field of the records.
    pub incremental: Option<Incremental>,
}

/// Incremental sync: the largest cursor value among committed records (the high-water mark)
/// is stored with each page, and the next run asks only for records from it (less
/// `lookback`) on.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Incremental {
    /// JSONPath into each record (as the source lists it) to its cursor: a timestamp, an
    /// integer (a JSON number, decimal text or a `0x` hex quantity) or a text.
    pub cursor: String,
    /// Query parameter that carries the mark. Absent: write `${cursor}` into the URL, a query
    /// value or a body string, or let `window` pagination start from the mark.
    pub param: Option<String>,
    /// Where the first run (and a `FULL` run) starts. Its type is the cursor's: an integer, a
    /// timestamp (RFC 3339 text) or any other text.
    pub initial: CursorValue,
    /// Re-read this much before the mark (writes that arrive late): a duration such as `1h`
    /// or `30m` for timestamps, an integer for integers. Not for text cursors.
    pub lookback: Option<CursorValue>,
    /// How the mark is written into a request: for timestamps a strftime format (default
    /// RFC 3339) or `epoch` / `epoch_ms`; for integers `decimal` (default) or `hex`.
    pub format: Option<String>,
}

/// An integer, or a text (a timestamp, a duration or any text, by context).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum CursorValue {
    Integer(i64),
    Text(String),
}

/// A filter on a field of each record as the source lists it (before `follow`, `[parse]` and
/// `fields`). The rule matches when any of the conditions given holds.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordRule {
    /// JSONPath into the record.
    pub field: String,
    /// The field's text starts with this.
    pub starts_with: Option<String>,
    /// The field's text (a number or boolean as written in JSON) is this.
    pub equals: Option<String>,
    /// The field's text is one of these.
    #[serde(rename = "in")]
    pub one_of: Option<Vec<String>>,
    /// The field is an array of this many elements (an integer, or a list of allowed counts).
    pub length: Option<Lengths>,
}

/// One count, or any of several.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Lengths {
    One(u64),
    Any(Vec<u64>),
}

impl Lengths {
    pub fn allows(&self, n: u64) -> bool {
        match self {
            Lengths::One(one) => *one == n,
            Lengths::Any(any) => any.contains(&n),
        }
    }
}

/// Source authentication, by `kind`. Its `Debug` shows no secret: only the kind and the keys
/// that say where credentials go.
#[derive(Clone, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token, usually `${VAR}`.
        token: String,
    },
    /// HTTP Basic authentication (`Authorization: Basic …`).
    Basic {
        /// The user name.
        username: String,
        /// The password, usually `${VAR}`.
        password: String,
    },
    /// One header carrying a key, such as `X-Api-Key`.
    Header {
        /// The header's name.
        name: String,
        /// The header's value, usually `${VAR}`.
        value: String,
    },
    /// OAuth2 client credentials grant (RFC 6749 §4.4): a token from `token_url`, sent as
    /// `Authorization: Bearer …`, renewed shortly before it expires and once on a 401.
    Oauth2ClientCredentials {
        /// The authorization server's token endpoint (http or https).
        token_url: String,
        /// The client id.
        client_id: String,
        /// The client secret, usually `${VAR}`.
        client_secret: String,
        /// Scopes asked for; none by default.
        #[serde(default)]
        scopes: Vec<String>,
        /// The `audience` parameter some servers require (the API the token is for).
        audience: Option<String>,
    },
}

impl Auth {
    /// The `kind` as written in a provider file.
    pub fn kind(&self) -> &'static str {
        match self {
            Auth::Bearer { .. } => "bearer",
            Auth::Basic { .. } => "basic",
            Auth::Header { .. } => "header",
            Auth::Oauth2ClientCredentials { .. } => "oauth2_client_credentials",
        }
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("Auth");
        out.field("kind", &self.kind());
        match self {
            Auth::Header { name, .. } => {
                out.field("name", name);
            }
            Auth::Oauth2ClientCredentials { scopes, .. } => {
                out.field("scopes", scopes);
            }
            Auth::Bearer { .. } | Auth::Basic { .. } => {}
        }
        out.finish_non_exhaustive()
    }
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
    /// Consecutive ranges `[from, to)` of `step`, from `start` (or the incremental mark) to
    /// `end`: one request per range, with `${window.from}`, `${window.to}` and
    /// `${window.last}` (`to` less one unit: 1, or one second) in the URL, query values or
    /// body strings. Each finished range is checkpointed.
    Window(Box<Window>),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// The size of a range: an integer (block numbers, ids), or a duration such as `1h`,
    /// `15m`, `1d` (timestamps).
    pub step: CursorValue,
    /// Where the first range starts: an integer, or an RFC 3339 timestamp. Absent: the
    /// incremental mark (less `lookback`), or `incremental.initial`.
    pub start: Option<CursorValue>,
    /// Where the last range ends (exclusive).
    pub end: WindowEnd,
    /// How bounds are written: `decimal` (default for integers), `hex` (`0x` quantity),
    /// `epoch`, `epoch_ms`, or a strftime format (default RFC 3339 for timestamps).
    pub format: Option<String>,
}

/// Where a window listing ends.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum WindowEnd {
    /// An integer, an RFC 3339 timestamp, or `now` (the run's start).
    Value(CursorValue),
    /// Asked of the provider when the run starts: the answer at `path` is the last value to
    /// fetch (so ranges run through it).
    Head(Head),
}

/// A request for the end of a window listing, e.g. a chain's latest block.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// Request URL; default the source's `url`. `${VAR}` expands.
    pub url: Option<String>,
    /// JSON body; with one the request is a POST. Strings expand `${VAR}`.
    pub body: Option<serde_json::Value>,
    /// JSONPath to the value in the answer: an integer (a number, decimal text or `0x` hex
    /// quantity) or a timestamp.
    pub path: String,
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
    /// JSONPath, key or capture name. Absent: the value comes from `paths`, or from
    /// `transforms` (`default`) alone.
    pub path: Option<String>,
    /// Several paths instead of `path`: the value is the first of them that is present and not
    /// null (an ERC-721 token id in a fourth topic, else an ERC-20 amount in `data`).
    pub paths: Option<Vec<String>>,
    /// Steps applied to the value, in order.
    #[serde(default)]
    pub transforms: Vec<Transform>,
}

impl FieldSpec {
    /// Where the value comes from (the first path that gives one; none: from a `default`
    /// transform alone), and its steps.
    pub fn parts(&self) -> (Vec<&str>, &[Transform]) {
        match self {
            FieldSpec::Path(path) => (vec![path.as_str()], &[]),
            FieldSpec::Full(table) => {
                let mut paths: Vec<&str> = table.path.iter().map(String::as_str).collect();
                paths.extend(table.paths.iter().flatten().map(String::as_str));
                (paths, &table.transforms)
            }
        }
    }
}

/// One step applied to a field's value, in order.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Transform {
    /// `"trim"`, `"lowercase"`, `"int"`, `"uint256"`, `"hex"`, `"address"`, `"mac"`, `"ip"`,
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
    // An Ethereum address as lower-case `0x…`; from a 32-byte word (a log topic), its last 20
    // bytes. (A doc comment here would turn the schema's `enum` into a `oneOf`.)
    Address,
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
