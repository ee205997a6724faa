//! An ERC-20 transfer. Written by the bulk writer in `store::transfers`; read through here.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "transfers")]
pub struct Model {
    /// Surrogate key: the unique tie-breaker of keyset cursors.
    #[sea_orm(primary_key)]
    pub id: i64,
    pub token_address: Vec<u8>,
    pub from_address: Vec<u8>,
    pub to_address: Vec<u8>,
    /// Decimal digits: `numeric` read as text on PostgreSQL, zero-padded text on SQLite.
    #[sea_orm(select_as = "text")]
    pub value: String,
    pub transaction_hash: Vec<u8>,
    pub log_index: i32,
    pub block_number: i64,
    pub block_timestamp: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
