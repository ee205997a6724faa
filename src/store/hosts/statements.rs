//! The statements the resolver writes: hosts (merged from their observations), observations
//! and identifiers. On PostgreSQL one statement per table per chunk, over `UNNEST` of array
//! parameters (`store::arrays`); on SQLite multi-row inserts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use entity::{host, host_identifier, host_observation};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, DbBackend, DbErr, EntityTrait, IntoActiveModel, Iterable, QueryTrait,
    Statement,
};
use serde_json::Value as Json;

use super::resolve::{Job, Resolved};
use super::{CHUNK, json_list, observation_of};
use crate::entities::host::Observation;
use crate::hosts::{self, HostRules, IdKind, Reported};
use crate::store::arrays;

/// The touched hosts merged from their observations, as the statements that write them.
pub(super) fn host_statements(
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
pub(super) fn observation_statements(
    backend: DbBackend,
    job: &Job,
) -> Result<Vec<Statement>, DbErr> {
    let (known, fresh): (Vec<&Resolved>, Vec<&Resolved>) =
        job.resolved.iter().partition(|r| r.stored);
    let mut statements = observation_inserts(backend, job, &fresh, Stored::No)?;
    statements.extend(observation_inserts(backend, job, &known, Stored::Maybe)?);
    Ok(statements)
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
                arrays::micros(chunk.iter().map(|h| h.first_seen)),
                arrays::micros(chunk.iter().map(|h| h.last_seen)),
                arrays::micros(chunk.iter().map(|h| Some(h.last_reported_at))),
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
                     macs::jsonb, field_sources::jsonb,
                     'epoch'::timestamptz + NULLIF(first_seen, -9223372036854775808) * interval '1 microsecond',
                     'epoch'::timestamptz + NULLIF(last_seen, -9223372036854775808) * interval '1 microsecond',
                     'epoch'::timestamptz + last_reported_at * interval '1 microsecond',
                     observations, $16, $16
                 FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                     $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                     $12::int8[], $13::int8[], $14::int8[], $15::int[])
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
                    arrays::micros(of().map(|o| o.first_seen)),
                    arrays::micros(of().map(|o| o.last_seen)),
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
                     macs::jsonb,
                     'epoch'::timestamptz + NULLIF(first_seen, -9223372036854775808) * interval '1 microsecond',
                     'epoch'::timestamptz + NULLIF(last_seen, -9223372036854775808) * interval '1 microsecond',
                     NULLIF(matched_by, ''), $2, $3, $2
                 FROM UNNEST($4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[],
                     $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
                     $14::text[], $15::int8[], $16::int8[], $17::text[])
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

pub(super) fn identifier_statements(
    backend: DbBackend,
    rows: &[(IdKind, String, i64)],
) -> Vec<Statement> {
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
