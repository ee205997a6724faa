//! Security defaults under attack: provider requests to internal addresses (SSRF), secrets in
//! logs and errors, SQL injection through every text filter, CORS, body limits, and the
//! Docker image's user.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::mock_provider::{Fault, MockConfig, MockProvider};
use crate::common::write_provider;
use crate::common::{Backend, TestApp, provider, wait_for};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tributary::hosts::HostRules;
use tributary::ingest::RunSummary;
use tributary::providers::Provider;
use tributary::sources::outbound::Outbound;
use tributary::store::runs::{RunMode, RunStatus};

/// A stand-in whose every request from the third on is answered 500.
fn failing_from_request_3() -> MockConfig {
    MockConfig {
        scripted: vec![(
            3..=usize::MAX,
            Fault::Status {
                status: 500,
                retry_after: None,
            },
        )],
        ..Default::default()
    }
}

async fn run(app: &TestApp, provider: &Provider, outbound: &Outbound) -> RunSummary {
    crate::common::run_provider(
        app,
        provider,
        &HostRules::default(),
        outbound,
        RunMode::Full,
    )
    .await
}

fn items_toml(url: &str) -> String {
    format!(
        "entity = \"record\"\ndataset = \"items\"\nkey = \"id\"\n[source]\nkind = \"http\"\nurl = \"{url}\"\nrecords = \"$.data[*]\"\nretry = {{ attempts = 1 }}\n[source.pagination]\nkind = \"offset\"\npage_size = 10\n[fields]\nid = \"$.id\"\n"
    )
}

// ---------------------------------------------------------------------------------------------
// SSRF

async fn provider_requests_to_internal_addresses_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mock = MockProvider::start(MockConfig {
        items: 5,
        ..Default::default()
    })
    .await;
    let port = mock.base_url.rsplit(':').next().expect("a port");
    let dir = tempfile::tempdir().expect("dir");
    let setting =
        "provider requests reach it only if `outbound.allowed_networks` lists its network";
    let cases = [
        (
            "literal",
            format!("http://127.0.0.1:{port}/offset"),
            "127.0.0.1 is a loopback address (127.0.0.1)",
        ),
        (
            "localhost",
            format!("http://localhost:{port}/offset"),
            "localhost is a loopback address (",
        ),
        (
            "metadata",
            "http://169.254.169.254/latest/meta-data".to_string(),
            "169.254.169.254 is a link-local address (169.254.169.254)",
        ),
        (
            "ipv6",
            format!("http://[::1]:{port}/offset"),
            "[::1] is a loopback address (::1)",
        ),
        (
            "mapped",
            // `[::ffff:127.0.0.1]`, as URLs write it.
            format!("http://[::ffff:7f00:1]:{port}/offset"),
            "[::ffff:7f00:1] is a loopback address (::ffff:127.0.0.1)",
        ),
    ];
    for (name, url, why) in &cases {
        let p = provider(dir.path(), name, &items_toml(url));
        let summary = run(&app, &p, &Outbound::default()).await;
        assert_eq!(summary.status, RunStatus::Failed, "{name}");
        let error = summary.error.expect("an error");
        let expected_start =
            format!("provider {name}: GET {url}?offset=0&limit=10: refused: {why}");
        assert!(error.starts_with(&expected_start), "{name}: {error}");
        assert!(error.contains(setting), "{name}: {error}");
    }
    // A remote file is refused the same way.
    let file = provider(
        dir.path(),
        "remote-file",
        &format!(
            "entity = \"record\"\ndataset = \"files\"\nkey = \"id\"\n[source]\nkind = \"file\"\npath = \"http://localhost:{port}/files/stream_token_transfers_17173049.jsonl\"\n[fields]\nid = \"$.log_index\"\n"
        ),
    );
    let summary = run(&app, &file, &Outbound::default()).await;
    assert_eq!(summary.status, RunStatus::Failed);
    let error = summary.error.expect("an error");
    assert!(
        error.starts_with(&format!(
            "provider remote-file: source.path: GET http://localhost:{port}/files/stream_token_transfers_17173049.jsonl: refused: localhost is a loopback address ("
        )) && error.contains(setting),
        "{error}"
    );
    assert_eq!(
        mock.total_requests(),
        0,
        "no refused request reached the provider"
    );

    // With the network allowed, the same providers run.
    for name in ["literal", "localhost", "mapped"] {
        let p = provider(
            dir.path(),
            name,
            &items_toml(&cases.iter().find(|c| c.0 == name).expect("case").1),
        );
        let summary = run(&app, &p, &crate::common::outbound()).await;
        assert_eq!(summary.status, RunStatus::Succeeded, "{name}: {summary:?}");
        assert_eq!(summary.fetched, 5, "{name}");
    }
    let summary = run(&app, &file, &crate::common::outbound()).await;
    assert_eq!(
        (summary.status, summary.fetched),
        (RunStatus::Succeeded, 291)
    );
}
on_both_databases!(provider_requests_to_internal_addresses_are_refused);

/// An allowed provider cannot lead requests elsewhere: not by a redirect, not by a URL in its
/// answer that `follow` fetches.
async fn redirects_and_follow_urls_are_checked_too(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mock = MockProvider::start(MockConfig::default()).await;
    let dir = tempfile::tempdir().expect("dir");
    let metadata = "http://169.254.169.254/latest/meta-data/iam/security-credentials/";
    let refused = "refused: 169.254.169.254 is a link-local address (169.254.169.254); provider requests reach it only if `outbound.allowed_networks` lists its network (e.g. 169.254.169.254/32)";
    let redirected = provider(
        dir.path(),
        "redirected",
        &format!(
            "entity = \"record\"\ndataset = \"redirected\"\nkey = \"id\"\n[source]\nkind = \"http\"\nurl = \"{}/redirect?to={metadata}\"\nretry = {{ attempts = 1 }}\n[fields]\nid = \"$.id\"\n",
            mock.base_url
        ),
    );
    let summary = run(&app, &redirected, &crate::common::outbound()).await;
    assert_eq!(summary.status, RunStatus::Failed);
    assert_eq!(
        summary.error.as_deref(),
        Some(
            format!(
                "provider redirected: GET {}/redirect?to={}: {refused}",
                mock.base_url,
                // Shown as sent: query values form-encoded.
                metadata.replace(':', "%3A").replace('/', "%2F")
            )
            .as_str()
        )
    );
    let followed = provider(
        dir.path(),
        "followed",
        &format!(
            "entity = \"record\"\ndataset = \"followed\"\nkey = \"id\"\n[source]\nkind = \"http\"\nurl = \"{}/links-to?to={metadata}\"\nrecords = \"$.items[*]\"\nretry = {{ attempts = 1 }}\n[source.follow]\nurl = \"$.url\"\n[fields]\nid = \"$.id\"\n",
            mock.base_url
        ),
    );
    let summary = run(&app, &followed, &crate::common::outbound()).await;
    assert_eq!(summary.status, RunStatus::Failed);
    assert_eq!(
        summary.error.as_deref(),
        Some(format!("page 1: provider followed: GET {metadata}: {refused}").as_str())
    );
    assert_eq!(mock.requests("redirect") + mock.requests("links-to"), 2);
}
on_both_databases!(redirects_and_follow_urls_are_checked_too);

async fn the_server_applies_the_outbound_setting(backend: Backend) {
    let mock = MockProvider::start(MockConfig {
        items: 5,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    write_provider(dir.path(), "items", &items_toml(&mock.url("/offset")));
    let providers = dir.path().to_path_buf();
    // Nothing allowed: the default.
    let app = TestApp::spawn_with(backend, move |s| {
        s.providers_dir = providers;
        s.outbound.allowed_networks = Outbound::default();
    })
    .await;
    let started = app
        .query(
            r#"mutation { triggerIngest(provider: "items") { run { id } } }"#,
            json!({}),
        )
        .await;
    let id = started["triggerIngest"]["run"]["id"].clone();
    let mut run = Value::Null;
    wait_for("the run to end", Duration::from_secs(30), async || {
        run = app
            .query(
                "query($id: ID!) { ingestRun(id: $id) { status error } }",
                json!({ "id": id }),
            )
            .await["ingestRun"]
            .clone();
        run["status"] == "FAILED"
    })
    .await;
    assert_eq!(
        run["error"],
        format!(
            "provider items: GET {}/offset?offset=0&limit=10: refused: 127.0.0.1 is a loopback address (127.0.0.1); provider requests reach it only if `outbound.allowed_networks` lists its network (e.g. 127.0.0.0/8)",
            mock.base_url
        )
    );
    assert_eq!(mock.total_requests(), 0);
}
on_both_databases!(the_server_applies_the_outbound_setting);

// ---------------------------------------------------------------------------------------------
// Secrets

const LEAK_TOKEN: &str = "tok-5ecret-header-value-81f2";
const LEAK_KEY: &str = "key-5ecret-query-value-3c9a";

fn silk_toml(base: &str) -> String {
    format!(
        r#"entity = "record"
dataset = "silk"
key = "id"
[source]
kind = "http"
method = "POST"
url = "{base}/api/qualys/hosts/get"
headers = {{ token = "${{LEAK_TOKEN}}" }}
retry = {{ attempts = 3, initial_backoff_ms = 10, max_backoff_ms = 20 }}
[source.pagination]
kind = "offset"
offset_param = "skip"
limit_param = "limit"
page_size = 2
end = {{ statuses = [500], shrink_on_end_status = true }}
[fields]
id = "$._id"
"#
    )
}

/// Runs the real binary with JSON logs at debug level and three providers holding secrets (a
/// header token, a query parameter, an `api_key` written in the URL): one succeeds after
/// retries, one is refused by the provider (401), one fails on a 500. The secrets appear in no
/// log line, no run row, no GraphQL answer and not in `/metrics`.
async fn secrets_never_reach_logs_errors_runs_or_metrics(backend: Backend) {
    let (database_url, _db_dir) = crate::common::database_url(backend).await;
    let accepting = MockProvider::start(MockConfig {
        silk_token: Some(LEAK_TOKEN.into()),
        scripted: vec![(
            2..=2,
            Fault::Status {
                status: 503,
                retry_after: None,
            },
        )],
        ..Default::default()
    })
    .await;
    let refusing = MockProvider::start(MockConfig {
        silk_token: Some("a-different-token-entirely".into()),
        ..Default::default()
    })
    .await;
    let failing = MockProvider::start(failing_from_request_3()).await;
    let linking = MockProvider::start(failing_from_request_3()).await;
    let dir = tempfile::tempdir().expect("dir");
    // Its next links repeat the api_key; the checkpoint left by the failure must not.
    write_provider(
        dir.path(),
        "linked",
        &format!(
            "entity = \"record\"\ndataset = \"linked\"\nkey = \"id\"\n[source]\nkind = \"http\"\nurl = \"{}/link\"\nquery = {{ api_key = \"${{LEAK_KEY}}\" }}\nretry = {{ attempts = 2, initial_backoff_ms = 10, max_backoff_ms = 20 }}\n[source.pagination]\nkind = \"link\"\n[fields]\nid = \"$.id\"\n",
            linking.base_url
        ),
    );
    write_provider(dir.path(), "silk-ok", &silk_toml(&accepting.base_url));
    write_provider(dir.path(), "silk-refused", &silk_toml(&refusing.base_url));
    write_provider(
        dir.path(),
        "keyed",
        &format!(
            r#"entity = "record"
dataset = "keyed"
key = "id"
[source]
kind = "http"
url = "{}/offset?api_key=${{LEAK_KEY}}"
query = {{ token = "${{LEAK_TOKEN}}" }}
records = "$.data[*]"
retry = {{ attempts = 2, initial_backoff_ms = 10, max_backoff_ms = 20 }}
[source.pagination]
kind = "offset"
page_size = 10
[fields]
id = "$.id"
"#,
            failing.base_url
        ),
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("address")
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("serve")
        .env("DATABASE_URL", &database_url)
        .env("TRIBUTARY_LISTEN", format!("127.0.0.1:{port}"))
        .env("TRIBUTARY_PROVIDERS_DIR", dir.path())
        .env("TRIBUTARY_LOG_FORMAT", "json")
        .env("TRIBUTARY_SCHEDULER__ENABLED", "false")
        .env("TRIBUTARY_OUTBOUND__ALLOWED_NETWORKS", "[\"127.0.0.0/8\"]")
        .env("RUST_LOG", "debug")
        .env("LEAK_TOKEN", LEAK_TOKEN)
        .env("LEAK_KEY", LEAK_KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tributary serve");
    let logs = Arc::new(Mutex::new(String::new()));
    let mut readers = Vec::new();
    for stream in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let logs = logs.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let mut logs = logs.lock().unwrap_or_else(|e| e.into_inner());
                logs.push_str(&line);
                logs.push('\n');
            }
        }));
    }
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_for("the server to be ready", Duration::from_secs(60), async || {
        matches!(client.get(format!("{base}/readyz")).send().await, Ok(r) if r.status() == 200)
    })
    .await;
    let graphql = async |query: &str, variables: Value| -> Value {
        client
            .post(format!("{base}/graphql"))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("POST /graphql")
            .json()
            .await
            .expect("JSON")
    };
    let mut answers = Vec::new();
    for name in ["silk-ok", "silk-refused", "keyed", "linked"] {
        let started = graphql(
            "mutation($p: String!) { triggerIngest(provider: $p) { run { id } } }",
            json!({ "p": name }),
        )
        .await;
        let id = started["data"]["triggerIngest"]["run"]["id"].clone();
        assert!(id.is_string(), "{started}");
        let mut run = Value::Null;
        wait_for(name, Duration::from_secs(30), async || {
            run = graphql(
                "query($id: ID!) { ingestRun(id: $id) { provider status fetched error } }",
                json!({ "id": id }),
            )
            .await;
            matches!(
                run["data"]["ingestRun"]["status"].as_str(),
                Some("SUCCEEDED" | "FAILED")
            )
        })
        .await;
        answers.push(run);
    }
    let runs = answers
        .iter()
        .map(|a| a["data"]["ingestRun"].clone())
        .collect::<Vec<_>>();
    assert_eq!(
        runs[0],
        json!({ "provider": "silk-ok", "status": "SUCCEEDED", "fetched": 7, "error": null })
    );
    assert_eq!(
        runs[1]["error"],
        format!(
            "page 1: POST {}/api/qualys/hosts/get?skip=0&limit=2: HTTP 401 after 1 attempt(s)",
            refusing.base_url
        )
    );
    assert_eq!(
        runs[2]["error"],
        format!(
            "page 3: GET {}/offset?api_key=***&token=***&offset=20&limit=10: HTTP 500 after 2 attempt(s)",
            failing.base_url
        )
    );
    assert_eq!(
        runs[3]["error"],
        format!(
            "page 3: GET {}/link?page=3&api_key=***: HTTP 500 after 2 attempt(s)",
            linking.base_url
        )
    );
    answers.push(
        graphql(
            "{ ingestRuns { nodes { provider trigger status error } } provider(name: \"keyed\") { lastRun { error } } }",
            json!({}),
        )
        .await,
    );
    answers.push(
        graphql(
            r#"mutation { triggerIngest(provider: "nope") { run { id } } }"#,
            json!({}),
        )
        .await,
    );
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    for reader in readers {
        reader.join().expect("log reader");
    }
    let logs = logs.lock().unwrap_or_else(|e| e.into_inner()).clone();

    // What was captured is the real thing: debug lines, the retry and both failures.
    assert!(logs.contains("\"level\":\"DEBUG\""), "debug logging is on");
    assert!(logs.contains("retrying provider request"), "{logs}");
    assert_eq!(logs.matches("ingest run failed").count(), 3, "{logs}");
    assert!(metrics.contains("ingest_runs_total"), "{metrics}");
    let db = sea_orm::Database::connect(database_url.as_str())
        .await
        .expect("connect");
    let rows = format!(
        "{:?}{:?}{:?}",
        entity::ingest_run::Entity::find()
            .all(&db)
            .await
            .expect("runs"),
        entity::provider_state::Entity::find()
            .all(&db)
            .await
            .expect("provider state"),
        entity::rejected_record::Entity::find()
            .all(&db)
            .await
            .expect("rejections"),
    );
    assert!(rows.contains("api_key=***"), "{rows}");
    // The link listing's checkpoint is its next page, without the key.
    assert!(
        rows.contains(&format!("{}/link?page=3", linking.base_url)),
        "{rows}"
    );
    let answers = format!("{answers:?}");
    for secret in [LEAK_TOKEN, LEAK_KEY] {
        assert!(!logs.contains(secret), "a secret in the logs");
        assert!(!rows.contains(secret), "a secret in the database: {rows}");
        assert!(!answers.contains(secret), "a secret in a GraphQL answer");
        assert!(!metrics.contains(secret), "a secret in /metrics");
    }
}
on_both_databases!(secrets_never_reach_logs_errors_runs_or_metrics);

// ---------------------------------------------------------------------------------------------
// SQL injection

/// Attacks on text filters; each must be a literal value.
fn payloads() -> Vec<String> {
    vec![
        "' OR 1=1 --".into(),
        "' OR '1'='1".into(),
        "'; DROP TABLE transfers; --".into(),
        "\"; DROP TABLE records; --".into(),
        "%' --".into(),
        "%".into(),
        "_".into(),
        "\\".into(),
        "\\%".into(),
        "a\0b".into(),
        "\0".into(),
        "☃' || (SELECT name FROM sqlite_master) || '".into(),
        "') UNION SELECT * FROM ingest_runs --".into(),
        "x".repeat(100_000),
    ]
}

/// Seeds rows whose text holds LIKE wildcards and quotes, through the public ways in.
async fn seed(app: &TestApp) {
    tributary::sample::load_if_empty(&app.db)
        .await
        .expect("the ERC-20 sample");
    let dir = tempfile::tempdir().expect("dir");
    let csv = dir.path().join("products.csv");
    std::fs::write(
        &csv,
        "name,sku,description\n100% cotton,sku_1,a\n100 percent cotton,skuX1,b\nO'Brien's,o-brien,c\n' OR 1=1 --,inj-1,d\nÜnïcödé ☃,uni-1,e\nback\\slash,bs-1,f\n",
    )
    .expect("products file");
    tributary::import::import_file(
        &app.db,
        tributary::entities::EntityKind::Product,
        &csv,
        |_| {},
    )
    .await
    .expect("products import");
    for advertiser in ["adv_1", "advX1", "100%", "' OR 1=1 --"] {
        let response = app
            .client
            .post(format!("{}/submit", app.address))
            .json(&json!({
                "ip_address": "192.168.1.1",
                "user_agent": "Mozilla/5.0",
                "referring_url": "https://example.com",
                "advertiser_id": advertiser,
                "metadata": {},
            }))
            .send()
            .await
            .expect("POST /submit");
        assert_eq!(response.status(), 204);
    }
}

/// The values of `field` over every node of a list query (`first: 1000` holds them all).
async fn all_values(app: &TestApp, list: &str, args: &str, field: &str) -> Vec<Option<String>> {
    let data = app
        .query(
            &format!("{{ {list}({args} first: 1000) {{ nodes {{ {field} }} }} }}"),
            json!({}),
        )
        .await;
    data[list]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n[field].as_str().map(str::to_string))
        .collect()
}

async fn text_filters_take_injection_attempts_literally(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    seed(&app).await;
    let counts_before = table_counts(&app).await;
    // (list, extra arguments, where field, node field)
    let filters = [
        ("tokens", "", "symbol", "symbol"),
        ("tokens", "", "name", "name"),
        ("products", "", "sku", "sku"),
        ("products", "", "name", "name"),
        ("productCounts", "", "name", "name"),
        ("events", "", "advertiserId", "advertiserId"),
        ("events", "", "ipAddress", "ipAddress"),
        ("hosts", "", "hostname", "hostname"),
        ("hosts", "", "os", "os"),
        ("records", "dataset: \"items\",", "key", "key"),
    ];
    let mut checked = 0;
    for (list, args, field, node_field) in filters {
        let values = all_values(&app, list, args, node_field).await;
        let mut attempts = payloads();
        // Rows of this list, so literal matches are checked too, not only misses.
        attempts.extend(values.iter().flatten().take(3).cloned());
        for payload in &attempts {
            for (op, matches) in [
                ("eq", (|v: &str, p: &str| v == p) as fn(&str, &str) -> bool),
                ("startsWith", |v, p| v.starts_with(p)),
                ("contains", |v, p| v.contains(p)),
            ] {
                let query = format!(
                    "query($v: String!) {{ {list}({args} where: {{ {field}: {{ {op}: $v }} }}, first: 1000) {{ nodes {{ {node_field} }} }} }}"
                );
                let body = app.graphql(&query, json!({ "v": payload })).await;
                let length = payload.chars().count();
                if length > 4096 {
                    // Too long to be a name or key: refused, saying where and why.
                    assert_eq!(
                        body["errors"][0]["message"],
                        format!(
                            "`where.{field}.{op}` is {length} characters long; at most 4096 are allowed"
                        ),
                        "{body}"
                    );
                    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
                    continue;
                }
                assert!(
                    body.get("errors").is_none(),
                    "{list}.{field}.{op}({:?}): {body}",
                    short(payload)
                );
                let found = body["data"][list]["nodes"].as_array().expect("nodes").len();
                let expected = values
                    .iter()
                    .flatten()
                    .filter(|v| matches(v, payload))
                    .count();
                assert_eq!(found, expected, "{list}.{field}.{op}({:?})", short(payload));
                checked += 1;
            }
            let query = format!(
                "query($v: [String!]!) {{ {list}({args} where: {{ {field}: {{ in: $v }} }}, first: 1000) {{ nodes {{ {node_field} }} }} }}"
            );
            let body = app.graphql(&query, json!({ "v": [payload] })).await;
            let refused = payload.chars().count() > 4096;
            assert_eq!(
                body.get("errors").is_some(),
                refused,
                "{list}.{field}.in: {body}"
            );
        }
    }
    assert!(checked > 300, "{checked} filters checked");

    // LIKE wildcards in the text are literal characters.
    let skus = |starts: &str| {
        let app = &app;
        let starts = starts.to_string();
        async move {
            app.query(
                "query($v: String!) { products(where: {sku: {startsWith: $v}}) { nodes { sku } } }",
                json!({ "v": starts }),
            )
            .await["products"]["nodes"]
                .clone()
        }
    };
    assert_eq!(skus("sku_").await, json!([{ "sku": "sku_1" }]));
    let names = app
        .query(
            r#"{ products(where: {name: {contains: "0%"}}) { nodes { name } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        names["products"]["nodes"],
        json!([{ "name": "100% cotton" }])
    );
    let events = app
        .query(
            r#"{ events(where: {advertiserId: {startsWith: "adv_"}}) { nodes { advertiserId } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        events["events"]["nodes"],
        json!([{ "advertiserId": "adv_1" }])
    );
    let quoted = app
        .query(
            r#"{ products(where: {name: {eq: "' OR 1=1 --"}}) { nodes { sku } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(quoted["products"]["nodes"], json!([{ "sku": "inj-1" }]));

    // Plain text arguments.
    for payload in payloads() {
        let v = json!({ "v": payload });
        for query in [
            "query($v: String!) { records(dataset: $v) { nodes { key } } }",
            "query($v: String!) { product(sku: $v) { sku } }",
            "query($v: String!) { provider(name: $v) { name } }",
            "query($v: String!) { ingestRuns(where: {provider: $v}) { nodes { id } } }",
            "query($v: String!) { hosts(where: {provider: $v}) { nodes { id } } }",
            "query($v: String!) { hosts(where: {cloudInstanceId: $v}) { nodes { id } } }",
        ] {
            let body = app.graphql(query, v.clone()).await;
            assert!(
                body.get("errors").is_none(),
                "{query} ({:?}): {body}",
                short(&payload)
            );
            let data = &body["data"];
            let empty = data.as_object().expect("data").values().all(|value| {
                value.is_null() || value["nodes"].as_array().is_some_and(Vec::is_empty)
            });
            assert!(empty, "{query} ({:?}): {body}", short(&payload));
        }
        // Bytes, IP and MAC arguments refuse what they cannot parse, saying so.
        for query in [
            "query($v: Bytes!) { transfers(where: {token: {eq: $v}}) { nodes { logIndex } } }",
            "query($v: String!) { hosts(where: {ip: $v}) { nodes { id } } }",
            "query($v: String!) { hosts(where: {mac: $v}) { nodes { id } } }",
        ] {
            let body = app.graphql(query, v.clone()).await;
            let code = &body["errors"][0]["extensions"]["code"];
            assert_eq!(
                code,
                "BAD_USER_INPUT",
                "{query} ({:?}): {body}",
                short(&payload)
            );
        }
    }
    assert_eq!(
        table_counts(&app).await,
        counts_before,
        "every table intact"
    );
}
on_both_databases!(text_filters_take_injection_attempts_literally);

fn short(text: &str) -> String {
    text.chars().take(40).collect()
}

async fn table_counts(app: &TestApp) -> Vec<u64> {
    vec![
        entity::token::Entity::find()
            .count(&app.db)
            .await
            .expect("tokens"),
        entity::transfer::Entity::find()
            .count(&app.db)
            .await
            .expect("transfers"),
        entity::product::Entity::find()
            .count(&app.db)
            .await
            .expect("products"),
        entity::event::Entity::find()
            .count(&app.db)
            .await
            .expect("events"),
        entity::ingest_run::Entity::find()
            .filter(entity::ingest_run::Column::Status.eq("succeeded"))
            .count(&app.db)
            .await
            .expect("runs"),
    ]
}

// ---------------------------------------------------------------------------------------------
// CORS and body limits

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_only_listed_origins() {
    let listed = "https://app.example.com";
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.http.cors_allowed_origins = vec![listed.to_string()];
    })
    .await;
    let closed = TestApp::spawn(Backend::Sqlite).await;
    let preflight = async |app: &TestApp, origin: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.address))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .expect("preflight")
    };
    let simple = async |app: &TestApp, origin: &str| {
        app.client
            .post(format!("{}/graphql", app.address))
            .header("origin", origin)
            .json(&json!({ "query": "{ serverInfo { version } }" }))
            .send()
            .await
            .expect("POST")
    };
    let allow = |r: &reqwest::Response| {
        r.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap_or_default().to_string())
    };
    let ok = preflight(&app, listed).await;
    assert_eq!(allow(&ok).as_deref(), Some(listed));
    assert!(
        ok.headers()
            .get("access-control-allow-methods")
            .is_some_and(|v| v.to_str().unwrap_or_default().contains("POST"))
    );
    assert_eq!(allow(&simple(&app, listed).await).as_deref(), Some(listed));
    for origin in [
        "https://evil.example.com",
        "https://app.example.com.evil.net",
        "null",
    ] {
        assert_eq!(allow(&preflight(&app, origin).await), None, "{origin}");
        let response = simple(&app, origin).await;
        assert_eq!(allow(&response), None, "{origin}");
    }
    // The default allows no origin at all.
    assert_eq!(allow(&preflight(&closed, listed).await), None);
    assert_eq!(allow(&simple(&closed, listed).await), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413_on_every_endpoint() {
    let dir = tempfile::tempdir().expect("dir");
    write_provider(
        dir.path(),
        "pushed",
        "entity = \"record\"\ndataset = \"pushed\"\nkey = \"id\"\n[source]\nkind = \"push\"\n[fields]\nid = \"$.id\"\n",
    );
    let providers = dir.path().to_path_buf();
    let app = TestApp::spawn_with(Backend::Sqlite, move |s| {
        s.http.body_limit_bytes = 4096;
        s.providers_dir = providers;
    })
    .await;
    let big_json =
        json!({ "query": "{ serverInfo { version } }", "pad": "x".repeat(5000) }).to_string();
    let big_lines = format!("{{\"id\": \"1\", \"pad\": \"{}\"}}\n", "x".repeat(5000));
    for (path, body) in [
        ("/graphql", big_json.clone()),
        ("/submit", big_json.clone()),
        ("/submit/batch", big_lines.clone()),
        ("/ingest/pushed", big_lines.clone()),
    ] {
        // With a Content-Length, and streamed without one.
        let sized = app
            .client
            .post(format!("{}{path}", app.address))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("POST");
        assert_eq!(sized.status(), 413, "{path} with Content-Length");
        let chunks: Vec<Result<String, std::io::Error>> = body
            .as_bytes()
            .chunks(1024)
            .map(|c| Ok(String::from_utf8_lossy(c).into_owned()))
            .collect();
        let streamed = app
            .client
            .post(format!("{}{path}", app.address))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
            .send()
            .await
            .expect("POST");
        let status = streamed.status();
        let text = streamed.text().await.unwrap_or_default();
        assert_eq!(status, 413, "{path} streamed: {text}");
    }
    // Nothing of it was stored.
    assert_eq!(
        entity::event::Entity::find()
            .count(&app.db)
            .await
            .expect("events"),
        0
    );
    assert_eq!(
        entity::record::Entity::find()
            .count(&app.db)
            .await
            .expect("records"),
        0
    );
}

/// A body many times the socket buffers: the client is still writing when the server has
/// decided. It must read the 413 (with the reason), not a broken pipe, and the server goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_still_sending_a_huge_body_reads_the_413() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let limit = tributary::settings::Settings::defaults()
        .expect("defaults")
        .http
        .body_limit_bytes;
    let huge = "x".repeat(8 * limit);
    for path in ["/graphql", "/submit"] {
        for streamed in [false, true] {
            let body = if streamed {
                let chunks: Vec<Result<String, std::io::Error>> = huge
                    .as_bytes()
                    .chunks(64 * 1024)
                    .map(|c| Ok(String::from_utf8_lossy(c).into_owned()))
                    .collect();
                reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
            } else {
                reqwest::Body::from(huge.clone())
            };
            let response = app
                .client
                .post(format!("{}{path}", app.address))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{path} (streamed: {streamed}): {e:?}"));
            assert_eq!(response.status(), 413, "{path} (streamed: {streamed})");
            let answer: Value = response.json().await.expect("a JSON error");
            assert_eq!(
                answer["error"],
                format!(
                    "the request body is larger than the limit of {limit} bytes (http.body_limit_bytes)"
                )
            );
        }
    }
    let data = app.query("{ serverInfo { version } }", json!({})).await;
    assert_eq!(data["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
}

// ---------------------------------------------------------------------------------------------
// Docker

#[test]
fn the_docker_image_runs_as_a_numeric_non_root_user() {
    let dockerfile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile"))
        .expect("Dockerfile");
    let instructions: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let final_stage = instructions
        .iter()
        .rposition(|l| l.to_ascii_uppercase().starts_with("FROM "))
        .expect("a FROM line");
    let user = instructions[final_stage..]
        .iter()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .expect("a USER in the final stage")
        .trim();
    let (uid, gid) = user.split_once(':').unwrap_or((user, user));
    let uid: u32 = uid
        .parse()
        .unwrap_or_else(|_| panic!("USER {user}: uid is not numeric"));
    let gid: u32 = gid
        .parse()
        .unwrap_or_else(|_| panic!("USER {user}: gid is not numeric"));
    assert!(uid != 0 && gid != 0, "USER {user} is root");
}

// ---------------------------------------------------------------------------------------------
// Pages of other origins

/// What a page of another origin tries against the server at `target`: mutations in bodies a
/// browser sends without asking (text, a form, an untyped blob), a push, a JSON mutation
/// (which needs a CORS preflight), and a WebSocket.
const HOSTILE_SCRIPT: &str = r#"(async (target) => {
  const out = {};
  const mutation = JSON.stringify({ query: 'mutation { triggerIngest(provider: "tokens") { run { id } } }' });
  const simple = [
    ['textPlain', { headers: { 'Content-Type': 'text/plain' }, body: mutation }],
    ['form', { headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: mutation }],
    ['untyped', { body: new Blob([mutation]) }],
  ];
  for (const [name, init] of simple) {
    try {
      await fetch(target + '/graphql', { method: 'POST', mode: 'no-cors', ...init });
      out[name] = 'sent';
    } catch (e) {
      out[name] = 'not sent: ' + e;
    }
  }
  try {
    await fetch(target + '/ingest/pushed', {
      method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' },
      body: '[{"id": "from-a-page"}]',
    });
    out.push = 'sent';
  } catch (e) {
    out.push = 'not sent: ' + e;
  }
  try {
    const r = await fetch(target + '/graphql', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: mutation,
    });
    out.json = 'answered ' + r.status;
  } catch (e) {
    out.json = 'blocked';
  }
  out.ws = await new Promise((resolve) => {
    const ws = new WebSocket(target.replace('http://', 'ws://') + '/graphql/ws', 'graphql-transport-ws');
    ws.onopen = () => { resolve('open'); ws.close(); };
    ws.onerror = () => resolve('refused');
    setTimeout(() => resolve('no answer'), 5000);
  });
  return out;
})"#;

/// A page served from another origin, in headless Chromium, cannot run a mutation, push
/// records or open the WebSocket of a loopback server with no token, while the server's own
/// page (GraphiQL) and clients that are not browsers keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_another_origin_cannot_drive_the_server() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/ethereum/etl_tokens.csv"
        ),
        dir.path().join("tokens.csv"),
    )
    .expect("copy");
    write_provider(
        dir.path(),
        "tokens",
        "entity = \"token\"\n[source]\nkind = \"file\"\npath = \"tokens.csv\"\n[fields]\naddress = \"address\"\n",
    );
    write_provider(
        dir.path(),
        "pushed",
        "entity = \"record\"\ndataset = \"pushed\"\nkey = \"id\"\n[source]\nkind = \"push\"\n[fields]\nid = \"id\"\n",
    );
    let providers = dir.path().to_path_buf();
    let app = TestApp::spawn_with(Backend::Sqlite, move |s| s.providers_dir = providers).await;

    // The other origin: the same address, another port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let page_url = format!("http://{}/", listener.local_addr().expect("address"));
    let page = axum::Router::new().route(
        "/",
        axum::routing::get(|| async {
            axum::response::Html("<!doctype html><title>elsewhere</title><p>another site</p>")
        }),
    );
    tokio::spawn(async move { axum::serve(listener, page).await });

    let target = serde_json::to_string(&app.address).expect("JSON");
    let outcome =
        crate::common::browser::run_in_page(&page_url, &format!("{HOSTILE_SCRIPT}({target})"))
            .await
            .unwrap_or_else(|e| panic!("the page in Chromium: {e}"));
    // The browser sent the simple requests; the server refused them unread.
    assert_eq!(outcome["textPlain"], "sent", "{outcome}");
    assert_eq!(outcome["push"], "sent", "{outcome}");
    assert_eq!(outcome["json"], "blocked", "{outcome}");
    assert_eq!(outcome["ws"], "refused", "{outcome}");
    let runs = entity::ingest_run::Entity::find()
        .count(&app.db)
        .await
        .expect("count");
    assert_eq!(runs, 0, "a page started a run or pushed records");
    let records = entity::record::Entity::find()
        .count(&app.db)
        .await
        .expect("count");
    assert_eq!(records, 0);

    // What the server answers them, and that JSON clients are untouched.
    let post = |path: &str, content_type: Option<&str>, body: &str| {
        let mut request = app
            .client
            .post(format!("{}{path}", app.address))
            .body(body.to_string());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };
    let mutation =
        r#"{"query": "mutation { triggerIngest(provider: \"tokens\") { run { id } } }"}"#;
    let refused = post("/graphql", Some("text/plain;charset=UTF-8"), mutation)
        .await
        .expect("post");
    assert_eq!(refused.status(), 415);
    assert_eq!(
        refused.json::<Value>().await.expect("json"),
        json!({"error": "Content-Type must be application/json (found `text/plain;charset=UTF-8`)"})
    );
    let untyped = post("/graphql", None, mutation).await.expect("post");
    assert_eq!(untyped.status(), 415);
    let push = post("/ingest/pushed", Some("text/plain"), r#"[{"id": "x"}]"#)
        .await
        .expect("post");
    assert_eq!(push.status(), 415);
    assert_eq!(
        push.json::<Value>().await.expect("json"),
        json!({"error": "Content-Type must be application/json, or application/x-ndjson for JSON lines (found `text/plain`)"})
    );
    let lines = post(
        "/ingest/pushed",
        Some("application/x-ndjson"),
        "{\"id\": \"a\"}\n{\"id\": \"b\"}\n",
    )
    .await
    .expect("post");
    assert_eq!(lines.status(), 200);
    let allowed = post("/graphql", Some("application/json"), mutation)
        .await
        .expect("post");
    let answer: Value = allowed.json().await.expect("json");
    assert!(
        answer["data"]["triggerIngest"]["run"]["id"].is_string(),
        "{answer}"
    );

    // The WebSocket from a listed origin or none is accepted; from another, 403.
    let ws = |origin: Option<&str>| {
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                format!("{}/graphql/ws", app.address.replace("http://", "ws://")),
            )
            .expect("request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().expect("header"),
        );
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().expect("header"));
        }
        tokio_tungstenite::connect_async(request)
    };
    assert!(
        ws(None).await.is_ok(),
        "a client without an Origin connects"
    );
    assert!(
        ws(Some(&app.address)).await.is_ok(),
        "the server's own origin (GraphiQL) connects"
    );
    match ws(Some("http://127.0.0.1:1")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected 403, got {other:?}"),
    }
}
