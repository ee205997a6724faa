//! Walking a provider's paginated listing: which request comes next, when the listing ends,
//! and the position to resume from, committed with each page.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use serde_json_path::JsonPath;

use super::http::{Client, FetchError, Request, next_link};
use crate::providers::definition::{HttpSource, PageEnd, Pagination, SkipRule};

/// Where the next page starts. Stored as the provider's checkpoint after each committed page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Position {
    Start,
    Offset { offset: u64, limit: u64 },
    Page { page: u64 },
    Cursor { cursor: String },
    Url { url: String },
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
    skip: Vec<(JsonPath, SkipRule)>,
    position: Option<Position>,
    pages: u64,
    max_pages: u64,
}

impl Listing {
    /// `base` is the expanded request; `start` the checkpoint to resume from (None: the start).
    pub fn new(
        client: Client,
        source: &HttpSource,
        base: Request,
        query: BTreeMap<String, String>,
        format: BodyFormat,
        start: Option<Position>,
    ) -> Result<Listing, ListingError> {
        let records = parse_path("source.records", &source.records)?;
        let skip = source
            .skip
            .iter()
            .map(|rule| Ok((parse_path("source.skip.field", &rule.field)?, rule.clone())))
            .collect::<Result<Vec<_>, ListingError>>()?;
        Ok(Listing {
            format,
            client,
            base,
            query,
            pagination: source.pagination.clone(),
            records,
            skip,
            position: Some(start.unwrap_or(Position::Start)),
            pages: 0,
            max_pages: source.max_pages,
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The next page, or `None` when the listing has ended.
    pub async fn next_page(&mut self) -> Result<Option<FetchedPage>, ListingError> {
        let Some(position) = self.position.clone() else {
            return Ok(None);
        };
        if self.pages >= self.max_pages {
            return Err(ListingError::TooManyPages(self.max_pages));
        }
        let page = match self.pagination.clone() {
            Pagination::None => {
                let response = self.get(&self.base.url.clone(), &[], &[]).await?;
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
                        Some(records) => {
                            let n = records.len() as u64;
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
                    Some(records) => {
                        let n = records.len() as u64;
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
                let response = self.get(&self.base.url.clone(), &params, &[]).await?;
                let records = self.records_of(&response.body)?;
                let token = match (&token_path, &token_header) {
                    (Some(path), _) => {
                        let body = parse_json(&response.body)?;
                        let path = parse_path("source.pagination.token_path", path)?;
                        path.query(&body).exactly_one().ok().and_then(|v| match v {
                            Json::String(s) if !s.is_empty() => Some(s.clone()),
                            Json::Number(n) => Some(n.to_string()),
                            _ => None,
                        })
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
            Pagination::Link { next_path } => {
                let url = match &position {
                    Position::Url { url } => url::Url::parse(url)
                        .map_err(|e| ListingError::Invalid(format!("checkpoint URL: {e}")))?,
                    _ => self.base.url.clone(),
                };
                let response = self.get(&url, &[], &[]).await?;
                let records = self.records_of(&response.body)?;
                let next = match &next_path {
                    Some(path) => {
                        let body = parse_json(&response.body)?;
                        let path = parse_path("source.pagination.next_path", path)?;
                        path.query(&body)
                            .exactly_one()
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                    }
                    None => next_link(&response.headers),
                };
                let next = match next {
                    Some(target) => Some(Position::Url {
                        url: url
                            .join(&target)
                            .map_err(|e| ListingError::Invalid(format!("next page URL: {e}")))?
                            .to_string(),
                    }),
                    None => None,
                };
                FetchedPage { records, next }
            }
        };
        self.pages += 1;
        self.position = page.next.clone();
        Ok(Some(page))
    }

    /// One page of records, or `None` when the API answered one of `end.statuses`.
    async fn page_or_end(
        &self,
        params: &[(&str, String)],
        end: &PageEnd,
    ) -> Result<Option<Vec<Json>>, ListingError> {
        let response = self
            .get(&self.base.url.clone(), params, &end.statuses)
            .await?;
        if !response.status.is_success() {
            return Ok(None);
        }
        self.records_of(&response.body).map(Some)
    }

    async fn get(
        &self,
        url: &url::Url,
        params: &[(&str, String)],
        expected: &[u16],
    ) -> Result<super::http::Response, ListingError> {
        let mut url = url.clone();
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &self.query {
                pairs.append_pair(k, v);
            }
            for (k, v) in params {
                pairs.append_pair(k, v);
            }
        }
        let request = Request {
            url,
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
        let mut records = match self.format {
            BodyFormat::Json => select(&self.records, &parse_json(body)?),
            BodyFormat::Text => vec![Json::String(String::from_utf8_lossy(body).into_owned())],
            BodyFormat::Csv => csv_records(body)?,
        };
        records.retain(|r| !self.skip.iter().any(|(path, rule)| skipped(path, rule, r)));
        Ok(records)
    }
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

fn parse_json(body: &[u8]) -> Result<Json, ListingError> {
    serde_json::from_slice(body)
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

fn skipped(path: &JsonPath, rule: &SkipRule, record: &Json) -> bool {
    let Ok(value) = path.query(record).exactly_one() else {
        return false;
    };
    let Some(text) = value.as_str() else {
        return false;
    };
    rule.starts_with
        .as_deref()
        .is_some_and(|p| text.starts_with(p))
        || rule.equals.as_deref().is_some_and(|e| text == e)
}
