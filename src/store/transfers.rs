//! ERC-20 transfers: the bulk writer every ingestion path uses, and the read queries.

use chrono::{DateTime, Utc};
use entity::transfer;
use num_bigint::BigUint;
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Func, Order};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, Statement, Value,
};

use super::arrays;
use super::filter::{BytesFilter, RangeFilter};
use super::first_load;
use super::keyset::{KeyValue, Page, PageRequest, SortOrder};
use super::upsert::{UpsertCounts, counted, last_wins, postgres_counted, values_placeholders};
use crate::entities::transfer::TransferRecord;
use crate::uint256;

/// Rows per PostgreSQL statement: large enough to amortise a round trip, small enough to
/// keep the arrays' memory modest.
const POSTGRES_CHUNK: usize = 10_000;
/// Rows per SQLite statement: 8 columns each stays under SQLite's 32,766 parameters.
const SQLITE_CHUNK: usize = 2_000;

/// Inserts new transfers and updates changed ones, by `(transaction_hash, log_index)`; the last
/// of several records with one key wins. Runs inside whatever transaction `db` is.
pub async fn upsert<C: ConnectionTrait>(
    db: &C,
    records: &[TransferRecord],
) -> Result<UpsertCounts, DbErr> {
    let mut counts = UpsertCounts::default();
    let kept = last_wins(records, |r| (r.transaction_hash, r.log_index), &mut counts);
    let backend = db.get_database_backend();
    let chunk = match backend {
        DbBackend::Postgres => POSTGRES_CHUNK,
        _ => SQLITE_CHUNK,
    };
    for indices in kept.chunks(chunk) {
        let rows: Vec<&TransferRecord> = indices.iter().map(|&i| &records[i]).collect();
        let written = match backend {
            DbBackend::Postgres => upsert_postgres(db, &rows).await?,
            _ => upsert_sqlite(db, &rows).await?,
        };
        counts.add(written);
    }
    Ok(counts)
}

/// The table as a first load takes it: the natural key of the upserts below.
pub const FIRST_LOAD: &[first_load::Table] = &[first_load::Table {
    name: "transfers",
    repeats: Some(first_load::Repeats {
        key: &["transaction_hash", "log_index"],
        order: "id",
    }),
}];

/// Inserts transfers into a table a first load holds (`first_load`): no stored row and no
/// unique constraint to meet, so no conflict handling; a batch holds each key once, and keys
/// repeated across batches are settled when the load finishes.
pub async fn insert_new<C: ConnectionTrait>(
    db: &C,
    records: &[TransferRecord],
) -> Result<UpsertCounts, DbErr> {
    let mut counts = UpsertCounts::default();
    let kept = last_wins(records, |r| (r.transaction_hash, r.log_index), &mut counts);
    for indices in kept.chunks(POSTGRES_CHUNK) {
        let rows: Vec<&TransferRecord> = indices.iter().map(|&i| &records[i]).collect();
        let sql = format!("INSERT INTO transfers {POSTGRES_COLUMNS} {POSTGRES_ROWS}");
        let inserted = db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                postgres_arrays(&rows),
            ))
            .await?
            .rows_affected();
        counts.inserted += inserted;
    }
    Ok(counts)
}

const POSTGRES_COLUMNS: &str = "(token_address, from_address, to_address, value, \
    transaction_hash, log_index, block_number, block_timestamp)";

/// The rows of [`postgres_arrays`]: one statement over arrays, which PostgreSQL plans once
/// however many rows it carries.
const POSTGRES_ROWS: &str = r#"
    SELECT token_address, from_address, to_address, value::numeric AS value, transaction_hash,
        log_index, block_number,
        'epoch'::timestamptz + NULLIF(micros, -9223372036854775808) * interval '1 microsecond'
            AS block_timestamp
    FROM UNNEST($1::bytea[], $2::bytea[], $3::bytea[], $4::text[], $5::bytea[],
        $6::int4[], $7::int8[], $8::int8[])
        AS i(token_address, from_address, to_address, value, transaction_hash,
             log_index, block_number, micros)"#;

fn postgres_arrays(rows: &[&TransferRecord]) -> Vec<Value> {
    vec![
        arrays::bytes(rows.iter().map(|r| &r.token_address[..])),
        arrays::bytes(rows.iter().map(|r| &r.from_address[..])),
        arrays::bytes(rows.iter().map(|r| &r.to_address[..])),
        arrays::strings(rows.iter().map(|r| r.value.to_string())),
        arrays::bytes(rows.iter().map(|r| &r.transaction_hash[..])),
        arrays::ints(rows.iter().map(|r| r.log_index)),
        arrays::bigints(rows.iter().map(|r| r.block_number)),
        arrays::micros(rows.iter().map(|r| r.block_timestamp)),
    ]
}

async fn upsert_postgres<C: ConnectionTrait>(
    db: &C,
    rows: &[&TransferRecord],
) -> Result<UpsertCounts, DbErr> {
    // Rows equal to the stored ones are left out before the upsert: `ON CONFLICT DO UPDATE`
    // locks every conflicting row even when its `WHERE` then skips it, and those locks are
    // writes (a re-import of 1,000,000 unchanged transfers: 10 s with them).
    let sql = format!(
        "WITH written AS (
            INSERT INTO transfers AS t {POSTGRES_COLUMNS}
            SELECT * FROM ({POSTGRES_ROWS}) AS n
            WHERE NOT EXISTS (
                SELECT FROM transfers s
                WHERE s.transaction_hash = n.transaction_hash AND s.log_index = n.log_index
                  AND (s.token_address, s.from_address, s.to_address, s.value, s.block_number,
                       s.block_timestamp)
                      IS NOT DISTINCT FROM (n.token_address, n.from_address, n.to_address,
                       n.value, n.block_number, n.block_timestamp))
            ON CONFLICT (transaction_hash, log_index) DO UPDATE SET
                token_address = EXCLUDED.token_address,
                from_address = EXCLUDED.from_address,
                to_address = EXCLUDED.to_address,
                value = EXCLUDED.value,
                block_number = EXCLUDED.block_number,
                block_timestamp = EXCLUDED.block_timestamp
            WHERE (t.token_address, t.from_address, t.to_address, t.value, t.block_number,
                   t.block_timestamp)
                IS DISTINCT FROM (EXCLUDED.token_address, EXCLUDED.from_address,
                   EXCLUDED.to_address, EXCLUDED.value, EXCLUDED.block_number,
                   EXCLUDED.block_timestamp)
            RETURNING (xmax = 0) AS inserted
        )"
    );
    postgres_counted(db, sql, postgres_arrays(rows), rows.len() as u64).await
}

/// SQLite has no `xmax`: count the keys that already exist first, then the rows the upsert
/// changed (an update whose `WHERE` is false changes nothing).
async fn upsert_sqlite<C: ConnectionTrait>(
    db: &C,
    rows: &[&TransferRecord],
) -> Result<UpsertCounts, DbErr> {
    let keys: Vec<Value> = rows
        .iter()
        .flat_map(|r| {
            [
                Value::from(r.transaction_hash.to_vec()),
                Value::from(r.log_index),
            ]
        })
        .collect();
    let existing_sql = format!(
        "SELECT count(*) AS n FROM transfers WHERE (transaction_hash, log_index) IN (VALUES {})",
        values_placeholders(DbBackend::Sqlite, rows.len(), 2)
    );
    let existing: i64 = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            existing_sql,
            keys,
        ))
        .await?
        .map(|row| row.try_get("", "n"))
        .transpose()?
        .unwrap_or(0);

    let sql = format!(
        "INSERT INTO transfers (token_address, from_address, to_address, value, transaction_hash,
            log_index, block_number, block_timestamp) VALUES {}
         ON CONFLICT (transaction_hash, log_index) DO UPDATE SET
            token_address = excluded.token_address, from_address = excluded.from_address,
            to_address = excluded.to_address, value = excluded.value,
            block_number = excluded.block_number, block_timestamp = excluded.block_timestamp
         WHERE transfers.token_address IS NOT excluded.token_address
            OR transfers.from_address IS NOT excluded.from_address
            OR transfers.to_address IS NOT excluded.to_address
            OR transfers.value IS NOT excluded.value
            OR transfers.block_number IS NOT excluded.block_number
            OR transfers.block_timestamp IS NOT excluded.block_timestamp",
        values_placeholders(DbBackend::Sqlite, rows.len(), 8)
    );
    let mut values = Vec::with_capacity(rows.len() * 8);
    for r in rows {
        values.extend([
            Value::from(r.token_address.to_vec()),
            Value::from(r.from_address.to_vec()),
            Value::from(r.to_address.to_vec()),
            Value::from(uint256::to_fixed_width(r.value)),
            Value::from(r.transaction_hash.to_vec()),
            Value::from(r.log_index),
            Value::from(r.block_number),
            Value::from(r.block_timestamp),
        ]);
    }
    let changed = db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            sql,
            values,
        ))
        .await?
        .rows_affected();
    Ok(counted(rows.len() as u64, existing as u64, changed))
}

/// What `transfers(where: …)` may filter on.
#[derive(Debug, Clone, Default)]
pub struct TransferFilter {
    pub token: BytesFilter,
    pub from: BytesFilter,
    pub to: BytesFilter,
    /// Sender or receiver.
    pub account: BytesFilter,
    pub transaction_hash: BytesFilter,
    pub block_timestamp: RangeFilter<DateTime<Utc>>,
    pub block_number: RangeFilter<i64>,
    /// Decimal strings.
    pub value: RangeFilter<String>,
}

impl TransferFilter {
    pub fn condition(&self, backend: DbBackend) -> Condition {
        use transfer::Column as C;
        let account = Condition::any()
            .add(self.account.condition(C::FromAddress))
            .add(self.account.condition(C::ToAddress));
        let mut all = Condition::all()
            .add(self.token.condition(C::TokenAddress))
            .add(self.from.condition(C::FromAddress))
            .add(self.to.condition(C::ToAddress))
            .add(self.transaction_hash.condition(C::TransactionHash))
            .add(self.block_timestamp.condition(C::BlockTimestamp))
            .add(self.block_number.condition(C::BlockNumber))
            .add(self.value.uint256_condition(backend, C::Value));
        if self.account.eq.is_some() || self.account.any_of.is_some() {
            all = all.add(account);
        }
        all
    }
}

/// Fields a transfer list can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferSort {
    BlockTimestamp,
    BlockNumber,
    Value,
}

/// The keyset order for `sort` (default: newest first), ending with the id as tie-breaker.
pub fn order(sort: &[(TransferSort, Order)]) -> SortOrder<transfer::Column> {
    use transfer::Column as C;
    let default = [(TransferSort::BlockTimestamp, Order::Desc)];
    let sort = if sort.is_empty() { &default[..] } else { sort };
    let mut order = SortOrder::new();
    for (field, direction) in sort {
        order = match field {
            TransferSort::BlockTimestamp => {
                order.then_nullable(C::BlockTimestamp, direction.clone())
            }
            TransferSort::BlockNumber => order.then(C::BlockNumber, direction.clone()),
            TransferSort::Value => order.then_uint256(C::Value, direction.clone()),
        };
    }
    let last = sort.last().map(|(_, d)| d.clone()).unwrap_or(Order::Desc);
    order.then(C::Id, last)
}

/// A transfer's sort values for `sort`, matching `order(sort)`.
pub fn cursor_values(sort: &[(TransferSort, Order)], t: &transfer::Model) -> Vec<KeyValue> {
    let default = [(TransferSort::BlockTimestamp, Order::Desc)];
    let sort = if sort.is_empty() { &default[..] } else { sort };
    let mut values: Vec<KeyValue> = sort
        .iter()
        .map(|(field, _)| match field {
            TransferSort::BlockTimestamp => KeyValue::time(t.block_timestamp),
            TransferSort::BlockNumber => KeyValue::Int(t.block_number),
            TransferSort::Value => KeyValue::Uint(uint256::canonical(&t.value)),
        })
        .collect();
    values.push(KeyValue::Int(t.id));
    values
}

pub async fn list(
    db: &DatabaseConnection,
    filter: &TransferFilter,
    sort: &[(TransferSort, Order)],
    page: &PageRequest,
) -> Result<Page<transfer::Model>, DbErr> {
    let backend = db.get_database_backend();
    let select = transfer::Entity::find().filter(filter.condition(backend));
    let rows = page.apply(&order(sort), backend, select).all(db).await?;
    Ok(page.finish(rows))
}

/// Totals over the transfers a filter selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferStats {
    pub count: i64,
    /// Exact sum of values, decimal.
    pub total_value: String,
    pub distinct_senders: i64,
    pub distinct_receivers: i64,
    pub first_timestamp: Option<DateTime<Utc>>,
    pub last_timestamp: Option<DateTime<Utc>>,
}

#[derive(Debug, FromQueryResult)]
struct StatsRow {
    count: i64,
    total_value: Option<String>,
    distinct_senders: i64,
    distinct_receivers: i64,
    first_timestamp: Option<DateTime<Utc>>,
    last_timestamp: Option<DateTime<Utc>>,
}

pub async fn stats(
    db: &DatabaseConnection,
    filter: &TransferFilter,
) -> Result<TransferStats, DbErr> {
    use transfer::Column as C;
    let backend = db.get_database_backend();
    let mut select = transfer::Entity::find()
        .select_only()
        .filter(filter.condition(backend))
        .column_as(Expr::col(C::Id).count(), "count")
        .column_as(
            Expr::col(C::FromAddress).count_distinct(),
            "distinct_senders",
        )
        .column_as(
            Expr::col(C::ToAddress).count_distinct(),
            "distinct_receivers",
        )
        .column_as(
            Expr::from(Func::min(Expr::col(C::BlockTimestamp))),
            "first_timestamp",
        )
        .column_as(
            Expr::from(Func::max(Expr::col(C::BlockTimestamp))),
            "last_timestamp",
        );
    select = match backend {
        // numeric sums exactly, at any size.
        DbBackend::Postgres => select.column_as(Expr::cust("sum(value)::text"), "total_value"),
        // SQLite would sum text through floating point: add in Rust instead (below).
        _ => select.column_as(Expr::cust("NULL"), "total_value"),
    };
    let row = select
        .into_model::<StatsRow>()
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("aggregate returned no row".into()))?;
    let total_value = match backend {
        DbBackend::Postgres => row
            .total_value
            .map(|v| uint256::canonical(&v))
            .unwrap_or_else(|| "0".into()),
        _ => sum_values(db, filter).await?,
    };
    Ok(TransferStats {
        count: row.count,
        total_value,
        distinct_senders: row.distinct_senders,
        distinct_receivers: row.distinct_receivers,
        first_timestamp: row.first_timestamp,
        last_timestamp: row.last_timestamp,
    })
}

/// Exact sum of the selected values on SQLite, streamed so memory stays flat.
async fn sum_values(db: &DatabaseConnection, filter: &TransferFilter) -> Result<String, DbErr> {
    use futures_util::TryStreamExt;
    let backend = db.get_database_backend();
    let mut stream = transfer::Entity::find()
        .select_only()
        .column(transfer::Column::Value)
        .filter(filter.condition(backend))
        .into_tuple::<String>()
        .stream(db)
        .await?;
    let mut total = BigUint::default();
    while let Some(value) = stream.try_next().await? {
        total += parse_stored(&value)?;
    }
    Ok(total.to_string())
}

fn parse_stored(text: &str) -> Result<BigUint, DbErr> {
    text.parse::<BigUint>()
        .map_err(|_| DbErr::Type(format!("stored value {text:?} is not a decimal integer")))
}

/// Width of a `transferVolume` bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Hour,
    Day,
    /// ISO weeks, starting on Monday.
    Week,
}

/// One bucket of `transferVolume`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeBucket {
    pub start: DateTime<Utc>,
    pub count: i64,
    pub total_value: String,
}

/// Most buckets one `transferVolume` answer may hold.
pub const MAX_BUCKETS: usize = 10_000;

#[derive(Debug, FromQueryResult)]
struct BucketRow {
    bucket: String,
    count: i64,
    total_value: Option<String>,
}

/// Transfers per time bucket (transfers without a timestamp are left out), oldest first.
/// `Err(None)` inside `Ok` never happens; more than `MAX_BUCKETS` buckets is `Ok(None)`.
pub async fn volume(
    db: &DatabaseConnection,
    filter: &TransferFilter,
    interval: Interval,
) -> Result<Option<Vec<VolumeBucket>>, DbErr> {
    use transfer::Column as C;
    let backend = db.get_database_backend();
    let bucket = match (backend, interval) {
        (DbBackend::Postgres, Interval::Hour) => {
            "to_char(date_trunc('hour', block_timestamp, 'UTC') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
        }
        (DbBackend::Postgres, Interval::Day) => {
            "to_char(date_trunc('day', block_timestamp, 'UTC') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
        }
        (DbBackend::Postgres, Interval::Week) => {
            "to_char(date_trunc('week', block_timestamp, 'UTC') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
        }
        (_, Interval::Hour) => "strftime('%Y-%m-%dT%H:00:00Z', block_timestamp)",
        (_, Interval::Day) => "strftime('%Y-%m-%dT00:00:00Z', block_timestamp)",
        // 'weekday 0' moves to the coming Sunday (or stays on one); six days back is Monday.
        (_, Interval::Week) => {
            "strftime('%Y-%m-%dT00:00:00Z', block_timestamp, 'weekday 0', '-6 days')"
        }
    };
    let total = match backend {
        DbBackend::Postgres => "sum(value)::text",
        _ => "NULL",
    };
    let rows = transfer::Entity::find()
        .select_only()
        .filter(filter.condition(backend))
        .filter(Expr::col(C::BlockTimestamp).is_not_null())
        .column_as(Expr::cust(bucket), "bucket")
        .column_as(Expr::col(C::Id).count(), "count")
        .column_as(Expr::cust(total), "total_value")
        .group_by(Expr::cust(bucket))
        .order_by(Expr::cust(bucket), Order::Asc)
        .limit(MAX_BUCKETS as u64 + 1)
        .into_model::<BucketRow>()
        .all(db)
        .await?;
    if rows.len() > MAX_BUCKETS {
        return Ok(None);
    }
    let mut sqlite_totals = match backend {
        DbBackend::Postgres => None,
        _ => Some(sum_per_bucket(db, filter, bucket).await?),
    };
    rows.into_iter()
        .map(|row| {
            let start = DateTime::parse_from_rfc3339(&row.bucket)
                .map_err(|e| DbErr::Type(format!("bucket {:?}: {e}", row.bucket)))?
                .with_timezone(&Utc);
            let total_value = match sqlite_totals.as_mut() {
                Some(totals) => totals.remove(&row.bucket).unwrap_or_default().to_string(),
                None => row
                    .total_value
                    .map(|v| uint256::canonical(&v))
                    .unwrap_or_else(|| "0".into()),
            };
            Ok(VolumeBucket {
                start,
                count: row.count,
                total_value,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()
        .map(Some)
}

async fn sum_per_bucket(
    db: &DatabaseConnection,
    filter: &TransferFilter,
    bucket: &'static str,
) -> Result<std::collections::HashMap<String, BigUint>, DbErr> {
    use futures_util::TryStreamExt;
    let backend = db.get_database_backend();
    let mut stream = transfer::Entity::find()
        .select_only()
        .filter(filter.condition(backend))
        .filter(Expr::col(transfer::Column::BlockTimestamp).is_not_null())
        .column_as(Expr::cust(bucket), "bucket")
        .column(transfer::Column::Value)
        .into_tuple::<(String, String)>()
        .stream(db)
        .await?;
    let mut totals = std::collections::HashMap::new();
    while let Some((bucket, value)) = stream.try_next().await? {
        *totals.entry(bucket).or_insert_with(BigUint::default) += parse_stored(&value)?;
    }
    Ok(totals)
}
