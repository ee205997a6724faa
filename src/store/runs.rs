//! Ingestion runs: the queries over `ingest_runs`. Their states, modes and triggers are the
//! entity's enums ([`RunStatus`], [`RunMode`], [`RunTrigger`]).

use entity::ingest_run;
pub use entity::ingest_run::{RunMode, RunStatus, RunTrigger};
use sea_orm::sea_query::{Expr, ExprTrait, Order};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, QueryFilter, Set,
};

use crate::store::keyset::{KeyValue, Page, PageRequest, SortOrder};
use crate::store::upsert::UpsertCounts;

/// Newest first; the id is unique, so it alone is a complete keyset.
pub fn newest_first() -> SortOrder<ingest_run::Column> {
    SortOrder::new().then(ingest_run::Column::Id, Order::Desc)
}

pub fn cursor_values(run: &ingest_run::Model) -> Vec<KeyValue> {
    vec![KeyValue::Int(run.id)]
}

pub async fn get(db: &DatabaseConnection, id: i64) -> Result<Option<ingest_run::Model>, DbErr> {
    ingest_run::Entity::find_by_id(id).one(db).await
}

/// Opens a run that starts now (`running`), returning its id.
pub async fn start<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    trigger: RunTrigger,
    mode: RunMode,
) -> Result<i64, DbErr> {
    let now = chrono::Utc::now();
    let mut run = new_run(provider, trigger, mode, None);
    run.status = Set(RunStatus::Running);
    run.started_at = Set(Some(now));
    Ok(run.insert(db).await?.id)
}

/// A fresh `queued` run with zero counters.
fn new_run(
    provider: &str,
    trigger: RunTrigger,
    mode: RunMode,
    owner: Option<&str>,
) -> ingest_run::ActiveModel {
    ingest_run::ActiveModel {
        provider: Set(provider.to_string()),
        trigger: Set(trigger),
        mode: Set(mode),
        status: Set(RunStatus::Queued),
        queued_at: Set(chrono::Utc::now()),
        started_at: Set(None),
        finished_at: Set(None),
        pages: Set(0),
        fetched: Set(0),
        inserted: Set(0),
        updated: Set(0),
        unchanged: Set(0),
        superseded: Set(0),
        rejected: Set(0),
        error: Set(None),
        owner: Set(owner.map(str::to_string)),
        ..Default::default()
    }
}

/// What one committed batch adds to a run's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchProgress {
    pub pages: i64,
    pub fetched: i64,
    pub counts: UpsertCounts,
    pub rejected: i64,
}

/// Adds a batch's counts, in the batch's own transaction so counters always match the rows.
pub async fn add_batch<C: ConnectionTrait>(
    db: &C,
    id: i64,
    batch: BatchProgress,
) -> Result<(), DbErr> {
    use ingest_run::Column as R;
    ingest_run::Entity::update_many()
        .col_expr(R::Pages, Expr::col(R::Pages).add(batch.pages))
        .col_expr(R::Fetched, Expr::col(R::Fetched).add(batch.fetched))
        .col_expr(
            R::Inserted,
            Expr::col(R::Inserted).add(batch.counts.inserted as i64),
        )
        .col_expr(
            R::Updated,
            Expr::col(R::Updated).add(batch.counts.updated as i64),
        )
        .col_expr(
            R::Unchanged,
            Expr::col(R::Unchanged).add(batch.counts.unchanged as i64),
        )
        .col_expr(
            R::Superseded,
            Expr::col(R::Superseded).add(batch.counts.superseded as i64),
        )
        .col_expr(R::Rejected, Expr::col(R::Rejected).add(batch.rejected))
        .filter(R::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Moves `rows` the run counted inserted to superseded: a first load found them repeating a key
/// a later row of the same import had (see `first_load::finish`).
pub async fn supersede<C: ConnectionTrait>(db: &C, id: i64, rows: u64) -> Result<(), DbErr> {
    use ingest_run::Column as R;
    ingest_run::Entity::update_many()
        .col_expr(R::Inserted, Expr::col(R::Inserted).sub(rows as i64))
        .col_expr(R::Superseded, Expr::col(R::Superseded).add(rows as i64))
        .filter(R::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Closes a run with its final status and, for a failure, the reason.
pub async fn finish<C: ConnectionTrait>(
    db: &C,
    id: i64,
    status: RunStatus,
    error: Option<String>,
) -> Result<(), DbErr> {
    use ingest_run::Column as R;
    ingest_run::Entity::update_many()
        .col_expr(R::Status, Expr::value(status))
        .col_expr(R::FinishedAt, Expr::value(chrono::Utc::now()))
        .col_expr(R::Error, Expr::value(error))
        .filter(R::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// What a run still working is struggling with (a broker unreachable), or `None` once it is
/// past it.
pub async fn set_problem<C: ConnectionTrait>(
    db: &C,
    id: i64,
    problem: Option<String>,
) -> Result<(), DbErr> {
    use ingest_run::Column as R;
    ingest_run::Entity::update_many()
        .col_expr(R::Error, Expr::value(problem))
        .filter(R::Id.eq(id))
        .filter(R::Status.eq(RunStatus::Running))
        .exec(db)
        .await?;
    Ok(())
}

/// A provider's most recent run.
pub async fn last_for(
    db: &DatabaseConnection,
    provider: &str,
) -> Result<Option<ingest_run::Model>, DbErr> {
    use sea_orm::QueryOrder;
    ingest_run::Entity::find()
        .filter(ingest_run::Column::Provider.eq(provider))
        .order_by_desc(ingest_run::Column::Id)
        .one(db)
        .await
}

/// Records a run that is about to start (`queued`), returning it.
pub async fn queue<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    trigger: RunTrigger,
    mode: RunMode,
    owner: &str,
) -> Result<ingest_run::Model, DbErr> {
    new_run(provider, trigger, mode, Some(owner))
        .insert(db)
        .await
}

/// A queued run starts.
pub async fn mark_running<C: ConnectionTrait>(db: &C, id: i64) -> Result<(), DbErr> {
    use ingest_run::Column as R;
    ingest_run::Entity::update_many()
        .col_expr(R::Status, Expr::value(RunStatus::Running))
        .col_expr(R::StartedAt, Expr::value(chrono::Utc::now()))
        .filter(R::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Runs still marked queued or running: after a crash, the ones nobody finishes.
pub async fn unfinished(db: &DatabaseConnection) -> Result<Vec<ingest_run::Model>, DbErr> {
    ingest_run::Entity::find()
        .filter(ingest_run::Column::Status.is_in([RunStatus::Queued, RunStatus::Running]))
        .all(db)
        .await
}

/// What `ingestRuns(where: …)` may filter on.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub provider: Option<String>,
    pub status: Option<RunStatus>,
    pub started_at: crate::store::filter::RangeFilter<chrono::DateTime<chrono::Utc>>,
}

pub async fn list_filtered(
    db: &DatabaseConnection,
    filter: &RunFilter,
    page: &PageRequest,
) -> Result<Page<ingest_run::Model>, DbErr> {
    let mut select = ingest_run::Entity::find()
        .filter(filter.started_at.condition(ingest_run::Column::StartedAt));
    if let Some(provider) = &filter.provider {
        select = select.filter(crate::store::filter::text_eq(
            ingest_run::Column::Provider,
            provider,
        ));
    }
    if let Some(status) = filter.status {
        select = select.filter(ingest_run::Column::Status.eq(status));
    }
    let rows = page
        .apply(&newest_first(), db.get_database_backend(), select)
        .all(db)
        .await?;
    Ok(page.finish(rows))
}

/// Starts a batch's transaction by writing: on SQLite this takes the write lock at once, so a
/// concurrent writer makes the batch wait (busy timeout) instead of failing later with
/// SQLITE_BUSY_SNAPSHOT when its first read turns into a write. Nothing on PostgreSQL, where
/// it would hold the run's row for the whole batch and make an import's writers take turns.
pub async fn lock_for_batch<C: ConnectionTrait>(db: &C, id: i64) -> Result<(), DbErr> {
    use ingest_run::Column as R;
    if db.get_database_backend() == DbBackend::Postgres {
        return Ok(());
    }
    ingest_run::Entity::update_many()
        .col_expr(R::Pages, Expr::col(R::Pages))
        .filter(R::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Marks `provider`'s runs still queued or running as interrupted, with `reason`. Called by
/// whoever has just claimed the provider's lease: no live process is running them, so they were
/// left by one that died. Returns how many there were.
pub async fn interrupt_unfinished<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    reason: &str,
) -> Result<u64, DbErr> {
    use ingest_run::Column as R;
    let result = ingest_run::Entity::update_many()
        .col_expr(R::Status, Expr::value(RunStatus::Interrupted))
        .col_expr(R::FinishedAt, Expr::value(chrono::Utc::now()))
        .col_expr(R::Error, Expr::value(reason))
        .filter(R::Provider.eq(provider))
        .filter(R::Status.is_in([RunStatus::Queued, RunStatus::Running]))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
