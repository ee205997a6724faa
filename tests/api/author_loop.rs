//! The provider author's loop: `tributary ingest --dry-run` shows what a provider would write
//! without writing it; `tributary providers` and `Provider.cursor` show where an incremental
//! provider stands and `resetProviderCursor` moves it; the server reloads its providers on
//! SIGHUP and on `reloadProviders`, keeping a broken file's last good definition.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::common::{Backend, TestApp, database_url, wait_for, write_provider};

const ADMIN_TOKEN: &str = "author-loop-admin-token-0123";

/// The recorded ERC-20 transfers of Ethereum block 17173049 (291 of them).
const TRANSFERS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/ethereum/stream_token_transfers_17173049.jsonl"
);

const TOKENS_CSV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample/tokens.csv");

fn tributary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tributary"));
    // The caller's own settings must not leak into these runs.
    for (key, _) in std::env::vars() {
        if key.starts_with("TRIBUTARY_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
}

fn transfers_provider(path: &Path) -> String {
    format!(
        r#"entity = "transfer"

[source]
kind = "file"
path = "{}"
format = "jsonl"

[fields]
token_address = {{ path = "token_address", transforms = ["hex"] }}
from_address = {{ path = "from_address", transforms = ["hex"] }}
to_address = {{ path = "to_address", transforms = ["hex"] }}
value = {{ path = "value", transforms = ["uint256"] }}
transaction_hash = {{ path = "transaction_hash", transforms = ["hex"] }}
log_index = {{ path = "log_index", transforms = ["int"] }}
block_number = {{ path = "block_number", transforms = ["int"] }}
block_timestamp = {{ path = "block_timestamp", transforms = ["timestamp"] }}
"#,
        path.display()
    )
}

fn tokens_provider(schedule: Option<&str>) -> String {
    let schedule = schedule
        .map(|s| format!("schedule = \"{s}\"\n"))
        .unwrap_or_default();
    format!(
        r#"entity = "token"
key = "address"
{schedule}
[source]
kind = "file"
path = "{TOKENS_CSV}"

[fields]
address = {{ path = "address", transforms = ["hex"] }}
symbol = "symbol"
name = "name"
decimals = {{ path = "decimals", transforms = ["int"] }}
"#
    )
}

/// An HTTP provider with an incremental cursor; `since` carries the mark. It is never run.
const CHANGES: &str = r#"entity = "record"
dataset = "changes"
key = "id"

[source]
kind = "http"
url = "http://127.0.0.1:9/changes"
records = "$.items[*]"

[source.incremental]
cursor = "$.updated_at"
param = "since"
initial = "2024-01-01T00:00:00Z"

[fields]
id = "id"
since = "since"
"#;

/// A stand-in for CHANGES' API: one page of two changes, the first echoing the `since` it was
/// asked with, the second without its cursor field.
async fn changes_api() -> (String, tokio::task::JoinHandle<()>) {
    use axum::extract::Query;
    use std::collections::HashMap;
    let app = axum::Router::new().route(
        "/changes",
        axum::routing::get(|Query(query): Query<HashMap<String, String>>| async move {
            axum::Json(json!({ "items": [
                { "id": "a", "updated_at": "2024-03-02T00:00:00Z", "since": query.get("since") },
                { "id": "b" },
            ] }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/changes", listener.local_addr().expect("address"));
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (url, server)
}

async fn an_incremental_dry_run_starts_from_the_stored_cursor(backend: Backend) {
    let (url, server) = changes_api().await;
    let dir = tempfile::tempdir().expect("dir");
    write_provider(
        dir.path(),
        "changes",
        &CHANGES.replace("http://127.0.0.1:9/changes", &url),
    );
    let app = TestApp::spawn(backend).await;
    tributary::store::provider_state::set_cursor(
        &app.db,
        "changes",
        Some("2024-02-01T00:00:00Z".into()),
    )
    .await
    .expect("set cursor");
    let state_before = entity::provider_state::Entity::find()
        .all(&app.db)
        .await
        .expect("state");

    let dry = cli(
        &app.database_url,
        dir.path(),
        &["ingest", "changes", "--dry-run"],
    );
    assert_eq!(
        String::from_utf8_lossy(&dry.stderr),
        "changes dry run: 1 rows, 1 rejected from 1 pages, listing from cursor \
         2024-02-01T00:00:00Z; nothing written\n"
    );
    assert_eq!(dry.status.code(), Some(2));
    assert_eq!(
        lines(&dry),
        [
            json!({ "external_id": "a", "fields": { "id": "a", "since": "2024-02-01T00:00:00Z" } }),
            json!({
                "rejected": "source.incremental.cursor: missing",
                "external_id": null,
                "payload": { "id": "b" },
            }),
        ]
    );

    // FULL starts from `initial`.
    let full = cli(
        &app.database_url,
        dir.path(),
        &["ingest", "changes", "--dry-run", "--mode", "full"],
    );
    assert_eq!(
        lines(&full)[0],
        json!({ "external_id": "a", "fields": { "id": "a", "since": "2024-01-01T00:00:00Z" } })
    );

    // The cursor and the rest of the provider's state are as they were.
    assert_eq!(
        entity::provider_state::Entity::find()
            .all(&app.db)
            .await
            .expect("state"),
        state_before
    );
    assert_eq!(count(&app, entity::ingest_run::Entity).await, 0);
    assert_eq!(count(&app, entity::record::Entity).await, 0);
    server.abort();
}
on_both_databases!(an_incremental_dry_run_starts_from_the_stored_cursor);

/// The recorded transfers, then a line that is not JSON and a transfer without its
/// transaction hash.
fn transfers_file(dir: &Path) -> PathBuf {
    let recorded = std::fs::read_to_string(TRANSFERS).expect("recorded transfers");
    assert_eq!(recorded.lines().count(), 291);
    let first: Value =
        serde_json::from_str(recorded.lines().next().expect("a line")).expect("JSON line");
    let mut unhashed = first.clone();
    unhashed
        .as_object_mut()
        .expect("an object")
        .remove("transaction_hash");
    let mut text = recorded.clone();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("{not json\n");
    text.push_str(&format!("{unhashed}\n"));
    let path = dir.join("transfers.jsonl");
    std::fs::write(&path, text).expect("write transfers");
    path
}

/// Runs the binary with the test's database and providers directory.
fn cli(app_db: &str, providers: &Path, args: &[&str]) -> Output {
    tributary()
        .args(args)
        .env("DATABASE_URL", app_db)
        .env("TRIBUTARY_PROVIDERS_DIR", providers)
        .env("TRIBUTARY_OUTBOUND__ALLOWED_NETWORKS", "[\"127.0.0.0/8\"]")
        .output()
        .expect("run tributary")
}

fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

async fn count<E>(app: &TestApp, _entity: E) -> u64
where
    E: EntityTrait,
    E::Model: Sync,
{
    E::find().count(&app.db).await.expect("count")
}

async fn dry_run_prints_rows_and_rejections_and_writes_nothing(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let data = transfers_file(dir.path());
    let providers = dir.path().join("providers");
    std::fs::create_dir(&providers).expect("providers dir");
    write_provider(&providers, "transfers", &transfers_provider(&data));
    let app = TestApp::spawn(backend).await;

    let output = cli(
        &app.database_url,
        &providers,
        &["ingest", "transfers", "--dry-run"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr,
        "transfers dry run: 291 rows, 2 rejected from 1 pages; nothing written\n"
    );
    let printed = lines(&output);
    assert_eq!(printed.len(), 293);
    let rows: Vec<&Value> = printed
        .iter()
        .filter(|l| l.get("fields").is_some())
        .collect();
    assert_eq!(rows.len(), 291);
    assert_eq!(
        printed[0],
        json!({
            "external_id": "0xeb107a40ba73a50c79a9f2026e902d758d1c5e5e211f7a7db1b294f88f118dd0:0",
            "fields": {
                "block_number": 17173049,
                "block_timestamp": "2023-05-02T12:19:59Z",
                "from_address": "0x6b75d8af000000e20b7a7ddf000ba900b4009a80",
                "log_index": 0,
                "to_address": "0x7054b0f980a7eb5b3a6b3446f3c947d80162775c",
                "token_address": "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
                "transaction_hash": "0xeb107a40ba73a50c79a9f2026e902d758d1c5e5e211f7a7db1b294f88f118dd0",
                "value": "7056176614974947328"
            }
        })
    );
    // Every row names its transfer by its natural key.
    for row in &rows {
        let fields = &row["fields"];
        assert_eq!(
            row["external_id"],
            format!(
                "{}:{}",
                fields["transaction_hash"].as_str().expect("hash"),
                fields["log_index"]
            )
        );
    }
    assert_eq!(printed[291]["rejected"], REJECTED_NOT_JSON);
    assert_eq!(printed[291]["line"], 292);
    assert_eq!(printed[291]["payload"], "{not json");
    assert_eq!(printed[292]["rejected"], "transaction_hash: missing");
    assert_eq!(printed[292]["external_id"], Value::Null);
    assert_eq!(
        printed[292]["payload"]["log_index"],
        json!(0),
        "the record as read"
    );

    // Nothing was written: no rows, no run, no rejection, no provider state.
    assert_eq!(count(&app, entity::transfer::Entity).await, 0);
    assert_eq!(count(&app, entity::ingest_run::Entity).await, 0);
    assert_eq!(count(&app, entity::rejected_record::Entity).await, 0);
    assert_eq!(count(&app, entity::raw_record::Entity).await, 0);
    assert_eq!(count(&app, entity::provider_state::Entity).await, 0);

    // `--limit 5` stops after five.
    let limited = cli(
        &app.database_url,
        &providers,
        &["ingest", "transfers", "--dry-run", "--limit", "5"],
    );
    assert_eq!(
        String::from_utf8_lossy(&limited.stderr),
        "transfers dry run: 5 rows, 0 rejected from 1 pages, stopped at the limit; nothing written\n"
    );
    assert_eq!(limited.status.code(), Some(0));
    let printed_limited = lines(&limited);
    assert_eq!(printed_limited.len(), 5);
    assert_eq!(printed_limited[..], printed[..5]);
    assert_eq!(count(&app, entity::transfer::Entity).await, 0);
    assert_eq!(count(&app, entity::ingest_run::Entity).await, 0);
}
on_both_databases!(dry_run_prints_rows_and_rejections_and_writes_nothing);

const REJECTED_NOT_JSON: &str = "invalid JSON: key must be a string at line 1 column 2";

#[test]
fn a_push_provider_has_no_dry_run() {
    let dir = tempfile::tempdir().expect("dir");
    write_provider(
        dir.path(),
        "pushed",
        "entity = \"product\"\n[source]\nkind = \"push\"\n[fields]\nsku = \"sku\"\n",
    );
    let output = cli(
        "sqlite://unused.db?mode=ro",
        dir.path(),
        &["ingest", "pushed", "--dry-run"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: pushed dry run failed: pushed is a push provider: a dry run reads nothing \
         (records arrive at POST /ingest/pushed)\n"
    );
    assert!(output.stdout.is_empty());
}

/// POSTs a GraphQL operation with the admin token (or none).
async fn graphql_as(app: &TestApp, token: Option<&str>, query: &str, variables: Value) -> Value {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("POST /graphql");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON")
}

const RELOAD: &str = "mutation { reloadProviders { added changed removed \
     failed { provider error } providers { name error kind schedule enabled } } }";

async fn reload_providers_mutation_keeps_the_last_good_definition(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let providers = dir.path().to_path_buf();
    write_provider(&providers, "tokens", &tokens_provider(None));
    let app = TestApp::spawn_with(backend, {
        let providers = providers.clone();
        move |s| {
            s.providers_dir = providers;
            s.auth.admin_tokens = vec![ADMIN_TOKEN.to_string().into()];
        }
    })
    .await;

    // Only an admin reloads.
    let anonymous = graphql_as(&app, None, RELOAD, json!({})).await;
    assert_eq!(
        anonymous["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );

    // A new file, a new schedule, then a run on it: the scheduler follows.
    let data = transfers_file(dir.path());
    write_provider(&providers, "transfers", &transfers_provider(&data));
    write_provider(&providers, "tokens", &tokens_provider(Some("* * * * * *")));
    let reloaded = graphql_as(&app, Some(ADMIN_TOKEN), RELOAD, json!({})).await;
    assert!(reloaded["errors"].is_null(), "{reloaded}");
    assert_eq!(
        reloaded["data"]["reloadProviders"],
        json!({
            "added": ["transfers"],
            "changed": ["tokens"],
            "removed": [],
            "failed": [],
            "providers": [
                { "name": "tokens", "error": null, "kind": "FILE", "schedule": "* * * * * *", "enabled": true },
                { "name": "transfers", "error": null, "kind": "FILE", "schedule": null, "enabled": true },
            ]
        })
    );
    wait_for(
        "a scheduled run of tokens",
        Duration::from_secs(30),
        async || {
            let data = app
                .query(
                    r#"{ ingestRuns(where: { provider: "tokens" }) { nodes { trigger status } } }"#,
                    json!({}),
                )
                .await;
            data["ingestRuns"]["nodes"]
                .as_array()
                .is_some_and(|runs| runs.iter().any(|r| r["trigger"] == "schedule"))
        },
    )
    .await;

    // A broken file keeps its last good definition; a new broken one is listed with its error.
    let tokens_path = providers.join("tokens.toml");
    std::fs::write(
        &tokens_path,
        format!("{}bogus = 1\n", tokens_provider(Some("0 0 0 1 1 *"))),
    )
    .expect("break tokens");
    write_provider(&providers, "broken", "entity = \"token\"\n");
    std::fs::remove_file(providers.join("transfers.toml")).expect("remove transfers");
    let reloaded = graphql_as(&app, Some(ADMIN_TOKEN), RELOAD, json!({})).await;
    assert!(reloaded["errors"].is_null(), "{reloaded}");
    let tokens_error = format!(
        "{}: fields.bogus: expected a string or a table with `path`, `paths`, `transforms`",
        tokens_path.display()
    );
    let broken_error = format!(
        "{}: source: missing; expected a table with `kind` = `http`, `file`, `push`, `kafka`",
        providers.join("broken.toml").display()
    );
    assert_eq!(
        reloaded["data"]["reloadProviders"],
        json!({
            "added": [],
            "changed": [],
            "removed": ["transfers"],
            "failed": [
                { "provider": "broken", "error": broken_error },
                { "provider": "tokens", "error": tokens_error },
            ],
            "providers": [
                { "name": "broken", "error": broken_error, "kind": null, "schedule": null, "enabled": false },
                { "name": "tokens", "error": tokens_error, "kind": "FILE", "schedule": "* * * * * *", "enabled": true },
            ]
        })
    );
    // The old definition still runs; the broken one cannot.
    let triggered = graphql_as(
        &app,
        Some(ADMIN_TOKEN),
        r#"mutation { triggerIngest(provider: "tokens", mode: FULL) { run { id } } }"#,
        json!({}),
    )
    .await;
    assert!(triggered["errors"].is_null(), "{triggered}");
    let refused = graphql_as(
        &app,
        Some(ADMIN_TOKEN),
        r#"mutation { triggerIngest(provider: "broken") { run { id } } }"#,
        json!({}),
    )
    .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(
        refused["errors"][0]["message"],
        format!("provider \"broken\" has no valid definition: {broken_error}")
    );
}
on_both_databases!(reload_providers_mutation_keeps_the_last_good_definition);

/// A `tributary serve` child process, stopped (SIGTERM) when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start(database_url: &str, providers: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = tributary()
            .env("DATABASE_URL", database_url)
            .env("TRIBUTARY_PROVIDERS_DIR", providers)
            .env("TRIBUTARY_LISTEN", format!("127.0.0.1:{port}"))
            .env("TRIBUTARY_SAMPLE_DATA", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tributary");
        let server = Server {
            child,
            url: format!("http://127.0.0.1:{port}/graphql"),
        };
        let client = reqwest::Client::new();
        wait_for(
            "the server to answer",
            Duration::from_secs(60),
            async || {
                client
                    .post(&server.url)
                    .json(&json!({ "query": "{ __typename }" }))
                    .send()
                    .await
                    .is_ok()
            },
        )
        .await;
        server
    }

    async fn query(&self, query: &str) -> Value {
        let body: Value = reqwest::Client::new()
            .post(&self.url)
            .json(&json!({ "query": query }))
            .send()
            .await
            .expect("POST /graphql")
            .json()
            .await
            .expect("JSON");
        assert!(body["errors"].is_null(), "{body}");
        body["data"].clone()
    }

    fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Sends SIGHUP until `providers { name error schedule }` is `expected` (a reload that
    /// raced the file write is simply done again).
    async fn reload_until(&self, expected: Value) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            self.hangup();
            tokio::time::sleep(Duration::from_millis(200)).await;
            let listed =
                self.query("{ providers { name error schedule } }").await["providers"].clone();
            if listed == expected {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "providers after SIGHUP: {listed}, expected {expected}"
            );
        }
    }
}

async fn sighup_reloads_the_providers_directory(backend: Backend) {
    let (url, _db_dir) = database_url(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let providers = dir.path().join("providers");
    std::fs::create_dir(&providers).expect("providers dir");
    write_provider(&providers, "tokens", &tokens_provider(None));
    let server = Server::start(&url, &providers).await;
    assert_eq!(
        server.query("{ providers { name error schedule } }").await["providers"],
        json!([{ "name": "tokens", "error": null, "schedule": null }])
    );

    // A new file and a changed schedule.
    let data = transfers_file(dir.path());
    write_provider(&providers, "transfers", &transfers_provider(&data));
    write_provider(&providers, "tokens", &tokens_provider(Some("* * * * * *")));
    server
        .reload_until(json!([
            { "name": "tokens", "error": null, "schedule": "* * * * * *" },
            { "name": "transfers", "error": null, "schedule": null },
        ]))
        .await;
    wait_for(
        "a scheduled run of tokens",
        Duration::from_secs(30),
        async || {
            let data = server
                .query(r#"{ ingestRuns(where: { provider: "tokens" }) { nodes { trigger } } }"#)
                .await;
            data["ingestRuns"]["nodes"]
                .as_array()
                .is_some_and(|runs| runs.iter().any(|r| r["trigger"] == "schedule"))
        },
    )
    .await;

    // A broken file: the server answers, shows the error, and runs the old definition.
    let tokens_path = providers.join("tokens.toml");
    std::fs::write(&tokens_path, "entity = \"token\"\n[source\n").expect("break tokens");
    let error = format!(
        "{}: line 2, column 8: invalid table header; expected `.`, `]`",
        tokens_path.display()
    );
    server
        .reload_until(json!([
            { "name": "tokens", "error": error, "schedule": "* * * * * *" },
            { "name": "transfers", "error": null, "schedule": null },
        ]))
        .await;
    let triggered = server
        .query(r#"mutation { triggerIngest(provider: "transfers") { run { id } } }"#)
        .await;
    let id = triggered["triggerIngest"]["run"]["id"]
        .as_str()
        .expect("run id")
        .to_string();
    wait_for("the transfers run", Duration::from_secs(60), async || {
        let run = server
            .query(&format!(r#"{{ ingestRun(id: "{id}") {{ status }} }}"#))
            .await;
        run["ingestRun"]["status"] == "SUCCEEDED"
    })
    .await;

    // A removed file disappears.
    std::fs::remove_file(providers.join("transfers.toml")).expect("remove transfers");
    server
        .reload_until(json!([
            { "name": "tokens", "error": error, "schedule": "* * * * * *" },
        ]))
        .await;
}
on_both_databases!(sighup_reloads_the_providers_directory);

async fn reset_provider_cursor_sets_clears_and_checks_the_kind(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    let providers = dir.path().to_path_buf();
    write_provider(&providers, "changes", CHANGES);
    write_provider(&providers, "tokens", &tokens_provider(None));
    let app = TestApp::spawn_with(backend, {
        let providers = providers.clone();
        move |s| s.providers_dir = providers
    })
    .await;
    let reset = r#"mutation($provider: String!, $value: String) {
        resetProviderCursor(provider: $provider, value: $value) { name cursor } }"#;

    let set = app
        .query(
            reset,
            json!({ "provider": "changes", "value": "2024-03-01T12:00:00+02:00" }),
        )
        .await;
    assert_eq!(
        set["resetProviderCursor"],
        json!({ "name": "changes", "cursor": "2024-03-01T10:00:00Z" })
    );
    assert_eq!(
        app.query("{ providers { name cursor } }", json!({})).await["providers"],
        json!([
            { "name": "changes", "cursor": "2024-03-01T10:00:00Z" },
            { "name": "tokens", "cursor": null },
        ])
    );
    // `tributary providers` shows it too.
    let listed = cli(&app.database_url, &providers, &["providers"]);
    assert_eq!(listed.status.code(), Some(0));
    let stdout = String::from_utf8(listed.stdout).expect("utf-8");
    let changes_line = stdout
        .lines()
        .find(|l| l.starts_with("changes "))
        .expect("a line for changes");
    assert!(
        changes_line.ends_with("never run, cursor 2024-03-01T10:00:00Z"),
        "{changes_line}"
    );

    let bad = app
        .graphql(
            reset,
            json!({ "provider": "changes", "value": "yesterday" }),
        )
        .await;
    assert_eq!(bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(
        bad["errors"][0]["message"], BAD_TIMESTAMP,
        "names the field and the kind"
    );
    let no_cursor = app
        .graphql(reset, json!({ "provider": "tokens", "value": "1" }))
        .await;
    assert_eq!(
        no_cursor["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
    assert_eq!(
        no_cursor["errors"][0]["message"],
        "provider \"tokens\" has no cursor: only a provider with `[source.incremental]` keeps one"
    );
    let unknown = app
        .graphql(reset, json!({ "provider": "nobody", "value": null }))
        .await;
    assert_eq!(unknown["errors"][0]["extensions"]["code"], "NOT_FOUND");
    // The bad value changed nothing.
    assert_eq!(
        tributary::store::provider_state::cursor(&app.db, "changes")
            .await
            .expect("cursor"),
        Some("2024-03-01T10:00:00Z".to_string())
    );

    let cleared = app
        .query(reset, json!({ "provider": "changes", "value": null }))
        .await;
    assert_eq!(
        cleared["resetProviderCursor"],
        json!({ "name": "changes", "cursor": null })
    );
    assert_eq!(
        tributary::store::provider_state::cursor(&app.db, "changes")
            .await
            .expect("cursor"),
        None
    );
}
on_both_databases!(reset_provider_cursor_sets_clears_and_checks_the_kind);

const BAD_TIMESTAMP: &str = "`value`: expected a timestamp (the kind of changes's \
     `source.incremental.initial`): timestamp \"yesterday\" is not one of: epoch seconds \
     (1683029999), RFC 3339 (2023-05-02T12:19:59Z), \"2023-05-02 12:19:59 UTC\", \
     \"2023-05-02 12:19:59\" (taken as UTC) or month/day/year \"12/9/2016 18:35:23\"";
