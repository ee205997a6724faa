//! Where each `kafka` provider is in each partition: the next offset to store, written in the
//! transaction of the batch it follows, so the rows and the offset never disagree. This table,
//! not Kafka's committed offsets, is what a consumer resumes from.

use std::collections::HashMap;

use chrono::Utc;
use entity::kafka_offset;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Statement, Value,
};

/// A topic and partition.
pub type Partition = (String, i32);

/// Runs `sql`, written with `?` placeholders (numbered `$1…` for PostgreSQL).
async fn execute<C: ConnectionTrait, const N: usize>(
    db: &C,
    sql: &str,
    values: [Value; N],
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            let mut n = 0;
            sql.split('?')
                .enumerate()
                .map(|(i, part)| {
                    if i == 0 {
                        part.to_string()
                    } else {
                        n += 1;
                        format!("${n}{part}")
                    }
                })
                .collect()
        }
        _ => sql.to_string(),
    };
    db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(())
}

/// The stored next offset of every partition of the provider (those never stored are absent).
pub async fn stored<C: ConnectionTrait>(
    db: &C,
    provider: &str,
) -> Result<HashMap<Partition, i64>, DbErr> {
    let rows = kafka_offset::Entity::find()
        .filter(kafka_offset::Column::Provider.eq(provider))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| Some(((row.topic, row.partition), row.next_offset?)))
        .collect())
}

/// Locks the offset rows of `partitions` until the caller's transaction ends and returns their
/// stored next offsets: a replica that lost a partition in a rebalance and one that just got
/// it write one after the other, and the second sees what the first stored. (SQLite has one
/// writer at a time: its transaction is the lock.)
pub async fn lock<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    partitions: &[Partition],
) -> Result<HashMap<Partition, i64>, DbErr> {
    let backend = db.get_database_backend();
    let now = Utc::now();
    for (topic, partition) in partitions {
        execute(
            db,
            "INSERT INTO kafka_offsets (provider, topic, partition, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (provider, topic, partition) DO NOTHING",
            [
                Value::from(provider),
                Value::from(topic.as_str()),
                Value::from(*partition),
                Value::from(now),
            ],
        )
        .await?;
    }
    if backend == DbBackend::Postgres {
        let sql = "SELECT topic, partition, next_offset FROM kafka_offsets \
                   WHERE provider = $1 ORDER BY topic, partition FOR UPDATE";
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [Value::from(provider)],
            ))
            .await?;
        let mut stored = HashMap::new();
        for row in rows {
            let key: Partition = (row.try_get("", "topic")?, row.try_get("", "partition")?);
            let next: Option<i64> = row.try_get("", "next_offset")?;
            if let Some(next) = next
                && partitions.contains(&key)
            {
                stored.insert(key, next);
            }
        }
        return Ok(stored);
    }
    let mut stored = stored(db, provider).await?;
    stored.retain(|partition, _| partitions.contains(partition));
    Ok(stored)
}

/// Stores `next` as the partition's next offset, consumed by `owner`.
pub async fn advance<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    partition: &Partition,
    next: i64,
    owner: &str,
) -> Result<(), DbErr> {
    let now = Utc::now();
    execute(
        db,
        "UPDATE kafka_offsets SET next_offset = ?, owner = ?, owner_seen_at = ?, updated_at = ? \
         WHERE provider = ? AND topic = ? AND partition = ?",
        [
            Value::from(next),
            Value::from(owner),
            Value::from(now),
            Value::from(now),
            Value::from(provider),
            Value::from(partition.0.as_str()),
            Value::from(partition.1),
        ],
    )
    .await
}

/// Records that `owner` consumes the partition and its high watermark when last seen, leaving
/// the stored offset as it is.
pub async fn observe<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    partition: &Partition,
    high_watermark: Option<i64>,
    owner: &str,
) -> Result<(), DbErr> {
    let now = Utc::now();
    execute(
        db,
        "INSERT INTO kafka_offsets (provider, topic, partition, high_watermark, owner, owner_seen_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (provider, topic, partition) DO UPDATE SET \
         high_watermark = COALESCE(excluded.high_watermark, kafka_offsets.high_watermark), \
         owner = excluded.owner, owner_seen_at = excluded.owner_seen_at",
        [
            Value::from(provider),
            Value::from(partition.0.as_str()),
            Value::from(partition.1),
            Value::from(high_watermark),
            Value::from(owner),
            Value::from(now),
            Value::from(now),
        ],
    )
    .await
}

/// Every partition of the provider, in topic and partition order.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    provider: &str,
) -> Result<Vec<kafka_offset::Model>, DbErr> {
    kafka_offset::Entity::find()
        .filter(kafka_offset::Column::Provider.eq(provider))
        .order_by_asc(kafka_offset::Column::Topic)
        .order_by_asc(kafka_offset::Column::Partition)
        .all(db)
        .await
}
