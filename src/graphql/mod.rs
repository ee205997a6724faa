//! The GraphQL schema, built apart from the web framework: one query object per domain, joined
//! with `MergedObject`.

pub mod connection;
pub mod control;
pub mod db;
pub mod error;
pub mod events;
pub mod filters;
pub mod guard;
pub mod hosts;
pub mod introspection;
pub mod parse_cache;
pub mod products;
pub mod query_limits;
pub mod records;
pub mod row;
pub mod runs;
pub mod scalars;
pub mod server;
pub mod tokens;
pub mod transfers;

use async_graphql::{MergedObject, MergedSubscription, Schema, SchemaBuilder};

use crate::db::replicas::Replicas;
use crate::settings::GraphqlSettings;
use db::Loaders;
pub use guard::GuardedSchema;
pub use server::ServerFacts;

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    server::ServerQuery,
    tokens::TokenQuery,
    transfers::TransferQuery,
    hosts::HostQuery,
    products::ProductQuery,
    events::EventQuery,
    records::RecordQuery,
    runs::RunQuery,
    control::ControlQuery,
);

#[derive(MergedObject, Default)]
pub struct MutationRoot(control::ControlMutation, events::EventMutation);

#[derive(MergedSubscription, Default)]
pub struct SubscriptionRoot(control::ControlSubscription);

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

fn builder() -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    // Scalars the API documents even where no field uses them yet.
    .register_output_type::<hosts::MachineReport>()
    .register_output_type::<scalars::BigInt>()
    .register_output_type::<scalars::Bytes>()
    .register_output_type::<async_graphql::Json<serde_json::Value>>()
}

/// The schema a server runs, with its data and limits. Resolvers read through the database
/// the guard chooses for each operation (`db::db`), never a connection of their own.
pub fn build(
    replicas: Replicas,
    facts: ServerFacts,
    limits: &GraphqlSettings,
    runner: crate::runner::Runner,
    policy: crate::auth::Policy,
    events: crate::events::sink::Sink,
) -> GuardedSchema {
    let tokens = Loaders::new(&replicas, |db| tokens::TokenLoader { db });
    let host_loader = Loaders::new(&replicas, |db| hosts::HostLoader { db });
    let observations = Loaders::new(&replicas, |db| hosts::ObservationLoader { db });
    let raws = Loaders::new(&replicas, |db| hosts::RawLoader { db });
    let mut builder = builder()
        .data(replicas.clone())
        .data(tokens)
        .data(host_loader)
        .data(observations)
        .data(raws)
        .data(runner)
        .data(policy)
        .data(events)
        .data(facts)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(limits.max_nesting)
        .limit_directives(limits.max_directives);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    GuardedSchema::new(
        builder.finish(),
        replicas,
        limits.max_query_bytes,
        limits.max_nesting,
        limits.introspection,
    )
}

/// The schema in SDL, as `tributary schema` prints it and `schema.graphql` holds it.
pub fn sdl() -> String {
    builder().finish().sdl()
}
