//! The provider engine end to end: real HTTP to a local stand-in provider serving recorded
//! payloads (with their pagination quirks and injected faults), into both databases.

use std::path::Path;
use std::time::Duration;

use crate::common::mock_provider::{MockConfig, MockProvider, PATIENTS, patient_age, patient_name};
use crate::common::{Backend, TestApp, provider, run};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use tributary::providers::load::load_file;
use tributary::store::runs::{RunMode, RunStatus};

async fn record_count(app: &TestApp, dataset: &str) -> u64 {
    entity::record::Entity::find()
        .filter(entity::record::Column::Dataset.eq(dataset))
        .count(&app.db)
        .await
        .expect("count")
}

fn items_provider(base: &str, pagination: &str, path: &str, records: &str) -> String {
    format!(
        r#"
entity = "record"
dataset = "items"
key = "id"
[source]
kind = "http"
url = "{base}{path}"
records = "{records}"
retry = {{ attempts = 2, initial_backoff_ms = 10, max_backoff_ms = 20 }}
{pagination}
[fields]
id = "$.id"
name = "$.name"
value = {{ path = "$.value", transforms = ["int"] }}
"#
    )
}

async fn every_pagination_kind_fetches_every_record_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mock = MockProvider::start(MockConfig {
        items: 95,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let cases = [
        (
            "offset",
            "/offset",
            "$.data[*]",
            "[source.pagination]\nkind = \"offset\"\npage_size = 10",
        ),
        (
            "page",
            "/page",
            "$.results[*]",
            "[source.pagination]\nkind = \"page\"\nsize_param = \"per_page\"\npage_size = 10",
        ),
        (
            "cursor",
            "/cursor",
            "$.items[*]",
            "[source.pagination]\nkind = \"cursor\"\ntoken_path = \"$.next\"\nparam = \"cursor\"",
        ),
        (
            "cursor-header",
            "/cursor-header",
            "$.items[*]",
            "[source.pagination]\nkind = \"cursor\"\ntoken_header = \"X-Next-Cursor\"\nparam = \"cursor\"",
        ),
        ("link", "/link", "$", "[source.pagination]\nkind = \"link\""),
        // The Link header's URLs then hold a comma (`ids=1,2`), which splits no link.
        (
            "link-comma",
            "/link?ids=1,2",
            "$",
            "[source.pagination]\nkind = \"link\"",
        ),
        (
            "link-body",
            "/link-body",
            "$.items[*]",
            "[source.pagination]\nkind = \"link\"\nnext_path = \"$.links.next\"",
        ),
        (
            "past-end",
            "/past-end",
            "$.data[*]",
            "[source.pagination]\nkind = \"offset\"\npage_size = 10\nend = { statuses = [404] }",
        ),
    ];
    for (name, path, records, pagination) in cases {
        let p = provider(
            dir.path(),
            &format!("items-{name}"),
            &items_provider(&mock.base_url, pagination, path, records),
        );
        let summary = run(&app, &p, RunMode::Full).await;
        assert_eq!(
            summary.status,
            RunStatus::Succeeded,
            "{name}: {:?}",
            summary.error
        );
        assert_eq!(summary.fetched, 95, "{name}");
        assert_eq!(summary.rejected, 0, "{name}");
        let expected_keys: Vec<String> = (1..=95).map(|i| i.to_string()).collect();
        assert_eq!(
            crate::common::record_keys(&app, "items").await,
            expected_keys,
            "{name}"
        );
    }
    // The first run inserted all 95; every later kind found them unchanged.
    let data = app
        .query(
            r#"{ records(dataset: "items", first: 2) { nodes { key data } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        data["records"]["nodes"],
        json!([
            { "key": "1", "data": { "id": 1, "name": "item-1", "value": 10 } },
            { "key": "10", "data": { "id": 10, "name": "item-10", "value": 100 } }
        ])
    );
}
on_both_databases!(every_pagination_kind_fetches_every_record_once);

fn silk_provider(base: &str, tool: &str, page_size: u64) -> String {
    format!(
        r#"
entity = "record"
dataset = "{tool}"
key = "id"
[source]
kind = "http"
method = "POST"
url = "{base}/api/{tool}/hosts/get"
headers = {{ token = "${{SILK_TEST_TOKEN}}" }}
retry = {{ attempts = 2, initial_backoff_ms = 10, max_backoff_ms = 20 }}
[source.pagination]
kind = "offset"
offset_param = "skip"
limit_param = "limit"
page_size = {page_size}
end = {{ statuses = [500], shrink_on_end_status = true }}
[fields]
id = "$._id"
"#
    )
}

/// An app, the Silk API stand-in expecting `${SILK_TEST_TOKEN}`, and a providers folder.
async fn silk_setup(backend: Backend) -> (TestApp, MockProvider, tempfile::TempDir) {
    // SAFETY of the test: the variable is only read by the provider runs below.
    unsafe { std::env::set_var("SILK_TEST_TOKEN", "s3cret-token") };
    let app = TestApp::spawn(backend).await;
    let mock = MockProvider::start(MockConfig {
        silk_token: Some("s3cret-token".into()),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    (app, mock, dir)
}

async fn the_silk_api_loses_no_host_whatever_the_page_size(backend: Backend) {
    let (app, mock, dir) = silk_setup(backend).await;
    for tool in ["qualys", "crowdstrike"] {
        for page_size in [1, 2, 3, 5, 7, 10] {
            let p = provider(
                dir.path(),
                &format!("{tool}-{page_size}"),
                &silk_provider(&mock.base_url, tool, page_size),
            );
            let summary = run(&app, &p, RunMode::Full).await;
            assert_eq!(
                summary.status,
                RunStatus::Succeeded,
                "{tool} {page_size}: {:?}",
                summary.error
            );
            assert_eq!(summary.fetched, 7, "{tool} page size {page_size}");
            assert_eq!(
                record_count(&app, tool).await,
                7,
                "{tool} page size {page_size}"
            );
        }
    }
    // The token never reaches the run rows.
    let runs = entity::ingest_run::Entity::find()
        .all(&app.db)
        .await
        .expect("runs");
    assert!(
        runs.iter()
            .all(|r| !format!("{r:?}").contains("s3cret-token"))
    );
}
on_both_databases!(the_silk_api_loses_no_host_whatever_the_page_size);

/// A skipped record still holds its place in an offset listing: a page that loses records to a
/// `skip` rule is not a short (last) page, and the next offset counts past them.
async fn skipped_records_do_not_end_an_offset_listing(backend: Backend) {
    let (app, mock, dir) = silk_setup(backend).await;
    for page_size in [1, 2, 3] {
        // The second of the seven Qualys hosts, on the first page whatever its size.
        let definition = silk_provider(&mock.base_url, "qualys", page_size).replace(
            "[source.pagination]",
            "skip = [{ field = \"$.name\", equals = \"ip-172-31-93-76.ec2.internal\" }]\n[source.pagination]",
        );
        let dataset = format!("qualys-skip-{page_size}");
        let definition =
            definition.replace("dataset = \"qualys\"", &format!("dataset = \"{dataset}\""));
        let p = provider(dir.path(), &dataset, &definition);
        let summary = run(&app, &p, RunMode::Full).await;
        assert_eq!(summary.status, RunStatus::Succeeded, "{:?}", summary.error);
        assert_eq!(summary.fetched, 6, "page size {page_size}");
        assert_eq!(
            record_count(&app, &dataset).await,
            6,
            "page size {page_size}"
        );
    }
}
on_both_databases!(skipped_records_do_not_end_an_offset_listing);

fn patients_provider(base: &str, concurrency: usize) -> String {
    format!(
        r#"
entity = "record"
dataset = "patients"
key = "id"
[source]
kind = "http"
url = "{base}/storage/v1/b/patients-bucket/o"
records = "$.items[*]"
skip = [{{ field = "$.name", starts_with = "index" }}]
retry = {{ attempts = 5, initial_backoff_ms = 10, max_backoff_ms = 50 }}
[source.pagination]
kind = "cursor"
token_path = "$.nextPageToken"
param = "pageToken"
[source.follow]
url = "$.mediaLink"
concurrency = {concurrency}
[parse]
format = "text"
pattern = '(?s)ID: (?P<id>[^\n]*)\nNAME: (?P<name>[^\n]*)\nAGE: (?P<age>[^\n]*)\nINSTITUTION: (?P<institution>[^\n]*)\nACTIVITY: (?P<activity>[^\n]*)\nCOMMENT: (?P<comment>.*)'
[fields]
id = {{ path = "id", transforms = ["trim"] }}
name_hash = {{ path = "name", transforms = ["trim", {{ sha256 = {{ key = "test-pii-key" }} }}] }}
age = {{ path = "age", transforms = [{{ int = {{ default = -1 }} }}] }}
institution = {{ path = "institution", transforms = ["trim"] }}
activity = {{ path = "activity", transforms = ["trim"] }}
comment = {{ path = "comment", transforms = ["trim"] }}
"#
    )
}

async fn the_patients_pipeline_lands_ten_thousand_records(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mock = MockProvider::start(MockConfig::default()).await;
    let dir = tempfile::tempdir().expect("dir");
    let p = provider(
        dir.path(),
        "patients",
        &patients_provider(&mock.base_url, 16),
    );
    let summary = run(&app, &p, RunMode::Full).await;
    assert_eq!(summary.status, RunStatus::Succeeded, "{:?}", summary.error);
    assert_eq!(
        (summary.pages, summary.fetched, summary.rejected),
        (10, 10_000, 0)
    );
    assert_eq!(summary.counts.inserted, 10_000);
    assert_eq!(record_count(&app, "patients").await, 10_000);
    assert_eq!(mock.requests("listing"), 10);
    assert_eq!(mock.requests("document"), 10_000);

    for id in [1u32, 2, 3, 777, 10_000] {
        let data = app
            .query(
                r#"query($k: String!) { records(dataset: "patients", where: {key: {eq: $k}}) { nodes { data } } }"#,
                json!({ "k": id.to_string() }),
            )
            .await;
        let record = &data["records"]["nodes"][0]["data"];
        assert_eq!(
            record["age"],
            json!(patient_age(id).unwrap_or(-1)),
            "patient {id}"
        );
        // NAME is stored only as a keyed hash: never in clear, anywhere in the record.
        let name = patient_name(id);
        assert!(
            !record.to_string().contains(&name),
            "patient {id}: {record}"
        );
        assert_eq!(record["name_hash"].as_str().map(str::len), Some(64));
    }
    // A provider that hashes or redacts a field keeps no raw payloads by default: the
    // document text would hold NAME in clear.
    let raw = entity::raw_record::Entity::find()
        .filter(entity::raw_record::Column::Provider.eq("patients"))
        .count(&app.db)
        .await
        .expect("count");
    assert_eq!(raw, 0);
    let again = run(&app, &p, RunMode::Full).await;
    assert_eq!(again.counts.unchanged, 10_000);
    assert_eq!(again.counts.inserted + again.counts.updated, 0);
}
on_both_databases!(the_patients_pipeline_lands_ten_thousand_records);

/// A followed text document that the pattern does not match is rejected with the reason, not
/// dropped: the documents whose AGE line holds no digit here.
async fn a_document_the_pattern_does_not_match_is_rejected(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mock = MockProvider::start(MockConfig::default()).await;
    let dir = tempfile::tempdir().expect("dir");
    let text = patients_provider(&mock.base_url, 16)
        .replace(r"AGE: (?P<age>[^\n]*)\n", r"AGE: (?P<age>[^\n]*\d[^\n]*)\n");
    assert!(text.contains(r"[^\n]*\d[^\n]*"), "the pattern was changed");
    let p = provider(dir.path(), "patients", &text);
    let summary = run(&app, &p, RunMode::Full).await;
    assert_eq!(summary.status, RunStatus::Succeeded, "{:?}", summary.error);
    let without_age = (1..=PATIENTS as u32)
        .filter(|&id| patient_age(id).is_none())
        .count() as u64;
    assert!(without_age > 0);
    assert_eq!(
        (summary.fetched, summary.counts.inserted, summary.rejected),
        (10_000, 10_000 - without_age, without_age)
    );
    let rejected = entity::rejected_record::Entity::find()
        .filter(entity::rejected_record::Column::Provider.eq("patients"))
        .all(&app.db)
        .await
        .expect("rejections");
    assert_eq!(rejected.len() as u64, without_age);
    assert!(
        rejected
            .iter()
            .all(|r| r.reason == "parse.pattern: no match in the document"
                && r.payload.as_deref().is_some_and(|p| p.starts_with("ID: "))),
        "{:?}",
        rejected.first()
    );
}
on_both_databases!(a_document_the_pattern_does_not_match_is_rejected);

async fn faults_are_retried_and_counts_stay_exact(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mock = MockProvider::start(MockConfig {
        items: 95,
        fault_rate: 0.2,
        hang_request: Some(3),
        hang_for: Duration::from_secs(3),
        truncate_request: Some(5),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let toml = items_provider(
        &mock.base_url,
        "timeout_secs = 1\n[source.pagination]\nkind = \"offset\"\npage_size = 10",
        "/offset",
        "$.data[*]",
    )
    .replace(
        "retry = { attempts = 2, initial_backoff_ms = 10, max_backoff_ms = 20 }",
        "retry = { attempts = 8, initial_backoff_ms = 10, max_backoff_ms = 50 }",
    );
    let p = provider(dir.path(), "faulty", &toml);
    let summary = run(&app, &p, RunMode::Full).await;
    assert_eq!(summary.status, RunStatus::Succeeded, "{:?}", summary.error);
    assert_eq!(
        (summary.fetched, summary.counts.inserted, summary.rejected),
        (95, 95, 0)
    );
    assert_eq!(record_count(&app, "items").await, 95);
    assert!(mock.faults() > 0, "faults were injected");

    // With one attempt per request, the first fault ends the run, naming page, URL and status.
    let strict = provider(
        dir.path(),
        "strict",
        &toml.replace(
            "retry = { attempts = 8, initial_backoff_ms = 10, max_backoff_ms = 50 }",
            "retry = { attempts = 1 }",
        ),
    );
    let failed = run(&app, &strict, RunMode::Full).await;
    assert_eq!(failed.status, RunStatus::Failed);
    let error = failed.error.expect("error");
    assert!(
        error.starts_with("page ") && error.contains(&format!(": GET {}/offset?", mock.base_url)),
        "{error}"
    );
    assert!(error.contains("after 1 attempt(s)"), "{error}");
}
on_both_databases!(faults_are_retried_and_counts_stay_exact);

async fn a_listing_that_never_ends_is_stopped(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mock = MockProvider::start(MockConfig::default()).await;
    let dir = tempfile::tempdir().expect("dir");
    let toml = items_provider(
        &mock.base_url,
        "max_pages = 5\n[source.pagination]\nkind = \"cursor\"\ntoken_path = \"$.next\"\nparam = \"cursor\"",
        "/forever",
        "$.items[*]",
    );
    let p = provider(dir.path(), "forever", &toml);
    let summary = run(&app, &p, RunMode::Full).await;
    assert_eq!(summary.status, RunStatus::Failed);
    assert_eq!(
        summary.error.as_deref(),
        Some(
            "stopped after max_pages = 5 pages: the listing did not end (a cursor that never ends?)"
        )
    );
    assert_eq!(summary.pages, 5);
}
on_both_databases!(a_listing_that_never_ends_is_stopped);

async fn mapping_errors_are_rejected_and_the_rest_lands(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mock = MockProvider::start(MockConfig {
        items: 30,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    // `value` is a number; the `mac` transform refuses it, for every record but none other.
    let toml = items_provider(&mock.base_url, "[source.pagination]\nkind = \"offset\"\npage_size = 10", "/offset", "$.data[*]")
        .replace("value = { path = \"$.value\", transforms = [\"int\"] }", "value = { path = \"$.value\", transforms = [\"int\"] }\nlabel = { path = \"$.name\", transforms = [\"ip\"] }");
    let p = provider(dir.path(), "bad-mapping", &toml);
    let summary = run(&app, &p, RunMode::Full).await;
    assert_eq!(summary.status, RunStatus::Succeeded);
    assert_eq!(
        (summary.fetched, summary.rejected, summary.counts.inserted),
        (30, 30, 0)
    );
    let rejected = entity::rejected_record::Entity::find()
        .filter(entity::rejected_record::Column::Provider.eq("bad-mapping"))
        .all(&app.db)
        .await
        .expect("rejections");
    assert_eq!(rejected.len(), 30);
    assert!(
        rejected[0].reason.starts_with("label: "),
        "{}",
        rejected[0].reason
    );
    assert_eq!(rejected[0].run_id, Some(summary.run_id));
    let payload: Value =
        serde_json::from_str(rejected[0].payload.as_deref().expect("payload")).expect("json");
    assert_eq!(payload["name"], "item-1");
}
on_both_databases!(mapping_errors_are_rejected_and_the_rest_lands);

async fn renormalize_rebuilds_rows_without_fetching(backend: Backend) {
    use sea_orm::ConnectionTrait;
    let app = TestApp::spawn(backend).await;
    let mock = MockProvider::start(MockConfig {
        items: 25,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let p = provider(
        dir.path(),
        "renorm",
        &items_provider(
            &mock.base_url,
            "[source.pagination]\nkind = \"offset\"\npage_size = 10",
            "/offset",
            "$.data[*]",
        ),
    );
    run(&app, &p, RunMode::Full).await;
    let requests = mock.total_requests();
    app.db
        .execute_unprepared("DELETE FROM records")
        .await
        .expect("delete");
    let summary = run(&app, &p, RunMode::Renormalize).await;
    assert_eq!(summary.status, RunStatus::Succeeded);
    assert_eq!((summary.fetched, summary.counts.inserted), (25, 25));
    assert_eq!(record_count(&app, "items").await, 25);
    assert_eq!(
        mock.total_requests(),
        requests,
        "no request to the provider"
    );
}
on_both_databases!(renormalize_rebuilds_rows_without_fetching);

async fn file_providers_read_local_and_remote_files(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mock = MockProvider::start(MockConfig::default()).await;
    let dir = tempfile::tempdir().expect("dir");
    let fields = r#"
[fields]
token_address = { path = "$.token_address", transforms = ["hex"] }
from_address = { path = "$.from_address", transforms = ["hex"] }
to_address = { path = "$.to_address", transforms = ["hex"] }
value = { path = "$.value", transforms = ["uint256"] }
transaction_hash = { path = "$.transaction_hash", transforms = ["hex"] }
log_index = { path = "$.log_index", transforms = ["int"] }
block_number = { path = "$.block_number", transforms = ["int"] }
block_timestamp = { path = "$.block_timestamp", transforms = ["timestamp"] }
"#;
    let remote = provider(
        dir.path(),
        "remote",
        &format!(
            "entity = \"transfer\"\n[source]\nkind = \"file\"\npath = \"{}/files/stream_token_transfers_17173049.jsonl.gz\"\n{fields}",
            mock.base_url
        ),
    );
    let summary = run(&app, &remote, RunMode::Full).await;
    assert_eq!(summary.status, RunStatus::Succeeded, "{:?}", summary.error);
    assert_eq!(
        (summary.fetched, summary.counts.inserted, summary.rejected),
        (291, 291, 0)
    );
    let stats = app
        .query("{ transferStats { count totalValue } }", json!({}))
        .await;
    assert_eq!(
        stats["transferStats"],
        json!({ "count": 291, "totalValue": "18038949443500091328294109550989" })
    );
    // The shipped sample provider reads the bundled file next to the providers directory.
    let sample = load_file(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/providers/sample-transfers.toml"
    )))
    .expect("shipped provider loads");
    let local = run(&app, &sample, RunMode::Full).await;
    assert_eq!(local.status, RunStatus::Succeeded, "{:?}", local.error);
    assert_eq!((local.fetched, local.counts.unchanged), (291, 291));
}
on_both_databases!(file_providers_read_local_and_remote_files);

/// What `tributary providers` accepts, a run reads the same way: a name in upper case, a URL
/// whose query follows the extension, gzipped or not.
async fn file_names_read_in_a_run_as_the_check_reads_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mock = MockProvider::start(MockConfig::default()).await;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/ethereum/etl_token_transfers.csv"
        ),
        dir.path().join("DATA.CSV"),
    )
    .expect("copy");
    let fields = "[fields]\ntoken_address = \"token_address\"\nfrom_address = \"from_address\"\nto_address = \"to_address\"\nvalue = \"value\"\ntransaction_hash = \"transaction_hash\"\nlog_index = \"log_index\"\nblock_number = \"block_number\"\n";
    let paths = [
        "DATA.CSV".to_string(),
        format!(
            "{}/files/etl_token_transfers.csv?sig=a1b2&se=2030",
            mock.base_url
        ),
        format!(
            "{}/files/etl_token_transfers.csv.gz?sig=a1b2",
            mock.base_url
        ),
    ];
    for (i, path) in paths.iter().enumerate() {
        let name = format!("file-{i}");
        // Written and checked as `tributary providers` checks it, then run.
        let p = provider(
            dir.path(),
            &name,
            &format!(
                "entity = \"transfer\"\n[source]\nkind = \"file\"\npath = \"{path}\"\n{fields}"
            ),
        );
        let summary = run(&app, &p, RunMode::Full).await;
        assert_eq!(
            summary.status,
            RunStatus::Succeeded,
            "{path}: {:?}",
            summary.error
        );
        assert_eq!((summary.fetched, summary.rejected), (2, 0), "{path}");
        assert_eq!(
            summary.counts.inserted + summary.counts.unchanged,
            2,
            "{path}"
        );
    }
}
on_both_databases!(file_names_read_in_a_run_as_the_check_reads_them);

/// A file provider's line that is not UTF-8 or not JSON is rejected with its line; the rest
/// of the file lands.
async fn a_bad_line_in_a_file_is_rejected_and_the_rest_read(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let good = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/ethereum/stream_token_transfers_17173049.jsonl"
    ))
    .expect("sample");
    let lines: Vec<&str> = good.lines().collect();
    let mut bytes = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if i == 5 {
            bytes.extend_from_slice(b"{\"type\": \"token_transfer\", \"note\": \"\xff\xfe\"}\n");
        }
        if i == 9 {
            bytes.extend_from_slice(b"{\"value\": 1,}\n");
        }
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
    }
    std::fs::write(dir.path().join("transfers.jsonl"), &bytes).expect("write");
    let p = provider(
        dir.path(),
        "bad-lines",
        "entity = \"transfer\"\n[source]\nkind = \"file\"\npath = \"transfers.jsonl\"\n[fields]\ntoken_address = \"token_address\"\nfrom_address = \"from_address\"\nto_address = \"to_address\"\nvalue = { path = \"value\", transforms = [\"uint256\"] }\ntransaction_hash = \"transaction_hash\"\nlog_index = \"log_index\"\nblock_number = \"block_number\"\n",
    );
    let summary = run(&app, &p, RunMode::Full).await;
    assert_eq!(summary.status, RunStatus::Succeeded, "{:?}", summary.error);
    assert_eq!(
        (summary.fetched, summary.counts.inserted, summary.rejected),
        (293, 291, 2)
    );
    let rejected = entity::rejected_record::Entity::find()
        .filter(entity::rejected_record::Column::Provider.eq("bad-lines"))
        .all(&app.db)
        .await
        .expect("rejections");
    let mut found: Vec<(Option<i64>, String)> =
        rejected.into_iter().map(|r| (r.line, r.reason)).collect();
    found.sort();
    assert_eq!(found.len(), 2);
    assert_eq!(found[0], (Some(6), "line is not valid UTF-8".to_string()));
    assert_eq!(found[1].0, Some(11));
    assert!(found[1].1.starts_with("invalid JSON: "), "{found:?}");
}
on_both_databases!(a_bad_line_in_a_file_is_rejected_and_the_rest_read);

async fn a_killed_run_resumes_without_duplicates_or_gaps(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mock = MockProvider::start(MockConfig {
        latency: Duration::from_millis(2),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let p = provider(
        dir.path(),
        "patients",
        &patients_provider(&mock.base_url, 8),
    );

    // A separate server process runs the provider; it is killed (SIGKILL: no cleanup of any
    // kind) once a few batches are committed.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["ingest", "patients"])
        .env("DATABASE_URL", &app.database_url)
        .env("TRIBUTARY_PROVIDERS_DIR", dir.path())
        .env("TRIBUTARY_OUTBOUND__ALLOWED_NETWORKS", "[\"127.0.0.0/8\"]")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tributary ingest");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let pages: i64 = entity::ingest_run::Entity::find()
            .filter(entity::ingest_run::Column::Provider.eq("patients"))
            .one(&app.db)
            .await
            .expect("runs")
            .map_or(0, |r| r.pages);
        if pages >= 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the child never committed 3 batches"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let committed = record_count(&app, "patients").await;
    assert!(
        (3_000..10_000).contains(&committed),
        "{committed} committed before the kill"
    );

    // Started again, the provider continues from its checkpoint.
    let resumed = run(&app, &p, RunMode::Incremental).await;
    assert_eq!(resumed.status, RunStatus::Succeeded, "{:?}", resumed.error);
    assert_eq!(
        resumed.fetched,
        10_000 - committed,
        "resumed after the committed pages"
    );
    assert_eq!(resumed.counts.inserted, 10_000 - committed);
    assert_eq!(record_count(&app, "patients").await, 10_000);
    let keys: std::collections::BTreeSet<String> = crate::common::record_keys(&app, "patients")
        .await
        .into_iter()
        .collect();
    assert_eq!(keys, (1..=10_000).map(|i| i.to_string()).collect());
    // The same rows as a clean run: spot-check the mapped values.
    for id in [1u32, 4_321, 10_000] {
        let data = app
            .query(
                r#"query($k: String!) { records(dataset: "patients", where: {key: {eq: $k}}) { nodes { data } } }"#,
                json!({ "k": id.to_string() }),
            )
            .await;
        assert_eq!(
            data["records"]["nodes"][0]["data"]["age"],
            json!(patient_age(id).unwrap_or(-1))
        );
    }
}
on_both_databases!(a_killed_run_resumes_without_duplicates_or_gaps);

async fn an_http_csv_body_is_read_row_by_row(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mock = MockProvider::start(MockConfig::default()).await;
    let dir = tempfile::tempdir().expect("dir");
    let p = provider(
        dir.path(),
        "etl-csv",
        &format!(
            r#"entity = "transfer"
[source]
kind = "http"
url = "{}/files/etl_token_transfers.csv"
[parse]
format = "csv"
[fields]
token_address = {{ path = "token_address", transforms = ["hex"] }}
from_address = {{ path = "from_address", transforms = ["hex"] }}
to_address = {{ path = "to_address", transforms = ["hex"] }}
value = {{ path = "value", transforms = ["uint256"] }}
transaction_hash = {{ path = "transaction_hash", transforms = ["hex"] }}
log_index = {{ path = "log_index", transforms = ["int"] }}
block_number = {{ path = "block_number", transforms = ["int"] }}
"#,
            mock.base_url
        ),
    );
    let summary = run(&app, &p, RunMode::Full).await;
    assert_eq!(summary.status, RunStatus::Succeeded, "{:?}", summary.error);
    assert_eq!((summary.fetched, summary.counts.inserted), (2, 2));
    let data = app
        .query("{ transfers(orderBy: [{field: VALUE}]) { nodes { value logIndex blockNumber blockTimestamp } } }", json!({}))
        .await;
    assert_eq!(
        data["transfers"]["nodes"],
        json!([
            { "value": "100000", "logIndex": 0, "blockNumber": 483920, "blockTimestamp": null },
            { "value": "200000", "logIndex": 1, "blockNumber": 483920, "blockTimestamp": null }
        ])
    );
}
on_both_databases!(an_http_csv_body_is_read_row_by_row);
