//! Provider leases: a replica runs a provider only while it holds that provider's lease in
//! `provider_state`, claimed with one conditional UPDATE. N replicas on one database need no
//! other coordinator: the database decides who wins.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};

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
