//! Interrupted runs get a status of their own (`interrupted`) instead of `failed` with an error
//! that starts with "interrupted": whether a run can be resumed is a state, not a text match.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE ingest_runs SET status = 'interrupted'
                 WHERE status = 'failed' AND error LIKE 'interrupted%'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE ingest_runs SET status = 'failed' WHERE status = 'interrupted'",
            )
            .await?;
        Ok(())
    }
}
