//! What a web page of another origin, open in a browser on the user's machine, may make this
//! server do: nothing it was not allowed to. A browser sends a "simple" cross-origin request
//! (a POST with a `text/plain`, form or multipart body, or none) without asking first, and
//! opens a WebSocket to any origin; with no admin token on loopback (every quick start) such a
//! request would run mutations or push records. So:
//!
//! - `POST /graphql` and `POST /ingest/{provider}` take JSON content types only (and JSON
//!   lines for `/ingest`); anything else gets 415 before it runs. A browser sends those
//!   cross-origin only after a CORS preflight, which `http.cors_allowed_origins` decides.
//! - `/graphql/ws` refuses an `Origin` other than the server's own or a listed one. Clients
//!   that are not browsers send none.

use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Which bodies a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepts {
    /// `application/json` and `application/*+json`.
    Json,
    /// Those, and JSON lines (`application/x-ndjson`, `application/jsonl`, …).
    JsonOrLines,
}

/// `None` when the request's `Content-Type` is one `accepts` takes; else the 415 to answer.
pub fn require_json(headers: &HeaderMap, accepts: Accepts) -> Option<Response> {
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = given
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    let lines = matches!(
        essence.as_str(),
        "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "application/jsonlines"
    );
    let accepted = json || (accepts == Accepts::JsonOrLines && lines);
    if accepted {
        return None;
    }
    let expected = match accepts {
        Accepts::Json => "application/json",
        Accepts::JsonOrLines => "application/json, or application/x-ndjson for JSON lines",
    };
    let found = if given.is_empty() {
        "none".to_string()
    } else {
        format!("`{given}`")
    };
    Some(
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Json(json!({
                "error": format!("Content-Type must be {expected} (found {found})")
            })),
        )
            .into_response(),
    )
}

/// Whether a WebSocket upgrade may proceed: no `Origin` (not a browser), the server's own
/// origin (GraphiQL), or one of `allowed`.
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let own = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
        });
    own || allowed.iter().any(|a| a == origin)
}

/// The 403 for a WebSocket from an origin that is not allowed.
pub fn forbidden_origin(headers: &HeaderMap) -> Response {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?");
    (
        StatusCode::FORBIDDEN,
        Json(json!({
            "error": format!(
                "origin `{origin}` may not open /graphql/ws; list it in http.cors_allowed_origins"
            )
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(name, HeaderValue::from_str(value).expect("value"));
        }
        headers
    }

    #[test]
    fn only_json_content_types_pass() {
        let passes = |value: &str, accepts| {
            require_json(&with(&[(header::CONTENT_TYPE, value)]), accepts).is_none()
        };
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/graphql-response+json",
        ] {
            assert!(passes(ok, Accepts::Json), "{ok}");
        }
        for refused in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/x-ndjson",
            "",
        ] {
            assert!(!passes(refused, Accepts::Json), "{refused}");
        }
        assert!(passes("application/x-ndjson", Accepts::JsonOrLines));
        assert!(passes("application/jsonl", Accepts::JsonOrLines));
        assert!(require_json(&HeaderMap::new(), Accepts::Json).is_some());
    }

    #[test]
    fn websockets_from_other_origins_are_refused() {
        let allowed = vec!["https://app.example.com".to_string()];
        let host = (header::HOST, "127.0.0.1:8080");
        assert!(origin_allowed(&with(std::slice::from_ref(&host)), &allowed));
        assert!(origin_allowed(
            &with(&[host.clone(), (header::ORIGIN, "http://127.0.0.1:8080")]),
            &allowed
        ));
        assert!(origin_allowed(
            &with(&[host.clone(), (header::ORIGIN, "https://app.example.com")]),
            &allowed
        ));
        assert!(!origin_allowed(
            &with(&[host.clone(), (header::ORIGIN, "http://127.0.0.1:9999")]),
            &allowed
        ));
        assert!(!origin_allowed(
            &with(&[host, (header::ORIGIN, "null")]),
            &allowed
        ));
    }
}
