//! The request body limit (`http.body_limit_bytes`), for every route.
//!
//! A body over the limit gets 413 whether or not it declared its length. The rest of such a
//! body is read and thrown away before the answer (up to [`DRAIN_FACTOR`] times the limit):
//! a server that answers and closes while the client is still writing makes the client see a
//! broken pipe instead of the 413, the race nginx's lingering close exists for. Bodies within
//! the limit are buffered here and handed on whole; every handler reads its body whole anyway.

use axum::Json;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::json;

/// How much of an oversized body is read and discarded, as a multiple of the limit, so its
/// client reads the 413. Past that the connection is closed without waiting for the rest.
pub const DRAIN_FACTOR: usize = 16;

/// Middleware: `limit` is `http.body_limit_bytes`.
pub async fn limit(State(limit): State<usize>, request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let drain_cap = limit.saturating_mul(DRAIN_FACTOR);
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared
        && declared > limit as u64
    {
        if declared > drain_cap as u64 {
            return too_large(limit, true);
        }
        let complete = drain(request.into_body().into_data_stream(), drain_cap).await;
        return too_large(limit, !complete);
    }
    let (parts, body) = request.into_parts();
    let mut stream = body.into_data_stream();
    // Copied out of the connection's read buffer at once, so the server can reuse that buffer,
    // into one of the declared size, so a large push is not copied again as it grows.
    let declared = declared.map_or(0, |d| usize::try_from(d).unwrap_or(limit));
    let mut buffer = Vec::with_capacity(declared.min(limit));
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            let error = json!({ "error": "the request body could not be read" });
            return (StatusCode::BAD_REQUEST, Json(error)).into_response();
        };
        if buffer.len() + chunk.len() > limit {
            let read = buffer.len() + chunk.len();
            drop(buffer);
            let complete = drain(stream, drain_cap.saturating_sub(read)).await;
            return too_large(limit, !complete);
        }
        buffer.extend_from_slice(&chunk);
    }
    let request = Request::from_parts(parts, Body::from(Bytes::from(buffer)));
    next.run(request).await
}

/// Reads and discards the rest of a body up to `cap` bytes; whether it ended within them.
async fn drain(mut stream: axum::body::BodyDataStream, cap: usize) -> bool {
    let mut left = cap;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) if chunk.len() <= left => left -= chunk.len(),
            _ => return false,
        }
    }
    true
}

fn too_large(limit: usize, close: bool) -> Response {
    let error = format!(
        "the request body is larger than the limit of {limit} bytes (http.body_limit_bytes)"
    );
    let mut response = (
        StatusCode::PAYLOAD_TOO_LARGE,
        Json(json!({ "error": error })),
    )
        .into_response();
    if close {
        // The rest of the body is still on the wire: this connection cannot carry another request.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
