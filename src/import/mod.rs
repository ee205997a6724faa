//! Bulk import of an entity kind's canonical file format (`tributary import KIND FILE`).
//!
//! A blocking reader thread decompresses and parses the file into batches; a bounded channel
//! hands them to the writer, which commits each batch — records, rejections and the run's
//! counters — in one transaction (or, for kinds that ask for it, the whole import in one on
//! PostgreSQL). Memory is bounded by the batch size and the channel depth, whatever the file
//! size, and a slow database slows the reader rather than filling memory.

pub mod last_rows;
pub mod read;

use std::fs::File;
use std::future::Future;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flate2::read::MultiGzDecoder;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, TransactionTrait};
use tokio::sync::mpsc;

use self::last_rows::{Fate, LastRows};
use crate::entities::{Entity, EntityKind, ImportRules, Target, Visit};
use crate::formats::{FileError, Format, Row};
use crate::hosts::HostRules;
use crate::store::rejected::{self, NewRejection};
use crate::store::runs::{self, BatchProgress, RunMode, RunStatus, RunTrigger};
use crate::store::upsert::UpsertCounts;
use crate::store::{first_load, leases};

/// Where an import stands, for progress displays.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Bytes of the file read so far (compressed bytes for `.gz`).
    pub bytes: u64,
    pub rows: u64,
}

/// How an import ended.
#[derive(Debug, Clone)]
pub struct ImportSummary {
    pub run_id: i64,
    /// Rows read from the file (records and rejections).
    pub rows: u64,
    pub counts: UpsertCounts,
    pub rejected: u64,
    pub bytes: u64,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{kind} has no file format to import; importable: {importable}")]
    NotImportable {
        kind: EntityKind,
        importable: String,
    },
    #[error("{path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    File { path: PathBuf, source: FileError },
    /// Shown without the driver's detail, which may quote a URL.
    #[error("database: {}", crate::db::brief(.0))]
    Database(#[from] DbErr),
}

/// The kinds `tributary import` reads, quoted, for messages.
pub fn importable() -> String {
    EntityKind::ALL
        .iter()
        .filter(|k| k.import().is_some())
        .map(|k| format!("`{}`", k.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The kind's import rules, or why it has none.
fn rules(kind: EntityKind) -> Result<ImportRules, ImportError> {
    kind.import().ok_or_else(|| ImportError::NotImportable {
        kind,
        importable: importable(),
    })
}

/// Writers of an import that commits batch by batch on PostgreSQL: a re-import of 1,000,000
/// unchanged transfers is the database comparing rows, which a second connection does on the
/// second core.
const POSTGRES_WRITERS: usize = 2;

/// Rows per transaction (split among the writers): PostgreSQL takes large array statements
/// well; SQLite prefers smaller transactions so readers are not held up long. (Products in batches of 50,000 were
/// 13% faster on 500,000 rows, as fewer count rows are touched, but peaked at 233 MB.)
fn batch_size(backend: DbBackend) -> usize {
    match backend {
        DbBackend::Postgres => 20_000,
        _ => 5_000,
    }
}

/// Imports `path` into `kind`'s table as one ingest run. Rows that cannot be stored go to
/// `rejected_records`; everything committed before a fatal error stays.
pub async fn import_file(
    db: &DatabaseConnection,
    kind: EntityKind,
    path: &Path,
    on_progress: impl Fn(Progress) + Send + Sync,
) -> Result<ImportSummary, ImportError> {
    let rules = rules(kind)?;
    let open_error = |reason: String| ImportError::Open {
        path: path.to_path_buf(),
        reason,
    };
    let format = Format::from_path(path).map_err(open_error)?;
    let gzip = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let last_rows = if rules.last_row_first {
        let file = File::open(path).map_err(|e| open_error(e.to_string()))?;
        let scan_started = Instant::now();
        let scanned = tokio::task::spawn_blocking(move || {
            kind.visit(ScanLastRows {
                input: decompressed(file, gzip),
                format,
            })
        })
        .await
        .map_err(|e| open_error(format!("reading the file failed: {e}")))?;
        match scanned {
            Ok(last) => {
                tracing::info!(
                    keys = last.len(),
                    seconds = scan_started.elapsed().as_secs_f64(),
                    "first pass: found each key's last row"
                );
                Some(Arc::new(last))
            }
            // The second pass meets the same error and records it on the run.
            Err(_) => None,
        }
    } else {
        None
    };
    let file = File::open(path).map_err(|e| open_error(e.to_string()))?;
    let source = Source {
        name: path.to_path_buf(),
        format,
        gzip,
        trigger: RunTrigger::Cli,
        last_rows,
    };
    import_reader(db, kind, source, file, on_progress).await
}

/// Where an import's bytes come from, and how to read them.
pub struct Source {
    /// Shown in errors: the file's path, or a name for embedded data.
    pub name: PathBuf,
    pub format: Format,
    pub gzip: bool,
    /// Recorded on the run.
    pub trigger: RunTrigger,
    /// Each key's last row in the input (see [`LastRows`]). Without it, every row is written
    /// and the last one of a key wins all the same.
    pub last_rows: Option<Arc<LastRows>>,
}

/// Why an import left its run unfinished, as the next import of the kind records it.
const INTERRUPTED_IMPORT: &str =
    "the import stopped before it finished; only what it had committed stays";

/// Imports from any reader (a file, embedded sample data) as one ingest run. Imports of one
/// kind run one at a time: each holds the kind's lease (`import:KIND` in `provider_state`)
/// while it works, so a run left `running` by a killed import is known to be dead once its
/// lease lapses, and is marked interrupted by the next import (or a server's recovery).
pub async fn import_reader(
    db: &DatabaseConnection,
    kind: EntityKind,
    source: Source,
    input: impl Read + Send + 'static,
    on_progress: impl Fn(Progress) + Send + Sync,
) -> Result<ImportSummary, ImportError> {
    let rules = rules(kind)?;
    let provider = kind.import_provider();
    let lease = leases::hold(db, &provider).await?;
    let outcome = async {
        runs::interrupt_unfinished(db, &provider, INTERRUPTED_IMPORT).await?;
        kind.visit(Held {
            db,
            rules,
            provider: &provider,
            source,
            input: Box::new(input),
            on_progress: &on_progress,
        })
        .await
    }
    .await;
    lease.release().await;
    outcome
}

/// `input`, decompressed when `gzip`.
fn decompressed(input: impl Read + Send + 'static, gzip: bool) -> Box<dyn Read + Send> {
    if gzip {
        Box::new(MultiGzDecoder::new(BufReader::with_capacity(
            1 << 16,
            input,
        )))
    } else {
        Box::new(input)
    }
}

/// The first pass, for the kind's type.
struct ScanLastRows {
    input: Box<dyn Read + Send>,
    format: Format,
}

impl Visit for ScanLastRows {
    type Output = Result<LastRows, FileError>;
    fn visit<E: Entity>(self) -> Self::Output {
        LastRows::scan::<E, _>(BufReader::with_capacity(1 << 16, self.input), self.format)
    }
}

/// The import itself, once the kind's lease is held, for the kind's type.
struct Held<'a, P> {
    db: &'a DatabaseConnection,
    rules: ImportRules,
    provider: &'a str,
    source: Source,
    input: Box<dyn Read + Send>,
    on_progress: &'a P,
}

type ImportFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ImportSummary, ImportError>> + Send + 'a>>;

impl<'a, P: Fn(Progress) + Send + Sync> Visit for Held<'a, P> {
    type Output = ImportFuture<'a>;
    fn visit<E: Entity>(self) -> ImportFuture<'a> {
        Box::pin(import_held::<E, P>(self))
    }
}

/// One batch read from the file.
struct Batch<T> {
    records: Vec<T>,
    rejections: Vec<NewRejection>,
    /// Rows a later row of the same file replaces: counted, not written.
    superseded: u64,
    rows: u64,
}

async fn import_held<E: Entity, P: Fn(Progress) + Send + Sync>(
    held: Held<'_, P>,
) -> Result<ImportSummary, ImportError> {
    let Held {
        db,
        rules,
        provider,
        source,
        input,
        on_progress,
    } = held;
    let started = Instant::now();
    let path = source.name.as_path();
    let format = source.format;
    let bytes = Arc::new(AtomicU64::new(0));
    let counted = CountingReader {
        inner: input,
        bytes: bytes.clone(),
    };
    let reader = BufReader::with_capacity(1 << 16, decompressed(counted, source.gzip));

    let run_id = runs::start(db, provider, source.trigger, RunMode::Full).await?;
    let host_rules = HostRules::default();
    // The whole import's transaction, when it is one: on PostgreSQL, for the kinds that ask,
    // and for a first load into an empty table.
    let mut whole = None;
    let mut loading = None;
    if db.get_database_backend() == DbBackend::Postgres
        && (rules.one_transaction || !rules.first_load.is_empty())
    {
        let txn = db.begin().await?;
        if !rules.first_load.is_empty() {
            loading = first_load::begin(&txn, rules.first_load).await?;
        }
        if rules.one_transaction || loading.is_some() {
            E::begin_bulk(&txn, loading.is_some()).await?;
            whole = Some(txn);
        } else {
            txn.rollback().await?;
        }
    }
    let target = |bulk: bool| Target {
        provider,
        run_id,
        dataset: provider,
        host_rules: &host_rules,
        bulk,
        first_load: bulk && loading.is_some(),
    };

    // Batch by batch on PostgreSQL, the rows are split among writers by key: each key's rows
    // stay in file order on one writer (the last still wins), and the database works on
    // several batches at once. One transaction, or SQLite's one writer, takes one lane.
    let lanes = match (&whole, db.get_database_backend()) {
        (None, DbBackend::Postgres) => POSTGRES_WRITERS,
        _ => 1,
    };
    let size = batch_size(db.get_database_backend()) / lanes;
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..lanes)
        .map(|_| mpsc::channel::<Result<Batch<E::Record>, FileError>>(rules.read_ahead.max(1)))
        .unzip();
    let last_rows = source.last_rows.clone();
    let reader_thread = tokio::task::spawn_blocking(move || {
        read_batches::<E>(format, reader, size, last_rows, senders)
    });

    let outcome = std::sync::Mutex::new((
        ImportSummary {
            run_id,
            rows: 0,
            counts: UpsertCounts::default(),
            rejected: 0,
            bytes: 0,
            elapsed: Duration::ZERO,
        },
        None::<ImportError>,
    ));
    let failed = || {
        outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .is_some()
    };
    let drain = |mut receiver: mpsc::Receiver<Result<Batch<E::Record>, FileError>>| {
        let (whole, target, outcome, failed, bytes) = (&whole, &target, &outcome, &failed, &bytes);
        async move {
            while let Some(message) = receiver.recv().await {
                // Another writer failed: stop here too.
                if failed() {
                    break;
                }
                let written = match message {
                    Ok(batch) => {
                        let (rows, rejected) = (batch.rows, batch.rejections.len() as u64);
                        match whole {
                            Some(txn) => write_records::<E, _>(txn, &target(true), batch).await,
                            None => write_batch::<E>(db, &target(false), batch).await,
                        }
                        .map(|counts| (rows, rejected, counts))
                        .map_err(ImportError::from)
                    }
                    Err(source) => Err(ImportError::File {
                        path: path.to_path_buf(),
                        source,
                    }),
                };
                let mut outcome = outcome.lock().unwrap_or_else(|e| e.into_inner());
                match written {
                    Ok((rows, rejected, counts)) => {
                        let summary = &mut outcome.0;
                        summary.rows += rows;
                        summary.counts.add(counts);
                        summary.rejected += rejected;
                        on_progress(Progress {
                            bytes: bytes.load(Ordering::Relaxed),
                            rows: summary.rows,
                        });
                    }
                    Err(error) => {
                        outcome.1.get_or_insert(error);
                        break;
                    }
                }
            }
            // Dropping the receiver stops the reader if this writer gave up early.
        }
    };
    futures_util::future::join_all(receivers.into_iter().map(drain)).await;
    let _ = reader_thread.await;
    let (mut summary, mut failure) = outcome.into_inner().unwrap_or_else(|e| e.into_inner());

    let mut finished = false;
    if let Some(txn) = whole {
        match failure {
            // A database error ends the transaction: nothing of the import stays.
            Some(ImportError::Database(_)) => {
                // Ends the run row's lock before the failure is recorded below.
                let _ = txn.rollback().await;
            }
            // Otherwise what was read commits, with the deferred work and the run's outcome.
            _ => {
                let committed = async {
                    E::finish_bulk(&txn, loading.is_some()).await?;
                    if let Some(load) = loading {
                        first_load::finish(&txn, load, run_id, &mut summary.counts).await?;
                    }
                    runs::finish(
                        &txn,
                        run_id,
                        match failure {
                            None => RunStatus::Succeeded,
                            Some(_) => RunStatus::Failed,
                        },
                        failure.as_ref().map(ToString::to_string),
                    )
                    .await?;
                    txn.commit().await
                };
                match committed.await {
                    Ok(()) => finished = true,
                    Err(error) => failure = Some(error.into()),
                }
            }
        }
    }

    summary.bytes = bytes.load(Ordering::Relaxed);
    summary.elapsed = started.elapsed();
    match failure {
        None => {
            if !finished {
                runs::finish(db, run_id, RunStatus::Succeeded, None).await?;
            }
            if summary.counts.inserted + summary.counts.updated > 0 {
                refresh_statistics(db, rules.tables).await?;
            }
            Ok(summary)
        }
        Some(error) => {
            if !finished {
                runs::finish(db, run_id, RunStatus::Failed, Some(error.to_string())).await?;
            }
            Err(error)
        }
    }
}

/// After a bulk load the planner's row estimates are stale until autovacuum catches up, and
/// with them it picks slow plans for the first queries (seen: a 13 ms sort where a 0.4 ms
/// index scan serves). ANALYZE samples the table, so it costs little even for large ones.
async fn refresh_statistics(db: &DatabaseConnection, tables: &[&str]) -> Result<(), DbErr> {
    // One table per statement: SQLite's ANALYZE takes a single name.
    for table in tables {
        db.execute_unprepared(&format!("ANALYZE {table}")).await?;
    }
    Ok(())
}

/// One transaction: the records, their rejections and the run's counters.
async fn write_batch<E: Entity>(
    db: &DatabaseConnection,
    target: &Target<'_>,
    batch: Batch<E::Record>,
) -> Result<UpsertCounts, DbErr> {
    let txn = db.begin().await?;
    let counts = write_records::<E, _>(&txn, target, batch).await?;
    txn.commit().await?;
    Ok(counts)
}

/// The records, their rejections and the run's counters, in the caller's transaction.
async fn write_records<E: Entity, C: ConnectionTrait>(
    txn: &C,
    target: &Target<'_>,
    batch: Batch<E::Record>,
) -> Result<UpsertCounts, DbErr> {
    runs::lock_for_batch(txn, target.run_id).await?;
    let rejected = batch.rejections.len() as i64;
    let mut counts = E::write(txn, target, batch.records).await?;
    counts.superseded += batch.superseded;
    if !batch.rejections.is_empty() {
        rejected::insert(txn, target.provider, Some(target.run_id), &batch.rejections).await?;
    }
    runs::add_batch(
        txn,
        target.run_id,
        BatchProgress {
            pages: 1,
            fetched: batch.rows as i64,
            counts,
            rejected,
        },
    )
    .await?;
    Ok(counts)
}

/// The reader thread: rows into batches, one per writer (`senders`), a record going to the
/// writer its key picks, until the file ends, a fatal error, or a writer hangs up.
fn read_batches<E: Entity>(
    format: Format,
    reader: impl Read + Send + 'static,
    size: usize,
    last_rows: Option<Arc<LastRows>>,
    senders: Vec<mpsc::Sender<Result<Batch<E::Record>, FileError>>>,
) {
    let rows = match read::records::<E, _>(reader, format) {
        Ok(rows) => rows,
        Err(error) => {
            if let Some(first) = senders.first() {
                let _ = first.blocking_send(Err(error));
            }
            return;
        }
    };
    let mut ordinal = 0u64;
    let mut fate = |record: &E::Record| {
        let fate = match &last_rows {
            Some(last) => last.fate(ordinal, &E::key(record)),
            None => Fate::Write,
        };
        ordinal += 1;
        fate
    };
    let new_batch = || Batch {
        records: Vec::with_capacity(size),
        rejections: Vec::new(),
        superseded: 0,
        rows: 0,
    };
    let lane_of = |record: &E::Record| match senders.len() {
        1 => 0,
        n => {
            (BuildHasherDefault::<DefaultHasher>::default().hash_one(E::key(record)) % n as u64)
                as usize
        }
    };
    let mut batches: Vec<Batch<E::Record>> = senders.iter().map(|_| new_batch()).collect();
    for row in rows {
        let lane = match row {
            Ok(Row::Record { record, .. }) => {
                let lane = lane_of(&record);
                match fate(&record) {
                    Fate::Write => batches[lane].records.push(record),
                    Fate::Superseded => batches[lane].superseded += 1,
                }
                lane
            }
            Ok(Row::Rejected(r)) => {
                batches[0].rejections.push(NewRejection {
                    external_id: None,
                    line: Some(r.line as i64),
                    reason: r.reason,
                    payload: Some(r.payload),
                    message: None,
                });
                0
            }
            Err(error) => {
                // Commit what was read before the fatal error, then report it.
                for (batch, sender) in batches.into_iter().zip(&senders) {
                    if batch.rows > 0 && sender.blocking_send(Ok(batch)).is_err() {
                        return;
                    }
                }
                let _ = senders[0].blocking_send(Err(error));
                return;
            }
        };
        batches[lane].rows += 1;
        if batches[lane].rows as usize >= size
            && senders[lane]
                .blocking_send(Ok(std::mem::replace(&mut batches[lane], new_batch())))
                .is_err()
        {
            return;
        }
    }
    for (batch, sender) in batches.into_iter().zip(&senders) {
        if batch.rows > 0 && sender.blocking_send(Ok(batch)).is_err() {
            return;
        }
    }
}

/// Counts the bytes read from the file, for progress.
struct CountingReader<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
