//! `POST /graphql`: runs one operation, records it, and makes sure every error has a code.

use std::time::Instant;

use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::State;

use crate::graphql::error::ensure_codes;
use crate::metrics::record_graphql;
use crate::startup::AppState;

pub async fn execute(State(state): State<AppState>, request: GraphQLRequest) -> GraphQLResponse {
    let request = request.into_inner();
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
    response.into()
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
