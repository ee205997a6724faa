//! Events: the multi-row insert the group-commit writer uses, and the read queries.

use chrono::{DateTime, Utc};
use entity::event;
use sea_orm::sea_query::{Condition, Order};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, Statement,
    Value,
};

use super::arrays;
use super::filter::{RangeFilter, TextFilter};
use super::keyset::{KeyValue, Page, PageRequest, SortOrder};
use crate::events::NewEvent;

/// Stores `events` in one statement (PostgreSQL) or one per 4,000 events (SQLite), in the
/// caller's transaction or committed when this returns. An event whose id is already stored is
/// skipped (a Kafka message delivered twice): the count is of rows inserted.
pub async fn insert<C: ConnectionTrait>(db: &C, events: &[&NewEvent]) -> Result<u64, DbErr> {
    if events.is_empty() {
        return Ok(0);
    }
    match db.get_database_backend() {
        DbBackend::Postgres => insert_postgres(db, events).await,
        _ => insert_sqlite(db, events).await,
    }
}

/// Arrays in, one statement: one round trip per batch.
async fn insert_postgres<C: ConnectionTrait>(db: &C, events: &[&NewEvent]) -> Result<u64, DbErr> {
    const SQL: &str = r#"
        INSERT INTO events (event_id, ip_address, user_agent, referring_url, advertiser_id,
                            metadata, received_at)
        SELECT event_id, ip_address, user_agent, referring_url, advertiser_id, metadata::jsonb,
               'epoch'::timestamptz + micros * interval '1 microsecond'
        FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                    $7::int8[])
            AS i(event_id, ip_address, user_agent, referring_url, advertiser_id, metadata, micros)
        ON CONFLICT (event_id) DO NOTHING"#;
    let text = |f: &dyn Fn(&NewEvent) -> &str| arrays::texts(events.iter().map(|e| Some(f(e))));
    let ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
    let values = vec![
        arrays::texts(ids.iter().map(|id| Some(id.as_str()))),
        text(&|e| &e.ip_address),
        text(&|e| &e.user_agent),
        text(&|e| &e.referring_url),
        text(&|e| &e.advertiser_id),
        text(&|e| &e.metadata),
        arrays::micros(events.iter().map(|e| Some(e.received_at))),
    ];
    let result = db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            SQL,
            values,
        ))
        .await?;
    Ok(result.rows_affected())
}

/// SQLite: multi-row inserts of up to 4,000 events (28,000 parameters, under SQLite's 32,766),
/// each one statement: the writer's batches (`events.max_batch`) fit one.
async fn insert_sqlite<C: ConnectionTrait>(db: &C, events: &[&NewEvent]) -> Result<u64, DbErr> {
    let mut inserted = 0;
    for chunk in events.chunks(4_000) {
        let rows = vec!["(?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO events (event_id, ip_address, user_agent, referring_url, advertiser_id,
             metadata, received_at) VALUES {rows} ON CONFLICT (event_id) DO NOTHING"
        );
        let mut values = Vec::with_capacity(chunk.len() * 7);
        for e in chunk {
            values.extend([
                Value::from(e.id.to_string()),
                Value::from(e.ip_address.as_str()),
                Value::from(e.user_agent.as_str()),
                Value::from(e.referring_url.as_str()),
                Value::from(e.advertiser_id.as_str()),
                Value::from(e.metadata.as_str()),
                Value::from(e.received_at),
            ]);
        }
        inserted += db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                sql,
                values,
            ))
            .await?
            .rows_affected();
    }
    Ok(inserted)
}

/// What `events(where: …)` may filter on.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub advertiser_id: TextFilter,
    pub ip_address: TextFilter,
    pub received_at: RangeFilter<DateTime<Utc>>,
}

impl EventFilter {
    fn condition(&self) -> Condition {
        use event::Column as C;
        Condition::all()
            .add(self.advertiser_id.condition(C::AdvertiserId))
            .add(self.ip_address.condition(C::IpAddress))
            .add(self.received_at.condition(C::ReceivedAt))
    }
}

/// Newest first; the id breaks ties.
pub fn newest_first() -> SortOrder<event::Column> {
    SortOrder::new()
        .then(event::Column::ReceivedAt, Order::Desc)
        .then(event::Column::Id, Order::Desc)
}

pub fn cursor_values(e: &event::Model) -> Vec<KeyValue> {
    vec![KeyValue::Time(e.received_at), KeyValue::Int(e.id)]
}

pub async fn list(
    db: &DatabaseConnection,
    filter: &EventFilter,
    page: &PageRequest,
) -> Result<Page<event::Model>, DbErr> {
    let backend = db.get_database_backend();
    let select = event::Entity::find().filter(filter.condition());
    let rows = page.apply(&newest_first(), backend, select).all(db).await?;
    Ok(page.finish(rows))
}
