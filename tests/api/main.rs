//! The integration tests: one binary, one module per area. Each test starts the real
//! application (or the real binary) against real databases — SQLite in a temporary file and a
//! throwaway PostgreSQL cluster — and talks to it over HTTP; only the providers are stand-ins,
//! serving recorded real payloads from `../shared/data`.

#[macro_use]
mod common;

mod auth;
mod author_loop;
mod cli;
mod control;
mod crash;
mod database_faults;
mod events;
mod fuzz;
mod graphiql_browser;
mod graphql_abuse;
mod graphql_api;
mod health;
mod hosts;
mod incremental;
mod kafka;
mod mock_provider;
mod products;
mod provider_faults;
mod providers;
mod read_replicas;
mod replicas;
mod security;
mod transfers;
