//! Remembers parsed documents: frontends send the same few query texts over and over, and
//! parsing was a noticeable share of a small query's CPU. Validation and execution still run
//! for every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ServerResult, Variables};

/// Distinct documents kept; past this the cache starts over (a client generating queries
/// cannot grow memory without bound).
const MAX_DOCUMENTS: usize = 512;
/// Longer documents are parsed every time.
const MAX_QUERY_BYTES: usize = 16 * 1024;

#[derive(Default)]
pub struct ParseCache {
    documents: Arc<Mutex<HashMap<String, ExecutableDocument>>>,
}

impl ExtensionFactory for ParseCache {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ParseCacheExtension {
            documents: self.documents.clone(),
        })
    }
}

struct ParseCacheExtension {
    documents: Arc<Mutex<HashMap<String, ExecutableDocument>>>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for ParseCacheExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if let Some(document) = self
            .documents
            .lock()
            .ok()
            .and_then(|d| d.get(query).cloned())
        {
            return Ok(document);
        }
        let document = next.run(ctx, query, variables).await?;
        if query.len() <= MAX_QUERY_BYTES
            && let Ok(mut documents) = self.documents.lock()
        {
            if documents.len() >= MAX_DOCUMENTS {
                documents.clear();
            }
            documents.insert(query.to_string(), document.clone());
        }
        Ok(document)
    }
}
