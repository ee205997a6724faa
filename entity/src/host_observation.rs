//! One provider's report of one machine (by the provider's own id for it), normalized.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "host_observations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub provider: String,
    /// The provider's id for the machine; its raw payload is in `raw_records` under the same
    /// provider and external id.
    pub external_id: String,
    pub host_id: i64,
    pub hostname: Option<String>,
    pub fqdn: Option<String>,
    pub os: Option<String>,
    pub platform: Option<String>,
    pub cloud_provider: Option<String>,
    pub cloud_instance_id: Option<String>,
    #[sea_orm(column_type = "JsonBinary")]
    pub private_ips: Json,
    #[sea_orm(column_type = "JsonBinary")]
    pub public_ips: Json,
    #[sea_orm(column_type = "JsonBinary")]
    pub macs: Json,
    pub first_seen: Option<DateTimeUtc>,
    pub last_seen: Option<DateTimeUtc>,
    /// The identifier kind that joined it to an existing host; null when it created the host.
    pub matched_by: Option<String>,
    /// The last time a run received it, changed or not.
    pub reported_at: DateTimeUtc,
    pub run_id: Option<i64>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
