//! The schema as the server runs it: every operation, over HTTP and WebSocket alike, first
//! passes the checks on its text ([`query_limits`]), is parsed once per distinct text
//! ([`ParseCache`]), and is refused if it asks for introspection while that is off.
//!
//! These are done here, around the schema, rather than as schema extensions: with any
//! extension registered, the GraphQL library sends every field and list item of every answer
//! through the extension chain (a type lookup and a boxed future each), which was a tenth of the
//! server's CPU on a 100-row `transfers` page.

use std::sync::Arc;

use async_graphql::futures_util::stream::{self, BoxStream, StreamExt};
use async_graphql::{Data, Executor, Request, Response, ServerError};

use super::parse_cache::ParseCache;
use super::{AppSchema, introspection, query_limits};

#[derive(Clone)]
pub struct GuardedSchema {
    schema: AppSchema,
    gate: Arc<Gate>,
}

struct Gate {
    max_query_bytes: usize,
    max_nesting: usize,
    introspection: bool,
    parsed: ParseCache,
}

impl GuardedSchema {
    pub fn new(
        schema: AppSchema,
        max_query_bytes: usize,
        max_nesting: usize,
        introspection: bool,
    ) -> Self {
        GuardedSchema {
            schema,
            gate: Arc::new(Gate {
                max_query_bytes,
                max_nesting,
                introspection,
                parsed: ParseCache::default(),
            }),
        }
    }

    /// The request with its document parsed, or the error that refuses it.
    fn admit(&self, mut request: Request) -> Result<Request, ServerError> {
        let gate = &self.gate;
        query_limits::check(&request.query, gate.max_query_bytes, gate.max_nesting)
            .map_err(|message| ServerError::new(message, None))?;
        if let Some(document) = gate.parsed.get(&request.query) {
            request.set_parsed_query(document);
            return Ok(request);
        }
        let document = match async_graphql::parser::parse_query(&request.query) {
            Ok(document) => document,
            // The schema parses it again and reports the syntax error as it always does.
            Err(_) => return Ok(request),
        };
        if !gate.introspection
            && let Some(refusal) = introspection::refusal(&document)
        {
            return Err(refusal);
        }
        gate.parsed.insert(&request.query, &document);
        request.set_parsed_query(document);
        Ok(request)
    }
}

impl Executor for GuardedSchema {
    async fn execute(&self, request: Request) -> Response {
        match self.admit(request) {
            Ok(request) => self.schema.execute(request).await,
            Err(error) => Response::from_errors(vec![error]),
        }
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        match self.admit(request) {
            Ok(request) => Executor::execute_stream(&self.schema, request, session_data),
            Err(error) => stream::once(async move { Response::from_errors(vec![error]) }).boxed(),
        }
    }
}
