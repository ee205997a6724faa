//! Hosts in the store: the resolver that matches a batch of observations to hosts and keeps
//! the merged hosts current (`resolve`), the statements it writes (`statements`), and the read
//! queries behind GraphQL (`reads`). What matches and how fields merge are decided by the pure
//! functions of `crate::hosts`.

mod reads;
mod resolve;
mod statements;

use chrono::{DateTime, Utc};
use entity::{host, host_observation};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use serde_json::Value as Json;

pub use self::reads::{
    HostFilter, HostSort, by_ids, conflict_cursor, conflict_order, conflicts, cursor_values, get,
    list, observations, order,
};
pub use self::resolve::resolve;
use super::filter::text_in;
use crate::entities::host::Observation;

/// Rows per statement: under both databases' parameter limits for the widest table.
const CHUNK: usize = 1_000;

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

/// The normalized fields of a host or an observation row: the two tables share these columns.
macro_rules! observation_fields {
    ($model:expr) => {{
        let model = $model;
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
    }};
}

/// A merged host's fields, as an observation's (the fields they share).
pub fn host_fields(model: &host::Model) -> Observation {
    observation_fields!(model)
}

/// A stored observation's normalized fields.
pub fn observation_of(model: &host_observation::Model) -> Observation {
    observation_fields!(model)
}
