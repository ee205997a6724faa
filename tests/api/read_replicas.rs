//! GraphQL reads on a PostgreSQL streaming replica (`database.replica_urls`): each test starts
//! a private cluster and a standby of it (`pg_basebackup -R`), and shows where queries were
//! answered by pausing the standby's replay, so that it and the primary hold different rows.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use tributary::settings::DatabaseUrl;

use crate::common::postgres::PrivateCluster;
use crate::common::{TestApp, wait_for};

/// A primary, its standby, and a server reading from the standby.
struct Setup {
    primary: PrivateCluster,
    standby: PrivateCluster,
    app: TestApp,
}

/// Starts the clusters and the server, writes product `a` and waits until the server reports
/// the standby in use and a query sees `a`.
async fn setup(max_replica_lag_secs: u64) -> Setup {
    let primary = PrivateCluster::start();
    let standby = primary.start_standby();
    let replica = DatabaseUrl::parse(&standby.url()).expect("a PostgreSQL URL");
    let app = TestApp::spawn_at(primary.url(), None, move |settings| {
        settings.database.replica_urls = vec![replica];
        settings.database.max_replica_lag_secs = max_replica_lag_secs;
    })
    .await;
    insert_product(&app.db, "a").await;
    wait_for("the replica in use", Duration::from_secs(30), async || {
        replica_state(&app).await["status"] == "used"
    })
    .await;
    wait_for(
        "the replica to hold product a",
        Duration::from_secs(30),
        async || skus(&app).await == ["a"],
    )
    .await;
    Setup {
        primary,
        standby,
        app,
    }
}

async fn insert_product(db: &DatabaseConnection, sku: &str) {
    db.execute_unprepared(&format!(
        "INSERT INTO products (sku, name, description, provider, updated_at) \
         VALUES ('{sku}', 'name {sku}', NULL, 'test', now())"
    ))
    .await
    .unwrap_or_else(|e| panic!("insert product {sku}: {e}"));
}

/// The SKUs a GraphQL query sees, asserting it answered without errors.
async fn skus(app: &TestApp) -> Vec<String> {
    let data = app
        .query("{ products(first: 100) { nodes { sku name } } }", json!({}))
        .await;
    data["products"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            assert_eq!(
                n["name"],
                format!("name {}", n["sku"].as_str().expect("sku"))
            );
            n["sku"].as_str().expect("sku").to_string()
        })
        .collect()
}

/// SKUs on the primary, read directly.
async fn primary_skus(app: &TestApp) -> Vec<String> {
    use sea_orm::{EntityTrait, QueryOrder};
    entity::product::Entity::find()
        .order_by_asc(entity::product::Column::Sku)
        .all(&app.db)
        .await
        .expect("products on the primary")
        .into_iter()
        .map(|p| p.sku)
        .collect()
}

/// `/readyz`, which must stay ready whatever the replica does: its one replica entry.
async fn replica_state(app: &TestApp) -> Value {
    let response = app.get("/readyz").await;
    let status = response.status();
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(status, 200, "/readyz: {body}");
    assert_eq!(body["status"], "ready", "{body}");
    let replicas = body["replicas"].as_array().expect("replicas reported");
    assert_eq!(replicas.len(), 1, "{body}");
    replicas[0].clone()
}

async fn standby_connection(standby: &PrivateCluster) -> DatabaseConnection {
    Database::connect(standby.url())
        .await
        .expect("connect to the standby")
}

async fn pause_replay(standby: &DatabaseConnection) {
    standby
        .execute_unprepared("SELECT pg_catalog.pg_wal_replay_pause()")
        .await
        .expect("pause replay");
}

async fn resume_replay(standby: &DatabaseConnection) {
    standby
        .execute_unprepared("SELECT pg_catalog.pg_wal_replay_resume()")
        .await
        .expect("resume replay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_are_answered_by_the_replica_and_mutations_by_the_primary() {
    let Setup {
        primary: _primary,
        standby,
        app,
    } = setup(60).await;
    let state = replica_state(&app).await;
    assert_eq!(state["reachable"], true, "{state}");
    assert_eq!(state["lag_secs"], 0.0, "{state}");
    assert!(state.get("reason").is_none(), "{state}");
    let standby_db = standby_connection(&standby).await;
    pause_replay(&standby_db).await;

    // Written on the primary while the replica replays nothing.
    insert_product(&app.db, "b").await;
    let run_id: i64 = app
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "INSERT INTO ingest_runs (provider, trigger, mode, status, queued_at, pages, fetched, \
             inserted, updated, unchanged, superseded, rejected) \
             VALUES ('p', 'manual', 'full', 'succeeded', now(), 1, 0, 0, 0, 0, 0, 0) RETURNING id",
        ))
        .await
        .expect("insert a run")
        .expect("its id")
        .try_get("", "id")
        .expect("an id");
    let id = json!({ "id": run_id.to_string() });
    assert_eq!(primary_skus(&app).await, ["a", "b"]);
    // A query reads the replica: neither the product nor the run is there.
    assert_eq!(skus(&app).await, ["a"]);
    let run = app
        .query(
            "query($id: ID!) { ingestRun(id: $id) { id status } }",
            id.clone(),
        )
        .await;
    assert_eq!(run, json!({ "ingestRun": null }));
    // A mutation reads the primary: `cancelIngest` finds the run, and refuses because it has
    // ended (on the replica it would not have found it at all).
    let cancel = app
        .graphql(
            "mutation($id: ID!) { cancelIngest(id: $id) { id } }",
            id.clone(),
        )
        .await;
    assert_eq!(cancel["data"], Value::Null, "{cancel}");
    let errors = cancel["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{cancel}");
    assert_eq!(
        errors[0]["message"],
        format!("run {run_id} has already ended (succeeded)")
    );
    assert_eq!(errors[0]["extensions"]["code"], "BAD_USER_INPUT");
    // Still the replica's view while replay stays paused (and it stays within the lag bound).
    assert_eq!(skus(&app).await, ["a"]);

    resume_replay(&standby_db).await;
    wait_for(
        "the replica to replay b",
        Duration::from_secs(30),
        async || skus(&app).await == ["a", "b"],
    )
    .await;
    let run = app
        .query("query($id: ID!) { ingestRun(id: $id) { id status } }", id)
        .await;
    assert_eq!(
        run,
        json!({ "ingestRun": { "id": run_id.to_string(), "status": "SUCCEEDED" } })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_lagging_past_the_bound_is_skipped() {
    let Setup {
        primary: _primary,
        standby,
        app,
    } = setup(1).await;
    let standby_db = standby_connection(&standby).await;
    pause_replay(&standby_db).await;
    insert_product(&app.db, "b").await;

    // The replica holds `a` only, and its last replayed commit ages past 1 s.
    wait_for(
        "the replica skipped as lagging",
        Duration::from_secs(30),
        async || replica_state(&app).await["reason"] == "lagging",
    )
    .await;
    let state = replica_state(&app).await;
    assert_eq!(state["status"], "skipped", "{state}");
    assert_eq!(state["reachable"], true, "{state}");
    // Shown rounded to the millisecond: a lag of 1.0004 s is skipped and reads 1.0.
    assert!(state["lag_secs"].as_f64().expect("a lag") >= 1.0, "{state}");
    // Queries now go to the primary, which has both rows; more writes keep it so.
    assert_eq!(skus(&app).await, ["a", "b"]);
    insert_product(&app.db, "c").await;
    assert_eq!(skus(&app).await, ["a", "b", "c"]);
    assert_eq!(skus(&app).await, ["a", "b", "c"]);

    resume_replay(&standby_db).await;
    wait_for(
        "the replica in use again",
        Duration::from_secs(30),
        async || replica_state(&app).await["status"] == "used",
    )
    .await;
    assert_eq!(replica_state(&app).await["lag_secs"], 0.0);
    assert_eq!(skus(&app).await, ["a", "b", "c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_survive_the_loss_of_the_replica() {
    let Setup {
        primary: _primary,
        standby,
        app,
    } = setup(60).await;
    standby.stop_immediate();
    insert_product(&app.db, "b").await;
    // At once, before a check has noticed: the query finds its replica gone and is answered
    // by the primary, without an error.
    assert_eq!(skus(&app).await, ["a", "b"]);
    wait_for(
        "the replica reported down",
        Duration::from_secs(30),
        async || replica_state(&app).await["reason"] == "down",
    )
    .await;
    assert_eq!(
        replica_state(&app).await,
        json!({
            "database": format!("postgres 127.0.0.1:{}/postgres", port_of(&standby)),
            "reachable": false,
            "lag_secs": null,
            "status": "skipped",
            "reason": "down",
        })
    );
    for _ in 0..3 {
        assert_eq!(skus(&app).await, ["a", "b"]);
    }

    standby.start_again();
    wait_for(
        "the replica in use again",
        Duration::from_secs(60),
        async || replica_state(&app).await["status"] == "used",
    )
    .await;
    wait_for(
        "the replica to catch up",
        Duration::from_secs(30),
        async || skus(&app).await == ["a", "b"],
    )
    .await;
    // Used again: with its replay paused, queries miss what the primary has since written.
    let standby_db = standby_connection(&standby).await;
    pause_replay(&standby_db).await;
    insert_product(&app.db, "c").await;
    assert_eq!(primary_skus(&app).await, ["a", "b", "c"]);
    assert_eq!(skus(&app).await, ["a", "b"]);
    resume_replay(&standby_db).await;
    wait_for(
        "the replica to replay c",
        Duration::from_secs(30),
        async || skus(&app).await == ["a", "b", "c"],
    )
    .await;
}

fn port_of(cluster: &PrivateCluster) -> u16 {
    cluster
        .url()
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|port| port.parse().ok())
        .expect("a port in the cluster's URL")
}
