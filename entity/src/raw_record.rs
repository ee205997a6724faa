//! A provider's payload as it was fetched, kept so entities can be rebuilt without refetching.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "raw_records")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub provider: String,
    pub external_id: String,
    /// SHA-256 of the payload: an unchanged payload is not normalized again.
    pub content_hash: Vec<u8>,
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    pub fetched_at: DateTimeUtc,
    pub run_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
