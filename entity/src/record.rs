//! One record of a generic dataset (`entity = "record"` providers).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "records")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub dataset: String,
    /// The provider's `key` field: unique within the dataset.
    pub key: String,
    /// The mapped fields.
    #[sea_orm(column_type = "JsonBinary")]
    pub data: Json,
    pub provider: String,
    pub updated_at: DateTimeUtc,
    /// The last run of a provider with `on_missing = "mark_deleted"` that saw the record.
    pub seen_run_id: Option<i64>,
    /// When a complete run of such a provider did not see it: deleted upstream.
    pub deleted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
