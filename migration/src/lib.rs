//! Schema migrations, applied in order at server start and by `tributary migrate`.
//!
//! One file per migration, named `mYYYYMMDD_HHMMSS_what.rs`. A migration that has landed is never
//! edited: a change to the schema is a new migration.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_platform_tables;
mod m20261121_000002_tokens_transfers;
mod m20261121_000003_records;
mod m20261121_000004_hosts;
mod m20261121_000005_products;
mod m20261121_000006_events;
mod m20261121_000007_host_write_path;
mod m20261121_000008_run_superseded;
mod m20261203_000009_run_interrupted;
mod m20261203_000010_kafka;
mod m20261204_000011_incremental_sync;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_platform_tables::Migration),
            Box::new(m20261121_000002_tokens_transfers::Migration),
            Box::new(m20261121_000003_records::Migration),
            Box::new(m20261121_000004_hosts::Migration),
            Box::new(m20261121_000005_products::Migration),
            Box::new(m20261121_000006_events::Migration),
            Box::new(m20261121_000007_host_write_path::Migration),
            Box::new(m20261121_000008_run_superseded::Migration),
            Box::new(m20261203_000009_run_interrupted::Migration),
            Box::new(m20261203_000010_kafka::Migration),
            Box::new(m20261204_000011_incremental_sync::Migration),
        ]
    }
}
