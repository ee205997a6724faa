//! Where data is stored: plain functions that take a connection, one module per table family.

pub mod arrays;
pub mod events;
pub mod filter;
pub mod first_load;
pub mod hosts;
pub mod invariants;
pub mod kafka_offsets;
pub mod keyset;
pub mod leases;
pub mod nul;
pub mod products;
pub mod provider_state;
pub mod raw;
pub mod records;
pub mod rejected;
pub mod runs;
pub mod tokens;
pub mod transfers;
pub mod upsert;
