//! Generic datasets over GraphQL: records of any shape, fields as JSON.

use async_graphql::{Context, InputObject, Json, Object};
use entity::record;

use super::connection::{Page, PageArgs, list};
use super::db::db;
use super::error::ApiResult;
use super::filters::{StringFilterInput, optional};
use super::scalars::DateTime;
use crate::store::records;

/// One record of a dataset.
pub struct Record(pub record::Model);

#[Object]
impl Record {
    async fn dataset(&self) -> &str {
        &self.0.dataset
    }
    /// Unique within the dataset.
    async fn key(&self) -> &str {
        &self.0.key
    }
    /// The mapped fields.
    async fn data(&self) -> Json<&serde_json::Value> {
        Json(&self.0.data)
    }
    /// The provider that wrote it last.
    async fn provider(&self) -> &str {
        &self.0.provider
    }
    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }
    /// When a complete run of its provider (`on_missing = "mark_deleted"`) no longer found it
    /// upstream; null while it is there.
    async fn deleted_at(&self) -> Option<DateTime> {
        self.0.deleted_at.map(Into::into)
    }
}

#[derive(InputObject, Debug, Clone, Default)]
pub struct RecordWhere {
    pub key: Option<StringFilterInput>,
}

#[derive(Default)]
pub struct RecordQuery;

#[Object]
impl RecordQuery {
    /// Records of one dataset, in key order; those deleted upstream only with
    /// `includeDeleted`.
    #[graphql(complexity = "PageArgs::size(first, last) * child_complexity")]
    #[allow(clippy::too_many_arguments)]
    async fn records(
        &self,
        ctx: &Context<'_>,
        dataset: String,
        #[graphql(name = "where")] filter: Option<RecordWhere>,
        #[graphql(default = false)] include_deleted: bool,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<Page<Record>> {
        let db = db(ctx);
        let w = filter.unwrap_or_default();
        let key = optional(w.key, "where.key", StringFilterInput::into_store)?;
        let order = records::order();
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        list(
            args,
            &order,
            async |request| records::list(db, &dataset, &key, include_deleted, request).await,
            records::cursor_values,
            Record,
        )
        .await
    }
}
