//! Raw payloads as providers sent them, one per provider and external id, with a content
//! hash: an unchanged payload is recognised without normalizing it again, and entities can be
//! rebuilt from here without calling the provider.

use std::collections::HashMap;

use entity::raw_record;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// One payload to keep.
#[derive(Debug, Clone)]
pub struct NewRaw {
    pub external_id: String,
    pub content_hash: Vec<u8>,
    pub payload: Json,
}

/// SHA-256 of the payload's JSON text.
pub fn content_hash(payload: &Json) -> Vec<u8> {
    Sha256::digest(payload.to_string().as_bytes()).to_vec()
}

/// Stored hashes of the given external ids.
pub async fn hashes<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    external_ids: &[String],
) -> Result<HashMap<String, Vec<u8>>, DbErr> {
    let backend = db.get_database_backend();
    let mut found = HashMap::with_capacity(external_ids.len());
    for chunk in external_ids.chunks(2_000) {
        let rows: Vec<(String, Vec<u8>)> = raw_record::Entity::find()
            .select_only()
            .column(raw_record::Column::ExternalId)
            .column(raw_record::Column::ContentHash)
            .filter(raw_record::Column::Provider.eq(provider))
            .filter(super::filter::text_in(
                backend,
                raw_record::Column::ExternalId,
                chunk,
            ))
            .into_tuple()
            .all(db)
            .await?;
        found.extend(rows);
    }
    Ok(found)
}

/// Inserts or replaces payloads by (provider, external id).
pub async fn upsert<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    run_id: i64,
    raws: &[NewRaw],
) -> Result<(), DbErr> {
    let now = chrono::Utc::now();
    for chunk in raws.chunks(1_000) {
        let rows = chunk.iter().map(|r| raw_record::ActiveModel {
            provider: Set(provider.to_string()),
            external_id: Set(r.external_id.clone()),
            content_hash: Set(r.content_hash.clone()),
            payload: Set(r.payload.clone()),
            fetched_at: Set(now),
            run_id: Set(Some(run_id)),
            ..Default::default()
        });
        raw_record::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([raw_record::Column::Provider, raw_record::Column::ExternalId])
                    .update_columns([
                        raw_record::Column::ContentHash,
                        raw_record::Column::Payload,
                        raw_record::Column::FetchedAt,
                        raw_record::Column::RunId,
                    ])
                    .to_owned(),
            )
            .exec(db)
            .await?;
    }
    Ok(())
}

/// A provider's payloads in id order, `limit` at a time after `after_id` (for RENORMALIZE).
pub async fn page(
    db: &DatabaseConnection,
    provider: &str,
    after_id: i64,
    limit: u64,
) -> Result<Vec<raw_record::Model>, DbErr> {
    raw_record::Entity::find()
        .filter(raw_record::Column::Provider.eq(provider))
        .filter(raw_record::Column::Id.gt(after_id))
        .order_by_asc(raw_record::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Payloads of many (provider, external id) pairs at once (the DataLoader behind
/// `HostObservation.raw`).
pub async fn payloads(
    db: &DatabaseConnection,
    keys: &[(String, String)],
) -> Result<HashMap<(String, String), Json>, DbErr> {
    let mut by_provider: HashMap<&str, Vec<String>> = HashMap::new();
    for (provider, external_id) in keys {
        by_provider
            .entry(provider)
            .or_default()
            .push(external_id.clone());
    }
    let mut found = HashMap::with_capacity(keys.len());
    for (provider, ids) in by_provider {
        for chunk in ids.chunks(1_000) {
            let rows: Vec<(String, Json)> = raw_record::Entity::find()
                .select_only()
                .column(raw_record::Column::ExternalId)
                .column(raw_record::Column::Payload)
                .filter(raw_record::Column::Provider.eq(provider))
                .filter(raw_record::Column::ExternalId.is_in(chunk.to_vec()))
                .into_tuple()
                .all(db)
                .await?;
            for (external_id, payload) in rows {
                found.insert((provider.to_string(), external_id), payload);
            }
        }
    }
    Ok(found)
}

/// How many raw payloads a provider keeps.
pub async fn count_of_provider(
    db: &sea_orm::DatabaseConnection,
    provider: &str,
) -> Result<u64, DbErr> {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    entity::raw_record::Entity::find()
        .filter(entity::raw_record::Column::Provider.eq(provider))
        .count(db)
        .await
}
