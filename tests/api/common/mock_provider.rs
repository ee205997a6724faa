//! A stand-in for external providers, served over real HTTP on `127.0.0.1`, port 0.
//!
//! Where a recorded payload exists it is served as recorded:
//!
//! - **Silk API** (`hosts/` of [`DATA_DIR`]): `POST /api/{qualys|crowdstrike}/hosts/get?skip=N&limit=M`
//!   answers a bare JSON array of the raw host documents, each byte for byte as in the sample
//!   files. `limit` defaults to 1 and `skip` to 0. Whenever `skip + limit` passes the number of
//!   hosts (7) the answer is HTTP 500 with the body [`SILK_INVALID_COMBO`], never a short page.
//!   With [`MockConfig::silk_token`] set, a missing or different `token` header answers 401.
//! - **Files** (`ethereum/` of [`DATA_DIR`]): `GET /files/{name}` serves a file as it is,
//!   `GET /files/{name}.gz` serves it gzip-compressed (`application/gzip`, no
//!   `Content-Encoding`: the body is a `.gz` file).
//!
//! Where none survives, the payload is generated deterministically:
//!
//! - **Patients** (a Google Cloud Storage bucket): `GET /storage/v1/b/{bucket}/o[?pageToken=T]`
//!   lists [`PATIENT_PAGES`] pages of [`PATIENTS_PER_PAGE`] patient objects
//!   (`patients/{id}.txt`, ids `1..=PATIENTS`) plus `index…` objects a client must skip: the
//!   first item of every page is `index-{page}.txt`, and odd pages also carry
//!   `index/page-{page}.json` in the middle. `GET /download/storage/v1/b/{bucket}/o/{name}?alt=media`
//!   (the item's `mediaLink`, name percent-encoded as GCS does) answers the text document of
//!   [`patient_document`]; without `alt=media` it answers the object's metadata.
//! - **Generic pagination** over [`MockConfig::items`] records [`item`]`(1..=items)`:
//!   `/offset`, `/page`, `/cursor`, `/cursor-header`, `/link`, `/link-body`, `/past-end` and
//!   `/forever` (see each handler).
//! - **Broken pagination**, well-behaved up to page [`LOOP_PAGE`] and wrong from there:
//!   `/cursor-repeat` and `/cursor-back` (the next cursor is the page's own, or an earlier
//!   page's), `/link-back` (the `Link` header points back to page 2) and `/page-stuck` (every
//!   page after [`LOOP_PAGE`] answers that page's records again).
//!
//! - **A body that never ends**: `/endless` answers 200 `application/json` and streams spaces
//!   until the client hangs up.
//! - **Pointers elsewhere**: `/redirect?to=URL` answers 302 to `URL`; `/links-to?to=URL`
//!   answers `{"items": [{"id": 1, "url": URL}]}`, a listing whose item a `follow` would fetch.
//!
//! Every request is counted under a route label (see [`route_label`]) and then passes the fault
//! injection of [`MockConfig`] (random faults, [`MockConfig::scripted`] faults) before the
//! route's own logic runs.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::IntoFuture;
use std::io::Write as _;
use std::ops::RangeInclusive;
use std::path::Path as FsPath;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, Query, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The shared sample data directory.
pub const DATA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");

/// The Silk API's answer (HTTP 500) whenever `skip + limit` passes the number of hosts.
pub const SILK_INVALID_COMBO: &str = "Error invalid skip/limit combo (>number of hosts)";

/// Pages in the patients bucket listing.
pub const PATIENT_PAGES: usize = 10;
/// Patient objects per listing page (the `index…` objects come on top).
pub const PATIENTS_PER_PAGE: usize = 1_000;
/// Patient documents in the bucket: ids `1..=PATIENTS`.
pub const PATIENTS: usize = PATIENT_PAGES * PATIENTS_PER_PAGE;

/// Records served by the generic pagination routes when [`MockConfig::items`] is 0.
pub const DEFAULT_ITEMS: usize = 95;
/// Page size of `/cursor`, `/cursor-header`, `/link`, `/link-body` and `/forever`.
pub const FIXED_PAGE_SIZE: usize = 10;
/// Page size of `/offset`, `/past-end` (`limit`) and `/page` (`per_page`) when not given.
pub const DEFAULT_PAGE_SIZE: usize = 10;
/// The page (1-based) from which the broken pagination routes go wrong; the pages before it and
/// this one carry records `1..=LOOP_PAGE * FIXED_PAGE_SIZE` as `/cursor` would.
pub const LOOP_PAGE: usize = 4;
/// The body of [`Fault::Html`]: what a proxy in front of an API answers when the API is down.
pub const HTML_ERROR_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n<body><h1>Bad Gateway</h1><p>The upstream server is not answering.</p></body></html>\n";
/// The body of [`Fault::Malformed`]: JSON-like, but single-quoted.
pub const MALFORMED_BODY: &str = "{'data': [{'id': 1}]}";

/// A fault a scripted request gets (see [`MockConfig::scripted`]).
#[derive(Clone, Debug)]
pub enum Fault {
    /// This status instead of the route's answer, with `Retry-After: seconds` when given.
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// The route's answer, after this delay.
    Delay(Duration),
    /// The route's status line and headers (with the full `Content-Length`) and half its body,
    /// then the connection is dropped: a connection reset in the middle of the body.
    Reset,
    /// The route's body cut in half, status 200, no `Content-Length`: a body that ends early.
    Truncate,
    /// Status 200, `application/json`, body [`MALFORMED_BODY`].
    Malformed,
    /// Status 200, `text/html`, body [`HTML_ERROR_PAGE`].
    Html,
}

/// Behaviour of one mock server. `Default` is a well-behaved server.
#[derive(Clone, Debug, Default)]
pub struct MockConfig {
    /// Latency added to every response.
    pub latency: Duration,
    /// Fraction (0.0–1.0) of requests answered with a fault instead, alternating 500 and
    /// 429 + `Retry-After: 1` (the first fault is a 500). Deterministic: decided by a hash of
    /// (route label, request number), so a sequential run is repeatable.
    pub fault_rate: f64,
    /// Make the Nth request (1-based, across all routes) hang for `hang_for` before answering
    /// (to trip a client timeout). That request is never turned into a fault.
    pub hang_request: Option<usize>,
    /// How long [`MockConfig::hang_request`] hangs.
    pub hang_for: Duration,
    /// Make the Nth request (1-based, across all routes) return its route's body cut in half,
    /// with status 200. That request is never turned into a fault.
    pub truncate_request: Option<usize>,
    /// Required value of the `token` header for the Silk routes (401 otherwise); `None` = not
    /// checked.
    pub silk_token: Option<String>,
    /// Number of generated records for the generic pagination routes ([`DEFAULT_ITEMS`] when 0).
    pub items: usize,
    /// Scripted faults: a request whose number (1-based, across all routes) falls in a range
    /// gets that fault; the first matching entry wins. With scripted faults, `fault_rate` is
    /// ignored (runs stay repeatable).
    pub scripted: Vec<(RangeInclusive<usize>, Fault)>,
}

/// A running mock server. Dropping it stops the server.
pub struct MockProvider {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base_url: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MockProvider {
    /// Binds `127.0.0.1:0` and serves until stopped or dropped. Needs a Tokio runtime.
    pub async fn start(config: MockConfig) -> MockProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the mock provider on 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let base_url = format!("http://127.0.0.1:{port}");
        let (stop, stopped) = watch::channel(false);
        let items = if config.items == 0 {
            DEFAULT_ITEMS
        } else {
            config.items
        };
        let shared = Arc::new(Shared {
            config,
            items,
            base_url: base_url.clone(),
            stopped: stopped.clone(),
            counter: AtomicUsize::new(0),
            faults: AtomicUsize::new(0),
            by_route: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
            times: Mutex::new(Vec::new()),
        });
        let app = router(shared.clone());
        let mut shutdown = stopped;
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            // A dropped sender counts as a stop too.
            let _ = shutdown.wait_for(|stopped| *stopped).await;
        });
        let task = tokio::spawn(async move {
            if let Err(e) = server.into_future().await {
                eprintln!("mock provider stopped with an error: {e}");
            }
        });
        MockProvider {
            base_url,
            shared,
            stop,
            task,
        }
    }

    /// `base_url` joined with `path_and_query` (which starts with `/`).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_url)
    }

    /// Requests received so far under one route label (see [`route_label`]), faults included.
    pub fn requests(&self, route: &str) -> usize {
        lock(&self.shared.by_route).get(route).copied().unwrap_or(0)
    }

    /// Requests received so far, all routes together.
    pub fn total_requests(&self) -> usize {
        self.shared.counter.load(Ordering::SeqCst)
    }

    /// Requests answered with an injected fault (500 or 429) so far.
    pub fn faults(&self) -> usize {
        self.shared.faults.load(Ordering::SeqCst)
    }

    /// Every request received so far, in arrival order, as `METHOD /path?query`.
    pub fn request_log(&self) -> Vec<String> {
        lock(&self.shared.log).clone()
    }

    /// When each request arrived, in arrival order (the same order as [`Self::request_log`]).
    pub fn request_times(&self) -> Vec<Instant> {
        lock(&self.shared.times).clone()
    }

    /// Records served by the generic pagination routes.
    pub fn items(&self) -> usize {
        self.shared.items
    }

    /// Stops the server: no new connections, idle connections closed, pending latency and
    /// hangs cut short. Dropping the provider does the same.
    pub fn stop(&self) {
        self.stop.send_replace(true);
        self.task.abort();
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The route label a request path is counted under: `qualys`, `crowdstrike`, `listing`,
/// `document`, `offset`, `page`, `cursor`, `cursor-header`, `link`, `link-body`, `past-end`,
/// `forever`, `cursor-repeat`, `cursor-back`, `link-back`, `page-stuck`, `redirect`,
/// `links-to`, `endless`, `files`, or `other` for anything else.
pub fn route_label(path: &str) -> &'static str {
    match path {
        "/api/qualys/hosts/get" => "qualys",
        "/api/crowdstrike/hosts/get" => "crowdstrike",
        "/offset" => "offset",
        "/page" => "page",
        "/cursor" => "cursor",
        "/cursor-header" => "cursor-header",
        "/link" => "link",
        "/link-body" => "link-body",
        "/past-end" => "past-end",
        "/forever" => "forever",
        "/cursor-repeat" => "cursor-repeat",
        "/cursor-back" => "cursor-back",
        "/link-back" => "link-back",
        "/page-stuck" => "page-stuck",
        "/redirect" => "redirect",
        "/endless" => "endless",
        "/links-to" => "links-to",
        _ if path.starts_with("/storage/v1/b/") => "listing",
        _ if path.starts_with("/download/storage/v1/b/") => "document",
        _ if path.starts_with("/files/") => "files",
        _ => "other",
    }
}

/// Generated record `i` of the generic pagination routes.
pub fn item(i: usize) -> Value {
    json!({ "id": i, "name": format!("item-{i}"), "value": i * 10 })
}

/// The raw host documents of one Silk tool (`"qualys"` or `"crowdstrike"`), each exactly as
/// the sample file has it.
pub fn silk_hosts(tool: &str) -> &'static [Box<RawValue>] {
    static QUALYS: OnceLock<Vec<Box<RawValue>>> = OnceLock::new();
    static CROWDSTRIKE: OnceLock<Vec<Box<RawValue>>> = OnceLock::new();
    let (cell, file) = match tool {
        "qualys" => (&QUALYS, "sample_qualys_data.json"),
        "crowdstrike" => (&CROWDSTRIKE, "sample_crowdstrike_data.json"),
        other => panic!("no Silk tool named {other:?}"),
    };
    cell.get_or_init(|| {
        let path = FsPath::new(DATA_DIR).join("hosts").join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not a JSON array: {e}", path.display()))
    })
}

// ---------------------------------------------------------------------------------------------
// Patients

const FIRST_NAMES: [&str; 16] = [
    "Ada", "Björn", "Chloé", "Dmitri", "Eun-ji", "Fatima", "Gustavo", "Hana", "Ioana", "José",
    "Kwame", "Laila", "Mateo", "Nora", "Oğuz", "Priya",
];
const LAST_NAMES: [&str; 16] = [
    "Abara",
    "Berg",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Fujita",
    "García-Márquez",
    "Haddad",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Mensah",
    "Nakamura",
    "O'Brien",
    "Petrov",
];
const INSTITUTIONS: [&str; 8] = [
    "St. Mary's Hospital",
    "Northside Community Clinic",
    "University Medical Center",
    "Riverside Health, Ward 3",
    "Lakeview Rehabilitation Institute",
    "Hôpital Saint-Louis",
    "Eastgate Family Practice",
    "Children's Research Hospital",
];
const ACTIVITIES: [&str; 8] = [
    "outpatient visit",
    "lab work",
    "physiotherapy",
    "follow-up: cardiology",
    "emergency admission",
    "vaccination",
    "MRI scan",
    "annual check-up",
];
const COMMENT_LINES: [&str; 10] = [
    "Patient reports feeling better since the last visit.",
    "Blood pressure slightly elevated, to be monitored.",
    "No known allergies.",
    "Referred to a specialist for further evaluation.",
    "Prescribed rest and plenty of fluids.",
    "Family history of diabetes noted.",
    "Next appointment in two weeks.",
    "Declined the flu shot this season.",
    "Walks with a cane; fall risk assessed as low.",
    "Results pending, call back on Monday.",
];

/// A deterministic 64-bit mix of a patient id and a salt (SplitMix64's finalizer).
fn mix(id: u32, salt: u64) -> u64 {
    let mut z = u64::from(id)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(salt.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn pick<'a>(list: &[&'a str], id: u32, salt: u64) -> &'a str {
    list[(mix(id, salt) % list.len() as u64) as usize]
}

/// The age a patient document states, `None` when its AGE line holds no integer.
pub fn patient_age(id: u32) -> Option<i64> {
    let age = 1 + (mix(id, 1) % 99) as i64;
    match mix(id, 2) % 10 {
        4 | 9 => None,
        _ => Some(age),
    }
}

/// The free text of a patient's AGE line; its first integer is [`patient_age`].
fn patient_age_text(id: u32) -> String {
    let age = 1 + mix(id, 1) % 99;
    match mix(id, 2) % 10 {
        0 | 1 => age.to_string(),
        2 => format!("about {age} years"),
        3 => format!("{age} (approx.)"),
        4 => "unknown".to_string(),
        5 => format!("{age} years old"),
        6 => format!("{age}, seen 3 times this year"),
        7 => format!("~{age}"),
        8 => format!("{age}y"),
        _ => "not recorded".to_string(),
    }
}

/// A patient's full name (personal data: a client must not store it in clear).
pub fn patient_name(id: u32) -> String {
    format!("{} {}", pick(&FIRST_NAMES, id, 3), pick(&LAST_NAMES, id, 4))
}

/// The text document of patient `id`, as its `mediaLink` serves it.
pub fn patient_document(id: u32) -> String {
    let lines = 1 + mix(id, 7) % 3;
    let comment: Vec<&str> = (0..lines)
        .map(|line| pick(&COMMENT_LINES, id, 8 + line))
        .collect();
    format!(
        "ID: {id}\nNAME: {}\nAGE: {}\nINSTITUTION: {}\nACTIVITY: {}\nCOMMENT: {}\n",
        patient_name(id),
        patient_age_text(id),
        pick(&INSTITUTIONS, id, 5),
        pick(&ACTIVITIES, id, 6),
        comment.join("\n"),
    )
}

/// One object of the bucket: a patient document or an `index…` object.
enum BucketObject {
    Patient(u32),
    Index { name: String, page: usize },
}

impl BucketObject {
    fn parse(name: &str) -> Option<BucketObject> {
        if let Some(id) = name
            .strip_prefix("patients/")
            .and_then(|rest| rest.strip_suffix(".txt"))
            .and_then(|id| id.parse::<u32>().ok())
            .filter(|id| (1..=PATIENTS as u32).contains(id) && name == object_name(*id))
        {
            return Some(BucketObject::Patient(id));
        }
        (1..=PATIENT_PAGES)
            .flat_map(|page| {
                index_objects(page)
                    .into_iter()
                    .map(move |(_, name)| (page, name))
            })
            .find(|(_, index)| index == name)
            .map(|(page, name)| BucketObject::Index { name, page })
    }

    fn name(&self) -> String {
        match self {
            BucketObject::Patient(id) => object_name(*id),
            BucketObject::Index { name, .. } => name.clone(),
        }
    }

    /// A patient's document; for an index object, the names of its page's patients (one a
    /// line, or a JSON array for `.json`).
    fn content(&self) -> String {
        match self {
            BucketObject::Patient(id) => patient_document(*id),
            BucketObject::Index { name, page } => {
                let names = page_patients(*page).map(object_name);
                if name.ends_with(".json") {
                    Value::from(names.collect::<Vec<_>>()).to_string()
                } else {
                    names.map(|name| name + "\n").collect()
                }
            }
        }
    }

    fn content_type(&self) -> &'static str {
        match self {
            BucketObject::Index { name, .. } if name.ends_with(".json") => "application/json",
            _ => "text/plain",
        }
    }

    /// A stable generation number, as GCS gives every object version.
    fn generation(&self) -> u64 {
        let n = match self {
            BucketObject::Patient(id) => u64::from(*id),
            BucketObject::Index { page, .. } => 20_000 + *page as u64,
        };
        1_700_000_000_000_000 + n
    }

    /// The object resource, as a listing item or a metadata answer carries it.
    fn resource(&self, base_url: &str, bucket: &str) -> Value {
        let name = self.name();
        let encoded = percent_encode(&name);
        let generation = self.generation();
        json!({
            "kind": "storage#object",
            "id": format!("{bucket}/{name}/{generation}"),
            "selfLink": format!("{base_url}/storage/v1/b/{bucket}/o/{encoded}"),
            "mediaLink": format!("{base_url}/download/storage/v1/b/{bucket}/o/{encoded}?alt=media"),
            "name": name,
            "bucket": bucket,
            "generation": generation.to_string(),
            "metageneration": "1",
            "contentType": self.content_type(),
            "storageClass": "STANDARD",
            "size": self.content().len().to_string(),
            "timeCreated": "2023-11-14T22:13:20.000Z",
            "updated": "2023-11-14T22:13:20.000Z",
        })
    }
}

fn object_name(id: u32) -> String {
    format!("patients/{id}.txt")
}

fn page_patients(page: usize) -> impl Iterator<Item = u32> {
    let first = (page - 1) * PATIENTS_PER_PAGE + 1;
    (first..first + PATIENTS_PER_PAGE).map(|id| id as u32)
}

/// The `index…` objects of a listing page, with the position each takes among the page's items.
fn index_objects(page: usize) -> Vec<(usize, String)> {
    let mut objects = vec![(0, format!("index-{page}.txt"))];
    if page % 2 == 1 {
        objects.push((PATIENTS_PER_PAGE / 2, format!("index/page-{page}.json")));
    }
    objects
}

fn page_objects(page: usize) -> Vec<BucketObject> {
    let mut objects: Vec<BucketObject> = page_patients(page).map(BucketObject::Patient).collect();
    for (position, name) in index_objects(page) {
        objects.insert(position, BucketObject::Index { name, page });
    }
    objects
}

/// Percent-encodes everything but RFC 3986 unreserved characters (so `/` becomes `%2F`).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

fn page_token(page: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("page:{page}"))
}

fn decode_token(token: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("page:")?
        .parse()
        .ok()
}

fn gcs_error(status: StatusCode, message: &str) -> Response {
    let body = json!({
        "error": {
            "code": status.as_u16(),
            "message": message,
            "errors": [{ "message": message, "domain": "global", "reason": "invalid" }],
        }
    });
    (status, axum::Json(body)).into_response()
}

#[derive(Deserialize)]
struct ListingQuery {
    #[serde(rename = "pageToken")]
    page_token: Option<String>,
}

/// `GET /storage/v1/b/{bucket}/o[?pageToken=T]`: one page of the bucket listing.
async fn listing(
    State(shared): State<Arc<Shared>>,
    Path(bucket): Path<String>,
    Query(query): Query<ListingQuery>,
) -> Response {
    let page = match query.page_token.as_deref() {
        None | Some("") => 1,
        Some(token) => match decode_token(token).filter(|p| (2..=PATIENT_PAGES).contains(p)) {
            Some(page) => page,
            None => return gcs_error(StatusCode::BAD_REQUEST, "Invalid page token."),
        },
    };
    let items: Vec<Value> = page_objects(page)
        .iter()
        .map(|object| object.resource(&shared.base_url, &bucket))
        .collect();
    let mut body = json!({ "kind": "storage#objects" });
    if page < PATIENT_PAGES {
        body["nextPageToken"] = json!(page_token(page + 1));
    }
    body["items"] = Value::Array(items);
    axum::Json(body).into_response()
}

#[derive(Deserialize)]
struct DownloadQuery {
    alt: Option<String>,
}

/// `GET /download/storage/v1/b/{bucket}/o/{name}?alt=media`: one object's content (its
/// metadata without `alt=media`). The name may come percent-encoded or not.
async fn download(
    State(shared): State<Arc<Shared>>,
    Path((bucket, name)): Path<(String, String)>,
    Query(query): Query<DownloadQuery>,
) -> Response {
    let Some(object) = BucketObject::parse(&name) else {
        return gcs_error(
            StatusCode::NOT_FOUND,
            &format!("No such object: {bucket}/{name}"),
        );
    };
    if query.alt.as_deref() != Some("media") {
        return axum::Json(object.resource(&shared.base_url, &bucket)).into_response();
    }
    (
        [(header::CONTENT_TYPE, object.content_type())],
        object.content(),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Silk

#[derive(Deserialize)]
struct SilkQuery {
    skip: Option<u64>,
    limit: Option<u64>,
}

async fn qualys(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<SilkQuery>,
) -> Response {
    silk_page(&shared, &headers, &query, silk_hosts("qualys"))
}

async fn crowdstrike(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<SilkQuery>,
) -> Response {
    silk_page(&shared, &headers, &query, silk_hosts("crowdstrike"))
}

/// One Silk answer: the hosts `skip..skip + limit`, or 500 if that passes the last host.
fn silk_page(
    shared: &Shared,
    headers: &HeaderMap,
    query: &SilkQuery,
    hosts: &[Box<RawValue>],
) -> Response {
    if let Some(expected) = &shared.config.silk_token {
        let given = headers.get("token").and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
        }
    }
    let skip = query.skip.unwrap_or(0);
    let limit = query.limit.unwrap_or(1);
    if skip.saturating_add(limit) > hosts.len() as u64 {
        return (StatusCode::INTERNAL_SERVER_ERROR, SILK_INVALID_COMBO).into_response();
    }
    let (skip, limit) = (skip as usize, limit as usize);
    let documents: Vec<&str> = hosts[skip..skip + limit].iter().map(|h| h.get()).collect();
    let body = format!("[{}]", documents.join(","));
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

// ---------------------------------------------------------------------------------------------
// Generic pagination

/// Records `from + 1 ..= to` (1-based ids), `to` capped at `limit`.
fn records(from: usize, to: usize, limit: usize) -> Vec<Value> {
    (from + 1..=to.min(limit)).map(item).collect()
}

#[derive(Deserialize)]
struct OffsetQuery {
    offset: Option<usize>,
    limit: Option<usize>,
}

/// `GET /offset?offset=O&limit=L` → `{"data": [...]}`; a short or empty page at the end.
async fn offset(State(shared): State<Arc<Shared>>, Query(q): Query<OffsetQuery>) -> Response {
    let from = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    let data = records(from, from.saturating_add(limit), shared.items);
    axum::Json(json!({ "data": data })).into_response()
}

/// `GET /past-end?offset=O&limit=L`: like `/offset`, but an offset at or past the last record
/// answers 404 instead of an empty page.
async fn past_end(State(shared): State<Arc<Shared>>, Query(q): Query<OffsetQuery>) -> Response {
    let from = q.offset.unwrap_or(0);
    if from >= shared.items {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "error": "offset out of range" })),
        )
            .into_response();
    }
    let limit = q.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    let data = records(from, from.saturating_add(limit), shared.items);
    axum::Json(json!({ "data": data })).into_response()
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<usize>,
    per_page: Option<usize>,
}

/// `GET /page?page=P&per_page=S` (P from 1) → `{"results": [...]}`; empty past the end.
async fn page(State(shared): State<Arc<Shared>>, Query(q): Query<PageQuery>) -> Response {
    let page = q.page.unwrap_or(1);
    if page == 0 {
        return (StatusCode::BAD_REQUEST, "page starts at 1").into_response();
    }
    let per_page = q.per_page.unwrap_or(DEFAULT_PAGE_SIZE);
    let from = (page - 1).saturating_mul(per_page);
    let results = records(from, from.saturating_add(per_page), shared.items);
    axum::Json(json!({ "results": results })).into_response()
}

#[derive(Deserialize)]
struct CursorQuery {
    cursor: Option<String>,
}

fn encode_cursor(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

/// The offset a cursor stands for (0 without one); `None` for a cursor this server never gave.
fn decode_cursor(cursor: Option<&str>) -> Option<usize> {
    let Some(cursor) = cursor else { return Some(0) };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("offset:")?
        .parse()
        .ok()
}

fn invalid_cursor() -> Response {
    (StatusCode::BAD_REQUEST, "invalid cursor").into_response()
}

/// One fixed-size page from a cursor, and the next cursor unless this page holds the last record.
fn cursor_page(shared: &Shared, cursor: Option<&str>) -> Option<(Vec<Value>, Option<String>)> {
    let from = decode_cursor(cursor)?;
    let to = from.saturating_add(FIXED_PAGE_SIZE);
    let next = (to < shared.items).then(|| encode_cursor(to));
    Some((records(from, to, shared.items), next))
}

/// `GET /cursor[?cursor=C]` → `{"items": [...], "next": "C2"}`, `next` absent on the last page.
async fn cursor(State(shared): State<Arc<Shared>>, Query(q): Query<CursorQuery>) -> Response {
    let Some((items, next)) = cursor_page(&shared, q.cursor.as_deref()) else {
        return invalid_cursor();
    };
    let mut body = json!({ "items": items });
    if let Some(next) = next {
        body["next"] = json!(next);
    }
    axum::Json(body).into_response()
}

/// `GET /cursor-header[?cursor=C]` → `{"items": [...]}` with the next cursor in an
/// `X-Next-Cursor` response header, absent on the last page.
async fn cursor_header(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<CursorQuery>,
) -> Response {
    let Some((items, next)) = cursor_page(&shared, q.cursor.as_deref()) else {
        return invalid_cursor();
    };
    let mut response = axum::Json(json!({ "items": items })).into_response();
    if let Some(next) = next {
        response.headers_mut().insert(
            "x-next-cursor",
            HeaderValue::from_str(&next).expect("a base64url cursor is a header value"),
        );
    }
    response
}

/// `GET /forever[?cursor=C]` → `{"items": [...], "next": "C2"}`: always a full page and a next
/// cursor, the ids running on past `items`.
async fn forever(Query(q): Query<CursorQuery>) -> Response {
    let Some(from) = decode_cursor(q.cursor.as_deref()) else {
        return invalid_cursor();
    };
    let to = from.saturating_add(FIXED_PAGE_SIZE);
    let items = records(from, to, usize::MAX);
    axum::Json(json!({ "items": items, "next": encode_cursor(to) })).into_response()
}

#[derive(Deserialize)]
struct LinkQuery {
    page: Option<usize>,
}

/// The records of a fixed-size numbered page, the last page number, and whether one follows.
fn numbered_page(shared: &Shared, page: usize) -> (Vec<Value>, usize, bool) {
    let last = shared.items.div_ceil(FIXED_PAGE_SIZE).max(1);
    let from = (page - 1).saturating_mul(FIXED_PAGE_SIZE);
    let records = records(from, from.saturating_add(FIXED_PAGE_SIZE), shared.items);
    (records, last, page < last)
}

/// `GET /link[?page=P]` → a bare JSON array; the next page only in a GitHub-style
/// `Link: <…/link?page=P+1>; rel="next", <…>; rel="last"` header (no `next` on the last page).
/// Like GitHub, the links repeat the request's other query parameters (an `api_key` too).
async fn link(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<LinkQuery>,
    RawQuery(raw): RawQuery,
) -> Response {
    let page = q.page.unwrap_or(1);
    if page == 0 {
        return (StatusCode::BAD_REQUEST, "page starts at 1").into_response();
    }
    let (records, last, more) = numbered_page(&shared, page);
    let base = &shared.base_url;
    let echoed: String = raw
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("page="))
        .map(|pair| format!("&{pair}"))
        .collect();
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!(
            "<{base}/link?page={}{echoed}>; rel=\"prev\"",
            page - 1
        ));
    }
    if more {
        links.push(format!(
            "<{base}/link?page={}{echoed}>; rel=\"next\"",
            page + 1
        ));
    }
    links.push(format!("<{base}/link?page={last}{echoed}>; rel=\"last\""));
    links.push(format!("<{base}/link?page=1{echoed}>; rel=\"first\""));
    let mut response = axum::Json(records).into_response();
    response.headers_mut().insert(
        header::LINK,
        HeaderValue::from_str(&links.join(", ")).expect("URLs are header values"),
    );
    response
}

/// `GET /link-body[?page=P]` → `{"items": [...], "links": {"next": "<absolute url>" | null}}`.
async fn link_body(State(shared): State<Arc<Shared>>, Query(q): Query<LinkQuery>) -> Response {
    let page = q.page.unwrap_or(1);
    if page == 0 {
        return (StatusCode::BAD_REQUEST, "page starts at 1").into_response();
    }
    let (records, _, more) = numbered_page(&shared, page);
    let next = more.then(|| format!("{}/link-body?page={}", shared.base_url, page + 1));
    axum::Json(json!({ "items": records, "links": { "next": next } })).into_response()
}

// ---------------------------------------------------------------------------------------------
// Broken pagination

/// `GET /cursor-repeat[?cursor=C]`: like `/cursor`, but page [`LOOP_PAGE`] gives its own
/// cursor as the next one.
async fn cursor_repeat(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<CursorQuery>,
) -> Response {
    broken_cursor(&shared, q.cursor.as_deref(), |own| own)
}

/// `GET /cursor-back[?cursor=C]`: like `/cursor`, but page [`LOOP_PAGE`] gives page 2's
/// cursor as the next one.
async fn cursor_back(State(shared): State<Arc<Shared>>, Query(q): Query<CursorQuery>) -> Response {
    broken_cursor(&shared, q.cursor.as_deref(), |_| FIXED_PAGE_SIZE)
}

/// A `/cursor` page, whose next cursor on page [`LOOP_PAGE`] is `next_from(its own offset)`.
fn broken_cursor(shared: &Shared, cursor: Option<&str>, next_from: fn(usize) -> usize) -> Response {
    let Some(from) = decode_cursor(cursor) else {
        return invalid_cursor();
    };
    let to = from.saturating_add(FIXED_PAGE_SIZE);
    let next = if from == (LOOP_PAGE - 1) * FIXED_PAGE_SIZE {
        next_from(from)
    } else {
        to
    };
    let items = records(from, to, shared.items);
    axum::Json(json!({ "items": items, "next": encode_cursor(next) })).into_response()
}

/// `GET /link-back[?page=P]`: a bare JSON array with a `Link: <…?page=N>; rel="next"` header;
/// page [`LOOP_PAGE`] links back to page 2.
async fn link_back(State(shared): State<Arc<Shared>>, Query(q): Query<LinkQuery>) -> Response {
    let page = q.page.unwrap_or(1).max(1);
    let (records, _, _) = numbered_page(&shared, page);
    let next = if page == LOOP_PAGE { 2 } else { page + 1 };
    let mut response = axum::Json(records).into_response();
    let link = format!("<{}/link-back?page={next}>; rel=\"next\"", shared.base_url);
    response.headers_mut().insert(
        header::LINK,
        HeaderValue::from_str(&link).expect("a URL is a header value"),
    );
    response
}

/// `GET /page-stuck?page=P&per_page=S`: like `/page`, but pages after [`LOOP_PAGE`] answer page
/// [`LOOP_PAGE`]'s records again (an API that ignores a page number it finds too high).
async fn page_stuck(State(shared): State<Arc<Shared>>, Query(q): Query<PageQuery>) -> Response {
    let page = q.page.unwrap_or(1).clamp(1, LOOP_PAGE);
    let per_page = q.per_page.unwrap_or(DEFAULT_PAGE_SIZE);
    let from = (page - 1).saturating_mul(per_page);
    let results = records(from, from.saturating_add(per_page), shared.items);
    axum::Json(json!({ "results": results })).into_response()
}

// ---------------------------------------------------------------------------------------------
// Pointers elsewhere

#[derive(Deserialize)]
struct ToQuery {
    to: String,
}

/// `GET /redirect?to=URL`: 302 to `URL`.
async fn redirect(Query(q): Query<ToQuery>) -> Response {
    match HeaderValue::from_str(&q.to) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => (StatusCode::BAD_REQUEST, "`to` is not a header value").into_response(),
    }
}

/// `GET /endless`: 200, `application/json`, spaces without end (and no `Content-Length`).
async fn endless() -> Response {
    let chunk = bytes::Bytes::from_static(&[b' '; 64 * 1024]);
    let body = futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response()
}

/// `GET /links-to?to=URL`: a one-item listing whose item points at `URL`.
async fn links_to(Query(q): Query<ToQuery>) -> Response {
    axum::Json(json!({ "items": [{ "id": 1, "url": q.to }] })).into_response()
}

// ---------------------------------------------------------------------------------------------
// Files

/// `GET /files/{name}`: a file of the ethereum sample directory; `{name}.gz` gzips it.
async fn file(Path(name): Path<String>) -> Response {
    let dir = FsPath::new(DATA_DIR).join("ethereum");
    let plain_name =
        |name: &str| !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\']);
    if !plain_name(&name) {
        return StatusCode::NOT_FOUND.into_response();
    }
    if let Ok(bytes) = std::fs::read(dir.join(&name)) {
        return ([(header::CONTENT_TYPE, content_type(&name))], bytes).into_response();
    }
    let Some(base) = name.strip_suffix(".gz") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(bytes) = std::fs::read(dir.join(base)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&bytes).expect("gzip into memory");
    let gzipped = encoder.finish().expect("gzip into memory");
    ([(header::CONTENT_TYPE, "application/gzip")], gzipped).into_response()
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("jsonl") => "application/x-ndjson",
        Some("json") => "application/json",
        Some("csv") => "text/csv",
        Some("gz") => "application/gzip",
        _ => "application/octet-stream",
    }
}

// ---------------------------------------------------------------------------------------------
// Server, counting and fault injection

struct Shared {
    config: MockConfig,
    /// `config.items`, or [`DEFAULT_ITEMS`] when that is 0.
    items: usize,
    base_url: String,
    /// Becomes `true` (or closes) when the provider stops.
    stopped: watch::Receiver<bool>,
    /// Requests received, all routes together.
    counter: AtomicUsize,
    /// Faults injected.
    faults: AtomicUsize,
    by_route: Mutex<HashMap<&'static str, usize>>,
    log: Mutex<Vec<String>>,
    /// Arrival time of each request, in `log` order.
    times: Mutex<Vec<Instant>>,
}

impl Shared {
    /// Counts one request; returns its 1-based number across all routes.
    fn record(&self, label: &'static str, request: &Request) -> usize {
        let target = request
            .uri()
            .path_and_query()
            .map_or_else(|| request.uri().path().to_string(), |pq| pq.to_string());
        // The log lock also orders the numbering, so log order and numbers agree.
        let mut log = lock(&self.log);
        let n = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        log.push(format!("{} {target}", request.method()));
        lock(&self.times).push(Instant::now());
        drop(log);
        *lock(&self.by_route).entry(label).or_insert(0) += 1;
        n
    }

    /// Whether request `n` of route `label` is answered with a fault.
    fn is_fault(&self, label: &str, n: usize) -> bool {
        let rate = self.config.fault_rate;
        if rate <= 0.0 {
            return false;
        }
        if rate >= 1.0 {
            return true;
        }
        // FNV-1a over the label, then a SplitMix64 finish with the request number.
        let mut h: u64 = 0xCBF2_9CE4_8422_2325;
        for byte in label.bytes() {
            h = (h ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01B3);
        }
        let mut z = h ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let fraction = (z >> 11) as f64 / (1u64 << 53) as f64;
        fraction < rate
    }

    /// Waits `duration`, or less if the provider stops meanwhile.
    async fn pause(&self, duration: Duration) {
        if duration.is_zero() {
            return;
        }
        let mut stopped = self.stopped.clone();
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            _ = stopped.wait_for(|stopped| *stopped) => {}
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs before every route: counts the request, adds latency, hangs, injects faults, truncates.
async fn inject(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let label = route_label(request.uri().path());
    let n = shared.record(label, &request);
    let config = &shared.config;
    shared.pause(config.latency).await;
    let hang = config.hang_request == Some(n);
    let scripted = config
        .scripted
        .iter()
        .find(|(requests, _)| requests.contains(&n))
        .map(|(_, fault)| fault.clone());
    let truncate = config.truncate_request == Some(n) || matches!(scripted, Some(Fault::Truncate));
    if hang {
        shared.pause(config.hang_for).await;
    }
    match scripted {
        Some(Fault::Status {
            status,
            retry_after,
        }) => {
            shared.faults.fetch_add(1, Ordering::SeqCst);
            let status = StatusCode::from_u16(status).expect("a valid status code");
            let mut response =
                (status, status.canonical_reason().unwrap_or("Error")).into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            return response;
        }
        Some(Fault::Delay(delay)) => shared.pause(delay).await,
        Some(Fault::Malformed) => {
            shared.faults.fetch_add(1, Ordering::SeqCst);
            return ([(header::CONTENT_TYPE, "application/json")], MALFORMED_BODY).into_response();
        }
        Some(Fault::Html) => {
            shared.faults.fetch_add(1, Ordering::SeqCst);
            return (
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                HTML_ERROR_PAGE,
            )
                .into_response();
        }
        Some(Fault::Reset) => {
            shared.faults.fetch_add(1, Ordering::SeqCst);
            let (mut parts, body) = next.run(request).await.into_parts();
            let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            let half = bytes.slice(..bytes.len() / 2);
            // The first half goes out (the pause lets it reach the client); the error then makes
            // the server drop the connection.
            let body = async_stream::stream! {
                yield Ok::<_, std::io::Error>(half);
                tokio::time::sleep(Duration::from_millis(50)).await;
                yield Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected connection reset",
                ));
            };
            return Response::from_parts(parts, Body::from_stream(body));
        }
        Some(Fault::Truncate) | None => {}
    }
    if !hang && !truncate && config.scripted.is_empty() && shared.is_fault(label, n) {
        let k = shared.faults.fetch_add(1, Ordering::SeqCst);
        return if k % 2 == 0 {
            (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
        } else {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                "Too Many Requests",
            )
                .into_response()
        };
    }
    let response = next.run(request).await;
    if !truncate {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
    parts.status = StatusCode::OK;
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes.slice(..bytes.len() / 2)))
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/qualys/hosts/get", post(qualys))
        .route("/api/crowdstrike/hosts/get", post(crowdstrike))
        .route("/storage/v1/b/{bucket}/o", get(listing))
        .route("/download/storage/v1/b/{bucket}/o/{*name}", get(download))
        .route("/offset", get(offset))
        .route("/page", get(page))
        .route("/cursor", get(cursor))
        .route("/cursor-header", get(cursor_header))
        .route("/link", get(link))
        .route("/link-body", get(link_body))
        .route("/past-end", get(past_end))
        .route("/forever", get(forever))
        .route("/cursor-repeat", get(cursor_repeat))
        .route("/cursor-back", get(cursor_back))
        .route("/link-back", get(link_back))
        .route("/page-stuck", get(page_stuck))
        .route("/redirect", get(redirect))
        .route("/endless", get(endless))
        .route("/links-to", get(links_to))
        .route("/files/{name}", get(file))
        .layer(middleware::from_fn_with_state(shared.clone(), inject))
        .with_state(shared)
}
