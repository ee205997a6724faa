//! Log output: readable in a terminal, or JSON lines for log shippers; filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

use crate::settings::LogFormat;

/// What is logged when `RUST_LOG` is not set: this crate's info and above, and only warnings
/// from every other crate (the scheduler, the SQL layers and the HTTP stack say what they do
/// at info on every start, which tells an operator nothing).
const DEFAULT_FILTER: &str = "warn,tributary=info";

/// Installs the global subscriber. Safe to call more than once (later calls do nothing), so
/// tests can start several servers in one process.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // An error here only means a subscriber is already installed.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
