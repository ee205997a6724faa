//! The database connection: connecting to PostgreSQL or SQLite, applying migrations, and telling
//! whether the schema is current. Read replicas: [`replicas`].

pub mod replicas;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};

use crate::settings::{DatabaseKind, DatabaseUrl, Settings};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to the database at {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("cannot apply migrations to the database at {target}: {reason}")]
    Migrate { target: String, reason: String },
}

/// Opens a connection pool for the configured database (SQLite files are created if missing).
pub async fn connect(settings: &Settings) -> Result<DatabaseConnection, DbError> {
    let database = &settings.database_url;
    let target = describe(database);
    let url = database.expose();
    let kind = database.kind();
    let url = match kind {
        // sqlx opens SQLite read-write only when asked to create: make that the default so a
        // bare `sqlite://file.db` works as users expect.
        DatabaseKind::Sqlite if !url.contains("mode=") => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        }
        DatabaseKind::Postgres => {
            loopback_without_tls(url, std::env::var_os("PGSSLMODE").is_some())
        }
        DatabaseKind::Sqlite => url.to_string(),
    };
    let timeout = Duration::from_secs(settings.database.connect_timeout_secs);
    probe(kind, &url, timeout)
        .await
        .map_err(|reason| DbError::Connect {
            target: target.clone(),
            reason,
        })?;
    let mut options = ConnectOptions::new(url);
    // While the database is down, a request waits at most `acquire_timeout_secs` for a
    // connection (the pool keeps retrying the connect until then) and fails.
    options
        .max_connections(settings.database.max_connections)
        .connect_timeout(timeout)
        .acquire_timeout(Duration::from_secs(settings.database.acquire_timeout_secs));
    pool_rules(&mut options);
    let db = Database::connect(options)
        .await
        .map_err(|e| DbError::Connect {
            target: target.clone(),
            reason: brief(&e),
        })?;
    if db.get_database_backend() == DbBackend::Sqlite {
        // WAL lets readers (GraphQL) run while an ingestion writes.
        db.execute_unprepared("PRAGMA journal_mode=WAL")
            .await
            .map_err(|e| DbError::Connect {
                target,
                reason: brief(&e),
            })?;
    }
    Ok(db)
}

/// What every pool does, the primary's and each replica's:
///
/// - A pooled connection idle for a second or more is tested (a round trip) before use and
///   replaced when broken, so the service recovers on its own once a restarted database
///   answers. Testing on every acquire added a round trip to each query (in a profile of
///   the `transfers` query benchmark the driver's pings, on acquire and on release, were 12%
///   of the server's CPU). A busy connection broken by a restart fails its query like any
///   other during the outage, and is replaced then.
/// - Every statement is logged at debug level under the `sqlx::query` target, with its
///   duration and row counts: `RUST_LOG=warn,sqlx::query=debug` shows the SQL behind a request
///   (which is where `bench/query.sh` takes the statement it hands to pgbench). Under any
///   other filter this costs a level check per statement. Slow statements are logged at debug
///   too: the driver would warn about each one over a second, and a first load's index builds
///   are meant to take longer than that.
pub(crate) fn pool_rules(options: &mut ConnectOptions) {
    options
        .test_before_acquire_if_idle_for(Duration::from_secs(1))
        .sqlx_logging(true)
        .sqlx_logging_level(log::LevelFilter::Debug)
        .sqlx_slow_statements_logging_settings(log::LevelFilter::Debug, Duration::from_secs(1));
}

/// A PostgreSQL URL for a server on this machine (`localhost`, `127.0.0.0/8`, `::1`) that
/// names no `sslmode`, with `sslmode=disable`. The driver's default (`prefer`) would encrypt
/// traffic that never leaves the machine, which costs both sides CPU: about a tenth of the
/// host resolver's throughput (`bench/hosts.sh`). An explicit `sslmode`, in the URL or in
/// `PGSSLMODE`, is kept as it is, and so is every other host.
fn loopback_without_tls(url: &str, mode_from_env: bool) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_string();
    };
    let loopback = match parsed.host() {
        // `postgres:` is not a scheme the URL standard knows, so an IPv4 address stays text.
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    let names_mode = parsed
        .query_pairs()
        .any(|(key, _)| key == "sslmode" || key == "ssl-mode");
    if !loopback || names_mode || mode_from_env {
        return url.to_string();
    }
    parsed.query_pairs_mut().append_pair("sslmode", "disable");
    parsed.into()
}

/// Opens one connection outside the pool: a pool that cannot connect only reports "timed out",
/// while the driver says why (refused, unknown host, bad password, no such database).
async fn probe(kind: DatabaseKind, url: &str, timeout: Duration) -> Result<(), String> {
    use sea_orm::sqlx::Connection;
    let attempt = async {
        match kind {
            DatabaseKind::Postgres => sea_orm::sqlx::PgConnection::connect(url)
                .await
                .map(|c| drop(c.close())),
            DatabaseKind::Sqlite => sea_orm::sqlx::SqliteConnection::connect(url)
                .await
                .map(|c| drop(c.close())),
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(redact(&error.to_string())),
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
    }
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection, settings: &Settings) -> Result<(), DbError> {
    Migrator::up(db, None).await.map_err(|e| DbError::Migrate {
        target: describe(&settings.database_url),
        reason: brief(&e),
    })
}

/// Names of migrations the database has not applied yet.
pub async fn pending_migrations(db: &DatabaseConnection) -> Result<Vec<String>, DbErr> {
    Ok(Migrator::get_pending_migrations(db)
        .await?
        .iter()
        .map(|m| m.name().to_string())
        .collect())
}

/// "postgres db.example.com:5432/tributary" or "sqlite tributary.db": where, never the password.
pub fn describe(database: &DatabaseUrl) -> String {
    let url = database.expose();
    match database.kind() {
        DatabaseKind::Sqlite => {
            let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
            let path = path.split('?').next().unwrap_or(path);
            format!("sqlite {path}")
        }
        DatabaseKind::Postgres => match url::Url::parse(url) {
            Ok(u) => format!(
                "postgres {}:{}{}",
                u.host_str().unwrap_or("localhost"),
                u.port().unwrap_or(5432),
                u.path()
            ),
            Err(_) => "postgres (unparsable URL)".to_string(),
        },
    }
}

/// Whether an error means the database cannot be reached right now (stopped, restarting, the
/// connection broke, no connection within the acquire timeout) rather than that it refused
/// this statement: callers answer "unavailable, retry shortly" instead of "internal error".
pub fn is_unavailable(error: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error;
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                Error::Io(_)
                | Error::Tls(_)
                | Error::Protocol(_)
                | Error::PoolTimedOut
                | Error::PoolClosed
                | Error::WorkerCrashed => true,
                // SQLSTATE class 08 (connection exception) and 57P (the server is shutting
                // down, crashed, or not accepting connections yet).
                Error::Database(db) => db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
                _ => false,
            }
        }
        _ => false,
    }
}

/// A database error's message cut to its first line, without any URL it might quote.
pub fn brief(error: &DbErr) -> String {
    redact(&error.to_string())
}

fn redact(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    if line.contains("://") {
        "the URL was rejected".to_string()
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::{DatabaseUrl, describe, loopback_without_tls};

    #[test]
    fn a_database_on_this_machine_is_reached_without_tls_unless_asked() {
        for (url, expected) in [
            (
                "postgres://postgres@127.0.0.1:5432/t",
                "postgres://postgres@127.0.0.1:5432/t?sslmode=disable",
            ),
            (
                "postgres://app:pw@localhost/t?application_name=x",
                "postgres://app:pw@localhost/t?application_name=x&sslmode=disable",
            ),
            (
                "postgresql://[::1]:6543/t",
                "postgresql://[::1]:6543/t?sslmode=disable",
            ),
            // Asked for: kept.
            (
                "postgres://127.0.0.1/t?sslmode=require",
                "postgres://127.0.0.1/t?sslmode=require",
            ),
            // Another machine: the driver's default.
            (
                "postgres://app@db.internal:5432/t",
                "postgres://app@db.internal:5432/t",
            ),
            ("postgres://app@10.0.0.5/t", "postgres://app@10.0.0.5/t"),
        ] {
            assert_eq!(loopback_without_tls(url, false), expected, "{url}");
        }
        // `PGSSLMODE` names a mode: kept.
        assert_eq!(
            loopback_without_tls("postgres://127.0.0.1/t", true),
            "postgres://127.0.0.1/t"
        );
    }

    #[test]
    fn describe_never_shows_the_password() {
        assert_eq!(
            describe(&url(
                "postgres://app:s3cret@db.internal:6543/tributary?sslmode=require"
            )),
            "postgres db.internal:6543/tributary"
        );
        assert_eq!(
            describe(&url("sqlite://data/t.db?mode=rwc")),
            "sqlite data/t.db"
        );
        // Nor does its debug form.
        assert_eq!(
            format!("{:?}", url("postgres://app:s3cret@db/t")),
            "postgres db:5432/t"
        );
    }

    fn url(text: &str) -> DatabaseUrl {
        DatabaseUrl::parse(text).expect("a supported URL")
    }
}
