//! The identifier index: (normalized value, kind) → host.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "host_identifiers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub value: String,
    /// `cloud_instance_id`, `mac`, `name` or `ip`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub kind: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub host_id: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
