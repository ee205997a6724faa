//! `POST /graphql`: runs one operation, records it, and makes sure every error has a code.

use std::time::Instant;

use async_graphql_axum::GraphQLResponse;
use async_graphql_axum::rejection::GraphQLRejection;
use axum::body::Bytes;
use axum::extract::State;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{Data, Executor};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::WebSocketUpgrade;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::cross_origin::{Accepts, forbidden_origin, origin_allowed, require_json};
use crate::graphql::error::{ApiError, ensure_codes};
use crate::metrics::record_graphql;
use crate::startup::AppState;

/// The body is read whole first (like every other route) so one over `http.body_limit_bytes`
/// gets 413 whether or not it declared its length.
pub async fn execute(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = require_json(&headers, Accepts::Json) {
        return refused;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let request =
        match async_graphql::http::receive_body(content_type, body.as_ref(), Default::default())
            .await
        {
            Ok(request) => request,
            Err(error) => return GraphQLRejection(error).into_response(),
        };
    let caller = state.policy.caller_of(&headers);
    if !state.policy.may_query(caller) {
        let mut response = async_graphql::Response::from_errors(vec![
            async_graphql::Error::from(ApiError::Unauthenticated)
                .into_server_error(Default::default()),
        ]);
        ensure_codes(&mut response);
        return GraphQLResponse::from(response).into_response();
    }
    let request = request.data(caller);
    let operation = operation_label(
        request
            .operation_name
            .as_deref()
            .or_else(|| declared_name(&request.query)),
    );
    let start = Instant::now();
    let mut response = state.schema.execute(request).await;
    ensure_codes(&mut response);
    let outcome = if response.errors.is_empty() {
        "ok"
    } else {
        "error"
    };
    record_graphql(&operation, outcome, start.elapsed().as_secs_f64());
    GraphQLResponse::from(response).into_response()
}

/// `GET /graphql/ws`: subscriptions (graphql-transport-ws and the older graphql-ws). The admin
/// token comes in `connection_init` as `{"Authorization": "Bearer …"}` (or `{"token": "…"}`).
pub async fn subscriptions(
    State(state): State<AppState>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers, &state.allowed_origins) {
        return forbidden_origin(&headers);
    }
    let schema = state.schema.clone();
    let policy = state.policy.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |stream| {
            GraphQLWebSocket::new(stream, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let token = payload
                        .get("Authorization")
                        .or_else(|| payload.get("authorization"))
                        .and_then(|v| v.as_str())
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .or_else(|| payload.get("token").and_then(|v| v.as_str()))
                        .map(str::to_string);
                    let caller = policy.caller(token.as_deref());
                    if !policy.may_query(caller) {
                        return Err(async_graphql::Error::new("authentication required"));
                    }
                    let mut data = Data::default();
                    data.insert(caller);
                    Ok(data)
                })
                .serve()
        })
}

/// The operation's name as a metrics label: clients choose it, so keep it short and plain.
fn operation_label(name: Option<&str>) -> String {
    match name {
        Some(name) if !name.is_empty() => name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect(),
        _ => "anonymous".to_string(),
    }
}

/// The name a document declares for its first operation (`query Name { … }`), when the client
/// did not send `operationName`.
fn declared_name(query: &str) -> Option<&str> {
    let rest = query.trim_start();
    let rest = ["query", "mutation", "subscription"]
        .iter()
        .find_map(|kind| rest.strip_prefix(kind))?;
    let rest = rest.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_the_operation_name() {
        assert_eq!(
            operation_label(declared_name("query Runs($n: Int) { x }")),
            "Runs"
        );
        assert_eq!(operation_label(declared_name("  mutation Go{x}")), "Go");
        assert_eq!(
            operation_label(declared_name("{ __typename }")),
            "anonymous"
        );
        assert_eq!(operation_label(declared_name("query { x }")), "anonymous");
        assert_eq!(operation_label(Some("a-b c{d}")), "abcd");
    }
}
