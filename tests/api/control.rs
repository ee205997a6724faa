//! The ingestion control plane: schedules inside the server, leases across replicas, GraphQL
//! triggers and cancellation, live updates over WebSocket, and who may change things.

use std::time::{Duration, Instant};

use crate::common::mock_provider::{MockConfig, MockProvider};
use crate::common::{Backend, TestApp, wait_for, write_provider};
use futures_util::{SinkExt, StreamExt};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tributary::settings::Settings;

const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

fn items_provider(base: &str, schedule: Option<&str>, path: &str) -> String {
    let schedule = schedule
        .map(|s| format!("schedule = \"{s}\"\n"))
        .unwrap_or_default();
    format!(
        r#"entity = "record"
dataset = "items"
key = "id"
{schedule}[source]
kind = "http"
url = "{base}{path}"
records = "$.data[*]"
[source.pagination]
kind = "offset"
page_size = 10
[fields]
id = "$.id"
name = "$.name"
"#
    )
}

async fn run_count(app: &TestApp, provider: &str) -> u64 {
    entity::ingest_run::Entity::find()
        .filter(entity::ingest_run::Column::Provider.eq(provider))
        .count(&app.db)
        .await
        .expect("count runs")
}

/// A server whose providers directory holds one items provider, `name`, of a stand-in with
/// `items` items that answers each request after `latency`; with the settings `adjust` makes.
async fn serving_items(
    backend: Backend,
    name: &str,
    items: usize,
    latency: Duration,
    adjust: impl FnOnce(&mut Settings),
) -> Served {
    let mock = MockProvider::start(MockConfig {
        items,
        latency,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    write_provider(
        dir.path(),
        name,
        &items_provider(&mock.base_url, None, "/offset"),
    );
    let providers = dir.path().to_path_buf();
    let app = TestApp::spawn_with(backend, move |s| {
        s.providers_dir = providers;
        adjust(s);
    })
    .await;
    Served {
        app,
        _mock: mock,
        _dir: dir,
    }
}

/// A server with its stand-in provider and providers directory, which live as long as it.
struct Served {
    app: TestApp,
    _mock: MockProvider,
    _dir: tempfile::TempDir,
}

async fn a_schedule_fires_on_time(backend: Backend) {
    let mock = MockProvider::start(MockConfig {
        items: 5,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    write_provider(
        dir.path(),
        "every-second",
        &items_provider(&mock.base_url, Some("* * * * * *"), "/offset"),
    );
    let providers = dir.path().to_path_buf();
    let app = TestApp::spawn_with(backend, move |s| s.providers_dir = providers).await;
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let runs = run_count(&app, "every-second").await;
    // Ticks at 1 s intervals over 3.5 s: three or four, never more (two only if the machine
    // stalled the scheduler for a whole second).
    assert!((2..=4).contains(&runs), "{runs} runs");
    // One request per run (5 items fit one page); the run the last tick started may not have
    // sent its request yet when counted on a loaded machine.
    let requests = mock.requests("offset") as u64;
    assert!(
        requests == runs || requests + 1 == runs,
        "{requests} requests for {runs} runs"
    );
    let data = app
        .query(r#"{ provider(name: "every-second") { schedule nextFireTime lastRun { status trigger fetched } rowCount } }"#, json!({}))
        .await;
    assert_eq!(data["provider"]["schedule"], "* * * * * *");
    assert_eq!(data["provider"]["lastRun"]["trigger"], "schedule");
    assert_eq!(data["provider"]["rowCount"], 5);
    assert!(data["provider"]["nextFireTime"].is_string());
}
on_both_databases!(a_schedule_fires_on_time);

/// Triggers of one provider arriving at once start one run; the others are told it is
/// already running (two runs of one provider on one replica once raced, and their batches
/// fought over the same rows).
async fn simultaneous_triggers_start_one_run(backend: Backend) {
    let served = serving_items(backend, "slow", 200, Duration::from_millis(50), |_| {}).await;
    let app = &served.app;
    let trigger =
        r#"mutation { triggerIngest(provider: "slow", mode: FULL) { alreadyRunning run { id } } }"#;
    let answers =
        futures_util::future::join_all((0..8).map(|_| app.query(trigger, json!({})))).await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|a| {
            a["triggerIngest"]["run"]["id"]
                .as_str()
                .expect("id")
                .to_string()
        })
        .collect();
    let started = answers
        .iter()
        .filter(|a| a["triggerIngest"]["alreadyRunning"] == false)
        .count();
    assert_eq!((ids.len(), started), (1, 1), "{answers:?}");
    let runs = entity::ingest_run::Entity::find()
        .count(&app.db)
        .await
        .expect("count");
    assert_eq!(runs, 1);
}
on_both_databases!(simultaneous_triggers_start_one_run);

async fn trigger_and_cancel(backend: Backend) {
    let served = serving_items(backend, "slow", 200, Duration::from_millis(100), |_| {}).await;
    let app = &served.app;

    let trigger = r#"mutation { triggerIngest(provider: "slow", mode: FULL) { alreadyRunning run { id status trigger mode } } }"#;
    let started = app.query(trigger, json!({})).await;
    assert_eq!(started["triggerIngest"]["alreadyRunning"], false);
    assert_eq!(started["triggerIngest"]["run"]["status"], "QUEUED");
    assert_eq!(started["triggerIngest"]["run"]["trigger"], "manual");
    let id = started["triggerIngest"]["run"]["id"]
        .as_str()
        .expect("id")
        .to_string();

    // Triggered again while running: the same run, flagged.
    let again = app.query(trigger, json!({})).await;
    assert_eq!(again["triggerIngest"]["alreadyRunning"], true);
    assert_eq!(again["triggerIngest"]["run"]["id"], id.as_str());

    let run = |id: String| {
        let app = &app;
        async move {
            app.query(
                "query($id: ID!) { ingestRun(id: $id) { status pages inserted error } }",
                json!({ "id": id }),
            )
            .await["ingestRun"]
                .clone()
        }
    };
    wait_for("two committed pages", Duration::from_secs(20), async || {
        run(id.clone()).await["pages"].as_i64().unwrap_or(0) >= 2
    })
    .await;
    let cancelled = app
        .query(
            "mutation($id: ID!) { cancelIngest(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(cancelled["cancelIngest"]["id"], id.as_str());
    wait_for("the run to stop", Duration::from_secs(20), async || {
        run(id.clone()).await["status"] == "CANCELLED"
    })
    .await;
    let last = run(id.clone()).await;
    let inserted = last["inserted"].as_i64().expect("inserted");
    assert!((20..200).contains(&inserted), "{inserted}");
    // What it committed stays.
    let stored = entity::record::Entity::find()
        .count(&app.db)
        .await
        .expect("count");
    assert_eq!(stored as i64, inserted);

    let unknown = app
        .graphql(
            r#"mutation { triggerIngest(provider: "nope") { alreadyRunning } }"#,
            json!({}),
        )
        .await;
    assert_eq!(unknown["errors"][0]["extensions"]["code"], "NOT_FOUND");
    assert_eq!(
        unknown["errors"][0]["message"],
        "no provider named \"nope\""
    );

    let listed = app
        .query(
            r#"{ ingestRuns(where: {provider: "slow", status: CANCELLED}) { nodes { id } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(listed["ingestRuns"]["nodes"], json!([{ "id": id }]));
}
on_both_databases!(trigger_and_cancel);

async fn mutations_need_a_token_off_loopback(backend: Backend) {
    let served = serving_items(backend, "items", 5, Duration::ZERO, |s| {
        s.listen = "0.0.0.0:0".parse().expect("address");
        s.auth.admin_tokens = vec![ADMIN_TOKEN.to_string().into()];
    })
    .await;
    let app = &served.app;
    let mutation =
        json!({ "query": r#"mutation { triggerIngest(provider: "items") { run { id } } }"# });
    let url = format!("{}/graphql", app.address);
    let anonymous: Value = app
        .client
        .post(&url)
        .json(&mutation)
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert_eq!(
        anonymous["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    let wrong: Value = app
        .client
        .post(&url)
        .bearer_auth("not-the-token-at-all")
        .json(&mutation)
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert_eq!(wrong["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let admin: Value = app
        .client
        .post(&url)
        .bearer_auth(ADMIN_TOKEN)
        .json(&mutation)
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert!(admin["errors"].is_null(), "{admin}");
    assert!(admin["data"]["triggerIngest"]["run"]["id"].is_string());
    // Queries stay open.
    app.query("{ providers { name } }", json!({})).await;

    // Without tokens, a non-loopback listener refuses to start.
    let (url, _dir) = crate::common::database_url(backend).await;
    let mut settings = crate::common::settings(&url);
    settings.listen = "0.0.0.0:0".parse().expect("address");
    let refused = tributary::startup::Application::build(settings)
        .await
        .err()
        .expect("refused");
    assert!(
        refused.to_string().starts_with(
            "listening on 0.0.0.0:0 (not a loopback address) with no auth.admin_tokens"
        ),
        "{refused}"
    );
}
on_both_databases!(mutations_need_a_token_off_loopback);

async fn a_subscription_sees_progress_and_the_final_state(backend: Backend) {
    let served = serving_items(backend, "watched", 60, Duration::from_millis(150), |_| {}).await;
    let app = &served.app;
    let started = app
        .query(
            r#"mutation { triggerIngest(provider: "watched") { run { id } } }"#,
            json!({}),
        )
        .await;
    let id = started["triggerIngest"]["run"]["id"]
        .as_str()
        .expect("id")
        .to_string();

    let mut ws = app.graphql_ws().await;
    ws.send(Message::text(
        json!({ "type": "connection_init", "payload": {} }).to_string(),
    ))
    .await
    .expect("init");
    ws.send(Message::text(
        json!({
            "id": "1", "type": "subscribe",
            "payload": { "query": "subscription($id: ID!) { ingestRunUpdated(id: $id) { id status fetched } }", "variables": { "id": id } }
        })
        .to_string(),
    ))
    .await
    .expect("subscribe");
    let mut states = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let Some(Ok(Message::Text(text))) =
            tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("a message in time")
        else {
            continue;
        };
        let message: Value = serde_json::from_str(&text).expect("json");
        match message["type"].as_str() {
            Some("next") => states.push(message["payload"]["data"]["ingestRunUpdated"].clone()),
            Some("complete") => break,
            _ => {}
        }
    }
    let last = states.last().expect("updates");
    assert_eq!(last["status"], "SUCCEEDED", "{states:?}");
    assert_eq!(last["fetched"], 60);
    // Progress arrived before the end.
    assert!(
        states.iter().any(|s| s["status"] == "RUNNING"),
        "{states:?}"
    );
}
on_both_databases!(a_subscription_sees_progress_and_the_final_state);

async fn records_pushed_over_http_land_once(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    write_provider(
        dir.path(),
        "events",
        "entity = \"record\"\ndataset = \"events\"\nkey = \"id\"\n[source]\nkind = \"push\"\n[fields]\nid = \"$.id\"\nkind = { path = \"$.kind\", transforms = [\"lowercase\"] }\n",
    );
    // The same, keeping raw payloads (unchanged payloads are then skipped before mapping).
    write_provider(
        dir.path(),
        "kept",
        "entity = \"record\"\ndataset = \"kept\"\nkey = \"id\"\nkeep_raw = true\n[source]\nkind = \"push\"\n[fields]\nid = \"$.id\"\nkind = { path = \"$.kind\", transforms = [\"lowercase\"] }\n",
    );
    let mock = MockProvider::start(MockConfig {
        items: 5,
        ..Default::default()
    })
    .await;
    write_provider(
        dir.path(),
        "pulled",
        &items_provider(&mock.base_url, None, "/offset"),
    );
    let providers = dir.path().to_path_buf();
    let app = TestApp::spawn_with(backend, move |s| s.providers_dir = providers).await;
    let url = format!("{}/ingest/events", app.address);
    let post = |body: String| {
        let client = app.client.clone();
        let url = url.clone();
        async move {
            // A JSON array, or JSON lines.
            let content_type = if body.starts_with('[') {
                "application/json"
            } else {
                "application/x-ndjson"
            };
            let response = client
                .post(&url)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .expect("post");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("json"))
        }
    };
    let (status, body) = post(
        r#"[{"id": "a", "kind": "Click"}, {"id": "b", "kind": "VIEW"}, {"kind": "no id"}]"#.into(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["received"].as_i64(),
            body["inserted"].as_i64(),
            body["rejected"].as_i64()
        ),
        (Some(3), Some(2), Some(1))
    );
    // JSON lines, the same records again: nothing changes.
    let (status, body) =
        post("{\"id\": \"a\", \"kind\": \"Click\"}\n{\"id\": \"b\", \"kind\": \"VIEW\"}\n".into())
            .await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["unchanged"].as_i64(), body["inserted"].as_i64()),
        (Some(2), Some(0))
    );
    let data = app
        .query(
            r#"{ records(dataset: "events") { nodes { key data } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        data["records"]["nodes"],
        json!([{ "key": "a", "data": { "id": "a", "kind": "click" } }, { "key": "b", "data": { "id": "b", "kind": "view" } }])
    );

    // One batch naming a record twice: the last one wins, and the earlier one is counted as
    // superseded, not as an update — also when the last equals what is stored and the earlier
    // one does not.
    let (status, body) =
        post("{\"id\": \"b\", \"kind\": \"Click\"}\n{\"id\": \"b\", \"kind\": \"VIEW\"}\n".into())
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        [
            &body["received"],
            &body["inserted"],
            &body["updated"],
            &body["unchanged"],
            &body["superseded"]
        ],
        [&json!(2), &json!(0), &json!(0), &json!(1), &json!(1)],
        "{body}"
    );
    // A NUL character (PostgreSQL stores none) rejects its record, with the place named, and
    // the batch's other records land.
    let (status, body) =
        post(r#"[{"id": "n", "kind": "a\u0000"}, {"id": "m", "kind": "ok"}]"#.into()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        [&body["received"], &body["inserted"], &body["rejected"]],
        [&json!(2), &json!(1), &json!(1)],
        "{body}"
    );
    let data = app
        .query(
            r#"{ rejectedRecords(where: { provider: "events" }) { nodes { reason payload } } }"#,
            json!({}),
        )
        .await;
    let nodes = data["rejectedRecords"]["nodes"].as_array().expect("nodes");
    assert!(
        nodes.contains(&json!({
            "reason": "kind: contains a NUL character (\\u0000), which the database cannot store",
            "payload": "{\"id\":\"n\",\"kind\":\"a\\u0000\"}",
        })),
        "{nodes:?}"
    );
    let kept_url = format!("{}/ingest/kept", app.address);
    for (body, counts) in [
        (r#"[{"id": "a", "kind": "Click"}]"#, [1, 1, 0, 0, 0]),
        (
            r#"[{"id": "a", "kind": "VIEW"}, {"id": "a", "kind": "Click"}]"#,
            [2, 0, 0, 1, 1],
        ),
    ] {
        let response = app
            .client
            .post(&kept_url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.expect("json");
        let got: Vec<i64> = ["received", "inserted", "updated", "unchanged", "superseded"]
            .iter()
            .map(|k| answer[k].as_i64().unwrap_or(-1))
            .collect();
        assert_eq!(got, counts, "{answer}");
    }
    let data = app
        .query(
            r#"{ events: records(dataset: "events") { nodes { key data } }
                 kept: records(dataset: "kept") { nodes { key data } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        data["events"]["nodes"][1],
        json!({ "key": "b", "data": { "id": "b", "kind": "view" } })
    );
    assert_eq!(
        data["kept"]["nodes"],
        json!([{ "key": "a", "data": { "id": "a", "kind": "click" } }])
    );

    let (status, body) = post("{\"id\": \"c\"}\n{oops\n".into()).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("line 2: bad JSON")),
        "{body}"
    );
    let missing = app
        .client
        .post(format!("{}/ingest/nope", app.address))
        .header("content-type", "application/json")
        .body("[]")
        .send()
        .await
        .expect("post");
    assert_eq!(missing.status(), 404);
    let pulled = app
        .client
        .post(format!("{}/ingest/pulled", app.address))
        .header("content-type", "application/json")
        .body("[]")
        .send()
        .await
        .expect("post");
    assert_eq!(pulled.status(), 400);
}
on_both_databases!(records_pushed_over_http_land_once);

async fn pushing_needs_the_token_off_loopback(backend: Backend) {
    let dir = tempfile::tempdir().expect("dir");
    write_provider(
        dir.path(),
        "events",
        "entity = \"record\"\ndataset = \"events\"\nkey = \"id\"\n[source]\nkind = \"push\"\n[fields]\nid = \"$.id\"\n",
    );
    let providers = dir.path().to_path_buf();
    let app = TestApp::spawn_with(backend, move |s| {
        s.providers_dir = providers;
        s.listen = "0.0.0.0:0".parse().expect("address");
        s.auth.admin_tokens = vec![ADMIN_TOKEN.to_string().into()];
    })
    .await;
    let url = format!("{}/ingest/events", app.address);
    let anonymous = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"[{"id": "x"}]"#)
        .send()
        .await
        .expect("post");
    assert_eq!(anonymous.status(), 401);
    let admin = app
        .client
        .post(&url)
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(r#"[{"id": "x"}]"#)
        .send()
        .await
        .expect("post");
    assert_eq!(admin.status(), 200);
    assert_eq!(
        entity::record::Entity::find()
            .count(&app.db)
            .await
            .expect("count"),
        1
    );
}
on_both_databases!(pushing_needs_the_token_off_loopback);
