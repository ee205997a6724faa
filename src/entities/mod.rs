//! Entity kinds: what each kind of record is, one module each. A module owns its field list
//! (the columns a provider maps and an import file carries), which fields are required, how
//! each field's value is read, the record type, and how a batch of records is written. Every
//! way in — a provider's mapped fields, a CSV row, a JSON line — goes through the same
//! `from_fields`, so a value is read the same way whichever way it arrived.
//!
//! Adding a kind is one module implementing [`Entity`] and its line in the registry below.

pub mod event;
pub mod fields;
pub mod host;
pub mod product;
pub mod record;
pub mod token;
pub mod transfer;

use std::borrow::Cow;
use std::future::Future;

use sea_orm::{ConnectionTrait, DbErr};

pub use self::fields::{Address, Field, Fields, Scalar, TxHash};
use crate::hosts::HostRules;
use crate::store::first_load;
use crate::store::upsert::UpsertCounts;

/// One kind of record.
pub trait Entity: Send + Sync + 'static {
    /// Its name in provider files (`entity = "token"`), on the command line and in errors.
    const NAME: &'static str;
    /// The fields a provider maps; `Field::index` is each one's place in this list.
    const FIELDS: &'static [Field];
    /// A record cannot be stored without the provider's `key` field.
    const NEEDS_KEY: bool = false;
    /// The field that is itself the record's external id, if one is (a host's `id`): a
    /// rejected record is filed under it.
    const ID_FIELD: Option<Field> = None;
    /// How `tributary import` reads files of this kind; `None`: no canonical file format.
    const IMPORT: Option<ImportRules> = None;

    type Record: Send + Sync + 'static;

    /// One record from its fields. `key` is the value of the provider's `key` field, when the
    /// provider declares one. An error names the field and what is wrong with it.
    fn from_fields(fields: &impl Fields, key: Option<String>) -> Result<Self::Record, String>;

    /// The record's natural key as text: its external id when the provider declares no `key`,
    /// and what decides which of two records in one batch is the same record.
    fn key(record: &Self::Record) -> Cow<'_, str>;

    /// Writes a batch in the caller's transaction: inserted, updated or unchanged by natural
    /// key, the last of several records with one key winning (the others counted superseded).
    fn write<C: ConnectionTrait>(
        db: &C,
        target: &Target<'_>,
        records: Vec<Self::Record>,
    ) -> impl Future<Output = Result<UpsertCounts, DbErr>> + Send;

    /// Records whose raw payloads were sent again unchanged, by external id: nothing is
    /// written for them; a kind that tracks when a record was last reported marks them here.
    fn unchanged<C: ConnectionTrait>(
        db: &C,
        target: &Target<'_>,
        external_ids: &[String],
    ) -> impl Future<Output = Result<(), DbErr>> + Send {
        let _ = (db, target, external_ids);
        async { Ok(()) }
    }

    /// The natural key of a record read from an import file, checked as the import will read
    /// it (a row the import rejects has no key). Kinds whose records are costly to build may
    /// read only what the key needs.
    fn import_key(fields: &impl Fields) -> Result<String, String> {
        Self::from_fields(fields, None).map(|record| Self::key(&record).into_owned())
    }

    /// Starts a bulk import that is one transaction (`ImportRules::one_transaction`, or a
    /// first load): a writer may then defer work to [`Entity::finish_bulk`].
    fn begin_bulk<C: ConnectionTrait>(
        db: &C,
        first_load: bool,
    ) -> impl Future<Output = Result<(), DbErr>> + Send {
        let _ = (db, first_load);
        async { Ok(()) }
    }

    /// Ends a bulk import's transaction's deferred work, before it commits (for a first load,
    /// before the tables' indexes are built again).
    fn finish_bulk<C: ConnectionTrait>(
        db: &C,
        first_load: bool,
    ) -> impl Future<Output = Result<(), DbErr>> + Send {
        let _ = (db, first_load);
        async { Ok(()) }
    }
}

/// Where a batch is written, and what the writers need besides the records.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The provider the records came from (for imports, `import:KIND`).
    pub provider: &'a str,
    pub run_id: i64,
    /// A generic record's dataset.
    pub dataset: &'a str,
    /// How host observations are matched and merged.
    pub host_rules: &'a HostRules,
    /// Part of a bulk import that is one transaction (see [`Entity::begin_bulk`]).
    pub bulk: bool,
    /// Part of a first load (see [`ImportRules::first_load`]): the table held no row when the
    /// import took it, no one else writes it, and its unique constraints are built at the end,
    /// so records are inserted without conflict handling.
    pub first_load: bool,
}

/// How `tributary import` reads a kind's canonical files.
#[derive(Debug, Clone, Copy)]
pub struct ImportRules {
    /// What the files are, for the command's help.
    pub about: &'static str,
    /// ethereum-etl's `type` for this kind in JSON-lines exports: a line whose `type` differs
    /// is rejected.
    pub etl_type: Option<&'static str>,
    /// Read the file twice: the first pass finds each key's last row, so each record is
    /// written once, with its final values, and the rows it replaces are counted superseded.
    pub last_row_first: bool,
    /// On PostgreSQL the whole import is one transaction.
    pub one_transaction: bool,
    /// On PostgreSQL, an import that finds these tables empty is one transaction that loads
    /// them with their indexes built at the end (`store::first_load`); empty: never.
    pub first_load: &'static [first_load::Table],
    /// Batches the reader may have ready ahead of the writer.
    pub read_ahead: usize,
    /// Tables whose planner statistics are refreshed after an import.
    pub tables: &'static [&'static str],
}

/// Something done with an entity kind's type: [`EntityKind::visit`] calls `visit::<E>()` with
/// the kind's [`Entity`].
pub trait Visit {
    type Output;
    fn visit<E: Entity>(self) -> Self::Output;
}

/// The registry: every entity kind, by its module's type.
macro_rules! registry {
    ($($kind:ident => $entity:ty,)*) => {
        /// Every entity kind, named as provider files and the command line name them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EntityKind {
            $($kind,)*
        }

        impl EntityKind {
            pub const ALL: &'static [EntityKind] = &[$(EntityKind::$kind,)*];

            /// Calls `visitor` with this kind's [`Entity`] type.
            pub fn visit<V: Visit>(self, visitor: V) -> V::Output {
                match self {
                    $(EntityKind::$kind => visitor.visit::<$entity>(),)*
                }
            }

            pub fn name(self) -> &'static str {
                match self {
                    $(EntityKind::$kind => <$entity as Entity>::NAME,)*
                }
            }

            pub fn fields(self) -> &'static [Field] {
                match self {
                    $(EntityKind::$kind => <$entity as Entity>::FIELDS,)*
                }
            }

            pub fn import(self) -> Option<ImportRules> {
                match self {
                    $(EntityKind::$kind => <$entity as Entity>::IMPORT,)*
                }
            }
        }
    };
}

registry! {
    Token => token::Token,
    Transfer => transfer::Transfer,
    Host => host::Host,
    Product => product::Product,
    Record => record::Record,
    Event => event::Event,
}

impl EntityKind {
    /// The kind named `name`.
    pub fn from_name(name: &str) -> Option<EntityKind> {
        EntityKind::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// Every kind's name, quoted, for messages: `` `token`, `transfer`, … ``.
    pub fn names() -> String {
        EntityKind::ALL
            .iter()
            .map(|k| format!("`{}`", k.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Imports of this kind are recorded as runs of this provider name.
    pub fn import_provider(self) -> String {
        format!("import:{}", self.name())
    }
}

impl std::fmt::Display for EntityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for EntityKind {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, String> {
        EntityKind::from_name(name).ok_or_else(|| {
            format!(
                "unknown entity `{name}`; expected one of {}",
                EntityKind::names()
            )
        })
    }
}

impl<'de> serde::Deserialize<'de> for EntityKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for EntityKind {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "EntityKind".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = EntityKind::ALL.iter().map(|k| k.name()).collect();
        schemars::json_schema!({
            "type": "string",
            "enum": names,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fields_index_is_its_place_and_names_are_unique() {
        for kind in EntityKind::ALL {
            for (i, field) in kind.fields().iter().enumerate() {
                assert_eq!(field.index, i, "{kind}.{}", field.name);
                assert!(
                    !field.about.is_empty(),
                    "{kind}.{} needs a description",
                    field.name
                );
            }
            let mut names: Vec<&str> = kind.fields().iter().map(|f| f.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), kind.fields().len(), "{kind}");
            assert_eq!(EntityKind::from_name(kind.name()), Some(*kind));
        }
    }
}
