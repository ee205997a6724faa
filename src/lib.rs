//! Tributary: pulls data from many providers into typed tables and serves it over GraphQL.
//!
//! Where things are (the README's "Layout" has the same map):
//! - Data enters through `sources` (provider HTTP listings, files and Kafka topics; `kafka`
//!   holds the client settings the Kafka source and sink share), `formats` (CSV and
//!   JSON-lines readers), `import` (bulk files) and `routes` (records and events pushed over
//!   HTTP). `providers` reads and checks the files that say where data comes from.
//! - It is transformed by `transform` (a provider's field mappings) into the records of
//!   `entities` (one module per entity kind), with `hosts` deciding which reports are one
//!   machine and `events` what a pushed event is and where an accepted one goes (the database
//!   or a Kafka topic).
//! - `ingest` runs a provider (batches, raw payloads, checkpoints), `runner` and `scheduler`
//!   decide when, and `store` keeps everything (one module per table family).
//! - `graphql` and `routes` serve it; `settings`, `db`, `startup`, `cli`, `auth`, `metrics` and
//!   `telemetry` run the server; `task` ties spawned tasks to their owner.

pub mod auth;
pub mod cli;
pub mod db;
pub mod entities;
pub mod events;
pub mod formats;
pub mod graphiql;
pub mod graphql;
pub mod hosts;
pub mod import;
pub mod ingest;
pub mod kafka;
pub mod metrics;
pub mod providers;
pub mod routes;
pub mod runner;
pub mod sample;
pub mod scheduler;
pub mod settings;
pub mod sources;
pub mod startup;
pub mod store;
pub mod task;
pub mod telemetry;
pub mod timestamps;
pub mod transform;
pub mod uint256;
