//! The platform tables every domain shares: runs, provider state (leases and checkpoints), raw
//! payloads and rejected records.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IngestRuns::Table)
                    .col(big_pk_auto(IngestRuns::Id))
                    .col(string(IngestRuns::Provider))
                    .col(string(IngestRuns::Trigger))
                    .col(string(IngestRuns::Mode))
                    .col(string(IngestRuns::Status))
                    .col(timestamp_with_time_zone(IngestRuns::QueuedAt))
                    .col(timestamp_with_time_zone_null(IngestRuns::StartedAt))
                    .col(timestamp_with_time_zone_null(IngestRuns::FinishedAt))
                    .col(big_integer(IngestRuns::Pages).default(0))
                    .col(big_integer(IngestRuns::Fetched).default(0))
                    .col(big_integer(IngestRuns::Inserted).default(0))
                    .col(big_integer(IngestRuns::Updated).default(0))
                    .col(big_integer(IngestRuns::Unchanged).default(0))
                    .col(big_integer(IngestRuns::Rejected).default(0))
                    .col(text_null(IngestRuns::Error))
                    .col(string_null(IngestRuns::Owner))
                    .to_owned(),
            )
            .await?;
        // A provider's run history, newest first (`ingestRuns(where: {provider})`, last run).
        manager
            .create_index(
                Index::create()
                    .name("ingest_runs_provider_id")
                    .table(IngestRuns::Table)
                    .col(IngestRuns::Provider)
                    .col(IngestRuns::Id)
                    .to_owned(),
            )
            .await?;
        // Finding queued and running runs (resume after a restart, "already running" checks).
        manager
            .create_index(
                Index::create()
                    .name("ingest_runs_status")
                    .table(IngestRuns::Table)
                    .col(IngestRuns::Status)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ProviderState::Table)
                    .col(string(ProviderState::Provider).primary_key())
                    .col(string_null(ProviderState::LeaseOwner))
                    .col(timestamp_with_time_zone_null(ProviderState::LeaseExpiresAt))
                    .col(timestamp_with_time_zone_null(ProviderState::LastTickAt))
                    .col(json_binary_null(ProviderState::Checkpoint))
                    .col(big_integer_null(ProviderState::CheckpointRunId))
                    .col(timestamp_with_time_zone(ProviderState::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RawRecords::Table)
                    .col(big_pk_auto(RawRecords::Id))
                    .col(string(RawRecords::Provider))
                    .col(string(RawRecords::ExternalId))
                    .col(blob(RawRecords::ContentHash))
                    .col(json_binary(RawRecords::Payload))
                    .col(timestamp_with_time_zone(RawRecords::FetchedAt))
                    .col(big_integer_null(RawRecords::RunId))
                    .to_owned(),
            )
            .await?;
        // One payload per provider and external id; also the lookup that decides "unchanged".
        manager
            .create_index(
                Index::create()
                    .name("raw_records_provider_external_id")
                    .table(RawRecords::Table)
                    .col(RawRecords::Provider)
                    .col(RawRecords::ExternalId)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RejectedRecords::Table)
                    .col(big_pk_auto(RejectedRecords::Id))
                    .col(string(RejectedRecords::Provider))
                    .col(big_integer_null(RejectedRecords::RunId))
                    .col(string_null(RejectedRecords::ExternalId))
                    .col(big_integer_null(RejectedRecords::Line))
                    .col(text(RejectedRecords::Reason))
                    .col(text_null(RejectedRecords::Payload))
                    .col(timestamp_with_time_zone(RejectedRecords::CreatedAt))
                    .to_owned(),
            )
            .await?;
        // `rejectedRecords(where: {provider, runId})`, newest first.
        manager
            .create_index(
                Index::create()
                    .name("rejected_records_provider_run")
                    .table(RejectedRecords::Table)
                    .col(RejectedRecords::Provider)
                    .col(RejectedRecords::RunId)
                    .col(RejectedRecords::Id)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            RejectedRecords::Table.into_iden(),
            RawRecords::Table.into_iden(),
            ProviderState::Table.into_iden(),
            IngestRuns::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum IngestRuns {
    Table,
    Id,
    Provider,
    Trigger,
    Mode,
    Status,
    QueuedAt,
    StartedAt,
    FinishedAt,
    Pages,
    Fetched,
    Inserted,
    Updated,
    Unchanged,
    Rejected,
    Error,
    Owner,
}

#[derive(DeriveIden)]
enum ProviderState {
    Table,
    Provider,
    LeaseOwner,
    LeaseExpiresAt,
    LastTickAt,
    Checkpoint,
    CheckpointRunId,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RawRecords {
    Table,
    Id,
    Provider,
    ExternalId,
    ContentHash,
    Payload,
    FetchedAt,
    RunId,
}

#[derive(DeriveIden)]
enum RejectedRecords {
    Table,
    Id,
    Provider,
    RunId,
    ExternalId,
    Line,
    Reason,
    Payload,
    CreatedAt,
}
