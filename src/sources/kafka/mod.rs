//! Where Kafka messages enter: a consumer in the provider's group that starts each partition
//! it is assigned at the offset stored in the database (not the one committed to Kafka), hands
//! out decoded messages in batches, and reports lag. What is stored, and when an offset
//! counts as stored, is `ingest::consume`'s business.

pub mod decode;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, RebalanceProtocol, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Message, Offset, TopicPartitionList};

use self::decode::Decoder;
use crate::ingest::Item;
use crate::kafka::{LastError, client_config, client_error, client_log};
use crate::providers::definition::{KafkaSource, StartAt};
use crate::store::kafka_offsets::Partition;

/// The consumer settings exactly-once rests on; the user may not set them.
pub const OWNED: &[&str] = &[
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
];

/// Settings Tributary picks unless the provider sets them: a small fetch queue keeps memory
/// bounded whatever the topic's size; once it is drained, fetching resumes within 10 ms
/// (librdkafka waits 1 s by default, which left a consumer reading a backlog idle for a third
/// of the time); statistics give the high watermarks for lag.
const DEFAULTS: &[(&str, &str)] = &[
    ("queued.max.messages.kbytes", "16384"),
    ("fetch.queue.backoff.ms", "10"),
    ("statistics.interval.ms", "2000"),
];

/// Where each partition is assigned from, shared with the rebalance callback, which must not
/// wait on the database: the stored offsets as last read (refreshed by the consumer loop and
/// advanced by every commit). An offset read before another replica stored a later one only
/// re-reads messages, which the commit's fence drops.
#[derive(Default)]
pub struct Positions {
    stored: Mutex<HashMap<Partition, i64>>,
    assigned: Mutex<Vec<Partition>>,
    high_watermarks: Mutex<HashMap<Partition, i64>>,
}

impl Positions {
    pub fn set_stored(&self, offsets: HashMap<Partition, i64>) {
        if let Ok(mut stored) = self.stored.lock() {
            for (partition, next) in offsets {
                let entry = stored.entry(partition).or_insert(next);
                *entry = (*entry).max(next);
            }
        }
    }

    /// The partitions this consumer has now.
    pub fn assigned(&self) -> Vec<Partition> {
        self.assigned.lock().map(|a| a.clone()).unwrap_or_default()
    }

    pub fn high_watermark(&self, partition: &Partition) -> Option<i64> {
        self.high_watermarks.lock().ok()?.get(partition).copied()
    }
}

pub struct Context {
    what: String,
    start: StartAt,
    pub positions: Arc<Positions>,
    pub last_error: Arc<LastError>,
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        client_log(&self.what, level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        client_error(&self.what, &self.last_error, &error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        if let Ok(mut marks) = self.positions.high_watermarks.lock() {
            for (name, topic) in statistics.topics {
                for (partition, stats) in topic.partitions {
                    if partition >= 0 && stats.hi_offset >= 0 {
                        marks.insert((name.clone(), partition), stats.hi_offset);
                    }
                }
            }
        }
    }
}

impl ConsumerContext for Context {
    /// Assigns each partition at its stored offset (or, never stored, at `start`); partitions
    /// taken away are forgotten.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let partitions: Vec<Partition> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        let outcome = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let stored = self.positions.stored.lock().map(|s| s.clone());
                let stored = stored.unwrap_or_default();
                for (topic, partition) in &partitions {
                    let offset = match (stored.get(&(topic.clone(), *partition)), self.start) {
                        (Some(next), _) => Offset::Offset(*next),
                        (None, StartAt::Earliest) => Offset::Beginning,
                        (None, StartAt::Latest) => Offset::End,
                    };
                    let _ = tpl.set_partition_offset(topic, *partition, offset);
                }
                if let Ok(mut assigned) = self.positions.assigned.lock() {
                    if !cooperative {
                        assigned.clear();
                    }
                    assigned.extend(partitions.iter().cloned());
                }
                tracing::info!(client = %self.what, partitions = ?partitions, "partitions assigned");
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                if let Ok(mut assigned) = self.positions.assigned.lock() {
                    assigned.retain(|p| !partitions.contains(p));
                }
                tracing::info!(client = %self.what, partitions = ?partitions, "partitions revoked");
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                let error = KafkaError::Rebalance(other.into());
                client_error(&self.what, &self.last_error, &error, "rebalance");
                if let Ok(mut assigned) = self.positions.assigned.lock() {
                    assigned.clear();
                }
                consumer.unassign()
            }
        };
        if let Err(error) = outcome {
            client_error(&self.what, &self.last_error, &error, "rebalance");
        }
    }
}

/// One delivered message, decoded.
pub struct Delivered {
    pub partition: Partition,
    pub offset: i64,
    pub items: Vec<Item>,
}

/// What one wait for messages brought.
pub struct Received {
    pub messages: Vec<Delivered>,
    /// More messages were ready when the batch was closed: the consumer is behind.
    pub more: bool,
}

/// The provider's consumer.
pub struct Consumer {
    consumer: StreamConsumer<Context>,
    decoder: Decoder,
    batch_size: usize,
    max_wait: Duration,
}

impl Consumer {
    /// Joins `group` and subscribes to the source's topics (`${VAR}`s already expanded).
    /// `schema` is the Avro schema's text, for `avro`.
    pub fn new(
        provider: &str,
        source: &KafkaSource,
        group: &str,
        schema: Option<&str>,
        positions: Arc<Positions>,
        last_error: Arc<LastError>,
    ) -> Result<Consumer, String> {
        let decoder = Decoder::new(source.format, source.columns.clone(), schema)?;
        let reset = match source.start {
            StartAt::Earliest => "earliest",
            StartAt::Latest => "latest",
        };
        let owned = [
            ("group.id", group),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", reset),
        ];
        let mut config = client_config(&source.brokers, &source.properties, &owned, "source")?;
        for (name, value) in DEFAULTS {
            if !source.properties.0.contains_key(*name) {
                config.set(*name, *value);
            }
        }
        let consumer: StreamConsumer<Context> = config
            .create_with_context(Context {
                what: provider.to_string(),
                start: source.start,
                positions,
                last_error,
            })
            .map_err(|e| format!("source: cannot create the Kafka consumer ({e})"))?;
        let topics: Vec<&str> = source.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| format!("source.topics: cannot subscribe ({e})"))?;
        Ok(Consumer {
            consumer,
            decoder,
            batch_size: source.batch_size,
            max_wait: Duration::from_millis(source.max_wait_ms),
        })
    }

    /// The next messages, at most `batch_size`, waiting at most `max_wait_ms` after the first
    /// for more; empty when none came within `idle`. Errors the client reports while it
    /// retries (a broker down) are logged and kept for status, not returned.
    pub async fn next_batch(&self, idle: Duration) -> Received {
        let mut received = Received {
            messages: Vec::new(),
            more: false,
        };
        let batch = &mut received.messages;
        let mut deadline = tokio::time::Instant::now() + idle;
        while batch.len() < self.batch_size {
            let next = match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Ok(next) => next,
                // Waited long enough: one more only if it is there already, which says that
                // the consumer has not caught up.
                Err(_) if !batch.is_empty() => match self.consumer.recv().now_or_never() {
                    Some(Ok(message)) => {
                        batch.push(self.delivered(&message));
                        received.more = true;
                        break;
                    }
                    _ => break,
                },
                Err(_) => break,
            };
            match next {
                Ok(message) => {
                    if batch.is_empty() {
                        deadline = tokio::time::Instant::now() + self.max_wait;
                    }
                    batch.push(self.delivered(&message));
                    // A full queue answers every `recv` at once: without a yield now and then,
                    // a task woken by this one (the batch writer) waits for the whole batch.
                    tokio::task::coop::consume_budget().await;
                }
                Err(error) => {
                    client_error(
                        &self.consumer.context().what,
                        &self.consumer.context().last_error,
                        &error,
                        "consume",
                    );
                    if batch.is_empty() {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    break;
                }
            }
        }
        if batch.len() >= self.batch_size {
            received.more = true;
        }
        received
    }

    fn delivered<M: Message>(&self, message: &M) -> Delivered {
        let mut items = Vec::new();
        self.decoder.decode(message, &mut items);
        Delivered {
            partition: (message.topic().to_string(), message.partition()),
            offset: message.offset(),
            items,
        }
    }

    /// Whether the broker holds messages of an assigned partition past what this consumer has
    /// received, by the partition ends the client last reported (`statistics.interval.ms`):
    /// asking the broker itself took seconds while the consumer fetched. A partition whose
    /// end or position is not known yet counts as caught up.
    pub fn behind(&self) -> bool {
        let (Ok(assignment), Ok(position)) = (self.consumer.assignment(), self.consumer.position())
        else {
            return false;
        };
        let positions = &self.consumer.context().positions;
        let stored = positions
            .stored
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        assignment.elements().iter().any(|element| {
            let partition = (element.topic().to_string(), element.partition());
            let Some(high) = positions.high_watermark(&partition) else {
                return false;
            };
            // Nothing received from it yet: it starts at its stored offset (never stored,
            // where it starts is not known here).
            let received = match position
                .find_partition(element.topic(), element.partition())
                .map(|p| p.offset())
            {
                Some(Offset::Offset(next)) => Some(next),
                _ => stored.get(&partition).copied(),
            };
            received.is_some_and(|next| next < high)
        })
    }

    /// Tells Kafka how far the group got (after the database commit; for lag tools only).
    pub fn commit(&self, next: &HashMap<Partition, i64>) {
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in next {
            let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset));
        }
        if let Err(error) = self.consumer.commit(&tpl, CommitMode::Async) {
            tracing::debug!(%error, "could not commit offsets to Kafka (lag tools only)");
        }
    }
}
