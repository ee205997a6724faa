//! Tributary: pulls data from many providers into typed tables and serves it over GraphQL.
//!
//! Where things are: data enters through `import` (files); `ethereum` and `uint256` define the
//! records it becomes; `store` keeps them (one module per table family); `graphql` and `routes`
//! serve them. `settings`, `db`, `startup`, `cli`, `metrics` and `telemetry` run the server.

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
pub mod telemetry;
pub mod timestamps;
pub mod transform;
pub mod uint256;
