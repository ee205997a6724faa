//! Per-provider coordination state: the lease that keeps a provider's runs exclusive across
//! replicas, and the checkpoint a run resumes from.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "provider_state")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub provider: String,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub last_tick_at: Option<DateTimeUtc>,
    /// Pagination cursor or file offset, committed with the last batch.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub checkpoint: Option<Json>,
    pub checkpoint_run_id: Option<i64>,
    /// A paused `kafka` provider is consumed by no replica until it is triggered again.
    pub paused: bool,
    /// An incremental provider's high-water mark: the largest cursor value among its
    /// committed records.
    pub cursor: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
