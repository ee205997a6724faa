//! Relay connections on top of the keyset pager: arguments in, `Connection` out.

use async_graphql::OutputType;
use async_graphql::connection::{Connection, CursorType, Edge};
use sea_orm::{ColumnTrait, DbErr};

use super::error::ApiError;
use crate::store::keyset::{self, Cursor, KeyValue, PageError, PageRequest, SortOrder};

/// The four Relay arguments, as every list field takes them.
#[derive(Debug, Default, Clone)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

impl PageArgs {
    pub fn request<C: ColumnTrait>(&self, order: &SortOrder<C>) -> Result<PageRequest, ApiError> {
        PageRequest::new(
            order,
            self.first.map(i64::from),
            self.after.as_deref(),
            self.last.map(i64::from),
            self.before.as_deref(),
        )
        .map_err(ApiError::from)
    }

    /// The page size asked for, for complexity accounting. A size out of range counts as 1:
    /// the resolver refuses it before reading anything, with an error naming the argument,
    /// which counting it at the cap would hide behind "Query is too complex."
    pub fn size(first: Option<i32>, last: Option<i32>) -> usize {
        match first.or(last) {
            None => keyset::DEFAULT_PAGE_SIZE as usize,
            Some(n) if (0..=keyset::MAX_PAGE_SIZE as i32).contains(&n) => n as usize,
            Some(_) => 1,
        }
    }
}

impl From<PageError> for ApiError {
    fn from(error: PageError) -> Self {
        ApiError::BadUserInput(error.to_string())
    }
}

/// A cursor as the GraphQL library sees it: encoded only when a client selects it.
pub struct LazyCursor(Cursor);

impl CursorType for LazyCursor {
    type Error = PageError;

    /// Cursors arrive as plain `String` arguments and are checked against their order by
    /// `PageRequest`; this path is never taken.
    fn decode_cursor(_: &str) -> Result<Self, PageError> {
        Err(PageError::BadCursor("cursor"))
    }

    fn encode_cursor(&self) -> String {
        self.0.encode()
    }
}

/// A page of `N` nodes as a Relay connection.
pub type Page<N> = Connection<LazyCursor, N>;

/// Every list field, end to end: the page `args` ask for in `order` (checked, or a
/// `BAD_USER_INPUT` naming the argument), read by `read`, as a Relay connection of `node`s,
/// each with the keyset cursor of its sort values (`key`).
pub async fn list<C, M, N>(
    args: PageArgs,
    order: &SortOrder<C>,
    read: impl AsyncFnOnce(&PageRequest) -> Result<keyset::Page<M>, DbErr>,
    key: impl Fn(&M) -> Vec<KeyValue>,
    node: impl Fn(M) -> N,
) -> Result<Page<N>, ApiError>
where
    C: ColumnTrait,
    N: OutputType,
{
    let request = args.request(order)?;
    let page = read(&request).await?;
    Ok(connection(order, page, key, node))
}

/// Builds the connection: each row becomes a node with the cursor of its sort values.
fn connection<C, M, N>(
    order: &SortOrder<C>,
    page: keyset::Page<M>,
    key: impl Fn(&M) -> Vec<KeyValue>,
    node: impl Fn(M) -> N,
) -> Page<N>
where
    C: ColumnTrait,
    N: OutputType,
{
    let mut connection = Connection::new(page.has_previous_page, page.has_next_page);
    connection.edges = page
        .rows
        .into_iter()
        .map(|row| Edge::new(LazyCursor(Cursor::new(order, key(&row))), node(row)))
        .collect();
    connection
}
