//! A stand-in for an API that lists records changed since a time (the shape of Airbyte's
//! incremental streams: `GET /changes?since=T[&cursor=C]` answers the records whose
//! `updated_at` is at or after `T`, oldest first, a page at a time), and one that lists the
//! records of a time range (`GET /range?from=A&to=B`). It counts requests and records served,
//! and records can be changed or added between runs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

/// The first record's `updated_at`; record `i` was last changed `i` minutes later.
pub fn base_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    pub value: i64,
    pub updated_at: DateTime<Utc>,
}

impl Record {
    pub fn json(&self) -> Value {
        json!({
            "id": self.id,
            "value": self.value,
            "updated_at": self.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })
    }
}

struct Shared {
    /// Ordered by (`updated_at`, `id`), as the API lists them.
    records: Mutex<Vec<Record>>,
    page_size: usize,
    latency: Duration,
    requests: AtomicUsize,
    served: AtomicUsize,
    /// The `since` (or `from`/`to`) values requests carried, in order.
    seen: Mutex<Vec<String>>,
}

pub struct ChangesApi {
    pub base_url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ChangesApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ChangesApi {
    /// `count` records, `r000000` … with values `i * 10`, changed one a minute from
    /// [`base_time`]; pages of `page_size`; each answer delayed by `latency`.
    pub async fn start(count: usize, page_size: usize, latency: Duration) -> ChangesApi {
        let records = (0..count)
            .map(|i| Record {
                id: format!("r{i:06}"),
                value: i as i64 * 10,
                updated_at: base_time() + TimeDelta::minutes(i as i64),
            })
            .collect();
        let shared = Arc::new(Shared {
            records: Mutex::new(records),
            page_size,
            latency,
            requests: AtomicUsize::new(0),
            served: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the changes API on 127.0.0.1:0");
        let port = listener.local_addr().expect("address").port();
        let app = Router::new()
            .route("/changes", get(changes))
            .route("/range", get(range))
            .route("/touch", axum::routing::post(touch))
            .route("/stats", axum::routing::post(stats))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ChangesApi {
            base_url: format!("http://127.0.0.1:{port}"),
            shared,
            task,
        }
    }

    /// Changes every `every`-th record (value + 1), then adds `added` records, each one
    /// minute after the latest change so far. Returns the changed records' ids.
    pub fn touch(&self, every: usize, changed: usize, added: usize) -> Vec<String> {
        touch_records(&self.shared, every, changed, added)
    }

    /// Every record as the API holds it now, ordered by id.
    pub fn records(&self) -> Vec<Record> {
        let mut records = self.shared.records.lock().expect("lock").clone();
        records.sort_by(|a, b| a.id.cmp(&b.id));
        records
    }

    /// Records the API would list for `since`.
    pub fn count_since(&self, since: DateTime<Utc>) -> usize {
        let records = self.shared.records.lock().expect("lock");
        records.iter().filter(|r| r.updated_at >= since).count()
    }

    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    pub fn served(&self) -> usize {
        self.shared.served.load(Ordering::SeqCst)
    }

    /// The `since` / `from..to` values requests carried, and forgets them.
    pub fn take_seen(&self) -> Vec<String> {
        std::mem::take(&mut *self.shared.seen.lock().expect("lock"))
    }

    /// Forgets the request and record counts.
    pub fn reset_counts(&self) {
        self.shared.requests.store(0, Ordering::SeqCst);
        self.shared.served.store(0, Ordering::SeqCst);
    }
}

#[derive(Deserialize)]
struct ChangesQuery {
    since: Option<String>,
    cursor: Option<String>,
}

fn bad(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": message})),
    )
        .into_response()
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

async fn changes(State(shared): State<Arc<Shared>>, Query(q): Query<ChangesQuery>) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(shared.latency).await;
    let Some(since_text) = q.since else {
        return bad("since is required");
    };
    let Some(since) = parse_time(&since_text) else {
        return bad("since is not an RFC 3339 time");
    };
    if q.cursor.is_none() {
        shared.seen.lock().expect("lock").push(since_text);
    }
    let offset = match q.cursor.as_deref().map(str::parse::<usize>) {
        None => 0,
        Some(Ok(offset)) => offset,
        Some(Err(_)) => return bad("bad cursor"),
    };
    let records = shared.records.lock().expect("lock");
    let first = records.partition_point(|r| r.updated_at < since);
    let listed = &records[first..];
    let page: Vec<Value> = listed
        .iter()
        .skip(offset)
        .take(shared.page_size)
        .map(Record::json)
        .collect();
    shared.served.fetch_add(page.len(), Ordering::SeqCst);
    let end = offset + page.len();
    let next = (end < listed.len()).then(|| end.to_string());
    axum::Json(json!({ "records": page, "next": next })).into_response()
}

#[derive(Deserialize)]
struct RangeQuery {
    from: String,
    to: String,
}

async fn range(State(shared): State<Arc<Shared>>, Query(q): Query<RangeQuery>) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let (Some(from), Some(to)) = (parse_time(&q.from), parse_time(&q.to)) else {
        return bad("from and to must be RFC 3339 times");
    };
    shared
        .seen
        .lock()
        .expect("lock")
        .push(format!("{}..{}", q.from, q.to));
    let records = shared.records.lock().expect("lock");
    let page: Vec<Value> = records
        .iter()
        .filter(|r| r.updated_at >= from && r.updated_at < to)
        .map(Record::json)
        .collect();
    shared.served.fetch_add(page.len(), Ordering::SeqCst);
    axum::Json(json!({ "records": page })).into_response()
}

/// Changes every `every`-th record (value + 1), then adds `added` records, each one minute
/// after the latest change so far. Returns the changed records' ids.
fn touch_records(shared: &Shared, every: usize, changed: usize, added: usize) -> Vec<String> {
    let mut records = shared.records.lock().expect("lock");
    let mut clock = records
        .iter()
        .map(|r| r.updated_at)
        .max()
        .unwrap_or_else(base_time);
    let mut ids: Vec<String> = records
        .iter()
        .map(|r| r.id.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .step_by(every.max(1))
        .take(changed)
        .collect();
    for id in &ids {
        clock += TimeDelta::minutes(1);
        if let Some(record) = records.iter_mut().find(|r| &r.id == id) {
            record.value += 1;
            record.updated_at = clock;
        }
    }
    let first_new = records.len();
    for i in first_new..first_new + added {
        clock += TimeDelta::minutes(1);
        records.push(Record {
            id: format!("r{i:06}"),
            value: i as i64 * 10,
            updated_at: clock,
        });
        ids.push(format!("r{i:06}"));
    }
    records.sort_by(|a, b| (a.updated_at, &a.id).cmp(&(b.updated_at, &b.id)));
    ids.truncate(changed);
    ids
}

#[derive(Deserialize)]
struct TouchQuery {
    every: usize,
    changed: usize,
    #[serde(default)]
    added: usize,
}

/// `POST /touch?every=N&changed=M&added=K`: changes records while the stand-in runs (for the
/// benchmark, which drives it from a script).
async fn touch(State(shared): State<Arc<Shared>>, Query(q): Query<TouchQuery>) -> Response {
    let changed = touch_records(&shared, q.every, q.changed, q.added);
    axum::Json(json!({ "changed": changed.len() })).into_response()
}

/// `POST /stats`: the requests and records served since the last call, and resets them.
async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let requests = shared.requests.swap(0, Ordering::SeqCst);
    let served = shared.served.swap(0, Ordering::SeqCst);
    axum::Json(json!({ "requests": requests, "served": served })).into_response()
}
