//! The real server process killed with SIGKILL while `/submit` is under load, three times, and
//! started again each time: every event acknowledged with 204 is stored exactly once. (The
//! longer scripted version, with file imports and provider runs too, is `bench/crash.sh`.)

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::Backend;
use serde_json::json;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn spawn_server(database_url: &str, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("TRIBUTARY_LISTEN", format!("127.0.0.1:{port}"))
        .env("TRIBUTARY_PROVIDERS_DIR", "/nonexistent-providers")
        .env("TRIBUTARY_SAMPLE_DATA", "false")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tributary serve")
}

/// Starts `tributary serve` on `port` and waits until it answers.
// The child is handed to the caller, which kills and reaps it; the lint cannot see past the
// return.
#[allow(clippy::zombie_processes)]
async fn serve(database_url: &str, port: u16) -> Child {
    let mut child = spawn_server(database_url, port);
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ready {
            return child;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server never became ready");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Posts events with unique ids until `stop`; returns the ids answered 204. Connection errors
/// (the server is dead or not yet back) are unacknowledged: those events may or may not be
/// stored, and are never sent again.
async fn submitter(
    port: Arc<AtomicUsize>,
    worker: usize,
    stop: Arc<AtomicBool>,
) -> (Vec<String>, usize) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let (mut acknowledged, mut unanswered) = (Vec::new(), 0);
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let id = format!("w{worker}-{n}");
        let url = format!("http://127.0.0.1:{}/submit", port.load(Ordering::Relaxed));
        let body = json!({
            "ip_address": "192.168.1.1", "user_agent": "crash", "referring_url": "https://example.com",
            "advertiser_id": "12345", "metadata": { "id": id },
        });
        match client.post(&url).json(&body).send().await {
            Ok(response) if response.status() == 204 => acknowledged.push(id),
            Ok(response) => panic!("{id}: unexpected status {}", response.status()),
            Err(_) => {
                unanswered += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    (acknowledged, unanswered)
}

async fn acknowledged_events_survive_sigkill(backend: Backend) {
    let (url, _dir) = crate::common::database_url(backend).await;
    let port = Arc::new(AtomicUsize::new(free_port() as usize));
    let mut server = serve(&url, port.load(Ordering::Relaxed) as u16).await;
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..16)
        .map(|w| tokio::spawn(submitter(port.clone(), w, stop.clone())))
        .collect();
    for kill in 0..3 {
        // A different moment of the load each time.
        tokio::time::sleep(Duration::from_millis(400 + 250 * kill)).await;
        server.kill().expect("SIGKILL");
        server.wait().expect("reaped");
        let next = free_port();
        port.store(next as usize, Ordering::Relaxed);
        server = serve(&url, next).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    let mut unanswered = 0;
    for worker in workers {
        let (acked, lost) = worker.await.expect("worker");
        acknowledged.extend(acked);
        unanswered += lost;
    }
    server.kill().expect("SIGKILL");
    server.wait().expect("reaped");

    let stored = crate::common::stored_event_ids(&url).await;
    let acknowledged: BTreeSet<String> = acknowledged.into_iter().collect();
    assert!(
        acknowledged.len() > 100,
        "{} acknowledged",
        acknowledged.len()
    );
    assert!(unanswered > 0, "no request was cut off by a kill");
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored twice: {twice:?}");
    // Beyond the acknowledged ones, only events whose answer a kill cut off.
    assert!(stored.len() <= acknowledged.len() + unanswered);
}

on_both_databases!(acknowledged_events_survive_sigkill);
