//! The mock provider itself, checked over HTTP: the Silk API's 500-past-the-end rule on the
//! recorded hosts, the patients bucket listing and documents, every generic pagination route,
//! the files, and the injected latency, hangs, faults and truncation.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::mock_provider::{
    DATA_DIR, MockConfig, MockProvider, PATIENT_PAGES, PATIENTS, PATIENTS_PER_PAGE,
    SILK_INVALID_COMBO, item, patient_age, patient_document, patient_name, silk_hosts,
};
use serde_json::Value;

const TOKEN: &str = "s3cret";

async fn silk_post(
    client: &reqwest::Client,
    mock: &MockProvider,
    tool: &str,
    query: &str,
) -> reqwest::Response {
    client
        .post(mock.url(&format!("/api/{tool}/hosts/get{query}")))
        .header("token", TOKEN)
        .send()
        .await
        .expect("POST to the Silk mock")
}

#[tokio::test]
async fn silk_answers_500_whenever_skip_plus_limit_passes_the_last_host() {
    let mock = MockProvider::start(MockConfig {
        silk_token: Some(TOKEN.into()),
        ..MockConfig::default()
    })
    .await;
    let client = reqwest::Client::new();

    for tool in ["qualys", "crowdstrike"] {
        let hosts = silk_hosts(tool);
        assert_eq!(hosts.len(), 7, "{tool} sample hosts");
        let expected: Vec<Value> = hosts
            .iter()
            .map(|raw| serde_json::from_str(raw.get()).expect("a host document"))
            .collect();

        // Without or with a wrong token: 401.
        let url = mock.url(&format!("/api/{tool}/hosts/get?skip=0&limit=1"));
        let missing = client.post(&url).send().await.expect("POST");
        assert_eq!(missing.status(), 401);
        let wrong = client
            .post(&url)
            .header("token", "nope")
            .send()
            .await
            .expect("POST");
        assert_eq!(wrong.status(), 401);

        // limit=2 walks 0, 2, 4, then skip=6 fails: 6 + 2 > 7.
        for skip in [0, 2, 4] {
            let response = silk_post(&client, &mock, tool, &format!("?skip={skip}&limit=2")).await;
            assert_eq!(response.status(), 200);
            let page: Vec<Value> = response.json().await.expect("a JSON array");
            assert_eq!(page, expected[skip..skip + 2], "{tool} skip={skip}");
        }
        let past = silk_post(&client, &mock, tool, "?skip=6&limit=2").await;
        assert_eq!(past.status(), 500);
        assert_eq!(past.text().await.expect("body"), SILK_INVALID_COMBO);

        // Only limit=1 reaches the 7th host, byte for byte as recorded.
        let last = silk_post(&client, &mock, tool, "?skip=6&limit=1").await;
        assert_eq!(last.status(), 200);
        assert_eq!(
            last.text().await.expect("body"),
            format!("[{}]", hosts[6].get())
        );

        // Never a short or empty page.
        for query in ["?skip=7&limit=1", "?skip=5&limit=10", "?skip=7"] {
            let response = silk_post(&client, &mock, tool, query).await;
            assert_eq!(response.status(), 500, "{tool}{query}");
            assert_eq!(response.text().await.expect("body"), SILK_INVALID_COMBO);
        }

        // `limit` defaults to 1, `skip` to 0; the whole set at once is fine.
        let default: Vec<Value> = silk_post(&client, &mock, tool, "?skip=3")
            .await
            .json()
            .await
            .expect("JSON");
        assert_eq!(default, expected[3..4]);
        let first: Vec<Value> = silk_post(&client, &mock, tool, "")
            .await
            .json()
            .await
            .expect("JSON");
        assert_eq!(first, expected[..1]);
        let all: Vec<Value> = silk_post(&client, &mock, tool, "?skip=0&limit=7")
            .await
            .json()
            .await
            .expect("JSON");
        assert_eq!(all, expected);
    }

    // GET is not the API.
    let get = client
        .get(mock.url("/api/qualys/hosts/get?skip=0&limit=1"))
        .send()
        .await
        .expect("GET");
    assert_eq!(get.status(), 405);
    assert_eq!(mock.requests("qualys"), 14);
    assert_eq!(mock.requests("crowdstrike"), 13);
    assert_eq!(mock.total_requests(), 27);
}

/// Reads a patient document back: (id, name, first integer of AGE, comment lines).
fn parse_patient(text: &str) -> (u32, String, Option<i64>, usize) {
    let mut lines = text.lines();
    let mut field = |key: &str| {
        let line = lines.next().expect("a line");
        line.strip_prefix(key)
            .unwrap_or_else(|| panic!("{line:?} starts with {key:?}"))
            .to_string()
    };
    let id = field("ID: ").parse().expect("a numeric ID");
    let name = field("NAME: ");
    let age_text = field("AGE: ");
    field("INSTITUTION: ");
    field("ACTIVITY: ");
    field("COMMENT: ");
    let comment_lines = 1 + lines.count();
    let digits: String = age_text
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    (id, name, digits.parse().ok(), comment_lines)
}

#[tokio::test]
async fn patients_listing_has_ten_pages_and_ten_thousand_documents() {
    let mock = MockProvider::start(MockConfig::default()).await;
    let client = reqwest::Client::new();
    let listing = mock.url("/storage/v1/b/patients-bucket/o");

    let mut token: Option<String> = None;
    let mut pages = 0;
    let mut index_items = 0;
    let mut ids = BTreeSet::new();
    let mut media_links = Vec::new();
    loop {
        let mut request = client.get(&listing);
        if let Some(token) = &token {
            request = request.query(&[("pageToken", token)]);
        }
        let body: Value = request
            .send()
            .await
            .expect("GET listing")
            .json()
            .await
            .expect("JSON");
        pages += 1;
        assert_eq!(body["kind"], "storage#objects");
        let items = body["items"].as_array().expect("items");
        assert_eq!(items[0]["name"], format!("index-{pages}.txt"));
        let mut patients_here = 0;
        for object in items {
            assert_eq!(object["kind"], "storage#object");
            assert_eq!(object["bucket"], "patients-bucket");
            let name = object["name"].as_str().expect("name");
            if name.starts_with("index") {
                index_items += 1;
                continue;
            }
            patients_here += 1;
            let id: u32 = name
                .strip_prefix("patients/")
                .and_then(|n| n.strip_suffix(".txt"))
                .and_then(|n| n.parse().ok())
                .expect("patients/{id}.txt");
            assert!(ids.insert(id), "{id} listed twice");
            let link = object["mediaLink"].as_str().expect("mediaLink").to_string();
            assert!(link.starts_with(&mock.base_url), "{link}");
            let size: usize = object["size"]
                .as_str()
                .expect("size")
                .parse()
                .expect("size");
            media_links.push((id, link, size));
        }
        assert_eq!(patients_here, PATIENTS_PER_PAGE, "page {pages}");
        match body.get("nextPageToken").and_then(Value::as_str) {
            Some(next) => token = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, PATIENT_PAGES);
    assert_eq!(ids.len(), PATIENTS);
    assert_eq!(ids.first(), Some(&1));
    assert_eq!(ids.last(), Some(&(PATIENTS as u32)));
    assert!(
        index_items > PATIENT_PAGES,
        "index items on top of one per page"
    );

    // A sample of documents, through their mediaLinks, parse back to the helpers' values.
    let mut unknown_ages = 0;
    let mut comment_line_counts = BTreeSet::new();
    for (id, link, size) in media_links.iter().step_by(97) {
        let response = client.get(link).send().await.expect("GET document");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().expect("ASCII"),
            "text/plain"
        );
        let text = response.text().await.expect("text");
        assert_eq!(text, patient_document(*id));
        assert_eq!(text.len(), *size, "listed size of {id}");
        let (parsed_id, name, age, comment_lines) = parse_patient(&text);
        assert_eq!(parsed_id, *id);
        assert_eq!(name, patient_name(*id));
        assert_eq!(age, patient_age(*id), "AGE of {id}: {text}");
        unknown_ages += usize::from(age.is_none());
        comment_line_counts.insert(comment_lines);
    }
    assert!(unknown_ages > 0, "some sampled AGEs hold no integer");
    assert_eq!(comment_line_counts, BTreeSet::from([1, 2, 3]));

    // An unencoded name works too; an unknown one is a 404; no alt=media gives metadata.
    let raw = client
        .get(mock.url("/download/storage/v1/b/patients-bucket/o/patients/42.txt?alt=media"))
        .send()
        .await
        .expect("GET");
    assert_eq!(raw.text().await.expect("text"), patient_document(42));
    let missing = client
        .get(mock.url("/download/storage/v1/b/patients-bucket/o/patients%2F10001.txt?alt=media"))
        .send()
        .await
        .expect("GET");
    assert_eq!(missing.status(), 404);
    let metadata: Value = client
        .get(mock.url("/download/storage/v1/b/patients-bucket/o/patients%2F42.txt"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(metadata["name"], "patients/42.txt");

    assert_eq!(mock.requests("listing"), PATIENT_PAGES);
    assert_eq!(
        mock.requests("document"),
        media_links.len().div_ceil(97) + 3
    );
}

/// The `id`s of a page of records.
fn ids(records: &Value) -> Vec<usize> {
    records
        .as_array()
        .expect("an array of records")
        .iter()
        .map(|record| {
            let id = record["id"].as_u64().expect("id") as usize;
            assert_eq!(record, &item(id));
            id
        })
        .collect()
}

/// The URL of the `rel="next"` entry of a `Link` header.
fn link_next(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

/// Walks every generic pagination route to its end; returns the ids each one yielded.
async fn walk_all(mock: &MockProvider) -> Vec<(&'static str, Vec<usize>)> {
    let client = reqwest::Client::new();
    let get = |url: String| {
        let client = client.clone();
        async move { client.get(url).send().await.expect("GET") }
    };
    let mut walks = Vec::new();

    // /offset: stop at a short page.
    let (mut all, mut offset, limit) = (Vec::new(), 0, 20);
    loop {
        let body: Value = get(mock.url(&format!("/offset?offset={offset}&limit={limit}")))
            .await
            .json()
            .await
            .expect("JSON");
        let page = ids(&body["data"]);
        let short = page.len() < limit;
        offset += page.len();
        all.extend(page);
        if short {
            break;
        }
    }
    walks.push(("offset", all));

    // /page: stop at a short page.
    let (mut all, mut page_no, per_page) = (Vec::new(), 1, 25);
    loop {
        let body: Value = get(mock.url(&format!("/page?page={page_no}&per_page={per_page}")))
            .await
            .json()
            .await
            .expect("JSON");
        let page = ids(&body["results"]);
        let short = page.len() < per_page;
        all.extend(page);
        page_no += 1;
        if short {
            break;
        }
    }
    walks.push(("page", all));

    // /cursor: follow `next` in the body.
    let (mut all, mut url) = (Vec::new(), mock.url("/cursor"));
    loop {
        let body: Value = get(url.clone()).await.json().await.expect("JSON");
        all.extend(ids(&body["items"]));
        match body.get("next").and_then(Value::as_str) {
            Some(next) => url = mock.url(&format!("/cursor?cursor={next}")),
            None => break,
        }
    }
    walks.push(("cursor", all));

    // /cursor-header: follow the `X-Next-Cursor` header.
    let (mut all, mut url) = (Vec::new(), mock.url("/cursor-header"));
    loop {
        let response = get(url.clone()).await;
        let next = response
            .headers()
            .get("x-next-cursor")
            .map(|v| v.to_str().expect("ASCII").to_string());
        let body: Value = response.json().await.expect("JSON");
        all.extend(ids(&body["items"]));
        match next {
            Some(next) => url = mock.url(&format!("/cursor-header?cursor={next}")),
            None => break,
        }
    }
    walks.push(("cursor-header", all));

    // /link: follow the `Link: <…>; rel="next"` header.
    let (mut all, mut url) = (Vec::new(), mock.url("/link"));
    loop {
        let response = get(url.clone()).await;
        let next = response
            .headers()
            .get("link")
            .and_then(|v| link_next(v.to_str().expect("ASCII")));
        let body: Value = response.json().await.expect("JSON");
        all.extend(ids(&body));
        match next {
            Some(next) => url = next,
            None => break,
        }
    }
    walks.push(("link", all));

    // /link-body: follow `links.next` until null.
    let (mut all, mut url) = (Vec::new(), mock.url("/link-body"));
    loop {
        let body: Value = get(url.clone()).await.json().await.expect("JSON");
        all.extend(ids(&body["items"]));
        match body["links"]["next"].as_str() {
            Some(next) => url = next.to_string(),
            None => {
                assert!(body["links"]["next"].is_null());
                break;
            }
        }
    }
    walks.push(("link-body", all));

    // /past-end: full pages until a 404.
    let (mut all, mut offset, limit) = (Vec::new(), 0, 10);
    loop {
        let response = get(mock.url(&format!("/past-end?offset={offset}&limit={limit}"))).await;
        if response.status() == 404 {
            break;
        }
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("JSON");
        let page = ids(&body["data"]);
        assert!(!page.is_empty(), "never an empty page");
        offset += page.len();
        all.extend(page);
    }
    walks.push(("past-end", all));
    walks
}

#[tokio::test]
async fn every_generic_pagination_route_walks_to_exactly_the_items() {
    // 95 ends on a short page; 100 on a full one (then an empty page, or a 404); 3 on the first.
    for items in [0, 100, 3] {
        let mock = MockProvider::start(MockConfig {
            items,
            ..MockConfig::default()
        })
        .await;
        let expected: Vec<usize> = (1..=mock.items()).collect();
        for (route, walked) in walk_all(&mock).await {
            assert_eq!(walked, expected, "{route} with {} items", mock.items());
            assert!(mock.requests(route) > 0, "{route} counted");
        }
    }
}

#[tokio::test]
async fn forever_never_ends() {
    let mock = MockProvider::start(MockConfig::default()).await;
    let client = reqwest::Client::new();
    let mut url = mock.url("/forever");
    let mut seen = 0;
    for _ in 0..50 {
        let body: Value = client
            .get(&url)
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON");
        let page = ids(&body["items"]);
        assert_eq!(page, (seen + 1..=seen + 10).collect::<Vec<_>>());
        seen += page.len();
        let next = body["next"].as_str().expect("always a next cursor");
        url = mock.url(&format!("/forever?cursor={next}"));
    }
    assert!(seen > mock.items());
    assert_eq!(mock.requests("forever"), 50);
}

/// Statuses of `n` sequential GETs of `/offset`, checking every 429 carries `Retry-After: 1`.
async fn statuses(mock: &MockProvider, n: usize) -> Vec<u16> {
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    for _ in 0..n {
        let response = client
            .get(mock.url("/offset?offset=0&limit=5"))
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        if status == 429 {
            assert_eq!(response.headers()["retry-after"], "1");
        }
        out.push(status);
    }
    out
}

#[tokio::test]
async fn a_fault_rate_of_a_fifth_faults_about_a_fifth_repeatably() {
    let config = MockConfig {
        fault_rate: 0.2,
        ..MockConfig::default()
    };
    let first = MockProvider::start(config.clone()).await;
    let run = statuses(&first, 500).await;
    let errors_500 = run.iter().filter(|s| **s == 500).count();
    let errors_429 = run.iter().filter(|s| **s == 429).count();
    let ok = run.iter().filter(|s| **s == 200).count();
    assert_eq!(ok + errors_500 + errors_429, run.len());
    let faults = errors_500 + errors_429;
    assert!((75..=125).contains(&faults), "{faults} faults in 500");
    assert!(
        errors_500.abs_diff(errors_429) <= 1,
        "alternating: {errors_500} / {errors_429}"
    );
    assert_eq!(first.faults(), faults);
    assert_eq!(first.requests("offset"), 500);

    // The same config and sequence fault the same requests.
    let second = MockProvider::start(config).await;
    assert_eq!(statuses(&second, 500).await, run);

    // No faults by default, all of them at 1.0.
    let calm = MockProvider::start(MockConfig::default()).await;
    assert!(statuses(&calm, 50).await.iter().all(|s| *s == 200));
    let broken = MockProvider::start(MockConfig {
        fault_rate: 1.0,
        ..MockConfig::default()
    })
    .await;
    assert!(statuses(&broken, 20).await.iter().all(|s| *s != 200));
}

#[tokio::test]
async fn the_truncated_request_has_an_unparsable_body() {
    let mock = MockProvider::start(MockConfig {
        truncate_request: Some(2),
        silk_token: Some(TOKEN.into()),
        ..MockConfig::default()
    })
    .await;
    let client = reqwest::Client::new();
    let query = "?skip=0&limit=3";
    let whole = silk_post(&client, &mock, "qualys", query)
        .await
        .text()
        .await
        .expect("text");
    let cut = silk_post(&client, &mock, "qualys", query).await;
    assert_eq!(cut.status(), 200);
    let cut = cut.text().await.expect("text");
    assert_eq!(cut.len(), whole.len() / 2);
    assert!(whole.starts_with(&cut));
    assert!(serde_json::from_str::<Value>(&cut).is_err());
    let again = silk_post(&client, &mock, "qualys", query)
        .await
        .text()
        .await
        .expect("text");
    assert_eq!(again, whole);
}

#[tokio::test]
async fn the_hanging_request_trips_a_client_timeout() {
    let mock = MockProvider::start(MockConfig {
        hang_request: Some(2),
        hang_for: Duration::from_secs(30),
        ..MockConfig::default()
    })
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let url = mock.url("/page?page=1");
    assert_eq!(client.get(&url).send().await.expect("first").status(), 200);
    let error = client.get(&url).send().await.expect_err("the second hangs");
    assert!(error.is_timeout(), "{error}");
    assert_eq!(client.get(&url).send().await.expect("third").status(), 200);
    assert_eq!(mock.requests("page"), 3);
}

#[tokio::test]
async fn latency_delays_every_response() {
    let mock = MockProvider::start(MockConfig {
        latency: Duration::from_millis(150),
        ..MockConfig::default()
    })
    .await;
    let client = reqwest::Client::new();
    for path in ["/offset", "/files/etl_tokens.csv", "/nowhere"] {
        let started = Instant::now();
        client.get(mock.url(path)).send().await.expect("GET");
        assert!(started.elapsed() >= Duration::from_millis(150), "{path}");
    }
    assert_eq!(mock.requests("other"), 1);
}

#[tokio::test]
async fn files_are_served_plain_and_gzipped() {
    let mock = MockProvider::start(MockConfig::default()).await;
    let client = reqwest::Client::new();
    for name in [
        "stream_token_transfers_17173049.jsonl",
        "etl_tokens.csv",
        "bigquery_export_token_transfers.csv",
    ] {
        let on_disk = std::fs::read(Path::new(DATA_DIR).join("ethereum").join(name)).expect("file");
        let plain = client
            .get(mock.url(&format!("/files/{name}")))
            .send()
            .await
            .expect("GET");
        assert_eq!(plain.status(), 200);
        assert_eq!(plain.bytes().await.expect("body").as_ref(), on_disk);

        let gz = client
            .get(mock.url(&format!("/files/{name}.gz")))
            .send()
            .await
            .expect("GET");
        assert_eq!(gz.headers()["content-type"], "application/gzip");
        let compressed = gz.bytes().await.expect("body");
        assert_eq!(&compressed[..2], &[0x1f, 0x8b], "gzip magic");
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(compressed.as_ref())
            .read_to_end(&mut unpacked)
            .expect("gunzip");
        assert_eq!(unpacked, on_disk);
    }
    for missing in [
        "/files/nothing.csv",
        "/files/nothing.csv.gz",
        "/files/..%2FSOURCES.md",
    ] {
        let response = client.get(mock.url(missing)).send().await.expect("GET");
        assert_eq!(response.status(), 404, "{missing}");
    }
    assert_eq!(mock.requests("files"), 9);
}

#[tokio::test]
async fn a_stopped_or_dropped_provider_refuses_connections() {
    for drop_it in [false, true] {
        let mock = MockProvider::start(MockConfig::default()).await;
        let url = mock.url("/offset");
        let client = reqwest::Client::new();
        assert_eq!(client.get(&url).send().await.expect("GET").status(), 200);
        if drop_it {
            drop(mock);
        } else {
            mock.stop();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if client.get(&url).send().await.is_err() {
                break;
            }
            assert!(Instant::now() < deadline, "still answering after stop");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
