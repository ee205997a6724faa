//! With `graphql.introspection = false`, a query asking for `__schema` or `__type` is refused
//! with an error saying so. The GraphQL library alone answers such a query with
//! `{"__schema": null}` and no error, which a client (or GraphiQL) cannot tell from a broken
//! server.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Pos, Positioned, ServerError, ServerResult, Variables};

pub struct RefuseIntrospection;

impl ExtensionFactory for RefuseIntrospection {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RefuseIntrospection)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for RefuseIntrospection {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        for (_, operation) in document.operations.iter() {
            let mut seen = HashSet::new();
            if let Some(pos) = introspection_at(&document, &operation.node.selection_set, &mut seen)
            {
                return Err(ServerError::new(
                    "Introspection is disabled on this server: `__schema` and `__type` are not answered.",
                    Some(pos),
                ));
            }
        }
        Ok(document)
    }
}

/// Where a root selection set asks for `__schema` or `__type`, directly or through fragments
/// (each fragment looked at once, so a cycle, refused later by validation, ends here too).
fn introspection_at<'d>(
    document: &'d ExecutableDocument,
    set: &'d Positioned<SelectionSet>,
    seen: &mut HashSet<&'d Name>,
) -> Option<Pos> {
    set.node
        .items
        .iter()
        .find_map(|selection| match &selection.node {
            Selection::Field(field) => {
                matches!(field.node.name.node.as_str(), "__schema" | "__type").then_some(field.pos)
            }
            Selection::InlineFragment(fragment) => {
                introspection_at(document, &fragment.node.selection_set, seen)
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                let fragment = document.fragments.get(name)?;
                if !seen.insert(name) {
                    return None;
                }
                introspection_at(document, &fragment.node.selection_set, seen)
            }
        })
}
