//! One event received over HTTP (`POST /submit`). Written by the group-commit writer (or, with
//! the Kafka sink, by a provider landing the topic) through `store::events`; read through here.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The id given when the event was accepted (a UUIDv7, time-ordered; the Kafka message key
    /// with the Kafka sink). Unique: an event delivered twice is stored once.
    pub event_id: String,
    /// Dotted-quad IPv4, as validated on the way in.
    pub ip_address: String,
    #[sea_orm(column_type = "Text")]
    pub user_agent: String,
    #[sea_orm(column_type = "Text")]
    pub referring_url: String,
    pub advertiser_id: String,
    /// A JSON object.
    #[sea_orm(column_type = "JsonBinary")]
    pub metadata: Json,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
