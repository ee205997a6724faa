//! A machine merged from every security tool's observations of it. Written by the resolver in
//! `store::hosts`; read through here.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "hosts")]
pub struct Model {
    /// Given by the resolver; stable across re-ingestion.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    pub hostname: Option<String>,
    pub fqdn: Option<String>,
    pub os: Option<String>,
    pub platform: Option<String>,
    pub cloud_provider: Option<String>,
    pub cloud_instance_id: Option<String>,
    /// JSON arrays of text, sorted: the union of every observation's values.
    #[sea_orm(column_type = "JsonBinary")]
    pub private_ips: Json,
    #[sea_orm(column_type = "JsonBinary")]
    pub public_ips: Json,
    #[sea_orm(column_type = "JsonBinary")]
    pub macs: Json,
    /// Field → the providers its value came from.
    #[sea_orm(column_type = "JsonBinary")]
    pub field_sources: Json,
    pub first_seen: Option<DateTimeUtc>,
    pub last_seen: Option<DateTimeUtc>,
    /// The last time any provider reported this host; stale after the configured time.
    pub last_reported_at: DateTimeUtc,
    /// How many observations the host merges.
    pub observations: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
