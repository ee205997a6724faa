//! Writing one batch: map raw records to entity rows, skip payloads that did not change, and
//! store rows, payloads, rejections and counters in the caller's transaction.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DbErr};
use serde_json::{Map, Value as Json};

use super::Prepared;
use crate::ethereum::{TokenRecord, TransferRecord};
use crate::providers::definition::EntityKind;
use crate::store::hosts::{self, Incoming};
use crate::store::nul;
use crate::store::products::{self as products, ProductRecord};
use crate::store::raw::{self, NewRaw};
use crate::store::records::{self, NewRecord};
use crate::store::rejected::{self, NewRejection};
use crate::store::runs::{self, BatchProgress};
use crate::store::upsert::{UpsertCounts, last_wins};
use crate::store::{tokens, transfers};
use crate::transform::{to_host, to_product, to_token, to_transfer};

/// A raw payload as a source handed it over, or one the source already refused.
#[derive(Debug)]
pub enum Item {
    Raw(Json),
    Rejected { reason: String, payload: Json },
}

pub struct Batch {
    pub items: Vec<Item>,
    /// Rebuilding from stored payloads: write every row, keep payloads as they are.
    pub renormalize: bool,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Written {
    pub fetched: u64,
    pub counts: UpsertCounts,
    pub rejected: u64,
}

enum Row {
    Token(TokenRecord),
    Transfer(TransferRecord),
    Host(Incoming),
    Product(ProductRecord),
    Record(NewRecord),
}

pub async fn write_batch<C: ConnectionTrait>(
    db: &C,
    prepared: &Prepared,
    run_id: i64,
    batch: Batch,
) -> Result<Written, DbErr> {
    runs::lock_for_batch(db, run_id).await?;
    let provider = &prepared.provider.name;
    let keep_raw = prepared.provider.keep_raw() && !batch.renormalize;
    let mut rejections = Vec::new();
    // (external id, raw payload when kept, row), in input order.
    let mut mapped: Vec<(String, Option<Json>, Row)> = Vec::new();
    for item in batch.items {
        let raw = match item {
            Item::Raw(raw) => raw,
            Item::Rejected { reason, payload } => {
                rejections.push(rejection(None, reason, &payload));
                continue;
            }
        };
        if let Some(path) = nul::in_json(&raw) {
            rejections.push(rejection(None, format!("{path}: {}", nul::REASON), &raw));
            continue;
        }
        match prepared.text_records(&raw) {
            Some(records) => {
                for record in records {
                    match map_one(prepared, &record) {
                        Ok((external_id, row)) => {
                            mapped.push((external_id, keep_raw.then(|| raw.clone()), row))
                        }
                        Err((external_id, reason)) => {
                            rejections.push(rejection(external_id, reason, &raw))
                        }
                    }
                }
            }
            // The payload is the record: kept as it is, without a copy.
            None => match map_one(prepared, &raw) {
                Ok((external_id, row)) => mapped.push((external_id, keep_raw.then_some(raw), row)),
                Err((external_id, reason)) => rejections.push(rejection(external_id, reason, &raw)),
            },
        }
    }
    let fetched = (mapped.len() + rejections.len()) as u64;

    // A later record with the same external id replaces an earlier one of the batch: only the
    // last is compared with what is stored and written (else an earlier version could be
    // written while the last, equal to the stored one, is skipped).
    let mut counts = UpsertCounts::default();
    let kept = last_wins(&mapped, |(id, _, _)| id.clone(), &mut counts);
    let mut slots: Vec<Option<_>> = mapped.into_iter().map(Some).collect();
    let mapped: Vec<(String, Option<Json>, Row)> =
        kept.into_iter().filter_map(|i| slots[i].take()).collect();

    // Payloads identical to the stored ones are not normalized again.
    let mut raws = Vec::new();
    let mut unchanged_ids = Vec::new();
    let mut rows: Vec<Row> = Vec::with_capacity(mapped.len());
    if keep_raw {
        let ids: Vec<String> = mapped.iter().map(|(id, _, _)| id.clone()).collect();
        let stored: HashMap<String, Vec<u8>> = raw::hashes(db, provider, &ids).await?;
        for (external_id, payload, row) in mapped {
            // Every payload is there when kept; a row without one is written all the same.
            let Some(payload) = payload else {
                rows.push(row);
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
                rows.push(row);
            }
        }
    } else {
        rows.extend(mapped.into_iter().map(|(_, _, row)| row));
    }

    counts.add(write_rows(db, prepared, run_id, rows).await?);
    if prepared.provider.def.entity == EntityKind::Host && !unchanged_ids.is_empty() {
        // Unchanged, but reported: what keeps a host from going stale.
        hosts::touch(db, provider, &unchanged_ids, chrono::Utc::now()).await?;
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

async fn write_rows<C: ConnectionTrait>(
    db: &C,
    prepared: &Prepared,
    run_id: i64,
    rows: Vec<Row>,
) -> Result<UpsertCounts, DbErr> {
    let mut token_rows = Vec::new();
    let mut transfer_rows = Vec::new();
    let mut host_rows = Vec::new();
    let mut product_rows = Vec::new();
    let mut record_rows = Vec::new();
    for row in rows {
        match row {
            Row::Token(t) => token_rows.push(t),
            Row::Transfer(t) => transfer_rows.push(t),
            Row::Host(h) => host_rows.push(h),
            Row::Product(p) => product_rows.push(p),
            Row::Record(r) => record_rows.push(r),
        }
    }
    let mut counts = UpsertCounts::default();
    if !token_rows.is_empty() {
        counts.add(tokens::upsert(db, &token_rows).await?);
    }
    if !transfer_rows.is_empty() {
        counts.add(transfers::upsert(db, &transfer_rows).await?);
    }
    if !host_rows.is_empty() {
        counts.add(
            hosts::resolve(
                db,
                &prepared.host_rules,
                &prepared.provider.name,
                run_id,
                host_rows,
            )
            .await?,
        );
    }
    if !product_rows.is_empty() {
        counts.add(products::upsert(db, &prepared.provider.name, &product_rows).await?);
    }
    if !record_rows.is_empty() {
        let dataset = prepared
            .provider
            .def
            .dataset
            .as_deref()
            .unwrap_or(&prepared.provider.name);
        counts.add(records::upsert(db, dataset, &prepared.provider.name, &record_rows).await?);
    }
    Ok(counts)
}

/// One record into its row and external id; on failure, the reason (and the id when known).
fn map_one(prepared: &Prepared, record: &Json) -> Result<(String, Row), (Option<String>, String)> {
    let fields = prepared.mapper.map(record).map_err(|e| (None, e))?;
    let key = key_of(prepared, &fields);
    let row = match prepared.provider.def.entity {
        EntityKind::Token => Row::Token(to_token(&fields).map_err(|e| (key.clone(), e))?),
        EntityKind::Transfer => Row::Transfer(to_transfer(&fields).map_err(|e| (key.clone(), e))?),
        EntityKind::Host => {
            let id = key_of_field(&fields, "id");
            let (external_id, observation) = to_host(&fields).map_err(|e| (id, e))?;
            return Ok((
                external_id.clone(),
                Row::Host(Incoming {
                    external_id,
                    observation,
                }),
            ));
        }
        EntityKind::Product => Row::Product(to_product(&fields).map_err(|e| (key.clone(), e))?),
        EntityKind::Record => {
            let Some(key) = key.clone() else {
                let name = prepared.provider.def.key.as_deref().unwrap_or("key");
                return Err((None, format!("{name}: missing, and it is the record's key")));
            };
            Row::Record(NewRecord {
                key,
                data: Json::Object(fields),
            })
        }
    };
    let external_id = match (&key, &row) {
        (Some(key), _) => key.clone(),
        (None, Row::Token(t)) => hex::encode_prefixed(t.address),
        (None, Row::Transfer(t)) => format!(
            "{}:{}",
            hex::encode_prefixed(t.transaction_hash),
            t.log_index
        ),
        (None, Row::Host(h)) => h.external_id.clone(),
        (None, Row::Product(p)) => p.sku.clone(),
        (None, Row::Record(_)) => hex::encode(raw::content_hash(record)),
    };
    Ok((external_id, row))
}

/// The provider's `key` field as text.
fn key_of(prepared: &Prepared, fields: &Map<String, Json>) -> Option<String> {
    key_of_field(fields, prepared.provider.def.key.as_deref()?)
}

fn key_of_field(fields: &Map<String, Json>, name: &str) -> Option<String> {
    match fields.get(name)? {
        Json::String(s) if !s.is_empty() => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn rejection(external_id: Option<String>, reason: String, payload: &Json) -> NewRejection {
    NewRejection {
        external_id,
        line: None,
        reason,
        payload: Some(match payload {
            Json::String(text) => text.clone(),
            other => other.to_string(),
        }),
    }
}
