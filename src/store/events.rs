//! Events: the multi-row insert the group-commit writer uses, and the read queries.

use chrono::{DateTime, Utc};
use entity::event;
use sea_orm::sea_query::{Condition, Order};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, Statement,
    TransactionTrait, Value,
};

use super::arrays;
use super::filter::{RangeFilter, TextFilter};
use super::keyset::{KeyValue, Page, PageRequest, SortOrder};
use crate::events::NewEvent;

/// Stores `events` in one statement (PostgreSQL) or one transaction (SQLite), committed when
/// this returns, and gives their ids in input order.
pub async fn insert(db: &DatabaseConnection, events: &[&NewEvent]) -> Result<Vec<i64>, DbErr> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    match db.get_database_backend() {
        DbBackend::Postgres => insert_postgres(db, events).await,
        _ => insert_sqlite(db, events).await,
    }
}

/// Arrays in, ids out: the ids are drawn in the `input` CTE (evaluated once) and read back from
/// it in input order, so they never depend on the order `RETURNING` would give. A single
/// statement commits on its own: one round trip per batch.
async fn insert_postgres(db: &DatabaseConnection, events: &[&NewEvent]) -> Result<Vec<i64>, DbErr> {
    const SQL: &str = r#"
        WITH input AS (
            SELECT nextval('events_id_seq') AS id, i.*
            FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[])
                WITH ORDINALITY AS i(ip_address, user_agent, referring_url, advertiser_id,
                                     metadata, micros, n)
        ),
        inserted AS (
            INSERT INTO events (id, ip_address, user_agent, referring_url, advertiser_id,
                                metadata, received_at)
            SELECT id, ip_address, user_agent, referring_url, advertiser_id, metadata::jsonb,
                   'epoch'::timestamptz + micros * interval '1 microsecond'
            FROM input
        )
        SELECT id FROM input ORDER BY n"#;
    let text = |f: &dyn Fn(&NewEvent) -> &str| arrays::texts(events.iter().map(|e| Some(f(e))));
    let values = vec![
        text(&|e| &e.ip_address),
        text(&|e| &e.user_agent),
        text(&|e| &e.referring_url),
        text(&|e| &e.advertiser_id),
        text(&|e| &e.metadata),
        arrays::micros(events.iter().map(|e| Some(e.received_at))),
    ];
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            SQL,
            values,
        ))
        .await?;
    rows.iter()
        .map(|row| row.try_get::<i64>("", "id"))
        .collect()
}

/// SQLite: one insert per event in one transaction (SQLite serializes writers anyway, and its
/// `RETURNING` order is unspecified for multi-row inserts).
async fn insert_sqlite(db: &DatabaseConnection, events: &[&NewEvent]) -> Result<Vec<i64>, DbErr> {
    const SQL: &str = "INSERT INTO events (ip_address, user_agent, referring_url, advertiser_id,
        metadata, received_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id";
    let txn = db.begin().await?;
    let mut ids = Vec::with_capacity(events.len());
    for e in events {
        let row = txn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                SQL,
                [
                    Value::from(e.ip_address.as_str()),
                    Value::from(e.user_agent.as_str()),
                    Value::from(e.referring_url.as_str()),
                    Value::from(e.advertiser_id.as_str()),
                    Value::from(e.metadata.as_str()),
                    Value::from(e.received_at),
                ],
            ))
            .await?
            .ok_or_else(|| DbErr::RecordNotInserted)?;
        ids.push(row.try_get::<i64>("", "id")?);
    }
    txn.commit().await?;
    Ok(ids)
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
