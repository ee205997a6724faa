//! The ingestion control plane inside the server: starts runs (from schedule ticks, GraphQL
//! triggers and restarts), keeps each provider's lease while its run works, cancels at batch
//! boundaries, and tells subscribers what changed.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::ingest_run;
use futures_util::FutureExt;
use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::broadcast;
use tokio::task::JoinSet;

use crate::hosts::HostRules;
use crate::ingest::{self, Cancel, StopReason};
use crate::providers::{LoadError, Provider, Source, load_dir, load_file};
use crate::scheduler::Schedules;
use crate::sources::outbound::Outbound;
use crate::store::runs::{self, RunMode, RunStatus, RunTrigger};
use crate::store::{leases, provider_state};
use crate::task::AbortOnDrop;

const INTERRUPTED_STOPPED: &str =
    "the server running it stopped; the next run resumes from its checkpoint";

/// A run changed (its counters or its status).
#[derive(Debug, Clone)]
pub struct RunEvent {
    pub run_id: i64,
    pub provider: String,
    /// The run has ended.
    pub finished: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("no provider named {0:?}")]
    UnknownProvider(String),
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("{0} is running on another replica")]
    ElsewhereRunning(String),
    #[error("{0}")]
    Refused(String),
    /// Shown without the driver's detail, which may quote a URL.
    #[error("database: {}", crate::db::brief(.0))]
    Database(#[from] DbErr),
}

/// A run this replica started, or the one already under way.
#[derive(Debug, Clone)]
pub struct Triggered {
    pub run: ingest_run::Model,
    pub already_running: bool,
}

struct Active {
    run_id: i64,
    cancel: Cancel,
}

/// One provider file as the server knows it.
#[derive(Debug, Clone)]
pub struct ProviderEntry {
    /// The provider's name; for a file that never loaded, its file name without `.toml`.
    pub name: String,
    /// The file.
    pub path: PathBuf,
    /// The definition runs use: the last one of the file that loaded; `None` when it never did.
    pub provider: Option<Provider>,
    /// Why the file as it is now does not load (every problem, one per line); `None` when it
    /// loads.
    pub error: Option<String>,
}

/// What a reload of the providers directory changed, by provider name.
#[derive(Debug, Clone, Default)]
pub struct Reloaded {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// Files that do not load, with their problems; each keeps its last good definition.
    pub failed: Vec<(String, String)>,
}

struct Inner {
    db: DatabaseConnection,
    /// Replaced whole by a reload; readers take the `Arc` and let go of the lock at once.
    providers: RwLock<Arc<Vec<ProviderEntry>>>,
    /// Where provider files are read from on a reload.
    providers_dir: PathBuf,
    /// The scheduler's jobs, once the server runs them; held while a reload works, so
    /// reloads happen one at a time.
    schedules: tokio::sync::Mutex<Option<Schedules>>,
    host_rules: HostRules,
    outbound: Outbound,
    instance: String,
    lease_ttl: Duration,
    active: Mutex<HashMap<String, Active>>,
    events: broadcast::Sender<RunEvent>,
    tasks: tokio::sync::Mutex<JoinSet<()>>,
    stopping: AtomicBool,
}

/// Cheap to clone; every clone drives the same runs.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

/// A runner that does not keep it alive: for what the runner itself holds (its schedule's
/// jobs).
#[derive(Clone)]
pub struct WeakRunner(std::sync::Weak<Inner>);

impl WeakRunner {
    /// The runner, while it still exists.
    pub fn upgrade(&self) -> Option<Runner> {
        self.0.upgrade().map(|inner| Runner { inner })
    }
}

/// How long a lease lasts without a heartbeat; a crashed owner's lease expires after this.
pub fn default_lease_ttl() -> Duration {
    Duration::from_secs(30)
}

impl Runner {
    pub fn new(
        db: DatabaseConnection,
        providers: Vec<Provider>,
        providers_dir: PathBuf,
        host_rules: HostRules,
        outbound: Outbound,
        lease_ttl: Duration,
    ) -> Runner {
        let entries = providers
            .into_iter()
            .map(|provider| ProviderEntry {
                name: provider.name.clone(),
                path: provider.path.clone(),
                provider: Some(provider),
                error: None,
            })
            .collect();
        let instance = format!(
            "{}-{}-{:04x}",
            hostname(),
            std::process::id(),
            fastrand::u16(..)
        );
        let (events, _) = broadcast::channel(256);
        Runner {
            inner: Arc::new(Inner {
                db,
                providers: RwLock::new(Arc::new(entries)),
                providers_dir,
                schedules: tokio::sync::Mutex::new(None),
                host_rules,
                outbound,
                instance,
                lease_ttl,
                active: Mutex::new(HashMap::new()),
                events,
                tasks: tokio::sync::Mutex::new(JoinSet::new()),
                stopping: AtomicBool::new(false),
            }),
        }
    }

    /// Every provider file, in file-name order, as the last (re)load left it.
    pub fn entries(&self) -> Arc<Vec<ProviderEntry>> {
        match self.inner.providers.read() {
            Ok(entries) => entries.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The definitions runs use now (files that never loaded have none).
    pub fn providers(&self) -> Vec<Provider> {
        self.entries()
            .iter()
            .filter_map(|e| e.provider.clone())
            .collect()
    }

    /// A provider file's entry by provider name: the one with a definition of that name, else
    /// a file that never loaded named so.
    pub fn entry(&self, name: &str) -> Option<ProviderEntry> {
        let entries = self.entries();
        entries
            .iter()
            .find(|e| e.provider.as_ref().is_some_and(|p| p.name == name))
            .or_else(|| entries.iter().find(|e| e.name == name))
            .cloned()
    }

    pub fn downgrade(&self) -> WeakRunner {
        WeakRunner(Arc::downgrade(&self.inner))
    }

    /// How host observations are matched and merged (the `hosts` settings).
    pub fn host_rules(&self) -> &HostRules {
        &self.inner.host_rules
    }

    /// The provider's definition now (a copy: a reload may replace it, and a run keeps the
    /// one it started with).
    pub fn provider(&self, name: &str) -> Option<Provider> {
        self.entries()
            .iter()
            .filter_map(|e| e.provider.as_ref())
            .find(|p| p.name == name)
            .cloned()
    }

    /// The providers directory the server reads.
    pub fn providers_dir(&self) -> &Path {
        &self.inner.providers_dir
    }

    /// Hands the scheduler to the runner, so reloads re-register its jobs; its jobs are
    /// brought up to date with the providers now.
    pub async fn attach_schedules(&self, mut schedules: Schedules) {
        let mut slot = self.inner.schedules.lock().await;
        schedules.sync(self).await;
        *slot = Some(schedules);
    }

    /// Takes the scheduler back (at shutdown).
    pub async fn detach_schedules(&self) -> Option<Schedules> {
        self.inner.schedules.lock().await.take()
    }

    /// Reads `providers_dir` again. Each file that loads replaces its provider's definition; a
    /// file that does not keeps its last good definition (if it had one) and its problems are
    /// shown as the entry's `error`; removed files disappear. Runs under way keep the
    /// definition they started with; schedules follow the new definitions. A directory that
    /// cannot be read changes nothing.
    pub async fn reload(&self) -> Result<Reloaded, RunnerError> {
        let mut schedules = self.inner.schedules.lock().await;
        let old = self.entries();
        let entries = read_providers(&self.inner.providers_dir, &old)?;
        let reloaded = compare(&old, &entries);
        match self.inner.providers.write() {
            Ok(mut slot) => *slot = Arc::new(entries),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(entries),
        }
        for name in &reloaded.added {
            tracing::info!(provider = %name, "provider added");
        }
        for name in &reloaded.changed {
            tracing::info!(provider = %name, "provider definition changed");
        }
        for name in &reloaded.removed {
            tracing::info!(provider = %name, "provider removed");
        }
        for (name, error) in &reloaded.failed {
            tracing::warn!(provider = %name, %error, "provider file does not load; its last good definition stays");
        }
        tracing::info!(
            dir = %self.inner.providers_dir.display(),
            added = reloaded.added.len(),
            changed = reloaded.changed.len(),
            removed = reloaded.removed.len(),
            failed = reloaded.failed.len(),
            "providers reloaded"
        );
        if let Some(schedules) = schedules.as_mut() {
            schedules.sync(self).await;
        }
        Ok(reloaded)
    }

    /// This replica's id, as leases and runs record it.
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RunEvent> {
        self.inner.events.subscribe()
    }

    /// The run of `provider` this replica is working on, if any.
    pub fn active_run(&self, provider: &str) -> Option<i64> {
        self.inner
            .active
            .lock()
            .ok()
            .and_then(|a| a.get(provider).map(|r| r.run_id))
    }

    /// The provider's definition to run, or why there is none.
    fn runnable(&self, name: &str) -> Result<Provider, RunnerError> {
        match self.entry(name) {
            Some(ProviderEntry {
                provider: Some(provider),
                ..
            }) => Ok(provider),
            Some(ProviderEntry {
                error: Some(error), ..
            }) => Err(RunnerError::Refused(format!(
                "provider {name:?} has no valid definition: {error}"
            ))),
            _ => Err(RunnerError::UnknownProvider(name.to_string())),
        }
    }

    /// Starts a run now (a GraphQL trigger or a restart), or returns the one under way.
    pub async fn trigger(
        &self,
        provider: &str,
        mode: RunMode,
        trigger: RunTrigger,
    ) -> Result<Triggered, RunnerError> {
        let provider = self.runnable(provider)?;
        if is_consumer(&provider) {
            return self.resume(provider, mode, trigger).await;
        }
        if let Some(run) = self.current(&provider.name).await? {
            return Ok(Triggered {
                run,
                already_running: true,
            });
        }
        if !leases::claim(
            &self.inner.db,
            &provider.name,
            self.instance(),
            self.ttl(),
            None,
        )
        .await?
        {
            return match runs::last_for(&self.inner.db, &provider.name).await? {
                Some(run) if run.status.is_unfinished() => Ok(Triggered {
                    run,
                    already_running: true,
                }),
                _ => Err(RunnerError::ElsewhereRunning(provider.name.clone())),
            };
        }
        let (run, already_running) = self.start(provider, mode, trigger).await?;
        Ok(Triggered {
            run,
            already_running,
        })
    }

    /// `triggerIngest` of a `kafka` provider: un-pauses it, and starts this replica's consumer
    /// unless it is consuming already (the other replicas start theirs within
    /// [`CONSUMER_WATCH`]).
    async fn resume(
        &self,
        provider: Provider,
        mode: RunMode,
        trigger: RunTrigger,
    ) -> Result<Triggered, RunnerError> {
        if mode == RunMode::Renormalize {
            return Err(RunnerError::Refused(format!(
                "{} is a kafka provider: it is consumed continuously, and its rows are rebuilt \
                 from raw payloads only while it is paused (cancelIngest pauses it)",
                provider.name
            )));
        }
        provider_state::set_paused(&self.inner.db, &provider.name, false).await?;
        self.start_consumer(provider, trigger).await
    }

    /// Starts this replica's consumer of a `kafka` provider, or returns the one running.
    async fn start_consumer(
        &self,
        provider: Provider,
        trigger: RunTrigger,
    ) -> Result<Triggered, RunnerError> {
        if let Some(run) = self.current(&provider.name).await? {
            return Ok(Triggered {
                run,
                already_running: true,
            });
        }
        // The consumer's own lease says it is alive, so recovery leaves its run alone.
        let lease = self.lease_of(&provider);
        leases::claim(&self.inner.db, &lease, self.instance(), self.ttl(), None).await?;
        let (run, already_running) = self.start(provider, RunMode::Incremental, trigger).await?;
        Ok(Triggered {
            run,
            already_running,
        })
    }

    /// `cancelIngest` of a `kafka` provider's run: pauses the provider, so that no replica
    /// consumes it (each stops its consumer at the next batch boundary, within
    /// [`CONSUMER_WATCH`]) until `triggerIngest` resumes it.
    pub async fn pause(&self, provider: &str) -> Result<(), RunnerError> {
        provider_state::set_paused(&self.inner.db, provider, true).await?;
        if let Some(run_id) = self.active_run(provider) {
            self.cancel(run_id);
        }
        Ok(())
    }

    /// Keeps a consumer running on this replica for every `kafka` provider that is not
    /// paused, and stops the ones paused; a consumer that failed starts again after a backoff.
    /// The providers are read again on every pass, so a reload's added `kafka` providers start
    /// within [`CONSUMER_WATCH`] and removed ones stop at their next batch boundary; a changed
    /// one's consumer keeps the definition it started with until it starts again.
    pub async fn watch_consumers(&self) {
        let mut retry_at: HashMap<String, (tokio::time::Instant, Duration)> = HashMap::new();
        // Consumers this loop started, to stop those whose provider is gone.
        let mut started: HashSet<String> = HashSet::new();
        loop {
            if self.inner.stopping.load(Ordering::Relaxed) {
                return;
            }
            let consumers: Vec<Provider> =
                self.providers().into_iter().filter(is_consumer).collect();
            started.retain(|name| {
                if consumers.iter().any(|p| &p.name == name) {
                    return true;
                }
                match self.active_run(name) {
                    Some(run_id) => {
                        tracing::info!(provider = %name, run_id, "provider removed; stopping its consumer");
                        self.cancel(run_id);
                        true
                    }
                    None => {
                        retry_at.remove(name);
                        false
                    }
                }
            });
            for provider in &consumers {
                let name = &provider.name;
                let paused = match provider_state::paused(&self.inner.db, name).await {
                    Ok(paused) => paused,
                    Err(error) => {
                        tracing::warn!(provider = %name, error = %crate::db::brief(&error), "cannot read whether the provider is paused");
                        continue;
                    }
                };
                match (self.active_run(name), paused) {
                    (Some(run_id), true) => {
                        self.cancel(run_id);
                    }
                    (Some(_), false) => {
                        retry_at.remove(name);
                    }
                    (None, true) => {}
                    (None, false) => {
                        let now = tokio::time::Instant::now();
                        let backoff = match retry_at.get(name) {
                            Some((at, _)) if *at > now => continue,
                            Some((_, backoff)) => (*backoff * 2).min(Duration::from_secs(60)),
                            None => Duration::from_secs(1),
                        };
                        retry_at.insert(name.clone(), (now + backoff, backoff));
                        started.insert(name.clone());
                        if let Err(error) = self
                            .start_consumer(provider.clone(), RunTrigger::Consumer)
                            .await
                        {
                            tracing::warn!(provider = %name, %error, "cannot start the consumer");
                        }
                    }
                }
            }
            tokio::time::sleep(CONSUMER_WATCH).await;
        }
    }

    /// A scheduled tick: runs the provider unless it is running (here or on another replica)
    /// or another replica already took this tick. Returns the run id when it started one.
    pub async fn tick(
        &self,
        provider: &str,
        tick: DateTime<Utc>,
    ) -> Result<Option<i64>, RunnerError> {
        let Some(provider) = self.provider(provider) else {
            return Err(RunnerError::UnknownProvider(provider.to_string()));
        };
        if self.active_run(&provider.name).is_some() {
            metrics::counter!("scheduler_ticks_skipped_total", "provider" => provider.name.clone(), "reason" => "running").increment(1);
            return Ok(None);
        }
        if !leases::claim(
            &self.inner.db,
            &provider.name,
            self.instance(),
            self.ttl(),
            Some(tick),
        )
        .await?
        {
            metrics::counter!("scheduler_ticks_skipped_total", "provider" => provider.name.clone(), "reason" => "elsewhere").increment(1);
            return Ok(None);
        }
        let (run, already_running) = self
            .start(provider, RunMode::Incremental, RunTrigger::Schedule)
            .await?;
        if already_running {
            metrics::counter!("scheduler_ticks_skipped_total", "provider" => run.provider.clone(), "reason" => "running").increment(1);
            return Ok(None);
        }
        Ok(Some(run.id))
    }

    /// Asks a run to stop at its next batch boundary. False when it is not running here.
    pub fn cancel(&self, run_id: i64) -> bool {
        let active = match self.inner.active.lock() {
            Ok(active) => active,
            Err(_) => return false,
        };
        match active.values().find(|a| a.run_id == run_id) {
            Some(run) => {
                run.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// After a (re)start, and then every lease TTL: runs left queued or running by a replica
    /// whose lease has lapsed are marked failed, and every provider whose last run was
    /// interrupted resumes from its checkpoint. Returns the runs it started.
    pub async fn recover(&self) -> Result<Vec<i64>, RunnerError> {
        // A run younger than a lease TTL may belong to a writer that holds no lease (a push
        // request's run lasts one transaction): it is left for a later pass.
        let settled = Utc::now() - self.ttl();
        for run in runs::unfinished(&self.inner.db).await? {
            if run.queued_at > settled {
                continue;
            }
            let lease = match (run.trigger, &run.owner) {
                (RunTrigger::Consumer, Some(owner)) => leases::consumer_lease(&run.provider, owner),
                _ => run.provider.clone(),
            };
            if leases::holder(&self.inner.db, &lease).await?.is_some() {
                continue; // a live replica is working on it
            }
            runs::finish(
                &self.inner.db,
                run.id,
                RunStatus::Interrupted,
                Some(INTERRUPTED_STOPPED.into()),
            )
            .await?;
        }
        let mut resumed = Vec::new();
        let names: Vec<String> = self
            .providers()
            .iter()
            .filter(|p| !is_consumer(p))
            .map(|p| p.name.clone())
            .collect();
        for name in names {
            let Some(last) = runs::last_for(&self.inner.db, &name).await? else {
                continue;
            };
            if last.status == RunStatus::Interrupted && !self.inner.stopping.load(Ordering::Relaxed)
            {
                match self
                    .trigger(&name, RunMode::Incremental, RunTrigger::Resume)
                    .await
                {
                    Ok(t) if !t.already_running => resumed.push(t.run.id),
                    Ok(_) | Err(RunnerError::ElsewhereRunning(_)) => {}
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(resumed)
    }

    /// Runs [`Runner::recover`] every lease TTL until shutdown, so a run a crashed replica
    /// left behind is marked failed and resumed once its lease lapses, whether or not any
    /// replica restarts.
    pub async fn watch_interrupted(&self) {
        loop {
            tokio::time::sleep(self.inner.lease_ttl).await;
            if self.inner.stopping.load(Ordering::Relaxed) {
                return;
            }
            match self.recover().await {
                Ok(resumed) if !resumed.is_empty() => {
                    tracing::info!(runs = ?resumed, "resumed runs a stopped replica interrupted");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "could not check for interrupted runs"),
            }
        }
    }

    /// Stops taking runs, asks running ones to stop at their next batch boundary, and waits
    /// up to `grace` for them to commit and release their leases.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.stopping.store(true, Ordering::Relaxed);
        // Once this lock is held, every run `start` let through is in `active`.
        let mut tasks = self.inner.tasks.lock().await;
        if let Ok(active) = self.inner.active.lock() {
            for run in active.values() {
                run.cancel.stop(StopReason::Shutdown);
            }
        }
        let wait = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, wait).await.is_ok() {
            return;
        }
        // A batch that outlasts the grace period is rolled back (its transaction is dropped),
        // and its run is marked here, while the database still answers, so the next start
        // resumes it without waiting for the lease to lapse.
        tracing::warn!("runs still working after the shutdown grace period; stopping them");
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        let aborted: Vec<(String, i64)> = match self.inner.active.lock() {
            Ok(mut active) => active.drain().map(|(p, a)| (p, a.run_id)).collect(),
            Err(_) => Vec::new(),
        };
        for (provider, run_id) in aborted {
            let lease = match self.provider(&provider) {
                Some(p) => self.lease_of(&p),
                None => provider.clone(),
            };
            let marked = runs::finish(
                &self.inner.db,
                run_id,
                RunStatus::Interrupted,
                Some(
                    "the server shut down before the run reached a batch boundary; the next run \
                     resumes from its checkpoint"
                        .into(),
                ),
            )
            .await;
            let released = leases::release(&self.inner.db, &lease, self.instance()).await;
            if let Err(error) = marked.and(released) {
                tracing::warn!(%provider, run_id, error = %crate::db::brief(&error), "could not mark an interrupted run; another replica's recovery will");
            }
        }
    }

    /// The lease a run of `provider` on this replica holds: the provider's own, or, for a
    /// `kafka` provider consumed on every replica at once, this replica's consumer lease.
    fn lease_of(&self, provider: &Provider) -> String {
        if is_consumer(provider) {
            leases::consumer_lease(&provider.name, self.instance())
        } else {
            provider.name.clone()
        }
    }

    fn ttl(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.inner.lease_ttl).unwrap_or(chrono::Duration::seconds(30))
    }

    async fn current(&self, provider: &str) -> Result<Option<ingest_run::Model>, RunnerError> {
        match self.active_run(provider) {
            Some(id) => Ok(runs::get(&self.inner.db, id).await?),
            None => Ok(None),
        }
    }

    /// Records the run as queued and starts it on its own task, or returns the run of the
    /// provider this replica already works on (`true`). The caller holds its lease
    /// ([`Runner::lease_of`]).
    async fn start(
        &self,
        provider: Provider,
        mode: RunMode,
        trigger: RunTrigger,
    ) -> Result<(ingest_run::Model, bool), RunnerError> {
        let lease = self.lease_of(&provider);
        // Held until the run's task is spawned: `shutdown` holds it while it waits for the
        // tasks, so a run is either spawned before and waited for, or never queued; and two
        // starts of one provider (a tick and a trigger at once) see each other's run.
        let mut tasks = self.inner.tasks.lock().await;
        if self.inner.stopping.load(Ordering::Relaxed) {
            leases::release(&self.inner.db, &lease, self.instance()).await?;
            return Err(RunnerError::ShuttingDown);
        }
        if let Some(running) = self.active_run(&provider.name)
            && let Some(run) = runs::get(&self.inner.db, running).await?
        {
            return Ok((run, true));
        }
        // Holding the lease, no one else can be running this provider: runs still marked
        // unfinished belong to a replica that died, and the checkpoint they left is resumed.
        // (Consumers of a `kafka` provider run on every replica at once: recovery finds theirs.)
        for stale in runs::unfinished(&self.inner.db).await? {
            if stale.provider == provider.name && !is_consumer(&provider) {
                metrics::counter!("lease_takeovers_total", "provider" => provider.name.clone())
                    .increment(1);
                runs::finish(
                    &self.inner.db,
                    stale.id,
                    RunStatus::Interrupted,
                    Some("its replica stopped holding the lease".into()),
                )
                .await?;
            }
        }
        let run = runs::queue(
            &self.inner.db,
            &provider.name,
            trigger,
            mode,
            self.instance(),
        )
        .await?;
        let cancel = Cancel::default();
        if let Ok(mut active) = self.inner.active.lock() {
            active.insert(
                provider.name.clone(),
                Active {
                    run_id: run.id,
                    cancel: cancel.clone(),
                },
            );
        }
        let runner = self.clone();
        let run_id = run.id;
        tasks.spawn(async move { runner.work(provider, mode, run_id, cancel, lease).await });
        Ok((run, false))
    }

    /// One run on its task: heartbeat the lease, run, release, tell subscribers.
    async fn work(
        &self,
        provider: Provider,
        mode: RunMode,
        run_id: i64,
        cancel: Cancel,
        lease: String,
    ) {
        let db = &self.inner.db;
        let name = provider.name.clone();
        let started = std::time::Instant::now();
        let heartbeat = AbortOnDrop({
            let runner = self.clone();
            let name = name.clone();
            let cancel = cancel.clone();
            let lease = lease.clone();
            tokio::spawn(async move {
                let period = runner.inner.lease_ttl / 3;
                loop {
                    tokio::time::sleep(period).await;
                    match leases::heartbeat(runner.db(), &lease, runner.instance(), runner.ttl())
                        .await
                    {
                        Ok(true) => {}
                        Ok(false) => {
                            // Another replica took the lease over: stop at the next batch.
                            tracing::warn!(provider = %name, "lease lost; stopping the run");
                            cancel.stop(StopReason::LeaseLost);
                            return;
                        }
                        Err(error) => {
                            tracing::warn!(provider = %name, error = %crate::db::brief(&error), "lease heartbeat failed")
                        }
                    }
                }
            })
        });
        let events = self.inner.events.clone();
        let progress = |_: ingest::Progress| {
            let _ = events.send(RunEvent {
                run_id,
                provider: name.clone(),
                finished: false,
            });
        };
        let outcome = match runs::mark_running(db, run_id).await {
            Ok(()) => {
                let _ = events.send(RunEvent {
                    run_id,
                    provider: name.clone(),
                    finished: false,
                });
                let ctx = ingest::RunContext {
                    db,
                    provider: &provider,
                    host_rules: &self.inner.host_rules,
                    outbound: &self.inner.outbound,
                    mode,
                    cancel: &cancel,
                    on_progress: &progress,
                };
                // A panic is a bug; it fails this run, not the replica's bookkeeping (the run
                // would otherwise stay `running` with its lease held until the process exits).
                AssertUnwindSafe(ingest::run_with_id(&ctx, run_id))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| {
                        let what = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        tracing::error!(provider = %name, run_id, panic = %what, "ingest run panicked");
                        Err(ingest::IngestError::Provider(format!(
                            "internal error (a bug; see the server log): {what}"
                        )))
                    })
            }
            Err(error) => Err(ingest::IngestError::from(error)),
        };
        let status = match &outcome {
            Ok(summary) => summary.status,
            Err(error) => {
                // The run could not even record its end (the database is unreachable): keep
                // trying, still holding the lease, so it is never left `running`.
                tracing::error!(provider = %name, run_id, %error, "ingest run failed; recording its outcome once the database answers");
                self.record_failure(run_id, error.to_string()).await;
                RunStatus::Failed
            }
        };
        drop(heartbeat);
        metrics::counter!("ingest_runs_total", "provider" => name.clone(), "outcome" => status.as_str()).increment(1);
        metrics::histogram!("ingest_run_duration_seconds", "provider" => name.clone())
            .record(started.elapsed().as_secs_f64());
        if let Ok(summary) = &outcome {
            let c = summary.counts;
            for (outcome, n) in [
                ("inserted", c.inserted),
                ("updated", c.updated),
                ("unchanged", c.unchanged),
                ("superseded", c.superseded),
                ("rejected", summary.rejected),
            ] {
                metrics::counter!("ingest_records_total", "provider" => name.clone(), "outcome" => outcome).increment(n);
            }
        }
        if let Err(error) = leases::release(db, &lease, self.instance()).await {
            tracing::warn!(provider = %name, error = %crate::db::brief(&error), "could not release the lease; it will expire");
        }
        if let Ok(mut active) = self.inner.active.lock() {
            active.remove(&name);
        }
        let _ = self.inner.events.send(RunEvent {
            run_id,
            provider: name,
            finished: true,
        });
    }
}

impl Runner {
    /// Marks a run failed, retrying with backoff while the database cannot be reached; gives
    /// up only at shutdown (the next start's recovery marks it then).
    async fn record_failure(&self, run_id: i64, error: String) {
        let mut wait = Duration::from_millis(200);
        loop {
            match runs::finish(
                &self.inner.db,
                run_id,
                RunStatus::Failed,
                Some(error.clone()),
            )
            .await
            {
                Ok(()) => return,
                Err(_) if self.inner.stopping.load(Ordering::Relaxed) => return,
                Err(_) => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// How often each replica checks whether a `kafka` provider was paused or resumed, and
/// restarts a consumer that failed.
pub const CONSUMER_WATCH: Duration = Duration::from_secs(1);

/// A `kafka` provider: consumed continuously by every replica, not scheduled.
fn is_consumer(provider: &Provider) -> bool {
    matches!(provider.def.source, Source::Kafka(_))
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "tributary".to_string())
}

/// The providers directory read again, each file's last good definition kept where it no
/// longer loads. Fails only when the directory itself cannot be read.
fn read_providers(dir: &Path, old: &[ProviderEntry]) -> Result<Vec<ProviderEntry>, RunnerError> {
    // Every problem of every file, duplicate names included, as `tributary providers` sees them.
    let problems: Vec<LoadError> = match load_dir(dir) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.0,
    };
    if let Some(error) = problems.iter().find(|e| e.file == dir) {
        return Err(RunnerError::Refused(format!(
            "providers not reloaded: {error}"
        )));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| {
            RunnerError::Refused(format!(
                "providers not reloaded: {}: cannot read the providers directory: {e}",
                dir.display()
            ))
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml") && path.is_file())
        .collect();
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    let mut entries = Vec::with_capacity(files.len());
    for path in files {
        let mut error: Vec<String> = problems
            .iter()
            .filter(|e| e.file == path)
            .map(ToString::to_string)
            .collect();
        let loaded = if error.is_empty() {
            // Changed since the directory was read: its first problem is enough.
            load_file(&path).map_err(|e| error.push(e.to_string())).ok()
        } else {
            None
        };
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let entry = match loaded {
            Some(provider) => ProviderEntry {
                name: provider.name.clone(),
                path,
                provider: Some(provider),
                error: None,
            },
            None => {
                let kept = old
                    .iter()
                    .find(|e| e.path == path)
                    .and_then(|e| e.provider.clone());
                ProviderEntry {
                    name: kept.as_ref().map_or(stem, |p| p.name.clone()),
                    path,
                    provider: kept,
                    error: Some(error.join("\n")),
                }
            }
        };
        entries.push(entry);
    }
    // A kept definition yields its name to a file that loads with that name now.
    let fresh: HashSet<String> = entries
        .iter()
        .filter(|e| e.error.is_none())
        .map(|e| e.name.clone())
        .collect();
    for entry in &mut entries {
        if entry.error.is_some() && entry.provider.is_some() && fresh.contains(&entry.name) {
            entry.provider = None;
            if let Some(stem) = entry.path.file_stem() {
                entry.name = stem.to_string_lossy().into_owned();
            }
        }
    }
    Ok(entries)
}

/// What changed between two loads, by provider name.
fn compare(old: &[ProviderEntry], new: &[ProviderEntry]) -> Reloaded {
    let defined = |entries: &[ProviderEntry]| -> HashMap<String, String> {
        entries
            .iter()
            .filter_map(|e| e.provider.as_ref())
            .map(|p| (p.name.clone(), format!("{:?}{:?}", p.path, p.def)))
            .collect()
    };
    let (before, after) = (defined(old), defined(new));
    let mut reloaded = Reloaded::default();
    for entry in new {
        let Some(provider) = &entry.provider else {
            continue;
        };
        match before.get(&provider.name) {
            None => reloaded.added.push(provider.name.clone()),
            Some(was) if after.get(&provider.name) != Some(was) => {
                reloaded.changed.push(provider.name.clone())
            }
            Some(_) => {}
        }
    }
    for entry in old {
        if let Some(provider) = &entry.provider
            && !after.contains_key(&provider.name)
        {
            reloaded.removed.push(provider.name.clone());
        }
    }
    reloaded.failed = new
        .iter()
        .filter_map(|e| Some((e.name.clone(), e.error.clone()?)))
        .collect();
    reloaded
}
