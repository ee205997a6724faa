//! Events, keyed by the id they were given when accepted. The same checks as `POST /submit`
//! (one home: [`crate::events::Fields::check`]); what lands them here is a provider — the
//! Kafka sink's topic, consumed by a `kafka` provider with `entity = "event"`. An event whose
//! id is already stored is unchanged: a message delivered twice is one row.

use std::borrow::Cow;
use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, DbErr};
use serde_json::Value as Json;

use super::fields::{self, Field, Fields};
use super::{Entity, Target};
use crate::events::{self, Invalid, NewEvent};
use crate::store::upsert::UpsertCounts;

pub const ID: Field = Field::required("id", 0, "the event's id, a UUID");
pub const IP_ADDRESS: Field = Field::required("ip_address", 1, "IPv4, dotted quad");
pub const USER_AGENT: Field = Field::required("user_agent", 2, "the client's user agent");
pub const REFERRING_URL: Field = Field::required("referring_url", 3, "an absolute http(s) URL");
pub const ADVERTISER_ID: Field = Field::required("advertiser_id", 4, "the advertiser");
pub const METADATA: Field = Field::required("metadata", 5, "a JSON object");
pub const RECEIVED_AT: Field =
    Field::required("received_at", 6, "when the server accepted the event");

pub struct Event;

impl Entity for Event {
    const NAME: &'static str = "event";
    const FIELDS: &'static [Field] = &[
        ID,
        IP_ADDRESS,
        USER_AGENT,
        REFERRING_URL,
        ADVERTISER_ID,
        METADATA,
        RECEIVED_AT,
    ];
    const ID_FIELD: Option<Field> = Some(ID);

    type Record = NewEvent;

    fn from_fields(f: &impl Fields, _key: Option<String>) -> Result<NewEvent, String> {
        let id = f.required(&ID, |value| {
            uuid::Uuid::parse_str(value.as_str().trim())
                .map_err(|_| format!("expected a UUID, got {:?}", value.as_str()))
        })?;
        let received_at = f.required(&RECEIVED_AT, fields::timestamp)?;
        let text = |field: &Field| f.optional(field, fields::name);
        let metadata = match f.object()?.get(METADATA.name) {
            Some(object @ Json::Object(_)) => Some(object.to_string()),
            _ => None,
        };
        let mut problems = BTreeMap::new();
        if metadata.is_none() {
            problems.insert(METADATA.name, "must be a JSON object".to_string());
        }
        let checked = events::Fields {
            ip_address: text(&IP_ADDRESS)?,
            user_agent: text(&USER_AGENT)?,
            referring_url: text(&REFERRING_URL)?,
            advertiser_id: text(&ADVERTISER_ID)?,
            metadata,
        }
        .check(problems, id, received_at);
        checked.map_err(|invalid| match invalid {
            Invalid::Json => "not an event".to_string(),
            Invalid::Fields(problems) => problems
                .iter()
                .map(|(name, problem)| format!("{name}: {problem}"))
                .collect::<Vec<_>>()
                .join("; "),
        })
    }

    fn key(record: &NewEvent) -> Cow<'_, str> {
        Cow::Owned(record.id.to_string())
    }

    async fn write<C: ConnectionTrait>(
        db: &C,
        _target: &Target<'_>,
        records: Vec<NewEvent>,
    ) -> Result<UpsertCounts, DbErr> {
        let rows: Vec<&NewEvent> = records.iter().collect();
        let inserted = crate::store::events::insert(db, &rows).await?;
        Ok(UpsertCounts {
            inserted,
            unchanged: records.len() as u64 - inserted.min(records.len() as u64),
            ..UpsertCounts::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::fields::mapped;
    use serde_json::json;

    fn event() -> Json {
        json!({
            "id": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            "ip_address": "192.168.1.1",
            "user_agent": "Mozilla/5.0",
            "referring_url": "https://example.com",
            "advertiser_id": "12345",
            "metadata": {"key": "value"},
            "received_at": "2026-12-03T10:00:00.123456Z",
        })
    }

    #[test]
    fn an_event_from_mapped_fields() {
        let record = Event::from_fields(&mapped(event()), None).expect("an event");
        assert_eq!(
            record.id.to_string(),
            "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
        );
        assert_eq!(record.metadata, r#"{"key":"value"}"#);
        assert_eq!(
            record
                .received_at
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "2026-12-03T10:00:00.123456Z"
        );
        assert_eq!(Event::key(&record), "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
    }

    #[test]
    fn the_submit_checks_apply_and_name_every_field() {
        let mut bad = mapped(event());
        bad.insert("ip_address".into(), json!("256.0.0.1"));
        bad.insert("metadata".into(), json!(["not", "an", "object"]));
        assert_eq!(
            Event::from_fields(&bad, None).expect_err("refused"),
            "ip_address: must be an IPv4 address such as 192.168.1.1, got \"256.0.0.1\"; \
             metadata: must be a JSON object"
        );
        let mut bad = mapped(event());
        bad.insert("id".into(), json!("42"));
        assert_eq!(
            Event::from_fields(&bad, None).expect_err("refused"),
            "id: expected a UUID, got \"42\""
        );
    }
}
