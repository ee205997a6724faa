//! `/healthz` (the process answers) and `/readyz` (the database answers and its schema is
//! current; with read replicas, how each one is doing — a replica never makes the server not
//! ready, since the primary answers whatever a replica cannot).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::db;
use crate::startup::AppState;

pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let (status, mut body) = match readiness(&state).await {
        Ok(()) => (StatusCode::OK, json!({ "status": "ready" })),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "not ready", "reason": reason }),
        ),
    };
    if state.replicas.any() {
        body["replicas"] = json!(state.replicas.report());
    }
    (status, Json(body)).into_response()
}

async fn readiness(state: &AppState) -> Result<(), String> {
    if let Err(error) = state.db.execute_unprepared("SELECT 1").await {
        tracing::warn!(error = %db::brief(&error), "readiness: database unreachable");
        return Err("database unreachable".to_string());
    }
    match db::pending_migrations(&state.db).await {
        Ok(pending) if pending.is_empty() => Ok(()),
        Ok(pending) => Err(format!(
            "{} migration(s) not applied: {}; run `tributary migrate`",
            pending.len(),
            pending.join(", ")
        )),
        Err(error) => {
            tracing::warn!(error = %db::brief(&error), "readiness: cannot read migrations");
            Err("cannot read the migration table".to_string())
        }
    }
}
