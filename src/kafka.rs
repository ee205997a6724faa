//! Kafka clients as the `kafka` source and the Kafka event sink build them: the user's
//! librdkafka settings, the settings Tributary owns (refused if the user sets them), and where
//! a client's errors and logs go.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Instant;

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use schemars::JsonSchema;
use serde::Deserialize;

/// librdkafka settings given by the user (`security.protocol`, `sasl.*`, `ssl.*`, timeouts).
/// Values may be secrets: only the keys are ever shown.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Properties(pub BTreeMap<String, String>);

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A client configuration: `bootstrap.servers`, then the user's `properties`, then the
/// settings the caller owns (`owned`), which the user may not set: they are what the
/// guarantees rest on. `key` names where the properties were given, for the error.
pub fn client_config(
    brokers: &str,
    properties: &Properties,
    owned: &[(&str, &str)],
    key: &str,
) -> Result<ClientConfig, String> {
    if brokers.trim().is_empty() {
        return Err(format!(
            "{key}: no brokers given (a `host:port` list is needed)"
        ));
    }
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (name, value) in &properties.0 {
        if name == "bootstrap.servers" || owned.iter().any(|(owned, _)| owned == name) {
            return Err(format!(
                "{key}.properties: `{name}` is set by Tributary (what its guarantees rest on) \
                 and may not be changed"
            ));
        }
        config.set(name, value);
    }
    for (name, value) in owned {
        config.set(*name, *value);
    }
    config.set_log_level(RDKafkaLogLevel::Warning);
    Ok(config)
}

/// The last error a client reported (a broker unreachable, authentication refused), and when:
/// what a `kafka` provider's running run shows as its error while the client retries.
#[derive(Debug, Default)]
pub struct LastError(Mutex<Option<(String, Instant)>>);

impl LastError {
    pub fn set(&self, error: String) {
        if let Ok(mut last) = self.0.lock() {
            *last = Some((error, Instant::now()));
        }
    }

    /// The error, if it was reported within `within`.
    pub fn recent(&self, within: std::time::Duration) -> Option<String> {
        let last = self.0.lock().ok()?;
        match &*last {
            Some((error, at)) if at.elapsed() <= within => Some(error.clone()),
            _ => None,
        }
    }
}

/// Logs a client's errors and log lines under `what` (the provider or the sink), and keeps the
/// last error for status.
pub fn client_error(what: &str, last: &LastError, error: &KafkaError, reason: &str) {
    let message = format!("{error}: {reason}");
    tracing::warn!(client = what, error = %message, "kafka client error");
    last.set(message);
}

/// librdkafka's own log lines, at their level.
pub fn client_log(what: &str, level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            tracing::error!(client = what, facility, "{message}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!(client = what, facility, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(client = what, facility, "{message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(client = what, facility, "{message}"),
    }
}

/// A producer's context: errors and logs as above.
pub struct ProducerContext {
    pub what: String,
    pub last_error: std::sync::Arc<LastError>,
}

impl ClientContext for ProducerContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        client_log(&self.what, level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        client_error(&self.what, &self.last_error, &error, reason);
    }
}
