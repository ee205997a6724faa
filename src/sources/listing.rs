//! Walking a provider's paginated listing: which request comes next, when the listing ends,
//! and the position to resume from, committed with each page.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use serde_json_path::JsonPath;

use super::filter::RecordFilter;
use super::http::{Client, FetchError, Request, next_link};
use super::incremental::{Format, Mark, Step, Vars};
use crate::providers::definition::{
    CursorValue, HttpMethod, HttpSource, PageEnd, Pagination, Window, WindowEnd,
};

/// Where the next page starts. Stored as the provider's checkpoint after each committed page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Position {
    Start,
    Offset {
        offset: u64,
        limit: u64,
    },
    Page {
        page: u64,
    },
    Cursor {
        cursor: String,
    },
    Url {
        url: String,
    },
    /// The next window starts here (a cursor value in its stored form).
    Window {
        from: String,
    },
}

/// What a run commits with each page to resume from: the position, and the mark the run
/// started from (so a resumed run asks for the same records as the run it continues).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub at: Position,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

impl Checkpoint {
    /// A stored checkpoint; one written before it held `since` is a bare position.
    pub fn read(stored: Json) -> Option<Checkpoint> {
        serde_json::from_value::<Checkpoint>(stored.clone())
            .ok()
            .or_else(|| {
                serde_json::from_value::<Position>(stored)
                    .ok()
                    .map(|at| Checkpoint { at, since: None })
            })
    }
}

/// Where an incremental listing starts: the mark (less the lookback) or `initial`, and how it
/// is written into requests.
#[derive(Debug, Clone)]
pub struct Since {
    pub mark: Mark,
    pub format: Format,
    /// The query parameter that carries it, if any.
    pub param: Option<String>,
}

/// One fetched page: its raw records, and where the listing goes on (`None`: this was the last).
#[derive(Debug)]
pub struct FetchedPage {
    pub records: Vec<Json>,
    pub next: Option<Position>,
}

#[derive(Debug, thiserror::Error)]
pub enum ListingError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{0}")]
    Invalid(String),
    #[error(
        "stopped after max_pages = {0} pages: the listing did not end (a cursor that never ends?)"
    )]
    TooManyPages(u64),
    /// The provider led back to a page it already gave: following it would never end.
    #[error("page {page}: {message}; stopped instead of looping")]
    Loop { page: u64, message: String },
    /// Where in the listing an error happened (pages counted from 1 in this run).
    #[error("page {page}: {error}")]
    AtPage { page: u64, error: Box<ListingError> },
}

/// How a page's body is read. With `follow`, listings are JSON and `parse` applies to the
/// followed documents instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    /// The whole body is one raw record (a text document); the pattern splits it later.
    Text,
    /// Each CSV row is a record, its header naming the fields.
    Csv,
}

/// A listing walked page by page. Pages come strictly in order: each one decides the next.
pub struct Listing {
    format: BodyFormat,
    client: Client,
    /// The request with `${VAR}`s expanded; pagination parameters are added per page.
    base: Request,
    query: BTreeMap<String, String>,
    pagination: Pagination,
    records: JsonPath,
    /// Where an answer says it failed (JSON-RPC's `$.error`).
    error: Option<JsonPath>,
    filter: RecordFilter,
    position: Option<Position>,
    /// The URL as written, when it holds request variables: parsed per request once they are
    /// filled in.
    url_template: Option<String>,
    /// `${cursor}` (the run's starting mark).
    vars: Vars,
    since: Option<Since>,
    /// For window pagination: where the last window ends, known once the listing starts.
    window_end: Option<Mark>,
    pages: u64,
    max_pages: u64,
    /// Cursor and URL positions already fetched in this run, with their page numbers.
    fetched_positions: HashMap<String, u64>,
    /// A hash of each page's records, so a page answered twice is noticed whatever the
    /// pagination kind (at most `max_pages` entries).
    page_hashes: HashSet<u64>,
}

impl Listing {
    /// `base` is the expanded request; `start` the checkpoint to resume from (None: the start);
    /// `since` where an incremental listing starts.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        source: &HttpSource,
        base: Request,
        mut query: BTreeMap<String, String>,
        format: BodyFormat,
        start: Option<Position>,
        filter: RecordFilter,
        since: Option<Since>,
    ) -> Result<Listing, ListingError> {
        let records = parse_path("source.records", &source.records)?;
        let error = source
            .error
            .as_deref()
            .map(|path| parse_path("source.error", path))
            .transpose()?;
        let mut vars = Vars::default();
        if let Some(since) = &since {
            let value = since.mark.format(&since.format);
            if let Some(param) = &since.param {
                query.insert(param.clone(), value.clone());
            }
            vars.set("cursor", value);
        }
        let url_template = source.url.contains("${").then(|| source.url.clone());
        Ok(Listing {
            format,
            client,
            base,
            query,
            pagination: source.pagination.clone(),
            records,
            error,
            filter,
            url_template,
            vars,
            since,
            window_end: None,
            position: Some(start.unwrap_or(Position::Start)),
            pages: 0,
            max_pages: source.max_pages,
            fetched_positions: HashMap::new(),
            page_hashes: HashSet::new(),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Pages fetched so far in this run.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// The checkpoint that resumes the listing at `next`.
    pub fn checkpoint(&self, next: &Position) -> Checkpoint {
        Checkpoint {
            at: next.clone(),
            since: self.since.as_ref().map(|s| s.mark.stored()),
        }
    }

    /// For window pagination: the first window's start, the step, the end and the format,
    /// asking the provider for the end when it is a head request (once per run).
    async fn window(
        &mut self,
        window: &Window,
        position: &Position,
    ) -> Result<(Mark, Step, Mark, Format), ListingError> {
        let invalid = |key: &str, e: String| ListingError::Invalid(format!("{key}: {e}"));
        let configured = window.start.as_ref().map(Mark::of_config);
        let kind = configured
            .as_ref()
            .or(self.since.as_ref().map(|s| &s.mark))
            .map(Mark::kind)
            .ok_or_else(|| {
                invalid(
                    "source.pagination",
                    "a window needs `start`, or `[source.incremental]`".into(),
                )
            })?;
        let from = match position {
            Position::Window { from } => {
                Mark::parse(kind, from).map_err(|e| invalid("checkpoint", e))?
            }
            // The incremental mark decides where a run starts; `start` is the first run's.
            _ => match (&self.since, configured) {
                (Some(since), _) => since.mark.clone(),
                (None, Some(start)) => start,
                (None, None) => {
                    return Err(invalid(
                        "source.pagination",
                        "a window needs `start`, or `[source.incremental]`".into(),
                    ));
                }
            },
        };
        let step = Step::of_config(&window.step, kind)
            .map_err(|e| invalid("source.pagination.step", e))?;
        let format = Format::of_config(window.format.as_deref(), kind)
            .map_err(|e| invalid("source.pagination.format", e))?;
        if self.window_end.is_none() {
            let end = match &window.end {
                WindowEnd::Value(CursorValue::Text(now)) if now == "now" => {
                    Mark::Time(chrono::Utc::now())
                }
                WindowEnd::Value(value) => Mark::of_config(value),
                WindowEnd::Head(head) => {
                    let url = match &head.url {
                        Some(url) => url::Url::parse(url).map_err(|e| {
                            invalid("source.pagination.end.url", format!("not a URL ({e})"))
                        })?,
                        None => self.base.url.clone(),
                    };
                    let request = Request {
                        method: if head.body.is_some() {
                            HttpMethod::Post
                        } else {
                            HttpMethod::Get
                        },
                        url,
                        headers: self.base.headers.clone(),
                        body: head.body.clone(),
                    };
                    let body = head_answer(&self.client, request).await?;
                    let path = parse_path("source.pagination.end.path", &head.path)?;
                    let found = path.query(&body).exactly_one().map_err(|_| {
                        invalid(
                            "source.pagination.end.path",
                            format!("`{}` found no single value in the answer", head.path),
                        )
                    })?;
                    let last = Mark::of_record(kind, found)
                        .map_err(|e| invalid("source.pagination.end.path", e))?;
                    // The answer is the last value to fetch: windows run through it.
                    last.moved(&Step::unit(kind), 1)
                }
            };
            if end.kind() != kind {
                return Err(invalid(
                    "source.pagination.end",
                    format!("expected {}", kind.name()),
                ));
            }
            self.window_end = Some(end);
        }
        let end = self.window_end.clone().unwrap_or_else(|| from.clone());
        Ok((from, step, end, format))
    }

    /// The next page, or `None` when the listing has ended.
    pub async fn next_page(&mut self) -> Result<Option<FetchedPage>, ListingError> {
        let Some(position) = self.position.clone() else {
            return Ok(None);
        };
        if self.pages >= self.max_pages {
            return Err(ListingError::TooManyPages(self.max_pages));
        }
        let number = self.pages + 1;
        let window = match &self.pagination {
            Pagination::Window(window) => {
                let window = window.clone();
                let bounds = self.window(&window, &position).await.map_err(|error| {
                    ListingError::AtPage {
                        page: number,
                        error: Box::new(error),
                    }
                })?;
                if !bounds.2.after(&bounds.0) {
                    // Nothing left to ask for (the provider has nothing newer than the mark).
                    self.position = None;
                    return Ok(None);
                }
                Some(bounds)
            }
            _ => None,
        };
        if let Some(key) = revisitable(&position) {
            if let Some(first) = self.fetched_positions.get(&key) {
                let shown = match &position {
                    Position::Url { url } => match url::Url::parse(url) {
                        Ok(url) => format!("URL {}", self.client.display_url(&url)),
                        Err(_) => "the same URL".to_string(),
                    },
                    _ => key.clone(),
                };
                return Err(ListingError::Loop {
                    page: number,
                    message: format!(
                        "the provider's next page is page {first} again ({shown}): its pagination repeats or goes backwards"
                    ),
                });
            }
            self.fetched_positions.insert(key, number);
        }
        let fetched = match window {
            Some((from, step, end, format)) => self.fetch_window(from, step, end, format).await,
            None => self.fetch(position).await,
        };
        let page = match fetched {
            Ok(page) => page,
            // A refused address is about the provider's configuration, not about one page.
            Err(error @ ListingError::Fetch(FetchError::Refused { .. })) => return Err(error),
            Err(error) => {
                return Err(ListingError::AtPage {
                    page: number,
                    error: Box::new(error),
                });
            }
        };
        if !page.records.is_empty() && !self.page_hashes.insert(records_hash(&page.records)) {
            return Err(ListingError::Loop {
                page: number,
                message: "the provider answered the same records as an earlier page: its pagination repeats or goes backwards".to_string(),
            });
        }
        self.pages += 1;
        self.position = page.next.clone();
        Ok(Some(page))
    }

    /// Fetches the window `[from, min(from + step, end))`.
    async fn fetch_window(
        &self,
        from: Mark,
        step: Step,
        end: Mark,
        format: Format,
    ) -> Result<FetchedPage, ListingError> {
        let mut to = from.moved(&step, 1);
        if to.after(&end) {
            to = end.clone();
        }
        let last = to.moved(&Step::unit(to.kind()), -1);
        let mut vars = self.vars.clone();
        vars.set("window.from", from.format(&format));
        vars.set("window.to", to.format(&format));
        vars.set("window.last", last.format(&format));
        let url = self.base.url.clone();
        let response = self.get(&url, NO_PARAMS, NO_STATUSES, &vars).await?;
        let records = self.records_of(&response.body)?;
        let next = end
            .after(&to)
            .then(|| Position::Window { from: to.stored() });
        Ok(FetchedPage { records, next })
    }

    /// Fetches the page at `position`.
    async fn fetch(&self, position: Position) -> Result<FetchedPage, ListingError> {
        let page = match self.pagination.clone() {
            Pagination::None(_) => {
                let response = self
                    .get(&self.base.url.clone(), &[], &[], &self.vars)
                    .await?;
                let records = self.records_of(&response.body)?;
                FetchedPage {
                    records,
                    next: None,
                }
            }
            Pagination::Offset {
                offset_param,
                limit_param,
                page_size,
                end,
            } => {
                let (mut offset, mut limit) = match position {
                    Position::Offset { offset, limit } => (offset, limit),
                    _ => (0, page_size),
                };
                loop {
                    let params = [
                        (offset_param.as_str(), offset.to_string()),
                        (limit_param.as_str(), limit.to_string()),
                    ];
                    match self.page_or_end(&params, &end).await? {
                        // Skipped records count: they hold places in the provider's listing.
                        Some(Listed { records, listed: n }) => {
                            offset += n;
                            let last = n == 0 || (end.short_page && n < limit);
                            let next = (!last).then_some(Position::Offset { offset, limit });
                            break FetchedPage { records, next };
                        }
                        // Past the end: with shrinking, the same offset with a smaller page
                        // may still hold the last records.
                        None if end.shrink_on_end_status && limit > 1 => limit /= 2,
                        None => {
                            break FetchedPage {
                                records: Vec::new(),
                                next: None,
                            };
                        }
                    }
                }
            }
            Pagination::Page {
                page_param,
                size_param,
                page_size,
                first_page,
                end,
            } => {
                let page = match position {
                    Position::Page { page } => page,
                    _ => first_page,
                };
                let mut params = vec![(page_param.as_str(), page.to_string())];
                if let Some(size) = &size_param {
                    params.push((size.as_str(), page_size.to_string()));
                }
                match self.page_or_end(&params, &end).await? {
                    Some(Listed { records, listed: n }) => {
                        let last = n == 0 || (end.short_page && n < page_size);
                        let next = (!last).then_some(Position::Page { page: page + 1 });
                        FetchedPage { records, next }
                    }
                    None => FetchedPage {
                        records: Vec::new(),
                        next: None,
                    },
                }
            }
            Pagination::Cursor {
                token_path,
                token_header,
                param,
            } => {
                let params: Vec<(&str, String)> = match &position {
                    Position::Cursor { cursor } => vec![(param.as_str(), cursor.clone())],
                    _ => Vec::new(),
                };
                let response = self
                    .get(&self.base.url.clone(), &params, &[], &self.vars)
                    .await?;
                let records = self.records_of(&response.body)?;
                let token = match (&token_path, &token_header) {
                    (Some(path), _) => {
                        let body = parse_json(&response.body)?;
                        let path = parse_path("source.pagination.token_path", path)?;
                        next_token(&path, &body)
                    }
                    (None, Some(header)) => response
                        .headers
                        .get(header.as_str())
                        .and_then(|v| v.to_str().ok())
                        .filter(|v| !v.is_empty())
                        .map(str::to_string),
                    (None, None) => None,
                };
                let next = token.map(|cursor| Position::Cursor { cursor });
                FetchedPage { records, next }
            }
            Pagination::Window(_) => {
                return Err(ListingError::Invalid(
                    "a window listing is fetched by window".to_string(),
                ));
            }
            Pagination::Link { next_path } => {
                let url = match &position {
                    Position::Url { url } => url::Url::parse(url)
                        .map_err(|e| ListingError::Invalid(format!("checkpoint URL: {e}")))?,
                    _ => self.base.url.clone(),
                };
                let response = self.get(&url, &[], &[], &self.vars).await?;
                let records = self.records_of(&response.body)?;
                let next = match &next_path {
                    Some(path) => {
                        let body = parse_json(&response.body)?;
                        let path = parse_path("source.pagination.next_path", path)?;
                        next_url(&path, &body)
                    }
                    None => next_link(&response.headers, &url).map_err(ListingError::Invalid)?,
                };
                let next = match next {
                    Some(target) => {
                        let mut next = url
                            .join(&target)
                            .map_err(|e| ListingError::Invalid(format!("next page URL: {e}")))?;
                        self.drop_own_params(&mut next);
                        Some(Position::Url {
                            url: next.to_string(),
                        })
                    }
                    None => None,
                };
                FetchedPage { records, next }
            }
        };
        Ok(page)
    }

    /// Removes the provider's own `query` parameters from a next-page URL. APIs often echo
    /// them (an `api_key` too) into their next links; `get` adds them to every request anyway,
    /// and the URL is stored as the checkpoint, where a secret must not be.
    fn drop_own_params(&self, url: &mut url::Url) {
        if url.query().is_none() || self.query.is_empty() {
            return;
        }
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !self.query.contains_key(k.as_ref()))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
    }

    /// One page of records, or `None` when the API answered one of `end.statuses`.
    async fn page_or_end(
        &self,
        params: &[(&str, String)],
        end: &PageEnd,
    ) -> Result<Option<Listed>, ListingError> {
        let response = self
            .get(&self.base.url.clone(), params, &end.statuses, &self.vars)
            .await?;
        if !response.status.is_success() {
            return Ok(None);
        }
        self.check_error(&response.body)?;
        listed_records(self.format, &response.body, &self.records, &self.filter).map(Some)
    }

    /// An answer that says it failed (`source.error`) is an error, never an empty page: a
    /// node refusing a range too large would otherwise lose that range's records.
    fn check_error(&self, body: &[u8]) -> Result<(), ListingError> {
        let Some(path) = &self.error else {
            return Ok(());
        };
        let answer = parse_json(body)?;
        match path.query(&answer).first() {
            Some(Json::Null) | None => Ok(()),
            Some(error) => {
                let mut shown = error.to_string();
                if shown.len() > 500 {
                    let cut = (0..=500)
                        .rev()
                        .find(|i| shown.is_char_boundary(*i))
                        .unwrap_or(0);
                    shown.truncate(cut);
                    shown.push('…');
                }
                Err(ListingError::Invalid(format!(
                    "the provider answered with an error (source.error): {shown}"
                )))
            }
        }
    }

    /// A request to `url` (the source's own URL is filled in from its template), with the
    /// provider's query, `params`, and the request variables replaced.
    async fn get(
        &self,
        url: &url::Url,
        params: &[(&str, String)],
        expected: &[u16],
        vars: &Vars,
    ) -> Result<super::http::Response, ListingError> {
        let mut url = match &self.url_template {
            Some(template) if *url == self.base.url => url::Url::parse(&vars.apply(template))
                .map_err(|e| ListingError::Invalid(format!("source.url: not a URL ({e})")))?,
            _ => url.clone(),
        };
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &self.query {
                pairs.append_pair(k, &vars.apply(v));
            }
            for (k, v) in params {
                pairs.append_pair(k, v);
            }
        }
        let body = match (&self.base.body, vars.is_empty()) {
            (Some(body), false) => Some(vars.apply_json(body)),
            (body, _) => body.clone(),
        };
        let request = Request {
            url,
            body,
            ..self.base.clone()
        };
        let format = self.format;
        let check = move |body: &[u8]| match format {
            BodyFormat::Json => serde_json::from_slice::<serde::de::IgnoredAny>(body)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            BodyFormat::Text | BodyFormat::Csv => std::str::from_utf8(body)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        Ok(self.client.fetch(&request, expected, &check).await?)
    }

    /// The records in a page body, less the skipped ones.
    fn records_of(&self, body: &[u8]) -> Result<Vec<Json>, ListingError> {
        self.check_error(body)?;
        page_records(self.format, body, &self.records, &self.filter)
    }
}

const NO_PARAMS: &[(&str, String)] = &[];
const NO_STATUSES: &[u16] = &[];

/// The JSON answer to a window listing's head request.
async fn head_answer(client: &Client, request: Request) -> Result<Json, ListingError> {
    fn check(body: &[u8]) -> Result<(), String> {
        serde_json::from_slice::<serde::de::IgnoredAny>(body)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
    let response = client.fetch(&request, NO_STATUSES, &check).await?;
    parse_json(&response.body)
}

/// The key of a position that a looping provider could lead back to (cursors and URLs; offsets
/// and page numbers only grow).
fn revisitable(position: &Position) -> Option<String> {
    match position {
        Position::Cursor { cursor } => Some(format!("cursor {cursor:?}")),
        Position::Url { url } => Some(format!("URL {url}")),
        _ => None,
    }
}

fn records_hash(records: &[Json]) -> u64 {
    let mut hasher = DefaultHasher::new();
    for record in records {
        record.to_string().hash(&mut hasher);
    }
    hasher.finish()
}

/// The records in one page body: JSON selected by the `records` path, the whole text, or CSV
/// rows; less those a `skip` rule matches.
pub fn page_records(
    format: BodyFormat,
    body: &[u8],
    records: &JsonPath,
    filter: &RecordFilter,
) -> Result<Vec<Json>, ListingError> {
    listed_records(format, body, records, filter).map(|listed| listed.records)
}

/// A page's records less the skipped ones, and how many the page listed: offsets and short
/// pages are about the provider's listing, skipped records included.
struct Listed {
    records: Vec<Json>,
    listed: u64,
}

fn listed_records(
    format: BodyFormat,
    body: &[u8],
    records: &JsonPath,
    filter: &RecordFilter,
) -> Result<Listed, ListingError> {
    let mut found = match format {
        BodyFormat::Json => select(records, &parse_json(body)?),
        BodyFormat::Text => vec![Json::String(String::from_utf8_lossy(body).into_owned())],
        BodyFormat::Csv => csv_records(body)?,
    };
    let listed = found.len() as u64;
    found.retain(|r| filter.passes(r));
    Ok(Listed {
        records: found,
        listed,
    })
}

/// A cursor pagination's next token: the one node `path` selects, when it is a non-empty
/// string or a number. Anything else ends the listing.
pub fn next_token(path: &JsonPath, body: &Json) -> Option<String> {
    path.query(body).exactly_one().ok().and_then(|v| match v {
        Json::String(s) if !s.is_empty() => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// A link pagination's next URL as the body gives it (resolved against the page's URL by the
/// caller): the one string node `path` selects.
pub fn next_url(path: &JsonPath, body: &Json) -> Option<String> {
    path.query(body)
        .exactly_one()
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
}

/// CSV rows as objects of strings keyed by the header.
fn csv_records(body: &[u8]) -> Result<Vec<Json>, ListingError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(body);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| ListingError::Invalid(format!("CSV header: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    reader
        .records()
        .map(|row| {
            let row = row.map_err(|e| ListingError::Invalid(format!("CSV: {e}")))?;
            Ok(Json::Object(
                header
                    .iter()
                    .zip(row.iter())
                    .map(|(k, v)| (k.clone(), Json::String(v.to_string())))
                    .collect(),
            ))
        })
        .collect()
}

/// Exact parsing: an integer beyond 64 bits keeps its digits (see [`super::json`]), as it does
/// from files, instead of becoming a rounded float the `uint256` transform must refuse.
fn parse_json(body: &[u8]) -> Result<Json, ListingError> {
    super::json::parse_slice(body)
        .map_err(|e| ListingError::Invalid(format!("response is not JSON: {e}")))
}

pub fn parse_path(key: &str, path: &str) -> Result<JsonPath, ListingError> {
    JsonPath::parse(path)
        .map_err(|e| ListingError::Invalid(format!("{key}: bad JSONPath `{path}`: {e}")))
}

/// The nodes a records path selects; one node that is an array stands for its elements.
pub fn select(path: &JsonPath, body: &Json) -> Vec<Json> {
    let nodes = path.query(body).all();
    match nodes.as_slice() {
        [Json::Array(items)] => items.clone(),
        _ => nodes.into_iter().cloned().collect(),
    }
}
