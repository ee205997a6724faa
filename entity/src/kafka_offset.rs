//! Where a `kafka` provider is in each partition it consumes: the next offset to store
//! (committed with the rows of the batch before it), and which replica consumes the partition.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "kafka_offsets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub provider: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub topic: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub partition: i32,
    /// The offset of the first message not yet stored; none before the first batch.
    pub next_offset: Option<i64>,
    /// The partition's high watermark (the offset the next produced message gets) when the
    /// owner last looked: `high_watermark - next_offset` is the lag.
    pub high_watermark: Option<i64>,
    /// The replica consuming the partition, as `ingest_runs.owner` names it.
    pub owner: Option<String>,
    pub owner_seen_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
