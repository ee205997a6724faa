//! Kafka sources and sinks.
//!
//! - `kafka_offsets`: the next offset of every partition a `kafka` provider consumes, committed
//!   in the same transaction as the rows of the batch it follows (exactly-once effects without
//!   Kafka transactions), with the replica that owns the partition and the last high watermark
//!   it saw (lag).
//! - `rejected_records` names the message a rejection came from (topic, partition, offset).
//! - `events.event_id`: the id an event gets when it is accepted (a UUIDv7, the Kafka message
//!   key with the Kafka sink), unique, so a message delivered twice is stored once. Rows from
//!   before get a random UUID.
//! - `provider_state.paused`: a paused `kafka` provider is not consumed by any replica.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &[&str] = &[
    r#"CREATE TABLE kafka_offsets (
    provider TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset BIGINT,
    high_watermark BIGINT,
    owner TEXT,
    owner_seen_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, topic, partition)
)"#,
    r#"ALTER TABLE rejected_records ADD COLUMN message_topic TEXT"#,
    r#"ALTER TABLE rejected_records ADD COLUMN message_partition INTEGER"#,
    r#"ALTER TABLE rejected_records ADD COLUMN message_offset BIGINT"#,
    r#"ALTER TABLE events ADD COLUMN event_id TEXT"#,
    r#"UPDATE events SET event_id = gen_random_uuid()::text WHERE event_id IS NULL"#,
    r#"ALTER TABLE events ALTER COLUMN event_id SET NOT NULL"#,
    r#"CREATE UNIQUE INDEX events_event_id ON events (event_id)"#,
    r#"ALTER TABLE provider_state ADD COLUMN paused BOOLEAN NOT NULL DEFAULT false"#,
];

const SQLITE_UP: &[&str] = &[
    r#"CREATE TABLE kafka_offsets (
    provider TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER,
    high_watermark INTEGER,
    owner TEXT,
    owner_seen_at TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (provider, topic, partition)
)"#,
    r#"ALTER TABLE rejected_records ADD COLUMN message_topic TEXT"#,
    r#"ALTER TABLE rejected_records ADD COLUMN message_partition INTEGER"#,
    r#"ALTER TABLE rejected_records ADD COLUMN message_offset INTEGER"#,
    r#"ALTER TABLE events ADD COLUMN event_id TEXT"#,
    r#"UPDATE events SET event_id = lower(
    hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2)
    || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2)
    || '-' || hex(randomblob(6))
) WHERE event_id IS NULL"#,
    r#"CREATE UNIQUE INDEX events_event_id ON events (event_id)"#,
    r#"ALTER TABLE provider_state ADD COLUMN paused BOOLEAN NOT NULL DEFAULT 0"#,
];

const DOWN: &[&str] = &[
    r#"DROP TABLE kafka_offsets"#,
    r#"ALTER TABLE rejected_records DROP COLUMN message_topic"#,
    r#"ALTER TABLE rejected_records DROP COLUMN message_partition"#,
    r#"ALTER TABLE rejected_records DROP COLUMN message_offset"#,
    r#"DROP INDEX events_event_id"#,
    r#"ALTER TABLE events DROP COLUMN event_id"#,
    r#"ALTER TABLE provider_state DROP COLUMN paused"#,
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let sql = match manager.get_database_backend() {
            DbBackend::Postgres => POSTGRES_UP,
            _ => SQLITE_UP,
        };
        for statement in sql {
            manager
                .get_connection()
                .execute_unprepared(statement)
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for statement in DOWN {
            manager
                .get_connection()
                .execute_unprepared(statement)
                .await?;
        }
        Ok(())
    }
}
