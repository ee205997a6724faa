//! Source authentication (`source.auth`) against a stand-in API that refuses requests without
//! the right credentials: bearer, basic and header kinds reach the data; OAuth2 client
//! credentials fetch one token per run, renew it once when it expires or is revoked, and a
//! wrong client secret fails the run naming the token URL. No secret, and no token, reaches a
//! run's error, the log or `ingest_runs`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use tributary::store::runs::{RunMode, RunStatus};

use crate::common::{Backend, TestApp, provider, record_keys, run, wait_for, write_provider};

/// Records the stand-in lists: ids `1..=ITEMS`, two per page, so a run fetches five pages.
const ITEMS: usize = 9;
const PAGES: u64 = 5;

const CLIENT_ID: &str = "tributary-ingest";
const CLIENT_SECRET: &str = "cl13nt-s3cret-never-shown";
const WRONG_SECRET: &str = "wr0ng-s3cret-never-shown";
const SCOPE: &str = "items:read";
const AUDIENCE: &str = "https://items.example.com";
const BEARER: &str = "b3arer-t0ken-never-shown";
const USER: &str = "ingest";
const PASSWORD: &str = "pa55w0rd-never-shown";
const API_KEY: &str = "ap1-k3y-never-shown";
/// Every access token the stand-in issues starts with this.
const TOKEN_PREFIX: &str = "acc3ss-t0ken-";

/// The variables provider files name; every test sets the same values.
const VARS: [(&str, &str); 6] = [
    ("AUTH_TEST_CLIENT_SECRET", CLIENT_SECRET),
    ("AUTH_TEST_WRONG_SECRET", WRONG_SECRET),
    ("AUTH_TEST_BEARER", BEARER),
    ("AUTH_TEST_PASSWORD", PASSWORD),
    ("AUTH_TEST_API_KEY", API_KEY),
    ("AUTH_TEST_CLIENT_ID", CLIENT_ID),
];

fn set_vars() {
    for (name, value) in VARS {
        // SAFETY of the test: every test of this file sets the same values.
        unsafe { std::env::set_var(name, value) };
    }
}

/// What the stand-in's `/items` demands.
#[derive(Clone)]
enum Demand {
    /// An `Authorization` header with exactly this value.
    Authorization(String),
    /// This header with this value.
    Header(&'static str, &'static str),
    /// `Authorization: Bearer <the token /oauth/token issued last>`, not expired, not revoked.
    OAuth2,
}

/// How the stand-in behaves.
struct Behaviour {
    demand: Demand,
    /// `expires_in` of successive tokens; the last one repeats.
    lifetimes: Vec<u64>,
    /// The current token stops being accepted once this many pages were answered.
    revoke_after: Option<usize>,
    /// `/items` request number N (counted from 1, refused ones included) waits this long
    /// after its token was checked.
    pause: Option<(usize, Duration)>,
}

impl Behaviour {
    fn demanding(demand: Demand) -> Behaviour {
        Behaviour {
            demand,
            lifetimes: vec![3600],
            revoke_after: None,
            pause: None,
        }
    }
}

#[derive(Default)]
struct Seen {
    token_requests: usize,
    /// The form of each token request, client credentials left out.
    token_forms: Vec<BTreeMap<String, String>>,
    item_requests: usize,
    answered: usize,
    refused: usize,
    /// The token `/items` accepts, and when it stops being accepted.
    current: Option<(String, Instant)>,
}

struct Api {
    behaviour: Behaviour,
    seen: Mutex<Seen>,
}

impl Api {
    fn seen<T>(&self, read: impl FnOnce(&Seen) -> T) -> T {
        read(&self.seen.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The stand-in API on `127.0.0.1`, port 0; stopped when dropped.
struct StandIn {
    base: String,
    api: Arc<Api>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StandIn {
    async fn start(behaviour: Behaviour) -> StandIn {
        let api = Arc::new(Api {
            behaviour,
            seen: Mutex::new(Seen::default()),
        });
        let app = Router::new()
            .route("/items", get(items))
            .route("/doc/{id}", get(document))
            .route("/oauth/token", post(token))
            .with_state(api.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the stand-in");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        StandIn { base, api, task }
    }

    fn token_url(&self) -> String {
        format!("{}/oauth/token", self.base)
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Checks a request's credentials against the demand: the request's number (counted from 1,
/// refused ones included), or the 401 answer.
async fn admit(api: &Api, headers: &HeaderMap) -> Result<usize, Response> {
    let number = {
        let mut seen = api.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.item_requests += 1;
        let accepted = match &api.behaviour.demand {
            Demand::Authorization(expected) => headers
                .get(header::AUTHORIZATION)
                .is_some_and(|v| v.as_bytes() == expected.as_bytes()),
            Demand::Header(name, expected) => headers
                .get(*name)
                .is_some_and(|v| v.as_bytes() == expected.as_bytes()),
            Demand::OAuth2 => match (&seen.current, bearer(headers)) {
                (Some((current, until)), Some(sent)) => current == sent && Instant::now() < *until,
                _ => false,
            },
        };
        if !accepted {
            seen.refused += 1;
            return Err((
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "unauthorized",
            )
                .into_response());
        }
        seen.answered += 1;
        if api.behaviour.revoke_after == Some(seen.answered) {
            seen.current = None;
        }
        seen.item_requests
    };
    if let Some((at, pause)) = api.behaviour.pause
        && at == number
    {
        tokio::time::sleep(pause).await;
    }
    Ok(number)
}

/// `GET /items?offset=N&limit=M`: `{"data": [{"id": …, "name": …, "url": …}]}`, or 401
/// without the demanded credentials. `url` is the record's document.
async fn items(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(refused) = admit(&api, &headers).await {
        return refused;
    }
    let number = |name: &str| {
        query
            .get(name)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
    };
    let (offset, limit) = (number("offset"), number("limit"));
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let data: Vec<Value> = (offset + 1..=(offset + limit).min(ITEMS))
        .map(|id| json!({ "id": id, "name": format!("item {id}"), "url": format!("http://{host}/doc/{id}") }))
        .collect();
    axum::Json(json!({ "data": data })).into_response()
}

/// `GET /doc/{id}`: one record's document, behind the same credentials as `/items`.
async fn document(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<usize>,
) -> Response {
    if let Err(refused) = admit(&api, &headers).await {
        return refused;
    }
    axum::Json(json!({ "id": id, "name": format!("document {id}") })).into_response()
}

/// One form-urlencoded value, decoded.
fn form_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("v={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": code, "error_description": description })),
    )
        .into_response()
}

/// `POST /oauth/token`: the client credentials grant. The client authenticates with HTTP
/// Basic (RFC 6749 §2.3.1) or in the form; the scope and audience must be the expected ones.
async fn token(State(api): State<Arc<Api>>, headers: HeaderMap, body: String) -> Response {
    let mut form: BTreeMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let from_basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| STANDARD.decode(b64).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            pair.split_once(':')
                .map(|(id, secret)| (form_decode(id), form_decode(secret)))
        });
    let client = from_basic.or_else(|| {
        Some((
            form.get("client_id")?.clone(),
            form.get("client_secret")?.clone(),
        ))
    });
    form.remove("client_secret");
    let mut seen = api.seen.lock().unwrap_or_else(|e| e.into_inner());
    seen.token_requests += 1;
    seen.token_forms.push(form.clone());
    if client != Some((CLIENT_ID.to_string(), CLIENT_SECRET.to_string())) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "");
    }
    if form.get("scope").map(String::as_str) != Some(SCOPE)
        || form.get("audience").map(String::as_str) != Some(AUDIENCE)
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "unknown scope or audience",
        );
    }
    let issued = seen.token_requests;
    let lifetimes = &api.behaviour.lifetimes;
    let lifetime = lifetimes[(issued - 1).min(lifetimes.len() - 1)];
    let access_token = format!("{TOKEN_PREFIX}{issued}");
    seen.current = Some((
        access_token.clone(),
        Instant::now() + Duration::from_secs(lifetime),
    ));
    axum::Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": lifetime,
    }))
    .into_response()
}

/// A provider of the stand-in's items into dataset `name`, with `auth` as `[source.auth]`.
fn items_provider(base: &str, name: &str, auth: &str) -> String {
    format!(
        r#"entity = "record"
dataset = "{name}"
key = "id"
[source]
kind = "http"
url = "{base}/items"
records = "$.data[*]"
retry = {{ attempts = 3, initial_backoff_ms = 10, max_backoff_ms = 20 }}
[source.pagination]
kind = "offset"
page_size = 2
[source.auth]
{auth}
[fields]
id = "$.id"
name = "$.name"
"#
    )
}

fn oauth2_auth(token_url: &str, secret_var: &str) -> String {
    format!(
        r#"kind = "oauth2_client_credentials"
token_url = "{token_url}"
client_id = "${{AUTH_TEST_CLIENT_ID}}"
client_secret = "${{{secret_var}}}"
scopes = ["{SCOPE}"]
audience = "{AUDIENCE}""#
    )
}

fn all_items() -> Vec<String> {
    (1..=ITEMS).map(|i| i.to_string()).collect()
}

/// Every secret of this file, every token the stand-ins may issue, and the encoded forms the
/// wire carries.
fn secrets() -> Vec<String> {
    let mut all: Vec<String> = [
        CLIENT_SECRET,
        WRONG_SECRET,
        BEARER,
        PASSWORD,
        API_KEY,
        TOKEN_PREFIX,
    ]
    .map(String::from)
    .to_vec();
    all.push(STANDARD.encode(format!("{USER}:{PASSWORD}")));
    all.push(STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}")));
    all.push(STANDARD.encode(format!("{CLIENT_ID}:{WRONG_SECRET}")));
    all
}

/// Every stored run and provider state, as text.
async fn stored_runs(db: &sea_orm::DatabaseConnection) -> String {
    format!(
        "{:?}{:?}",
        entity::ingest_run::Entity::find()
            .all(db)
            .await
            .expect("runs"),
        entity::provider_state::Entity::find()
            .all(db)
            .await
            .expect("provider state"),
    )
}

/// The keys of a dataset's records, in insertion order.
async fn dataset_keys(db: &sea_orm::DatabaseConnection, dataset: &str) -> Vec<String> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
    entity::record::Entity::find()
        .filter(entity::record::Column::Dataset.eq(dataset))
        .order_by_asc(entity::record::Column::Id)
        .all(db)
        .await
        .expect("records")
        .into_iter()
        .map(|r| r.key)
        .collect()
}

fn assert_no_secret(place: &str, text: &str) {
    for secret in secrets() {
        assert!(
            !text.contains(&secret),
            "a secret ({secret}) in {place}: {text}"
        );
    }
}

async fn bearer_basic_and_header_kinds_reach_the_data(backend: Backend) {
    set_vars();
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let cases = [
        (
            "bearer",
            Demand::Authorization(format!("Bearer {BEARER}")),
            "kind = \"bearer\"\ntoken = \"${AUTH_TEST_BEARER}\"".to_string(),
        ),
        (
            "basic",
            Demand::Authorization(format!(
                "Basic {}",
                STANDARD.encode(format!("{USER}:{PASSWORD}"))
            )),
            format!(
                "kind = \"basic\"\nusername = \"{USER}\"\npassword = \"${{AUTH_TEST_PASSWORD}}\""
            ),
        ),
        (
            "header",
            Demand::Header("x-api-key", API_KEY),
            "kind = \"header\"\nname = \"X-Api-Key\"\nvalue = \"${AUTH_TEST_API_KEY}\"".to_string(),
        ),
    ];
    for (name, demand, auth) in cases {
        let api = StandIn::start(Behaviour::demanding(demand)).await;
        let p = provider(dir.path(), name, &items_provider(&api.base, name, &auth));
        let summary = run(&app, &p, RunMode::Full).await;
        assert_eq!(summary.status, RunStatus::Succeeded, "{name}: {summary:?}");
        assert_eq!(
            (
                summary.pages,
                summary.fetched,
                summary.counts.inserted,
                summary.rejected
            ),
            (PAGES, ITEMS as u64, ITEMS as u64, 0),
            "{name}"
        );
        assert_eq!(record_keys(&app, name).await, all_items(), "{name}");
        assert_eq!(
            api.api.seen(|s| (s.item_requests, s.refused)),
            (PAGES as usize, 0),
            "{name}"
        );
    }

    // The stand-in really refuses other credentials: a wrong token fails the first page, once
    // (a 401 with fixed credentials is not retried).
    let api = StandIn::start(Behaviour::demanding(Demand::Authorization(
        "Bearer another-token".to_string(),
    )))
    .await;
    let p = provider(
        dir.path(),
        "refused",
        &items_provider(
            &api.base,
            "refused",
            "kind = \"bearer\"\ntoken = \"${AUTH_TEST_BEARER}\"",
        ),
    );
    let summary = run(&app, &p, RunMode::Full).await;
    assert_eq!(summary.status, RunStatus::Failed);
    assert_eq!(
        summary.error.as_deref(),
        Some(
            format!(
                "page 1: GET {}/items?offset=0&limit=2: HTTP 401 after 1 attempt(s)",
                api.base
            )
            .as_str()
        )
    );
    assert_eq!(api.api.seen(|s| (s.item_requests, s.refused)), (1, 1));
    assert!(record_keys(&app, "refused").await.is_empty());
    assert_no_secret("ingest_runs", &stored_runs(&app.db).await);
}
on_both_databases!(bearer_basic_and_header_kinds_reach_the_data);

async fn oauth2_fetches_one_token_for_a_whole_run(backend: Backend) {
    set_vars();
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let api = StandIn::start(Behaviour::demanding(Demand::OAuth2)).await;
    let p = provider(
        dir.path(),
        "oauth",
        &items_provider(
            &api.base,
            "oauth",
            &oauth2_auth(&api.token_url(), "AUTH_TEST_CLIENT_SECRET"),
        ),
    );
    let summary = run(&app, &p, RunMode::Full).await;
    assert_eq!(summary.status, RunStatus::Succeeded, "{summary:?}");
    assert_eq!(
        (summary.pages, summary.fetched, summary.counts.inserted),
        (PAGES, ITEMS as u64, ITEMS as u64)
    );
    assert_eq!(record_keys(&app, "oauth").await, all_items());
    assert_eq!(
        api.api
            .seen(|s| (s.token_requests, s.item_requests, s.refused)),
        (1, PAGES as usize, 0)
    );
    // The grant, the scope and the audience as RFC 6749 §4.4 sends them.
    let form = api.api.seen(|s| s.token_forms[0].clone());
    assert_eq!(
        form.get("grant_type").map(String::as_str),
        Some("client_credentials")
    );
    assert_eq!(form.get("scope").map(String::as_str), Some(SCOPE));
    assert_eq!(form.get("audience").map(String::as_str), Some(AUDIENCE));

    // A second run fetches its own token: tokens live no longer than the run.
    let summary = run(&app, &p, RunMode::Full).await;
    assert_eq!(summary.status, RunStatus::Succeeded, "{summary:?}");
    assert_eq!(summary.counts.unchanged, ITEMS as u64);
    assert_eq!(api.api.seen(|s| s.token_requests), 2);
    assert_no_secret("ingest_runs", &stored_runs(&app.db).await);
}
on_both_databases!(oauth2_fetches_one_token_for_a_whole_run);

async fn a_revoked_token_is_renewed_once_and_the_page_fetched_again(backend: Backend) {
    set_vars();
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    // The token stops working after page 2: page 3 is refused once, then fetched with a new
    // token.
    let api = StandIn::start(Behaviour {
        revoke_after: Some(2),
        ..Behaviour::demanding(Demand::OAuth2)
    })
    .await;
    let p = provider(
        dir.path(),
        "revoked",
        &items_provider(
            &api.base,
            "revoked",
            &oauth2_auth(&api.token_url(), "AUTH_TEST_CLIENT_SECRET"),
        ),
    );
    let summary = run(&app, &p, RunMode::Full).await;
    assert_eq!(summary.status, RunStatus::Succeeded, "{summary:?}");
    assert_eq!(
        (summary.pages, summary.fetched, summary.counts.inserted),
        (PAGES, ITEMS as u64, ITEMS as u64)
    );
    assert_eq!(record_keys(&app, "revoked").await, all_items());
    assert_eq!(
        api.api
            .seen(|s| (s.token_requests, s.refused, s.answered, s.item_requests)),
        (2, 1, PAGES as usize, PAGES as usize + 1)
    );

    // A provider that refuses every new token too: one renewal, then the 401 fails the page.
    let api = StandIn::start(Behaviour::demanding(Demand::Authorization(
        "Bearer never-issued".into(),
    )))
    .await;
    let p = provider(
        dir.path(),
        "refusing",
        &items_provider(
            &api.base,
            "refusing",
            &oauth2_auth(&api.token_url(), "AUTH_TEST_CLIENT_SECRET"),
        ),
    );
    let summary = run(&app, &p, RunMode::Full).await;
    assert_eq!(summary.status, RunStatus::Failed);
    assert_eq!(
        summary.error.as_deref(),
        Some(
            format!(
                "page 1: GET {}/items?offset=0&limit=2: HTTP 401 after 2 attempt(s)",
                api.base
            )
            .as_str()
        )
    );
    assert_eq!(
        api.api
            .seen(|s| (s.token_requests, s.refused, s.item_requests)),
        (2, 2, 2)
    );
    assert!(record_keys(&app, "refusing").await.is_empty());
}
on_both_databases!(a_revoked_token_is_renewed_once_and_the_page_fetched_again);

async fn an_expiring_token_is_renewed_once(backend: Backend) {
    set_vars();
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    // The first token lives one second; page 2 is answered after a second and a half, so page 3
    // needs a new token, which lives an hour.
    let api = StandIn::start(Behaviour {
        lifetimes: vec![1, 3600],
        pause: Some((2, Duration::from_millis(1500))),
        ..Behaviour::demanding(Demand::OAuth2)
    })
    .await;
    let p = provider(
        dir.path(),
        "expiring",
        &items_provider(
            &api.base,
            "expiring",
            &oauth2_auth(&api.token_url(), "AUTH_TEST_CLIENT_SECRET"),
        ),
    );
    let summary = run(&app, &p, RunMode::Full).await;
    assert_eq!(summary.status, RunStatus::Succeeded, "{summary:?}");
    assert_eq!(
        (summary.pages, summary.fetched, summary.counts.inserted),
        (PAGES, ITEMS as u64, ITEMS as u64)
    );
    assert_eq!(record_keys(&app, "expiring").await, all_items());
    assert_eq!(
        api.api.seen(|s| (s.token_requests, s.answered)),
        (2, PAGES as usize)
    );
}
on_both_databases!(an_expiring_token_is_renewed_once);

async fn concurrent_follow_requests_share_one_token_renewal(backend: Backend) {
    set_vars();
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    // The token stops working once the first listing page is answered: the documents of that
    // page, fetched four at a time, are refused with it, and one new token serves them all.
    let api = StandIn::start(Behaviour {
        revoke_after: Some(1),
        ..Behaviour::demanding(Demand::OAuth2)
    })
    .await;
    let toml = items_provider(
        &api.base,
        "followed",
        &oauth2_auth(&api.token_url(), "AUTH_TEST_CLIENT_SECRET"),
    )
    .replace("page_size = 2", "page_size = 4")
    .replace(
        "[source.auth]",
        "[source.follow]\nurl = \"$.url\"\nconcurrency = 4\n[source.auth]",
    );
    let p = provider(dir.path(), "followed", &toml);
    let summary = run(&app, &p, RunMode::Full).await;
    assert_eq!(summary.status, RunStatus::Succeeded, "{summary:?}");
    assert_eq!(
        (
            summary.pages,
            summary.fetched,
            summary.counts.inserted,
            summary.rejected
        ),
        (3, ITEMS as u64, ITEMS as u64, 0)
    );
    assert_eq!(record_keys(&app, "followed").await, all_items());
    // Three listing pages and nine documents answered; however many requests the revoked
    // token had in flight, one new token replaced it.
    assert_eq!(
        api.api
            .seen(|s| (s.token_requests, s.answered, s.refused >= 1)),
        (2, 3 + ITEMS, true)
    );
    let stored = format!(
        "{:?}",
        entity::record::Entity::find()
            .all(&app.db)
            .await
            .expect("records")
            .into_iter()
            .filter(|r| r.dataset == "followed")
            .map(|r| r.data)
            .collect::<Vec<_>>()
    );
    assert!(stored.contains("document 9"), "{stored}");
}
on_both_databases!(concurrent_follow_requests_share_one_token_renewal);

async fn a_wrong_client_secret_fails_the_run_naming_the_token_url(backend: Backend) {
    set_vars();
    let app = TestApp::spawn(backend).await;
    let dir = tempfile::tempdir().expect("dir");
    let api = StandIn::start(Behaviour::demanding(Demand::OAuth2)).await;
    let p = provider(
        dir.path(),
        "wrong-secret",
        &items_provider(
            &api.base,
            "wrong-secret",
            &oauth2_auth(&api.token_url(), "AUTH_TEST_WRONG_SECRET"),
        ),
    );
    let summary = run(&app, &p, RunMode::Full).await;
    assert_eq!(summary.status, RunStatus::Failed);
    assert_eq!(
        summary.error.as_deref(),
        Some(
            format!(
                "page 1: GET {}/items?offset=0&limit=2: OAuth2 token request to {}: HTTP 401, error `invalid_client` (client authentication failed) after 1 attempt(s)",
                api.base,
                api.token_url()
            )
            .as_str()
        )
    );
    // Refused credentials are not retried, and no data request went out without a token.
    assert_eq!(
        api.api.seen(|s| (s.token_requests, s.item_requests)),
        (1, 0)
    );
    assert!(record_keys(&app, "wrong-secret").await.is_empty());
    assert_no_secret("ingest_runs", &stored_runs(&app.db).await);
}
on_both_databases!(a_wrong_client_secret_fails_the_run_naming_the_token_url);

/// Runs the real binary with JSON logs at debug level and providers of every kind (one OAuth2
/// provider renews a revoked token, one has a wrong secret), triggered over GraphQL: no secret
/// and no access token is in a log line, a run's error, a GraphQL answer or `ingest_runs`.
async fn secrets_never_reach_logs_errors_or_runs(backend: Backend) {
    let (database_url, _db_dir) = crate::common::database_url(backend).await;
    let oauth = StandIn::start(Behaviour {
        revoke_after: Some(2),
        ..Behaviour::demanding(Demand::OAuth2)
    })
    .await;
    let wrong = StandIn::start(Behaviour::demanding(Demand::OAuth2)).await;
    let fixed = StandIn::start(Behaviour::demanding(Demand::Authorization(format!(
        "Basic {}",
        STANDARD.encode(format!("{USER}:{PASSWORD}"))
    ))))
    .await;
    let keyed = StandIn::start(Behaviour::demanding(Demand::Header("x-api-key", API_KEY))).await;
    let dir = tempfile::tempdir().expect("dir");
    let providers = [
        (
            "oauth",
            items_provider(
                &oauth.base,
                "oauth",
                &oauth2_auth(&oauth.token_url(), "AUTH_TEST_CLIENT_SECRET"),
            ),
        ),
        (
            "wrong",
            items_provider(
                &wrong.base,
                "wrong",
                &oauth2_auth(&wrong.token_url(), "AUTH_TEST_WRONG_SECRET"),
            ),
        ),
        (
            "basic",
            items_provider(
                &fixed.base,
                "basic",
                &format!(
                    "kind = \"basic\"\nusername = \"{USER}\"\npassword = \"${{AUTH_TEST_PASSWORD}}\""
                ),
            ),
        ),
        (
            "keyed",
            items_provider(
                &keyed.base,
                "keyed",
                "kind = \"header\"\nname = \"X-Api-Key\"\nvalue = \"${AUTH_TEST_API_KEY}\"",
            ),
        ),
        // Refused by the provider: the bearer token is not the one it wants.
        (
            "bearer",
            items_provider(
                &fixed.base,
                "bearer",
                "kind = \"bearer\"\ntoken = \"${AUTH_TEST_BEARER}\"",
            ),
        ),
    ];
    for (name, toml) in &providers {
        write_provider(dir.path(), name, toml);
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("address")
        .port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tributary"));
    command
        .arg("serve")
        .env("DATABASE_URL", &database_url)
        .env("TRIBUTARY_LISTEN", format!("127.0.0.1:{port}"))
        .env("TRIBUTARY_PROVIDERS_DIR", dir.path())
        .env("TRIBUTARY_LOG_FORMAT", "json")
        .env("TRIBUTARY_SCHEDULER__ENABLED", "false")
        .env("TRIBUTARY_OUTBOUND__ALLOWED_NETWORKS", "[\"127.0.0.0/8\"]")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in VARS {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("start tributary serve");
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
    for (name, _) in &providers {
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
        answers.push(run["data"]["ingestRun"].clone());
    }
    let stored = sea_orm::Database::connect(database_url.as_str())
        .await
        .expect("connect");
    let rows = stored_runs(&stored).await;
    for dataset in ["oauth", "basic", "keyed"] {
        assert_eq!(
            dataset_keys(&stored, dataset).await,
            all_items(),
            "{dataset}"
        );
    }
    for dataset in ["wrong", "bearer"] {
        assert!(dataset_keys(&stored, dataset).await.is_empty(), "{dataset}");
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    for reader in readers {
        reader.join().expect("log reader");
    }
    let logs = logs.lock().unwrap_or_else(|e| e.into_inner()).clone();

    let fetched = ITEMS as u64;
    assert_eq!(
        answers,
        [
            json!({ "provider": "oauth", "status": "SUCCEEDED", "fetched": fetched, "error": null }),
            json!({
                "provider": "wrong",
                "status": "FAILED",
                "fetched": 0,
                "error": format!(
                    "page 1: GET {}/items?offset=0&limit=2: OAuth2 token request to {}: HTTP 401, error `invalid_client` (client authentication failed) after 1 attempt(s)",
                    wrong.base,
                    wrong.token_url()
                ),
            }),
            json!({ "provider": "basic", "status": "SUCCEEDED", "fetched": fetched, "error": null }),
            json!({ "provider": "keyed", "status": "SUCCEEDED", "fetched": fetched, "error": null }),
            json!({
                "provider": "bearer",
                "status": "FAILED",
                "fetched": 0,
                "error": format!(
                    "page 1: GET {}/items?offset=0&limit=2: HTTP 401 after 1 attempt(s)",
                    fixed.base
                ),
            }),
        ]
    );
    // The renewal happened, and was logged without the token.
    assert_eq!(oauth.api.seen(|s| (s.token_requests, s.refused)), (2, 1));
    assert_eq!(
        logs.matches("fetched an OAuth2 access token").count(),
        2,
        "{logs}"
    );
    assert!(logs.contains("\"level\":\"DEBUG\""), "debug logging is on");
    assert_eq!(logs.matches("ingest run failed").count(), 2, "{logs}");
    assert_no_secret("the logs", &logs);
    assert_no_secret("the runs", &rows);
    assert_no_secret("the GraphQL answers", &format!("{answers:?}"));
}
on_both_databases!(secrets_never_reach_logs_errors_or_runs);
