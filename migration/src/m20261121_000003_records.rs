//! Generic datasets: records of any shape, one row per (dataset, key), fields as JSON.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Records::Table)
                    .col(big_pk_auto(Records::Id))
                    .col(string(Records::Dataset))
                    .col(string(Records::Key))
                    .col(json_binary(Records::Data))
                    .col(string(Records::Provider))
                    .col(timestamp_with_time_zone(Records::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // The natural key, and `records(dataset, where: {key})` in key order.
        manager
            .create_index(
                Index::create()
                    .name("records_dataset_key")
                    .table(Records::Table)
                    .col(Records::Dataset)
                    .col(Records::Key)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Records::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Records {
    Table,
    Id,
    Dataset,
    Key,
    Data,
    Provider,
    UpdatedAt,
}
