//! The Kafka sink: each accepted event is produced to `events.kafka.topic` by the idempotent
//! producer (`acks=all`), keyed by its id, and the request is answered only once the broker
//! has acknowledged every event of it. A broker that is unreachable or slower than
//! `ack_timeout_ms` gets the client a 503 with `Retry-After`, never a 204; the producer's
//! queue is bounded (`events.queue_capacity`), so a slow broker never grows memory.
//! PostgreSQL plays no part here: with it down, events keep being accepted, and the provider
//! that lands the topic stores them once it is back.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use serde::Serialize;
use serde_json::value::RawValue;

use super::NewEvent;
use super::sink::SubmitError;
use crate::kafka::{LastError, ProducerContext, client_config};
use crate::settings::EventSettings;

/// The producer settings an acknowledged event's durability rests on: users may not set them.
pub const OWNED: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("message.timeout.ms", ""),
    ("queue.buffering.max.messages", ""),
];

/// Settings Tributary picks unless `events.kafka.properties` sets them. Every request waits for
/// its event's acknowledgement, so the time a message lingers for a batch is added to every
/// answer: librdkafka's 5 ms default held 128 connections to 19,600 req/s here, 1 ms to
/// 25,400 (messages still batch while a request is in flight).
const DEFAULTS: &[(&str, &str)] = &[("linger.ms", "1")];

#[derive(Clone)]
pub struct KafkaSink {
    inner: Arc<Inner>,
}

struct Inner {
    producer: FutureProducer<ProducerContext>,
    topic: String,
    capacity: usize,
    retry_after_secs: u64,
}

/// An event as a message value: the `events` row's fields, `metadata` as the object it is.
#[derive(Serialize)]
struct Message<'a> {
    id: String,
    ip_address: &'a str,
    user_agent: &'a str,
    referring_url: &'a str,
    advertiser_id: &'a str,
    metadata: &'a RawValue,
    received_at: String,
}

impl KafkaSink {
    /// A producer for `settings.kafka`; nothing is sent until the first event.
    pub fn new(settings: &EventSettings) -> Result<KafkaSink, String> {
        let kafka = &settings.kafka;
        let timeout = kafka.ack_timeout_ms.to_string();
        let capacity = settings.queue_capacity.to_string();
        let owned: Vec<(&str, &str)> = OWNED
            .iter()
            .map(|(key, value)| match *key {
                "message.timeout.ms" => (*key, timeout.as_str()),
                "queue.buffering.max.messages" => (*key, capacity.as_str()),
                _ => (*key, *value),
            })
            .collect();
        let mut config = client_config(&kafka.brokers, &kafka.properties, &owned, "events.kafka")?;
        for (name, value) in DEFAULTS {
            if !kafka.properties.0.contains_key(*name) {
                config.set(*name, *value);
            }
        }
        let producer = config
            .create_with_context(ProducerContext {
                what: "events.kafka".into(),
                last_error: Arc::new(LastError::default()),
            })
            .map_err(|e| format!("events.kafka: {e}"))?;
        Ok(KafkaSink {
            inner: Arc::new(Inner {
                producer,
                topic: kafka.topic.clone(),
                capacity: settings.queue_capacity,
                retry_after_secs: settings.retry_after_secs,
            }),
        })
    }

    pub fn retry_after_secs(&self) -> u64 {
        self.inner.retry_after_secs
    }

    /// Produces every event and waits for the broker's acknowledgements.
    pub async fn submit(&self, events: Vec<NewEvent>) -> Result<(), SubmitError> {
        let inner = &self.inner;
        if events.len() > inner.capacity {
            return Err(SubmitError::TooMany(inner.capacity));
        }
        let mut deliveries = Vec::with_capacity(events.len());
        for event in &events {
            let key = event.id.to_string();
            let payload = value(event).map_err(|error| {
                tracing::error!(%error, "an accepted event could not be encoded");
                SubmitError::Failed
            })?;
            let record = FutureRecord::to(&inner.topic).key(&key).payload(&payload);
            match inner.producer.send_result(record) {
                Ok(delivery) => deliveries.push(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    metrics::counter!("events_refused_total", "reason" => "busy").increment(1);
                    return Err(SubmitError::Busy);
                }
                Err((error, _)) => {
                    tracing::warn!(%error, "an event could not be produced");
                    metrics::counter!("events_refused_total", "reason" => "broker").increment(1);
                    return Err(SubmitError::BrokerUnavailable);
                }
            }
        }
        // Every delivery ends within `message.timeout.ms`: acknowledged, or failed.
        for outcome in join_all(deliveries).await {
            match outcome {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => {
                    tracing::warn!(%error, "the broker did not acknowledge an event");
                    metrics::counter!("events_refused_total", "reason" => "broker").increment(1);
                    return Err(SubmitError::BrokerUnavailable);
                }
                Err(_) => return Err(SubmitError::ShuttingDown),
            }
        }
        Ok(())
    }

    /// Waits up to `timeout` for events still in the producer's queue (at shutdown).
    pub fn flush(&self, timeout: Duration) {
        if let Err(error) = self.inner.producer.flush(timeout) {
            tracing::warn!(%error, "events still unacknowledged by the broker at shutdown");
        }
    }
}

/// The message value of `event`.
pub fn value(event: &NewEvent) -> Result<Vec<u8>, serde_json::Error> {
    let metadata: &RawValue = serde_json::from_str(&event.metadata)?;
    serde_json::to_vec(&Message {
        id: event.id.to_string(),
        ip_address: &event.ip_address,
        user_agent: &event.user_agent,
        referring_url: &event.referring_url,
        advertiser_id: &event.advertiser_id,
        metadata,
        received_at: event
            .received_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    })
}
