//! A `kafka` provider's run: consume without end, and commit each batch — rows, raw payloads,
//! rejections, counters and the next offset of every partition in it — in one transaction.
//! Before writing, the transaction locks the partitions' offset rows and drops every message
//! below the stored offset (and any repeated within the batch): a message delivered again, after
//! a crash or while a rebalance moves its partition, is never stored twice.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, TransactionSession, TransactionTrait,
};
use tokio::sync::mpsc;

use super::write::{MappedBatch, Written, map_items, write_mapped};
use super::{IngestError, Prepared, RunContext, RunSummary};
use crate::entities::{Entity, Visit};
use crate::kafka::LastError;
use crate::providers::Source;
use crate::sources::kafka::{Consumer, Positions};
use crate::store::first_load::{self, FirstLoad};
use crate::store::kafka_offsets::{self, Partition};
use crate::store::runs;
use crate::task::AbortOnDrop;

/// How often the consumer re-reads the stored offsets (for assignments), records which
/// partitions it owns with their high watermarks, and shows a broker problem on the run.
const HOUSEKEEPING: Duration = Duration::from_secs(2);

/// The longest a first load holds its tables before it commits, caught up or not.
const LOAD_AT_MOST: Duration = Duration::from_secs(600);

/// Runs until cancelled: `Ok(false)`.
pub async fn consume(
    ctx: &RunContext<'_>,
    prepared: Arc<Prepared>,
    run_id: i64,
    summary: &mut RunSummary,
) -> Result<bool, IngestError> {
    let entity = prepared.provider.def.entity;
    entity
        .visit(Consume {
            ctx,
            prepared,
            run_id,
            summary,
        })
        .await
}

struct Consume<'a, 'b> {
    ctx: &'a RunContext<'b>,
    prepared: Arc<Prepared>,
    run_id: i64,
    summary: &'a mut RunSummary,
}

type ConsumeFuture<'a> = Pin<Box<dyn Future<Output = Result<bool, IngestError>> + Send + 'a>>;

impl<'a, 'b: 'a> Visit for Consume<'a, 'b> {
    type Output = ConsumeFuture<'a>;
    fn visit<E: Entity>(self) -> ConsumeFuture<'a> {
        Box::pin(consume_as::<E>(
            self.ctx,
            self.prepared,
            self.run_id,
            self.summary,
        ))
    }
}

/// Messages mapped together, and whether more were waiting.
struct Batch<R> {
    messages: Vec<Mapped<R>>,
    more: bool,
}

/// One message, mapped to the provider's entity kind.
struct Mapped<R> {
    partition: Partition,
    offset: i64,
    batch: MappedBatch<R>,
}

async fn consume_as<E: Entity>(
    ctx: &RunContext<'_>,
    prepared: Arc<Prepared>,
    run_id: i64,
    summary: &mut RunSummary,
) -> Result<bool, IngestError> {
    let provider = &prepared.provider;
    let Source::Kafka(source) = &provider.def.source else {
        return Err(IngestError::Provider("not a kafka provider".into()));
    };
    let name = provider.name.clone();
    let schema = match &source.schema {
        Some(schema) => {
            let path = provider
                .path
                .parent()
                .map(|dir| dir.join(schema))
                .unwrap_or_else(|| schema.into());
            Some(tokio::fs::read_to_string(&path).await.map_err(|e| {
                IngestError::Provider(format!(
                    "source.schema: cannot read {} ({e})",
                    path.display()
                ))
            })?)
        }
        None => None,
    };
    let owner = match runs::get(ctx.db, run_id).await?.and_then(|r| r.owner) {
        Some(owner) => owner,
        None => format!("ingest-{}", std::process::id()),
    };
    let group = source
        .group
        .clone()
        .unwrap_or_else(|| format!("tributary-{name}"));
    let positions = Arc::new(Positions::default());
    positions.set_stored(kafka_offsets::stored(ctx.db, &name).await?);
    let last_error = Arc::new(LastError::default());
    let consumer = Arc::new(
        Consumer::new(
            &name,
            source,
            &group,
            schema.as_deref(),
            positions.clone(),
            last_error.clone(),
        )
        .map_err(IngestError::Provider)?,
    );
    tracing::info!(provider = %name, %group, topics = ?source.topics, "consuming");

    // Messages are received, decoded and mapped on their own task while the batch before is
    // written: one batch waits at most, so a slow database slows consumption and memory stays
    // bounded.
    let keep_raw = prepared.provider.keep_raw();
    let (sender, mut batches) = mpsc::channel::<Batch<E::Record>>(1);
    let cancel = ctx.cancel.clone();
    let receiver = AbortOnDrop(tokio::spawn({
        let consumer = consumer.clone();
        let prepared = prepared.clone();
        async move {
            while !cancel.is_cancelled() {
                let started = Instant::now();
                let received = consumer.next_batch(Duration::from_millis(500)).await;
                let got = started.elapsed();
                let mut messages = Vec::with_capacity(received.messages.len());
                for message in received.messages {
                    let mut batch = MappedBatch::default();
                    map_items::<E>(&prepared, message.items, keep_raw, &mut batch);
                    messages.push(Mapped {
                        partition: message.partition,
                        offset: message.offset,
                        batch,
                    });
                    // Lets the writer, woken by this task, run while a batch is mapped.
                    tokio::task::coop::consume_budget().await;
                }
                let mapped = started.elapsed() - got;
                let batch = Batch {
                    messages,
                    more: received.more,
                };
                let size = batch.messages.len();
                if sender.send(batch).await.is_err() {
                    return;
                }
                if size > 0 {
                    tracing::debug!(size, ?got, ?mapped, waited = ?(started.elapsed() - got - mapped), "batch received");
                }
            }
        }
    }));

    // A backlog found when the kind's tables are empty is loaded as a file import is: in one
    // transaction that holds the tables, without their indexes until it has caught up.
    let load_tables = E::IMPORT.map(|rules| rules.first_load).unwrap_or_default();
    let mut may_load =
        ctx.db.get_database_backend() == DbBackend::Postgres && !load_tables.is_empty();
    let mut load: Option<Load> = None;
    let mut housekeeping = Instant::now();
    let mut problem: Option<String> = None;
    while let Some(Batch {
        messages: batch,
        more,
    }) = batches.recv().await
    {
        if may_load && !batch.is_empty() {
            may_load = false;
            if more || consumer.behind() {
                load = Load::begin::<E>(ctx, load_tables).await?;
            }
        }
        if !batch.is_empty() {
            let started = Instant::now();
            let written = match &mut load {
                Some(loading) => {
                    let (written, next) = commit::<E, _>(
                        &loading.txn,
                        &prepared,
                        run_id,
                        &owner,
                        keep_raw,
                        true,
                        batch,
                    )
                    .await?;
                    loading.next.extend(next);
                    written
                }
                None => {
                    let (written, next) =
                        commit::<E, _>(ctx.db, &prepared, run_id, &owner, keep_raw, false, batch)
                            .await?;
                    consumer.commit(&next);
                    positions.set_stored(next);
                    written
                }
            };
            tracing::debug!(loading = load.is_some(), elapsed = ?started.elapsed(), "batch written");
            if let Some(written) = written {
                summary.add(&written);
                (ctx.on_progress)(summary.progress());
            }
        }
        // The load ends once the consumer has caught up (no message was waiting when the
        // batch closed, and the broker has none past it), when the run is asked to stop, or
        // after `LOAD_AT_MOST`, so that it commits whatever producers do.
        let ends = match &load {
            Some(loading) => {
                ctx.cancel.is_cancelled()
                    || loading.started.elapsed() >= LOAD_AT_MOST
                    || (!more && !consumer.behind())
            }
            None => false,
        };
        if let Some(loading) = load.take_if(|_| ends) {
            let next = loading.finish::<E>(run_id, summary).await?;
            tracing::info!(provider = %name, rows = summary.counts.inserted, "first load committed, indexes built");
            consumer.commit(&next);
            positions.set_stored(next);
            (ctx.on_progress)(summary.progress());
        }
        if housekeeping.elapsed() >= HOUSEKEEPING {
            housekeeping = Instant::now();
            // During a load its transaction holds the run's and the offsets' rows.
            let shown = last_error.recent(HOUSEKEEPING * 3);
            if shown != problem {
                match &load {
                    Some(loading) => runs::set_problem(&loading.txn, run_id, shown.clone()).await?,
                    None => runs::set_problem(ctx.db, run_id, shown.clone()).await?,
                }
                problem = shown;
                (ctx.on_progress)(summary.progress());
            }
            match &load {
                Some(loading) => observe(&loading.txn, &name, &owner, &positions, false).await?,
                None => observe(ctx.db, &name, &owner, &positions, true).await?,
            }
        }
        if ctx.cancel.is_cancelled() {
            break;
        }
    }
    drop(receiver);
    Ok(false)
}

/// A first load under way: its transaction, and the next offsets it will store.
struct Load {
    txn: DatabaseTransaction,
    held: FirstLoad,
    next: HashMap<Partition, i64>,
    started: Instant,
}

impl Load {
    /// Takes the kind's `tables` when every one is empty; `None` (nothing held) otherwise.
    async fn begin<E: Entity>(
        ctx: &RunContext<'_>,
        tables: &[first_load::Table],
    ) -> Result<Option<Load>, IngestError> {
        let txn = ctx.db.begin().await?;
        let Some(held) = first_load::begin(&txn, tables).await? else {
            txn.rollback().await?;
            return Ok(None);
        };
        E::begin_bulk(&txn, true).await?;
        Ok(Some(Load {
            txn,
            held,
            next: HashMap::new(),
            started: Instant::now(),
        }))
    }

    /// Settles repeated keys, builds the indexes and commits; returns the stored offsets.
    async fn finish<E: Entity>(
        self,
        run_id: i64,
        summary: &mut RunSummary,
    ) -> Result<HashMap<Partition, i64>, IngestError> {
        E::finish_bulk(&self.txn, true).await?;
        first_load::finish(&self.txn, self.held, run_id, &mut summary.counts).await?;
        self.txn.commit().await?;
        Ok(self.next)
    }
}

/// Records the owned partitions with their high watermarks (and lag metrics), and re-reads
/// the stored offsets of all, for the next assignment (`committed`: `db` is not a load's
/// transaction, whose offsets may yet roll back).
async fn observe<C: ConnectionTrait>(
    db: &C,
    name: &str,
    owner: &str,
    positions: &Positions,
    committed: bool,
) -> Result<(), IngestError> {
    let assigned = positions.assigned();
    for partition in &assigned {
        let high = positions.high_watermark(partition);
        kafka_offsets::observe(db, name, partition, high, owner).await?;
    }
    let stored = kafka_offsets::stored(db, name).await?;
    for partition in &assigned {
        if let (Some(high), Some(next)) =
            (positions.high_watermark(partition), stored.get(partition))
        {
            metrics::gauge!("kafka_consumer_lag", "provider" => name.to_string(), "topic" => partition.0.clone(), "partition" => partition.1.to_string())
                .set((high - next).max(0) as f64);
        }
    }
    // A load's offsets are not stored until it commits: assignments keep the committed ones.
    if committed {
        positions.set_stored(stored);
    }
    Ok(())
}

/// One batch in one transaction (a savepoint of a load's), fenced by the stored offsets. Returns what was written (none
/// when every message had been stored already) and the partitions' next offsets.
async fn commit<E: Entity, C: TransactionTrait>(
    db: &C,
    prepared: &Prepared,
    run_id: i64,
    owner: &str,
    keep_raw: bool,
    first_load: bool,
    batch: Vec<Mapped<E::Record>>,
) -> Result<(Option<Written>, HashMap<Partition, i64>), IngestError> {
    let name = &prepared.provider.name;
    let mut partitions: Vec<Partition> = batch.iter().map(|d| d.partition.clone()).collect();
    partitions.sort();
    partitions.dedup();
    let txn = db.begin().await?;
    runs::lock_for_batch(&txn, run_id).await?;
    let stored = kafka_offsets::lock(&txn, name, &partitions).await?;
    let mut next: HashMap<Partition, i64> = stored.clone();
    let mut merged = MappedBatch::default();
    let mut kept = 0usize;
    for message in batch {
        let expected = next.get(&message.partition).copied().unwrap_or(i64::MIN);
        if message.offset < expected {
            continue; // stored before (or earlier in this batch)
        }
        next.insert(message.partition, message.offset + 1);
        merged.append(message.batch);
        kept += 1;
    }
    if kept == 0 {
        txn.rollback().await?;
        return Ok((None, next));
    }
    let written =
        write_mapped::<E, _>(&txn, prepared, run_id, merged, keep_raw, first_load).await?;
    for (partition, offset) in &next {
        if stored.get(partition) != Some(offset) {
            kafka_offsets::advance(&txn, name, partition, *offset, owner).await?;
        }
    }
    txn.commit().await?;
    Ok((Some(written), next))
}
