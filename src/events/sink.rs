//! Where accepted events go (`events.sink`): `/submit`, `/submit/batch` and `submitEvent` hand
//! their valid events here and answer once the sink says they are durable.

use super::NewEvent;
use super::kafka::KafkaSink;
use super::writer::EventWriter;

/// Why events were not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("the event queue is full; retry shortly")]
    Busy,
    #[error("more events in one request than the queue holds ({0})")]
    TooMany(usize),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("the events could not be stored")]
    Failed,
    #[error("the database is unavailable; retry shortly")]
    Unavailable,
    #[error("the event broker did not acknowledge in time; retry shortly")]
    BrokerUnavailable,
}

/// The configured sink; cheap to clone.
#[derive(Clone)]
pub enum Sink {
    /// Stored in `events` by the group-commit writer before the answer.
    Database(EventWriter),
    /// Produced to a Kafka topic; acknowledged by the broker before the answer.
    Kafka(KafkaSink),
}

impl Sink {
    /// Hands over one request's events; `Ok` once every one of them is durable.
    pub async fn submit(&self, events: Vec<NewEvent>) -> Result<(), SubmitError> {
        match self {
            Sink::Database(writer) => writer.submit(events).await.map(|_| ()),
            Sink::Kafka(sink) => sink.submit(events).await,
        }
    }

    /// Seconds a refused client is told to wait (`Retry-After`).
    pub fn retry_after_secs(&self) -> u64 {
        match self {
            Sink::Database(writer) => writer.retry_after_secs,
            Sink::Kafka(sink) => sink.retry_after_secs(),
        }
    }
}
