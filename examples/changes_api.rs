//! The test suite's stand-in for an API that lists records changed since a time, as a
//! standalone server for `bench/incremental.sh`:
//! `cargo run --release --example changes_api -- RECORDS PAGE_SIZE LATENCY_MS` prints its base
//! URL, then serves until stdin closes. `POST /touch?every=N&changed=M` changes records;
//! `POST /stats` answers (and resets) the requests and records served.

#[allow(dead_code)]
#[path = "../tests/api/common/changes_api.rs"]
mod changes_api;

use std::io::Read;
use std::time::Duration;

#[tokio::main]
async fn main() {
    let arg = |i: usize, default: u64| -> u64 {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(default)
    };
    let api = changes_api::ChangesApi::start(
        arg(1, 100_000) as usize,
        arg(2, 1_000) as usize,
        Duration::from_millis(arg(3, 0)),
    )
    .await;
    println!("{}", api.base_url);
    // Serve until the caller closes our stdin (or exits).
    let _ = tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await;
}
