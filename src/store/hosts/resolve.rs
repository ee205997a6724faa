//! The resolver: a batch at a time with a fixed number of statements, whatever the batch
//! size — one lookup of the batch's stored observations, one of its identifiers in the index,
//! one load of the touched hosts' observations, then bulk writes. Merging the touched hosts
//! and building the write statements run on a blocking thread while the connection writes what
//! is ready, so the server's work overlaps the database's.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::{host, host_conflict, host_identifier, host_observation};
use futures_util::future::join;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    QuerySelect, Statement,
};

use super::statements::{host_statements, identifier_statements, observation_statements};
use super::{CHUNK, observation_of, touch};
use crate::entities::host::HostReport;
use crate::hosts::{self, HostRules, IdKind, Known};
use crate::store::filter::text_in;
use crate::store::upsert::{UpsertCounts, last_wins};

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
    let kept = last_wins(&incoming, |o| o.external_id.as_str(), &mut counts);
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
    let next_id = max_host_id(db).await? + 1;

    // Match in input order (a pure function: `crate::hosts`).
    let batch: Vec<(Option<Known>, &[hosts::Identifier])> = changed
        .iter()
        .zip(&identifiers)
        .map(|(&i, ids)| {
            let known = stored.get(&incoming[i].external_id).map(|model| Known {
                host_id: model.host_id,
                matched_by: model.matched_by.as_deref().and_then(IdKind::parse),
            });
            (known, ids.as_slice())
        })
        .collect();
    let matching = hosts::match_observations(&batch, &mut index, next_id);
    let new_hosts: HashSet<i64> = matching
        .placements
        .iter()
        .filter(|p| p.new_host)
        .map(|p| p.host_id)
        .collect();
    let conflicts: Vec<host_conflict::ActiveModel> = matching
        .conflicts
        .iter()
        .map(|c| host_conflict::ActiveModel {
            kind: Set(c.kind.as_str().to_string()),
            value: Set(c.value.clone()),
            host_id: Set(c.host_id),
            other_host_id: Set(c.other_host_id),
            provider: Set(provider.to_string()),
            external_id: Set(incoming[changed[c.observation]].external_id.clone()),
            detected_at: Set(now),
            ..Default::default()
        })
        .collect();
    let mut resolved: Vec<Resolved> = Vec::with_capacity(changed.len());
    for (&i, placement) in changed.iter().zip(&matching.placements) {
        let stored_before = stored.contains_key(&incoming[i].external_id);
        if stored_before {
            counts.updated += 1;
        } else {
            counts.inserted += 1;
        }
        resolved.push(Resolved {
            index: i,
            host_id: placement.host_id,
            matched_by: placement.matched_by,
            stored: stored_before,
        });
    }
    let new_identifiers = matching.new_identifiers;

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
pub(super) struct Resolved {
    /// Its place in the batch.
    pub(super) index: usize,
    pub(super) host_id: i64,
    pub(super) matched_by: Option<IdKind>,
    /// Whether an observation with its external id was stored before.
    pub(super) stored: bool,
}

/// A resolved batch, shared by the threads that build its statements.
pub(super) struct Job {
    pub(super) batch: Vec<HostReport>,
    pub(super) resolved: Vec<Resolved>,
    /// Hosts numbered in this batch.
    pub(super) new_hosts: HashSet<i64>,
    // What every row of the batch shares.
    pub(super) provider: String,
    pub(super) run_id: i64,
    pub(super) now: DateTime<Utc>,
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
