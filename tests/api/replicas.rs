//! Several server processes on one PostgreSQL: each scheduled tick runs once in total, and a
//! crashed lease holder's work is taken over and resumed by another replica.

use entity::ingest_run::RunStatus;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::mock_provider::{MockConfig, MockProvider};
use crate::common::write_provider;
use crate::common::{Backend, TestApp};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};

fn serve(database_url: &str, providers: &Path, lease_ttl_secs: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("TRIBUTARY_PROVIDERS_DIR", providers)
        .env("TRIBUTARY_LISTEN", "127.0.0.1:0")
        // The stand-in provider listens on loopback.
        .env("TRIBUTARY_OUTBOUND__ALLOWED_NETWORKS", "[\"127.0.0.0/8\"]")
        .env(
            "TRIBUTARY_SCHEDULER__LEASE_TTL_SECS",
            lease_ttl_secs.to_string(),
        )
        // Well inside `stop`'s wait, so a stop is always the graceful one.
        .env("TRIBUTARY_SCHEDULER__SHUTDOWN_GRACE_SECS", "5")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tributary serve")
}

/// SIGTERM, and the process must end on its own within 20 s (its grace period is 5 s).
fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("a replica did not stop within 20 s of SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_run_each_tick_once() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let mock = MockProvider::start(MockConfig {
        items: 5,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    write_provider(
        dir.path(),
        "every-second",
        &format!(
            "entity = \"record\"\ndataset = \"items\"\nkey = \"id\"\nschedule = \"* * * * * *\"\n[source]\nkind = \"http\"\nurl = \"{}/offset\"\nrecords = \"$.data[*]\"\n[source.pagination]\nkind = \"offset\"\npage_size = 10\n[fields]\nid = \"$.id\"\n",
            mock.base_url
        ),
    );
    let a = serve(&app.database_url, dir.path(), 10);
    let b = serve(&app.database_url, dir.path(), 10);
    tokio::time::sleep(Duration::from_secs(10)).await;
    stop(a);
    stop(b);

    let runs = entity::ingest_run::Entity::find()
        .filter(entity::ingest_run::Column::Provider.eq("every-second"))
        .all(&app.db)
        .await
        .expect("runs");
    // About ten ticks in ten seconds (start-up takes a moment), each run by exactly one
    // replica: as many provider requests as runs, and no two runs in one tick.
    assert!((7..=11).contains(&runs.len()), "{} runs", runs.len());
    assert_eq!(mock.requests("offset"), runs.len(), "one request per run");
    let ticks: std::collections::BTreeSet<i64> =
        runs.iter().map(|r| r.queued_at.timestamp()).collect();
    assert_eq!(ticks.len(), runs.len(), "a tick ran twice: {runs:?}");
    let owners: std::collections::BTreeSet<Option<String>> =
        runs.iter().map(|r| r.owner.clone()).collect();
    // Every run succeeded, but for one a replica was working on when it was stopped.
    let interrupted_by_the_stop = |r: &entity::ingest_run::Model| {
        r.status == RunStatus::Interrupted
            && r.error.as_deref()
                == Some("the server shut down; the next run resumes from its checkpoint")
    };
    assert!(
        runs.iter().filter(|r| interrupted_by_the_stop(r)).count() <= 2,
        "{runs:?}"
    );
    assert!(
        runs.iter()
            .all(|r| r.status == RunStatus::Succeeded || interrupted_by_the_stop(r)),
        "{runs:?}"
    );
    assert!(!owners.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_lease_holder_is_taken_over_and_resumed() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let mock = MockProvider::start(MockConfig {
        latency: Duration::from_millis(3),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    write_provider(
        dir.path(),
        "patients",
        &format!(
            r#"entity = "record"
dataset = "patients"
key = "id"
schedule = "*/2 * * * * *"
[source]
kind = "http"
url = "{}/storage/v1/b/b/o"
records = "$.items[*]"
skip = [{{ field = "$.name", starts_with = "index" }}]
[source.pagination]
kind = "cursor"
token_path = "$.nextPageToken"
param = "pageToken"
[source.follow]
url = "$.mediaLink"
concurrency = 4
[parse]
format = "text"
pattern = '(?s)ID: (?P<id>[^\n]*)\nNAME: (?P<name>[^\n]*)\nAGE: (?P<age>[^\n]*)'
[fields]
id = {{ path = "id", transforms = ["trim"] }}
age = {{ path = "age", transforms = [{{ int = {{ default = -1 }} }}] }}
"#,
            mock.base_url
        ),
    );

    let count = async || {
        entity::record::Entity::find()
            .filter(entity::record::Column::Dataset.eq("patients"))
            .count(&app.db)
            .await
            .expect("count")
    };
    let mut a = serve(&app.database_url, dir.path(), 3);
    let deadline = Instant::now() + Duration::from_secs(60);
    while count().await < 2_000 {
        assert!(
            Instant::now() < deadline,
            "replica A never committed two pages"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let b = serve(&app.database_url, dir.path(), 3);
    // A dies without releasing anything.
    a.kill().expect("SIGKILL");
    a.wait().expect("reaped");
    let committed = count().await;
    assert!(committed < 10_000, "A finished before it could be killed");

    let deadline = Instant::now() + Duration::from_secs(90);
    while count().await < 10_000 {
        assert!(
            Instant::now() < deadline,
            "B never finished the work ({} records)",
            count().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop(b);
    let runs = entity::ingest_run::Entity::find()
        .filter(entity::ingest_run::Column::Provider.eq("patients"))
        .order_by_asc(entity::ingest_run::Column::Id)
        .all(&app.db)
        .await
        .expect("runs");
    let first = &runs[0];
    assert_eq!(first.status, RunStatus::Interrupted, "{runs:?}");
    // Marked by B's recovery pass or by B's next run, whichever came first.
    assert!(
        matches!(
            first.error.as_deref(),
            Some(
                "the server running it stopped; the next run resumes from its checkpoint"
                    | "its replica stopped holding the lease"
            )
        ),
        "{runs:?}"
    );
    let resumed = runs
        .iter()
        .find(|r| r.status == RunStatus::Succeeded)
        .expect("a succeeded run");
    assert_ne!(
        resumed.owner, first.owner,
        "taken over by the other replica"
    );
    // Resumed from the checkpoint: it did not fetch what A had committed.
    assert!(
        resumed.fetched <= 10_000 - (committed as i64 / 1_000) * 1_000,
        "{resumed:?} after {committed}"
    );
    assert_eq!(count().await, 10_000);
    crate::common::assert_invariants(&app.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_batch_commit_and_the_next_start_resumes() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let mock = MockProvider::start(MockConfig {
        items: 400,
        latency: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    write_provider(
        dir.path(),
        "slow",
        &format!(
            "entity = \"record\"\ndataset = \"items\"\nkey = \"id\"\nschedule = \"0 0 0 1 1 *\"\n[source]\nkind = \"http\"\nurl = \"{}/offset\"\nrecords = \"$.data[*]\"\n[source.pagination]\nkind = \"offset\"\npage_size = 10\n[fields]\nid = \"$.id\"\n",
            mock.base_url
        ),
    );
    let runs = async || {
        entity::ingest_run::Entity::find()
            .filter(entity::ingest_run::Column::Provider.eq("slow"))
            .order_by_asc(entity::ingest_run::Column::Id)
            .all(&app.db)
            .await
            .expect("runs")
    };
    // A run left queued by a replica that is gone: the next server to start takes it up.
    let seeded = tributary::store::runs::queue(
        &app.db,
        "slow",
        tributary::store::runs::RunTrigger::Manual,
        tributary::store::runs::RunMode::Full,
        "gone-replica",
    )
    .await
    .expect("seed");
    let server = serve(&app.database_url, dir.path(), 10);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = runs().await;
        if all.iter().any(|r| r.id != seeded.id && r.pages >= 2) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the resumed run never got going: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stopping = Instant::now();
    stop(server);
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "shutdown took {:?}",
        stopping.elapsed()
    );
    let after_stop = runs().await;
    let interrupted = after_stop
        .iter()
        .find(|r| r.id != seeded.id)
        .expect("the run");
    assert_eq!(interrupted.status, RunStatus::Interrupted, "{after_stop:?}");
    assert_eq!(
        interrupted.error.as_deref(),
        Some("the server shut down; the next run resumes from its checkpoint")
    );
    let state = entity::provider_state::Entity::find_by_id("slow".to_string())
        .one(&app.db)
        .await
        .expect("state")
        .expect("row");
    assert_eq!(state.lease_owner, None, "lease released");
    let committed = entity::record::Entity::find()
        .count(&app.db)
        .await
        .expect("count");
    assert!(committed > 0 && committed < 400);

    // The next start resumes from the checkpoint and finishes.
    let server = serve(&app.database_url, dir.path(), 10);
    let deadline = Instant::now() + Duration::from_secs(60);
    let last = loop {
        let last = runs().await.into_iter().last().expect("runs");
        if last.status != RunStatus::Queued
            && last.status != RunStatus::Running
            && last.id != interrupted.id
        {
            break last;
        }
        assert!(Instant::now() < deadline, "the run was not resumed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop(server);
    assert_eq!(
        entity::record::Entity::find()
            .count(&app.db)
            .await
            .expect("count"),
        400
    );
    assert_eq!(last.status, RunStatus::Succeeded);
    assert_eq!(last.trigger, tributary::store::runs::RunTrigger::Resume);
    assert_eq!(
        last.fetched as u64,
        400 - committed,
        "resumed after the committed pages"
    );
}
