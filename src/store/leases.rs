//! Provider leases: a replica runs a provider only while it holds that provider's lease in
//! `provider_state`, claimed with one conditional UPDATE. N replicas on one database need no
//! other coordinator: the database decides who wins.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};

/// What joins a `kafka` provider's name and a replica's id in the name of that replica's
/// consumer lease.
pub const CONSUMER_MARK: &str = "#consumer@";

/// The lease a replica's consumer of `provider` holds while it is alive: consumers of one
/// provider run on every replica at once, each under its own lease.
pub fn consumer_lease(provider: &str, instance: &str) -> String {
    format!("{provider}{CONSUMER_MARK}{instance}")
}

/// Makes sure the provider has a state row to claim.
async fn ensure_row<C: ConnectionTrait>(db: &C, provider: &str) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO provider_state (provider, updated_at) VALUES ($1, $2) ON CONFLICT (provider) DO NOTHING"
        }
        _ => {
            "INSERT INTO provider_state (provider, updated_at) VALUES (?, ?) ON CONFLICT (provider) DO NOTHING"
        }
    };
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [Value::from(provider), Value::from(Utc::now())],
    ))
    .await?;
    Ok(())
}

/// Claims the lease for `owner` until `ttl` from now. With `tick`, the claim also records the
/// scheduled tick and fails when any replica already took that tick — so each tick runs at
/// most once across all replicas. Returns whether this replica now holds the lease.
pub async fn claim<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    owner: &str,
    ttl: Duration,
    tick: Option<DateTime<Utc>>,
) -> Result<bool, DbErr> {
    ensure_row(db, provider).await?;
    let backend = db.get_database_backend();
    let now = Utc::now();
    let p = |n: usize| match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".to_string(),
    };
    let mut sql = format!(
        "UPDATE provider_state SET lease_owner = {}, lease_expires_at = {}, updated_at = {}",
        p(1),
        p(2),
        p(3)
    );
    let mut values = vec![Value::from(owner), Value::from(now + ttl), Value::from(now)];
    if let Some(tick) = tick {
        sql += &format!(", last_tick_at = {}", p(4));
        values.push(Value::from(tick));
    }
    let n = values.len();
    sql += &format!(
        " WHERE provider = {} AND (lease_owner IS NULL OR lease_expires_at < {} OR lease_owner = {})",
        p(n + 1),
        p(n + 2),
        p(n + 3)
    );
    values.extend([Value::from(provider), Value::from(now), Value::from(owner)]);
    if let Some(tick) = tick {
        sql += &format!(" AND (last_tick_at IS NULL OR last_tick_at < {})", p(n + 4));
        values.push(Value::from(tick));
    }
    let result = db
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Extends a held lease; false when it was lost (expired and taken by another replica).
pub async fn heartbeat<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    owner: &str,
    ttl: Duration,
) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let now = Utc::now();
    let sql = match backend {
        DbBackend::Postgres => {
            "UPDATE provider_state SET lease_expires_at = $1, updated_at = $2 WHERE provider = $3 AND lease_owner = $4"
        }
        _ => {
            "UPDATE provider_state SET lease_expires_at = ?, updated_at = ? WHERE provider = ? AND lease_owner = ?"
        }
    };
    let result = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [
                Value::from(now + ttl),
                Value::from(now),
                Value::from(provider),
                Value::from(owner),
            ],
        ))
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Gives the lease up so another replica need not wait for it to expire.
pub async fn release<C: ConnectionTrait>(db: &C, provider: &str, owner: &str) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "UPDATE provider_state SET lease_owner = NULL, lease_expires_at = NULL, updated_at = $1 WHERE provider = $2 AND lease_owner = $3"
        }
        _ => {
            "UPDATE provider_state SET lease_owner = NULL, lease_expires_at = NULL, updated_at = ? WHERE provider = ? AND lease_owner = ?"
        }
    };
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [
            Value::from(Utc::now()),
            Value::from(provider),
            Value::from(owner),
        ],
    ))
    .await?;
    Ok(())
}

/// Who holds the lease now, if anyone (an expired lease counts as free).
pub async fn holder<C: ConnectionTrait>(db: &C, provider: &str) -> Result<Option<String>, DbErr> {
    use sea_orm::EntityTrait;
    let state = entity::provider_state::Entity::find_by_id(provider.to_string())
        .one(db)
        .await?;
    Ok(
        state.and_then(|s| match (s.lease_owner, s.lease_expires_at) {
            (Some(owner), Some(expires)) if expires > Utc::now() => Some(owner),
            _ => None,
        }),
    )
}

/// A provider's lease held by a one-off process (`tributary import`, `tributary ingest`) for
/// its whole run: a heartbeat task extends it, [`Held::release`] gives it up, and if the
/// process dies it lapses after [`ONE_OFF_TTL`], so the run it leaves `running` is recognised
/// as interrupted.
pub struct Held {
    db: sea_orm::DatabaseConnection,
    provider: String,
    owner: String,
    heartbeat: tokio::task::JoinHandle<()>,
}

/// How long a one-off process's lease outlives its last heartbeat.
pub const ONE_OFF_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// Claims `provider`'s lease for this process, waiting while another process or replica
/// holds it (runs of one provider never overlap), then keeps it alive until released.
pub async fn hold(db: &sea_orm::DatabaseConnection, provider: &str) -> Result<Held, DbErr> {
    let owner = format!("cli-{}-{:04x}", std::process::id(), fastrand::u16(..));
    let ttl = Duration::from_std(ONE_OFF_TTL).unwrap_or(Duration::seconds(10));
    let mut told = false;
    while !claim(db, provider, &owner, ttl, None).await? {
        if !told {
            let by = holder(db, provider).await?.unwrap_or_default();
            tracing::info!(provider, holder = %by, "waiting for the provider's lease: another run of it is under way");
            told = true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let heartbeat = {
        let (db, provider, owner) = (db.clone(), provider.to_string(), owner.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(ONE_OFF_TTL / 3).await;
                if let Err(error) = heartbeat(&db, &provider, &owner, ttl).await {
                    tracing::warn!(%provider, error = %crate::db::brief(&error), "lease heartbeat failed");
                }
            }
        })
    };
    Ok(Held {
        db: db.clone(),
        provider: provider.to_string(),
        owner,
        heartbeat,
    })
}

impl Held {
    pub async fn release(self) {
        self.heartbeat.abort();
        if let Err(error) = release(&self.db, &self.provider, &self.owner).await {
            tracing::warn!(provider = %self.provider, error = %crate::db::brief(&error), "could not release the lease; it will lapse");
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // Whatever way the run ends, the heartbeat stops with it.
        self.heartbeat.abort();
    }
}
