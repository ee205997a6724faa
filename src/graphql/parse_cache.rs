//! Remembers parsed documents: frontends send the same few query texts over and over, and
//! parsing was a noticeable share of a small query's CPU. Validation and execution still run
//! for every request.

use std::collections::HashMap;
use std::sync::Mutex;

use async_graphql::parser::types::ExecutableDocument;

/// Distinct documents kept; past this the cache starts over (a client generating queries
/// cannot grow memory without bound).
const MAX_DOCUMENTS: usize = 512;
/// Longer documents are parsed every time.
const MAX_QUERY_BYTES: usize = 16 * 1024;

#[derive(Default)]
pub struct ParseCache {
    documents: Mutex<HashMap<String, ExecutableDocument>>,
}

impl ParseCache {
    /// The document parsed earlier from exactly this text.
    pub fn get(&self, query: &str) -> Option<ExecutableDocument> {
        self.documents.lock().ok()?.get(query).cloned()
    }

    /// Remembers `document` as the parse of `query` (unless the text is long).
    pub fn insert(&self, query: &str, document: &ExecutableDocument) {
        if query.len() > MAX_QUERY_BYTES {
            return;
        }
        if let Ok(mut documents) = self.documents.lock() {
            if documents.len() >= MAX_DOCUMENTS {
                documents.clear();
            }
            documents.insert(query.to_string(), document.clone());
        }
    }
}
