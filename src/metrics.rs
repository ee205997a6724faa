//! Prometheus metrics: HTTP requests by route, status and latency; GraphQL operations by name
//! and outcome. Other modules record through the `metrics` macros.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds, from a cached read to a long GraphQL aggregate.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Installs the process-wide recorder once and returns the handle that renders it.
pub fn install() -> Result<PrometheusHandle, String> {
    HANDLE
        .get_or_init(|| {
            let build = || -> Result<PrometheusHandle, BuildError> {
                PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
                    .install_recorder()
            };
            let handle =
                build().map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
            start_upkeep(handle.clone())?;
            Ok(handle)
        })
        .clone()
}

/// Histogram samples pile up in the recorder until something drains them; only a scrape of
/// `/metrics` did, so a server nobody scraped grew by every request it served (seen in the
/// soak: 15 MB a minute at 10,000 requests/s). A thread of its own drains them every few
/// seconds, whatever runtime is running, for the life of the process.
fn start_upkeep(handle: PrometheusHandle) -> Result<(), String> {
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        })
        .map(drop)
        .map_err(|e| format!("cannot start the metrics upkeep thread: {e}"))
}

const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Middleware recording every HTTP request. The route label is the matched route pattern, not
/// the raw path, so label values stay bounded.
pub async fn track_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().to_string();
    let start = Instant::now();
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    response
}

/// Records one GraphQL operation.
pub fn record_graphql(operation: &str, outcome: &'static str, seconds: f64) {
    let labels = [
        ("operation", operation.to_string()),
        ("outcome", outcome.to_string()),
    ];
    metrics::counter!("graphql_operations_total", &labels).increment(1);
    metrics::histogram!("graphql_operation_duration_seconds", &labels).record(seconds);
}
