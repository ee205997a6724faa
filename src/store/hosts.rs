//! Hosts: the resolver that matches observations to hosts and keeps the merged hosts current,
//! and the read queries.
//!
//! The resolver works a batch at a time with a fixed number of statements, whatever the batch
//! size: one lookup of the batch's stored observations, one of its identifiers in the index,
//! one load of the touched hosts' observations, then bulk writes. Matching happens in memory in
//! input order, so an identifier first seen early in a batch already counts for later records.
//! Merging the touched hosts and building the write statements run on a blocking thread while
//! the connection writes what is ready, so the server's work overlaps the database's.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::{host, host_conflict, host_identifier, host_observation};
use futures_util::future::join;
use sea_orm::sea_query::{Condition, Expr, OnConflict, Order, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, IntoActiveModel, Iterable, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    Statement,
};
use serde_json::Value as Json;

use super::filter::{RangeFilter, TextFilter, text_in};
use super::keyset::{KeyValue, Page, PageRequest, SortOrder};
use super::upsert::{UpsertCounts, last_wins};
use crate::entities::host::{HostReport, Observation};
use crate::hosts::{self, HostRules, IdKind, Reported};

/// Rows per statement: under both databases' parameter limits for the widest table.
const CHUNK: usize = 1_000;

/// Values per identifier lookup on PostgreSQL, where they travel as one array parameter: a
/// batch's identifiers in one statement.
const LOOKUP_CHUNK: usize = 10_000;

/// Serializes resolvers across connections on PostgreSQL (SQLite has one writer anyway): two
/// providers' batches resolving at once could each create a host for the same machine.
const RESOLVE_LOCK: i64 = 0x7472_6962_686f_7374; // "tribhost"

/// Resolves a batch of one provider's observations: each joins the host it shares a strong
/// identifier with (or a new host), conflicts are recorded, and the touched hosts are merged
/// again. Observations identical to the stored ones count as unchanged and are only marked as
/// reported. Runs in the caller's transaction.
pub async fn resolve<C: ConnectionTrait>(
    db: &C,
    rules: &HostRules,
    provider: &str,
    run_id: i64,
    incoming: Vec<HostReport>,
) -> Result<UpsertCounts, DbErr> {
    let mut counts = UpsertCounts::default();
    let kept = last_wins(&incoming, |o| o.external_id.clone(), &mut counts);
    if kept.is_empty() {
        return Ok(counts);
    }
    lock(db).await?;
    let now = Utc::now();

    let ids: Vec<String> = kept
        .iter()
        .map(|&i| incoming[i].external_id.clone())
        .collect();
    // The identifiers of every record are worked out while the database looks up the stored
    // observations (most records of a batch are usually new or changed).
    let (stored, all_identifiers) = join(observations_by_external_id(db, provider, &ids), async {
        kept.iter()
            .map(|&i| rules.identifiers(&incoming[i].observation))
            .collect::<Vec<_>>()
    })
    .await;
    let stored = stored?;
    let mut changed: Vec<usize> = Vec::new();
    let mut identifiers: Vec<Vec<hosts::Identifier>> = Vec::new();
    let mut same: Vec<String> = Vec::new();
    for (&i, ids) in kept.iter().zip(all_identifiers) {
        let o = &incoming[i];
        match stored.get(&o.external_id) {
            Some(model) if observation_of(model) == o.observation => {
                same.push(o.external_id.clone())
            }
            _ => {
                changed.push(i);
                identifiers.push(ids);
            }
        }
    }
    counts.unchanged += same.len() as u64;
    touch(db, provider, &same, now).await?;
    if changed.is_empty() {
        return Ok(counts);
    }

    // The index entries of every identifier in the batch.
    let wanted: Vec<String> = identifiers
        .iter()
        .flatten()
        .map(|id| id.value.as_str())
        .collect::<BTreeSet<&str>>()
        .into_iter()
        .map(str::to_string)
        .collect();
    let mut index = lookup(db, &wanted).await?;
    let mut next_id = max_host_id(db).await? + 1;

    // Match in input order.
    let mut new_hosts: HashSet<i64> = HashSet::new();
    let mut new_identifiers: Vec<(IdKind, String, i64)> = Vec::new();
    let mut conflicts: Vec<host_conflict::ActiveModel> = Vec::new();
    let mut resolved: Vec<Resolved> = Vec::with_capacity(changed.len());
    for (&i, ids) in changed.iter().zip(&identifiers) {
        let o = &incoming[i];
        let matched = IdKind::STRONG.iter().find_map(|&kind| {
            ids.iter()
                .filter(|id| id.strong && id.kind == kind)
                .filter_map(|id| index.get(&(id.kind, id.value.clone())))
                .flatten()
                .min()
                .map(|&host| (host, kind))
        });
        let known = stored.get(&o.external_id);
        let (host_id, matched_by) = match (known, matched) {
            // A known observation stays with its host: a host id never moves under a client.
            (Some(model), _) => (
                model.host_id,
                model.matched_by.as_deref().and_then(IdKind::parse),
            ),
            (None, Some((host, kind))) => (host, Some(kind)),
            (None, None) => {
                let id = next_id;
                next_id += 1;
                new_hosts.insert(id);
                (id, None)
            }
        };
        for id in ids {
            let owners = index.entry((id.kind, id.value.clone())).or_default();
            if id.strong {
                // Other hosts hold this identifier: report it and merge nothing. The identifier
                // is then claimed by both, so both are found by it, and a later observation
                // carrying only it is reported as ambiguous too.
                for &other in owners.iter().filter(|&&h| h != host_id) {
                    conflicts.push(host_conflict::ActiveModel {
                        kind: Set(id.kind.as_str().to_string()),
                        value: Set(id.value.clone()),
                        host_id: Set(host_id),
                        other_host_id: Set(other),
                        provider: Set(provider.to_string()),
                        external_id: Set(o.external_id.clone()),
                        detected_at: Set(now),
                        ..Default::default()
                    });
                }
            }
            if owners.insert(host_id) {
                new_identifiers.push((id.kind, id.value.clone(), host_id));
            }
        }
        if known.is_some() {
            counts.updated += 1;
        } else {
            counts.inserted += 1;
        }
        resolved.push(Resolved {
            index: i,
            host_id,
            matched_by,
            stored: known.is_some(),
        });
    }

    // Every touched host is merged again from all of its observations, the batch's included:
    // the stored ones of hosts that existed before the batch (hosts numbered in this batch have
    // none), less those the batch replaces.
    let existing: BTreeSet<i64> = resolved
        .iter()
        .map(|r| r.host_id)
        .filter(|host| !new_hosts.contains(host))
        .collect();
    let replaced: HashSet<&str> = resolved
        .iter()
        .map(|r| incoming[r.index].external_id.as_str())
        .collect();
    // The identifiers' statements are built while the database loads the stored observations.
    let backend = db.get_database_backend();
    let (kept_stored, identifiers) = join(observations_of_hosts(db, &existing), async {
        identifier_statements(backend, &new_identifiers)
    })
    .await;
    let kept_stored: Vec<host_observation::Model> = kept_stored?
        .into_iter()
        .filter(|m| !(m.provider == provider && replaced.contains(m.external_id.as_str())))
        .collect();

    // Building the rows' statements is most of the server's share of the work: one thread
    // builds the observations' and then merges the hosts while this task writes what is ready,
    // so the server and the database work at once instead of in turn.
    let job = Arc::new(Job {
        batch: incoming,
        resolved,
        new_hosts,
        provider: provider.to_string(),
        run_id,
        now,
    });
    let (observations_tx, observations) = tokio::sync::oneshot::channel();
    let merged = tokio::task::spawn_blocking({
        let job = Arc::clone(&job);
        let rules = rules.clone();
        move || {
            // The receiver is gone only when the batch failed already.
            let _ = observations_tx.send(observation_statements(backend, &job));
            host_statements(backend, &rules, &job, kept_stored)
        }
    });
    let observations = async {
        observations
            .await
            .map_err(|_| DbErr::Custom("building the batch's observations failed".into()))?
    };
    if backend == DbBackend::Postgres {
        // No foreign keys to `hosts` on PostgreSQL (migration m20261121_000007): identifiers
        // and observations go in while the hosts are being merged.
        execute(db, identifiers).await?;
        execute(db, observations.await?).await?;
        execute(db, finished(merged).await?).await?;
    } else {
        // SQLite checks its foreign keys row by row: hosts first.
        execute(db, finished(merged).await?).await?;
        execute(db, observations.await?).await?;
        execute(db, identifiers).await?;
    }
    write_conflicts(db, conflicts).await?;
    Ok(counts)
}

/// Where one changed observation of a batch was resolved to.
struct Resolved {
    /// Its place in the batch.
    index: usize,
    host_id: i64,
    matched_by: Option<IdKind>,
    /// Whether an observation with its external id was stored before.
    stored: bool,
}

/// A resolved batch, shared by the threads that build its statements.
struct Job {
    batch: Vec<HostReport>,
    resolved: Vec<Resolved>,
    /// Hosts numbered in this batch.
    new_hosts: HashSet<i64>,
    // What every row of the batch shares.
    provider: String,
    run_id: i64,
    now: DateTime<Utc>,
}

/// The result of the statement-building thread.
async fn finished<T>(task: tokio::task::JoinHandle<Result<T, DbErr>>) -> Result<T, DbErr> {
    task.await
        .map_err(|e| DbErr::Custom(format!("merging the batch's hosts failed: {e}")))?
}

async fn execute<C: ConnectionTrait>(db: &C, statements: Vec<Statement>) -> Result<(), DbErr> {
    for statement in statements {
        db.execute_raw(statement).await?;
    }
    Ok(())
}

/// The touched hosts merged from their observations, as the statements that write them.
fn host_statements(
    backend: DbBackend,
    rules: &HostRules,
    job: &Job,
    kept_stored: Vec<host_observation::Model>,
) -> Result<Vec<Statement>, DbErr> {
    let now = job.now;
    let kept_stored: Vec<(host_observation::Model, Observation)> = kept_stored
        .into_iter()
        .map(|m| {
            let observation = observation_of(&m);
            (m, observation)
        })
        .collect();
    let mut by_host: BTreeMap<i64, Vec<Reported<'_>>> = BTreeMap::new();
    for (model, observation) in &kept_stored {
        by_host.entry(model.host_id).or_default().push(Reported {
            provider: &model.provider,
            external_id: &model.external_id,
            observation,
            reported_at: model.reported_at,
        });
    }
    for r in &job.resolved {
        let o = &job.batch[r.index];
        by_host.entry(r.host_id).or_default().push(Reported {
            provider: &job.provider,
            external_id: &o.external_id,
            observation: &o.observation,
            reported_at: now,
        });
    }
    // `now` is the creation time of a new host only: rewriting a stored host keeps its own
    // (the upsert leaves `created_at` alone).
    let (fresh, known): (Vec<_>, Vec<_>) = by_host
        .iter()
        .map(|(&id, reported)| host_row(id, hosts::merge(rules, reported), reported.len(), now))
        .partition(|h| job.new_hosts.contains(&h.id));
    let mut statements = host_inserts(backend, fresh, now, Stored::No)?;
    statements.extend(host_inserts(backend, known, now, Stored::Maybe)?);
    Ok(statements)
}

/// The batch's changed observations as the statements that write them.
fn observation_statements(backend: DbBackend, job: &Job) -> Result<Vec<Statement>, DbErr> {
    let (known, fresh): (Vec<&Resolved>, Vec<&Resolved>) =
        job.resolved.iter().partition(|r| r.stored);
    let mut statements = observation_inserts(backend, job, &fresh, Stored::No)?;
    statements.extend(observation_inserts(backend, job, &known, Stored::Maybe)?);
    Ok(statements)
}

async fn lock<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [RESOLVE_LOCK.into()],
        ))
        .await?;
    }
    Ok(())
}

/// Marks observations as reported now (a run received them unchanged), and their hosts.
pub async fn touch<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    external_ids: &[String],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    for chunk in external_ids.chunks(CHUNK) {
        host_observation::Entity::update_many()
            .col_expr(host_observation::Column::ReportedAt, Expr::value(now))
            .filter(host_observation::Column::Provider.eq(provider))
            .filter(text_in(
                backend,
                host_observation::Column::ExternalId,
                chunk,
            ))
            .exec(db)
            .await?;
        host::Entity::update_many()
            .col_expr(host::Column::LastReportedAt, Expr::value(now))
            .filter(
                host::Column::Id.in_subquery(
                    Query::select()
                        .column(host_observation::Column::HostId)
                        .from(host_observation::Entity)
                        .and_where(host_observation::Column::Provider.eq(provider))
                        .and_where(text_in(
                            backend,
                            host_observation::Column::ExternalId,
                            chunk,
                        ))
                        .to_owned(),
                ),
            )
            .exec(db)
            .await?;
    }
    Ok(())
}

async fn observations_by_external_id<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    external_ids: &[String],
) -> Result<HashMap<String, host_observation::Model>, DbErr> {
    let backend = db.get_database_backend();
    let mut found = HashMap::with_capacity(external_ids.len());
    for chunk in external_ids.chunks(CHUNK) {
        for model in host_observation::Entity::find()
            .filter(host_observation::Column::Provider.eq(provider))
            .filter(text_in(
                backend,
                host_observation::Column::ExternalId,
                chunk,
            ))
            .all(db)
            .await?
        {
            found.insert(model.external_id.clone(), model);
        }
    }
    Ok(found)
}

async fn observations_of_hosts<C: ConnectionTrait>(
    db: &C,
    host_ids: &BTreeSet<i64>,
) -> Result<Vec<host_observation::Model>, DbErr> {
    let ids: Vec<i64> = host_ids.iter().copied().collect();
    let mut found = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        found.extend(
            host_observation::Entity::find()
                .filter(host_observation::Column::HostId.is_in(chunk.to_vec()))
                .all(db)
                .await?,
        );
    }
    Ok(found)
}

/// (kind, value) → the hosts that hold it, for identifiers with the given values (of any kind:
/// one statement per chunk of values, whatever kinds a batch carries).
async fn lookup<C: ConnectionTrait>(
    db: &C,
    values: &[String],
) -> Result<HashMap<(IdKind, String), BTreeSet<i64>>, DbErr> {
    let backend = db.get_database_backend();
    // PostgreSQL takes the values as one array parameter; SQLite as a list of parameters.
    let chunk_size = match backend {
        DbBackend::Postgres => LOOKUP_CHUNK,
        _ => CHUNK,
    };
    let mut index: HashMap<(IdKind, String), BTreeSet<i64>> = HashMap::new();
    for chunk in values.chunks(chunk_size) {
        let rows: Vec<(String, String, i64)> = host_identifier::Entity::find()
            .select_only()
            .column(host_identifier::Column::Kind)
            .column(host_identifier::Column::Value)
            .column(host_identifier::Column::HostId)
            .filter(text_in(backend, host_identifier::Column::Value, chunk))
            .into_tuple()
            .all(db)
            .await?;
        for (kind, value, host) in rows {
            // A kind this version does not know matches nothing.
            if let Some(kind) = IdKind::parse(&kind) {
                index.entry((kind, value)).or_default().insert(host);
            }
        }
    }
    Ok(index)
}

async fn max_host_id<C: ConnectionTrait>(db: &C) -> Result<i64, DbErr> {
    let max: Option<Option<i64>> = host::Entity::find()
        .select_only()
        .column_as(host::Column::Id.max(), "max")
        .into_tuple()
        .one(db)
        .await?;
    Ok(max.flatten().unwrap_or(0))
}

fn json_list(values: &[String]) -> Json {
    Json::Array(values.iter().cloned().map(Json::String).collect())
}

/// A stored JSON list of text (IPs, MACs, providers) as strings.
pub fn list_field(value: &Json) -> Vec<String> {
    match value {
        Json::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// A stored observation's normalized fields.
pub fn observation_of(model: &host_observation::Model) -> Observation {
    Observation {
        hostname: model.hostname.clone(),
        fqdn: model.fqdn.clone(),
        os: model.os.clone(),
        platform: model.platform.clone(),
        cloud_provider: model.cloud_provider.clone(),
        cloud_instance_id: model.cloud_instance_id.clone(),
        private_ips: list_field(&model.private_ips),
        public_ips: list_field(&model.public_ips),
        macs: list_field(&model.macs),
        first_seen: model.first_seen,
        last_seen: model.last_seen,
    }
}

fn host_row(
    id: i64,
    merged: hosts::Merged,
    observations: usize,
    now: DateTime<Utc>,
) -> host::Model {
    let f = merged.fields;
    let sources: serde_json::Map<String, Json> = merged
        .sources
        .into_iter()
        .map(|(field, providers)| (field, json_list(&providers)))
        .collect();
    host::Model {
        id,
        hostname: f.hostname,
        fqdn: f.fqdn,
        os: f.os,
        platform: f.platform,
        cloud_provider: f.cloud_provider,
        cloud_instance_id: f.cloud_instance_id,
        private_ips: json_list(&f.private_ips),
        public_ips: json_list(&f.public_ips),
        macs: json_list(&f.macs),
        field_sources: Json::Object(sources),
        first_seen: f.first_seen,
        last_seen: f.last_seen,
        last_reported_at: merged.last_reported_at.unwrap_or(now),
        observations: i32::try_from(observations).unwrap_or(i32::MAX),
        created_at: now,
        updated_at: now,
    }
}

/// The row as SQLite's upsert takes it (PostgreSQL's reads the batch's fields directly).
fn observation_model(job: &Job, row: &Resolved) -> host_observation::ActiveModel {
    let incoming = &job.batch[row.index];
    let f = &incoming.observation;
    host_observation::ActiveModel {
        // Not written: the database gives it.
        id: sea_orm::ActiveValue::NotSet,
        provider: Set(job.provider.clone()),
        external_id: Set(incoming.external_id.clone()),
        host_id: Set(row.host_id),
        hostname: Set(f.hostname.clone()),
        fqdn: Set(f.fqdn.clone()),
        os: Set(f.os.clone()),
        platform: Set(f.platform.clone()),
        cloud_provider: Set(f.cloud_provider.clone()),
        cloud_instance_id: Set(f.cloud_instance_id.clone()),
        private_ips: Set(json_list(&f.private_ips)),
        public_ips: Set(json_list(&f.public_ips)),
        macs: Set(json_list(&f.macs)),
        first_seen: Set(f.first_seen),
        last_seen: Set(f.last_seen),
        matched_by: Set(row.matched_by.map(|k| k.as_str().to_string())),
        reported_at: Set(job.now),
        run_id: Set(Some(job.run_id)),
        updated_at: Set(job.now),
    }
}

/// Array parameters for `UNNEST` on PostgreSQL. Elements cannot be NULL there, so absent text
/// and times travel as '' and come back through NULLIF.
mod arrays {
    use chrono::{DateTime, SecondsFormat, Utc};
    use sea_orm::sea_query::ArrayType;
    use sea_orm::{DbErr, Value};

    pub fn texts<'a>(values: impl Iterator<Item = Option<&'a str>>) -> Value {
        let items = values
            .map(|v| Value::String(Some(v.unwrap_or_default().to_string())))
            .collect();
        Value::Array(ArrayType::String, Some(Box::new(items)))
    }

    pub fn times(values: impl Iterator<Item = Option<DateTime<Utc>>>) -> Value {
        let items = values
            .map(|v| {
                Value::String(Some(
                    v.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
                        .unwrap_or_default(),
                ))
            })
            .collect();
        Value::Array(ArrayType::String, Some(Box::new(items)))
    }

    /// Lists of text as JSON text, cast back with `::jsonb` in the statement.
    pub fn lists<'a>(values: impl Iterator<Item = &'a [String]>) -> Result<Value, DbErr> {
        let items = values
            .map(|list| {
                serde_json::to_string(list)
                    .map(|text| Value::String(Some(text)))
                    .map_err(|e| DbErr::Custom(format!("a list as JSON: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Value::Array(ArrayType::String, Some(Box::new(items))))
    }

    /// JSON values as their text, cast back with `::jsonb` in the statement.
    pub fn jsons<'a>(values: impl Iterator<Item = &'a serde_json::Value>) -> Value {
        let items = values.map(|v| Value::String(Some(v.to_string()))).collect();
        Value::Array(ArrayType::String, Some(Box::new(items)))
    }

    pub fn bigints(values: impl Iterator<Item = i64>) -> Value {
        let items = values.map(|v| Value::BigInt(Some(v))).collect();
        Value::Array(ArrayType::BigInt, Some(Box::new(items)))
    }

    pub fn ints(values: impl Iterator<Item = i32>) -> Value {
        let items = values.map(|v| Value::Int(Some(v))).collect();
        Value::Array(ArrayType::Int, Some(Box::new(items)))
    }
}

/// Whether rows being written may already be stored. The resolver knows which are new (hosts
/// it numbered, observations its lookup did not find, both under its lock); PostgreSQL inserts
/// those without `ON CONFLICT`, whose check costs about a third of an insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    No,
    Maybe,
}

/// `sql`, with `on_conflict` appended when rows may be stored already.
fn insert_sql(sql: &str, stored: Stored, on_conflict: &str) -> String {
    match stored {
        Stored::No => sql.to_string(),
        Stored::Maybe => format!("{sql} {on_conflict}"),
    }
}

fn host_inserts(
    backend: DbBackend,
    rows: Vec<host::Model>,
    now: DateTime<Utc>,
    stored: Stored,
) -> Result<Vec<Statement>, DbErr> {
    use host::Column as C;
    let mut statements = Vec::new();
    if backend == DbBackend::Postgres {
        for chunk in rows.chunks(CHUNK) {
            let text = |f: fn(&host::Model) -> Option<&str>| arrays::texts(chunk.iter().map(f));
            let json = |f: fn(&host::Model) -> &Json| arrays::jsons(chunk.iter().map(f));
            let values = vec![
                arrays::bigints(chunk.iter().map(|h| h.id)),
                text(|h| h.hostname.as_deref()),
                text(|h| h.fqdn.as_deref()),
                text(|h| h.os.as_deref()),
                text(|h| h.platform.as_deref()),
                text(|h| h.cloud_provider.as_deref()),
                text(|h| h.cloud_instance_id.as_deref()),
                json(|h| &h.private_ips),
                json(|h| &h.public_ips),
                json(|h| &h.macs),
                json(|h| &h.field_sources),
                arrays::times(chunk.iter().map(|h| h.first_seen)),
                arrays::times(chunk.iter().map(|h| h.last_seen)),
                arrays::times(chunk.iter().map(|h| Some(h.last_reported_at))),
                arrays::ints(chunk.iter().map(|h| h.observations)),
                // Written now, all of them (a stored host keeps its `created_at`).
                now.into(),
            ];
            let sql = insert_sql(
                "INSERT INTO hosts (id, hostname, fqdn, os, platform, cloud_provider,
                     cloud_instance_id, private_ips, public_ips, macs, field_sources, first_seen,
                     last_seen, last_reported_at, observations, created_at, updated_at)
                 SELECT id, NULLIF(hostname, ''), NULLIF(fqdn, ''), NULLIF(os, ''),
                     NULLIF(platform, ''), NULLIF(cloud_provider, ''),
                     NULLIF(cloud_instance_id, ''), private_ips::jsonb, public_ips::jsonb,
                     macs::jsonb, field_sources::jsonb, NULLIF(first_seen, '')::timestamptz,
                     NULLIF(last_seen, '')::timestamptz, last_reported_at::timestamptz,
                     observations, $16, $16
                 FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                     $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                     $12::text[], $13::text[], $14::text[], $15::int[])
                     AS v(id, hostname, fqdn, os, platform, cloud_provider, cloud_instance_id,
                          private_ips, public_ips, macs, field_sources, first_seen, last_seen,
                          last_reported_at, observations)",
                stored,
                "ON CONFLICT (id) DO UPDATE SET hostname = EXCLUDED.hostname,
                     fqdn = EXCLUDED.fqdn, os = EXCLUDED.os, platform = EXCLUDED.platform,
                     cloud_provider = EXCLUDED.cloud_provider,
                     cloud_instance_id = EXCLUDED.cloud_instance_id,
                     private_ips = EXCLUDED.private_ips, public_ips = EXCLUDED.public_ips,
                     macs = EXCLUDED.macs, field_sources = EXCLUDED.field_sources,
                     first_seen = EXCLUDED.first_seen, last_seen = EXCLUDED.last_seen,
                     last_reported_at = EXCLUDED.last_reported_at,
                     observations = EXCLUDED.observations, updated_at = EXCLUDED.updated_at",
            );
            statements.push(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                values,
            ));
        }
        return Ok(statements);
    }
    let mut rows = rows
        .into_iter()
        .map(IntoActiveModel::into_active_model)
        .peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(CHUNK).collect();
        let insert = host::Entity::insert_many(chunk).on_conflict(
            // Every column but the key and the creation time.
            OnConflict::column(C::Id)
                .update_columns(C::iter().filter(|c| !matches!(c, C::Id | C::CreatedAt)))
                .to_owned(),
        );
        statements.push(insert.build(backend));
    }
    Ok(statements)
}

fn observation_inserts(
    backend: DbBackend,
    job: &Job,
    rows: &[&Resolved],
    stored: Stored,
) -> Result<Vec<Statement>, DbErr> {
    use host_observation::Column as C;
    let mut statements = Vec::new();
    if backend == DbBackend::Postgres {
        for chunk in rows.chunks(CHUNK) {
            // What every row shares travels once: provider, time, run.
            let values = {
                let incoming = || chunk.iter().map(|r| &job.batch[r.index]);
                let of = || incoming().map(|i| &i.observation);
                vec![
                    job.provider.as_str().into(),
                    job.now.into(),
                    job.run_id.into(),
                    arrays::texts(incoming().map(|i| Some(i.external_id.as_str()))),
                    arrays::bigints(chunk.iter().map(|r| r.host_id)),
                    arrays::texts(of().map(|o| o.hostname.as_deref())),
                    arrays::texts(of().map(|o| o.fqdn.as_deref())),
                    arrays::texts(of().map(|o| o.os.as_deref())),
                    arrays::texts(of().map(|o| o.platform.as_deref())),
                    arrays::texts(of().map(|o| o.cloud_provider.as_deref())),
                    arrays::texts(of().map(|o| o.cloud_instance_id.as_deref())),
                    arrays::lists(of().map(|o| &o.private_ips[..]))?,
                    arrays::lists(of().map(|o| &o.public_ips[..]))?,
                    arrays::lists(of().map(|o| &o.macs[..]))?,
                    arrays::times(of().map(|o| o.first_seen)),
                    arrays::times(of().map(|o| o.last_seen)),
                    arrays::texts(chunk.iter().map(|r| r.matched_by.map(IdKind::as_str))),
                ]
            };
            let sql = insert_sql(
                "INSERT INTO host_observations (provider, external_id, host_id, hostname, fqdn,
                     os, platform, cloud_provider, cloud_instance_id, private_ips, public_ips,
                     macs, first_seen, last_seen, matched_by, reported_at, run_id, updated_at)
                 SELECT $1, external_id, host_id, NULLIF(hostname, ''), NULLIF(fqdn, ''),
                     NULLIF(os, ''), NULLIF(platform, ''), NULLIF(cloud_provider, ''),
                     NULLIF(cloud_instance_id, ''), private_ips::jsonb, public_ips::jsonb,
                     macs::jsonb, NULLIF(first_seen, '')::timestamptz,
                     NULLIF(last_seen, '')::timestamptz, NULLIF(matched_by, ''), $2, $3, $2
                 FROM UNNEST($4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[],
                     $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
                     $14::text[], $15::text[], $16::text[], $17::text[])
                     AS v(external_id, host_id, hostname, fqdn, os, platform, cloud_provider,
                          cloud_instance_id, private_ips, public_ips, macs, first_seen,
                          last_seen, matched_by)",
                stored,
                "ON CONFLICT (external_id, provider) DO UPDATE SET host_id = EXCLUDED.host_id,
                     hostname = EXCLUDED.hostname, fqdn = EXCLUDED.fqdn, os = EXCLUDED.os,
                     platform = EXCLUDED.platform, cloud_provider = EXCLUDED.cloud_provider,
                     cloud_instance_id = EXCLUDED.cloud_instance_id,
                     private_ips = EXCLUDED.private_ips, public_ips = EXCLUDED.public_ips,
                     macs = EXCLUDED.macs, first_seen = EXCLUDED.first_seen,
                     last_seen = EXCLUDED.last_seen, matched_by = EXCLUDED.matched_by,
                     reported_at = EXCLUDED.reported_at, run_id = EXCLUDED.run_id,
                     updated_at = EXCLUDED.updated_at",
            );
            statements.push(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                values,
            ));
        }
        return Ok(statements);
    }
    let models: Vec<_> = rows.iter().map(|row| observation_model(job, row)).collect();
    let mut rows = models.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(CHUNK).collect();
        let insert = host_observation::Entity::insert_many(chunk).on_conflict(
            // Every column but the keys.
            OnConflict::columns([C::Provider, C::ExternalId])
                .update_columns(
                    C::iter().filter(|c| !matches!(c, C::Id | C::Provider | C::ExternalId)),
                )
                .to_owned(),
        );
        statements.push(insert.build(backend));
    }
    Ok(statements)
}

fn identifier_statements(backend: DbBackend, rows: &[(IdKind, String, i64)]) -> Vec<Statement> {
    use host_identifier::Column as C;
    let mut statements = Vec::new();
    if backend == DbBackend::Postgres {
        for chunk in rows.chunks(CHUNK * 3) {
            let values = vec![
                arrays::texts(chunk.iter().map(|(_, value, _)| Some(value.as_str()))),
                arrays::texts(chunk.iter().map(|(kind, _, _)| Some(kind.as_str()))),
                arrays::bigints(chunk.iter().map(|(_, _, host)| *host)),
            ];
            statements.push(Statement::from_sql_and_values(
                DbBackend::Postgres,
                // No ON CONFLICT: the batch's lookup, under the resolver lock, found none of
                // these, and the check costs a third of the statement.
                "INSERT INTO host_identifiers (value, kind, host_id)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[])",
                values,
            ));
        }
        return statements;
    }
    for chunk in rows.chunks(CHUNK * 3) {
        let models = chunk
            .iter()
            .map(|(kind, value, host)| host_identifier::ActiveModel {
                kind: Set(kind.as_str().to_string()),
                value: Set(value.clone()),
                host_id: Set(*host),
            });
        let insert = host_identifier::Entity::insert_many(models).on_conflict(
            OnConflict::columns([C::Value, C::Kind, C::HostId])
                .do_nothing()
                .to_owned(),
        );
        statements.push(insert.build(backend));
    }
    statements
}

async fn write_conflicts<C: ConnectionTrait>(
    db: &C,
    rows: Vec<host_conflict::ActiveModel>,
) -> Result<(), DbErr> {
    use host_conflict::Column as C;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(CHUNK).collect();
        host_conflict::Entity::insert_many(chunk)
            .on_conflict(
                OnConflict::columns([
                    C::Provider,
                    C::ExternalId,
                    C::Kind,
                    C::Value,
                    C::OtherHostId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reads.

/// What `hosts(where: …)` may filter on.
#[derive(Debug, Clone, Default)]
pub struct HostFilter {
    pub hostname: TextFilter,
    pub os: TextFilter,
    /// Canonical address text.
    pub ip: Option<String>,
    /// Lower-case colon pairs.
    pub mac: Option<String>,
    pub cloud_instance_id: Option<String>,
    pub provider: Option<String>,
    pub last_seen: RangeFilter<DateTime<Utc>>,
    /// `Some(true)`: not reported since this instant; `Some(false)`: reported since.
    pub stale_before: Option<(bool, DateTime<Utc>)>,
}

impl HostFilter {
    fn condition(&self) -> Condition {
        let mut all = Condition::all()
            .add(self.hostname.condition(host::Column::Hostname))
            .add(self.os.condition(host::Column::Os))
            .add(self.last_seen.condition(host::Column::LastSeen));
        let with_identifier = |kind: IdKind, value: &str| {
            host::Column::Id.in_subquery(
                Query::select()
                    .column(host_identifier::Column::HostId)
                    .from(host_identifier::Entity)
                    .and_where(host_identifier::Column::Kind.eq(kind.as_str()))
                    .and_where(super::filter::text_eq(
                        host_identifier::Column::Value,
                        value,
                    ))
                    .to_owned(),
            )
        };
        if let Some(ip) = &self.ip {
            all = all.add(with_identifier(IdKind::Ip, ip));
        }
        if let Some(mac) = &self.mac {
            all = all.add(with_identifier(IdKind::Mac, mac));
        }
        if let Some(id) = &self.cloud_instance_id {
            all = all.add(with_identifier(
                IdKind::CloudInstanceId,
                &id.trim().to_ascii_lowercase(),
            ));
        }
        if let Some(provider) = &self.provider {
            all = all.add(
                host::Column::Id.in_subquery(
                    Query::select()
                        .column(host_observation::Column::HostId)
                        .from(host_observation::Entity)
                        .and_where(super::filter::text_eq(
                            host_observation::Column::Provider,
                            provider,
                        ))
                        .to_owned(),
                ),
            );
        }
        if let Some((stale, cutoff)) = self.stale_before {
            all = all.add(if stale {
                host::Column::LastReportedAt.lt(cutoff)
            } else {
                host::Column::LastReportedAt.gte(cutoff)
            });
        }
        all
    }
}

/// Fields a host list can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostSort {
    Id,
    Hostname,
    LastSeen,
}

pub fn order(sort: &[(HostSort, Order)]) -> SortOrder<host::Column> {
    use host::Column as C;
    let mut order = SortOrder::new();
    for (field, direction) in sort {
        order = match field {
            HostSort::Id => order.then(C::Id, direction.clone()),
            HostSort::Hostname => order.then_nullable(C::Hostname, direction.clone()),
            HostSort::LastSeen => order.then_nullable(C::LastSeen, direction.clone()),
        };
    }
    // The id is unique: the tie-breaker (and the default order).
    let last = sort.last().map(|(_, d)| d.clone()).unwrap_or(Order::Asc);
    order.then(C::Id, last)
}

pub fn cursor_values(sort: &[(HostSort, Order)], h: &host::Model) -> Vec<KeyValue> {
    let mut values: Vec<KeyValue> = sort
        .iter()
        .map(|(field, _)| match field {
            HostSort::Id => KeyValue::Int(h.id),
            HostSort::Hostname => h
                .hostname
                .clone()
                .map(KeyValue::Text)
                .unwrap_or(KeyValue::Null),
            HostSort::LastSeen => KeyValue::time(h.last_seen),
        })
        .collect();
    values.push(KeyValue::Int(h.id));
    values
}

pub async fn list(
    db: &DatabaseConnection,
    filter: &HostFilter,
    sort: &[(HostSort, Order)],
    page: &PageRequest,
) -> Result<Page<host::Model>, DbErr> {
    let backend = db.get_database_backend();
    let select = host::Entity::find().filter(filter.condition());
    let rows = page.apply(&order(sort), backend, select).all(db).await?;
    Ok(page.finish(rows))
}

pub async fn get(db: &DatabaseConnection, id: i64) -> Result<Option<host::Model>, DbErr> {
    host::Entity::find_by_id(id).one(db).await
}

/// Hosts by id (the DataLoader behind conflicts' hosts).
pub async fn by_ids(db: &DatabaseConnection, ids: &[i64]) -> Result<Vec<host::Model>, DbErr> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        found.extend(
            host::Entity::find()
                .filter(host::Column::Id.is_in(chunk.to_vec()))
                .all(db)
                .await?,
        );
    }
    Ok(found)
}

/// The observations of many hosts at once (the DataLoader behind `Host.observations`), by
/// provider then external id.
pub async fn observations(
    db: &DatabaseConnection,
    host_ids: &[i64],
) -> Result<Vec<host_observation::Model>, DbErr> {
    let mut found = Vec::new();
    for chunk in host_ids.chunks(CHUNK) {
        found.extend(
            host_observation::Entity::find()
                .filter(host_observation::Column::HostId.is_in(chunk.to_vec()))
                .order_by_asc(host_observation::Column::Provider)
                .order_by_asc(host_observation::Column::ExternalId)
                .all(db)
                .await?,
        );
    }
    Ok(found)
}

/// Conflicts, oldest first.
pub fn conflict_order() -> SortOrder<host_conflict::Column> {
    SortOrder::new().then(host_conflict::Column::Id, Order::Asc)
}

pub fn conflict_cursor(c: &host_conflict::Model) -> Vec<KeyValue> {
    vec![KeyValue::Int(c.id)]
}

/// Conflicts, of one host (either side) when given.
pub async fn conflicts(
    db: &DatabaseConnection,
    host_id: Option<i64>,
    page: &PageRequest,
) -> Result<Page<host_conflict::Model>, DbErr> {
    let mut condition = Condition::all();
    if let Some(id) = host_id {
        condition = condition.add(
            Condition::any()
                .add(host_conflict::Column::HostId.eq(id))
                .add(host_conflict::Column::OtherHostId.eq(id)),
        );
    }
    let select = host_conflict::Entity::find().filter(condition);
    let rows = page
        .apply(&conflict_order(), db.get_database_backend(), select)
        .all(db)
        .await?;
    Ok(page.finish(rows))
}
