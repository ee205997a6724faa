//! Rows of plain columns written straight into the response.
//!
//! The library resolves each field of each object through a boxed future of its own: a page of
//! 100 transfers with six columns selected is 600 futures, gathered and merged one by one,
//! which was most of the server's CPU for a list query. When a node's selection holds only
//! plain columns (and `__typename`) without arguments, directives, fragments or repeated
//! keys, `Row` builds the node's object in one pass; any other selection goes through the
//! object's resolvers exactly as before.

use std::borrow::Cow;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::{ContextSelectionSet, OutputType, Positioned, ServerResult, Value};

/// An object some of whose fields are plain columns of the row behind it.
pub trait Columns {
    /// The value of the field `name` (its GraphQL name) when it is a plain column, formatted by
    /// the same scalar as its resolver; `None` for every other field (a relation, a field that
    /// loads or computes), which sends the node through its resolvers.
    fn column(&self, name: &str) -> Option<Value>;
}

/// A node of a list: resolved in one pass when only columns are selected.
pub struct Row<T>(pub T);

impl<T: OutputType + Columns> OutputType for Row<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        match columns_only(&self.0, &ctx.item.node) {
            Some(object) => Ok(object),
            None => self.0.resolve(ctx, field).await,
        }
    }
}

/// The object for `selection` when every selected field is a column of `row`.
fn columns_only<T: OutputType + Columns>(row: &T, selection: &SelectionSet) -> Option<Value> {
    let mut object = IndexMap::with_capacity(selection.items.len());
    for item in &selection.items {
        let Selection::Field(field) = &item.node else {
            return None;
        };
        let field = &field.node;
        if !field.arguments.is_empty() || !field.directives.is_empty() {
            return None;
        }
        let value = match field.name.node.as_str() {
            "__typename" => Value::String(T::type_name().into_owned()),
            name => row.column(name)?,
        };
        // A key selected twice is merged by the library's rules; leave that to it.
        if object
            .insert(field.response_key().node.clone(), value)
            .is_some()
        {
            return None;
        }
    }
    Some(Value::Object(object))
}
