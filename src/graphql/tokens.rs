//! ERC-20 tokens over GraphQL.

use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Enum, InputObject, Object, ScalarType, Value};
use entity::token;
use sea_orm::DatabaseConnection;
use sea_orm::sea_query::Order;

use super::connection::{Page, PageArgs, list};
use super::db::db;
use super::error::{ApiError, ApiResult};
use super::filters::{BytesFilterInput, SortDirection, StringFilterInput, optional};
use super::row::{Columns, Row};
use super::scalars::{BigInt, Bytes, DateTime};
use super::transfers::{self as transfer_api, Transfer, TransferOrder, TransferWhere};
use crate::store::filter::BytesFilter;
use crate::store::tokens::{self, TokenFilter, TokenSort};

/// One ERC-20 token contract.
pub struct Token(pub token::Model);

impl Columns for Token {
    fn column(&self, name: &str) -> Option<Value> {
        let t = &self.0;
        Some(match name {
            "address" => Bytes(t.address.clone()).to_value(),
            "symbol" => Value::from(t.symbol.as_deref()),
            "name" => Value::from(t.name.as_deref()),
            "decimals" => Value::from(t.decimals),
            "totalSupply" => Value::from(
                t.total_supply
                    .as_deref()
                    .map(|s| BigInt::from_stored(s).to_value()),
            ),
            "blockNumber" => Value::from(t.block_number),
            "blockTimestamp" => {
                Value::from(t.block_timestamp.map(|at| DateTime::from(at).to_value()))
            }
            _ => return None,
        })
    }
}

#[Object]
impl Token {
    async fn address(&self) -> Bytes {
        Bytes(self.0.address.clone())
    }
    async fn symbol(&self) -> Option<&str> {
        self.0.symbol.as_deref()
    }
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    async fn decimals(&self) -> Option<i32> {
        self.0.decimals
    }
    /// Exact, in the token's smallest unit.
    async fn total_supply(&self) -> Option<BigInt> {
        self.0.total_supply.as_deref().map(BigInt::from_stored)
    }
    /// Block that created the contract, when known.
    async fn block_number(&self) -> Option<i64> {
        self.0.block_number
    }
    async fn block_timestamp(&self) -> Option<DateTime> {
        self.0.block_timestamp.map(Into::into)
    }
    /// This token's transfers; `where` narrows further (its `token` is ignored).
    #[graphql(complexity = "PageArgs::size(first, last) * child_complexity")]
    #[allow(clippy::too_many_arguments)]
    async fn transfers(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "where")] filter: Option<TransferWhere>,
        order_by: Option<Vec<TransferOrder>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<Page<Row<Transfer>>> {
        let db = db(ctx);
        let mut filter = filter.unwrap_or_default().into_store()?;
        filter.token = BytesFilter {
            eq: Some(self.0.address.clone()),
            any_of: None,
        };
        transfer_api::page(
            db,
            filter,
            order_by,
            PageArgs {
                first,
                after,
                last,
                before,
            },
        )
        .await
    }
}

/// Loads the tokens of a whole page of transfers in one query.
pub struct TokenLoader {
    pub db: DatabaseConnection,
}

impl Loader<Vec<u8>> for TokenLoader {
    type Value = token::Model;
    type Error = String;

    async fn load(&self, keys: &[Vec<u8>]) -> Result<HashMap<Vec<u8>, token::Model>, String> {
        let found = tokens::by_addresses(&self.db, keys)
            .await
            .map_err(|e| format!("loading tokens: {e}"))?;
        Ok(found.into_iter().map(|t| (t.address.clone(), t)).collect())
    }
}

/// Fields tokens can be ordered by.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOrderField {
    Address,
    Symbol,
    BlockNumber,
}

#[derive(InputObject, Debug, Clone, Copy)]
pub struct TokenOrder {
    pub field: TokenOrderField,
    #[graphql(default)]
    pub direction: SortDirection,
}

/// Filters for tokens; all given conditions must hold.
#[derive(InputObject, Debug, Clone, Default)]
pub struct TokenWhere {
    pub address: Option<BytesFilterInput>,
    pub symbol: Option<StringFilterInput>,
    pub name: Option<StringFilterInput>,
}

#[derive(Default)]
pub struct TokenQuery;

#[Object]
impl TokenQuery {
    /// One token by contract address; null when unknown.
    async fn token(&self, ctx: &Context<'_>, address: Bytes) -> ApiResult<Option<Token>> {
        let db = db(ctx);
        Ok(tokens::get(db, &address.0).await?.map(Token))
    }

    /// Tokens matching `where`, by address unless `orderBy` says otherwise.
    #[graphql(complexity = "PageArgs::size(first, last) * child_complexity")]
    #[allow(clippy::too_many_arguments)]
    async fn tokens(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "where")] filter: Option<TokenWhere>,
        order_by: Option<Vec<TokenOrder>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> ApiResult<Page<Row<Token>>> {
        let db = db(ctx);
        let w = filter.unwrap_or_default();
        let filter = TokenFilter {
            address: optional(w.address, "where.address", BytesFilterInput::into_store)?,
            symbol: optional(w.symbol, "where.symbol", StringFilterInput::into_store)?,
            name: optional(w.name, "where.name", StringFilterInput::into_store)?,
        };
        let order_by = order_by.unwrap_or_default();
        if order_by.len() > 2 {
            return Err(ApiError::bad_input("`orderBy` takes at most 2 entries"));
        }
        let sort: Vec<(TokenSort, Order)> = order_by
            .into_iter()
            .map(|o| {
                let field = match o.field {
                    TokenOrderField::Address => TokenSort::Address,
                    TokenOrderField::Symbol => TokenSort::Symbol,
                    TokenOrderField::BlockNumber => TokenSort::BlockNumber,
                };
                (field, o.direction.into())
            })
            .collect();
        let order = tokens::order(&sort);
        let args = PageArgs {
            first,
            after,
            last,
            before,
        };
        list(
            args,
            &order,
            async |request| tokens::list(db, &filter, &sort, request).await,
            |t| tokens::cursor_values(&sort, t),
            |t| Row(Token(t)),
        )
        .await
    }
}
