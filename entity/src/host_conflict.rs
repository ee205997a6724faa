//! An observation whose strong identifiers point at two different hosts. It joined `host_id`
//! (its strongest match); `other_host_id` holds the identifier too. The hosts stay apart until
//! someone decides.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "host_conflicts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub kind: String,
    pub value: String,
    pub host_id: i64,
    pub other_host_id: i64,
    pub provider: String,
    pub external_id: String,
    pub detected_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
