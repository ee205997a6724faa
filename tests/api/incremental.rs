//! Incremental sync, window pagination, JSON-RPC and record filters end to end: real HTTP to
//! stand-in APIs (one that lists changes since a time, one Ethereum node serving recorded
//! logs), into both databases.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{SecondsFormat, TimeDelta};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::common::changes_api::{ChangesApi, base_time};
use crate::common::eth_node::{DATA, EthNode};
use crate::common::recorded_transfers;
use crate::common::{Backend, TestApp, provider, run, wait_for};
use tributary::store::provider_state;
use tributary::store::runs::{RunMode, RunStatus};

/// The shipped JSON-RPC provider, pointed at `node` (written into the file rather than set in
/// the environment, which tests running at once would share).
fn eth_provider(
    dir: &Path,
    name: &str,
    node: &EthNode,
    step: u64,
) -> tributary::providers::Provider {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/providers/ethereum-transfers-rpc.toml"
    ))
    .expect("providers/ethereum-transfers-rpc.toml");
    let text = shipped
        .replace("${ETH_RPC_URL}", &node.url)
        .replace("step = 10\n", &format!("step = {step}\n"));
    assert!(text.contains(&format!("step = {step}\n")));
    provider(dir, name, &text)
}

async fn cursor(app: &TestApp, provider: &str) -> Option<String> {
    provider_state::cursor(&app.db, provider)
        .await
        .expect("cursor")
}

/// The 291 transfers of blocks 17173049–17173050 come out of the node's raw logs exactly as
/// ethereum-etl extracts them — ERC-20 amounts from `data`, ERC-721 token ids from the fourth
/// topic, parties from the topics — over block windows up to `eth_blockNumber`, and the next
/// run asks only from the highest block stored.
async fn the_json_rpc_provider_stores_the_291_transfers_exactly(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let node = EthNode::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let expected = recorded_transfers::expected();
    assert_eq!(expected.len(), 291);

    let eth = eth_provider(dir.path(), "eth", &node, 10);
    let summary = run(&app, &eth, RunMode::Incremental).await;
    assert_eq!(summary.status, RunStatus::Succeeded, "{:?}", summary.error);
    assert_eq!((summary.fetched, summary.rejected), (291, 0));
    assert_eq!(summary.counts.inserted, 291);
    assert_eq!(node.block_number_calls(), 1);
    // Windows of 10 from `initial` through the head: one range, `toBlock` inclusive.
    assert_eq!(node.take_get_logs(), [(17173049, 17173050)]);
    assert_eq!(recorded_transfers::stored(&app).await, expected);
    assert_eq!(cursor(&app, "eth").await.as_deref(), Some("17173050"));

    // The next run starts at the highest block stored: its logs are read again, unchanged.
    let again = run(&app, &eth, RunMode::Incremental).await;
    assert_eq!(again.status, RunStatus::Succeeded, "{:?}", again.error);
    assert_eq!(node.take_get_logs(), [(17173050, 17173050)]);
    let in_last_block = expected
        .iter()
        .filter(|t| t["blockNumber"] == 17173050)
        .count() as u64;
    assert!(in_last_block > 0);
    assert_eq!(again.fetched, in_last_block);
    assert_eq!(again.counts.unchanged, in_last_block);
    assert_eq!(again.counts.inserted + again.counts.updated, 0);

    // One block per window: two requests, and a FULL run starts from `initial` again.
    let per_block = eth_provider(dir.path(), "eth-per-block", &node, 1);
    let full = run(&app, &per_block, RunMode::Full).await;
    assert_eq!(full.status, RunStatus::Succeeded, "{:?}", full.error);
    assert_eq!(
        node.take_get_logs(),
        [(17173049, 17173049), (17173050, 17173050)]
    );
    assert_eq!((full.fetched, full.counts.unchanged), (291, 291));
    assert_eq!(recorded_transfers::stored(&app).await, expected);
    assert_eq!(
        cursor(&app, "eth-per-block").await.as_deref(),
        Some("17173050")
    );
}
on_both_databases!(the_json_rpc_provider_stores_the_291_transfers_exactly);

/// A node that refuses a range (too many results) fails the run with its error, instead of
/// the range counting as empty and its transfers being lost.
async fn a_node_error_fails_the_run_instead_of_losing_a_range(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let node = EthNode::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/providers/ethereum-transfers-rpc.toml"
    ))
    .expect("provider")
    .replace("${ETH_RPC_URL}", &node.url)
    .replace("eth_getLogs", "eth_getLogz");
    let p = provider(dir.path(), "eth-bad", &text);
    let summary = run(&app, &p, RunMode::Incremental).await;
    assert_eq!(summary.status, RunStatus::Failed);
    let error = summary.error.unwrap_or_default();
    assert!(
        error.contains("the provider answered with an error (source.error)")
            && error.contains("method not found"),
        "{error}"
    );
    assert_eq!(cursor(&app, "eth-bad").await, None);
    assert_eq!(
        entity::transfer::Entity::find()
            .count(&app.db)
            .await
            .expect("count"),
        0
    );
}
on_both_databases!(a_node_error_fails_the_run_instead_of_losing_a_range);

fn changes_provider(base: &str, extra: &str) -> String {
    format!(
        r#"
entity = "record"
dataset = "changes"
key = "id"
[source]
kind = "http"
url = "{base}/changes"
records = "$.records[*]"
retry = {{ attempts = 2, initial_backoff_ms = 10, max_backoff_ms = 20 }}
[source.pagination]
kind = "cursor"
token_path = "$.next"
param = "cursor"
[source.incremental]
cursor = "$.updated_at"
param = "since"
initial = "2023-12-31T00:00:00Z"
lookback = "1h"
{extra}
[fields]
id = "id"
value = "value"
updated_at = {{ path = "updated_at", transforms = ["timestamp"] }}
"#
    )
}

/// Every record as stored: id → (value, updated_at).
async fn stored_changes(app: &TestApp) -> BTreeMap<String, (i64, String)> {
    use sea_orm::{ColumnTrait, QueryFilter};
    entity::record::Entity::find()
        .filter(entity::record::Column::Dataset.eq("changes"))
        .all(&app.db)
        .await
        .expect("records")
        .into_iter()
        .map(|r| {
            let data = &r.data;
            (
                r.key.clone(),
                (
                    data["value"].as_i64().expect("value"),
                    data["updated_at"].as_str().expect("updated_at").to_string(),
                ),
            )
        })
        .collect()
}

fn api_records(api: &ChangesApi) -> BTreeMap<String, (i64, String)> {
    api.records()
        .into_iter()
        .map(|r| {
            (
                r.id.clone(),
                (
                    r.value,
                    r.updated_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                ),
            )
        })
        .collect()
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The second run asks only for what changed since the mark (less the lookback): exactly the
/// requests and records that takes, and the records read again through the lookback count as
/// unchanged.
async fn a_second_run_fetches_only_what_changed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = ChangesApi::start(1000, 100, Duration::ZERO).await;
    let dir = tempfile::tempdir().expect("dir");
    let p = provider(dir.path(), "changes", &changes_provider(&api.base_url, ""));

    let first = run(&app, &p, RunMode::Incremental).await;
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.error);
    assert_eq!((first.fetched, first.counts.inserted), (1000, 1000));
    assert_eq!((api.requests(), api.served()), (10, 1000));
    assert_eq!(api.take_seen(), ["2023-12-31T00:00:00Z"]);
    let mark = base_time() + TimeDelta::minutes(999);
    assert_eq!(cursor(&app, "changes").await, Some(rfc3339(mark)));

    // 10 records change (every 100th: none of them within the last hour), 5 are added.
    api.touch(100, 10, 5);
    api.reset_counts();
    let second = run(&app, &p, RunMode::Incremental).await;
    assert_eq!(second.status, RunStatus::Succeeded, "{:?}", second.error);
    let since = mark - TimeDelta::hours(1);
    assert_eq!(api.take_seen(), [rfc3339(since)]);
    // The last hour's 61 records again, and the 15 changed or new.
    let expected = api.count_since(since);
    assert_eq!(expected, 61 + 15);
    assert_eq!((api.requests(), api.served()), (1, expected));
    assert_eq!(second.fetched, expected as u64);
    assert_eq!(
        (
            second.counts.inserted,
            second.counts.updated,
            second.counts.unchanged
        ),
        (5, 10, 61)
    );
    assert_eq!(stored_changes(&app).await, api_records(&api));
    let new_mark = base_time() + TimeDelta::minutes(999 + 15);
    assert_eq!(cursor(&app, "changes").await, Some(rfc3339(new_mark)));

    // A FULL run lists everything from `initial` again, and sets the mark from what it saw.
    api.reset_counts();
    let full = run(&app, &p, RunMode::Full).await;
    assert_eq!(full.status, RunStatus::Succeeded, "{:?}", full.error);
    assert_eq!(api.take_seen(), ["2023-12-31T00:00:00Z"]);
    assert_eq!((api.served(), full.counts.unchanged), (1005, 1005));
    assert_eq!(cursor(&app, "changes").await, Some(rfc3339(new_mark)));
}
on_both_databases!(a_second_run_fetches_only_what_changed);

/// A record without a usable cursor value is rejected with the reason; the others are stored
/// and raise the mark.
async fn a_record_without_its_cursor_is_rejected(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = ChangesApi::start(20, 100, Duration::ZERO).await;
    let dir = tempfile::tempdir().expect("dir");
    // The cursor read from a field the records do not all have.
    let text = changes_provider(&api.base_url, "")
        .replace("cursor = \"$.updated_at\"", "cursor = \"$.stamp\"");
    let p = provider(dir.path(), "changes", &text);
    let summary = run(&app, &p, RunMode::Incremental).await;
    assert_eq!(summary.status, RunStatus::Succeeded, "{:?}", summary.error);
    assert_eq!((summary.fetched, summary.rejected), (20, 20));
    let data = app
        .query(
            r#"{ rejectedRecords(first: 1) { nodes { reason } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        data["rejectedRecords"]["nodes"][0]["reason"],
        "source.incremental.cursor: missing"
    );
    assert_eq!(cursor(&app, "changes").await, None);
}
on_both_databases!(a_record_without_its_cursor_is_rejected);

/// Window pagination over time: consecutive `[from, to)` ranges of `step`, bounds written as
/// RFC 3339, each range one request; the records of every range stored once.
async fn a_window_listing_over_time_asks_for_each_range(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Records every minute from 2024-01-01T00:00Z for 1000 minutes (to 16:39).
    let api = ChangesApi::start(1000, 100, Duration::ZERO).await;
    let dir = tempfile::tempdir().expect("dir");
    let text = format!(
        r#"
entity = "record"
dataset = "changes"
key = "id"
[source]
kind = "http"
url = "{}/range"
query = {{ from = "${{window.from}}", to = "${{window.to}}" }}
records = "$.records[*]"
[source.pagination]
kind = "window"
step = "6h"
start = "2024-01-01T00:00:00Z"
end = "2024-01-01T15:00:00Z"
[fields]
id = "id"
value = "value"
updated_at = {{ path = "updated_at", transforms = ["timestamp"] }}
"#,
        api.base_url
    );
    let p = provider(dir.path(), "ranges", &text);
    let summary = run(&app, &p, RunMode::Full).await;
    assert_eq!(summary.status, RunStatus::Succeeded, "{:?}", summary.error);
    assert_eq!(
        api.take_seen(),
        [
            "2024-01-01T00:00:00Z..2024-01-01T06:00:00Z",
            "2024-01-01T06:00:00Z..2024-01-01T12:00:00Z",
            "2024-01-01T12:00:00Z..2024-01-01T15:00:00Z",
        ]
    );
    // 15 hours of one record a minute.
    assert_eq!((summary.pages, summary.fetched), (3, 900));
    let stored = stored_changes(&app).await;
    let expected: BTreeMap<String, (i64, String)> =
        api_records(&api).into_iter().take(900).collect();
    assert_eq!(stored, expected);
}
on_both_databases!(a_window_listing_over_time_asks_for_each_range);

/// `tributary ingest` killed with SIGKILL in the middle of incremental runs, again and
/// again: the run that finally completes leaves exactly the API's records and the right mark,
/// and the next run asks only from it.
async fn an_incremental_run_killed_resumes_to_the_exact_rows_and_mark(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let api = ChangesApi::start(1000, 50, Duration::from_millis(40)).await;
    let dir = tempfile::tempdir().expect("dir");
    crate::common::write_provider(dir.path(), "changes", &changes_provider(&api.base_url, ""));
    let ingest = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tributary"));
        for (key, _) in std::env::vars() {
            if key.starts_with("TRIBUTARY_") || key == "DATABASE_URL" || key == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        command
            .args(["ingest", "changes"])
            .env("DATABASE_URL", &app.database_url)
            .env("TRIBUTARY_PROVIDERS_DIR", dir.path())
            .env("TRIBUTARY_OUTBOUND__ALLOWED_NETWORKS", "[\"127.0.0.0/8\"]")
            .env("TRIBUTARY_SAMPLE_DATA", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    };
    for round in 0..4 {
        let before = api.requests();
        let mut child = ingest().spawn().expect("start tributary ingest");
        // Killed a few pages in, at a different point each round: 2 + 3 + 4 + 5 of the 20
        // pages, so every round ends before the listing does.
        let pages = 2 + round;
        wait_for("pages to be fetched", Duration::from_secs(60), async || {
            if api.requests() >= before + pages {
                return true;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                panic!("tributary ingest ended before it was killed ({status}): {stderr}");
            }
            false
        })
        .await;
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }
    let finish = ingest().output().expect("run tributary ingest");
    assert!(
        finish.status.success(),
        "{}",
        String::from_utf8_lossy(&finish.stderr)
    );
    assert_eq!(stored_changes(&app).await, api_records(&api));
    let mark = base_time() + TimeDelta::minutes(999);
    assert_eq!(cursor(&app, "changes").await, Some(rfc3339(mark)));
    // Every kill resumed the listing from `initial` (the run it continued asked from there).
    assert!(api.take_seen().iter().all(|s| s == "2023-12-31T00:00:00Z"));

    api.reset_counts();
    let next = ingest().output().expect("run tributary ingest");
    assert!(next.status.success());
    assert_eq!(api.take_seen(), [rfc3339(mark - TimeDelta::hours(1))]);
    assert_eq!(api.served(), 61);
    crate::common::assert_invariants(&app.db).await;
}
on_both_databases!(an_incremental_run_killed_resumes_to_the_exact_rows_and_mark);

/// `skip` and `keep` apply to every source kind: here a file export and records pushed to the
/// server, filtered by token and by value.
async fn record_filters_apply_to_file_and_push_sources(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let weth = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2";
    let fields = r#"
[fields]
token_address = { path = "token_address", transforms = ["hex"] }
from_address = { path = "from_address", transforms = ["hex"] }
to_address = { path = "to_address", transforms = ["hex"] }
value = { path = "value", transforms = ["uint256"] }
transaction_hash = { path = "transaction_hash", transforms = ["hex"] }
log_index = { path = "log_index", transforms = ["int"] }
block_number = { path = "block_number", transforms = ["int"] }
"#;
    let file = provider(
        dir.path(),
        "no-weth",
        &format!(
            "entity = \"transfer\"\n[source]\nkind = \"file\"\npath = \"{DATA}/stream_token_transfers_17173049.jsonl\"\n[[skip]]\nfield = \"$.token_address\"\nequals = \"{weth}\"\n{fields}"
        ),
    );
    let summary = run(&app, &file, RunMode::Full).await;
    assert_eq!(summary.status, RunStatus::Succeeded, "{:?}", summary.error);
    let all = recorded_transfers::expected();
    let not_weth = all.iter().filter(|t| t["tokenAddress"] != weth).count();
    assert!(not_weth < 291);
    assert_eq!(summary.counts.inserted, not_weth as u64);
    let stored = recorded_transfers::stored(&app).await;
    assert_eq!(stored.len(), not_weth);
    assert!(stored.iter().all(|t| t["tokenAddress"] != weth));

    // Pushed: only WETH kept, by a `keep` rule with `in`.
    let push = provider(
        dir.path(),
        "weth-only",
        &format!(
            "entity = \"transfer\"\n[source]\nkind = \"push\"\n[[keep]]\nfield = \"$.token_address\"\nin = [\"{weth}\"]\n{fields}"
        ),
    );
    let lines = std::fs::read_to_string(format!("{DATA}/stream_token_transfers_17173049.jsonl"))
        .expect("file");
    let records: Vec<Value> = lines
        .lines()
        .map(|l| tributary::sources::json::parse_slice(l.as_bytes()).expect("line"))
        .collect();
    let summary = tributary::ingest::push(
        &app.db,
        &push,
        &tributary::hosts::HostRules::default(),
        records,
    )
    .await
    .expect("push");
    assert_eq!(summary.counts.inserted, (291 - not_weth) as u64);
    assert_eq!(recorded_transfers::stored(&app).await, all);
}
on_both_databases!(record_filters_apply_to_file_and_push_sources);

/// `on_missing = "mark_deleted"`: a complete run marks the records it no longer saw (kept, with
/// `deletedAt`, out of lists unless asked for); a record listed again is back.
async fn records_gone_upstream_are_marked_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let export = |ids: &[u32], bump: u32| {
        let lines: Vec<String> = ids
            .iter()
            .map(|i| {
                json!({"id": format!("c{i}"), "n": i + if *i == 3 { bump } else { 0 }}).to_string()
            })
            .collect();
        std::fs::write(dir.path().join("contacts.jsonl"), lines.join("\n")).expect("write");
    };
    let p = provider(
        dir.path(),
        "contacts",
        "entity = \"record\"\ndataset = \"contacts\"\nkey = \"id\"\non_missing = \"mark_deleted\"\n[source]\nkind = \"file\"\npath = \"contacts.jsonl\"\n[fields]\nid = \"id\"\nn = \"n\"\n",
    );
    let listed = async |include_deleted: bool| -> Vec<(String, bool)> {
        let data = app
            .query(
                "query($all: Boolean!) { records(dataset: \"contacts\", includeDeleted: $all, first: 100) { nodes { key deletedAt } } }",
                json!({ "all": include_deleted }),
            )
            .await;
        data["records"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| {
                (
                    n["key"].as_str().expect("key").to_string(),
                    !n["deletedAt"].is_null(),
                )
            })
            .collect()
    };
    let keys = |ids: &[u32], deleted: &[u32]| -> Vec<(String, bool)> {
        let mut all: Vec<(String, bool)> = ids
            .iter()
            .map(|i| (format!("c{i}"), deleted.contains(i)))
            .collect();
        all.sort();
        all
    };

    let everyone: Vec<u32> = (0..10).collect();
    export(&everyone, 0);
    let first = run(&app, &p, RunMode::Full).await;
    assert_eq!(first.counts.inserted, 10, "{:?}", first.error);

    let remaining: Vec<u32> = everyone
        .iter()
        .copied()
        .filter(|i| ![3, 7].contains(i))
        .collect();
    export(&remaining, 0);
    let second = run(&app, &p, RunMode::Incremental).await;
    assert_eq!((second.fetched, second.counts.unchanged), (8, 8));
    assert_eq!(listed(false).await, keys(&remaining, &[]));
    assert_eq!(listed(true).await, keys(&everyone, &[3, 7]));

    // c3 is back (changed); c7 stays deleted.
    let back: Vec<u32> = everyone.iter().copied().filter(|i| *i != 7).collect();
    export(&back, 100);
    let third = run(&app, &p, RunMode::Incremental).await;
    assert_eq!(
        (third.counts.updated, third.counts.unchanged),
        (1, 8),
        "{:?}",
        third.error
    );
    assert_eq!(listed(false).await, keys(&back, &[]));
    assert_eq!(listed(true).await, keys(&everyone, &[7]));
}
on_both_databases!(records_gone_upstream_are_marked_deleted);
