//! Generic dataset records: the bulk writer and the read queries.

use entity::record;
use sea_orm::sea_query::{Condition, Order};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, Statement, Value,
};
use serde_json::Value as Json;

use super::filter::TextFilter;
use super::keyset::{KeyValue, Page, PageRequest, SortOrder};
use super::upsert::{UpsertCounts, counted, last_wins, postgres_counted, values_placeholders};

/// One record to write.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    pub key: String,
    pub data: Json,
}

/// Rows per statement: 5 parameters each, under both databases' parameter limits.
const CHUNK: usize = 2_000;

/// Inserts new records and replaces changed ones, by `(dataset, key)`; the last record with a
/// key wins.
pub async fn upsert<C: ConnectionTrait>(
    db: &C,
    dataset: &str,
    provider: &str,
    records: &[NewRecord],
) -> Result<UpsertCounts, DbErr> {
    let mut counts = UpsertCounts::default();
    let kept = last_wins(records, |r| r.key.as_str(), &mut counts);
    let backend = db.get_database_backend();
    for indices in kept.chunks(CHUNK) {
        let rows: Vec<&NewRecord> = indices.iter().map(|&i| &records[i]).collect();
        let (data, differs) = match backend {
            DbBackend::Postgres => (
                "CAST(v.data AS jsonb)",
                "records.data IS DISTINCT FROM excluded.data",
            ),
            _ => ("v.data", "records.data IS NOT excluded.data"),
        };
        let updated_at = match backend {
            DbBackend::Postgres => "CAST(v.updated_at AS timestamptz)",
            _ => "v.updated_at",
        };
        let insert = format!(
            "INSERT INTO records (dataset, key, data, provider, updated_at)
             SELECT v.dataset, v.key, {data}, v.provider, {updated_at} FROM v WHERE true
             ON CONFLICT (dataset, key) DO UPDATE SET data = excluded.data,
                 provider = excluded.provider, updated_at = excluded.updated_at
             WHERE {differs}"
        );
        let input = format!(
            "v (dataset, key, data, provider, updated_at) AS (VALUES {})",
            values_placeholders(backend, rows.len(), 5)
        );
        let now = chrono::Utc::now();
        let mut values = Vec::with_capacity(rows.len() * 5);
        for r in &rows {
            values.extend([
                Value::from(dataset),
                Value::from(r.key.clone()),
                // Serialized here so both databases receive the same text.
                Value::from(r.data.to_string()),
                Value::from(provider),
                Value::from(now),
            ]);
        }
        if backend == DbBackend::Postgres {
            let with_written =
                format!("WITH {input}, written AS ({insert} RETURNING (xmax = 0) AS inserted)");
            counts.add(postgres_counted(db, with_written, values, rows.len() as u64).await?);
            continue;
        }
        let keys: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
        let existing = record::Entity::find()
            .filter(record::Column::Dataset.eq(dataset))
            .filter(record::Column::Key.is_in(keys))
            .count(db)
            .await?;
        let changed = db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                format!("WITH {input} {insert}"),
                values,
            ))
            .await?
            .rows_affected();
        counts.add(counted(rows.len() as u64, existing, changed));
    }
    Ok(counts)
}

/// Key order: the natural key is unique within a dataset.
pub fn order() -> SortOrder<record::Column> {
    SortOrder::new().then(record::Column::Key, Order::Asc)
}

pub fn cursor_values(r: &record::Model) -> Vec<KeyValue> {
    vec![KeyValue::Text(r.key.clone())]
}

/// A page of a dataset's records; those deleted upstream only with `include_deleted`.
pub async fn list(
    db: &DatabaseConnection,
    dataset: &str,
    key: &TextFilter,
    include_deleted: bool,
    page: &PageRequest,
) -> Result<Page<record::Model>, DbErr> {
    let mut condition = Condition::all()
        .add(super::filter::text_eq(record::Column::Dataset, dataset))
        .add(key.condition(record::Column::Key));
    if !include_deleted {
        condition = condition.add(record::Column::DeletedAt.is_null());
    }
    let select = record::Entity::find().filter(condition);
    let rows = page
        .apply(&order(), db.get_database_backend(), select)
        .all(db)
        .await?;
    Ok(page.finish(rows))
}

pub async fn count(db: &DatabaseConnection, dataset: &str) -> Result<u64, DbErr> {
    record::Entity::find()
        .filter(record::Column::Dataset.eq(dataset))
        .count(db)
        .await
}

/// How many records a provider wrote (across its dataset).
pub async fn count_of_provider(db: &DatabaseConnection, provider: &str) -> Result<u64, DbErr> {
    record::Entity::find()
        .filter(record::Column::Provider.eq(provider))
        .count(db)
        .await
}

/// Marks the records with these keys as seen by `run_id` (and not deleted: a record back
/// upstream is back here), for a provider with `on_missing = "mark_deleted"`.
pub async fn mark_seen<C: ConnectionTrait>(
    db: &C,
    dataset: &str,
    run_id: i64,
    keys: &[String],
) -> Result<(), DbErr> {
    for chunk in keys.chunks(CHUNK) {
        record::Entity::update_many()
            .col_expr(record::Column::SeenRunId, run_id.into())
            .col_expr(
                record::Column::DeletedAt,
                Option::<chrono::DateTime<chrono::Utc>>::None.into(),
            )
            .filter(record::Column::Dataset.eq(dataset))
            .filter(record::Column::Key.is_in(chunk.iter().cloned()))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// After a complete run of `provider` into `dataset`: its records that run did not see are
/// marked deleted now. Returns how many.
pub async fn mark_unseen_deleted<C: ConnectionTrait>(
    db: &C,
    dataset: &str,
    provider: &str,
    run_id: i64,
) -> Result<u64, DbErr> {
    let result = record::Entity::update_many()
        .col_expr(record::Column::DeletedAt, chrono::Utc::now().into())
        .filter(record::Column::Dataset.eq(dataset))
        .filter(record::Column::Provider.eq(provider))
        .filter(record::Column::DeletedAt.is_null())
        .filter(
            Condition::any()
                .add(record::Column::SeenRunId.is_null())
                .add(record::Column::SeenRunId.ne(run_id)),
        )
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
