//! `POST /ingest/{provider}`: records pushed to a `push` provider, as a JSON array, one JSON
//! object, or JSON lines. Needs the admin token like mutations do.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::cross_origin::{Accepts, require_json};
use crate::auth::Caller;
use crate::providers::definition::Source;
use crate::sources::json;
use crate::startup::AppState;

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

pub async fn ingest(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = require_json(&headers, Accepts::JsonOrLines) {
        return refused;
    }
    let caller: Caller = state.policy.caller_of(&headers);
    if !state.policy.may_mutate(caller) {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication required: send `Authorization: Bearer <token>`".into(),
        );
    }
    let Some(provider) = state.runner.provider(&name) else {
        return error(StatusCode::NOT_FOUND, format!("no provider named {name:?}"));
    };
    if !matches!(provider.def.source, Source::Push(_)) {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "provider {name:?} is not a push provider (its source.kind is {})",
                provider.source_kind()
            ),
        );
    }
    let records = match parse_body(&body) {
        Ok(records) => records,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match crate::ingest::push(&state.db, &provider, state.runner.host_rules(), records).await {
        Ok(summary) if summary.error.is_none() => (
            StatusCode::OK,
            Json(json!({
                "run": summary.run_id,
                "received": summary.fetched,
                "inserted": summary.counts.inserted,
                "updated": summary.counts.updated,
                "unchanged": summary.counts.unchanged,
                "superseded": summary.counts.superseded,
                "rejected": summary.rejected,
            })),
        )
            .into_response(),
        Ok(summary) => {
            tracing::error!(provider = %name, run_id = summary.run_id, error = ?summary.error, "push batch failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the batch was not stored (run {}); retry it",
                    summary.run_id
                ),
            )
        }
        Err(e) => {
            tracing::error!(provider = %name, error = %e, "push batch failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the batch was not stored; retry it".into(),
            )
        }
    }
}

/// A JSON array, a single object, or JSON lines (one value per line).
fn parse_body(body: &[u8]) -> Result<Vec<Value>, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("body is not UTF-8: {e}"))?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err("empty body: send a JSON array, a JSON object or JSON lines".into());
    }
    if trimmed.starts_with('[') {
        return match json::parse(trimmed) {
            Ok(Value::Array(items)) => Ok(items),
            Ok(_) => Err("expected a JSON array".into()),
            Err(e) => Err(format!("bad JSON: {e}")),
        };
    }
    if trimmed.starts_with('{') {
        // One object, possibly spread over several lines.
        if let Ok(value) = json::parse(trimmed) {
            return Ok(vec![value]);
        }
    }
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| json::parse(line).map_err(|e| format!("line {}: bad JSON: {e}", n + 1)))
        .collect()
}
