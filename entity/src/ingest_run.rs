//! One ingestion run of one provider, with its live counters.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ingest_runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub provider: String,
    /// What started the run: `schedule`, `manual` (GraphQL), `cli`.
    pub trigger: String,
    /// `incremental`, `full` or `renormalize`.
    pub mode: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub status: String,
    pub queued_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    pub pages: i64,
    pub fetched: i64,
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
    /// Records not written because a later record with the same key in the same input (a
    /// batch, or an imported file) replaced them.
    pub superseded: i64,
    pub rejected: i64,
    /// Why the run failed; never holds a secret or a raw database error.
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    /// Instance id of the replica that runs it.
    pub owner: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
