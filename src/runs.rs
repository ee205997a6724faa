//! Ingestion runs: their states and modes, and the queries over `ingest_runs`.

use entity::ingest_run;
use sea_orm::sea_query::Order;
use sea_orm::{DatabaseConnection, DbErr, EntityTrait};

use crate::keyset::{KeyValue, Page, PageRequest, SortOrder};

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
#[graphql(name = "IngestStatus")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// How a run treats what earlier runs left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
#[graphql(name = "IngestMode")]
pub enum RunMode {
    /// Continue from the provider's checkpoint.
    Incremental,
    /// Start from the beginning, ignoring the checkpoint.
    Full,
    /// Rebuild entity rows from stored raw payloads, without calling the provider.
    Renormalize,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            RunStatus::Queued,
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

impl RunMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::Incremental => "incremental",
            RunMode::Full => "full",
            RunMode::Renormalize => "renormalize",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [RunMode::Incremental, RunMode::Full, RunMode::Renormalize]
            .into_iter()
            .find(|m| m.as_str() == text)
    }
}

/// Newest first; the id is unique, so it alone is a complete keyset.
pub fn newest_first() -> SortOrder<ingest_run::Column> {
    SortOrder::new(vec![(ingest_run::Column::Id, Order::Desc)])
}

pub fn cursor_values(run: &ingest_run::Model) -> Vec<KeyValue> {
    vec![KeyValue::Int(run.id)]
}

pub async fn get(db: &DatabaseConnection, id: i64) -> Result<Option<ingest_run::Model>, DbErr> {
    ingest_run::Entity::find_by_id(id).one(db).await
}

pub async fn list(
    db: &DatabaseConnection,
    page: &PageRequest,
) -> Result<Page<ingest_run::Model>, DbErr> {
    let order = newest_first();
    let rows = page
        .apply(&order, ingest_run::Entity::find())
        .all(db)
        .await?;
    Ok(page.finish(rows))
}
