//! `POST /submit` (one event, the original service's contract) and `POST /submit/batch` (JSON
//! lines, one answer per line). Both answer only once the events are committed. Open to
//! anyone, as the original was: event producers are not administrators.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::events::sink::SubmitError;
use crate::events::{self, NewEvent};
use crate::startup::AppState;

/// 204 once stored (or, with the Kafka sink, acknowledged by the broker); 400 naming each
/// invalid field (or `Invalid JSON`); 503 with `Retry-After` when the queue is full or the
/// database or broker is unreachable; 500 when the database refused the batch.
pub async fn submit(State(state): State<AppState>, body: Bytes) -> Response {
    let event = match events::parse(&body, chrono::Utc::now()) {
        Ok(event) => event,
        Err(invalid) => return (StatusCode::BAD_REQUEST, Json(invalid.to_json())).into_response(),
    };
    match state.events.submit(vec![event]).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => refused(error, state.events.retry_after_secs()),
    }
}

/// One event per line. Valid lines are stored together (one commit) and answered with their
/// ids; invalid ones are answered with the same reasons `/submit` gives. 200 with per-line
/// results when every valid line was stored.
pub async fn submit_batch(State(state): State<AppState>, body: Bytes) -> Response {
    let received_at = chrono::Utc::now();
    let mut results: Vec<Value> = Vec::new();
    let mut valid: Vec<(usize, NewEvent)> = Vec::new();
    for (index, line) in body.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match events::parse(line, received_at) {
            Ok(event) => {
                valid.push((results.len(), event));
                results.push(json!({ "line": index + 1, "status": 204 }));
            }
            Err(invalid) => {
                let mut answer = invalid.to_json();
                answer["line"] = json!(index + 1);
                answer["status"] = json!(400);
                results.push(answer);
            }
        }
    }
    if results.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "empty body: send one JSON event per line" })),
        )
            .into_response();
    }
    let rejected = results.len() - valid.len();
    let (slots, batch): (Vec<usize>, Vec<NewEvent>) = valid.into_iter().unzip();
    for (slot, event) in slots.iter().zip(&batch) {
        results[*slot]["id"] = json!(event.id.to_string());
    }
    let stored = batch.len();
    match state.events.submit(batch).await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "stored": stored, "rejected": rejected, "results": results })),
        )
            .into_response(),
        Err(error) => refused(error, state.events.retry_after_secs()),
    }
}

fn refused(error: SubmitError, retry_after_secs: u64) -> Response {
    match error {
        SubmitError::Busy
        | SubmitError::ShuttingDown
        | SubmitError::Unavailable
        | SubmitError::BrokerUnavailable => {
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": error.to_string() })),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        SubmitError::TooMany(_) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({ "error": error.to_string() })),
        )
            .into_response(),
        // The original service's answer; the log has the database's reason.
        SubmitError::Failed => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": "Internal Server Error" })),
        )
            .into_response(),
    }
}
