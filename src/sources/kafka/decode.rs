//! A Kafka message into raw records: its value decoded by the provider's `format`, wrapped in
//! an envelope that gives field mapping the message's place and metadata:
//!
//! ```json
//! {"topic": "t", "partition": 0, "offset": 42, "timestamp": "2024-01-01T00:00:00.000Z",
//!  "key": "k", "headers": {"h": "v"}, "value": …}
//! ```
//!
//! A value that cannot be decoded becomes a rejection whose payload is the envelope with the
//! value as text, so the rejection names the message.

use apache_avro::Schema;
use apache_avro::reader::datum::GenericDatumReader;
use rdkafka::message::{Headers, Message};
use serde_json::{Map, Value as Json};

use crate::ingest::Item;
use crate::providers::definition::MessageFormat;

/// How the values of one provider's messages are read.
pub enum Decoder {
    Json,
    /// Rows with these column names, or, when `None`, under the message's first row.
    Csv(Option<Vec<String>>),
    /// The value is text that the provider's `[parse]` pattern reads.
    Text,
    Avro(Box<Schema>),
}

impl Decoder {
    /// The decoder for `format`; `schema` is the `.avsc` text for `avro`.
    pub fn new(
        format: MessageFormat,
        columns: Option<Vec<String>>,
        schema: Option<&str>,
    ) -> Result<Decoder, String> {
        Ok(match format {
            MessageFormat::Json => Decoder::Json,
            MessageFormat::Csv => Decoder::Csv(columns),
            MessageFormat::Text => Decoder::Text,
            MessageFormat::Avro => {
                let schema = schema.ok_or("source.schema: needed for format = \"avro\"")?;
                Decoder::Avro(Box::new(
                    Schema::parse_str(schema)
                        .map_err(|e| format!("source.schema: not an Avro schema ({e})"))?,
                ))
            }
        })
    }

    /// The message's raw records (or its rejection), appended to `items`.
    pub fn decode<M: Message>(&self, message: &M, items: &mut Vec<Item>) {
        let Some(payload) = message.payload() else {
            items.push(rejected(
                message,
                "value: the message has no value (a tombstone)",
            ));
            return;
        };
        let values = match self {
            Decoder::Json => crate::sources::json::parse_slice(payload)
                .map(|value| vec![value])
                .map_err(|e| format!("value: not JSON ({e})")),
            Decoder::Csv(columns) => csv_rows(payload, columns.as_deref()),
            Decoder::Text => std::str::from_utf8(payload)
                .map(|text| vec![Json::String(text.to_string())])
                .map_err(|e| format!("value: not UTF-8 text ({e})")),
            Decoder::Avro(schema) => avro(schema, payload).map(|value| vec![value]),
        };
        match values {
            Ok(values) => items.extend(
                values
                    .into_iter()
                    .map(|value| Item::Raw(envelope(message, value))),
            ),
            Err(reason) => items.push(rejected(message, &reason)),
        }
    }
}

/// The message's envelope around `value`.
pub fn envelope<M: Message>(message: &M, value: Json) -> Json {
    let timestamp = message
        .timestamp()
        .to_millis()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| Json::String(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
        .unwrap_or(Json::Null);
    let key = message
        .key()
        .map(|k| Json::String(String::from_utf8_lossy(k).into_owned()))
        .unwrap_or(Json::Null);
    let mut headers = Map::new();
    if let Some(list) = message.headers() {
        for header in list.iter() {
            let value = header
                .value
                .map(|v| Json::String(String::from_utf8_lossy(v).into_owned()))
                .unwrap_or(Json::Null);
            headers.insert(header.key.to_string(), value);
        }
    }
    // Built by hand: `json!` would copy `value` whole through serde.
    let mut envelope = Map::new();
    envelope.insert("topic".into(), Json::String(message.topic().to_string()));
    envelope.insert("partition".into(), Json::from(message.partition()));
    envelope.insert("offset".into(), Json::from(message.offset()));
    envelope.insert("timestamp".into(), timestamp);
    envelope.insert("key".into(), key);
    envelope.insert("headers".into(), Json::Object(headers));
    envelope.insert("value".into(), value);
    Json::Object(envelope)
}

fn rejected<M: Message>(message: &M, reason: &str) -> Item {
    let value = message
        .payload()
        .map(|p| Json::String(String::from_utf8_lossy(p).into_owned()))
        .unwrap_or(Json::Null);
    Item::Rejected {
        reason: reason.to_string(),
        payload: envelope(message, value),
        line: None,
    }
}

/// Each row of a CSV value as an object of its columns' texts.
fn csv_rows(payload: &[u8], columns: Option<&[String]>) -> Result<Vec<Json>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(columns.is_none())
        .flexible(false)
        .from_reader(payload);
    let header: Vec<String> = match columns {
        Some(columns) => columns.to_vec(),
        None => reader
            .headers()
            .map_err(|e| format!("value: CSV header: {e}"))?
            .iter()
            .map(str::to_string)
            .collect(),
    };
    let mut rows = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("value: CSV row {}: {e}", n + 1))?;
        if record.len() != header.len() {
            return Err(format!(
                "value: CSV row {} has {} columns, expected {}",
                n + 1,
                record.len(),
                header.len()
            ));
        }
        let row: Map<String, Json> = header
            .iter()
            .zip(record.iter())
            .map(|(name, text)| (name.clone(), Json::String(text.to_string())))
            .collect();
        rows.push(Json::Object(row));
    }
    Ok(rows)
}

/// A single Avro datum, or one in the Confluent wire format (magic byte 0, a 4-byte schema id,
/// then the datum). A datum must be read whole: bytes left over mean it was not this schema.
fn avro(schema: &Schema, payload: &[u8]) -> Result<Json, String> {
    let read = |mut bytes: &[u8]| -> Result<Json, String> {
        let value = GenericDatumReader::builder(schema)
            .build()
            .and_then(|reader| reader.read_value(&mut bytes))
            .map_err(|e| format!("value: not Avro of the provider's schema ({e})"))?;
        if !bytes.is_empty() {
            return Err(format!(
                "value: not Avro of the provider's schema ({} bytes left after the datum)",
                bytes.len()
            ));
        }
        Json::try_from(value).map_err(|e| format!("value: Avro value without a JSON form ({e})"))
    };
    match payload {
        [0, _, _, _, _, datum @ ..] => {
            read(datum).or_else(|confluent| read(payload).map_err(|_| confluent))
        }
        _ => read(payload),
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};
    use serde_json::json;

    use super::*;

    const PATIENT_SCHEMA: &str =
        include_str!("../../../../shared/data/patients/patient_avro_schema.avsc");

    fn message(value: Option<&[u8]>) -> OwnedMessage {
        OwnedMessage::new(
            value.map(<[u8]>::to_vec),
            Some(b"k1".to_vec()),
            "patients".into(),
            Timestamp::CreateTime(1_700_000_000_123),
            2,
            41,
            Some(OwnedHeaders::new().insert(Header {
                key: "source",
                value: Some("clinic"),
            })),
        )
    }

    fn decoded(decoder: &Decoder, value: Option<&[u8]>) -> Vec<Item> {
        let mut items = Vec::new();
        decoder.decode(&message(value), &mut items);
        items
    }

    fn patient_datum() -> Vec<u8> {
        let schema = Schema::parse_str(PATIENT_SCHEMA).unwrap();
        let mut record = apache_avro::types::Record::new(&schema).unwrap();
        record.put("id", "p-1");
        record.put("age", 54);
        record.put("institution", "north");
        record.put("activity", "walk");
        record.put("comment", "");
        record.put("extracted_ts", 1.5f64);
        apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .build()
            .unwrap()
            .write_value_to_vec(record)
            .unwrap()
    }

    #[test]
    fn json_values_are_wrapped_in_the_message_envelope() {
        let items = decoded(&Decoder::Json, Some(br#"{"a": 1}"#));
        let [Item::Raw(raw)] = items.as_slice() else {
            panic!("{items:?}")
        };
        assert_eq!(
            raw,
            &json!({"topic": "patients", "partition": 2, "offset": 41,
                "timestamp": "2023-11-14T22:13:20.123Z", "key": "k1",
                "headers": {"source": "clinic"}, "value": {"a": 1}})
        );
    }

    #[test]
    fn avro_is_read_bare_and_in_the_confluent_wire_format() {
        let schema = PATIENT_SCHEMA;
        let decoder = Decoder::new(MessageFormat::Avro, None, Some(schema)).unwrap();
        let bare = patient_datum();
        let mut confluent = vec![0, 0, 0, 0, 7];
        confluent.extend(&bare);
        for payload in [bare, confluent] {
            let items = decoded(&decoder, Some(&payload));
            let [Item::Raw(raw)] = items.as_slice() else {
                panic!("{items:?}")
            };
            assert_eq!(
                raw["value"],
                json!({"id": "p-1", "age": 54, "institution": "north", "activity": "walk",
                    "comment": "", "extracted_ts": 1.5})
            );
        }
    }

    #[test]
    fn undecodable_values_are_rejected_with_their_message() {
        let decoder = Decoder::new(MessageFormat::Avro, None, Some(PATIENT_SCHEMA)).unwrap();
        let cases = [
            (&Decoder::Json, Some(&b"{not json"[..]), "value: not JSON"),
            (
                &decoder,
                Some(&b"\x02"[..]),
                "value: not Avro of the provider's schema",
            ),
            (
                &Decoder::Text,
                Some(&b"\xff\xfe"[..]),
                "value: not UTF-8 text",
            ),
            (
                &Decoder::Json,
                None,
                "value: the message has no value (a tombstone)",
            ),
        ];
        for (decoder, value, reason) in cases {
            let items = decoded(decoder, value);
            let [
                Item::Rejected {
                    reason: got,
                    payload,
                    ..
                },
            ] = items.as_slice()
            else {
                panic!("{items:?}")
            };
            assert!(got.starts_with(reason), "{got}");
            assert_eq!(
                (payload["partition"].clone(), payload["offset"].clone()),
                (json!(2), json!(41))
            );
        }
    }

    #[test]
    fn csv_values_give_one_record_per_row() {
        let items = decoded(&Decoder::Csv(None), Some(b"a,b\n1,x\n2,y\n"));
        let values: Vec<Json> = items
            .iter()
            .map(|item| match item {
                Item::Raw(raw) => raw["value"].clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            values,
            vec![json!({"a": "1", "b": "x"}), json!({"a": "2", "b": "y"})]
        );
        let named = Decoder::Csv(Some(vec!["a".into(), "b".into()]));
        let items = decoded(&named, Some(b"1,x\n"));
        assert!(
            matches!(&items[..], [Item::Raw(raw)] if raw["value"] == json!({"a": "1", "b": "x"}))
        );
        let items = decoded(&named, Some(b"1,x,extra\n"));
        assert!(
            matches!(&items[..], [Item::Rejected { reason, .. }] if reason.contains("columns"))
        );
    }
}
