//! Events over GraphQL: the list, and `submitEvent`, the mutation twin of `POST /submit`.
//!
//! `submitEvent` is a mutation, so like every mutation it needs the admin token (off
//! loopback); `POST /submit` is the one open way in, for event producers.

use std::collections::BTreeMap;

use async_graphql::{Context, ID, InputObject, Json, Object, ScalarType, Value};
use entity::event;

use super::connection::{Page, PageArgs, list};
use super::control::require_admin;
use super::db::db;
use super::error::{ApiError, ApiResult};
use super::filters::{DateTimeFilterInput, StringFilterInput, optional};
use super::row::{Columns, Row};
use super::scalars::DateTime;
use crate::events::sink::{Sink, SubmitError};
use crate::events::{Fields, Invalid};
use crate::store::events::{self, EventFilter};

/// One event received over HTTP.
pub struct Event(pub event::Model);

impl Columns for Event {
    fn column(&self, name: &str) -> Option<Value> {
        let e = &self.0;
        Some(match name {
            "id" => ID(e.event_id.clone()).to_value(),
            "ipAddress" => Value::from(e.ip_address.as_str()),
            "userAgent" => Value::from(e.user_agent.as_str()),
            "referringUrl" => Value::from(e.referring_url.as_str()),
            "advertiserId" => Value::from(e.advertiser_id.as_str()),
            "metadata" => Value::from_json(e.metadata.clone()).ok()?,
            "receivedAt" => DateTime::from(e.received_at).to_value(),
            _ => return None,
        })
    }
}

#[Object]
impl Event {
    /// Given when the event was accepted (a UUIDv7, time-ordered); `/submit/batch` answers
    /// with it.
    async fn id(&self) -> ID {
        ID(self.0.event_id.clone())
    }
    /// IPv4, dotted quad.
    async fn ip_address(&self) -> &str {
        &self.0.ip_address
    }
    async fn user_agent(&self) -> &str {
        &self.0.user_agent
    }
    async fn referring_url(&self) -> &str {
        &self.0.referring_url
    }
    async fn advertiser_id(&self) -> &str {
        &self.0.advertiser_id
    }
    /// A JSON object.
    async fn metadata(&self) -> Json<&serde_json::Value> {
        Json(&self.0.metadata)
    }
    /// When the server received it.
    async fn received_at(&self) -> DateTime {
        self.0.received_at.into()
    }
}

#[derive(InputObject, Debug, Clone, Default)]
pub struct EventWhere {
    pub advertiser_id: Option<StringFilterInput>,
    pub ip_address: Option<StringFilterInput>,
    pub received_at: Option<DateTimeFilterInput>,
}

/// The fields of `POST /submit`'s body.
#[derive(InputObject, Debug, Clone)]
pub struct EventInput {
    /// IPv4, e.g. `192.168.1.1`.
    pub ip_address: String,
    pub user_agent: String,
    /// An absolute http(s) URL.
    pub referring_url: String,
    pub advertiser_id: String,
    /// A JSON object.
    pub metadata: Json<serde_json::Value>,
}

#[derive(Default)]
pub struct EventQuery;

#[Object]
impl EventQuery {
    /// Events matching `where`, newest first.
    #[graphql(complexity = "PageArgs::size(first, last) * child_complexity")]
    #[allow(clippy::too_many_arguments)]
    async fn events(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "where")] filter: Option<EventWhere>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<Page<Row<Event>>> {
        let db = db(ctx);
        let w = filter.unwrap_or_default();
        let filter = EventFilter {
            advertiser_id: optional(
                w.advertiser_id,
                "where.advertiserId",
                StringFilterInput::into_store,
            )?,
            ip_address: optional(
                w.ip_address,
                "where.ipAddress",
                StringFilterInput::into_store,
            )?,
            received_at: optional(
                w.received_at,
                "where.receivedAt",
                DateTimeFilterInput::into_store,
            )?,
        };
        let order = events::newest_first();
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        list(
            args,
            &order,
            async |request| events::list(db, &filter, request).await,
            events::cursor_values,
            |e| Row(Event(e)),
        )
        .await
    }
}

#[derive(Default)]
pub struct EventMutation;

#[Object]
impl EventMutation {
    /// Stores one event, answering once it is committed (the same checks and the same
    /// group-commit writer as `POST /submit`).
    async fn submit_event(&self, ctx: &Context<'_>, input: EventInput) -> ApiResult<Event> {
        require_admin(ctx)?;
        let writer = ctx
            .data::<Sink>()
            .map_err(|_| ApiError::Internal("schema built without an event writer".into()))?;
        let received_at = chrono::Utc::now();
        let metadata = match &input.metadata.0 {
            serde_json::Value::Object(_) => Some(input.metadata.0.to_string()),
            _ => None,
        };
        let mut problems = BTreeMap::new();
        if metadata.is_none() {
            problems.insert("metadata", "must be a JSON object".to_string());
        }
        let fields = Fields {
            ip_address: Some(input.ip_address),
            user_agent: Some(input.user_agent),
            referring_url: Some(input.referring_url),
            advertiser_id: Some(input.advertiser_id),
            metadata,
        };
        let event = fields
            .check(problems, uuid::Uuid::now_v7(), received_at)
            .map_err(|invalid| match invalid {
                Invalid::Json => ApiError::bad_input("invalid input"),
                Invalid::Fields(fields) => ApiError::bad_input(
                    fields
                        .iter()
                        .map(|(name, problem)| format!("input.{}: {problem}", camel(name)))
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            })?;
        writer
            .submit(vec![event.clone()])
            .await
            .map_err(|error| match error {
                SubmitError::Busy | SubmitError::ShuttingDown => {
                    ApiError::Forbidden(format!("{error}"))
                }
                SubmitError::Unavailable | SubmitError::BrokerUnavailable => ApiError::Unavailable,
                other => ApiError::Internal(other.to_string()),
            })?;
        let metadata = serde_json::from_str(&event.metadata)
            .map_err(|e| ApiError::Internal(format!("metadata: {e}")))?;
        Ok(Event(event::Model {
            // Not read back: the event is identified by its `event_id`.
            id: 0,
            event_id: event.id.to_string(),
            ip_address: event.ip_address,
            user_agent: event.user_agent,
            referring_url: event.referring_url,
            advertiser_id: event.advertiser_id,
            metadata,
            received_at: event.received_at,
        }))
    }
}

/// `ip_address` → `ipAddress`: errors name the GraphQL field.
fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}
