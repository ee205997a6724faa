//! The ingestion control plane over GraphQL: providers and their state, runs, rejected
//! records, triggering and cancelling runs, and live run updates.

use std::time::Duration;

use async_graphql::futures_util::Stream;
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use croner::parser::{CronParser, Seconds, Year};
use entity::{kafka_offset, rejected_record};

use super::connection::{Page, PageArgs, list};
use super::db::db;
use super::error::{ApiError, ApiResult};
use super::filters::{DateTimeFilterInput, optional};
use super::runs::IngestRun;
use super::runs::{IngestMode, IngestStatus};
use super::scalars::DateTime;
use crate::auth::{Caller, Policy};
use crate::db::replicas::Replicas;
use crate::providers::{EntityKind, Provider, Source};
use crate::runner::{ProviderEntry, Reloaded, Runner, RunnerError};
use crate::sources::incremental::Mark;
use crate::store::rejected::{self, RejectionFilter};
use crate::store::runs::{self, RunFilter, RunTrigger};
use crate::store::{kafka_offsets, leases, provider_state, raw, records};

/// One provider as the server runs it: a file's definition, and why the file as it is now
/// does not load, if it does not.
pub struct ProviderInfo(ProviderEntry);

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Http,
    File,
    Push,
    Kafka,
}

impl ProviderInfo {
    fn def(&self) -> Option<&Provider> {
        self.0.provider.as_ref()
    }
}

/// A file that never loaded shows its name and `error`; its definition's fields are null (and
/// `enabled` false): the server has no definition of it to run.
#[Object(name = "Provider")]
impl ProviderInfo {
    /// The provider's name; for a file that never loaded, its file name without `.toml`.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Why the provider's file, as it is now, does not load (each problem on a line, naming
    /// the file and key); null when it loads. The last definition that loaded, if any, is the
    /// one shown and run.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// Null when the file never loaded.
    async fn kind(&self) -> Option<SourceKind> {
        Some(match self.def()?.source_kind() {
            "http" => SourceKind::Http,
            "file" => SourceKind::File,
            "kafka" => SourceKind::Kafka,
            _ => SourceKind::Push,
        })
    }
    /// `token`, `transfer`, `product` or `record`; null when the file never loaded.
    async fn entity(&self) -> Option<String> {
        Some(format!("{:?}", self.def()?.def.entity).to_lowercase())
    }
    async fn dataset(&self) -> Option<&str> {
        self.def()?.def.dataset.as_deref()
    }
    /// Cron expression with seconds; null: runs only when triggered.
    async fn schedule(&self) -> Option<&str> {
        self.def()?.def.schedule.as_deref()
    }
    async fn enabled(&self) -> bool {
        self.def().is_some_and(|p| p.def.enabled)
    }
    /// The incremental high-water mark stored for it (`[source.incremental]`), as text; null
    /// when none is stored.
    async fn cursor(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        let db = db(ctx);
        Ok(provider_state::cursor(db, &self.0.name).await?)
    }
    /// When the schedule fires next (UTC).
    async fn next_fire_time(&self) -> Option<DateTime> {
        let def = &self.def()?.def;
        let schedule = def.schedule.as_deref()?;
        if !def.enabled {
            return None;
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Disallowed)
            .dom_and_dow(true)
            .build()
            .parse(schedule)
            .ok()?;
        cron.find_next_occurrence(&chrono::Utc::now(), false)
            .ok()
            .map(Into::into)
    }
    /// The replica running it now, if any.
    async fn lease_holder(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        let db = db(ctx);
        Ok(leases::holder(db, &self.0.name).await?)
    }
    /// A paused `kafka` provider is consumed by no replica (`cancelIngest` pauses it,
    /// `triggerIngest` resumes it).
    async fn paused(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        let db = db(ctx);
        Ok(provider_state::paused(db, &self.0.name).await?)
    }
    /// For a `kafka` provider: each partition it has consumed or owns, in topic and partition
    /// order.
    async fn partitions(&self, ctx: &Context<'_>) -> ApiResult<Vec<KafkaPartition>> {
        let db = db(ctx);
        Ok(kafka_offsets::list(db, &self.0.name)
            .await?
            .into_iter()
            .map(KafkaPartition)
            .collect())
    }
    async fn last_run(&self, ctx: &Context<'_>) -> ApiResult<Option<IngestRun>> {
        let db = db(ctx);
        Ok(runs::last_for(db, &self.0.name).await?.map(IngestRun))
    }
    /// Rows it owns: dataset records for `record` providers, stored raw payloads otherwise.
    async fn row_count(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        let db = db(ctx);
        let Some(provider) = self.def() else {
            return Ok(0);
        };
        let n = match provider.def.entity {
            EntityKind::Record => records::count_of_provider(db, &self.0.name).await?,
            _ => raw::count_of_provider(db, &self.0.name).await?,
        };
        Ok(n as i64)
    }
}

/// Where a `kafka` provider is in one partition.
pub struct KafkaPartition(kafka_offset::Model);

#[Object]
impl KafkaPartition {
    async fn topic(&self) -> &str {
        &self.0.topic
    }
    async fn partition(&self) -> i32 {
        self.0.partition
    }
    /// The replica consuming it (as `IngestRun.owner` names it), when last seen.
    async fn owner(&self) -> Option<&str> {
        self.0.owner.as_deref()
    }
    async fn owner_seen_at(&self) -> Option<DateTime> {
        self.0.owner_seen_at.map(Into::into)
    }
    /// The offset of the first message not stored yet (committed with the rows before it).
    async fn stored_offset(&self) -> Option<i64> {
        self.0.next_offset
    }
    /// The partition's end as the owner last saw it (refreshed every few seconds).
    async fn high_watermark(&self) -> Option<i64> {
        self.0.high_watermark
    }
    /// Messages not stored yet: `highWatermark - storedOffset`.
    async fn lag(&self) -> Option<i64> {
        let high = self.0.high_watermark?;
        Some((high - self.0.next_offset.unwrap_or(0)).max(0))
    }
}

/// The Kafka message a rejected record came from.
#[derive(SimpleObject)]
pub struct KafkaMessage {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// An input record that was not stored, with the reason.
pub struct RejectedRecord(rejected_record::Model);

#[Object]
impl RejectedRecord {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn provider(&self) -> &str {
        &self.0.provider
    }
    async fn run_id(&self) -> Option<ID> {
        self.0.run_id.map(|id| ID(id.to_string()))
    }
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    /// 1-based line, for file imports.
    async fn line(&self) -> Option<i64> {
        self.0.line
    }
    /// The message it came from, for `kafka` providers.
    async fn message(&self) -> Option<KafkaMessage> {
        Some(KafkaMessage {
            topic: self.0.message_topic.clone()?,
            partition: self.0.message_partition?,
            offset: self.0.message_offset?,
        })
    }
    async fn reason(&self) -> &str {
        &self.0.reason
    }
    /// The input as text.
    async fn payload(&self) -> Option<&str> {
        self.0.payload.as_deref()
    }
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}

#[derive(InputObject, Default)]
pub struct IngestRunWhere {
    pub provider: Option<String>,
    pub status: Option<IngestStatus>,
    pub started_at: Option<DateTimeFilterInput>,
}

#[derive(InputObject, Default)]
pub struct RejectedRecordWhere {
    pub provider: Option<String>,
    pub run_id: Option<ID>,
}

fn runner<'a>(ctx: &Context<'a>) -> ApiResult<&'a Runner> {
    ctx.data::<Runner>()
        .map_err(|_| ApiError::Internal("schema built without a runner".into()))
}

fn parse_id(name: &str, id: &ID) -> ApiResult<i64> {
    id.parse().map_err(|_| {
        ApiError::bad_input(format!(
            "`{name}` must be a numeric id such as \"42\", got {:?}",
            id.0
        ))
    })
}

#[derive(Default)]
pub struct ControlQuery;

#[Object]
impl ControlQuery {
    /// Every provider file this server knows, in file-name order: those that do not load
    /// too, with `error` set.
    async fn providers(&self, ctx: &Context<'_>) -> ApiResult<Vec<ProviderInfo>> {
        Ok(runner(ctx)?
            .entries()
            .iter()
            .cloned()
            .map(ProviderInfo)
            .collect())
    }

    /// One provider by name; null when there is none.
    async fn provider(&self, ctx: &Context<'_>, name: String) -> ApiResult<Option<ProviderInfo>> {
        Ok(runner(ctx)?.entry(&name).map(ProviderInfo))
    }

    /// Runs matching `where`, newest first.
    #[graphql(complexity = "PageArgs::size(first, last) * child_complexity")]
    #[allow(clippy::too_many_arguments)]
    async fn ingest_runs(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "where")] filter: Option<IngestRunWhere>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<Page<IngestRun>> {
        let db = db(ctx);
        let w = filter.unwrap_or_default();
        let filter = RunFilter {
            provider: w.provider,
            status: w.status.map(Into::into),
            started_at: optional(
                w.started_at,
                "where.startedAt",
                DateTimeFilterInput::into_store,
            )?,
        };
        let order = runs::newest_first();
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        list(
            args,
            &order,
            async |request| runs::list_filtered(db, &filter, request).await,
            runs::cursor_values,
            IngestRun,
        )
        .await
    }

    /// Records that were not stored, newest first.
    #[graphql(complexity = "PageArgs::size(first, last) * child_complexity")]
    #[allow(clippy::too_many_arguments)]
    async fn rejected_records(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "where")] filter: Option<RejectedRecordWhere>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<Page<RejectedRecord>> {
        let db = db(ctx);
        let w = filter.unwrap_or_default();
        let filter = RejectionFilter {
            provider: w.provider,
            run_id: w
                .run_id
                .map(|id| parse_id("where.runId", &id))
                .transpose()?,
        };
        let order = rejected::newest_first();
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        list(
            args,
            &order,
            async |request| rejected::list(db, &filter, request).await,
            rejected::cursor_values,
            RejectedRecord,
        )
        .await
    }
}

/// What `triggerIngest` did.
#[derive(SimpleObject)]
pub struct TriggerResult {
    pub run: IngestRun,
    /// The provider was already running: `run` is that run, and no new one was started.
    pub already_running: bool,
}

/// What `reloadProviders` changed, by provider name, and the providers as they are now.
pub struct ProvidersReloaded {
    reloaded: Reloaded,
    providers: Vec<ProviderInfo>,
}

/// A provider file that does not load.
#[derive(SimpleObject)]
pub struct ProviderFileError {
    pub provider: String,
    pub error: String,
}

/// What `reloadProviders` changed, by provider name, and the providers as they are now.
#[Object]
impl ProvidersReloaded {
    /// Providers that are new.
    async fn added(&self) -> &[String] {
        &self.reloaded.added
    }
    /// Providers whose definition changed.
    async fn changed(&self) -> &[String] {
        &self.reloaded.changed
    }
    /// Providers whose file is gone.
    async fn removed(&self) -> &[String] {
        &self.reloaded.removed
    }
    /// Files that do not load; each keeps its last good definition, if it had one.
    async fn failed(&self) -> Vec<ProviderFileError> {
        self.reloaded
            .failed
            .iter()
            .map(|(provider, error)| ProviderFileError {
                provider: provider.clone(),
                error: error.clone(),
            })
            .collect()
    }
    /// Every provider after the reload, as `providers` lists them.
    async fn providers(&self) -> &[ProviderInfo] {
        &self.providers
    }
}

/// Only an admin may change things (see `auth`).
pub(super) fn require_admin(ctx: &Context<'_>) -> ApiResult<()> {
    let caller = ctx
        .data_opt::<Caller>()
        .copied()
        .unwrap_or(Caller::Anonymous);
    let policy = ctx
        .data::<Policy>()
        .map_err(|_| ApiError::Internal("schema built without an auth policy".into()))?;
    if policy.may_mutate(caller) {
        Ok(())
    } else {
        Err(ApiError::Unauthenticated)
    }
}

impl From<RunnerError> for ApiError {
    fn from(error: RunnerError) -> Self {
        match error {
            RunnerError::UnknownProvider(_) => ApiError::NotFound(error.to_string()),
            RunnerError::ShuttingDown | RunnerError::ElsewhereRunning(_) => {
                ApiError::Forbidden(error.to_string())
            }
            RunnerError::Refused(_) => ApiError::bad_input(error.to_string()),
            RunnerError::Database(_) => ApiError::Internal(error.to_string()),
        }
    }
}

#[derive(Default)]
pub struct ControlMutation;

#[Object]
impl ControlMutation {
    /// Starts a run of `provider` now and returns it at once (queued); the run goes on in the
    /// background. A provider already running returns that run with `alreadyRunning`.
    async fn trigger_ingest(
        &self,
        ctx: &Context<'_>,
        provider: String,
        #[graphql(default_with = "IngestMode::Incremental")] mode: IngestMode,
    ) -> ApiResult<TriggerResult> {
        require_admin(ctx)?;
        let triggered = runner(ctx)?
            .trigger(&provider, mode.into(), RunTrigger::Manual)
            .await?;
        Ok(TriggerResult {
            run: IngestRun(triggered.run),
            already_running: triggered.already_running,
        })
    }

    /// Reads `providers_dir` again, as SIGHUP does: each file that loads replaces its
    /// provider's definition (runs under way keep theirs), a file that does not keeps its
    /// last good definition and shows its problems in `Provider.error`, removed files
    /// disappear, and schedules follow.
    async fn reload_providers(&self, ctx: &Context<'_>) -> ApiResult<ProvidersReloaded> {
        require_admin(ctx)?;
        let runner = runner(ctx)?;
        let reloaded = runner.reload().await?;
        Ok(ProvidersReloaded {
            reloaded,
            providers: runner.entries().iter().cloned().map(ProviderInfo).collect(),
        })
    }

    /// Sets the incremental high-water mark of a provider with `[source.incremental]`; its
    /// next `INCREMENTAL` run starts there (less `lookback`). `value` null clears it: the next
    /// run starts from `initial`. A value must be of the cursor's kind (an integer, an RFC
    /// 3339 timestamp or a text, as `initial` is).
    async fn reset_provider_cursor(
        &self,
        ctx: &Context<'_>,
        provider: String,
        value: Option<String>,
    ) -> ApiResult<ProviderInfo> {
        require_admin(ctx)?;
        let runner = runner(ctx)?;
        let entry = runner
            .entry(&provider)
            .ok_or_else(|| ApiError::from(RunnerError::UnknownProvider(provider.clone())))?;
        let Some(definition) = &entry.provider else {
            return Err(ApiError::bad_input(format!(
                "provider {provider:?} has no valid definition: {}",
                entry.error.as_deref().unwrap_or("its file does not load")
            )));
        };
        let incremental = match &definition.def.source {
            Source::Http(http) => http.incremental.as_ref(),
            _ => None,
        };
        let Some(incremental) = incremental else {
            return Err(ApiError::bad_input(format!(
                "provider {provider:?} has no cursor: only a provider with \
                 `[source.incremental]` keeps one"
            )));
        };
        let stored = match value {
            Some(text) => {
                let kind = Mark::of_config(&incremental.initial).kind();
                let mark = Mark::parse(kind, &text).map_err(|e| {
                    ApiError::bad_input(format!(
                        "`value`: expected {} (the kind of {provider}'s \
                         `source.incremental.initial`): {e}",
                        kind.name()
                    ))
                })?;
                Some(mark.stored())
            }
            None => None,
        };
        provider_state::set_cursor(db(ctx), &definition.name, stored.clone()).await?;
        tracing::info!(provider = %definition.name, cursor = ?stored, "provider cursor reset");
        Ok(ProviderInfo(entry))
    }

    /// Stops a run at its next batch boundary; what it committed stays. For a `kafka`
    /// provider's consumer run: pauses the provider, so that every replica stops consuming it
    /// (within a second or two) until `triggerIngest` resumes it.
    async fn cancel_ingest(&self, ctx: &Context<'_>, id: ID) -> ApiResult<IngestRun> {
        require_admin(ctx)?;
        let run_id = parse_id("id", &id)?;
        let db = db(ctx);
        let run = runs::get(db, run_id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no ingest run with id {run_id}")))?;
        if run.trigger == RunTrigger::Consumer && run.status.is_unfinished() {
            runner(ctx)?.pause(&run.provider).await?;
            return Ok(IngestRun(run));
        }
        if !runner(ctx)?.cancel(run_id) {
            return Err(ApiError::bad_input(if !run.status.is_unfinished() {
                format!("run {run_id} has already ended ({})", run.status.as_str())
            } else {
                format!(
                    "run {run_id} is running on another replica ({})",
                    run.owner.unwrap_or_default()
                )
            }));
        }
        Ok(IngestRun(run))
    }
}

#[derive(Default)]
pub struct ControlSubscription;

#[Subscription]
impl ControlSubscription {
    /// A run's state whenever it changes and at least once a second while it runs, ending
    /// with its final state. With `provider` instead of `id`: every run of that provider.
    async fn ingest_run_updated(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        provider: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = IngestRun> + use<>> {
        let runner = runner(ctx)?.clone();
        let run_id = match (&id, &provider) {
            (Some(id), None) => Some(parse_id("id", id)?),
            (None, Some(_)) => None,
            _ => {
                return Err(ApiError::bad_input("give exactly one of `id` and `provider`").into());
            }
        };
        // Reads go to a healthy replica, chosen again for each read so that one lost
        // mid-subscription is left; the read of a run's final state goes to the primary, so
        // the last state sent is the final one even when the replica lags.
        let replicas = ctx.data_unchecked::<Replicas>().clone();
        let mut events = runner.subscribe();
        Ok(async_stream::stream! {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                // Which run to report now, and whether it has ended.
                let changed: Option<(i64, bool)> = tokio::select! {
                    event = events.recv() => match event {
                        Ok(e) if run_id == Some(e.run_id) || provider.as_deref() == Some(e.provider.as_str()) => Some((e.run_id, e.finished)),
                        Ok(_) => None,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => run_id.map(|id| (id, false)),
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    },
                    _ = tick.tick() => match (run_id, &provider) {
                        (Some(id), _) => Some((id, false)),
                        (None, Some(p)) => runner.active_run(p).map(|id| (id, false)),
                        _ => None,
                    },
                };
                let Some((changed, finished)) = changed else { continue };
                let db = if finished { replicas.writer() } else { replicas.reader() }.db;
                let Ok(Some(run)) = runs::get(&db, changed).await else { continue };
                let ended = !run.status.is_unfinished();
                yield IngestRun(run);
                if ended && run_id.is_some() {
                    break;
                }
            }
        })
    }
}
