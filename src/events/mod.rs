//! Events pushed over HTTP: what a valid event is (the `POST /submit` contract), and where
//! accepted events go ([`sink`]): the group-commit writer that stores them before they are
//! acknowledged ([`writer`]), or a Kafka topic ([`kafka`]) that a provider lands in `events`.
//!
//! The body is the one the original `/submit` service took, so its clients work unchanged:
//! `ip_address` (IPv4), `user_agent`, `referring_url` (an absolute http(s) URL),
//! `advertiser_id` (all non-empty strings) and `metadata` (a JSON object). Unknown keys are
//! ignored, as they were.

pub mod kafka;
pub mod sink;
pub mod writer;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

/// A valid event, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Given when the event is accepted: time-ordered (UUIDv7), the Kafka message key with the
    /// Kafka sink, and unique in `events`, so a redelivered message is stored once.
    pub id: uuid::Uuid,
    /// Dotted-quad form.
    pub ip_address: String,
    pub user_agent: String,
    /// As sent (not normalized), once checked to be an absolute http(s) URL.
    pub referring_url: String,
    pub advertiser_id: String,
    /// A JSON object, as JSON text.
    pub metadata: String,
    pub received_at: DateTime<Utc>,
}

/// Why a body is not an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Not a JSON object at all.
    Json,
    /// Field name → what is wrong with it, for every invalid field.
    Fields(BTreeMap<&'static str, String>),
}

impl Invalid {
    /// The 400 body: `{"error": …}` as the original service answered, plus `fields` naming each
    /// invalid field.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Invalid::Json => serde_json::json!({ "error": "Invalid JSON" }),
            Invalid::Fields(fields) => {
                let names: Vec<&str> = fields.keys().copied().collect();
                serde_json::json!({
                    "error": format!("Invalid fields: {}", names.join(", ")),
                    "fields": fields,
                })
            }
        }
    }
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow)]
    ip_address: Option<&'a RawValue>,
    #[serde(borrow)]
    user_agent: Option<&'a RawValue>,
    #[serde(borrow)]
    referring_url: Option<&'a RawValue>,
    #[serde(borrow)]
    advertiser_id: Option<&'a RawValue>,
    #[serde(borrow)]
    metadata: Option<&'a RawValue>,
}

/// Reads one JSON body as an event received at `received_at`.
pub fn parse(body: &[u8], received_at: DateTime<Utc>) -> Result<NewEvent, Invalid> {
    let body: Body = serde_json::from_slice(body).map_err(|_| Invalid::Json)?;
    let mut problems = BTreeMap::new();
    let mut text = |name: &'static str, raw: Option<&RawValue>| match string(raw) {
        Ok(value) => Some(value),
        Err(problem) => {
            problems.insert(name, problem);
            None
        }
    };
    let ip_address = text("ip_address", body.ip_address);
    let user_agent = text("user_agent", body.user_agent);
    let referring_url = text("referring_url", body.referring_url);
    let advertiser_id = text("advertiser_id", body.advertiser_id);
    let metadata = match object(body.metadata) {
        Ok(metadata) => Some(metadata),
        Err(problem) => {
            problems.insert("metadata", problem);
            None
        }
    };
    let fields = Fields {
        ip_address,
        user_agent,
        referring_url,
        advertiser_id,
        metadata,
    };
    fields.check(problems, uuid::Uuid::now_v7(), received_at)
}

/// The five fields as strings (metadata as JSON text), before their own checks; `None` where a
/// problem is already recorded.
pub struct Fields {
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub referring_url: Option<String>,
    pub advertiser_id: Option<String>,
    pub metadata: Option<String>,
}

impl Fields {
    /// Checks each field's form, adding to `problems`; an event with id `id` only when there
    /// are none.
    pub fn check(
        self,
        mut problems: BTreeMap<&'static str, String>,
        id: uuid::Uuid,
        received_at: DateTime<Utc>,
    ) -> Result<NewEvent, Invalid> {
        let metadata = self.metadata.and_then(|m| {
            if crate::store::nul::in_json_text(&m) {
                problems.insert("metadata", NUL.to_string());
                None
            } else {
                Some(m)
            }
        });
        let mut required = |name: &'static str, value: Option<String>| match value {
            Some(v) if v.is_empty() => {
                problems.insert(name, "must not be empty".to_string());
                None
            }
            Some(v) if !crate::store::nul::storable(&v) => {
                problems.insert(name, NUL.to_string());
                None
            }
            other => other,
        };
        let ip_address = required("ip_address", self.ip_address);
        let user_agent = required("user_agent", self.user_agent);
        let referring_url = required("referring_url", self.referring_url);
        let advertiser_id = required("advertiser_id", self.advertiser_id);
        let ip_address = ip_address.and_then(|ip| match ip.parse::<Ipv4Addr>() {
            Ok(address) => Some(address.to_string()),
            Err(_) => {
                problems.insert(
                    "ip_address",
                    format!("must be an IPv4 address such as 192.168.1.1, got {ip:?}"),
                );
                None
            }
        });
        let referring_url = referring_url.and_then(|url| {
            if is_web_url(&url) {
                Some(url)
            } else {
                problems.insert(
                    "referring_url",
                    format!("must be an absolute http or https URL, got {url:?}"),
                );
                None
            }
        });
        match (
            ip_address,
            user_agent,
            referring_url,
            advertiser_id,
            metadata,
        ) {
            (
                Some(ip_address),
                Some(user_agent),
                Some(referring_url),
                Some(advertiser_id),
                Some(metadata),
            ) if problems.is_empty() => Ok(NewEvent {
                id,
                ip_address,
                user_agent,
                referring_url,
                advertiser_id,
                metadata,
                received_at,
            }),
            _ => Err(Invalid::Fields(problems)),
        }
    }
}

/// PostgreSQL stores no NUL character in `text` nor `jsonb`: one such event would fail the
/// whole group-commit batch it shares with other clients' events.
const NUL: &str = "must not contain a NUL character (\\u0000)";

fn is_web_url(text: &str) -> bool {
    url::Url::parse(text)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

fn string(raw: Option<&RawValue>) -> Result<String, String> {
    let Some(raw) = raw else {
        return Err("required".to_string());
    };
    let json = raw.get();
    match json.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(json).map_err(|_| "must be a string".into()),
        Some(b'n') => Err("required".to_string()),
        _ => Err(format!("must be a string, got {json}")),
    }
}

fn object(raw: Option<&RawValue>) -> Result<String, String> {
    let Some(raw) = raw else {
        return Err("required".to_string());
    };
    let json = raw.get();
    match json.as_bytes().first() {
        Some(b'{') => Ok(json.to_string()),
        Some(b'n') => Err("required".to_string()),
        _ => Err(format!("must be a JSON object, got {json}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-21T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn the_readme_example_is_an_event() {
        let body = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/submit/readme_example_request.json"
        ))
        .expect("example body");
        let event = parse(&body, at()).expect("valid");
        assert_eq!(event.id.get_version_num(), 7);
        assert_eq!(
            event,
            NewEvent {
                id: event.id,
                ip_address: "192.168.1.1".into(),
                user_agent: "Mozilla/5.0".into(),
                referring_url: "https://example.com".into(),
                advertiser_id: "12345".into(),
                metadata: "{\n    \"key\": \"value\"\n  }".into(),
                received_at: at(),
            }
        );
    }

    #[test]
    fn every_invalid_field_is_named() {
        let body = json!({
            "ip_address": "256.1.1.1",
            "user_agent": "",
            "referring_url": "example.com/page",
            "advertiser_id": 12345,
            "metadata": ["a"],
        });
        let Err(Invalid::Fields(fields)) = parse(body.to_string().as_bytes(), at()) else {
            panic!("expected field problems");
        };
        assert_eq!(
            fields,
            BTreeMap::from([
                ("advertiser_id", "must be a string, got 12345".to_string()),
                (
                    "ip_address",
                    "must be an IPv4 address such as 192.168.1.1, got \"256.1.1.1\"".to_string()
                ),
                ("metadata", "must be a JSON object, got [\"a\"]".to_string()),
                (
                    "referring_url",
                    "must be an absolute http or https URL, got \"example.com/page\"".to_string()
                ),
                ("user_agent", "must not be empty".to_string()),
            ])
        );
    }

    #[test]
    fn missing_fields_and_bad_json() {
        let Err(Invalid::Fields(fields)) = parse(b"{\"metadata\": null}", at()) else {
            panic!("expected field problems");
        };
        assert_eq!(
            fields.keys().copied().collect::<Vec<_>>(),
            [
                "advertiser_id",
                "ip_address",
                "metadata",
                "referring_url",
                "user_agent"
            ]
        );
        assert!(fields.values().all(|v| v == "required"));
        assert_eq!(parse(b"{invalid json}", at()), Err(Invalid::Json));
        assert_eq!(parse(b"[1]", at()), Err(Invalid::Json));
        assert_eq!(Invalid::Json.to_json(), json!({"error": "Invalid JSON"}));
        // Other schemes are not web pages.
        let body = json!({
            "ip_address": "10.0.0.1", "user_agent": "u", "referring_url": "ftp://example.com/",
            "advertiser_id": "a", "metadata": {}
        });
        assert!(parse(body.to_string().as_bytes(), at()).is_err());
    }

    #[test]
    fn a_nul_character_is_refused_where_it_is() {
        let body = br#"{"ip_address": "10.0.0.1", "user_agent": "a\u0000b", "referring_url": "https://example.com/",
            "advertiser_id": "a", "metadata": {"k": ["x", {"deep": "\u0000"}]}}"#;
        let Err(Invalid::Fields(fields)) = parse(body, at()) else {
            panic!("expected field problems");
        };
        assert_eq!(
            fields.into_iter().collect::<Vec<_>>(),
            [
                ("metadata", NUL.to_string()),
                ("user_agent", NUL.to_string())
            ]
        );
        // An escaped backslash before "u0000" is text, not a NUL.
        let body = br#"{"ip_address": "10.0.0.1", "user_agent": "a\\u0000", "referring_url": "https://example.com/",
            "advertiser_id": "a", "metadata": {"k": "\\u0000"}}"#;
        let event = parse(body, at()).expect("an event");
        assert_eq!(event.user_agent, "a\\u0000");
    }
}
