//! SeaORM entities: one module per table. Migrations (the `migration` crate) own the schema;
//! these types mirror it for queries.

pub mod event;
pub mod host;
pub mod host_conflict;
pub mod host_identifier;
pub mod host_observation;
pub mod ingest_run;
pub mod kafka_offset;
pub mod product;
pub mod product_count;
pub mod provider_state;
pub mod raw_record;
pub mod record;
pub mod rejected_record;
pub mod token;
pub mod transfer;
