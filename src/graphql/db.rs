//! The database an operation's resolvers use. The guard chooses it once per operation, by
//! operation type ([`super::guard`]): the primary for mutations, a healthy read replica (or
//! the primary) for queries and subscriptions. Resolvers and DataLoader lookups reach it only
//! through [`db`] and [`loader`], so no resolver decides for itself.

use async_graphql::Context;
use async_graphql::dataloader::DataLoader;
use sea_orm::DatabaseConnection;

use crate::db::replicas::{Chosen, Replicas};

/// The connection chosen for one operation, in the request's data.
#[derive(Clone)]
pub struct OperationDb(pub Chosen);

/// The connection this operation reads (and, for a mutation, writes) through; the primary
/// when no choice was made (a schema executed without the guard).
pub fn db<'a>(ctx: &Context<'a>) -> &'a DatabaseConnection {
    match ctx.data_opt::<OperationDb>() {
        Some(chosen) => &chosen.0.db,
        None => ctx.data_unchecked::<Replicas>().primary(),
    }
}

/// One DataLoader per connection (the primary, then each replica), so related rows load
/// from the same database as the rows that refer to them, batched across the operations
/// that share it.
pub struct Loaders<T> {
    primary: DataLoader<T>,
    replicas: Vec<DataLoader<T>>,
}

impl<T: Send + Sync + 'static> Loaders<T> {
    /// A loader on the primary and one on each replica, made by `make`.
    pub fn new(replicas: &Replicas, make: impl Fn(DatabaseConnection) -> T) -> Self {
        let loader = |db: &DatabaseConnection| DataLoader::new(make(db.clone()), tokio::spawn);
        Loaders {
            primary: loader(replicas.primary()),
            replicas: replicas.replica_pools().into_iter().map(loader).collect(),
        }
    }
}

/// The loader of `T` on this operation's connection.
pub fn loader<'a, T: Send + Sync + 'static>(ctx: &Context<'a>) -> &'a DataLoader<T> {
    let loaders = ctx.data_unchecked::<Loaders<T>>();
    ctx.data_opt::<OperationDb>()
        .and_then(|chosen| chosen.0.slot.checked_sub(1))
        .and_then(|replica| loaders.replicas.get(replica))
        .unwrap_or(&loaders.primary)
}
