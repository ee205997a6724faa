//! The `tributary` binary as users run it: exit statuses, error lines, schema output, serving.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn tributary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tributary"));
    // The caller's own settings must not leak into these runs.
    for (key, _) in std::env::vars() {
        if key.starts_with("TRIBUTARY_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
}

#[test]
fn schema_graphql_is_current() {
    let output = tributary()
        .arg("schema")
        .output()
        .expect("run tributary schema");
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).expect("utf-8");
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
            .expect("schema.graphql at the repository root");
    assert!(
        printed == checked_in,
        "schema.graphql is out of date; regenerate it with `cargo run -- schema > schema.graphql`"
    );
}

#[test]
fn an_unreachable_database_is_one_line_and_exit_1() {
    let output = tributary()
        .env(
            "DATABASE_URL",
            "postgres://app:hunter2@127.0.0.1:1/tributary",
        )
        .output()
        .expect("run tributary");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(
            "error: cannot connect to the database at postgres 127.0.0.1:1/tributary: "
        ),
        "{stderr}"
    );
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_unsupported_database_url_names_the_key() {
    let output = tributary()
        .env("DATABASE_URL", "mysql://root@db/x")
        .output()
        .expect("run tributary");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    assert_eq!(
        stderr,
        "error: invalid setting `database_url` (from environment variable(s)): expected postgres://user:password@host:port/database or sqlite://path/to/file.db\n"
    );
}

#[test]
fn a_bad_setting_stops_startup_naming_the_key() {
    let output = tributary()
        .env("TRIBUTARY_LISTEN", "localhost:eighty")
        .output()
        .expect("run tributary");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    assert_eq!(
        stderr,
        "error: invalid setting `listen` (from `TRIBUTARY_` environment variable(s)): \
         expected IP:port such as 127.0.0.1:8080 or 0.0.0.0:8080, got `localhost:eighty`\n"
    );
}

#[test]
fn migrate_creates_the_platform_tables() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let output = tributary()
        .arg("migrate")
        .current_dir(dir.path())
        .output()
        .expect("run tributary migrate");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // No configuration: the embedded default, a SQLite file in the working directory.
    assert!(dir.path().join("tributary.db").is_file());
}

#[tokio::test]
async fn serve_answers_on_the_default_database_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    // A scheduled provider, so the scheduler starts too.
    let providers = dir.path().join("providers");
    std::fs::create_dir(&providers).expect("providers directory");
    std::fs::write(
        providers.join("yearly.toml"),
        "entity = \"token\"\nschedule = \"0 0 0 1 1 *\"\n[source]\nkind = \"file\"\npath = \"tokens.csv\"\n[fields]\naddress = \"address\"\n",
    )
    .expect("provider file");
    let mut child = tributary()
        .current_dir(dir.path())
        .env("TRIBUTARY_LISTEN", format!("127.0.0.1:{port}"))
        .env("TRIBUTARY_LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tributary");
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/graphql");
    let deadline = Instant::now() + Duration::from_secs(30);
    let body: Value = loop {
        match client
            .post(&url)
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
        {
            Ok(response) => break response.json().await.expect("json"),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("the server never answered: {e}"),
        }
    };
    assert_eq!(body, json!({ "data": { "__typename": "QueryRoot" } }));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return child.wait_with_output();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait_with_output()
    })
    .await
    .expect("join")
    .expect("output");
    assert_eq!(
        output.status.code(),
        Some(0),
        "SIGTERM ends the server cleanly"
    );
    // JSON logs: every line is one JSON object, and by default only this crate's lines show
    // (the scheduler and the HTTP stack announce themselves at info on every start).
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    let messages: Vec<String> = stderr
        .lines()
        .map(|line| {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            let target = v["target"].as_str().unwrap_or_default();
            assert!(
                target == "tributary" || target.starts_with("tributary::"),
                "a line from another crate: {line}"
            );
            v["message"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert!(
        messages.iter().any(|m| m.starts_with("listening")),
        "{stderr}"
    );
    assert!(messages.iter().any(|m| m == "stopped"), "{stderr}");
}

#[test]
fn import_reports_rejections_in_its_exit_status() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let csv = dir.path().join("transfers.csv");
    std::fs::write(
        &csv,
        "token_address,from_address,to_address,value,transaction_hash,log_index,block_number\n\
         0xf4eced2f682ce333f96f2d8966c613ded8fc95dd,0x1b63142628311395ceafeea5667e7c9026c862ca,0xac4df82fe37ea2187bc8c011a23d743b4f39019a,100000,0x04cbcb236043d8fb7839e07bbc7f5eed692fb2ca55d897f1101eac3e3ad4fab8,0,483920\n\
         0xf4eced2f682ce333f96f2d8966c613ded8fc95dd,0x1b63142628311395ceafeea5667e7c9026c862ca,0xac4df82fe37ea2187bc8c011a23d743b4f39019a,-1,0x04cbcb236043d8fb7839e07bbc7f5eed692fb2ca55d897f1101eac3e3ad4fab8,1,483920\n",
    )
    .expect("write");
    let run = |file: &std::path::Path| {
        tributary()
            .args(["import", "transfer"])
            .arg(file)
            .current_dir(dir.path())
            .output()
            .expect("run tributary import")
    };
    let output = run(&csv);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    assert!(
        stdout.contains("imported 2 rows from ")
            && stdout
                .contains(": 1 inserted, 0 updated, 0 unchanged, 0 superseded, 1 rejected (run 1)"),
        "{stdout}"
    );

    let good = dir.path().join("good.csv");
    let text = std::fs::read_to_string(&csv).expect("read");
    std::fs::write(
        &good,
        text.lines().take(2).collect::<Vec<_>>().join("\n") + "\n",
    )
    .expect("write");
    let output = run(&good);
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    assert!(
        stdout.contains(": 0 inserted, 0 updated, 1 unchanged, 0 superseded, 0 rejected (run 2)"),
        "{stdout}"
    );

    let missing = run(&dir.path().join("nope.csv"));
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8(missing.stderr).expect("utf-8");
    assert!(
        stderr.starts_with("error: ") && stderr.contains("nope.csv"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[tokio::test]
async fn check_lists_every_invariant_and_fails_naming_a_broken_one() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let check = || {
        tributary()
            .arg("check")
            .current_dir(dir.path())
            .output()
            .expect("run tributary check")
    };
    let migrated = tributary()
        .arg("migrate")
        .current_dir(dir.path())
        .output()
        .expect("run tributary migrate");
    assert_eq!(migrated.status.code(), Some(0));
    let output = check();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(output.stdout).expect("utf-8"),
        "ok   run_counters_add_up: each run's inserted + updated + unchanged + superseded + rejected = fetched\n\
         ok   run_rejections_stored: each run's rejected = its rows in rejected_records\n\
         ok   no_run_left_unfinished: no run is queued or running unless a live process holds its provider's lease (a kafka consumer's run: its replica's consumer lease)\n\
         ok   product_counts_exact: product_counts = SELECT name, count(*) FROM products GROUP BY name\n"
    );

    // A run whose counters do not add up, as a bug would leave it.
    let db = sea_orm::Database::connect(format!(
        "sqlite://{}",
        dir.path().join("tributary.db").display()
    ))
    .await
    .expect("connect");
    use sea_orm::ConnectionTrait;
    db.execute_unprepared(
        "INSERT INTO ingest_runs (provider, trigger, mode, status, queued_at, pages, fetched,
             inserted, updated, unchanged, superseded, rejected)
         VALUES ('p', 'cli', 'full', 'succeeded', '2026-12-01 00:00:00+00:00', 1, 3, 1, 0, 0, 0, 0)",
    )
    .await
    .expect("insert a run");
    let output = check();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    assert!(
        stdout.starts_with(
            "FAIL run_counters_add_up: 1 rows break \"each run's inserted + updated + unchanged + superseded + rejected = fetched\", \
             such as: run 1 of p: fetched 3, inserted 1, updated 0, unchanged 0, superseded 0, rejected 0\n\
             ok   run_rejections_stored:"
        ),
        "{stdout}"
    );
}

#[test]
fn providers_schema_prints_the_provider_file_schema() {
    let output = tributary()
        .args(["providers", "--schema"])
        .output()
        .expect("run tributary providers --schema");
    assert_eq!(output.status.code(), Some(0));
    let schema: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(schema["title"], "ProviderFile");
    assert_eq!(schema["required"], json!(["entity", "source"]));
    let kinds: Vec<&str> = schema["$defs"]["Source"]["oneOf"]
        .as_array()
        .expect("source kinds")
        .iter()
        .filter_map(|kind| kind["properties"]["kind"]["const"].as_str())
        .collect();
    assert_eq!(kinds, ["http", "file", "push", "kafka"]);
}
