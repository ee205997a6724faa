//! `serverInfo`: what is answering and on which store.

use async_graphql::{Context, Enum, Object, SimpleObject};

use super::error::{ApiError, ApiResult};
use super::scalars::DateTime;
use crate::settings::DatabaseKind;

/// Static facts about the running server, set when the schema is built.
#[derive(Debug, Clone, Copy)]
pub struct ServerFacts {
    pub database: DatabaseKind,
    pub started_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "DatabaseKind")]
pub enum DatabaseKindGql {
    Postgres,
    Sqlite,
}

#[derive(SimpleObject)]
pub struct ServerInfo {
    /// The server's version.
    version: &'static str,
    /// Which database stores the data.
    database: DatabaseKindGql,
    /// When this server process started.
    started_at: DateTime,
}

#[derive(Default)]
pub struct ServerQuery;

#[Object]
impl ServerQuery {
    /// What is answering: version, database kind and start time.
    async fn server_info(&self, ctx: &Context<'_>) -> ApiResult<ServerInfo> {
        let facts = ctx.data::<ServerFacts>().map_err(|e| {
            ApiError::Internal(format!("schema built without ServerFacts: {}", e.message))
        })?;
        Ok(ServerInfo {
            version: env!("CARGO_PKG_VERSION"),
            database: match facts.database {
                DatabaseKind::Postgres => DatabaseKindGql::Postgres,
                DatabaseKind::Sqlite => DatabaseKindGql::Sqlite,
            },
            started_at: facts.started_at.into(),
        })
    }
}
