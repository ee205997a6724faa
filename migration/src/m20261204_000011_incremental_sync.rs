//! Incremental sync and upstream deletes:
//! - `provider_state.cursor`: an incremental provider's high-water mark (the largest cursor
//!   value among its committed records, as text), written with each page's rows.
//! - `records.seen_run_id`, `records.deleted_at`: for providers with `on_missing =
//!   "mark_deleted"`, the last run that saw each record, and when a complete run did not.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ProviderState {
    Table,
    Cursor,
}

#[derive(DeriveIden)]
enum Records {
    Table,
    SeenRunId,
    DeletedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(ProviderState::Table)
                    .add_column(text_null(ProviderState::Cursor))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Records::Table)
                    .add_column(big_integer_null(Records::SeenRunId))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Records::Table)
                    .add_column(timestamp_with_time_zone_null(Records::DeletedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in [
            (Records::Table.into_iden(), Records::DeletedAt.into_iden()),
            (Records::Table.into_iden(), Records::SeenRunId.into_iden()),
            (
                ProviderState::Table.into_iden(),
                ProviderState::Cursor.into_iden(),
            ),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
