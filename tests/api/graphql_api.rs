//! The GraphQL shell: error codes, limits, and keyset pagination over real rows.

use crate::common::{Backend, TestApp};
use chrono::{TimeZone, Utc};
use entity::ingest_run::{self, RunMode, RunStatus, RunTrigger};
use sea_orm::{ActiveModelTrait, DatabaseConnection, Set};
use serde_json::{Value, json};

async fn insert_run(db: &DatabaseConnection, provider: &str) -> i64 {
    let run = ingest_run::ActiveModel {
        provider: Set(provider.to_string()),
        trigger: Set(RunTrigger::Cli),
        mode: Set(RunMode::Full),
        status: Set(RunStatus::Succeeded),
        queued_at: Set(Utc
            .with_ymd_and_hms(2026, 11, 1, 12, 0, 0)
            .single()
            .expect("time")),
        started_at: Set(None),
        finished_at: Set(None),
        pages: Set(0),
        fetched: Set(3),
        inserted: Set(2),
        updated: Set(1),
        unchanged: Set(0),
        rejected: Set(0),
        error: Set(None),
        owner: Set(None),
        ..Default::default()
    };
    run.insert(db).await.expect("insert run").id
}

const PAGE: &str = r#"
query Page($first: Int, $after: String, $last: Int, $before: String) {
  ingestRuns(first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { id provider } }
    nodes { id }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"#;

fn ids(connection: &Value) -> Vec<i64> {
    connection["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["id"].as_str().expect("id").parse().expect("number"))
        .collect()
}

async fn paging_visits_every_row_once_while_rows_arrive(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut expected = Vec::new();
    for _ in 0..25 {
        expected.push(insert_run(&app.db, "seed").await);
    }
    expected.reverse(); // newest first

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let data = app.query(PAGE, json!({ "first": 7, "after": after })).await;
        let connection = &data["ingestRuns"];
        let page = ids(connection);
        // Edges and nodes agree.
        let edge_ids: Vec<i64> = connection["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| {
                e["node"]["id"]
                    .as_str()
                    .expect("id")
                    .parse()
                    .expect("number")
            })
            .collect();
        assert_eq!(edge_ids, page);
        seen.extend(page);
        pages += 1;
        // Rows written between page requests must not shift later pages.
        insert_run(&app.db, "late").await;
        if !connection["pageInfo"]["hasNextPage"]
            .as_bool()
            .expect("bool")
        {
            break;
        }
        after = Some(
            connection["pageInfo"]["endCursor"]
                .as_str()
                .expect("cursor")
                .to_string(),
        );
    }
    assert_eq!(pages, 4);
    assert_eq!(seen, expected);
}
on_both_databases!(paging_visits_every_row_once_while_rows_arrive);

async fn backward_paging_mirrors_forward(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut all = Vec::new();
    for _ in 0..10 {
        all.push(insert_run(&app.db, "seed").await);
    }
    all.reverse(); // newest first, the list's order

    let last = app.query(PAGE, json!({ "last": 4 })).await;
    let connection = &last["ingestRuns"];
    assert_eq!(ids(connection), all[6..].to_vec());
    assert_eq!(connection["pageInfo"]["hasPreviousPage"], true);
    assert_eq!(connection["pageInfo"]["hasNextPage"], false);

    let before = connection["pageInfo"]["startCursor"]
        .as_str()
        .expect("cursor");
    let previous = app
        .query(PAGE, json!({ "last": 4, "before": before }))
        .await;
    assert_eq!(ids(&previous["ingestRuns"]), all[2..6].to_vec());
    assert_eq!(previous["ingestRuns"]["pageInfo"]["hasNextPage"], true);

    // The first page, read forward, ends where the backward read starts.
    let first = app.query(PAGE, json!({ "first": 2 })).await;
    assert_eq!(ids(&first["ingestRuns"]), all[..2].to_vec());
    assert_eq!(first["ingestRuns"]["pageInfo"]["hasPreviousPage"], false);
}
on_both_databases!(backward_paging_mirrors_forward);

async fn page_arguments_are_checked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    insert_run(&app.db, "seed").await;
    let cases = [
        (
            json!({ "first": 1001 }),
            "`first` must be between 0 and 1000, got 1001",
        ),
        (
            json!({ "last": -1 }),
            "`last` must be between 0 and 1000, got -1",
        ),
        (
            json!({ "first": 1, "last": 1 }),
            "use either `first`/`after` or `last`/`before`, not both",
        ),
        (
            json!({ "after": "not-a-cursor" }),
            "`after` is not a cursor from this list (cursors are opaque: pass back `endCursor` or `startCursor` as received)",
        ),
    ];
    for (variables, message) in cases {
        let body = app.graphql(PAGE, variables.clone()).await;
        assert_eq!(body["errors"][0]["message"], message, "{variables}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    }
    // Default page size is 100: with one row, one row and no next page.
    let data = app.query(PAGE, json!({})).await;
    assert_eq!(ids(&data["ingestRuns"]).len(), 1);
    assert_eq!(data["ingestRuns"]["pageInfo"]["hasNextPage"], false);
}
on_both_databases!(page_arguments_are_checked);

async fn errors_carry_codes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = insert_run(&app.db, "seed").await;

    let found = app
        .query(
            "query($id: ID!) { ingestRun(id: $id) { id provider mode status fetched inserted updated queuedAt } }",
            json!({ "id": id.to_string() }),
        )
        .await;
    assert_eq!(
        found["ingestRun"],
        json!({
            "id": id.to_string(), "provider": "seed", "mode": "FULL", "status": "SUCCEEDED",
            "fetched": 3, "inserted": 2, "updated": 1, "queuedAt": "2026-11-01T12:00:00Z"
        })
    );

    // A look-up by key answers null for a missing row, as GraphQL clients expect.
    let missing = app
        .query("{ ingestRun(id: \"999999\") { id } }", json!({}))
        .await;
    assert_eq!(missing, json!({ "ingestRun": null }));

    let bad = app
        .graphql("{ ingestRun(id: \"x1\") { id } }", json!({}))
        .await;
    assert_eq!(bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(
        bad["errors"][0]["message"],
        "`id` must be a run id such as \"42\", got \"x1\""
    );

    let syntax = app.graphql("{ serverInfo { ", json!({})).await;
    assert_eq!(syntax["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    let info = app
        .query("{ serverInfo { version database } }", json!({}))
        .await;
    let kind = match backend {
        Backend::Sqlite => "SQLITE",
        Backend::Postgres => "POSTGRES",
    };
    assert_eq!(
        info["serverInfo"],
        json!({ "version": env!("CARGO_PKG_VERSION"), "database": kind })
    );
}
on_both_databases!(errors_carry_codes);

async fn depth_and_complexity_are_limited(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.graphql.max_depth = 3;
        s.graphql.max_complexity = 50;
    })
    .await;
    let deep = app
        .graphql(
            "{ ingestRuns(first: 1) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(deep["errors"][0]["message"], "Query is nested too deep.");
    assert_eq!(deep["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    // 100 (default page) × fields is far above 50.
    let wide = app
        .graphql("{ ingestRuns { nodes { id provider } } }", json!({}))
        .await;
    assert_eq!(wide["errors"][0]["message"], "Query is too complex.");
    // A small page of the same fits.
    app.query(
        "{ ingestRuns(first: 5) { nodes { id provider } } }",
        json!({}),
    )
    .await;
}
on_both_databases!(depth_and_complexity_are_limited);

async fn database_errors_stay_out_of_responses(backend: Backend) {
    use sea_orm::ConnectionTrait;
    let app = TestApp::spawn(backend).await;
    // Break the schema under the server so the next query fails inside the database.
    app.db
        .execute_unprepared("DROP TABLE ingest_runs")
        .await
        .expect("drop");
    let body = app
        .graphql("{ ingestRuns { nodes { id } } }", json!({}))
        .await;
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "INTERNAL");
    let message = error["message"].as_str().expect("message");
    assert!(message.starts_with("internal error (id "), "{message}");
    assert!(!message.contains("ingest_runs"), "{message}");
}
on_both_databases!(database_errors_stay_out_of_responses);

/// List nodes that select only columns are written in one pass, others through their
/// resolvers (forced here by an inline fragment): every list must answer the same both ways.
async fn every_list_answers_the_same_through_columns_and_resolvers(backend: Backend) {
    use tributary::entities::EntityKind;
    let app = TestApp::spawn(backend).await;
    let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");
    for (kind, path) in [
        (
            EntityKind::Token,
            concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample/tokens.csv").to_string(),
        ),
        (
            EntityKind::Product,
            format!("{shared}/products/products_upsert_edits.csv"),
        ),
    ] {
        tributary::import::import_file(&app.db, kind, std::path::Path::new(&path), |_| {})
            .await
            .expect("import");
    }
    let example =
        std::fs::read(format!("{shared}/submit/readme_example_request.json")).expect("example");
    for _ in 0..3 {
        let response = app
            .client
            .post(format!("{}/submit", app.address))
            .header("content-type", "application/json")
            .body(example.clone())
            .send()
            .await
            .expect("POST /submit");
        assert_eq!(response.status(), 204);
    }
    for (list, node, fields, rows) in [
        (
            "tokens(first: 100)",
            "Token",
            "address symbol name decimals totalSupply blockNumber blockTimestamp",
            76,
        ),
        (
            "products(first: 100)",
            "Product",
            "sku name description updatedAt provider",
            6,
        ),
        ("productCounts(first: 100)", "ProductCount", "name count", 5),
        (
            "events(first: 100)",
            "Event",
            "id ipAddress userAgent referringUrl advertiserId metadata receivedAt",
            3,
        ),
    ] {
        let data = app
            .query(
                &format!(
                    "{{ columns: {list} {{ nodes {{ __typename {fields} }} }}
                        resolved: {list} {{ nodes {{ ... on {node} {{ __typename {fields} }} }} }} }}"
                ),
                json!({}),
            )
            .await;
        let columns = data["columns"]["nodes"].as_array().expect("nodes");
        assert_eq!(columns.len(), rows, "{list}");
        assert_eq!(data["columns"], data["resolved"], "{list}");
        assert!(columns.iter().all(|n| n["__typename"] == node), "{list}");
    }
}
on_both_databases!(every_list_answers_the_same_through_columns_and_resolvers);
