//! Hosts merged across security tools: the merged hosts, every tool's observation of them, the
//! identifier index that matches new observations to hosts, and the conflicts found on the way.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Ids are given by the resolver (under its lock), not by a sequence: it must know a
        // new host's id before writing the observations that point at it, in one batch.
        manager
            .create_table(
                Table::create()
                    .table(Hosts::Table)
                    .col(big_integer(Hosts::Id).primary_key())
                    .col(string_null(Hosts::Hostname))
                    .col(string_null(Hosts::Fqdn))
                    .col(string_null(Hosts::Os))
                    .col(string_null(Hosts::Platform))
                    .col(string_null(Hosts::CloudProvider))
                    .col(string_null(Hosts::CloudInstanceId))
                    .col(json_binary(Hosts::PrivateIps))
                    .col(json_binary(Hosts::PublicIps))
                    .col(json_binary(Hosts::Macs))
                    .col(json_binary(Hosts::FieldSources))
                    .col(timestamp_with_time_zone_null(Hosts::FirstSeen))
                    .col(timestamp_with_time_zone_null(Hosts::LastSeen))
                    .col(timestamp_with_time_zone(Hosts::LastReportedAt))
                    .col(integer(Hosts::Observations))
                    .col(timestamp_with_time_zone(Hosts::CreatedAt))
                    .col(timestamp_with_time_zone(Hosts::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // `hosts(where: {hostname})` and `orderBy: HOSTNAME`.
        index(
            manager,
            "hosts_hostname",
            Hosts::Table,
            &[Hosts::Hostname, Hosts::Id],
        )
        .await?;
        // `hosts(where: {lastSeen})` and `orderBy: LAST_SEEN`.
        index(
            manager,
            "hosts_last_seen",
            Hosts::Table,
            &[Hosts::LastSeen, Hosts::Id],
        )
        .await?;
        // `hosts(where: {stale})`: stale = not reported since a cut-off.
        index(
            manager,
            "hosts_last_reported_at",
            Hosts::Table,
            &[Hosts::LastReportedAt],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(HostObservations::Table)
                    .col(big_pk_auto(HostObservations::Id))
                    .col(string(HostObservations::Provider))
                    .col(string(HostObservations::ExternalId))
                    .col(big_integer(HostObservations::HostId))
                    .col(string_null(HostObservations::Hostname))
                    .col(string_null(HostObservations::Fqdn))
                    .col(string_null(HostObservations::Os))
                    .col(string_null(HostObservations::Platform))
                    .col(string_null(HostObservations::CloudProvider))
                    .col(string_null(HostObservations::CloudInstanceId))
                    .col(json_binary(HostObservations::PrivateIps))
                    .col(json_binary(HostObservations::PublicIps))
                    .col(json_binary(HostObservations::Macs))
                    .col(timestamp_with_time_zone_null(HostObservations::FirstSeen))
                    .col(timestamp_with_time_zone_null(HostObservations::LastSeen))
                    .col(string_null(HostObservations::MatchedBy))
                    .col(timestamp_with_time_zone(HostObservations::ReportedAt))
                    .col(big_integer_null(HostObservations::RunId))
                    .col(timestamp_with_time_zone(HostObservations::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(HostObservations::Table, HostObservations::HostId)
                            .to(Hosts::Table, Hosts::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // One observation per provider and external id: re-ingesting replaces it. The external
        // id leads: a batch looks up a thousand ids of one provider at once, and the few
        // providers make a poor first column when statistics are stale after a bulk load.
        manager
            .create_index(
                Index::create()
                    .name("host_observations_external_id_provider")
                    .table(HostObservations::Table)
                    .col(HostObservations::ExternalId)
                    .col(HostObservations::Provider)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // No index led by `provider`: with one, PostgreSQL sometimes looked a batch's thousand
        // external ids up through it (a few providers, tens of thousands of rows each) and
        // checked each row against the whole list, 400 ms a batch. `hosts(where: {provider})`
        // scans the observations instead.
        // `Host.observations`, and merging a host's observations after a change.
        index(
            manager,
            "host_observations_host_id",
            HostObservations::Table,
            &[HostObservations::HostId],
        )
        .await?;

        // (value, kind) → host: how a new observation finds its host in one indexed lookup, and
        // how `hosts(where: {ip, mac, cloudInstanceId})` finds hosts. Several hosts may share an
        // IP; a strong identifier belongs to one host unless a conflict was recorded. The value
        // leads because it is what is selective: four kinds make a poor first column.
        manager
            .create_table(
                Table::create()
                    .table(HostIdentifiers::Table)
                    .col(string(HostIdentifiers::Kind))
                    .col(string(HostIdentifiers::Value))
                    .col(big_integer(HostIdentifiers::HostId))
                    .primary_key(
                        Index::create()
                            .col(HostIdentifiers::Value)
                            .col(HostIdentifiers::Kind)
                            .col(HostIdentifiers::HostId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(HostIdentifiers::Table, HostIdentifiers::HostId)
                            .to(Hosts::Table, Hosts::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // A host's own identifiers (confirmation by IP).
        index(
            manager,
            "host_identifiers_host_id",
            HostIdentifiers::Table,
            &[HostIdentifiers::HostId],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(HostConflicts::Table)
                    .col(big_pk_auto(HostConflicts::Id))
                    .col(string(HostConflicts::Kind))
                    .col(string(HostConflicts::Value))
                    .col(big_integer(HostConflicts::HostId))
                    .col(big_integer(HostConflicts::OtherHostId))
                    .col(string(HostConflicts::Provider))
                    .col(string(HostConflicts::ExternalId))
                    .col(timestamp_with_time_zone(HostConflicts::DetectedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(HostConflicts::Table, HostConflicts::HostId)
                            .to(Hosts::Table, Hosts::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(HostConflicts::Table, HostConflicts::OtherHostId)
                            .to(Hosts::Table, Hosts::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // The same observation meeting the same conflict again is not a new conflict.
        manager
            .create_index(
                Index::create()
                    .name("host_conflicts_identity")
                    .table(HostConflicts::Table)
                    .col(HostConflicts::Provider)
                    .col(HostConflicts::ExternalId)
                    .col(HostConflicts::Kind)
                    .col(HostConflicts::Value)
                    .col(HostConflicts::OtherHostId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            HostConflicts::Table.into_iden(),
            HostIdentifiers::Table.into_iden(),
            HostObservations::Table.into_iden(),
            Hosts::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

async fn index<T: IntoIden + Copy, C: IntoIden + Copy>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    columns: &[C],
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(table);
    for &column in columns {
        index.col(column);
    }
    manager.create_index(index.to_owned()).await
}

#[derive(DeriveIden, Clone, Copy)]
enum Hosts {
    Table,
    Id,
    Hostname,
    Fqdn,
    Os,
    Platform,
    CloudProvider,
    CloudInstanceId,
    PrivateIps,
    PublicIps,
    Macs,
    FieldSources,
    FirstSeen,
    LastSeen,
    LastReportedAt,
    Observations,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum HostObservations {
    Table,
    Id,
    Provider,
    ExternalId,
    HostId,
    Hostname,
    Fqdn,
    Os,
    Platform,
    CloudProvider,
    CloudInstanceId,
    PrivateIps,
    PublicIps,
    Macs,
    FirstSeen,
    LastSeen,
    MatchedBy,
    ReportedAt,
    RunId,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum HostIdentifiers {
    Table,
    Kind,
    Value,
    HostId,
}

#[derive(DeriveIden, Clone, Copy)]
enum HostConflicts {
    Table,
    Id,
    Kind,
    Value,
    HostId,
    OtherHostId,
    Provider,
    ExternalId,
    DetectedAt,
}
