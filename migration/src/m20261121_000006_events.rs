//! Events pushed over HTTP (`POST /submit`): append-only, one row per acknowledged event.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &[&str] = &[r#"CREATE TABLE events (
        id bigserial PRIMARY KEY,
        ip_address text NOT NULL,
        user_agent text NOT NULL,
        referring_url text NOT NULL,
        advertiser_id text NOT NULL,
        metadata jsonb NOT NULL,
        received_at timestamptz NOT NULL
    )"#];

const SQLITE_UP: &[&str] = &[r#"CREATE TABLE events (
        id integer PRIMARY KEY AUTOINCREMENT,
        ip_address text NOT NULL,
        user_agent text NOT NULL,
        referring_url text NOT NULL,
        advertiser_id text NOT NULL,
        metadata text NOT NULL,
        received_at text NOT NULL
    )"#];

/// Only what the event list needs: each index is paid for by every acknowledged event.
const INDEXES: &[&str] = &[
    // events(where: {advertiserId, receivedAt}), newest first.
    "CREATE INDEX events_advertiser_time ON events (advertiser_id, received_at, id)",
    // events(where: {receivedAt}) and the default order.
    "CREATE INDEX events_time ON events (received_at, id)",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let tables = match manager.get_database_backend() {
            DbBackend::Postgres => POSTGRES_UP,
            DbBackend::Sqlite => SQLITE_UP,
            other => {
                return Err(DbErr::Migration(format!("unsupported database {other:?}")));
            }
        };
        for sql in tables.iter().chain(INDEXES) {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE events")
            .await?;
        Ok(())
    }
}
