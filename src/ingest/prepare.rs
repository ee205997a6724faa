//! A provider made ready to run: a copy with `${VAR}` expanded (so secrets live only as long
//! as the run), mappings compiled, and the steps that turn fetched bodies into raw records.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Map, Value as Json};
use serde_json_path::JsonPath;

use super::write::{Batch, Item, text_of};
use crate::hosts::HostRules;
use crate::providers::Provider;
use crate::providers::definition::{HttpMethod, Parse, Source};
use crate::providers::env::{expand_provider, process_env, secret_query_params};
use crate::sources::filter::RecordFilter;
use crate::sources::http::{Client, FetchError, Request};
use crate::sources::incremental::{Kind, Mark};
use crate::sources::json;
use crate::sources::listing::{BodyFormat, Listing, ListingError, Position, Since, parse_path};
use crate::sources::outbound::Outbound;
use crate::store::rejected::MessageAt;
use crate::transform::path::FieldPath;
use crate::transform::{Mapper, TextParser};

pub struct Prepared {
    /// The provider with `${VAR}` expanded: holds secrets, never logged.
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
    /// Query parameters whose values came from the environment, shown as `***`.
    secret_params: Vec<String>,
    /// Raw records are Kafka message envelopes.
    kafka: bool,
    /// `skip` and `keep`: applied by an HTTP listing before `follow`, by every other kind
    /// when its records are mapped.
    pub filter: RecordFilter,
    /// Incremental sync: where each record's cursor is, and its kind.
    pub cursor: Option<(FieldPath, Kind)>,
}

impl Prepared {
    /// `${VAR}`s come from the process environment.
    pub fn new(
        provider: &Provider,
        host_rules: &HostRules,
        outbound: &Outbound,
    ) -> Result<Prepared, String> {
        Prepared::with_env(provider, host_rules, outbound, &process_env)
    }

    /// `${VAR}`s come from `env`.
    pub fn with_env(
        provider: &Provider,
        host_rules: &HostRules,
        outbound: &Outbound,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Prepared, String> {
        let secret_params = match &provider.def.source {
            Source::Http(http) => secret_query_params(http),
            _ => Vec::new(),
        };
        let provider = expand_provider(provider, env).map_err(|e| e.to_string())?;
        let def = &provider.def;
        let kafka = matches!(def.source, Source::Kafka(_));
        let mapper =
            Mapper::new(&def.fields).map_err(|e| format!("{}: {e}", provider.path.display()))?;
        let text = match &def.parse {
            Parse::Text { pattern } => Some(TextParser::new(pattern)?),
            _ => None,
        };
        let follow = match &def.source {
            Source::Http(http) => match &http.follow {
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
        let filter = RecordFilter::of(&provider)?;
        let cursor = match &def.source {
            Source::Http(http) => match &http.incremental {
                Some(inc) => Some((
                    FieldPath::parse(&inc.cursor).map_err(|e| {
                        format!(
                            "source.incremental.cursor: bad JSONPath `{}`: {e}",
                            inc.cursor
                        )
                    })?,
                    Mark::of_config(&inc.initial).kind(),
                )),
                None => None,
            },
            _ => None,
        };
        Ok(Prepared {
            filter,
            cursor,
            provider,
            host_rules: host_rules.clone(),
            mapper,
            text,
            outbound: outbound.clone(),
            follow,
            whole_key,
            secret_params,
            kafka,
        })
    }

    /// The listing of the provider's HTTP source, from `start` (the checkpoint) or the top;
    /// `since` where an incremental one starts.
    pub fn listing(
        &self,
        start: Option<Position>,
        since: Option<Since>,
    ) -> Result<Listing, ListingError> {
        let Source::Http(source) = &self.provider.def.source else {
            return Err(ListingError::Invalid(
                "source: not an http source".to_string(),
            ));
        };
        let url = url::Url::parse(&source.url)
            .map_err(|e| ListingError::Invalid(format!("source.url: not a URL ({e})")))?;
        let client = Client::new(
            &self.provider.name,
            Duration::from_secs(source.timeout_secs),
            source.rate_limit,
            source.retry.clone(),
            self.secret_params.clone(),
            &self.outbound,
        )?
        .with_auth(source.auth.as_ref())?;
        let base = Request {
            method: source.method,
            url,
            headers: source.headers.clone(),
            body: source.body.clone(),
        };
        let format = match (&source.follow, &self.provider.def.parse) {
            (None, Parse::Text { .. }) => BodyFormat::Text,
            (None, Parse::Csv(_)) => BodyFormat::Csv,
            _ => BodyFormat::Json,
        };
        Listing::new(
            client,
            source,
            base,
            source.query.clone(),
            format,
            start,
            self.filter.clone(),
            since,
        )
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
                    method: HttpMethod::Get,
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
    /// itself the one record. A Kafka message's text is its envelope's `value`.
    pub fn text_records(&self, raw: &Json) -> Option<Vec<Json>> {
        let text = match raw {
            Json::String(text) => text,
            Json::Object(message) if self.kafka => message.get("value")?.as_str()?,
            _ => return None,
        };
        Some(self.text.as_ref()?.records(text))
    }

    /// Whether `record` (as its source listed it) passes `skip` and `keep` here: HTTP
    /// listings have applied them already.
    pub fn passes_filter(&self, record: &Json) -> bool {
        matches!(self.provider.def.source, Source::Http(_)) || self.filter.passes(record)
    }

    /// The record's incremental cursor value, when the provider has one.
    pub fn cursor_of(&self, record: &Json) -> Option<Result<Mark, String>> {
        let (path, kind) = self.cursor.as_ref()?;
        let value = path.find(record).unwrap_or(Json::Null);
        Some(Mark::of_record(*kind, &value).map_err(|e| format!("source.incremental.cursor: {e}")))
    }

    /// The message a raw record of a Kafka source came from, read off its envelope.
    pub fn message_at(&self, raw: &Json) -> Option<MessageAt> {
        if !self.kafka {
            return None;
        }
        Some(MessageAt {
            topic: raw.get("topic")?.as_str()?.to_string(),
            partition: i32::try_from(raw.get("partition")?.as_i64()?).ok()?,
            offset: raw.get("offset")?.as_i64()?,
        })
    }
}
