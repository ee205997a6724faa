//! Tributary: pulls data from many providers into typed tables and serves it over GraphQL.
//!
//! Where things are: `settings` (configuration), `db` (connection, migrations), `keyset`
//! (pagination), `runs` (ingestion runs), `graphql` (the schema), `routes` (HTTP handlers),
//! `startup` (the application), `metrics` and `telemetry` (what it tells operators).

pub mod cli;
pub mod db;
pub mod graphiql;
pub mod graphql;
pub mod keyset;
pub mod metrics;
pub mod routes;
pub mod runs;
pub mod settings;
pub mod startup;
pub mod telemetry;
