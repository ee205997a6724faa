//! Hostile providers: slow answers, connection resets, 5xx bursts, 429 storms, truncated and
//! malformed bodies, HTML error pages, and pagination that repeats or goes backwards. Recoverable
//! faults end with exactly the records a clean run gives; unrecoverable ones fail the run with
//! an error naming the page and the URL (without secrets), keeping what was fetched before and
//! duplicating nothing when the run is resumed.

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::common::mock_provider::{Fault, MockConfig, MockProvider};
use crate::common::{Backend, TestApp, provider, run};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::EntityTrait;
use tributary::store::runs::{RunMode, RunStatus};

/// The API key the fault providers send as a query parameter; never shown in an error.
const API_KEY_VAR: &str = "FAULTS_TEST_API_KEY";
const API_KEY: &str = "k3y-that-must-not-show";

/// A provider of the mock's generic items into dataset `name`, `attempts` tries per request.
fn items(base: &str, name: &str, path: &str, attempts: u32, extra: &str) -> String {
    format!(
        r#"
entity = "record"
dataset = "{name}"
key = "id"
[source]
kind = "http"
url = "{base}{path}"
query = {{ api_key = "${{{API_KEY_VAR}}}" }}
retry = {{ attempts = {attempts}, initial_backoff_ms = 10, max_backoff_ms = 20 }}
{extra}
[fields]
id = "$.id"
name = "$.name"
"#
    )
}

const OFFSET: &str =
    "records = \"$.data[*]\"\n[source.pagination]\nkind = \"offset\"\npage_size = 10";

fn ids(range: RangeInclusive<usize>) -> Vec<String> {
    range.map(|i| i.to_string()).collect()
}

fn set_api_key() {
    // SAFETY of the test: every test of this file sets the same value.
    unsafe { std::env::set_var(API_KEY_VAR, API_KEY) };
}

/// Faults by request number, as [`MockConfig::scripted`] takes them.
type Scripted = Vec<(RangeInclusive<usize>, Fault)>;

async fn recoverable_faults_end_with_exact_counts(backend: Backend) {
    set_api_key();
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let status = |status: u16| Fault::Status {
        status,
        retry_after: None,
    };
    // (name, scripted faults, timeout, requests the run makes: 10 pages plus one per fault)
    let cases: Vec<(&str, Scripted, u64, usize)> = vec![
        (
            "slow",
            vec![(1..=usize::MAX, Fault::Delay(Duration::from_millis(300)))],
            2,
            10,
        ),
        (
            "resets",
            vec![(2..=2, Fault::Reset), (6..=6, Fault::Reset)],
            5,
            12,
        ),
        (
            "burst",
            vec![
                (3..=3, status(500)),
                (4..=4, status(502)),
                (5..=5, status(503)),
                (6..=6, status(504)),
                (7..=7, status(500)),
            ],
            5,
            15,
        ),
        (
            "bodies",
            vec![
                (2..=2, Fault::Truncate),
                (4..=4, Fault::Malformed),
                (6..=6, Fault::Html),
            ],
            5,
            13,
        ),
    ];
    for (name, scripted, timeout, requests) in cases {
        let mock = MockProvider::start(MockConfig {
            scripted,
            ..Default::default()
        })
        .await;
        let extra = format!("timeout_secs = {timeout}\n{OFFSET}");
        let p = provider(
            dir.path(),
            name,
            &items(&mock.base_url, name, "/offset", 8, &extra),
        );
        let summary = run(&app, &p, RunMode::Full).await;
        assert_eq!(summary.status, RunStatus::Succeeded, "{name}: {summary:?}");
        assert_eq!(
            (
                summary.pages,
                summary.fetched,
                summary.counts.inserted,
                summary.rejected
            ),
            (10, 95, 95, 0),
            "{name}"
        );
        assert_eq!(
            crate::common::record_keys(&app, name).await,
            ids(1..=95),
            "{name}"
        );
        assert_eq!(
            mock.total_requests(),
            requests,
            "{name}: one retry per fault"
        );
    }
}
on_both_databases!(recoverable_faults_end_with_exact_counts);

async fn a_429_storm_is_waited_out_as_retry_after_says(backend: Backend) {
    set_api_key();
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let too_many = Fault::Status {
        status: 429,
        retry_after: Some(1),
    };
    let mock = MockProvider::start(MockConfig {
        items: 30,
        scripted: vec![(2..=4, too_many)],
        ..Default::default()
    })
    .await;
    let p = provider(
        dir.path(),
        "storm",
        &items(&mock.base_url, "storm", "/offset", 5, OFFSET),
    );
    let summary = run(&app, &p, RunMode::Full).await;
    assert_eq!(summary.status, RunStatus::Succeeded, "{:?}", summary.error);
    assert_eq!((summary.fetched, summary.counts.inserted), (30, 30));
    assert_eq!(crate::common::record_keys(&app, "storm").await, ids(1..=30));
    // Page 2 was refused three times; each retry came only after the second the server asked
    // for, although the configured backoff is 10 ms.
    let log = mock.request_log();
    assert_eq!(log.len(), 7, "{log:?}");
    assert!(
        log[1..=4].iter().all(|r| r.contains("offset=10")),
        "{log:?}"
    );
    let times = mock.request_times();
    for n in 1..=3 {
        let waited = times[n + 1] - times[n];
        assert!(
            waited >= Duration::from_secs(1),
            "retry {n} came {waited:?} after a 429 with Retry-After: 1"
        );
    }
}
on_both_databases!(a_429_storm_is_waited_out_as_retry_after_says);

async fn unrecoverable_faults_fail_the_run_naming_page_and_url(backend: Backend) {
    set_api_key();
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let cases = [
        ("truncated", Fault::Truncate),
        ("malformed", Fault::Malformed),
        ("html", Fault::Html),
        ("reset", Fault::Reset),
        (
            "unavailable",
            Fault::Status {
                status: 503,
                retry_after: None,
            },
        ),
    ];
    for (name, fault) in cases {
        // Page 4 fails on both attempts; later requests (the resumed run) are answered.
        let mock = MockProvider::start(MockConfig {
            scripted: vec![(4..=5, fault)],
            ..Default::default()
        })
        .await;
        let p = provider(
            dir.path(),
            name,
            &items(&mock.base_url, name, "/offset", 2, OFFSET),
        );
        let failed = run(&app, &p, RunMode::Full).await;
        assert_eq!(failed.status, RunStatus::Failed, "{name}");
        let error = failed.error.clone().expect("an error");
        let at = format!(
            "page 4: GET {}/offset?api_key=***&offset=30&limit=10: ",
            mock.base_url
        );
        assert!(error.starts_with(&at), "{name}: {error}");
        let reason = &error[at.len()..];
        let expected_reason = match name {
            "malformed" => format!(
                "unreadable body (key must be a string at line 1 column 2; {} bytes, content-type \"application/json\") after 2 attempt(s)",
                crate::common::mock_provider::MALFORMED_BODY.len()
            ),
            "html" => format!(
                "unreadable body (expected value at line 1 column 1; {} bytes, content-type \"text/html; charset=utf-8\") after 2 attempt(s)",
                crate::common::mock_provider::HTML_ERROR_PAGE.len()
            ),
            "unavailable" => "HTTP 503 after 2 attempt(s)".to_string(),
            _ => reason.to_string(),
        };
        assert_eq!(reason, expected_reason, "{name}");
        match name {
            "truncated" => assert!(
                reason.starts_with("unreadable body (EOF while parsing")
                    && reason.ends_with("content-type \"application/json\") after 2 attempt(s)"),
                "{reason}"
            ),
            "reset" => assert!(
                reason.starts_with("reading the body failed")
                    && reason.ends_with("after 2 attempt(s)"),
                "{reason}"
            ),
            _ => {}
        }
        assert!(!error.contains(API_KEY), "{error}");
        // The three pages before the fault are kept, and the run row says what happened.
        assert_eq!((failed.pages, failed.fetched), (3, 30), "{name}");
        assert_eq!(
            crate::common::record_keys(&app, name).await,
            ids(1..=30),
            "{name}"
        );
        let row = entity::ingest_run::Entity::find_by_id(failed.run_id)
            .one(&app.db)
            .await
            .expect("query")
            .expect("the run row");
        assert_eq!(
            (row.status.as_str(), row.fetched, row.error.as_deref()),
            ("failed", 30, Some(error.as_str())),
            "{name}"
        );
        // Resumed, the run goes on from page 4: every record once.
        let resumed = run(&app, &p, RunMode::Incremental).await;
        assert_eq!(resumed.status, RunStatus::Succeeded, "{name}: {resumed:?}");
        assert_eq!(
            (resumed.fetched, resumed.counts.inserted),
            (65, 65),
            "{name}"
        );
        assert_eq!(
            crate::common::record_keys(&app, name).await,
            ids(1..=95),
            "{name}"
        );
    }
}
on_both_databases!(unrecoverable_faults_fail_the_run_naming_page_and_url);

async fn pagination_that_repeats_or_goes_backwards_is_stopped(backend: Backend) {
    set_api_key();
    let app = TestApp::spawn(backend).await;
    let mock = MockProvider::start(MockConfig::default()).await;
    let dir = tempfile::tempdir().expect("dir");
    let cursor = |offset: usize| URL_SAFE_NO_PAD.encode(format!("offset:{offset}"));
    let cursor_pagination = "records = \"$.items[*]\"\n[source.pagination]\nkind = \"cursor\"\ntoken_path = \"$.next\"\nparam = \"cursor\"";
    let cases = [
        (
            "cursor-repeat",
            cursor_pagination.to_string(),
            format!(
                "page 5: the provider's next page is page 4 again (cursor {:?}): its pagination repeats or goes backwards; stopped instead of looping",
                cursor(30)
            ),
            4,
        ),
        (
            "cursor-back",
            cursor_pagination.to_string(),
            format!(
                "page 5: the provider's next page is page 2 again (cursor {:?}): its pagination repeats or goes backwards; stopped instead of looping",
                cursor(10)
            ),
            4,
        ),
        (
            "link-back",
            "records = \"$\"\n[source.pagination]\nkind = \"link\"".to_string(),
            format!(
                "page 5: the provider's next page is page 2 again (URL {}/link-back?page=2): its pagination repeats or goes backwards; stopped instead of looping",
                mock.base_url
            ),
            4,
        ),
        (
            "page-stuck",
            "records = \"$.results[*]\"\n[source.pagination]\nkind = \"page\"\nsize_param = \"per_page\"\npage_size = 10".to_string(),
            "page 5: the provider answered the same records as an earlier page: its pagination repeats or goes backwards; stopped instead of looping".to_string(),
            5,
        ),
    ];
    for (route, pagination, expected, requests) in cases {
        let before = mock.requests(route);
        let p = provider(
            dir.path(),
            route,
            &items(&mock.base_url, route, &format!("/{route}"), 1, &pagination),
        );
        let summary = run(&app, &p, RunMode::Full).await;
        assert_eq!(summary.status, RunStatus::Failed, "{route}");
        assert_eq!(summary.error.as_deref(), Some(expected.as_str()), "{route}");
        // The four good pages are kept, once each.
        assert_eq!((summary.pages, summary.fetched), (4, 40), "{route}");
        assert_eq!(
            crate::common::record_keys(&app, route).await,
            ids(1..=40),
            "{route}"
        );
        assert_eq!(mock.requests(route) - before, requests, "{route}");
    }
}
on_both_databases!(pagination_that_repeats_or_goes_backwards_is_stopped);

async fn a_body_that_never_ends_is_cut_off(backend: Backend) {
    set_api_key();
    let app = TestApp::spawn(backend).await;
    let mock = MockProvider::start(MockConfig::default()).await;
    let dir = tempfile::tempdir().expect("dir");
    let p = provider(
        dir.path(),
        "endless",
        &items(
            &mock.base_url,
            "endless",
            "/endless",
            3,
            "timeout_secs = 60",
        ),
    );
    let summary = run(&app, &p, RunMode::Full).await;
    assert_eq!(summary.status, RunStatus::Failed);
    assert_eq!(
        summary.error.as_deref(),
        Some(
            format!(
                "page 1: GET {}/endless?api_key=***: the body is larger than 64 MiB, the most one provider response may hold after 1 attempt(s)",
                mock.base_url
            )
            .as_str()
        )
    );
    assert_eq!(mock.requests("endless"), 1, "not retried");
    assert_eq!(
        crate::common::record_keys(&app, "endless").await,
        Vec::<String>::new()
    );
}
on_both_databases!(a_body_that_never_ends_is_cut_off);
