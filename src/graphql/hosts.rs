//! Hosts merged across security tools over GraphQL: the merged host, where each field came
//! from, every tool's observation with its raw payload, and the conflicts resolution found.

use std::collections::HashMap;
use std::net::IpAddr;

use async_graphql::dataloader::Loader;
use async_graphql::{
    Context, Enum, ID, InputObject, Interface, Json, MergedObject, Object, SimpleObject,
};
use entity::{host, host_conflict, host_observation};
use sea_orm::DatabaseConnection;
use sea_orm::sea_query::Order;

use super::connection::{Page, PageArgs, list};
use super::db::{db, loader};
use super::error::{ApiError, ApiResult};
use super::filters::{DateTimeFilterInput, SortDirection, StringFilterInput, optional};
use super::scalars::DateTime;
use crate::entities::host::Observation;
use crate::runner::Runner;
use crate::store::hosts::{self as store, HostFilter, HostSort};
use crate::store::raw;
use crate::transform::transforms;

/// What is known of a machine, as merged into a host or as one tool reported it: the fields
/// `Host` and `HostObservation` share, resolved once here for both.
pub struct Machine(Observation);

#[Object]
impl Machine {
    async fn hostname(&self) -> Option<&str> {
        self.0.hostname.as_deref()
    }
    async fn fqdn(&self) -> Option<&str> {
        self.0.fqdn.as_deref()
    }
    async fn os(&self) -> Option<&str> {
        self.0.os.as_deref()
    }
    async fn platform(&self) -> Option<&str> {
        self.0.platform.as_deref()
    }
    async fn cloud_provider(&self) -> Option<&str> {
        self.0.cloud_provider.as_deref()
    }
    async fn cloud_instance_id(&self) -> Option<&str> {
        self.0.cloud_instance_id.as_deref()
    }
    /// Private addresses, sorted (of a host: every one any tool reported).
    async fn private_ips(&self) -> &[String] {
        &self.0.private_ips
    }
    /// Public addresses, sorted (of a host: every one any tool reported).
    async fn public_ips(&self) -> &[String] {
        &self.0.public_ips
    }
    /// Lower-case colon pairs, sorted (of a host: every one any tool reported).
    async fn macs(&self) -> &[String] {
        &self.0.macs
    }
    /// The first sighting (of a host: the earliest any tool reported).
    async fn first_seen(&self) -> Option<DateTime> {
        self.0.first_seen.map(Into::into)
    }
    /// The latest sighting (of a host: the latest any tool reported).
    async fn last_seen(&self) -> Option<DateTime> {
        self.0.last_seen.map(Into::into)
    }
}

/// A machine as reported: a merged host or one tool's observation of it. A client can ask
/// for these fields of either with one fragment (`... on MachineReport`).
// Each `field(…)` names a different field; clippy reads the repeated `ty = …` as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(Interface)]
#[graphql(
    field(name = "hostname", ty = "Option<&str>"),
    field(name = "fqdn", ty = "Option<&str>"),
    field(name = "os", ty = "Option<&str>"),
    field(name = "platform", ty = "Option<&str>"),
    field(name = "cloud_provider", ty = "Option<&str>"),
    field(name = "cloud_instance_id", ty = "Option<&str>"),
    field(name = "private_ips", ty = "&[String]"),
    field(name = "public_ips", ty = "&[String]"),
    field(name = "macs", ty = "&[String]"),
    field(name = "first_seen", ty = "Option<DateTime>"),
    field(name = "last_seen", ty = "Option<DateTime>")
)]
pub enum MachineReport {
    Host(Host),
    HostObservation(HostObservation),
}

/// One machine, merged from every tool that reports it.
#[derive(MergedObject)]
pub struct Host(HostOwn, Machine);

impl Host {
    pub fn new(row: host::Model) -> Host {
        let machine = Machine(store::host_fields(&row));
        Host(HostOwn(row), machine)
    }
}

/// The interface's fields resolve on the shared part (`MachineReport` calls them by name).
impl std::ops::Deref for Host {
    type Target = Machine;
    fn deref(&self) -> &Machine {
        &self.1
    }
}

/// The fields only a merged host has.
pub struct HostOwn(host::Model);

/// Where one host field's value came from.
#[derive(SimpleObject)]
pub struct FieldSource {
    /// `hostname`, `fqdn`, `os`, `platform`, `cloudProvider`, `cloudInstanceId`, `privateIps`,
    /// `publicIps` or `macs`.
    field: String,
    /// The provider whose observation gave the value; for lists, every provider that gave one.
    providers: Vec<String>,
}

#[Object]
impl HostOwn {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The last time a provider run reported this host.
    async fn last_reported_at(&self) -> DateTime {
        self.0.last_reported_at.into()
    }
    /// No provider has reported the host for longer than `hosts.stale_after_hours`.
    async fn stale(&self, ctx: &Context<'_>) -> bool {
        let rules = ctx.data_unchecked::<Runner>().host_rules();
        self.0.last_reported_at < chrono::Utc::now() - rules.stale_after
    }
    /// How many observations (provider reports) the host merges.
    async fn observation_count(&self) -> i32 {
        self.0.observations
    }
    /// For each field that has a value, the provider(s) it came from.
    async fn field_sources(&self) -> Vec<FieldSource> {
        let Some(map) = self.0.field_sources.as_object() else {
            return Vec::new();
        };
        map.iter()
            .map(|(field, providers)| FieldSource {
                field: camel_case(field),
                providers: store::list_field(providers),
            })
            .collect()
    }
    /// Every tool's report of this host, by provider then external id.
    async fn observations(&self, ctx: &Context<'_>) -> ApiResult<Vec<HostObservation>> {
        let loader = loader::<ObservationLoader>(ctx);
        let found = loader
            .load_one(self.0.id)
            .await
            .map_err(ApiError::Internal)?
            .unwrap_or_default();
        Ok(found.into_iter().map(HostObservation::new).collect())
    }
}

/// `cloud_instance_id` → `cloudInstanceId`, as fields are named in the schema.
fn camel_case(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// One provider's report of a host, as normalized when it was last received.
#[derive(MergedObject)]
pub struct HostObservation(ObservationOwn, Machine);

impl HostObservation {
    pub fn new(row: host_observation::Model) -> HostObservation {
        let machine = Machine(store::observation_of(&row));
        HostObservation(ObservationOwn(row), machine)
    }
}

impl std::ops::Deref for HostObservation {
    type Target = Machine;
    fn deref(&self) -> &Machine {
        &self.1
    }
}

/// The fields only an observation has.
pub struct ObservationOwn(host_observation::Model);

#[Object]
impl ObservationOwn {
    async fn provider(&self) -> &str {
        &self.0.provider
    }
    /// The provider's own id for the machine.
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }
    /// The identifier kind that joined it to the host (`cloud_instance_id`, `mac`, `name`);
    /// null when this observation created the host.
    async fn matched_by(&self) -> Option<&str> {
        self.0.matched_by.as_deref()
    }
    /// The last time a provider run received it, changed or not.
    async fn reported_at(&self) -> DateTime {
        self.0.reported_at.into()
    }
    /// The payload as the provider sent it; null when the provider keeps no raw payloads.
    async fn raw(&self, ctx: &Context<'_>) -> ApiResult<Option<Json<serde_json::Value>>> {
        let loader = loader::<RawLoader>(ctx);
        let found = loader
            .load_one((self.0.provider.clone(), self.0.external_id.clone()))
            .await
            .map_err(ApiError::Internal)?;
        Ok(found.map(Json))
    }
}

/// One observation whose strong identifier belongs to another host. The hosts stay apart.
pub struct HostConflict(pub host_conflict::Model);

#[Object]
impl HostConflict {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// `cloud_instance_id`, `mac` or `name`.
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    /// The identifier both hosts claim, normalized.
    async fn value(&self) -> &str {
        &self.0.value
    }
    /// The host the observation joined (by its strongest identifier).
    async fn host(&self, ctx: &Context<'_>) -> ApiResult<Option<Host>> {
        load_host(ctx, self.0.host_id).await
    }
    /// The host that already held the identifier.
    async fn other_host(&self, ctx: &Context<'_>) -> ApiResult<Option<Host>> {
        load_host(ctx, self.0.other_host_id).await
    }
    async fn provider(&self) -> &str {
        &self.0.provider
    }
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }
    async fn detected_at(&self) -> DateTime {
        self.0.detected_at.into()
    }
}

async fn load_host(ctx: &Context<'_>, id: i64) -> ApiResult<Option<Host>> {
    let loader = loader::<HostLoader>(ctx);
    Ok(loader
        .load_one(id)
        .await
        .map_err(ApiError::Internal)?
        .map(Host::new))
}

/// Hosts by id, a page at a time.
pub struct HostLoader {
    pub db: DatabaseConnection,
}

impl Loader<i64> for HostLoader {
    type Value = host::Model;
    type Error = String;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, host::Model>, String> {
        let found = store::by_ids(&self.db, keys)
            .await
            .map_err(|e| format!("loading hosts: {e}"))?;
        Ok(found.into_iter().map(|h| (h.id, h)).collect())
    }
}

/// The observations of a whole page of hosts in one query.
pub struct ObservationLoader {
    pub db: DatabaseConnection,
}

impl Loader<i64> for ObservationLoader {
    type Value = Vec<host_observation::Model>;
    type Error = String;

    async fn load(
        &self,
        keys: &[i64],
    ) -> Result<HashMap<i64, Vec<host_observation::Model>>, String> {
        let found = store::observations(&self.db, keys)
            .await
            .map_err(|e| format!("loading host observations: {e}"))?;
        let mut by_host: HashMap<i64, Vec<host_observation::Model>> = HashMap::new();
        for o in found {
            by_host.entry(o.host_id).or_default().push(o);
        }
        Ok(by_host)
    }
}

/// Raw payloads by (provider, external id), a page at a time.
pub struct RawLoader {
    pub db: DatabaseConnection,
}

impl Loader<(String, String)> for RawLoader {
    type Value = serde_json::Value;
    type Error = String;

    async fn load(
        &self,
        keys: &[(String, String)],
    ) -> Result<HashMap<(String, String), serde_json::Value>, String> {
        raw::payloads(&self.db, keys)
            .await
            .map_err(|e| format!("loading raw payloads: {e}"))
    }
}

/// Fields hosts can be ordered by.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostOrderField {
    Id,
    Hostname,
    LastSeen,
}

#[derive(InputObject, Debug, Clone, Copy)]
pub struct HostOrder {
    pub field: HostOrderField,
    #[graphql(default)]
    pub direction: SortDirection,
}

/// Filters for hosts; all given conditions must hold.
#[derive(InputObject, Debug, Clone, Default)]
pub struct HostWhere {
    pub hostname: Option<StringFilterInput>,
    pub os: Option<StringFilterInput>,
    /// Any private or public address the host has, in any IPv4/IPv6 spelling.
    pub ip: Option<String>,
    /// Any MAC address the host has, in any common spelling (`12-5E-2E-DB-58-99`).
    pub mac: Option<String>,
    pub cloud_instance_id: Option<String>,
    /// Hosts that this provider reports.
    pub provider: Option<String>,
    pub last_seen: Option<DateTimeFilterInput>,
    /// Stale hosts only (true) or current ones only (false).
    pub stale: Option<bool>,
}

fn parse_id(id: &ID, path: &str) -> Result<i64, ApiError> {
    id.parse::<i64>()
        .map_err(|_| ApiError::bad_input(format!("`{path}`: {:?} is not a host id", id.as_str())))
}

#[derive(Default)]
pub struct HostQuery;

#[Object]
impl HostQuery {
    /// One host by id; null when unknown.
    async fn host(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Host>> {
        let db = db(ctx);
        Ok(store::get(db, parse_id(&id, "id")?).await?.map(Host::new))
    }

    /// Hosts matching `where`, by id unless `orderBy` says otherwise.
    #[graphql(complexity = "PageArgs::size(first, last) * child_complexity")]
    #[allow(clippy::too_many_arguments)]
    async fn hosts(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "where")] filter: Option<HostWhere>,
        order_by: Option<Vec<HostOrder>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<Page<Host>> {
        let db = db(ctx);
        let rules = ctx.data_unchecked::<Runner>().host_rules();
        let w = filter.unwrap_or_default();
        let ip =
            w.ip.map(|text| {
                text.trim()
                    .parse::<IpAddr>()
                    .map(|ip| ip.to_string())
                    .map_err(|_| {
                        ApiError::bad_input(format!("`where.ip`: {text:?} is not an IP address"))
                    })
            })
            .transpose()?;
        let mac = w
            .mac
            .map(|text| match transforms::mac(&serde_json::Value::String(text)) {
                Ok(serde_json::Value::String(mac)) => Ok(mac),
                Ok(_) | Err(_) => Err(ApiError::bad_input(
                    "`where.mac`: not a MAC address; expected six hex pairs such as 12:5e:2e:db:58:99",
                )),
            })
            .transpose()?;
        let filter = HostFilter {
            hostname: optional(w.hostname, "where.hostname", StringFilterInput::into_store)?,
            os: optional(w.os, "where.os", StringFilterInput::into_store)?,
            ip,
            mac,
            cloud_instance_id: w.cloud_instance_id,
            provider: w.provider,
            last_seen: optional(
                w.last_seen,
                "where.lastSeen",
                DateTimeFilterInput::into_store,
            )?,
            stale_before: w
                .stale
                .map(|stale| (stale, chrono::Utc::now() - rules.stale_after)),
        };
        let order_by = order_by.unwrap_or_default();
        if order_by.len() > 2 {
            return Err(ApiError::bad_input("`orderBy` takes at most 2 entries"));
        }
        let sort: Vec<(HostSort, Order)> = order_by
            .into_iter()
            .map(|o| {
                let field = match o.field {
                    HostOrderField::Id => HostSort::Id,
                    HostOrderField::Hostname => HostSort::Hostname,
                    HostOrderField::LastSeen => HostSort::LastSeen,
                };
                (field, o.direction.into())
            })
            .collect();
        let order = store::order(&sort);
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        list(
            args,
            &order,
            async |request| store::list(db, &filter, &sort, request).await,
            |h| store::cursor_values(&sort, h),
            Host::new,
        )
        .await
    }

    /// Observations that matched two different hosts by a strong identifier, oldest first;
    /// only those involving `host` when given.
    #[graphql(complexity = "PageArgs::size(first, last) * child_complexity")]
    async fn host_conflicts(
        &self,
        ctx: &Context<'_>,
        host: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<Page<HostConflict>> {
        let db = db(ctx);
        let host = host.map(|id| parse_id(&id, "host")).transpose()?;
        let order = store::conflict_order();
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        list(
            args,
            &order,
            async |request| store::conflicts(db, host, request).await,
            store::conflict_cursor,
            HostConflict,
        )
        .await
    }
}
