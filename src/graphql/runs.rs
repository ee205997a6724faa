//! Ingestion runs over GraphQL.

use async_graphql::{Context, Enum, ID, Object};
use entity::ingest_run;

use super::db::db;
use super::error::{ApiError, ApiResult};
use super::scalars::DateTime;
use crate::store::runs;

/// Where a run is in its life.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "entity::ingest_run::RunStatus")]
pub enum IngestStatus {
    Queued,
    Running,
    Succeeded,
    /// Ended by an error, named in `error`.
    Failed,
    /// Stopped by `cancelIngest`; what it committed stays.
    Cancelled,
    /// The server running it stopped or lost its lease; the next incremental run resumes from
    /// its checkpoint. `error` says what stopped it.
    Interrupted,
}

/// How a run treats what earlier runs left behind.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "entity::ingest_run::RunMode")]
pub enum IngestMode {
    /// Continue from the provider's checkpoint.
    Incremental,
    /// Start from the beginning, ignoring the checkpoint.
    Full,
    /// Rebuild entity rows from stored raw payloads, without calling the provider.
    Renormalize,
}

/// One ingestion run of one provider.
pub struct IngestRun(pub ingest_run::Model);

#[Object]
impl IngestRun {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn provider(&self) -> &str {
        &self.0.provider
    }
    /// What started it: `schedule`, `manual` (`triggerIngest`), `cli`, `startup` (the bundled
    /// sample), `resume` (continuing an interrupted run) or `push`.
    async fn trigger(&self) -> &'static str {
        self.0.trigger.as_str()
    }
    async fn mode(&self) -> IngestMode {
        self.0.mode.into()
    }
    async fn status(&self) -> IngestStatus {
        self.0.status.into()
    }
    async fn queued_at(&self) -> DateTime {
        self.0.queued_at.into()
    }
    async fn started_at(&self) -> Option<DateTime> {
        self.0.started_at.map(Into::into)
    }
    async fn finished_at(&self) -> Option<DateTime> {
        self.0.finished_at.map(Into::into)
    }
    /// Pages (or file chunks) read.
    async fn pages(&self) -> i64 {
        self.0.pages
    }
    /// Records read from the provider.
    async fn fetched(&self) -> i64 {
        self.0.fetched
    }
    async fn inserted(&self) -> i64 {
        self.0.inserted
    }
    async fn updated(&self) -> i64 {
        self.0.updated
    }
    /// Records identical to what was already stored.
    async fn unchanged(&self) -> i64 {
        self.0.unchanged
    }
    /// Records not written because a later record with the same key in the same input (a
    /// batch, or an imported file) replaced them.
    async fn superseded(&self) -> i64 {
        self.0.superseded
    }
    /// Records that went to `rejectedRecords`.
    async fn rejected(&self) -> i64 {
        self.0.rejected
    }
    /// Why the run failed.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
}

#[derive(Default)]
pub struct RunQuery;

#[Object]
impl RunQuery {
    /// One run by id; null when there is none.
    async fn ingest_run(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<IngestRun>> {
        let db = db(ctx);
        let number: i64 = id.parse().map_err(|_| {
            ApiError::bad_input(format!(
                "`id` must be a run id such as \"42\", got {:?}",
                id.0
            ))
        })?;
        Ok(runs::get(db, number).await?.map(IngestRun))
    }
}
