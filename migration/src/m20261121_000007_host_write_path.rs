//! Host resolution writes about 4 identifier rows and 1 observation per report, all in one
//! resolver's transaction on PostgreSQL. Two things there cost a third of a batch and serve
//! no read:
//!
//! - The foreign keys from `host_identifiers` and `host_observations` to `hosts`: each row's
//!   check is a lookup in `hosts` that also locks the host row. The resolver is the only writer
//!   of all three tables and writes a host before anything that points at it, in the same
//!   transaction, and hosts are never deleted (they go stale), so the constraint can never
//!   fire. SQLite keeps them: dropping one there means rebuilding the table, and the embedded
//!   database is not where this throughput matters.
//! - The index on `host_identifiers (host_id)`: no query looks identifiers up by host (every
//!   lookup and filter goes by value and kind, through the primary key). It only served the
//!   foreign key.
//!
//! Measured with `bench/hosts.sh` (100,000 reports): 11,029–11,189 observations/s before,
//! 14,459 without the foreign keys, 15,033 without the index too.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const FOREIGN_KEYS: &[(&str, &str)] = &[
    ("host_identifiers", "host_identifiers_host_id_fkey"),
    ("host_observations", "host_observations_host_id_fkey"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DbBackend::Postgres {
            for (table, constraint) in FOREIGN_KEYS {
                db.execute_unprepared(&format!(
                    "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {constraint}"
                ))
                .await?;
            }
        }
        db.execute_unprepared("DROP INDEX IF EXISTS host_identifiers_host_id")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS host_identifiers_host_id ON host_identifiers (host_id)",
        )
        .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            for (table, constraint) in FOREIGN_KEYS {
                db.execute_unprepared(&format!(
                    "ALTER TABLE {table} ADD CONSTRAINT {constraint} \
                     FOREIGN KEY (host_id) REFERENCES hosts (id)"
                ))
                .await?;
            }
        }
        Ok(())
    }
}
