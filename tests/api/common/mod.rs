//! Test helpers: start the real application on port 0 against a real database (a temporary
//! SQLite file, or a fresh PostgreSQL database) and talk to it over HTTP.

pub mod browser;
pub mod changes_api;
pub mod eth_node;
pub mod kafka;
pub mod mock_provider;
pub mod postgres;
pub mod recorded_transfers;

use std::path::Path;
use std::time::{Duration, Instant};

use sea_orm::{Database, DatabaseConnection};
use serde_json::{Value, json};
use tributary::hosts::HostRules;
use tributary::ingest::{self, Cancel, RunSummary};
use tributary::providers::Provider;
use tributary::providers::load::load_file;
use tributary::settings::{DatabaseUrl, Settings};
use tributary::sources::outbound::Outbound;
use tributary::startup::Application;
use tributary::store::runs::{RunMode, RunTrigger};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    /// A connection of the test's own, to arrange and inspect rows directly.
    pub db: DatabaseConnection,
    pub client: reqwest::Client,
    /// The database the app uses, for child processes that share it.
    pub database_url: String,
    /// Keeps the SQLite file alive for the test's duration.
    _dir: Option<tempfile::TempDir>,
}

/// A database URL for one test, with the temporary directory that holds it (SQLite).
pub async fn database_url(backend: Backend) -> (String, Option<tempfile::TempDir>) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temporary directory");
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
            (url, Some(dir))
        }
        Backend::Postgres => (postgres::fresh_database().await, None),
    }
}

/// Settings as a test server uses them: defaults, a free port, the given database.
pub fn settings(database_url: &str) -> Settings {
    let mut settings = Settings::defaults().expect("default settings are valid");
    settings.listen = "127.0.0.1:0".parse().expect("address");
    settings.database_url = DatabaseUrl::parse(database_url).expect("a supported database URL");
    // Tests arrange their own rows.
    settings.sample_data = false;
    // The stand-in providers listen on loopback.
    settings.outbound.allowed_networks = outbound();
    settings
}

/// The network of the stand-in providers, which the test servers are allowed to reach.
pub const LOOPBACK: &str = "127.0.0.0/8";

/// The outbound policy of runs started directly by tests: the stand-in providers allowed.
pub fn outbound() -> Outbound {
    Outbound::new(&[LOOPBACK.to_string()]).expect("a valid network")
}

/// Writes a provider file into `dir` and loads it as the server would.
pub fn provider(dir: &Path, name: &str, toml: &str) -> Provider {
    write_provider(dir, name, toml);
    load_file(&dir.join(format!("{name}.toml"))).unwrap_or_else(|e| panic!("{name}.toml: {e}"))
}

/// Runs `provider` in `mode` with the default host rules, the stand-ins reachable.
pub async fn run(app: &TestApp, provider: &Provider, mode: RunMode) -> RunSummary {
    run_provider(app, provider, &HostRules::default(), &outbound(), mode).await
}

/// Polls `check` every 50 ms until it holds; panics naming `what` after `timeout`.
pub async fn wait_for(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes a provider file, `name.toml`, into `dir`.
pub fn write_provider(dir: &Path, name: &str, toml: &str) {
    std::fs::write(dir.join(format!("{name}.toml")), toml).expect("write provider file");
}

/// Runs `provider` to its end in the test's own process; panics naming it if the run fails.
pub async fn run_provider(
    app: &TestApp,
    provider: &Provider,
    rules: &HostRules,
    outbound: &Outbound,
    mode: RunMode,
) -> RunSummary {
    let ctx = ingest::RunContext {
        db: &app.db,
        provider,
        host_rules: rules,
        outbound,
        mode,
        cancel: &Cancel::default(),
        on_progress: &|_| {},
    };
    ingest::run(&ctx, RunTrigger::Cli)
        .await
        .unwrap_or_else(|e| panic!("run {}: {e}", provider.name))
}

/// Every store invariant holds (`tributary check`'s rules: run counters add up, rejections are
/// stored, no run left unfinished, product counts exact); panics naming those that do not.
pub async fn assert_invariants(db: &impl sea_orm::ConnectionTrait) {
    let violations = tributary::store::invariants::check(db)
        .await
        .expect("check invariants");
    assert!(
        violations.is_empty(),
        "invariants broken:\n{}",
        violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Event ids (from `metadata.id`) and how many rows each has.
pub async fn stored_event_ids(url: &str) -> std::collections::BTreeMap<String, usize> {
    let db = sea_orm::Database::connect(url)
        .await
        .expect("connect to check");
    let mut ids = std::collections::BTreeMap::new();
    for event in <entity::event::Entity as sea_orm::EntityTrait>::find()
        .all(&db)
        .await
        .expect("events")
    {
        let id = event.metadata["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        *ids.entry(id).or_insert(0) += 1;
    }
    db.close().await.ok();
    ids
}

/// The keys of a dataset's records, in insertion order.
pub async fn record_keys(app: &TestApp, dataset: &str) -> Vec<String> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    entity::record::Entity::find()
        .filter(entity::record::Column::Dataset.eq(dataset))
        .order_by_asc(entity::record::Column::Id)
        .all(&app.db)
        .await
        .expect("records")
        .into_iter()
        .map(|r| r.key)
        .collect()
}

impl TestApp {
    /// A `graphql-transport-ws` connection to `/graphql/ws`, before `connection_init`.
    pub async fn graphql_ws(
        &self,
    ) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
    {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://127.0.0.1:{}/graphql/ws", self.port)
            .into_client_request()
            .expect("request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().expect("header"),
        );
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("connect");
        ws
    }

    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts the application with settings adjusted by `adjust`.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let (url, dir) = database_url(backend).await;
        Self::spawn_at(url, dir, adjust).await
    }

    /// Starts the application on the database at `url` (a private cluster's, say).
    pub async fn spawn_at(
        url: String,
        dir: Option<tempfile::TempDir>,
        adjust: impl FnOnce(&mut Settings),
    ) -> TestApp {
        let mut settings = settings(&url);
        adjust(&mut settings);
        let app = Application::build(settings)
            .await
            .expect("the application starts");
        let port = app.port();
        tokio::spawn(app.run_until(std::future::pending()));
        let db = Database::connect(url.as_str())
            .await
            .expect("test connection");
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            port,
            db,
            client: reqwest::Client::new(),
            database_url: url,
            _dir: dir,
        }
    }

    /// POSTs a GraphQL operation and returns the whole JSON response.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        let response = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("POST /graphql");
        assert_eq!(response.status(), 200, "POST /graphql status");
        response.json().await.expect("JSON response")
    }

    /// Like `graphql`, asserting there were no errors; returns `data`.
    pub async fn query(&self, query: &str, variables: Value) -> Value {
        let body = self.graphql(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

/// Defines one test per backend for the async function `$test(backend)`: `$test::sqlite` and
/// `$test::postgres`, so a test's name is the sentence its function's name says.
#[macro_export]
macro_rules! on_both_databases {
    ($test:ident) => {
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$test($crate::common::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$test($crate::common::Backend::Postgres).await;
            }
        }
    };
}
