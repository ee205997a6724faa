//! `POST /submit` and `/submit/batch` over real HTTP on both databases: the original service's
//! handler cases, durability before acknowledgement, per-line batch answers, size limits,
//! backpressure, and the GraphQL side.

use std::time::Duration;

use crate::common::{Backend, TestApp};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, QueryOrder, TransactionTrait};
use serde_json::{Value, json};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/submit");

fn readme_example() -> Vec<u8> {
    std::fs::read(format!("{DATA}/readme_example_request.json")).expect("example body")
}

async fn post(app: &TestApp, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    app.client
        .post(format!("{}{path}", app.address))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

/// Every stored event as (ip, user agent, url, advertiser, metadata), in id order.
async fn rows(db: &DatabaseConnection) -> Vec<(String, String, String, String, Value)> {
    entity::event::Entity::find()
        .order_by_asc(entity::event::Column::Id)
        .all(db)
        .await
        .expect("events")
        .into_iter()
        .map(|e| {
            (
                e.ip_address,
                e.user_agent,
                e.referring_url,
                e.advertiser_id,
                e.metadata,
            )
        })
        .collect()
}

/// Makes every insert into `events` fail with "service error", as the original handler test's
/// mocked service did.
async fn break_the_service(db: &DatabaseConnection, backend: Backend) {
    let statements: &[&str] = match backend {
        Backend::Postgres => &[
            "CREATE FUNCTION refuse_events() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'service error'; END $$",
            "CREATE TRIGGER refuse BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_events()",
        ],
        Backend::Sqlite => &[
            "CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'service error'); END",
        ],
    };
    for sql in statements {
        db.execute_unprepared(sql).await.expect("trigger");
    }
}

async fn seed_handler_cases(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(format!("{DATA}/handler_test_cases.json")).expect("cases"),
    )
    .expect("JSON");
    assert_eq!(cases.len(), 4);
    for case in &cases {
        let name = case["name"].as_str().expect("name");
        let body = match case.get("raw_body") {
            Some(raw) => raw.as_str().expect("raw body").to_string(),
            None => case["body"].to_string(),
        };
        let failing = case.get("mock_service_error").is_some();
        if failing {
            break_the_service(&app.db, backend).await;
        }
        let response = post(&app, "/submit", body).await;
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        assert_eq!(
            u64::from(status),
            case["expected_status"].as_u64().expect("status"),
            "{name}: {text}"
        );
        match name {
            "Invalid JSON" => {
                let body: Value = serde_json::from_str(&text).expect("JSON body");
                assert_eq!(body, case["expected_body"], "{name}");
            }
            "Validation Error" => {
                // The original's text was Go's validator message; ours names each field.
                let body: Value = serde_json::from_str(&text).expect("JSON body");
                assert_eq!(
                    body,
                    json!({
                        "error": "Invalid fields: ip_address",
                        "fields": { "ip_address": "must be an IPv4 address such as 192.168.1.1, got \"invalid-ip\"" },
                    }),
                    "{name}"
                );
            }
            "Service Error" => {
                let body: Value = serde_json::from_str(&text).expect("JSON body");
                assert_eq!(body, case["expected_body"], "{name}");
                let drop = match backend {
                    Backend::Postgres => "DROP TRIGGER refuse ON events",
                    Backend::Sqlite => "DROP TRIGGER refuse",
                };
                app.db.execute_unprepared(drop).await.expect("drop trigger");
            }
            "Successful Request" => assert_eq!(text, "", "{name}: 204 has no body"),
            other => panic!("unknown case {other}"),
        }
        // Only the successful request stored anything.
        let stored = rows(&app.db).await.len();
        assert_eq!(stored, usize::from(name == "Successful Request"), "{name}");
    }
    assert_eq!(
        rows(&app.db).await,
        vec![(
            "192.168.1.1".into(),
            "Mozilla/5.0".into(),
            "http://example.com".into(),
            "123456".into(),
            json!({"campaign": "summer_sale", "clicks": 120}),
        )]
    );
}
on_both_databases!(seed_handler_cases);

async fn readme_example_is_stored_before_204(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = Utc::now();
    let response = post(&app, "/submit", readme_example()).await;
    assert_eq!(response.status(), 204);
    // Committed by the time the 204 arrives: the test's own connection sees it at once.
    let stored = entity::event::Entity::find()
        .all(&app.db)
        .await
        .expect("events");
    let after = Utc::now();
    assert_eq!(stored.len(), 1);
    let event = &stored[0];
    assert_eq!(
        (
            event.ip_address.as_str(),
            event.user_agent.as_str(),
            event.referring_url.as_str(),
            event.advertiser_id.as_str(),
            &event.metadata,
        ),
        (
            "192.168.1.1",
            "Mozilla/5.0",
            "https://example.com",
            "12345",
            &json!({"key": "value"}),
        )
    );
    assert!(before <= event.received_at && event.received_at <= after);

    let data = app
        .query(
            r#"query ($ad: String!) {
              events(where: { advertiserId: { eq: $ad } }) {
                nodes { id ipAddress userAgent referringUrl advertiserId metadata receivedAt }
              }
              none: events(where: { ipAddress: { eq: "10.0.0.1" } }) { nodes { id } }
            }"#,
            json!({ "ad": "12345" }),
        )
        .await;
    let received: DateTime<Utc> = data["events"]["nodes"][0]["receivedAt"]
        .as_str()
        .expect("time")
        .parse()
        .expect("RFC 3339");
    assert_eq!(
        received.timestamp_micros(),
        event.received_at.timestamp_micros()
    );
    assert_eq!(
        data,
        json!({
            "events": { "nodes": [{
                "id": event.event_id.clone(),
                "ipAddress": "192.168.1.1",
                "userAgent": "Mozilla/5.0",
                "referringUrl": "https://example.com",
                "advertiserId": "12345",
                "metadata": { "key": "value" },
                "receivedAt": data["events"]["nodes"][0]["receivedAt"].clone(),
            }] },
            "none": { "nodes": [] },
        })
    );
}
on_both_databases!(readme_example_is_stored_before_204);

async fn many_concurrent_requests_are_each_stored_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut requests = Vec::new();
    for i in 0..200 {
        let client = app.client.clone();
        let url = format!("{}/submit", app.address);
        requests.push(tokio::spawn(async move {
            let body = json!({
                "ip_address": format!("10.0.{}.{}", i / 256, i % 256),
                "user_agent": "load",
                "referring_url": "https://example.com/a",
                "advertiser_id": format!("ad-{}", i % 7),
                "metadata": { "i": i },
            });
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("POST")
                .status()
                .as_u16()
        }));
    }
    for request in requests {
        assert_eq!(request.await.expect("task"), 204);
    }
    let stored = rows(&app.db).await;
    assert_eq!(stored.len(), 200);
    let mut seen: Vec<i64> = stored
        .iter()
        .map(|(_, _, _, _, metadata)| metadata["i"].as_i64().expect("i"))
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..200).collect::<Vec<_>>());
    for (ip, _, _, advertiser, metadata) in &stored {
        let i = metadata["i"].as_i64().expect("i");
        assert_eq!(ip, &format!("10.0.{}.{}", i / 256, i % 256));
        assert_eq!(advertiser, &format!("ad-{}", i % 7));
    }
}
on_both_databases!(many_concurrent_requests_are_each_stored_once);

async fn batch_stores_good_lines_and_names_bad_ones(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let good = |n: u32| {
        json!({
            "ip_address": format!("192.168.1.{n}"),
            "user_agent": "Mozilla/5.0",
            "referring_url": "https://example.com/p",
            "advertiser_id": "a1",
            "metadata": { "n": n },
        })
        .to_string()
    };
    let invalid = json!({
        "ip_address": "1.2.3",
        "user_agent": "Mozilla/5.0",
        "referring_url": "/relative",
        "advertiser_id": "a1",
        "metadata": { "n": 4 },
    })
    .to_string();
    let body = format!(
        "{}\n{{not json\r\n{}\r\n\n{}\n{}\n",
        good(1),
        good(3),
        invalid,
        good(6)
    );
    let response = post(&app, "/submit/batch", body).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("JSON");
    let stored = entity::event::Entity::find()
        .order_by_asc(entity::event::Column::Id)
        .all(&app.db)
        .await
        .expect("events");
    assert_eq!(stored.len(), 3);
    let ids: Vec<String> = stored.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(
        answer,
        json!({
            "stored": 3,
            "rejected": 2,
            "results": [
                { "line": 1, "status": 204, "id": ids[0] },
                { "line": 2, "status": 400, "error": "Invalid JSON" },
                { "line": 3, "status": 204, "id": ids[1] },
                { "line": 5, "status": 400, "error": "Invalid fields: ip_address, referring_url",
                  "fields": {
                    "ip_address": "must be an IPv4 address such as 192.168.1.1, got \"1.2.3\"",
                    "referring_url": "must be an absolute http or https URL, got \"/relative\"",
                  } },
                { "line": 6, "status": 204, "id": ids[2] },
            ],
        })
    );
    let ips: Vec<(&str, i64)> = stored
        .iter()
        .map(|e| (e.ip_address.as_str(), e.metadata["n"].as_i64().expect("n")))
        .collect();
    assert_eq!(
        ips,
        vec![("192.168.1.1", 1), ("192.168.1.3", 3), ("192.168.1.6", 6)]
    );

    // Nothing valid at all: every line answered, nothing stored.
    let response = post(&app, "/submit/batch", "[]\n{}\n").await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(answer["stored"], 0);
    assert_eq!(
        answer["results"][0],
        json!({"line": 1, "status": 400, "error": "Invalid JSON"})
    );
    assert_eq!(answer["results"][1]["status"], 400);
    assert_eq!(
        answer["results"][1]["error"],
        "Invalid fields: advertiser_id, ip_address, metadata, referring_url, user_agent"
    );
    let response = post(&app, "/submit/batch", "\n \n").await;
    assert_eq!(response.status(), 400);
    assert_eq!(rows(&app.db).await.len(), 3);

    // A NUL character (PostgreSQL stores none) is refused with its field named, and the good
    // line beside it is stored: it must not fail the batch it would have shared.
    let nul = good(7).replace("Mozilla/5.0", "Mozilla\\u0000");
    let response = post(&app, "/submit/batch", format!("{nul}\n{}\n", good(8))).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(answer["stored"], 1);
    assert_eq!(
        answer["results"][0],
        json!({ "line": 1, "status": 400, "error": "Invalid fields: user_agent",
                "fields": { "user_agent": "must not contain a NUL character (\\u0000)" } })
    );
    let response = post(&app, "/submit", nul).await;
    assert_eq!(response.status(), 400);
    assert_eq!(rows(&app.db).await.len(), 4);
}
on_both_databases!(batch_stores_good_lines_and_names_bad_ones);

async fn over_size_body_is_413(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.http.body_limit_bytes = 2048).await;
    let body = |pad: usize| {
        json!({
            "ip_address": "192.168.1.1",
            "user_agent": "Mozilla/5.0",
            "referring_url": "https://example.com",
            "advertiser_id": "12345",
            "metadata": { "pad": "x".repeat(pad) },
        })
        .to_string()
    };
    let fits = body(1800);
    assert!(fits.len() <= 2048);
    assert_eq!(post(&app, "/submit", fits).await.status(), 204);
    let too_big = body(2100);
    assert!(too_big.len() > 2048);
    assert_eq!(post(&app, "/submit", too_big.clone()).await.status(), 413);
    assert_eq!(post(&app, "/submit/batch", too_big).await.status(), 413);
    assert_eq!(rows(&app.db).await.len(), 1);
}
on_both_databases!(over_size_body_is_413);

/// Holds the write lock on `events` (PostgreSQL: a table lock; SQLite: the database's write
/// lock) until the returned transaction ends.
async fn hold_events(db: &DatabaseConnection, backend: Backend) -> sea_orm::DatabaseTransaction {
    let txn = db.begin().await.expect("begin");
    let sql = match backend {
        Backend::Postgres => "LOCK TABLE events IN EXCLUSIVE MODE",
        // Any write takes SQLite's one write lock.
        Backend::Sqlite => "CREATE TABLE hold_the_write_lock (x integer)",
    };
    txn.execute_unprepared(sql).await.expect("lock");
    txn
}

async fn a_full_queue_answers_503(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.events.queue_capacity = 2;
        s.events.max_batch = 1;
    })
    .await;
    let lock = hold_events(&app.db, backend).await;

    // Requests until one is refused: the writer is stuck on the lock, so each earlier one
    // waits (it holds a place in the queue) and at most two places exist.
    let mut waiting = Vec::new();
    let refused = loop {
        assert!(
            waiting.len() <= 2,
            "more requests queued than the queue holds"
        );
        let client = app.client.clone();
        let url = format!("{}/submit", app.address);
        let n = waiting.len();
        let mut request = tokio::spawn(async move {
            let body = json!({
                "ip_address": format!("10.1.1.{n}"),
                "user_agent": "u",
                "referring_url": "http://example.com",
                "advertiser_id": "held",
                "metadata": { "n": n },
            });
            client.post(url).json(&body).send().await.expect("POST")
        });
        match tokio::time::timeout(Duration::from_millis(500), &mut request).await {
            Ok(response) => break response.expect("task"),
            Err(_) => waiting.push(request),
        }
    };
    assert_eq!(refused.status(), 503);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({"error": "the event queue is full; retry shortly"})
    );
    assert_eq!(
        waiting.len(),
        2,
        "both places were taken before the refusal"
    );

    // Nothing is acknowledged while the writer is held up.
    lock.rollback().await.expect("release");
    for request in waiting {
        let response = request.await.expect("task");
        assert_eq!(response.status(), 204);
    }
    let stored = rows(&app.db).await;
    let mut ips: Vec<String> = stored.into_iter().map(|r| r.0).collect();
    ips.sort();
    assert_eq!(ips, vec!["10.1.1.0".to_string(), "10.1.1.1".to_string()]);
    // And with room again, the next request is stored.
    assert_eq!(post(&app, "/submit", readme_example()).await.status(), 204);
    assert_eq!(rows(&app.db).await.len(), 3);
}
on_both_databases!(a_full_queue_answers_503);

async fn submit_event_mutation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    const SUBMIT: &str = r#"mutation ($input: EventInput!) {
      submitEvent(input: $input) { id ipAddress referringUrl advertiserId metadata }
    }"#;
    let data = app
        .query(
            SUBMIT,
            json!({ "input": {
                "ipAddress": "192.168.1.1", "userAgent": "Mozilla/5.0",
                "referringUrl": "https://example.com", "advertiserId": "12345",
                "metadata": { "key": "value" },
            } }),
        )
        .await;
    let stored = entity::event::Entity::find()
        .all(&app.db)
        .await
        .expect("events");
    assert_eq!(stored.len(), 1);
    assert_eq!(
        data,
        json!({ "submitEvent": {
            "id": stored[0].event_id.clone(), "ipAddress": "192.168.1.1",
            "referringUrl": "https://example.com", "advertiserId": "12345",
            "metadata": { "key": "value" },
        } })
    );
    let body = app
        .graphql(
            SUBMIT,
            json!({ "input": {
                "ipAddress": "192.168.1", "userAgent": "", "referringUrl": "https://example.com",
                "advertiserId": "1", "metadata": [1],
            } }),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(
        body["errors"][0]["message"],
        "input.ipAddress: must be an IPv4 address such as 192.168.1.1, got \"192.168.1\"; input.metadata: must be a JSON object; input.userAgent: must not be empty"
    );
    assert_eq!(rows(&app.db).await.len(), 1);
}
on_both_databases!(submit_event_mutation);

async fn submit_event_needs_the_token_when_one_is_set(backend: Backend) {
    let token = "a-long-enough-admin-token";
    let app = TestApp::spawn_with(backend, |s| {
        s.auth.admin_tokens = vec![secrecy::SecretString::from(token.to_string())];
    })
    .await;
    let body = app
        .graphql(
            r#"mutation { submitEvent(input: { ipAddress: "1.2.3.4", userAgent: "u",
                referringUrl: "http://a.example", advertiserId: "a", metadata: {} }) { id } }"#,
            json!({}),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    // `/submit` stays open to event producers.
    assert_eq!(post(&app, "/submit", readme_example()).await.status(), 204);
    assert_eq!(rows(&app.db).await.len(), 1);
}
on_both_databases!(submit_event_needs_the_token_when_one_is_set);

async fn shutdown_answers_what_is_queued(backend: Backend) {
    let (url, _dir) = crate::common::database_url(backend).await;
    let app = tributary::startup::Application::build(crate::common::settings(&url))
        .await
        .expect("the application starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let db = sea_orm::Database::connect(url.as_str())
        .await
        .expect("connect");
    let lock = hold_events(&db, backend).await;

    let client = reqwest::Client::new();
    let request = tokio::spawn({
        let client = client.clone();
        let url = format!("{address}/submit");
        async move {
            client
                .post(url)
                .body(readme_example())
                .send()
                .await
                .expect("POST")
                .status()
        }
    });
    // The event is queued behind the lock; then the server is told to stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!request.is_finished());
    stop.send(()).expect("stop");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !server.is_finished(),
        "the server waits for the queued event"
    );
    lock.rollback().await.expect("release");

    assert_eq!(request.await.expect("task"), 204);
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops")
        .expect("task")
        .expect("clean stop");
    assert_eq!(rows(&db).await.len(), 1);
    assert!(
        client
            .post(format!("{address}/submit"))
            .body(readme_example())
            .send()
            .await
            .is_err(),
        "nothing listens after the stop"
    );
}
on_both_databases!(shutdown_answers_what_is_queued);
