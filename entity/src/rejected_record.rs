//! An input record that failed parsing, mapping or validation, with the reason and where it was.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rejected_records")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub provider: String,
    pub run_id: Option<i64>,
    pub external_id: Option<String>,
    /// 1-based line number for file imports.
    pub line: Option<i64>,
    /// The Kafka message it came from: topic, partition and offset.
    pub message_topic: Option<String>,
    pub message_partition: Option<i32>,
    pub message_offset: Option<i64>,
    #[sea_orm(column_type = "Text")]
    pub reason: String,
    /// The offending input as text (it may not be valid JSON).
    #[sea_orm(column_type = "Text", nullable)]
    pub payload: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
