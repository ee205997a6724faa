//! Log output: readable in a terminal, or JSON lines for log shippers; filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

use crate::settings::LogFormat;

/// What is logged when `RUST_LOG` is not set: our own info, only warnings from the SQL layers.
const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn";

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
