//! The schema as the server runs it: every operation, over HTTP and WebSocket alike, first
//! passes the checks on its text ([`query_limits`]), is parsed once per distinct text
//! ([`ParseCache`]), and is refused if it asks for introspection while that is off.
//!
//! Here too each operation gets the database its resolvers use ([`OperationDb`]), decided by
//! its type alone: mutations the primary, so they and their answers see every write;
//! queries and subscriptions a healthy read replica, or the primary when there is none. A
//! query whose replica turns out to be unreachable is answered again from the primary (it
//! only reads, so running it twice changes nothing) and the replica is skipped from then on.
//!
//! These are done here, around the schema, rather than as schema extensions: with any
//! extension registered, the GraphQL library sends every field and list item of every answer
//! through the extension chain (a type lookup and a boxed future each), which was a tenth of the
//! server's CPU on a 100-row `transfers` page.

use std::sync::Arc;

use async_graphql::futures_util::stream::{self, BoxStream, StreamExt};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{Data, Executor, Request, Response, ServerError, Value};

use super::db::OperationDb;
use super::parse_cache::ParseCache;
use super::{AppSchema, introspection, query_limits};
use crate::auth::Caller;
use crate::db::replicas::{Chosen, Replicas};

#[derive(Clone)]
pub struct GuardedSchema {
    schema: AppSchema,
    gate: Arc<Gate>,
    replicas: Replicas,
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
        replicas: Replicas,
        max_query_bytes: usize,
        max_nesting: usize,
        introspection: bool,
    ) -> Self {
        GuardedSchema {
            schema,
            replicas,
            gate: Arc::new(Gate {
                max_query_bytes,
                max_nesting,
                introspection,
                parsed: ParseCache::default(),
            }),
        }
    }

    /// The request with its document parsed and its database chosen, or the error that
    /// refuses it.
    fn admit(&self, mut request: Request) -> Result<(Request, Chosen), ServerError> {
        let gate = &self.gate;
        query_limits::check(&request.query, gate.max_query_bytes, gate.max_nesting)
            .map_err(|message| ServerError::new(message, None))?;
        let document = match gate.parsed.get(&request.query) {
            Some(document) => document,
            None => {
                let document = match async_graphql::parser::parse_query(&request.query) {
                    Ok(document) => document,
                    // The schema parses it again and reports the syntax error as it always
                    // does.
                    Err(_) => return Ok((request, self.replicas.writer())),
                };
                if !gate.introspection
                    && let Some(refusal) = introspection::refusal(&document)
                {
                    return Err(refusal);
                }
                gate.parsed.insert(&request.query, &document);
                document
            }
        };
        let chosen = match operation_type(&document, request.operation_name.as_deref()) {
            Some(OperationType::Query | OperationType::Subscription) => self.replicas.reader(),
            // Mutations, and documents the schema will refuse anyway.
            _ => self.replicas.writer(),
        };
        request.set_parsed_query(document);
        Ok((request, chosen))
    }
}

/// The type of the operation a request runs: the one named, or the only one.
fn operation_type(document: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => Some(operation.node.ty),
        (DocumentOperations::Multiple(operations), Some(name)) => {
            operations.get(name).map(|operation| operation.node.ty)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// Whether an answer failed because its database could not be reached.
fn unavailable(response: &Response) -> bool {
    response.errors.iter().any(|error| {
        error
            .extensions
            .as_ref()
            .and_then(|ext| ext.get("code"))
            .is_some_and(|code| *code == Value::from("UNAVAILABLE"))
    })
}

/// What is needed to send a query again: its text, name, variables and caller.
struct Resend {
    query: String,
    operation_name: Option<String>,
    variables: async_graphql::Variables,
    caller: Option<Caller>,
}

impl Resend {
    fn of(request: &Request) -> Resend {
        Resend {
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables: request.variables.clone(),
            caller: request
                .data
                .get(&std::any::TypeId::of::<Caller>())
                .and_then(|data| data.downcast_ref::<Caller>())
                .copied(),
        }
    }

    fn into_request(self) -> Request {
        let mut request = Request::new(self.query).variables(self.variables);
        if let Some(name) = self.operation_name {
            request = request.operation_name(name);
        }
        if let Some(caller) = self.caller {
            request = request.data(caller);
        }
        request
    }
}

impl Executor for GuardedSchema {
    async fn execute(&self, request: Request) -> Response {
        let (request, chosen) = match self.admit(request) {
            Ok(admitted) => admitted,
            Err(error) => return Response::from_errors(vec![error]),
        };
        let slot = chosen.slot;
        if slot == 0 {
            return self.schema.execute(request.data(OperationDb(chosen))).await;
        }
        let resend = Resend::of(&request);
        let response = self.schema.execute(request.data(OperationDb(chosen))).await;
        if !unavailable(&response) {
            return response;
        }
        self.replicas.report_unavailable(slot);
        match self.admit(resend.into_request()) {
            Ok((request, _)) => {
                let primary = OperationDb(self.replicas.writer());
                self.schema.execute(request.data(primary)).await
            }
            Err(_) => response,
        }
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        match self.admit(request) {
            Ok((request, chosen)) => {
                // An answer that found its replica unreachable stops further reads going
                // there; a stream cannot be answered again from the primary.
                let slot = chosen.slot;
                let replicas = self.replicas.clone();
                Executor::execute_stream(
                    &self.schema,
                    request.data(OperationDb(chosen)),
                    session_data,
                )
                .inspect(move |response| {
                    if slot != 0 && unavailable(response) {
                        replicas.report_unavailable(slot);
                    }
                })
                .boxed()
            }
            Err(error) => stream::once(async move { Response::from_errors(vec![error]) }).boxed(),
        }
    }
}
