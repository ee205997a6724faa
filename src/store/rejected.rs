//! Records that could not be stored, kept with the reason and where they came from.

use entity::rejected_record;
use sea_orm::sea_query::Order;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
};

use super::keyset::{KeyValue, Page, PageRequest, SortOrder};
use super::nul;

/// One rejection to store. Text with NUL characters is kept with U+FFFD in their place (see
/// [`nul`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRejection {
    pub external_id: Option<String>,
    /// 1-based line of a file, when the input was a file.
    pub line: Option<i64>,
    pub reason: String,
    pub payload: Option<String>,
    /// The Kafka message it came from, when the input was a topic.
    pub message: Option<MessageAt>,
}

/// Where a message is: topic, partition and offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAt {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Rows per statement: 7 parameters each, under both databases' parameter limits.
const CHUNK: usize = 2_000;

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    run_id: Option<i64>,
    rejections: &[NewRejection],
) -> Result<(), DbErr> {
    let now = chrono::Utc::now();
    for chunk in rejections.chunks(CHUNK) {
        let rows = chunk.iter().map(|r| rejected_record::ActiveModel {
            provider: Set(provider.to_string()),
            run_id: Set(run_id),
            external_id: Set(r
                .external_id
                .as_deref()
                .map(|t| nul::replaced(t).into_owned())),
            line: Set(r.line),
            message_topic: Set(r
                .message
                .as_ref()
                .map(|m| nul::replaced(&m.topic).into_owned())),
            message_partition: Set(r.message.as_ref().map(|m| m.partition)),
            message_offset: Set(r.message.as_ref().map(|m| m.offset)),
            reason: Set(nul::replaced(&r.reason).into_owned()),
            payload: Set(r.payload.as_deref().map(|t| nul::replaced(t).into_owned())),
            created_at: Set(now),
            ..Default::default()
        });
        rejected_record::Entity::insert_many(rows).exec(db).await?;
    }
    Ok(())
}

/// What `rejectedRecords(where: …)` may filter on.
#[derive(Debug, Clone, Default)]
pub struct RejectionFilter {
    pub provider: Option<String>,
    pub run_id: Option<i64>,
}

/// Newest first; the id is unique, so it alone is a complete keyset.
pub fn newest_first() -> SortOrder<rejected_record::Column> {
    SortOrder::new().then(rejected_record::Column::Id, Order::Desc)
}

pub fn cursor_values(r: &rejected_record::Model) -> Vec<KeyValue> {
    vec![KeyValue::Int(r.id)]
}

pub async fn list(
    db: &DatabaseConnection,
    filter: &RejectionFilter,
    page: &PageRequest,
) -> Result<Page<rejected_record::Model>, DbErr> {
    let mut select = rejected_record::Entity::find();
    if let Some(provider) = &filter.provider {
        select = select.filter(super::filter::text_eq(
            rejected_record::Column::Provider,
            provider,
        ));
    }
    if let Some(run_id) = filter.run_id {
        select = select.filter(rejected_record::Column::RunId.eq(run_id));
    }
    let rows = page
        .apply(&newest_first(), db.get_database_backend(), select)
        .all(db)
        .await?;
    Ok(page.finish(rows))
}
