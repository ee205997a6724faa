//! One ingestion run of one provider, with its live counters.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ingest_runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub provider: String,
    pub trigger: RunTrigger,
    pub mode: RunMode,
    pub status: RunStatus,
    pub queued_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    pub pages: i64,
    pub fetched: i64,
    pub inserted: i64,
    pub updated: i64,
    pub unchanged: i64,
    /// Records not written because a later record with the same key in the same input (a
    /// batch, or an imported file) replaced them.
    pub superseded: i64,
    pub rejected: i64,
    /// Why the run failed; never holds a secret or a raw database error.
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    /// Instance id of the replica that runs it.
    pub owner: Option<String>,
}

/// A status column's enum: each variant spelled once, as stored; `as_str` and `Display` give
/// that text (metric labels, messages).
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
        #[sea_orm(rs_type = "String", db_type = "Text")]
        pub enum $name {
            $($(#[$vdoc])* #[sea_orm(string_value = $text)] $variant,)*
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// Where a run is in its life: `queued` → `running` → one of the ends.
    RunStatus {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        /// Ended by an error, named in `error`.
        Failed = "failed",
        /// Stopped by a user at a batch boundary; what it committed stays.
        Cancelled = "cancelled",
        /// The process running it stopped (a crash, a kill, a shutdown) or lost its lease; the
        /// next incremental run resumes from its checkpoint. `error` says what stopped it.
        Interrupted = "interrupted",
    }
}

impl RunStatus {
    /// Still queued or running: no end recorded yet.
    pub fn is_unfinished(self) -> bool {
        matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

text_enum! {
    /// How a run treats what earlier runs left behind.
    RunMode {
        /// Continue from the provider's checkpoint.
        Incremental = "incremental",
        /// Start from the beginning, ignoring the checkpoint.
        Full = "full",
        /// Rebuild entity rows from stored raw payloads, without calling the provider.
        Renormalize = "renormalize",
    }
}

text_enum! {
    /// What started a run.
    RunTrigger {
        /// The provider's cron schedule.
        Schedule = "schedule",
        /// The `triggerIngest` mutation.
        Manual = "manual",
        /// `tributary ingest` or `tributary import`.
        Cli = "cli",
        /// The bundled sample, loaded at first start.
        Startup = "startup",
        /// Recovery, continuing an interrupted run.
        Resume = "resume",
        /// Records posted to `POST /ingest/{provider}`.
        Push = "push",
        /// A replica's long-lived consumer of a `kafka` provider's topics.
        Consumer = "consumer",
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
