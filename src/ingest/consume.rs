//! A `kafka` provider's run: consume without end, and commit each batch — rows, raw payloads,
//! rejections, counters and the next offset of every partition in it — in one transaction.
//! Before writing, the transaction locks the partitions' offset rows and drops every message
//! below the stored offset (and any repeated within the batch): a message delivered again, after
//! a crash or while a rebalance moves its partition, is never stored twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::TransactionTrait;
use tokio::sync::mpsc;

use super::write::{Batch, Item, write_batch};
use super::{IngestError, Prepared, RunContext, RunSummary};
use crate::kafka::LastError;
use crate::providers::Source;
use crate::sources::kafka::{Consumer, Delivered, Positions};
use crate::store::kafka_offsets::{self, Partition};
use crate::store::runs;
use crate::task::AbortOnDrop;

/// How often the consumer re-reads the stored offsets (for assignments), records which
/// partitions it owns with their high watermarks, and shows a broker problem on the run.
const HOUSEKEEPING: Duration = Duration::from_secs(2);

/// Runs until cancelled: `Ok(false)`.
pub async fn consume(
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
    positions.set_stored(
        kafka_offsets::next_offsets(ctx.db, &name, &all_partitions(ctx, &name).await?).await?,
    );
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

    // Messages are received and decoded on their own task while the batch before is written:
    // one batch waits at most, so a slow database slows consumption and memory stays bounded.
    let (sender, mut batches) = mpsc::channel::<Vec<Delivered>>(1);
    let cancel = ctx.cancel.clone();
    let receiver = AbortOnDrop(tokio::spawn({
        let consumer = consumer.clone();
        async move {
            while !cancel.is_cancelled() {
                let batch = consumer.next_batch(Duration::from_millis(500)).await;
                if sender.send(batch).await.is_err() {
                    return;
                }
            }
        }
    }));

    let mut housekeeping = Instant::now();
    let mut problem: Option<String> = None;
    while let Some(batch) = batches.recv().await {
        if !batch.is_empty() {
            let (written, next) = commit(ctx, &prepared, run_id, &owner, batch).await?;
            consumer.commit(&next);
            positions.set_stored(next);
            if let Some(written) = written {
                summary.add(&written);
                (ctx.on_progress)(summary.progress());
            }
        }
        if housekeeping.elapsed() >= HOUSEKEEPING {
            housekeeping = Instant::now();
            let shown = last_error.recent(HOUSEKEEPING * 3);
            if shown != problem {
                runs::set_problem(ctx.db, run_id, shown.clone()).await?;
                problem = shown;
                (ctx.on_progress)(summary.progress());
            }
            observe(ctx, &name, &owner, &positions).await?;
        }
        if ctx.cancel.is_cancelled() {
            break;
        }
    }
    drop(receiver);
    Ok(false)
}

/// Every partition the provider has a row for.
async fn all_partitions(ctx: &RunContext<'_>, name: &str) -> Result<Vec<Partition>, IngestError> {
    Ok(kafka_offsets::list(ctx.db, name)
        .await?
        .into_iter()
        .map(|row| (row.topic, row.partition))
        .collect())
}

/// Records the owned partitions with their high watermarks (and lag metrics), and re-reads
/// the stored offsets of all, for the next assignment.
async fn observe(
    ctx: &RunContext<'_>,
    name: &str,
    owner: &str,
    positions: &Positions,
) -> Result<(), IngestError> {
    let assigned = positions.assigned();
    for partition in &assigned {
        let high = positions.high_watermark(partition);
        kafka_offsets::observe(ctx.db, name, partition, high, owner).await?;
    }
    let all = all_partitions(ctx, name).await?;
    let stored = kafka_offsets::next_offsets(ctx.db, name, &all).await?;
    for partition in &assigned {
        if let (Some(high), Some(next)) =
            (positions.high_watermark(partition), stored.get(partition))
        {
            metrics::gauge!("kafka_consumer_lag", "provider" => name.to_string(), "topic" => partition.0.clone(), "partition" => partition.1.to_string())
                .set((high - next).max(0) as f64);
        }
    }
    positions.set_stored(stored);
    Ok(())
}

/// One batch in one transaction, fenced by the stored offsets. Returns what was written (none
/// when every message had been stored already) and the partitions' next offsets.
async fn commit(
    ctx: &RunContext<'_>,
    prepared: &Prepared,
    run_id: i64,
    owner: &str,
    batch: Vec<Delivered>,
) -> Result<(Option<super::write::Written>, HashMap<Partition, i64>), IngestError> {
    let name = &prepared.provider.name;
    let mut partitions: Vec<Partition> = batch.iter().map(|d| d.partition.clone()).collect();
    partitions.sort();
    partitions.dedup();
    let txn = ctx.db.begin().await?;
    runs::lock_for_batch(&txn, run_id).await?;
    let stored = kafka_offsets::lock(&txn, name, &partitions).await?;
    let mut next: HashMap<Partition, i64> = stored.clone();
    let mut items: Vec<Item> = Vec::new();
    let mut kept = 0usize;
    for delivered in batch {
        let expected = next.get(&delivered.partition).copied().unwrap_or(i64::MIN);
        if delivered.offset < expected {
            continue; // stored before (or earlier in this batch)
        }
        next.insert(delivered.partition, delivered.offset + 1);
        items.extend(delivered.items);
        kept += 1;
    }
    if kept == 0 {
        txn.rollback().await?;
        return Ok((None, next));
    }
    let written = write_batch(
        &txn,
        prepared,
        run_id,
        Batch {
            items,
            renormalize: false,
        },
    )
    .await?;
    for (partition, offset) in &next {
        if stored.get(partition) != Some(offset) {
            kafka_offsets::advance(&txn, name, partition, *offset, owner).await?;
        }
    }
    txn.commit().await?;
    Ok((Some(written), next))
}
