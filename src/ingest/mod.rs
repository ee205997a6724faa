//! One ingestion run of one provider: fetch pages from its source, turn raw records into
//! entity rows, and commit each batch — rows, raw payloads, rejections, the run's counters and
//! the checkpoint to resume from — in one transaction. A run killed at any moment resumes from
//! its last committed batch and ends with the rows a clean run gives.

mod consume;
pub mod dry_run;
mod prepare;
mod write;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use serde_json::Value as Json;
use tokio::sync::mpsc;

pub use self::prepare::Prepared;
pub use self::write::Item;
use self::write::{Batch, write_batch};
use crate::hosts::HostRules;
use crate::providers::definition::{HttpSource, OnMissing};
use crate::providers::{Provider, Source};
use crate::sources::file::FileReader;
use crate::sources::incremental::{Format, Mark, Step};
use crate::sources::listing::{Checkpoint, Listing, ListingError, Since};
use crate::sources::outbound::Outbound;
use crate::store::provider_state;
use crate::store::runs::{self, RunMode, RunStatus, RunTrigger};
use crate::store::upsert::UpsertCounts;
use crate::task::AbortOnDrop;

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub run_id: i64,
    pub status: RunStatus,
    pub pages: u64,
    pub fetched: u64,
    pub counts: UpsertCounts,
    pub rejected: u64,
    pub error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Provider(String),
    #[error(transparent)]
    Listing(#[from] ListingError),
    /// Shown without the driver's detail, which may quote a URL.
    #[error("database: {}", crate::db::brief(.0))]
    Database(#[from] DbErr),
}

/// Asked to stop at the next batch boundary (what was committed stays), and why: a user's
/// cancel ends the run `cancelled`; a shutdown or a lost lease ends it `interrupted`, so the
/// next run resumes from its checkpoint.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicU8>);

/// Why a run was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `cancelIngest`, or Ctrl-C on `tributary ingest`.
    User,
    /// The server is shutting down.
    Shutdown,
    /// Another replica holds the provider's lease now.
    LeaseLost,
}

impl Cancel {
    /// A user's cancel.
    pub fn cancel(&self) {
        self.stop(StopReason::User);
    }

    /// Asks the run to stop; the first reason given is the one recorded.
    pub fn stop(&self, reason: StopReason) {
        let code = match reason {
            StopReason::User => 1,
            StopReason::Shutdown => 2,
            StopReason::LeaseLost => 3,
        };
        let _ = self
            .0
            .compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.reason().is_some()
    }

    pub fn reason(&self) -> Option<StopReason> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            1 => Some(StopReason::User),
            2 => Some(StopReason::Shutdown),
            _ => Some(StopReason::LeaseLost),
        }
    }

    /// How a run stopped this way ends, and the reason recorded with it.
    fn outcome(&self) -> (RunStatus, Option<String>) {
        match self.reason() {
            Some(StopReason::Shutdown) => (
                RunStatus::Interrupted,
                Some("the server shut down; the next run resumes from its checkpoint".into()),
            ),
            Some(StopReason::LeaseLost) => (
                RunStatus::Interrupted,
                Some("another replica took over the provider's lease".into()),
            ),
            _ => (RunStatus::Cancelled, None),
        }
    }
}

/// Progress after each committed batch, for progress bars.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub pages: u64,
    pub fetched: u64,
    pub rejected: u64,
}

/// Everything one run works with: the database, the provider, the server's rules for what it
/// may reach and how hosts merge, how it treats what earlier runs left, and the caller's cancel
/// flag and progress callback.
pub struct RunContext<'a> {
    pub db: &'a DatabaseConnection,
    pub provider: &'a Provider,
    /// How `host` observations are matched and merged.
    pub host_rules: &'a HostRules,
    /// Which addresses the provider's requests may reach.
    pub outbound: &'a Outbound,
    pub mode: RunMode,
    pub cancel: &'a Cancel,
    /// Called after each committed batch.
    pub on_progress: &'a (dyn Fn(Progress) + Send + Sync),
}

/// Runs the provider once, recording the run in `ingest_runs` under `trigger`.
pub async fn run(ctx: &RunContext<'_>, trigger: RunTrigger) -> Result<RunSummary, IngestError> {
    let run_id = runs::start(ctx.db, &ctx.provider.name, trigger, ctx.mode).await?;
    run_with_id(ctx, run_id).await
}

/// Runs the provider as the already created run `run_id` (queued by a trigger).
pub async fn run_with_id(ctx: &RunContext<'_>, run_id: i64) -> Result<RunSummary, IngestError> {
    let mut summary = RunSummary {
        run_id,
        status: RunStatus::Running,
        pages: 0,
        fetched: 0,
        counts: UpsertCounts::default(),
        rejected: 0,
        error: None,
    };
    // Whether the run listed the source whole: from its start, not from a mark.
    let mut whole = false;
    let outcome = drive(ctx, run_id, &mut summary, &mut whole).await;
    let (status, error) = match outcome {
        Ok(true) => (RunStatus::Succeeded, None),
        Ok(false) => ctx.cancel.outcome(),
        Err(error) => (RunStatus::Failed, Some(error.to_string())),
    };
    let name = &ctx.provider.name;
    if status == RunStatus::Succeeded {
        // A complete run leaves nothing to resume: the next one starts at the beginning.
        provider_state::set_checkpoint(ctx.db, name, run_id, None).await?;
        if whole && ctx.provider.def.on_missing == OnMissing::MarkDeleted {
            let dataset = ctx.provider.def.dataset.as_deref().unwrap_or(name);
            let deleted =
                crate::store::records::mark_unseen_deleted(ctx.db, dataset, name, run_id).await?;
            if deleted > 0 {
                tracing::info!(provider = %name, run_id, deleted, "records no longer upstream marked deleted");
            }
        }
    }
    runs::finish(ctx.db, run_id, status, error.clone()).await?;
    match (&error, status) {
        (Some(error), RunStatus::Interrupted) => {
            tracing::info!(provider = %name, run_id, reason = %error, "ingest run interrupted")
        }
        (Some(error), _) => tracing::warn!(provider = %name, run_id, %error, "ingest run failed"),
        (None, _) => {}
    }
    summary.status = status;
    summary.error = error;
    Ok(summary)
}

/// The run's work; `Ok(false)` when cancelled.
async fn drive(
    ctx: &RunContext<'_>,
    run_id: i64,
    summary: &mut RunSummary,
    whole: &mut bool,
) -> Result<bool, IngestError> {
    let RunContext {
        db,
        provider,
        cancel,
        on_progress,
        ..
    } = *ctx;
    let prepared = Arc::new(
        Prepared::new(provider, ctx.host_rules, ctx.outbound).map_err(IngestError::Provider)?,
    );
    if ctx.mode == RunMode::Renormalize {
        return renormalize(ctx, &prepared, run_id, summary).await;
    }
    let checkpoint = match ctx.mode {
        RunMode::Incremental => provider_state::checkpoint(db, &provider.name).await?,
        _ => None,
    };
    // A batch, its checkpoint and (for an incremental provider) the high-water mark when the
    // batch raised it past `mark`, in one transaction.
    let commit = |batch: Batch, next: Option<Json>, mark: Option<Mark>| {
        let prepared = &prepared;
        async move {
            let txn = db.begin().await?;
            let written = write_batch(&txn, prepared, run_id, batch).await?;
            let name = &prepared.provider.name;
            provider_state::set_checkpoint(&txn, name, run_id, next).await?;
            if let Some(raised) = &written.cursor
                && mark.as_ref().is_none_or(|m| raised.after(m))
            {
                provider_state::set_cursor(&txn, name, Some(raised.stored())).await?;
            }
            txn.commit().await?;
            Ok::<_, IngestError>(written)
        }
    };
    match &provider.def.source {
        Source::Http(source) => {
            let resume = checkpoint.and_then(Checkpoint::read);
            *whole =
                resume.is_none() && (source.incremental.is_none() || ctx.mode == RunMode::Full);
            let (since, mut mark) = incremental_start(ctx, source, resume.as_ref()).await?;
            let listing = prepared.listing(resume.map(|c| c.at), since)?;
            // The next page is fetched while this one is written: one page waits at most, so
            // memory stays bounded and a slow database slows the fetching.
            let (sender, mut pages) = mpsc::channel(1);
            let fetcher = AbortOnDrop(tokio::spawn(fetch_pages(prepared.clone(), listing, sender)));
            while let Some(fetched) = pages.recv().await {
                let (items, next) = fetched?;
                let batch = prepared.batch_items(items);
                let written = commit(batch, next, mark.clone()).await?;
                if let Some(raised) = &written.cursor
                    && mark.as_ref().is_none_or(|m| raised.after(m))
                {
                    mark = Some(raised.clone());
                }
                summary.add(&written);
                on_progress(summary.progress());
                if cancel.is_cancelled() {
                    return Ok(false);
                }
            }
            drop(fetcher);
        }
        Source::File(source) => {
            let skip = checkpoint
                .and_then(|c| c.get("records").and_then(Json::as_u64))
                .unwrap_or(0);
            *whole = skip == 0;
            let mut reader = FileReader::open(provider, source, skip, ctx.outbound)
                .await
                .map_err(IngestError::Provider)?;
            while let Some(chunk) = reader.next_chunk().await.map_err(IngestError::Provider)? {
                let batch = prepared.batch_items(chunk.items);
                let next = Some(serde_json::json!({ "records": chunk.consumed }));
                let written = commit(batch, next, None).await?;
                summary.add(&written);
                on_progress(summary.progress());
                if cancel.is_cancelled() {
                    return Ok(false);
                }
            }
        }
        Source::Push(_) => {
            return Err(IngestError::Provider(format!(
                "{} is a push provider: records arrive at POST /ingest/{}",
                provider.name, provider.name
            )));
        }
        Source::Kafka(_) => return consume::consume(ctx, prepared.clone(), run_id, summary).await,
    }
    Ok(true)
}

/// A page's records (after follow-up fetches) and the checkpoint that follows it.
type FetchedItems = (Vec<write::Item>, Option<Json>);

/// Walks the listing on its own task, handing pages over in order.
async fn fetch_pages(
    prepared: Arc<Prepared>,
    mut listing: Listing,
    sender: mpsc::Sender<Result<FetchedItems, IngestError>>,
) {
    loop {
        let fetched = match listing.next_page().await {
            Ok(Some(page)) => match prepared.follow(listing.client(), page.records).await {
                Ok(items) => {
                    let next = page
                        .next
                        .as_ref()
                        .and_then(|p| serde_json::to_value(listing.checkpoint(p)).ok());
                    Ok((items, next))
                }
                Err(error) => Err(IngestError::from(ListingError::AtPage {
                    page: listing.pages(),
                    error: Box::new(ListingError::from(error)),
                })),
            },
            Ok(None) => return,
            Err(error) => Err(IngestError::from(error)),
        };
        let failed = fetched.is_err();
        if sender.send(fetched).await.is_err() || failed {
            return;
        }
    }
}

/// Where an incremental listing starts, and the mark the run raises: a resumed run asks from
/// where the run it continues asked; an `INCREMENTAL` run from the stored mark less
/// `lookback` (from `initial` when there is none); a `FULL` run from `initial`, and it sets
/// the mark anew.
async fn incremental_start(
    ctx: &RunContext<'_>,
    source: &HttpSource,
    resume: Option<&Checkpoint>,
) -> Result<(Option<Since>, Option<Mark>), IngestError> {
    let Some(inc) = &source.incremental else {
        return Ok((None, None));
    };
    let bad = |key: &str, e: String| IngestError::Provider(format!("{key}: {e}"));
    let initial = Mark::of_config(&inc.initial);
    let kind = initial.kind();
    let format = Format::of_config(inc.format.as_deref(), kind)
        .map_err(|e| bad("source.incremental.format", e))?;
    let stored = match ctx.mode {
        RunMode::Full => None,
        _ => match provider_state::cursor(ctx.db, &ctx.provider.name).await? {
            Some(text) => Some(Mark::parse(kind, &text).map_err(|e| {
                bad(
                    "stored cursor",
                    format!("{e}; set it with resetProviderCursor"),
                )
            })?),
            None => None,
        },
    };
    let resumed = resume
        .and_then(|c| c.since.as_deref())
        .map(|text| Mark::parse(kind, text).map_err(|e| bad("checkpoint", e)))
        .transpose()?;
    let start = match (resumed, &stored) {
        (Some(resumed), _) => resumed,
        (None, Some(mark)) => match &inc.lookback {
            Some(lookback) => {
                let step = Step::of_config(lookback, kind)
                    .map_err(|e| bad("source.incremental.lookback", e))?;
                mark.moved(&step, -1)
            }
            None => mark.clone(),
        },
        (None, None) => initial,
    };
    let since = Since {
        mark: start,
        format,
        param: inc.param.clone(),
    };
    Ok((Some(since), stored))
}

/// Rebuilds entity rows from stored raw payloads, without calling the provider.
async fn renormalize(
    ctx: &RunContext<'_>,
    prepared: &Prepared,
    run_id: i64,
    summary: &mut RunSummary,
) -> Result<bool, IngestError> {
    let db = ctx.db;
    let mut after = 0;
    loop {
        let page = crate::store::raw::page(db, &prepared.provider.name, after, 1_000).await?;
        let Some(last) = page.last() else {
            return Ok(true);
        };
        after = last.id;
        let raws = page.into_iter().map(|r| r.payload).collect();
        let mut batch = prepared.batch(raws);
        batch.renormalize = true;
        let txn = db.begin().await?;
        let written = write_batch(&txn, prepared, run_id, batch).await?;
        txn.commit().await?;
        summary.add(&written);
        (ctx.on_progress)(summary.progress());
        if ctx.cancel.is_cancelled() {
            return Ok(false);
        }
    }
}

impl RunSummary {
    fn add(&mut self, written: &write::Written) {
        self.pages += 1;
        self.fetched += written.fetched;
        self.counts.add(written.counts);
        self.rejected += written.rejected;
    }

    fn progress(&self) -> Progress {
        Progress {
            pages: self.pages,
            fetched: self.fetched,
            rejected: self.rejected,
        }
    }
}

/// Records POSTed to a push provider: written as one run and one transaction, so a request is
/// stored whole or not at all (its bad records go to `rejected_records` and are counted). The
/// run's row is written in that transaction too (one commit per request, not three); a batch
/// that fails is recorded as a failed run of its own afterwards.
pub async fn push(
    db: &DatabaseConnection,
    provider: &Provider,
    rules: &HostRules,
    records: Vec<Json>,
) -> Result<RunSummary, IngestError> {
    // A push provider makes no requests: no address to allow.
    let prepared =
        Prepared::new(provider, rules, &Outbound::default()).map_err(IngestError::Provider)?;
    let txn = db.begin().await?;
    let outcome = async {
        let run_id =
            runs::start(&txn, &provider.name, RunTrigger::Push, RunMode::Incremental).await?;
        let written = write_batch(&txn, &prepared, run_id, prepared.batch(records)).await?;
        runs::finish(&txn, run_id, RunStatus::Succeeded, None).await?;
        txn.commit().await?;
        Ok::<_, DbErr>((run_id, written))
    }
    .await;
    let (run_id, status, written, error) = match outcome {
        Ok((run_id, written)) => (run_id, RunStatus::Succeeded, written, None),
        Err(error) => {
            let error = Some(crate::db::brief(&error));
            let run_id =
                runs::start(db, &provider.name, RunTrigger::Push, RunMode::Incremental).await?;
            runs::finish(db, run_id, RunStatus::Failed, error.clone()).await?;
            (run_id, RunStatus::Failed, write::Written::default(), error)
        }
    };
    let mut summary = RunSummary {
        run_id,
        status,
        pages: 0,
        fetched: 0,
        counts: UpsertCounts::default(),
        rejected: 0,
        error,
    };
    summary.add(&written);
    Ok(summary)
}
