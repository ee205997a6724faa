//! PostgreSQL streaming replicas for reads: one lazily connected pool per replica, a health
//! task that checks each one every second (reachable, still a standby, how far behind), and
//! [`Replicas::reader`], which picks a healthy replica in turn or falls back to the primary.
//!
//! Which operations may read from a replica is decided elsewhere, by operation type (see
//! `graphql::guard`); everything that is not a GraphQL query or subscription uses
//! [`Replicas::primary`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};
use serde::Serialize;

use super::{DbError, brief, describe, loopback_without_tls, pool_rules};
use crate::settings::{DatabaseKind, Settings};

/// How often each replica is checked.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// A check that takes longer than this marks the replica down: a replica that slow would
/// slow every query sent to it.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the replica is in recovery (a standby), and how far its replay is behind. A standby
/// that has replayed everything it received is caught up (lag 0) however old its last
/// replayed transaction is: an idle primary commits nothing new. Otherwise the lag is the age
/// of the last replayed commit, which is how long the newest data it shows has been
/// superseded at most.
const HEALTH_QUERY: &str = "SELECT pg_is_in_recovery() AS in_recovery, \
     COALESCE(pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn(), false) AS caught_up, \
     CAST(EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp())) AS float8) AS replay_age";

/// The primary and the read replicas. Cheap to clone.
#[derive(Clone)]
pub struct Replicas {
    inner: Arc<Inner>,
}

struct Inner {
    primary: DatabaseConnection,
    replicas: Vec<Replica>,
    /// Where the next round-robin pick starts.
    next: AtomicUsize,
    max_lag_secs: f64,
}

struct Replica {
    /// Where it is, never the password: "postgres host:port/db".
    name: String,
    /// The pool queries use.
    db: DatabaseConnection,
    /// One connection of its own for the checks, so a busy query pool never reads as a
    /// replica that is down.
    probe: DatabaseConnection,
    health: Mutex<Health>,
}

/// What the last check found.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Health {
    /// No check has finished yet.
    Unchecked,
    /// Unreachable, or the check failed or timed out.
    Down,
    /// It answers but is not in recovery (a promoted or misconfigured server): its data may
    /// have diverged from the primary's.
    NotStandby,
    /// A standby; `lag` in seconds, `None` when it cannot tell (nothing replayed yet).
    Standby { lag: Option<f64> },
}

/// A connection chosen for one operation: `slot` 0 is the primary, 1… the replicas in the
/// order of `database.replica_urls`.
#[derive(Clone)]
pub struct Chosen {
    pub slot: usize,
    pub db: DatabaseConnection,
}

/// One replica as `/readyz` shows it.
#[derive(Debug, Serialize, PartialEq)]
pub struct ReplicaReport {
    /// "postgres host:port/db".
    pub database: String,
    /// It answered the last check.
    pub reachable: bool,
    /// Seconds its replay is behind the primary; null when unknown.
    pub lag_secs: Option<f64>,
    /// `used` (queries go to it) or `skipped`.
    pub status: &'static str,
    /// Why it is skipped: `down`, `lagging`, `not a standby`, `not checked yet`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

impl Replicas {
    /// The primary alone: every read goes to it.
    pub fn primary_only(primary: DatabaseConnection) -> Replicas {
        Replicas {
            inner: Arc::new(Inner {
                primary,
                replicas: Vec::new(),
                next: AtomicUsize::new(0),
                max_lag_secs: 0.0,
            }),
        }
    }

    /// Pools for `database.replica_urls`, connected lazily: a replica that is down at start
    /// is only reported (and skipped) until it answers. The health task
    /// ([`Replicas::watch`]) must run for any replica to be used.
    pub async fn connect(
        settings: &Settings,
        primary: DatabaseConnection,
    ) -> Result<Replicas, DbError> {
        let urls = &settings.database.replica_urls;
        if !urls.is_empty() && settings.database_kind() != DatabaseKind::Postgres {
            return Err(DbError::Connect {
                target: "database.replica_urls".to_string(),
                reason: "replicas need a PostgreSQL primary".to_string(),
            });
        }
        let with_tls_choice = std::env::var_os("PGSSLMODE").is_some();
        let mut replicas = Vec::with_capacity(urls.len());
        for url in urls {
            let name = describe(url);
            let address = loopback_without_tls(url.expose(), with_tls_choice);
            let pool = |max: u32, acquire: Duration| {
                let mut options = ConnectOptions::new(address.clone());
                options
                    .max_connections(max)
                    .min_connections(0)
                    .connect_timeout(CHECK_TIMEOUT)
                    .acquire_timeout(acquire)
                    .connect_lazy(true);
                pool_rules(&mut options);
                options
            };
            let connect = async |options: ConnectOptions| {
                Database::connect(options)
                    .await
                    .map_err(|e| DbError::Connect {
                        target: name.clone(),
                        reason: brief(&e),
                    })
            };
            let db = connect(pool(
                settings.database.max_connections,
                Duration::from_secs(settings.database.acquire_timeout_secs),
            ))
            .await?;
            let probe = connect(pool(1, CHECK_TIMEOUT)).await?;
            replicas.push(Replica {
                name,
                db,
                probe,
                health: Mutex::new(Health::Unchecked),
            });
        }
        Ok(Replicas {
            inner: Arc::new(Inner {
                primary,
                replicas,
                next: AtomicUsize::new(0),
                max_lag_secs: settings.database.max_replica_lag_secs as f64,
            }),
        })
    }

    /// The primary: every write, and every read that must see the writes before it.
    pub fn primary(&self) -> &DatabaseConnection {
        &self.inner.primary
    }

    /// Whether any replica is configured.
    pub fn any(&self) -> bool {
        !self.inner.replicas.is_empty()
    }

    /// A connection for reads: the next healthy replica in turn, or the primary when none is.
    pub fn reader(&self) -> Chosen {
        let replicas = &self.inner.replicas;
        if !replicas.is_empty() {
            let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
            for i in 0..replicas.len() {
                let index = (start + i) % replicas.len();
                if self.usable(&replicas[index]) {
                    return Chosen {
                        slot: index + 1,
                        db: replicas[index].db.clone(),
                    };
                }
            }
        }
        self.writer()
    }

    /// The primary, as a choice.
    pub fn writer(&self) -> Chosen {
        Chosen {
            slot: 0,
            db: self.inner.primary.clone(),
        }
    }

    /// Each replica's query pool, in the order of `database.replica_urls` (slots 1…).
    pub fn replica_pools(&self) -> Vec<&DatabaseConnection> {
        self.inner.replicas.iter().map(|r| &r.db).collect()
    }

    /// An operation on `slot` found its database unreachable: stop sending reads there until
    /// the next check finds it well again.
    pub fn report_unavailable(&self, slot: usize) {
        let Some(replica) = slot.checked_sub(1).and_then(|i| self.inner.replicas.get(i)) else {
            return;
        };
        if let Ok(mut health) = replica.health.lock() {
            if *health != Health::Down {
                tracing::warn!(replica = %replica.name, "read replica unreachable during a query: reads go elsewhere");
            }
            *health = Health::Down;
        }
    }

    /// Each replica: reachable, lag, used or skipped and why.
    pub fn report(&self) -> Vec<ReplicaReport> {
        self.inner
            .replicas
            .iter()
            .map(|replica| {
                let health = self.health(replica);
                let (reachable, lag_secs) = match health {
                    Health::Unchecked | Health::Down => (false, None),
                    Health::NotStandby => (true, None),
                    Health::Standby { lag } => (true, lag),
                };
                let reason = match health {
                    Health::Unchecked => Some("not checked yet"),
                    Health::Down => Some("down"),
                    Health::NotStandby => Some("not a standby"),
                    Health::Standby { .. } if self.usable(replica) => None,
                    Health::Standby { .. } => Some("lagging"),
                };
                ReplicaReport {
                    database: replica.name.clone(),
                    reachable,
                    lag_secs: lag_secs.map(|l| (l * 1000.0).round() / 1000.0),
                    status: if reason.is_none() { "used" } else { "skipped" },
                    reason,
                }
            })
            .collect()
    }

    /// Checks every replica once a second, for as long as the server runs.
    pub async fn watch(self) {
        if self.inner.replicas.is_empty() {
            return;
        }
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let checks = self
                .inner
                .replicas
                .iter()
                .map(|replica| self.check(replica));
            futures_util::future::join_all(checks).await;
        }
    }

    async fn check(&self, replica: &Replica) {
        let found = match tokio::time::timeout(CHECK_TIMEOUT, probe(&replica.probe)).await {
            Ok(Ok(health)) => health,
            Ok(Err(error)) => {
                tracing::debug!(replica = %replica.name, %error, "read replica check failed");
                Health::Down
            }
            Err(_) => Health::Down,
        };
        let Ok(mut health) = replica.health.lock() else {
            return;
        };
        let before = *health;
        *health = found;
        drop(health);
        let was_usable = self.usable_health(before);
        let is_usable = self.usable_health(found);
        if was_usable != is_usable || (before == Health::Unchecked && !is_usable) {
            let lag = match found {
                Health::Standby { lag } => lag,
                _ => None,
            };
            if is_usable {
                tracing::info!(replica = %replica.name, lag_secs = ?lag, "read replica in use");
            } else {
                tracing::warn!(replica = %replica.name, state = ?found, lag_secs = ?lag, "read replica skipped: reads go to the primary or another replica");
            }
        }
    }

    fn health(&self, replica: &Replica) -> Health {
        replica
            .health
            .lock()
            .map(|h| *h)
            .unwrap_or(Health::Unchecked)
    }

    fn usable(&self, replica: &Replica) -> bool {
        self.usable_health(self.health(replica))
    }

    fn usable_health(&self, health: Health) -> bool {
        matches!(health, Health::Standby { lag: Some(lag) } if lag <= self.inner.max_lag_secs)
    }
}

/// One check of one replica.
async fn probe(db: &DatabaseConnection) -> Result<Health, String> {
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, HEALTH_QUERY))
        .await
        .map_err(|e| brief(&e))?
        .ok_or("the check returned no row")?;
    let in_recovery: bool = row.try_get("", "in_recovery").map_err(|e| brief(&e))?;
    if !in_recovery {
        return Ok(Health::NotStandby);
    }
    let caught_up: bool = row.try_get("", "caught_up").map_err(|e| brief(&e))?;
    let replay_age: Option<f64> = row.try_get("", "replay_age").map_err(|e| brief(&e))?;
    let lag = if caught_up {
        Some(0.0)
    } else {
        // A clock step on either server can make the age negative: behind by nothing known.
        replay_age.map(|age| age.max(0.0))
    };
    Ok(Health::Standby { lag })
}
