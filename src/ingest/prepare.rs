//! A provider made ready to run: environment expanded, mappings compiled, and the steps that
//! turn fetched bodies into raw records.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Map, Value as Json};
use serde_json_path::JsonPath;

use super::write::{Batch, Item, text_of};
use crate::hosts::HostRules;
use crate::providers::definition::{HttpSource, Parse, Provider};
use crate::providers::load::expand_env;
use crate::sources::http::{Client, FetchError, Request};
use crate::sources::json;
use crate::sources::listing::{BodyFormat, Listing, ListingError, Position, parse_path};
use crate::sources::outbound::Outbound;
use crate::transform::path::FieldPath;
use crate::transform::{Mapper, TextParser};

pub struct Prepared {
    pub provider: Provider,
    /// How `host` observations are matched and merged.
    pub host_rules: HostRules,
    pub mapper: Mapper,
    pub text: Option<TextParser>,
    /// Which addresses the provider's requests may reach.
    pub outbound: Outbound,
    follow: Option<(JsonPath, usize)>,
    /// A provider without `fields` stores each raw record whole; its `key` is then a path into
    /// the raw record.
    whole_key: Option<FieldPath>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Prepared {
    pub fn new(
        provider: &Provider,
        host_rules: &HostRules,
        outbound: &Outbound,
    ) -> Result<Prepared, String> {
        let def = &provider.def;
        let mapper = Mapper::new(&def.fields, &env)
            .map_err(|e| format!("{}: {e}", provider.path.display()))?;
        let text = match &def.parse {
            Parse::Text { pattern } => Some(TextParser::new(pattern)?),
            _ => None,
        };
        let follow = match &def.source {
            crate::providers::definition::Source::Http(http) => match &http.follow {
                Some(follow) => Some((
                    parse_path("source.follow.url", &follow.url).map_err(|e| e.to_string())?,
                    follow.concurrency.max(1),
                )),
                None => None,
            },
            _ => None,
        };
        let whole_key = match (&def.key, def.fields.is_empty()) {
            (Some(key), true) => {
                Some(FieldPath::parse(key).map_err(|e| format!("key: bad JSONPath `{key}`: {e}"))?)
            }
            _ => None,
        };
        Ok(Prepared {
            provider: provider.clone(),
            host_rules: host_rules.clone(),
            mapper,
            text,
            outbound: outbound.clone(),
            follow,
            whole_key,
        })
    }

    /// The listing, with `${VAR}`s expanded now (not at load time), so a secret lives only as
    /// long as the run.
    pub fn listing(
        &self,
        source: &HttpSource,
        start: Option<Position>,
    ) -> Result<Listing, ListingError> {
        let expand = |key: &str, text: &str| {
            expand_env(text, &env).map_err(|e| ListingError::Invalid(format!("{key}: {e}")))
        };
        let url = expand("source.url", &source.url)?;
        let url = url::Url::parse(&url)
            .map_err(|e| ListingError::Invalid(format!("source.url: not a URL ({e})")))?;
        let mut headers = BTreeMap::new();
        for (name, value) in &source.headers {
            headers.insert(
                name.clone(),
                expand(&format!("source.headers.{name}"), value)?,
            );
        }
        let mut query = BTreeMap::new();
        // Query values taken from the environment are secrets (API keys), whether they are
        // written in `query` or in the URL itself.
        let mut secret_params = secret_url_params(&source.url);
        for (name, value) in &source.query {
            if value.contains("${") {
                secret_params.push(name.clone());
            }
            query.insert(
                name.clone(),
                expand(&format!("source.query.{name}"), value)?,
            );
        }
        let body = match &source.body {
            Some(body) => Some(expand_json(body, &expand)?),
            None => None,
        };
        let client = Client::new(
            &self.provider.name,
            Duration::from_secs(source.timeout_secs),
            source.rate_limit,
            source.retry.clone(),
            secret_params,
            &self.outbound,
        )?;
        let base = Request {
            method: source.method,
            url,
            headers,
            body,
        };
        let format = match (&source.follow, &self.provider.def.parse) {
            (None, Parse::Text { .. }) => BodyFormat::Text,
            (None, Parse::Csv) => BodyFormat::Csv,
            _ => BodyFormat::Json,
        };
        Listing::new(client, source, base, query, format, start)
    }

    /// With `follow`: each listed record is replaced by the document at its URL, fetched
    /// `concurrency` at a time and kept in listing order.
    pub async fn follow(
        &self,
        client: &Client,
        records: Vec<Json>,
    ) -> Result<Vec<Item>, FetchError> {
        let Some((path, concurrency)) = &self.follow else {
            return Ok(records.into_iter().map(Item::Raw).collect());
        };
        let text = self.text.is_some();
        let fetches = records.into_iter().map(|record| {
            let url = path
                .query(&record)
                .exactly_one()
                .ok()
                .and_then(|v| v.as_str().map(str::to_string));
            async move {
                let Some(url) = url.and_then(|u| url::Url::parse(&u).ok()) else {
                    return Ok(Item::Rejected {
                        reason: "source.follow.url: no URL in the listed record".into(),
                        payload: record,
                        line: None,
                    });
                };
                let request = Request {
                    method: crate::providers::definition::HttpMethod::Get,
                    url,
                    headers: BTreeMap::new(),
                    body: None,
                };
                let check = |body: &[u8]| -> Result<(), String> {
                    if text {
                        std::str::from_utf8(body)
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    } else {
                        json::parse_slice(body)
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    }
                };
                match client.fetch(&request, &[], &check).await {
                    Ok(response) if text => Ok(Item::Raw(Json::String(
                        String::from_utf8_lossy(&response.body).into_owned(),
                    ))),
                    Ok(response) => json::parse_slice(&response.body)
                        .map(Item::Raw)
                        .map_err(|e| FetchError::Invalid(format!("followed document: {e}"))),
                    // A listed document that is gone is that record's problem, not the run's.
                    Err(FetchError::Status { status, url, .. }) if (400..500).contains(&status) => {
                        Ok(Item::Rejected {
                            reason: format!("source.follow: GET {url}: HTTP {status}"),
                            payload: record,
                            line: None,
                        })
                    }
                    Err(error) => Err(error),
                }
            }
        });
        futures_util::stream::iter(fetches)
            .buffered(*concurrency)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect()
    }

    pub fn batch(&self, raws: Vec<Json>) -> Batch {
        Batch {
            items: raws.into_iter().map(Item::Raw).collect(),
            renormalize: false,
        }
    }

    pub fn batch_items(&self, items: Vec<Item>) -> Batch {
        Batch {
            items,
            renormalize: false,
        }
    }

    /// A raw record's fields: mapped by the provider's `fields`, or, when it has none, the raw
    /// record whole.
    pub fn fields(&self, raw: &Json) -> Result<Map<String, Json>, String> {
        if self.provider.def.fields.is_empty() {
            return match raw {
                Json::Object(object) => Ok(object.clone()),
                other => Err(format!(
                    "expected an object to store whole, got {}",
                    crate::transform::transforms::shown(other)
                )),
            };
        }
        self.mapper.map(raw)
    }

    /// The value of the provider's `key` field (or, storing records whole, of the `key` path
    /// in the raw record), as text.
    pub fn key(&self, fields: &Map<String, Json>, raw: &Json) -> Option<String> {
        match &self.whole_key {
            Some(path) => path.find(raw).as_ref().and_then(text_of),
            None => text_of(fields.get(self.provider.def.key.as_deref()?)?),
        }
    }

    /// The records in a raw text document, one per pattern match; `None` when the payload is
    /// itself the one record.
    pub fn text_records(&self, raw: &Json) -> Option<Vec<Json>> {
        match (&self.text, raw) {
            (Some(parser), Json::String(text)) => Some(parser.records(text)),
            _ => None,
        }
    }
}

/// Names of the query parameters in an unexpanded URL whose values use `${VAR}`.
fn secret_url_params(url: &str) -> Vec<String> {
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(_, value)| value.contains("${"))
        .map(|(name, _)| name.to_string())
        .collect()
}

/// `${VAR}` expansion inside a JSON body's strings.
fn expand_json(
    value: &Json,
    expand: &dyn Fn(&str, &str) -> Result<String, ListingError>,
) -> Result<Json, ListingError> {
    Ok(match value {
        Json::String(s) => Json::String(expand("source.body", s)?),
        Json::Array(items) => Json::Array(
            items
                .iter()
                .map(|v| expand_json(v, expand))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(map) => Json::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), expand_json(v, expand)?)))
                .collect::<Result<_, ListingError>>()?,
        ),
        other => other.clone(),
    })
}
