//! The test suite's stand-in provider as a standalone server, for benchmarks run by hand:
//! `cargo run --release --example mock_provider -- LATENCY_MS` prints its base URL, then serves
//! until stdin closes.

#[allow(dead_code)]
#[path = "../tests/api/common/mock_provider.rs"]
mod mock_provider;

use std::io::Read;
use std::time::Duration;

use mock_provider::{MockConfig, MockProvider};

#[tokio::main]
async fn main() {
    let latency_ms: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let mock = MockProvider::start(MockConfig {
        latency: Duration::from_millis(latency_ms),
        ..Default::default()
    })
    .await;
    println!("{}", mock.base_url);
    // Serve until the caller closes our stdin (or exits).
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await;
    eprintln!("{} requests served", mock.total_requests());
}
