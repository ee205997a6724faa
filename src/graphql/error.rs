//! The one error type of the GraphQL API. Every error a client sees carries `extensions.code`;
//! internal details are logged with an id the client can quote, never sent.

use async_graphql::ErrorExtensions;
use sea_orm::DbErr;

/// Resolvers return `Result<_, ApiError>`; `?` on a database error turns it into `Internal`,
/// so no raw database message can reach a client. (Deliberately not `Display`: the GraphQL
/// library converts any `Display` type into an error without a code.)
#[derive(Debug, Clone)]
pub enum ApiError {
    BadUserInput(String),
    NotFound(String),
    Unauthenticated,
    Forbidden(String),
    /// The database cannot be reached right now; the client should retry shortly.
    Unavailable,
    /// Details for the log only.
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadUserInput(_) => "BAD_USER_INPUT",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::Unauthenticated => "UNAUTHENTICATED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::Unavailable => "UNAVAILABLE",
            ApiError::Internal(_) => "INTERNAL",
        }
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        ApiError::BadUserInput(message.into())
    }
}

impl From<DbErr> for ApiError {
    fn from(error: DbErr) -> Self {
        if crate::db::is_unavailable(&error) {
            tracing::warn!(error = %crate::db::brief(&error), "database unavailable during a GraphQL request");
            return ApiError::Unavailable;
        }
        // First line only, never a connection URL: the log is read by more people than the
        // database's owner.
        ApiError::Internal(format!("database: {}", crate::db::brief(&error)))
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(error: ApiError) -> Self {
        let code = error.code();
        let message = match error {
            ApiError::BadUserInput(m) | ApiError::NotFound(m) | ApiError::Forbidden(m) => m,
            ApiError::Unauthenticated => {
                "authentication required: send `Authorization: Bearer <token>`".to_string()
            }
            ApiError::Unavailable => "the database is unavailable; retry shortly".to_string(),
            ApiError::Internal(detail) => {
                let id = error_id();
                tracing::error!(error_id = %id, detail = %detail, "internal error in a GraphQL request");
                format!("internal error (id {id})")
            }
        };
        async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code))
    }
}

/// A short id that ties a client's error message to the log line with the details.
fn error_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = chrono::Utc::now().timestamp_millis() as u64;
    format!("{:x}", t.wrapping_mul(1_000_003) ^ n)
}

/// Gives every error in a response a code: parse and validation errors (which the GraphQL
/// library raises before any resolver runs) become `BAD_USER_INPUT`.
pub fn ensure_codes(response: &mut async_graphql::Response) {
    for error in &mut response.errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|ext| ext.get("code").is_some());
        if !has_code {
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", "BAD_USER_INPUT");
        }
    }
}
