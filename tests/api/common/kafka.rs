//! Kafka for tests: librdkafka's mock cluster (real brokers speaking the Kafka protocol on
//! loopback, inside the test process, reachable by child processes too), a producer, and the
//! consumer settings that keep group joins fast.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord};

/// A mock cluster of three brokers.
pub struct MockKafka {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl MockKafka {
    pub fn start() -> MockKafka {
        MockKafka {
            cluster: MockCluster::new(3).expect("a mock Kafka cluster"),
        }
    }

    pub fn brokers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    pub fn create_topic(&self, topic: &str, partitions: i32) {
        self.cluster
            .create_topic(topic, partitions, 1)
            .unwrap_or_else(|e| panic!("create topic {topic}: {e}"));
    }
}

/// Consumer settings for a provider file: a dead member leaves the group within six seconds
/// (the mock cluster delays a first join by three: a shorter session expires while joining),
/// so partitions move soon after a kill.
pub const FAST_GROUP: &str =
    "[source.properties]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n";

/// A producer for `brokers`.
pub fn producer(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("a producer")
}

/// Produces every `(partition, key, value)` to `topic` and waits for every acknowledgement.
pub async fn produce(brokers: &str, topic: &str, messages: &[(i32, String, Vec<u8>)]) {
    let producer = producer(brokers);
    for chunk in messages.chunks(1_000) {
        let sends = chunk.iter().map(|(partition, key, value)| {
            producer.send(
                FutureRecord::to(topic)
                    .partition(*partition)
                    .key(key)
                    .payload(value),
                Duration::from_secs(30),
            )
        });
        for result in futures_util::future::join_all(sends).await {
            result.unwrap_or_else(|(e, _)| panic!("produce to {topic}: {e}"));
        }
    }
}
