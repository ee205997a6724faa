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

/// Rows per transaction: PostgreSQL takes large array statements well; SQLite prefers
/// smaller transactions so readers are not held up long. (Products in batches of 50,000 were
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
    let (sender, mut receiver) =
        mpsc::channel::<Result<Batch<E::Record>, FileError>>(rules.read_ahead.max(1));
    let size = batch_size(db.get_database_backend());
    let last_rows = source.last_rows.clone();
    let reader_thread = tokio::task::spawn_blocking(move || {
        read_batches::<E>(format, reader, size, last_rows, sender)
    });

    let mut summary = ImportSummary {
        run_id,
        rows: 0,
        counts: UpsertCounts::default(),
        rejected: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
    };
    let host_rules = HostRules::default();
    let mut failure: Option<ImportError> = None;
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
    while let Some(message) = receiver.recv().await {
        let batch = match message {
            Ok(batch) => batch,
            Err(source) => {
                failure = Some(ImportError::File {
                    path: path.to_path_buf(),
                    source,
                });
                break;
            }
        };
        let (rows, rejected) = (batch.rows, batch.rejections.len() as u64);
        let written = match &whole {
            Some(txn) => write_records::<E, _>(txn, &target(true), batch).await,
            None => write_batch::<E>(db, &target(false), batch).await,
        };
        match written {
            Ok(counts) => {
                summary.rows += rows;
                summary.counts.add(counts);
                summary.rejected += rejected;
                on_progress(Progress {
                    bytes: bytes.load(Ordering::Relaxed),
                    rows: summary.rows,
                });
            }
            Err(error) => {
                failure = Some(error.into());
                break;
            }
        }
    }
    // Stop the reader if the writer gave up early; it notices the closed channel.
    drop(receiver);
    let _ = reader_thread.await;

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
                        let repeated = first_load::finish(&txn, load).await?;
                        if repeated > 0 {
                            runs::supersede(&txn, run_id, repeated).await?;
                            summary.counts.inserted =
                                summary.counts.inserted.saturating_sub(repeated);
                            summary.counts.superseded += repeated;
                        }
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

/// The reader thread: rows into batches, until the file ends, a fatal error, or the writer
/// hangs up.
fn read_batches<E: Entity>(
    format: Format,
    reader: impl Read + Send + 'static,
    size: usize,
    last_rows: Option<Arc<LastRows>>,
    sender: mpsc::Sender<Result<Batch<E::Record>, FileError>>,
) {
    let rows = match read::records::<E, _>(reader, format) {
        Ok(rows) => rows,
        Err(error) => {
            let _ = sender.blocking_send(Err(error));
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
    let mut batch = new_batch();
    for row in rows {
        match row {
            Ok(Row::Record { record, .. }) => match fate(&record) {
                Fate::Write => batch.records.push(record),
                Fate::Superseded => batch.superseded += 1,
            },
            Ok(Row::Rejected(r)) => batch.rejections.push(NewRejection {
                external_id: None,
                line: Some(r.line as i64),
                reason: r.reason,
                payload: Some(r.payload),
                message: None,
            }),
            Err(error) => {
                // Commit what was read before the fatal error, then report it.
                if batch.rows > 0 && sender.blocking_send(Ok(batch)).is_err() {
                    return;
                }
                let _ = sender.blocking_send(Err(error));
                return;
            }
        }
        batch.rows += 1;
        if batch.rows as usize >= size
            && sender
                .blocking_send(Ok(std::mem::replace(&mut batch, new_batch())))
                .is_err()
        {
            return;
        }
    }
    if batch.rows > 0 {
        let _ = sender.blocking_send(Ok(batch));
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
