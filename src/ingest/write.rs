//! Writing one batch: map raw records to the entity kind's records, skip payloads that did not
//! change, and store records, payloads, rejections and counters in the caller's transaction.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use sea_orm::{ConnectionTrait, DbErr};
use serde_json::Value as Json;

use super::Prepared;
use crate::entities::{Entity, Target, Visit};
use crate::providers::definition::OnMissing;
use crate::sources::incremental::Mark;
use crate::store::nul;
use crate::store::raw::{self, NewRaw};
use crate::store::rejected::{self, NewRejection};
use crate::store::runs::{self, BatchProgress};
use crate::store::upsert::{UpsertCounts, last_wins};

/// A raw payload as a source handed it over, or one the source already refused.
#[derive(Debug)]
pub enum Item {
    Raw(Json),
    Rejected {
        reason: String,
        payload: Json,
        /// Where in a file the record was, when it came from one.
        line: Option<u64>,
    },
}

pub struct Batch {
    pub items: Vec<Item>,
    /// Rebuilding from stored payloads: write every row, keep payloads as they are.
    pub renormalize: bool,
}

/// What one batch did.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub fetched: u64,
    pub counts: UpsertCounts,
    pub rejected: u64,
    /// The largest incremental cursor value among the batch's records.
    pub cursor: Option<Mark>,
}

/// Writes `batch` for the provider's entity kind, in the caller's transaction.
pub async fn write_batch<C: ConnectionTrait>(
    db: &C,
    prepared: &Prepared,
    run_id: i64,
    batch: Batch,
) -> Result<Written, DbErr> {
    prepared
        .provider
        .def
        .entity
        .visit(WriteBatch {
            db,
            prepared,
            run_id,
            batch,
        })
        .await
}

struct WriteBatch<'a, C> {
    db: &'a C,
    prepared: &'a Prepared,
    run_id: i64,
    batch: Batch,
}

type WriteFuture<'a> = Pin<Box<dyn Future<Output = Result<Written, DbErr>> + Send + 'a>>;

impl<'a, C: ConnectionTrait> Visit for WriteBatch<'a, C> {
    type Output = WriteFuture<'a>;
    fn visit<E: Entity>(self) -> WriteFuture<'a> {
        Box::pin(write::<E, C>(
            self.db,
            self.prepared,
            self.run_id,
            self.batch,
        ))
    }
}

/// One mapped record: its external id, its raw payload when kept, and the record.
type Mapped<T> = (String, Option<Json>, T);

async fn write<E: Entity, C: ConnectionTrait>(
    db: &C,
    prepared: &Prepared,
    run_id: i64,
    batch: Batch,
) -> Result<Written, DbErr> {
    let keep_raw = prepared.provider.keep_raw() && !batch.renormalize;
    let mut mapped = MappedBatch::default();
    map_items::<E>(prepared, batch.items, keep_raw, &mut mapped);
    // Every record a fetched batch holds, written or unchanged, was seen upstream (a
    // renormalized one was only read back from storage).
    let seen: Option<Vec<String>> = (prepared.provider.def.on_missing == OnMissing::MarkDeleted
        && !batch.renormalize)
        .then(|| mapped.mapped.iter().map(|(id, _, _)| id.clone()).collect());
    let written = write_mapped::<E, C>(db, prepared, run_id, mapped, keep_raw, false).await?;
    if let Some(keys) = seen {
        let provider = &prepared.provider;
        let dataset = provider.def.dataset.as_deref().unwrap_or(&provider.name);
        crate::store::records::mark_seen(db, dataset, run_id, &keys).await?;
    }
    Ok(written)
}

/// A batch's records mapped to the entity kind's records, and its rejections: the CPU part of
/// a batch, which a source may do before the transaction (the Kafka source does it while the
/// batch before is written).
pub struct MappedBatch<R> {
    mapped: Vec<Mapped<R>>,
    rejections: Vec<NewRejection>,
    /// The largest incremental cursor value among the mapped records.
    cursor: Option<Mark>,
}

impl<R> Default for MappedBatch<R> {
    fn default() -> Self {
        MappedBatch {
            mapped: Vec::new(),
            rejections: Vec::new(),
            cursor: None,
        }
    }
}

impl<R> MappedBatch<R> {
    /// Appends `other`'s records and rejections after this batch's.
    pub fn append(&mut self, other: MappedBatch<R>) {
        self.mapped.extend(other.mapped);
        self.rejections.extend(other.rejections);
        if let Some(cursor) = other.cursor {
            raise(&mut self.cursor, cursor);
        }
    }
}

/// `mark` raised to `value` when `value` is past it.
fn raise(mark: &mut Option<Mark>, value: Mark) {
    if mark.as_ref().is_none_or(|m| value.after(m)) {
        *mark = Some(value);
    }
}

/// What one item of a batch holds, as every run (and a dry run) reads it.
pub(crate) enum Unit {
    /// Left out by `skip` / `keep`: neither stored nor rejected.
    Skipped,
    /// Refused before mapping: by the source, or because the database cannot store it.
    Rejected {
        reason: String,
        payload: Json,
        line: Option<u64>,
    },
    /// The payload is itself the one record.
    Whole(Json),
    /// A text document and the records its pattern found in it.
    Split { raw: Json, records: Vec<Json> },
}

/// The one place the rules before mapping are applied: the record filters, the check that
/// what is stored as it came holds no NUL (the raw payload when it is kept or is the record
/// itself; else the mapped fields are checked, in `map_one`), and a text document split by its
/// pattern.
pub(crate) fn unit(prepared: &Prepared, item: Item, keep_raw: bool) -> Unit {
    let raw = match item {
        Item::Raw(raw) if !prepared.passes_filter(&raw) => return Unit::Skipped,
        Item::Raw(raw) => raw,
        Item::Rejected {
            reason,
            payload,
            line,
        } => {
            return Unit::Rejected {
                reason,
                payload,
                line,
            };
        }
    };
    if stored_whole(prepared, keep_raw)
        && let Some(path) = nul::in_json(&raw)
    {
        return Unit::Rejected {
            reason: format!("{path}: {}", nul::REASON),
            payload: raw,
            line: None,
        };
    }
    match prepared.text_records(&raw) {
        Some(records) if records.is_empty() => Unit::Rejected {
            reason: "parse.pattern: no match in the document".to_string(),
            payload: raw,
            line: None,
        },
        Some(records) => Unit::Split { raw, records },
        None => Unit::Whole(raw),
    }
}

/// Maps raw items into `out`: each record or its rejection. `keep_raw` keeps each record's
/// raw payload beside it.
pub fn map_items<E: Entity>(
    prepared: &Prepared,
    items: Vec<Item>,
    keep_raw: bool,
    out: &mut MappedBatch<E::Record>,
) {
    let MappedBatch {
        mapped,
        rejections,
        cursor,
    } = out;
    for item in items {
        match unit(prepared, item, keep_raw) {
            Unit::Skipped => {}
            Unit::Rejected {
                reason,
                payload,
                line,
            } => {
                let mut rejection = rejection(prepared, None, reason, &payload);
                rejection.line = line.map(|l| l as i64);
                rejections.push(rejection);
            }
            Unit::Split { raw, records } => {
                for record in records {
                    match map_one::<E>(prepared, &record, cursor) {
                        Ok((external_id, row)) => {
                            mapped.push((external_id, keep_raw.then(|| raw.clone()), row))
                        }
                        Err((external_id, reason)) => {
                            rejections.push(rejection(prepared, external_id, reason, &raw))
                        }
                    }
                }
            }
            // The payload is the record: kept as it is, without a copy.
            Unit::Whole(raw) => match map_one::<E>(prepared, &raw, cursor) {
                Ok((external_id, row)) => mapped.push((external_id, keep_raw.then_some(raw), row)),
                Err((external_id, reason)) => {
                    rejections.push(rejection(prepared, external_id, reason, &raw))
                }
            },
        }
    }
}

/// Writes a mapped batch in the caller's transaction: only the last record of each external id,
/// payloads identical to the stored ones skipped, then records, payloads, rejections and the
/// run's counters. `first_load`: the transaction holds the kind's tables for a first load
/// (`store::first_load`), whose repeated keys are settled when it finishes.
pub async fn write_mapped<E: Entity, C: ConnectionTrait>(
    db: &C,
    prepared: &Prepared,
    run_id: i64,
    batch: MappedBatch<E::Record>,
    keep_raw: bool,
    first_load: bool,
) -> Result<Written, DbErr> {
    runs::lock_for_batch(db, run_id).await?;
    let provider = &prepared.provider.name;
    let MappedBatch {
        mapped,
        rejections,
        cursor,
    } = batch;
    let fetched = (mapped.len() + rejections.len()) as u64;

    // A later record with the same external id replaces an earlier one of the batch: only the
    // last is compared with what is stored and written (else an earlier version could be
    // written while the last, equal to the stored one, is skipped).
    let mut counts = UpsertCounts::default();
    let kept = last_wins(&mapped, |(id, _, _)| id.as_str(), &mut counts);
    let mut slots: Vec<Option<_>> = mapped.into_iter().map(Some).collect();
    let mapped: Vec<Mapped<E::Record>> = kept.into_iter().filter_map(|i| slots[i].take()).collect();

    // Payloads identical to the stored ones are not normalized again.
    let mut raws = Vec::new();
    let mut unchanged_ids = Vec::new();
    let mut records: Vec<E::Record> = Vec::with_capacity(mapped.len());
    if keep_raw {
        let ids: Vec<String> = mapped.iter().map(|(id, _, _)| id.clone()).collect();
        let stored: HashMap<String, Vec<u8>> = raw::hashes(db, provider, &ids).await?;
        for (external_id, payload, record) in mapped {
            // Every payload is there when kept; a record without one is written all the same.
            let Some(payload) = payload else {
                records.push(record);
                continue;
            };
            let hash = raw::content_hash(&payload);
            if stored.get(&external_id) == Some(&hash) {
                counts.unchanged += 1;
                unchanged_ids.push(external_id);
            } else {
                raws.push(NewRaw {
                    external_id,
                    content_hash: hash,
                    payload,
                });
                records.push(record);
            }
        }
    } else {
        records.extend(mapped.into_iter().map(|(_, _, record)| record));
    }

    let target = Target {
        provider,
        run_id,
        dataset: prepared.provider.def.dataset.as_deref().unwrap_or(provider),
        host_rules: &prepared.host_rules,
        bulk: first_load,
        first_load,
    };
    if !records.is_empty() {
        counts.add(E::write(db, &target, records).await?);
    }
    if !unchanged_ids.is_empty() {
        E::unchanged(db, &target, &unchanged_ids).await?;
    }
    if !raws.is_empty() {
        raw::upsert(db, provider, run_id, &raws).await?;
    }
    if !rejections.is_empty() {
        rejected::insert(db, provider, Some(run_id), &rejections).await?;
    }
    let written = Written {
        fetched,
        counts,
        rejected: rejections.len() as u64,
        cursor,
    };
    runs::add_batch(
        db,
        run_id,
        BatchProgress {
            pages: 1,
            fetched: fetched as i64,
            counts,
            rejected: written.rejected as i64,
        },
    )
    .await?;
    Ok(written)
}

/// One raw record into the kind's record and its external id: the provider's `key` field when
/// it declares one, else the record's natural key. On failure, the reason (and the id when
/// known). An incremental provider's record needs a cursor value, which raises `cursor`.
pub(crate) fn map_one<E: Entity>(
    prepared: &Prepared,
    raw: &Json,
    cursor: &mut Option<Mark>,
) -> Result<(String, E::Record), (Option<String>, String)> {
    let value = prepared.cursor_of(raw).transpose().map_err(|e| (None, e))?;
    let fields = prepared.fields(raw).map_err(|e| (None, e))?;
    if !prepared.provider.def.fields.is_empty()
        && let Some(path) = nul::in_fields(&fields)
    {
        return Err((None, format!("{path}: {}", nul::REASON)));
    }
    let key = prepared.key(&fields, raw);
    if E::NEEDS_KEY && key.is_none() {
        let name = prepared.provider.def.key.as_deref().unwrap_or("key");
        return Err((None, format!("{name}: missing, and it is the record's key")));
    }
    let record = E::from_fields(&fields, key.clone()).map_err(|error| {
        let id = key
            .clone()
            .or_else(|| E::ID_FIELD.and_then(|field| text_of(fields.get(field.name)?)));
        (id, error)
    })?;
    let external_id = key.unwrap_or_else(|| E::key(&record).into_owned());
    if let Some(value) = value {
        raise(cursor, value);
    }
    Ok((external_id, record))
}

/// Whether the raw payload itself is stored: kept as the raw payload, or, with no `fields`, as
/// the record.
fn stored_whole(prepared: &Prepared, keep_raw: bool) -> bool {
    keep_raw || prepared.provider.def.fields.is_empty()
}

/// A scalar JSON value as text, for an id.
pub fn text_of(value: &Json) -> Option<String> {
    match value {
        Json::String(s) if !s.is_empty() => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn rejection(
    prepared: &Prepared,
    external_id: Option<String>,
    reason: String,
    payload: &Json,
) -> NewRejection {
    NewRejection {
        external_id,
        line: None,
        message: prepared.message_at(payload),
        reason,
        payload: Some(match payload {
            Json::String(text) => text.clone(),
            other => other.to_string(),
        }),
    }
}
