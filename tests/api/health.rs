//! `/healthz`, `/readyz` and `/metrics` as operators and load balancers use them.

use crate::common::{Backend, TestApp};
use migration::MigratorTrait;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

async fn healthz_and_readyz_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<Value>().await.expect("json"),
        json!({"status": "ok"})
    );
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<Value>().await.expect("json"),
        json!({"status": "ready"})
    );
}
on_both_databases!(healthz_and_readyz_answer);

async fn readyz_reports_unapplied_migrations(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Roll the last migration back behind the server's back.
    migration::Migrator::down(&app.db, Some(1))
        .await
        .expect("roll back");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["status"], "not ready");
    // Whichever migration is the newest.
    let last = migration::Migrator::migrations()
        .last()
        .map(|m| m.name().to_string())
        .expect("migrations");
    assert_eq!(
        body["reason"],
        format!("1 migration(s) not applied: {last}; run `tributary migrate`")
    );
}
on_both_databases!(readyz_reports_unapplied_migrations);

async fn readyz_without_the_migration_table_reports_every_migration_pending(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let table = "seaql_migrations";
    // Without its migration table the server cannot tell whether the schema is current.
    app.db
        .execute_unprepared(&format!("DROP TABLE {table}"))
        .await
        .expect("drop");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.expect("json");
    let all: Vec<String> = migration::Migrator::migrations()
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    assert_eq!(
        body,
        json!({
            "status": "not ready",
            "reason": format!(
                "{} migration(s) not applied: {}; run `tributary migrate`",
                all.len(),
                all.join(", ")
            ),
        })
    );
}
on_both_databases!(readyz_without_the_migration_table_reports_every_migration_pending);

fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix('{')?;
        let (label_text, value) = rest.split_once("} ")?;
        labels
            .iter()
            .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")))
            .then(|| value.trim().parse().ok())?
    })
}

async fn metrics_count_requests_and_operations(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A name no other test uses: metrics are process-wide.
    let operation = format!("MetricsProbe{:?}", backend);
    for _ in 0..3 {
        app.query(&format!("query {operation} {{ __typename }}"), json!({}))
            .await;
    }
    let failed = app
        .graphql(&format!("query {operation} {{ nope }}"), json!({}))
        .await;
    assert_eq!(failed["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain"),
    );
    let text = response.text().await.expect("text");
    assert_eq!(
        metric_value(
            &text,
            "graphql_operations_total",
            &[("operation", &operation), ("outcome", "ok")]
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            "graphql_operations_total",
            &[("operation", &operation), ("outcome", "error")]
        ),
        Some(1.0)
    );
    let posts = metric_value(
        &text,
        "http_requests_total",
        &[("method", "POST"), ("route", "/graphql"), ("status", "200")],
    )
    .expect("POST /graphql counted");
    assert!(posts >= 4.0, "{posts}");
    assert!(text.contains("# TYPE http_request_duration_seconds histogram"));
    assert!(text.contains("# TYPE graphql_operation_duration_seconds histogram"));
}
on_both_databases!(metrics_count_requests_and_operations);
