//! Typed, layered settings: defaults < `--config FILE` (TOML) < `TRIBUTARY_*` variables <
//! `DATABASE_URL`. Nested keys use `__` in variables: `TRIBUTARY_GRAPHQL__MAX_DEPTH=8`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::hosts::{HostRules, SCALAR_FIELDS};
use crate::sources::outbound::Outbound;

/// Where the embedded default database lives when nothing is configured.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://tributary.db?mode=rwc";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("config file {path}: not found")]
    MissingFile { path: PathBuf },
    #[error("invalid setting `{key}`{source_name}: {message}")]
    Invalid {
        key: String,
        /// " (from …)" when the value's origin is known.
        source_name: String,
        message: String,
    },
}

impl SettingsError {
    fn invalid(key: &str, message: impl Into<String>) -> Self {
        SettingsError::Invalid {
            key: key.to_string(),
            source_name: String::new(),
            message: message.into(),
        }
    }
}

impl From<figment::Error> for SettingsError {
    fn from(error: figment::Error) -> Self {
        let source_name = error
            .metadata
            .as_ref()
            .map(|m| format!(" (from {})", m.name))
            .unwrap_or_default();
        SettingsError::Invalid {
            key: error.path.join("."),
            source_name,
            message: error.kind.to_string(),
        }
    }
}

/// All settings of a Tributary server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address and port the HTTP server listens on. Port 0 picks a free port.
    #[serde(default = "default_listen", deserialize_with = "socket_addr")]
    pub listen: SocketAddr,
    /// `postgres://user:password@host:5432/db` or `sqlite://path/to/file.db`. Also read from
    /// `DATABASE_URL`, which wins over everything else.
    #[serde(default = "default_database_url")]
    pub database_url: DatabaseUrl,
    /// Connection pool settings.
    #[serde(default)]
    pub database: DatabaseSettings,
    /// `text` (readable in a terminal) or `json` (one object per line). Filter with `RUST_LOG`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Load the bundled ERC-20 sample (291 transfers) into an empty embedded (SQLite) database
    /// at first start. Never applies to PostgreSQL.
    #[serde(default = "default_true")]
    pub sample_data: bool,
    /// Directory holding one TOML file per provider.
    #[serde(default = "default_providers_dir")]
    pub providers_dir: PathBuf,
    /// GraphQL limits.
    #[serde(default)]
    pub graphql: GraphqlSettings,
    /// HTTP limits and CORS.
    #[serde(default)]
    pub http: HttpSettings,
    /// Who may change things.
    #[serde(default)]
    pub auth: AuthSettings,
    /// The scheduler and provider leases.
    #[serde(default)]
    pub scheduler: SchedulerSettings,
    /// How hosts reported by several tools are merged.
    #[serde(default)]
    pub hosts: HostSettings,
    /// Events pushed to `POST /submit`: the group-commit writer.
    #[serde(default)]
    pub events: EventSettings,
    /// Where provider requests may go.
    #[serde(default)]
    pub outbound: OutboundSettings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundSettings {
    /// Networks provider requests may reach although they are loopback (127.0.0.0/8, ::1),
    /// link-local (169.254.0.0/16 with cloud metadata at 169.254.169.254, fe80::/10) or
    /// unspecified (0.0.0.0/8, ::), in CIDR form: `["127.0.0.0/8"]` for providers on this
    /// machine. Empty (the default): every such request is refused, whether its URL names the
    /// address or a host name that resolves to it. Applies to HTTP sources, `follow` URLs and
    /// remote files.
    #[serde(default)]
    pub allowed_networks: Outbound,
}

impl OutboundSettings {
    /// The policy provider runs apply.
    pub fn policy(&self) -> Outbound {
        self.allowed_networks.clone()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSettings {
    /// Hours after which a host that no provider has reported is stale (shown as such, never
    /// deleted).
    #[serde(default = "default_stale_after_hours")]
    pub stale_after_hours: u64,
    /// Per host field (`hostname`, `fqdn`, `os`, `platform`, `cloud_provider`,
    /// `cloud_instance_id`, or `default` for the rest): provider names, most trusted first. A
    /// field's value comes from the first listed provider that reports it, then from the most
    /// recent report.
    #[serde(default)]
    pub field_priority: BTreeMap<String, Vec<String>>,
    /// MAC addresses or prefixes (`02:42`) that many machines share and that must never merge
    /// hosts. Replaces the default list.
    #[serde(
        default = "crate::hosts::default_ignored_macs",
        deserialize_with = "mac_prefixes"
    )]
    pub ignored_macs: Vec<String>,
}

impl Default for HostSettings {
    fn default() -> Self {
        HostSettings {
            stale_after_hours: default_stale_after_hours(),
            field_priority: BTreeMap::new(),
            ignored_macs: crate::hosts::default_ignored_macs(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSettings {
    /// Events accepted but not yet committed, at most. When the database falls behind and the
    /// queue is full, `/submit` answers 503 with `Retry-After` instead of growing memory. Also
    /// the most events one `/submit/batch` request may carry.
    #[serde(default = "default_event_queue_capacity")]
    pub queue_capacity: usize,
    /// Most events stored by one insert (one commit).
    #[serde(default = "default_event_max_batch")]
    pub max_batch: usize,
    /// Milliseconds the writer waits for more events before committing a batch that is not
    /// full. 0: commit what is queued at once (batches still grow while a commit is running).
    #[serde(default = "default_event_max_wait_ms")]
    pub max_wait_ms: u64,
    /// Seconds a client refused with 503 is told to wait (`Retry-After`).
    #[serde(default = "default_event_retry_after_secs")]
    pub retry_after_secs: u64,
    /// Writer tasks. With 2, the next batch is gathered and sent while one commits (worth it
    /// when the database is far away); each holds a pooled connection while it writes.
    #[serde(default = "default_event_writers")]
    pub writers: usize,
    /// Where accepted events go: `database` (stored by the group-commit writer, 204 once
    /// committed) or `kafka` (produced to `events.kafka.topic`, 204 once the broker
    /// acknowledged; a `kafka` provider with `entity = "event"` lands the topic in `events`).
    #[serde(default)]
    pub sink: EventSink,
    /// The topic and broker of the `kafka` sink.
    #[serde(default)]
    pub kafka: EventKafkaSettings,
}

/// Where accepted events go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventSink {
    #[default]
    Database,
    Kafka,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventKafkaSettings {
    /// Bootstrap servers, `host:port[,host:port…]`.
    #[serde(default)]
    pub brokers: String,
    /// The topic events are produced to; the message key is the event's id.
    #[serde(default = "default_event_topic")]
    pub topic: String,
    /// librdkafka settings (`security.protocol`, `sasl.*`, `ssl.*`, `linger.ms`, …). The ones
    /// the guarantee rests on (`enable.idempotence`, `acks`, `message.timeout.ms`) are set by
    /// Tributary.
    #[serde(default)]
    pub properties: crate::kafka::Properties,
    /// Milliseconds an event may wait for the broker's acknowledgement; past it the request is
    /// answered 503 with `Retry-After` (and the event may or may not have been stored).
    #[serde(default = "default_event_ack_timeout_ms")]
    pub ack_timeout_ms: u64,
}

impl Default for EventKafkaSettings {
    fn default() -> Self {
        EventKafkaSettings {
            brokers: String::new(),
            topic: default_event_topic(),
            properties: crate::kafka::Properties::default(),
            ack_timeout_ms: default_event_ack_timeout_ms(),
        }
    }
}

impl Default for EventSettings {
    fn default() -> Self {
        EventSettings {
            queue_capacity: default_event_queue_capacity(),
            max_batch: default_event_max_batch(),
            max_wait_ms: default_event_max_wait_ms(),
            retry_after_secs: default_event_retry_after_secs(),
            writers: default_event_writers(),
            sink: EventSink::default(),
            kafka: EventKafkaSettings::default(),
        }
    }
}

fn default_stale_after_hours() -> u64 {
    24
}

impl HostSettings {
    pub fn rules(&self) -> HostRules {
        HostRules {
            field_priority: self.field_priority.clone(),
            ignored_macs: self.ignored_macs.clone(),
            stale_after: chrono::Duration::hours(
                i64::try_from(self.stale_after_hours).unwrap_or(i64::MAX / 3_600_000),
            ),
        }
    }

    fn validate(&self) -> Result<(), SettingsError> {
        if self.stale_after_hours == 0 || self.stale_after_hours > 24 * 365 * 100 {
            return Err(SettingsError::invalid(
                "hosts.stale_after_hours",
                "expected a number of hours from 1 to 876000",
            ));
        }
        for field in self.field_priority.keys() {
            if field != "default" && !SCALAR_FIELDS.contains(&field.as_str()) {
                return Err(SettingsError::invalid(
                    &format!("hosts.field_priority.{field}"),
                    format!(
                        "not a host field; expected `default` or one of {}",
                        SCALAR_FIELDS.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// MAC addresses or prefixes, normalized to lower-case colon pairs as identifiers hold them.
fn mac_prefixes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Vec::<String>::deserialize(d)?
        .into_iter()
        .map(|mac| {
            let normal = mac.trim().to_ascii_lowercase().replace('-', ":");
            let groups: Vec<&str> = normal.split(':').collect();
            let valid = (1..=6).contains(&groups.len())
                && groups
                    .iter()
                    .all(|g| g.len() == 2 && g.bytes().all(|b| b.is_ascii_hexdigit()));
            if valid {
                Ok(normal)
            } else {
                Err(serde::de::Error::custom(format!(
                    "`{mac}` is not a MAC address or prefix; expected hex pairs such as 02:42 or 00:00:5e:00:01"
                )))
            }
        })
        .collect()
}

fn default_event_queue_capacity() -> usize {
    // A few tenths of a second of the target rate: enough to ride out a slow commit.
    10_000
}
fn default_event_max_batch() -> usize {
    1_000
}
fn default_event_max_wait_ms() -> u64 {
    0
}
fn default_event_retry_after_secs() -> u64 {
    1
}
fn default_event_topic() -> String {
    "events".to_string()
}
fn default_event_ack_timeout_ms() -> u64 {
    5_000
}
fn default_event_writers() -> usize {
    // Measured on 2 cores with PostgreSQL local: one writer makes batches twice as large, and
    // per-batch work is what the CPU runs out on (33,000 against 29,700 acknowledged req/s).
    1
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Bearer tokens allowed to call mutations and push endpoints
    /// (`Authorization: Bearer <token>`; over WebSocket, in `connection_init`).
    #[serde(default)]
    pub admin_tokens: Vec<SecretString>,
    /// Allow mutations without a token on a non-loopback listener. Off: such a server refuses
    /// to start without `admin_tokens`.
    #[serde(default)]
    pub allow_unauthenticated_mutations: bool,
    /// Require an admin token for queries too.
    #[serde(default)]
    pub protect_queries: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSettings {
    /// Run provider schedules in this server (off: runs start only when triggered).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Seconds a provider lease lasts without a heartbeat: how soon another replica takes over
    /// from a crashed one.
    #[serde(default = "default_lease_ttl_secs")]
    pub lease_ttl_secs: u64,
    /// Seconds a shutdown waits for running batches to commit.
    #[serde(default = "default_shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        SchedulerSettings {
            enabled: true,
            lease_ttl_secs: default_lease_ttl_secs(),
            shutdown_grace_secs: default_shutdown_grace_secs(),
        }
    }
}

fn default_lease_ttl_secs() -> u64 {
    30
}
fn default_shutdown_grace_secs() -> u64 {
    20
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Largest number of pooled connections. Default: twice this machine's cores — more
    /// connections than the cores can serve only queue inside PostgreSQL and lengthen the tail
    /// latency of every query.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Seconds to wait for a connection before giving up.
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// Seconds a request waits for a pooled connection (including opening a new one) before
    /// it fails. While the database is down this bounds how long a request waits: `/submit`
    /// then answers 503 with `Retry-After`, GraphQL an `UNAVAILABLE` error.
    #[serde(default = "default_acquire_timeout_secs")]
    pub acquire_timeout_secs: u64,
    /// PostgreSQL streaming replicas of `database_url`, as written in the settings: checked and
    /// parsed into [`DatabaseSettings::replica_urls`] when the settings are loaded. Kept secret
    /// (a URL may hold a password).
    #[serde(default, rename = "replica_urls")]
    replica_url_texts: Vec<SecretString>,
    /// PostgreSQL streaming replicas of `database_url` (`postgres://…` each). GraphQL queries
    /// and the reads of subscriptions go to a healthy one; mutations, ingestion, leases and
    /// `/submit` always go to `database_url`. Empty (the default): everything reads the primary.
    #[serde(skip)]
    pub replica_urls: Vec<DatabaseUrl>,
    /// Seconds a replica may lag behind the primary and still answer queries; one further
    /// behind (or down) is skipped and the primary answers instead.
    #[serde(default = "default_max_replica_lag_secs")]
    pub max_replica_lag_secs: u64,
}

impl DatabaseSettings {
    /// Parses `replica_urls` once, naming the entry that is not a PostgreSQL URL; replicas of
    /// anything but a PostgreSQL primary are refused.
    fn parse_replica_urls(&mut self, primary: DatabaseKind) -> Result<(), SettingsError> {
        let mut parsed = Vec::with_capacity(self.replica_url_texts.len());
        for (i, text) in self.replica_url_texts.iter().enumerate() {
            let key = format!("database.replica_urls[{i}]");
            let url = DatabaseUrl::parse(text.expose_secret())
                .ok()
                .filter(|url| url.kind() == DatabaseKind::Postgres)
                .ok_or_else(|| {
                    SettingsError::invalid(
                        &key,
                        "not a postgres:// URL; expected postgres://user:password@host:port/database",
                    )
                })?;
            parsed.push(url);
        }
        if !parsed.is_empty() && primary != DatabaseKind::Postgres {
            return Err(SettingsError::invalid(
                "database.replica_urls",
                "replicas need a PostgreSQL primary, but database_url is SQLite",
            ));
        }
        self.replica_urls = parsed;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphqlSettings {
    /// Deepest selection nesting a query may have.
    #[serde(default = "default_max_depth")]
    pub max_depth: usize,
    /// Largest complexity score (fields, with list fields weighted by their page size).
    #[serde(default = "default_max_complexity")]
    pub max_complexity: usize,
    /// Serve the schema to introspection queries (GraphiQL needs it).
    #[serde(default = "default_true")]
    pub introspection: bool,
    /// Longest query text accepted, in bytes; checked before parsing. (The request body limit,
    /// `http.body_limit_bytes`, bounds query and variables together.)
    #[serde(default = "default_max_query_bytes")]
    pub max_query_bytes: usize,
    /// Deepest nesting of a query: `{`, `[` and `(` in its text (checked before parsing, as
    /// the parser recurses per level), and selection sets through fragments. At most 64, the
    /// parser's own limit.
    #[serde(default = "default_max_nesting")]
    pub max_nesting: usize,
    /// Most directives (`@include`, `@skip`, …) on one field.
    #[serde(default = "default_max_directives")]
    pub max_directives: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Largest request body accepted, in bytes; larger ones get 413.
    #[serde(default = "default_body_limit_bytes")]
    pub body_limit_bytes: usize,
    /// Origins allowed to call the API from a browser, e.g. `["https://app.example.com"]`.
    /// Empty: no cross-origin access.
    #[serde(default)]
    pub cors_allowed_origins: Vec<String>,
    /// Seconds a request may take before the server answers 408.
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
}

fn socket_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "expected IP:port such as 127.0.0.1:8080 or 0.0.0.0:8080, got `{text}`"
        ))
    })
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_database_url() -> DatabaseUrl {
    DatabaseUrl {
        url: SecretString::from(DEFAULT_DATABASE_URL),
        kind: DatabaseKind::Sqlite,
    }
}
fn default_providers_dir() -> PathBuf {
    PathBuf::from("providers")
}
fn default_max_connections() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    (2 * cores).max(4)
}
fn default_connect_timeout_secs() -> u64 {
    10
}
fn default_acquire_timeout_secs() -> u64 {
    // Long enough for a busy pool to free a connection, short enough that a client learns
    // of an outage before its own timeout.
    3
}
fn default_max_replica_lag_secs() -> u64 {
    // Long enough that a replica busy replaying a large batch keeps serving; short enough that
    // a client rarely reads data visibly older than what it just wrote elsewhere.
    10
}
fn default_max_depth() -> usize {
    // GraphiQL's schema query (graphql-js `getIntrospectionQuery`) is 15 fields deep; with 12
    // GraphiQL showed no schema. Complexity still bounds what deep data queries cost.
    15
}
fn default_max_complexity() -> usize {
    // One page of 1,000 rows with a handful of fields, plus headroom.
    20_000
}
fn default_max_query_bytes() -> usize {
    // Far above any hand-written or generated frontend query (GraphiQL's introspection query
    // is under 2 KB), far below the body limit.
    64 * 1024
}
fn default_max_nesting() -> usize {
    // The GraphQL library's own default recursion limit; GraphiQL's introspection query
    // nests 17 deep through its fragments.
    32
}
fn default_max_directives() -> usize {
    8
}
fn default_true() -> bool {
    true
}
fn default_body_limit_bytes() -> usize {
    1024 * 1024
}
fn default_request_timeout_secs() -> u64 {
    30
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            max_connections: default_max_connections(),
            connect_timeout_secs: default_connect_timeout_secs(),
            acquire_timeout_secs: default_acquire_timeout_secs(),
            replica_url_texts: Vec::new(),
            replica_urls: Vec::new(),
            max_replica_lag_secs: default_max_replica_lag_secs(),
        }
    }
}

impl Default for GraphqlSettings {
    fn default() -> Self {
        Self {
            max_depth: default_max_depth(),
            max_complexity: default_max_complexity(),
            introspection: true,
            max_query_bytes: default_max_query_bytes(),
            max_nesting: default_max_nesting(),
            max_directives: default_max_directives(),
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            body_limit_bytes: default_body_limit_bytes(),
            cors_allowed_origins: Vec::new(),
            request_timeout_secs: default_request_timeout_secs(),
        }
    }
}

/// What kind of database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Postgres,
    Sqlite,
}

impl Settings {
    /// Loads settings from every layer, then checks them.
    pub fn load(config_file: Option<&Path>) -> Result<Self, SettingsError> {
        let mut figment = Figment::new();
        if let Some(path) = config_file {
            if !path.is_file() {
                return Err(SettingsError::MissingFile {
                    path: path.to_path_buf(),
                });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment
            // TRIBUTARY_CONFIG names the file itself; it is not a setting.
            .merge(Env::prefixed("TRIBUTARY_").split("__").ignore(&["config"]))
            .merge(Env::raw().only(&["DATABASE_URL"]));
        Self::from_figment(figment)
    }

    /// The defaults alone, as a server with no configuration would run.
    pub fn defaults() -> Result<Self, SettingsError> {
        Self::from_figment(Figment::new())
    }

    fn from_figment(figment: Figment) -> Result<Self, SettingsError> {
        let mut settings: Settings = figment.extract()?;
        let primary = settings.database_kind();
        settings.database.parse_replica_urls(primary)?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), SettingsError> {
        self.hosts.validate()?;
        if self.database.max_connections == 0 {
            return Err(SettingsError::invalid(
                "database.max_connections",
                "expected a whole number of at least 1",
            ));
        }
        if !(1..=300).contains(&self.database.acquire_timeout_secs) {
            return Err(SettingsError::invalid(
                "database.acquire_timeout_secs",
                "expected a number of seconds from 1 to 300",
            ));
        }
        if !(1..=3600).contains(&self.database.max_replica_lag_secs) {
            return Err(SettingsError::invalid(
                "database.max_replica_lag_secs",
                "expected a number of seconds from 1 to 3600",
            ));
        }
        if self.graphql.max_depth == 0 || self.graphql.max_complexity == 0 {
            return Err(SettingsError::invalid(
                "graphql.max_depth / graphql.max_complexity",
                "expected a whole number of at least 1",
            ));
        }
        if self.graphql.max_query_bytes < 1024 {
            return Err(SettingsError::invalid(
                "graphql.max_query_bytes",
                "expected a number of bytes of at least 1024",
            ));
        }
        if !(1..=64).contains(&self.graphql.max_nesting) {
            return Err(SettingsError::invalid(
                "graphql.max_nesting",
                "expected a whole number from 1 to 64",
            ));
        }
        if self.graphql.max_directives == 0 {
            return Err(SettingsError::invalid(
                "graphql.max_directives",
                "expected a whole number of at least 1",
            ));
        }
        if self.scheduler.lease_ttl_secs < 3 {
            return Err(SettingsError::invalid(
                "scheduler.lease_ttl_secs",
                "expected a number of seconds of at least 3",
            ));
        }
        if self
            .auth
            .admin_tokens
            .iter()
            .any(|t| t.expose_secret().len() < 16)
        {
            return Err(SettingsError::invalid(
                "auth.admin_tokens",
                "expected tokens of at least 16 characters",
            ));
        }
        if self.http.body_limit_bytes < 1024 {
            return Err(SettingsError::invalid(
                "http.body_limit_bytes",
                "expected a number of bytes of at least 1024",
            ));
        }
        if self.events.queue_capacity == 0 || self.events.queue_capacity > u32::MAX as usize {
            return Err(SettingsError::invalid(
                "events.queue_capacity",
                format!("expected a whole number from 1 to {}", u32::MAX),
            ));
        }
        if self.events.max_batch == 0 {
            return Err(SettingsError::invalid(
                "events.max_batch",
                "expected a whole number of at least 1",
            ));
        }
        if self.events.max_wait_ms > 1000 {
            return Err(SettingsError::invalid(
                "events.max_wait_ms",
                "expected a number of milliseconds from 0 to 1000",
            ));
        }
        if self.events.writers == 0
            || self.events.writers as u64 > u64::from(self.database.max_connections)
        {
            return Err(SettingsError::invalid(
                "events.writers",
                format!(
                    "expected a whole number from 1 to database.max_connections ({})",
                    self.database.max_connections
                ),
            ));
        }
        if self.events.retry_after_secs == 0 {
            return Err(SettingsError::invalid(
                "events.retry_after_secs",
                "expected a number of seconds of at least 1",
            ));
        }
        if self.events.sink == EventSink::Kafka {
            if self.events.kafka.brokers.trim().is_empty() {
                return Err(SettingsError::invalid(
                    "events.kafka.brokers",
                    "required with events.sink = \"kafka\"; expected host:port[,host:port…]",
                ));
            }
            if self.events.kafka.topic.trim().is_empty() {
                return Err(SettingsError::invalid(
                    "events.kafka.topic",
                    "expected a topic name",
                ));
            }
            if !(100..=300_000).contains(&self.events.kafka.ack_timeout_ms) {
                return Err(SettingsError::invalid(
                    "events.kafka.ack_timeout_ms",
                    "expected a number of milliseconds from 100 to 300000",
                ));
            }
            if let Some(owned) = self
                .events
                .kafka
                .properties
                .0
                .keys()
                .find(|k| crate::events::kafka::OWNED.iter().any(|(o, _)| o == k))
            {
                return Err(SettingsError::invalid(
                    &format!("events.kafka.properties.{owned}"),
                    "set by Tributary (an event is acknowledged only once the broker has it) and may not be changed",
                ));
            }
        }
        for origin in &self.http.cors_allowed_origins {
            let parsed = url::Url::parse(origin).ok();
            let is_origin = parsed.as_ref().is_some_and(|u| {
                matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.path() == "/"
            }) && !origin.ends_with('/');
            if !is_origin {
                return Err(SettingsError::invalid(
                    "http.cors_allowed_origins",
                    format!(
                        "`{origin}` is not an origin; expected scheme://host[:port], e.g. https://app.example.com"
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn database_kind(&self) -> DatabaseKind {
        self.database_url.kind()
    }
}

/// A database URL, read once with the settings: what kind of database it points at, and the
/// URL itself, kept secret (it may hold a password).
#[derive(Clone)]
pub struct DatabaseUrl {
    url: SecretString,
    kind: DatabaseKind,
}

impl DatabaseUrl {
    /// The URL, if it names a database this server supports.
    pub fn parse(url: &str) -> Result<DatabaseUrl, SettingsError> {
        Ok(DatabaseUrl {
            kind: database_kind(url)?,
            url: SecretString::from(url.to_string()),
        })
    }

    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// The URL with its password: for the driver only, never for a message.
    pub fn expose(&self) -> &str {
        self.url.expose_secret()
    }
}

/// Never the URL: its kind and where it points.
impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::db::describe(self))
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DatabaseUrl::parse(&text).map_err(|error| match error {
            SettingsError::Invalid { message, .. } => serde::de::Error::custom(message),
            other => serde::de::Error::custom(other.to_string()),
        })
    }
}

/// Recognises the database from the URL's scheme, without echoing the URL (it may hold a password).
pub fn database_kind(url: &str) -> Result<DatabaseKind, SettingsError> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
    match scheme {
        "postgres" | "postgresql" => Ok(DatabaseKind::Postgres),
        "sqlite" => Ok(DatabaseKind::Sqlite),
        _ => Err(SettingsError::invalid(
            "database_url",
            "expected postgres://user:password@host:port/database or sqlite://path/to/file.db",
        )),
    }
}

#[cfg(test)]
// figment's Jail API fixes the closure's error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn defaults_need_no_configuration() {
        let settings = Settings::defaults().expect("defaults are valid");
        assert_eq!(settings.listen, default_listen());
        assert_eq!(settings.database_url.expose(), DEFAULT_DATABASE_URL);
        assert_eq!(settings.database_kind(), DatabaseKind::Sqlite);
        assert_eq!(settings.log_format, LogFormat::Text);
    }

    #[test]
    fn layers_apply_in_order() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "tributary.toml",
                r#"
                listen = "127.0.0.1:9000"
                log_format = "json"
                database_url = "sqlite://from-file.db"
                [graphql]
                max_depth = 5
                "#,
            )?;
            jail.set_env("TRIBUTARY_LISTEN", "127.0.0.1:9001");
            jail.set_env("TRIBUTARY_DATABASE_URL", "sqlite://from-env.db");
            jail.set_env("TRIBUTARY_GRAPHQL__MAX_COMPLEXITY", "77");
            jail.set_env("DATABASE_URL", "postgres://u:p@db/tributary");
            let s = Settings::load(Some(Path::new("tributary.toml"))).expect("valid");
            assert_eq!(s.listen.port(), 9001);
            assert_eq!(s.log_format, LogFormat::Json);
            assert_eq!(s.graphql.max_depth, 5);
            assert_eq!(s.graphql.max_complexity, 77);
            assert_eq!(s.database_url.expose(), "postgres://u:p@db/tributary");
            assert_eq!(s.database_kind(), DatabaseKind::Postgres);
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_names_the_key_and_the_expected_form() {
        Jail::expect_with(|jail| {
            jail.set_env("TRIBUTARY_GRAPHQL__MAX_DEPTH", "deep");
            let err = Settings::load(None).expect_err("rejected").to_string();
            assert!(err.contains("`graphql.max_depth`"), "{err}");
            assert!(err.contains("expected usize"), "{err}");
            assert!(err.contains("TRIBUTARY_"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_is_refused() {
        Jail::expect_with(|jail| {
            jail.set_env("TRIBUTARY_LISTN", "127.0.0.1:1");
            let err = Settings::load(None).expect_err("rejected").to_string();
            assert!(err.contains("unknown field: found `listn`"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_bad_database_url_is_refused_without_echoing_it() {
        Jail::expect_with(|jail| {
            jail.set_env("DATABASE_URL", "mysql://root:hunter2@db/x");
            let err = Settings::load(None).expect_err("rejected").to_string();
            assert!(err.starts_with("invalid setting `database_url`"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_missing_config_file_is_named() {
        let err = Settings::load(Some(Path::new("/nonexistent/t.toml")))
            .expect_err("rejected")
            .to_string();
        assert_eq!(err, "config file /nonexistent/t.toml: not found");
    }

    #[test]
    fn event_settings_are_checked() {
        Jail::expect_with(|jail| {
            jail.set_env("TRIBUTARY_EVENTS__QUEUE_CAPACITY", "0");
            let err = Settings::load(None).expect_err("rejected").to_string();
            assert_eq!(
                err,
                "invalid setting `events.queue_capacity`: expected a whole number from 1 to 4294967295"
            );
            jail.set_env("TRIBUTARY_EVENTS__QUEUE_CAPACITY", "50");
            jail.set_env("TRIBUTARY_EVENTS__MAX_WAIT_MS", "2");
            let s = Settings::load(None).expect("valid");
            assert_eq!((s.events.queue_capacity, s.events.max_wait_ms), (50, 2));
            assert_eq!(s.events.max_batch, 1_000);
            Ok(())
        });
    }

    #[test]
    fn outbound_networks_are_checked() {
        Jail::expect_with(|jail| {
            jail.set_env(
                "TRIBUTARY_OUTBOUND__ALLOWED_NETWORKS",
                "[\"127.0.0.0/8\", \"10.1.2.0/24\"]",
            );
            let s = Settings::load(None).expect("valid");
            let allowed: Vec<String> = s
                .outbound
                .allowed_networks
                .allowed()
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(allowed, ["127.0.0.0/8", "10.1.2.0/24"]);
            jail.set_env("TRIBUTARY_OUTBOUND__ALLOWED_NETWORKS", "[\"localhost\"]");
            let err = Settings::load(None).expect_err("rejected").to_string();
            assert_eq!(
                err,
                "invalid setting `outbound.allowed_networks` (from `TRIBUTARY_` environment variable(s)): `localhost` is not a network; expected CIDR such as 127.0.0.0/8 or fd00::/8, or one address"
            );
            Ok(())
        });
        let defaults = Settings::defaults().expect("valid");
        assert!(defaults.outbound.allowed_networks.allowed().is_empty());
    }

    #[test]
    fn graphql_parser_limits_are_checked() {
        Jail::expect_with(|jail| {
            let s = Settings::load(None).expect("valid");
            assert_eq!(
                (
                    s.graphql.max_query_bytes,
                    s.graphql.max_nesting,
                    s.graphql.max_directives
                ),
                (65_536, 32, 8)
            );
            jail.set_env("TRIBUTARY_GRAPHQL__MAX_NESTING", "65");
            let err = Settings::load(None).expect_err("rejected").to_string();
            assert_eq!(
                err,
                "invalid setting `graphql.max_nesting`: expected a whole number from 1 to 64"
            );
            jail.set_env("TRIBUTARY_GRAPHQL__MAX_NESTING", "16");
            jail.set_env("TRIBUTARY_GRAPHQL__MAX_QUERY_BYTES", "100");
            let err = Settings::load(None).expect_err("rejected").to_string();
            assert_eq!(
                err,
                "invalid setting `graphql.max_query_bytes`: expected a number of bytes of at least 1024"
            );
            jail.set_env("TRIBUTARY_GRAPHQL__MAX_QUERY_BYTES", "2048");
            jail.set_env("TRIBUTARY_GRAPHQL__MAX_DIRECTIVES", "0");
            let err = Settings::load(None).expect_err("rejected").to_string();
            assert_eq!(
                err,
                "invalid setting `graphql.max_directives`: expected a whole number of at least 1"
            );
            jail.set_env("TRIBUTARY_GRAPHQL__MAX_DIRECTIVES", "2");
            let s = Settings::load(None).expect("valid");
            assert_eq!(
                (
                    s.graphql.max_query_bytes,
                    s.graphql.max_nesting,
                    s.graphql.max_directives
                ),
                (2048, 16, 2)
            );
            Ok(())
        });
    }

    #[test]
    fn the_acquire_timeout_is_checked() {
        Jail::expect_with(|jail| {
            assert_eq!(
                Settings::load(None)
                    .expect("valid")
                    .database
                    .acquire_timeout_secs,
                3
            );
            jail.set_env("TRIBUTARY_DATABASE__ACQUIRE_TIMEOUT_SECS", "0");
            let err = Settings::load(None).expect_err("rejected").to_string();
            assert_eq!(
                err,
                "invalid setting `database.acquire_timeout_secs`: expected a number of seconds from 1 to 300"
            );
            jail.set_env("TRIBUTARY_DATABASE__ACQUIRE_TIMEOUT_SECS", "7");
            let s = Settings::load(None).expect("valid");
            assert_eq!(s.database.acquire_timeout_secs, 7);
            Ok(())
        });
    }

    #[test]
    fn replica_urls_are_checked_and_never_echoed() {
        Jail::expect_with(|jail| {
            let s = Settings::load(None).expect("valid");
            assert!(s.database.replica_urls.is_empty());
            assert_eq!(s.database.max_replica_lag_secs, 10);
            jail.set_env("DATABASE_URL", "postgres://app:pw@primary/t");
            jail.set_env(
                "TRIBUTARY_DATABASE__REPLICA_URLS",
                "[\"postgres://app:pw@r1/t\", \"mysql://app:hunter2@r2/t\"]",
            );
            let err = Settings::load(None).expect_err("rejected").to_string();
            assert_eq!(
                err,
                "invalid setting `database.replica_urls[1]`: not a postgres:// URL; expected postgres://user:password@host:port/database"
            );
            jail.set_env(
                "TRIBUTARY_DATABASE__REPLICA_URLS",
                "[\"postgres://app:pw@r1/t\", \"postgresql://app:s3cret@r2:6543/t\"]",
            );
            jail.set_env("TRIBUTARY_DATABASE__MAX_REPLICA_LAG_SECS", "2");
            let s = Settings::load(None).expect("valid");
            let described: Vec<String> = s
                .database
                .replica_urls
                .iter()
                .map(crate::db::describe)
                .collect();
            assert_eq!(described, ["postgres r1:5432/t", "postgres r2:6543/t"]);
            assert_eq!(s.database.max_replica_lag_secs, 2);
            assert!(!format!("{s:?}").contains("s3cret"));
            jail.set_env("TRIBUTARY_DATABASE__MAX_REPLICA_LAG_SECS", "0");
            let err = Settings::load(None).expect_err("rejected").to_string();
            assert_eq!(
                err,
                "invalid setting `database.max_replica_lag_secs`: expected a number of seconds from 1 to 3600"
            );
            jail.set_env("TRIBUTARY_DATABASE__MAX_REPLICA_LAG_SECS", "5");
            jail.set_env("DATABASE_URL", "sqlite://t.db");
            let err = Settings::load(None).expect_err("rejected").to_string();
            assert_eq!(
                err,
                "invalid setting `database.replica_urls`: replicas need a PostgreSQL primary, but database_url is SQLite"
            );
            Ok(())
        });
    }

    #[test]
    fn cors_origins_must_be_origins() {
        Jail::expect_with(|jail| {
            jail.set_env(
                "TRIBUTARY_HTTP__CORS_ALLOWED_ORIGINS",
                "[\"https://app.example.com/path\"]",
            );
            let err = Settings::load(None).expect_err("rejected").to_string();
            assert!(err.contains("`http.cors_allowed_origins`"), "{err}");
            Ok(())
        });
    }
}
