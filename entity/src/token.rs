//! An ERC-20 token contract. Written by the bulk writer in `store::tokens`; read through here.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tokens")]
pub struct Model {
    /// 20 bytes.
    #[sea_orm(primary_key, auto_increment = false)]
    pub address: Vec<u8>,
    pub symbol: Option<String>,
    pub name: Option<String>,
    pub decimals: Option<i32>,
    /// Decimal digits: `numeric` read as text on PostgreSQL, zero-padded text on SQLite.
    #[sea_orm(select_as = "text")]
    pub total_supply: Option<String>,
    pub block_number: Option<i64>,
    pub block_timestamp: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
