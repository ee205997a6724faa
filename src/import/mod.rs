//! Bulk import of an entity's canonical file format (`tributary import ENTITY FILE`).
//!
//! A blocking reader thread decompresses and parses the file into batches; a bounded channel
//! hands them to the writer, which commits each batch — records, rejections and the run's
//! counters — in one transaction. Memory is bounded by the batch size and the channel depth,
//! whatever the file size, and a slow database slows the reader rather than filling memory.

pub mod ethereum;
pub mod products;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flate2::read::MultiGzDecoder;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, TransactionTrait};
use tokio::sync::mpsc;

use self::ethereum::{FileError, Format, Row};
use crate::ethereum::{TokenRecord, TransferRecord};
use crate::store::leases;
use crate::store::products::{self as product_store, Counts, ProductRecord};
use crate::store::rejected::{self, NewRejection};
use crate::store::runs::{self, BatchProgress, RunMode, RunStatus, RunTrigger};
use crate::store::upsert::UpsertCounts;
use crate::store::{tokens, transfers};

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Entity {
    #[value(alias = "tokens")]
    Token,
    #[value(alias = "transfers")]
    Transfer,
    /// `name,sku,description` CSV (or JSON lines with those keys).
    #[value(alias = "products")]
    Product,
}

impl Entity {
    /// The provider name runs and rejections of an import are recorded under.
    pub fn provider(self) -> &'static str {
        match self {
            Entity::Token => "import:token",
            Entity::Transfer => "import:transfer",
            Entity::Product => "import:product",
        }
    }
}

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
    #[error("{path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    File { path: PathBuf, source: FileError },
    /// Shown without the driver's detail, which may quote a URL.
    #[error("database: {}", crate::db::brief(.0))]
    Database(#[from] DbErr),
}

enum Records {
    Tokens(Vec<TokenRecord>),
    Transfers(Vec<TransferRecord>),
    Products(Vec<ProductRecord>),
}

struct Batch {
    records: Records,
    rejections: Vec<NewRejection>,
    /// Rows a later row of the same file replaces: counted, not written.
    superseded: u64,
    rows: u64,
}

/// Batches the reader may have ready ahead of the writer. The product reader is far faster
/// than the writer (which also moves the counts), so one is enough there, and memory stays
/// lower.
fn channel_depth(entity: Entity) -> usize {
    match entity {
        Entity::Product => 1,
        _ => 2,
    }
}

/// Rows per transaction: PostgreSQL takes large array statements well; SQLite prefers
/// smaller transactions so readers are not held up long. (Products in batches of 50,000 were
/// 13% faster on 500,000 rows, as fewer count rows are touched, but peaked at 233 MB.)
fn batch_size(backend: DbBackend, _entity: Entity) -> usize {
    match backend {
        DbBackend::Postgres => 20_000,
        _ => 5_000,
    }
}

/// Imports `path` into `entity`'s table as one ingest run. Rows that cannot be stored go to
/// `rejected_records`; everything committed before a fatal error stays.
pub async fn import_file(
    db: &DatabaseConnection,
    entity: Entity,
    path: &Path,
    on_progress: impl Fn(Progress) + Send + Sync,
) -> Result<ImportSummary, ImportError> {
    let open_error = |reason: String| ImportError::Open {
        path: path.to_path_buf(),
        reason,
    };
    let format = Format::from_path(path).map_err(open_error)?;
    let gzip = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    // Products: a first pass finds each SKU's last row, so each product is written once.
    let last_rows = if entity == Entity::Product {
        let file = File::open(path).map_err(|e| open_error(e.to_string()))?;
        let scan_started = Instant::now();
        let scanned = tokio::task::spawn_blocking(move || {
            let reader: Box<dyn Read + Send> = if gzip {
                Box::new(MultiGzDecoder::new(BufReader::with_capacity(1 << 16, file)))
            } else {
                Box::new(file)
            };
            products::LastRows::scan(BufReader::with_capacity(1 << 16, reader), format)
        })
        .await
        .map_err(|e| open_error(format!("reading the file failed: {e}")))?;
        match scanned {
            Ok(last) => {
                tracing::info!(
                    skus = last.len(),
                    seconds = scan_started.elapsed().as_secs_f64(),
                    "first pass: found each SKU's last row"
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
    import_reader(db, entity, source, file, on_progress).await
}

/// Where an import's bytes come from, and how to read them.
pub struct Source {
    /// Shown in errors: the file's path, or a name for embedded data.
    pub name: PathBuf,
    pub format: Format,
    pub gzip: bool,
    /// Recorded on the run.
    pub trigger: RunTrigger,
    /// Products: each SKU's last row in the input (see [`products::LastRows`]). Without it,
    /// every row is written and the last one of a SKU wins all the same.
    pub last_rows: Option<Arc<products::LastRows>>,
}

/// Why an import left its run unfinished, as the next import of the entity records it.
const INTERRUPTED_IMPORT: &str =
    "the import stopped before it finished; only what it had committed stays";

/// Imports from any reader (a file, embedded sample data) as one ingest run. Imports of one
/// entity run one at a time: each holds the entity's lease (`import:ENTITY` in
/// `provider_state`) while it works, so a run left `running` by a killed import is known to be
/// dead once its lease lapses, and is marked failed by the next import (or a server's
/// recovery).
pub async fn import_reader(
    db: &DatabaseConnection,
    entity: Entity,
    source: Source,
    input: impl Read + Send + 'static,
    on_progress: impl Fn(Progress) + Send + Sync,
) -> Result<ImportSummary, ImportError> {
    let lease = leases::hold(db, entity.provider()).await?;
    let outcome = async {
        runs::interrupt_unfinished(db, entity.provider(), INTERRUPTED_IMPORT).await?;
        import_held(db, entity, source, input, on_progress).await
    }
    .await;
    lease.release().await;
    outcome
}

/// The import itself, once the entity's lease is held.
async fn import_held(
    db: &DatabaseConnection,
    entity: Entity,
    source: Source,
    input: impl Read + Send + 'static,
    on_progress: impl Fn(Progress) + Send + Sync,
) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    let path = source.name.as_path();
    let format = source.format;
    let bytes = Arc::new(AtomicU64::new(0));
    let counted = CountingReader {
        inner: input,
        bytes: bytes.clone(),
    };
    let reader: Box<dyn Read + Send> = if source.gzip {
        Box::new(MultiGzDecoder::new(BufReader::with_capacity(
            1 << 16,
            counted,
        )))
    } else {
        Box::new(counted)
    };
    let reader = BufReader::with_capacity(1 << 16, reader);

    let run_id = runs::start(db, entity.provider(), source.trigger, RunMode::Full).await?;
    let (sender, mut receiver) = mpsc::channel::<Result<Batch, FileError>>(channel_depth(entity));
    let size = batch_size(db.get_database_backend(), entity);
    let last_rows = source.last_rows.clone();
    let reader_thread = tokio::task::spawn_blocking(move || {
        read_batches(entity, format, reader, size, last_rows, sender)
    });

    let mut summary = ImportSummary {
        run_id,
        rows: 0,
        counts: UpsertCounts::default(),
        rejected: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
    };
    let mut failure: Option<ImportError> = None;
    // The whole import's transaction, when it has one (see `one_transaction`).
    let mut whole = None;
    if one_transaction(db.get_database_backend(), entity) {
        let txn = db.begin().await?;
        product_store::defer_counts(&txn).await?;
        whole = Some(txn);
    }
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
        let written = match &whole {
            Some(txn) => write_records(txn, entity, run_id, &batch, Counts::Deferred).await,
            None => write_batch(db, entity, run_id, &batch).await,
        };
        match written {
            Ok(counts) => {
                summary.rows += batch.rows;
                summary.counts.add(counts);
                summary.rejected += batch.rejections.len() as u64;
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
            // Otherwise what was read commits, with the counts and the run's outcome, at once.
            _ => {
                let committed = async {
                    product_store::apply_deferred_counts(&txn).await?;
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
                refresh_statistics(db, entity).await?;
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
async fn refresh_statistics(db: &DatabaseConnection, entity: Entity) -> Result<(), DbErr> {
    let tables: &[&str] = match entity {
        Entity::Token => &["tokens"],
        Entity::Transfer => &["transfers"],
        Entity::Product => &["products", "product_counts"],
    };
    // One table per statement: SQLite's ANALYZE takes a single name.
    for table in tables {
        db.execute_unprepared(&format!("ANALYZE {table}")).await?;
    }
    Ok(())
}

/// Whether an import is one transaction rather than one per batch: products on PostgreSQL,
/// so that `product_counts` is written once per name at the end rather than once per batch
/// (500,000 rows: about a third of the import's time). The file is then stored whole or, after
/// a crash or a database error, not at all. SQLite commits each batch so the server's other
/// writers (it has one write lock) wait seconds at most.
fn one_transaction(backend: DbBackend, entity: Entity) -> bool {
    backend == DbBackend::Postgres && entity == Entity::Product
}

/// One transaction: the records, their rejections and the run's counters.
async fn write_batch(
    db: &DatabaseConnection,
    entity: Entity,
    run_id: i64,
    batch: &Batch,
) -> Result<UpsertCounts, DbErr> {
    let txn = db.begin().await?;
    let counts = write_records(&txn, entity, run_id, batch, Counts::Immediate).await?;
    txn.commit().await?;
    Ok(counts)
}

/// The records, their rejections and the run's counters, in the caller's transaction.
async fn write_records<C: ConnectionTrait>(
    txn: &C,
    entity: Entity,
    run_id: i64,
    batch: &Batch,
    product_counts: Counts,
) -> Result<UpsertCounts, DbErr> {
    runs::lock_for_batch(txn, run_id).await?;
    let mut counts = match &batch.records {
        Records::Tokens(records) => tokens::upsert(txn, records).await?,
        Records::Transfers(records) => transfers::upsert(txn, records).await?,
        Records::Products(records) => {
            product_store::upsert_with(txn, entity.provider(), records, product_counts).await?
        }
    };
    counts.superseded += batch.superseded;
    if !batch.rejections.is_empty() {
        rejected::insert(txn, entity.provider(), Some(run_id), &batch.rejections).await?;
    }
    runs::add_batch(
        txn,
        run_id,
        BatchProgress {
            pages: 1,
            fetched: batch.rows as i64,
            counts,
            rejected: batch.rejections.len() as i64,
        },
    )
    .await?;
    Ok(counts)
}

/// The reader thread: rows into batches, until the file ends, a fatal error, or the writer
/// hangs up.
fn read_batches(
    entity: Entity,
    format: Format,
    reader: impl Read + Send + 'static,
    size: usize,
    last_rows: Option<Arc<products::LastRows>>,
    sender: mpsc::Sender<Result<Batch, FileError>>,
) {
    match entity {
        Entity::Token => match ethereum::tokens(reader, format) {
            Ok(rows) => batch_rows(rows, size, &sender, Records::Tokens, write_all),
            Err(error) => {
                let _ = sender.blocking_send(Err(error));
            }
        },
        Entity::Transfer => match ethereum::transfers(reader, format) {
            Ok(rows) => batch_rows(rows, size, &sender, Records::Transfers, write_all),
            Err(error) => {
                let _ = sender.blocking_send(Err(error));
            }
        },
        Entity::Product => match products::products(reader, format) {
            Ok(rows) => {
                let mut ordinal = 0u64;
                let fate = |record: &ProductRecord| {
                    let fate = match &last_rows {
                        Some(last) => last.fate(ordinal, record),
                        None => products::Fate::Write,
                    };
                    ordinal += 1;
                    fate
                };
                batch_rows(rows, size, &sender, Records::Products, fate)
            }
            Err(error) => {
                let _ = sender.blocking_send(Err(error));
            }
        },
    }
}

fn write_all<T>(_: &T) -> products::Fate {
    products::Fate::Write
}

fn batch_rows<T>(
    rows: impl Iterator<Item = Result<Row<T>, FileError>>,
    size: usize,
    sender: &mpsc::Sender<Result<Batch, FileError>>,
    wrap: fn(Vec<T>) -> Records,
    mut fate: impl FnMut(&T) -> products::Fate,
) {
    let mut records = Vec::with_capacity(size);
    let mut rejections = Vec::new();
    let mut superseded = 0u64;
    let mut count = 0u64;
    for row in rows {
        match row {
            Ok(Row::Record { record, .. }) => match fate(&record) {
                products::Fate::Write => records.push(record),
                products::Fate::Superseded => superseded += 1,
            },
            Ok(Row::Rejected(r)) => rejections.push(NewRejection {
                external_id: None,
                line: Some(r.line as i64),
                reason: r.reason,
                payload: Some(r.payload),
            }),
            Err(error) => {
                // Commit what was read before the fatal error, then report it.
                let batch = Batch {
                    records: wrap(std::mem::take(&mut records)),
                    rejections: std::mem::take(&mut rejections),
                    superseded: std::mem::take(&mut superseded),
                    rows: count,
                };
                if count > 0 && sender.blocking_send(Ok(batch)).is_err() {
                    return;
                }
                let _ = sender.blocking_send(Err(error));
                return;
            }
        }
        count += 1;
        if count as usize >= size {
            let batch = Batch {
                records: wrap(std::mem::replace(&mut records, Vec::with_capacity(size))),
                rejections: std::mem::take(&mut rejections),
                superseded: std::mem::take(&mut superseded),
                rows: count,
            };
            count = 0;
            if sender.blocking_send(Ok(batch)).is_err() {
                return;
            }
        }
    }
    if count > 0 {
        let batch = Batch {
            records: wrap(records),
            rejections,
            superseded,
            rows: count,
        };
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
