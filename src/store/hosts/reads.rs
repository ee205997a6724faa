//! The read queries over hosts, observations and conflicts.

use chrono::{DateTime, Utc};
use entity::{host, host_conflict, host_identifier, host_observation};
use sea_orm::sea_query::{Condition, Order, Query};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder};

use super::CHUNK;
use crate::hosts::IdKind;
use crate::store::filter::{RangeFilter, TextFilter, text_eq};
use crate::store::keyset::{KeyValue, Page, PageRequest, SortOrder};

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
                    .and_where(text_eq(host_identifier::Column::Value, value))
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
                        .and_where(text_eq(host_observation::Column::Provider, provider))
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
