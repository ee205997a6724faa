//! With `graphql.introspection = false`, a query asking for `__schema` or `__type` is refused
//! with an error saying so. The GraphQL library alone answers such a query with
//! `{"__schema": null}` and no error, which a client (or GraphiQL) cannot tell from a broken
//! server.

use std::collections::HashSet;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Pos, Positioned, ServerError};

/// The error for a document that asks for `__schema` or `__type` anywhere, through fragments
/// too; `None` when it does not.
pub fn refusal(document: &ExecutableDocument) -> Option<ServerError> {
    document.operations.iter().find_map(|(_, operation)| {
        let mut seen = HashSet::new();
        introspection_at(document, &operation.node.selection_set, &mut seen).map(|pos| {
            ServerError::new(
                "Introspection is disabled on this server: `__schema` and `__type` are not answered.",
                Some(pos),
            )
        })
    })
}

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
