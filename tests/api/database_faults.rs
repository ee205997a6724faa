//! PostgreSQL stopped (`pg_ctl stop -m immediate`, as in a crash) and started again while the
//! server works: requests fail fast with a clear answer while it is down, the service recovers
//! without a restart, and nothing acknowledged is lost or stored twice. PostgreSQL only: SQLite
//! has no server to lose. Each test runs its own private cluster, so stopping it disturbs no
//! other test.

use entity::ingest_run::RunStatus;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::mock_provider::{MockConfig, MockProvider};
use crate::common::postgres::PrivateCluster;
use crate::common::{TestApp, write_provider};
use sea_orm::{ColumnTrait, Database, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

/// Generous bound on any answer while the database is down (the pool's acquire timeout is
/// set to 2 s below): never a hang until the client's own timeout.
const FAIL_FAST: Duration = Duration::from_secs(5);

/// What one `/submit` request got.
struct Answer {
    id: String,
    status: u16,
    retry_after: bool,
    took: Duration,
}

/// Posts events with unique ids in `metadata` until `stop`, recording every answer.
async fn submitter(
    client: reqwest::Client,
    url: String,
    worker: usize,
    stop: Arc<AtomicBool>,
) -> Vec<Answer> {
    let mut answers = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let id = format!("w{worker}-{n}");
        let body = json!({
            "ip_address": "192.168.1.1", "user_agent": "faults", "referring_url": "https://example.com",
            "advertiser_id": "12345", "metadata": { "id": id },
        });
        let started = Instant::now();
        let answer = client.post(&url).json(&body).send().await;
        let took = started.elapsed();
        match answer {
            Ok(response) => answers.push(Answer {
                id,
                status: response.status().as_u16(),
                retry_after: response.headers().contains_key("retry-after"),
                took,
            }),
            // No answer at all (the client's 20 s timeout): recorded as status 0, never allowed.
            Err(_) => answers.push(Answer {
                id,
                status: 0,
                retry_after: false,
                took,
            }),
        }
        if answers.last().is_some_and(|a| a.status == 503) {
            // As a well-behaved client would, though not for the full Retry-After.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    answers
}

async fn stop_database(cluster: &Arc<PrivateCluster>) {
    let cluster = cluster.clone();
    tokio::task::spawn_blocking(move || cluster.stop_immediate())
        .await
        .expect("stop");
}

async fn start_database(cluster: &Arc<PrivateCluster>) {
    let cluster = cluster.clone();
    tokio::task::spawn_blocking(move || cluster.start_again())
        .await
        .expect("start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_fails_fast_while_postgres_is_down_and_recovers_without_a_restart() {
    let cluster = Arc::new(PrivateCluster::start());
    let app = TestApp::spawn_at(cluster.url(), None, |s| {
        s.database.acquire_timeout_secs = 2;
        s.scheduler.enabled = false;
    })
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            tokio::spawn(submitter(
                client.clone(),
                format!("{}/submit", app.address),
                w,
                stop.clone(),
            ))
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop_database(&cluster).await;
    let down_at = Instant::now();

    // While it is down: not ready, and a query's error says why, each within the bound.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let asked = Instant::now();
    let ready = app.get("/readyz").await;
    assert!(
        asked.elapsed() < FAIL_FAST,
        "/readyz took {:?}",
        asked.elapsed()
    );
    assert_eq!(ready.status(), 503);
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready["reason"], "database unreachable");
    let asked = Instant::now();
    let body = app
        .graphql("{ events(first: 1) { nodes { id } } }", json!({}))
        .await;
    assert!(
        asked.elapsed() < FAIL_FAST,
        "query took {:?}",
        asked.elapsed()
    );
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAVAILABLE",
        "{body}"
    );
    assert_eq!(
        body["errors"][0]["message"],
        "the database is unavailable; retry shortly"
    );
    // submitEvent (the GraphQL way in) says the same.
    let body = app
        .graphql(
            r#"mutation { submitEvent(input: {ipAddress: "10.0.0.1", userAgent: "u", referringUrl: "https://e.com", advertiserId: "a", metadata: {id: "graphql"}}) { id } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UNAVAILABLE",
        "{body}"
    );
    while down_at.elapsed() < Duration::from_secs(4) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    start_database(&cluster).await;
    // The same server, not restarted: submissions are stored again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = client
            .post(format!("{}/submit", app.address))
            .json(&json!({
                "ip_address": "10.0.0.1", "user_agent": "probe", "referring_url": "https://example.com",
                "advertiser_id": "a", "metadata": { "id": "probe" },
            }))
            .send()
            .await
            .expect("submit")
            .status();
        if status == 204 {
            break;
        }
        assert!(Instant::now() < deadline, "never recovered: last {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut answers = Vec::new();
    for worker in workers {
        answers.extend(worker.await.expect("worker"));
    }
    assert_eq!(app.get("/readyz").await.status(), 200);
    let body = app
        .graphql("{ events(first: 1) { nodes { id } } }", json!({}))
        .await;
    assert!(body.get("errors").is_none(), "{body}");

    // Every answer was a 204 or a 503 with Retry-After, and came within the bound.
    let by_status = answers.iter().fold(BTreeMap::new(), |mut m, a| {
        *m.entry(a.status).or_insert(0usize) += 1;
        m
    });
    assert!(
        answers.iter().all(|a| a.status == 204 || a.status == 503),
        "{by_status:?}"
    );
    assert!(
        answers
            .iter()
            .filter(|a| a.status == 503)
            .all(|a| a.retry_after)
    );
    let slowest = answers.iter().map(|a| a.took).max().unwrap_or_default();
    assert!(slowest < FAIL_FAST, "slowest answer {slowest:?}");
    assert!(
        by_status.get(&503).copied().unwrap_or(0) > 0,
        "{by_status:?}"
    );
    assert!(
        by_status.get(&204).copied().unwrap_or(0) > 0,
        "{by_status:?}"
    );

    // Every acknowledged event is stored exactly once; nothing is stored twice.
    let stored = crate::common::stored_event_ids(&cluster.url()).await;
    let acknowledged: BTreeSet<&str> = answers
        .iter()
        .filter(|a| a.status == 204)
        .map(|a| a.id.as_str())
        .collect();
    for id in &acknowledged {
        assert_eq!(stored.get(*id), Some(&1), "acknowledged event {id}");
    }
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored twice: {twice:?}");
    assert_eq!(stored.get("probe"), Some(&1));
    // Refused ones may only be stored when the database committed as it went down.
    let refused_but_stored = answers
        .iter()
        .filter(|a| a.status == 503 && stored.contains_key(&a.id))
        .count();
    assert!(refused_but_stored <= 16, "{refused_but_stored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_during_a_postgres_restart_fails_clearly_and_the_next_completes_it() {
    let cluster = Arc::new(PrivateCluster::start());
    let mock = MockProvider::start(MockConfig {
        items: 400,
        latency: Duration::from_millis(40),
        ..Default::default()
    })
    .await;
    let providers = tempfile::tempdir().expect("dir");
    write_provider(
        providers.path(),
        "slow",
        &format!(
            "entity = \"record\"\ndataset = \"items\"\nkey = \"id\"\n[source]\nkind = \"http\"\nurl = \"{}/offset\"\nrecords = \"$.data[*]\"\n[source.pagination]\nkind = \"offset\"\npage_size = 10\n[fields]\nid = \"$.id\"\n",
            mock.base_url
        ),
    );
    let dir = providers.path().to_path_buf();
    let app = TestApp::spawn_at(cluster.url(), None, move |s| {
        s.database.acquire_timeout_secs = 2;
        s.providers_dir = dir;
    })
    .await;
    let trigger = r#"mutation { triggerIngest(provider: "slow", mode: INCREMENTAL) { alreadyRunning run { id } } }"#;
    let first = app.query(trigger, json!({})).await;
    let first: i64 = first["triggerIngest"]["run"]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| first["triggerIngest"]["run"]["id"].as_i64())
        .expect("run id");
    let runs = async || {
        let db = Database::connect(cluster.url()).await.expect("connect");
        let runs = entity::ingest_run::Entity::find()
            .filter(entity::ingest_run::Column::Provider.eq("slow"))
            .order_by_asc(entity::ingest_run::Column::Id)
            .all(&db)
            .await
            .expect("runs");
        db.close().await.ok();
        runs
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while runs().await.first().is_none_or(|r| r.pages < 3) {
        assert!(Instant::now() < deadline, "the run never got going");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_database(&cluster).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    start_database(&cluster).await;

    // The run ends on its own (no restart): failed with a database error, or, had the outage
    // fallen between its batches, succeeded. Never left running.
    let deadline = Instant::now() + Duration::from_secs(60);
    let ended = loop {
        let all = runs().await;
        if all
            .iter()
            .all(|r| r.status != RunStatus::Queued && r.status != RunStatus::Running)
        {
            break all;
        }
        assert!(
            Instant::now() < deadline,
            "a run was left unfinished: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].id, first);
    if ended[0].status == RunStatus::Failed {
        let error = ended[0].error.as_deref().unwrap_or_default();
        assert!(error.starts_with("database: "), "{error}");
        assert!(!error.contains("postgres://"), "{error}");
        // The next run picks up from the checkpoint and completes the data. (Until the failed
        // run's task has let go of the provider, a trigger answers with that run.)
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let started = app.query(trigger, json!({})).await;
            if !started["triggerIngest"]["alreadyRunning"]
                .as_bool()
                .unwrap_or(true)
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no second run started: {started}; {:?}",
                runs().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        while runs().await.last().is_none_or(|r| {
            r.id == first || r.status == RunStatus::Queued || r.status == RunStatus::Running
        }) {
            assert!(Instant::now() < deadline, "the second run never ended");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    } else {
        assert_eq!(ended[0].status, RunStatus::Succeeded, "{ended:?}");
    }
    let all = runs().await;
    assert_eq!(
        all.last().map(|r| r.status.as_str()),
        Some("succeeded"),
        "{all:?}"
    );

    // Exactly the provider's 400 records, each inserted once across the runs, and each run's
    // counters add up to what it fetched.
    let db = Database::connect(cluster.url()).await.expect("connect");
    let records = entity::record::Entity::find()
        .filter(entity::record::Column::Dataset.eq("items"))
        .all(&db)
        .await
        .expect("records");
    let keys: BTreeSet<&str> = records.iter().map(|r| r.key.as_str()).collect();
    assert_eq!((records.len(), keys.len()), (400, 400));
    assert_eq!(all.iter().map(|r| r.inserted).sum::<i64>(), 400, "{all:?}");
    crate::common::assert_invariants(&db).await;
    let raws = entity::raw_record::Entity::find()
        .filter(entity::raw_record::Column::Provider.eq("slow"))
        .all(&db)
        .await
        .expect("raw records");
    assert_eq!(raws.len(), 400);
    db.close().await.ok();
}
