//! Runs count the records a later record with the same key replaced inside the same input
//! (`superseded`) apart from what happened to stored rows, so re-ingesting a file whose SKUs
//! repeat reports every row unchanged.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum IngestRuns {
    Table,
    Superseded,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(IngestRuns::Table)
                    .add_column(
                        ColumnDef::new(IngestRuns::Superseded)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(IngestRuns::Table)
                    .drop_column(IngestRuns::Superseded)
                    .to_owned(),
            )
            .await
    }
}
