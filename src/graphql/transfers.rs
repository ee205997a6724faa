//! ERC-20 transfers over GraphQL: the list with filters and keyset pages, and the aggregates
//! beside it (`transferStats`, `transferVolume`) so frontends never page to count.

use async_graphql::{Context, Enum, ID, InputObject, Object, ScalarType, SimpleObject, Value};
use entity::transfer;
use sea_orm::DatabaseConnection;
use sea_orm::sea_query::Order;

use super::connection::{Page, PageArgs, list};
use super::db::{db, loader};
use super::error::{ApiError, ApiResult};
use super::filters::{
    BigIntFilterInput, BytesFilterInput, DateTimeFilterInput, IntFilterInput, SortDirection,
    optional,
};
use super::row::{Columns, Row};
use super::scalars::{BigInt, Bytes, DateTime};
use super::tokens::{Token, TokenLoader};
use crate::store::transfers::{self, Interval, TransferFilter, TransferSort};

/// One ERC-20 `Transfer` event.
pub struct Transfer(pub transfer::Model);

#[Object]
impl Transfer {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The token contract, when Tributary knows it (loaded in one batch per page).
    async fn token(&self, ctx: &Context<'_>) -> ApiResult<Option<Token>> {
        let loader = loader::<TokenLoader>(ctx);
        Ok(loader
            .load_one(self.0.token_address.clone())
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map(Token))
    }
    async fn token_address(&self) -> Bytes {
        Bytes(self.0.token_address.clone())
    }
    async fn from(&self) -> Bytes {
        Bytes(self.0.from_address.clone())
    }
    async fn to(&self) -> Bytes {
        Bytes(self.0.to_address.clone())
    }
    /// Amount in the token's smallest unit, exact.
    async fn value(&self) -> BigInt {
        BigInt::from_stored(&self.0.value)
    }
    async fn transaction_hash(&self) -> Bytes {
        Bytes(self.0.transaction_hash.clone())
    }
    async fn log_index(&self) -> i32 {
        self.0.log_index
    }
    async fn block_number(&self) -> i64 {
        self.0.block_number
    }
    /// Absent when the source did not say (ethereum-etl's plain CSV export).
    async fn block_timestamp(&self) -> Option<DateTime> {
        self.0.block_timestamp.map(Into::into)
    }
}

impl Columns for Transfer {
    fn column(&self, name: &str) -> Option<Value> {
        let t = &self.0;
        Some(match name {
            "id" => ID(t.id.to_string()).to_value(),
            "tokenAddress" => Bytes(t.token_address.clone()).to_value(),
            "from" => Bytes(t.from_address.clone()).to_value(),
            "to" => Bytes(t.to_address.clone()).to_value(),
            "value" => BigInt::from_stored(&t.value).to_value(),
            "transactionHash" => Bytes(t.transaction_hash.clone()).to_value(),
            "logIndex" => Value::from(t.log_index),
            "blockNumber" => Value::from(t.block_number),
            "blockTimestamp" => t
                .block_timestamp
                .map_or(Value::Null, |at| DateTime::from(at).to_value()),
            _ => return None,
        })
    }
}

/// Fields transfers can be ordered by.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferOrderField {
    BlockTimestamp,
    BlockNumber,
    Value,
}

/// One `orderBy` entry; the id breaks ties so pages are stable.
#[derive(InputObject, Debug, Clone, Copy)]
pub struct TransferOrder {
    pub field: TransferOrderField,
    #[graphql(default)]
    pub direction: SortDirection,
}

/// Filters for transfers; all given conditions must hold.
#[derive(InputObject, Debug, Clone, Default)]
pub struct TransferWhere {
    /// The token contract's address.
    pub token: Option<BytesFilterInput>,
    pub from: Option<BytesFilterInput>,
    pub to: Option<BytesFilterInput>,
    /// Sender or receiver.
    pub account: Option<BytesFilterInput>,
    pub transaction_hash: Option<BytesFilterInput>,
    pub block_timestamp: Option<DateTimeFilterInput>,
    pub block_number: Option<IntFilterInput>,
    pub value: Option<BigIntFilterInput>,
}

impl TransferWhere {
    pub fn into_store(self) -> ApiResult<TransferFilter> {
        Ok(TransferFilter {
            token: optional(self.token, "where.token", BytesFilterInput::into_store)?,
            from: optional(self.from, "where.from", BytesFilterInput::into_store)?,
            to: optional(self.to, "where.to", BytesFilterInput::into_store)?,
            account: optional(self.account, "where.account", BytesFilterInput::into_store)?,
            transaction_hash: optional(
                self.transaction_hash,
                "where.transactionHash",
                BytesFilterInput::into_store,
            )?,
            block_timestamp: optional(
                self.block_timestamp,
                "where.blockTimestamp",
                DateTimeFilterInput::into_store,
            )?,
            block_number: optional(
                self.block_number,
                "where.blockNumber",
                IntFilterInput::into_store,
            )?,
            value: optional(self.value, "where.value", BigIntFilterInput::into_store)?,
        })
    }
}

/// Most `orderBy` entries one list accepts.
const MAX_ORDER_BY: usize = 3;

pub fn sort(order_by: Option<Vec<TransferOrder>>) -> ApiResult<Vec<(TransferSort, Order)>> {
    let order_by = order_by.unwrap_or_default();
    if order_by.len() > MAX_ORDER_BY {
        return Err(ApiError::bad_input(format!(
            "`orderBy` takes at most {MAX_ORDER_BY} entries, got {}",
            order_by.len()
        )));
    }
    Ok(order_by
        .into_iter()
        .map(|o| {
            let field = match o.field {
                TransferOrderField::BlockTimestamp => TransferSort::BlockTimestamp,
                TransferOrderField::BlockNumber => TransferSort::BlockNumber,
                TransferOrderField::Value => TransferSort::Value,
            };
            (field, o.direction.into())
        })
        .collect())
}

/// A page of transfers: shared by `transfers` and `Token.transfers`.
pub async fn page(
    db: &DatabaseConnection,
    filter: TransferFilter,
    order_by: Option<Vec<TransferOrder>>,
    args: PageArgs,
) -> ApiResult<Page<Row<Transfer>>> {
    let sort = sort(order_by)?;
    let order = transfers::order(&sort);
    list(
        args,
        &order,
        async |request| transfers::list(db, &filter, &sort, request).await,
        |t| transfers::cursor_values(&sort, t),
        |t| Row(Transfer(t)),
    )
    .await
}

/// Totals over the transfers a filter selects.
#[derive(SimpleObject)]
pub struct TransferStats {
    pub count: i64,
    /// Sum of values, exact.
    pub total_value: BigInt,
    pub distinct_senders: i64,
    pub distinct_receivers: i64,
    pub first_timestamp: Option<DateTime>,
    pub last_timestamp: Option<DateTime>,
}

/// Bucket width of `transferVolume`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeInterval {
    Hour,
    Day,
    /// ISO weeks, starting Monday 00:00 UTC.
    Week,
}

/// Transfers in one time bucket.
#[derive(SimpleObject)]
pub struct VolumeBucket {
    /// Start of the bucket (UTC).
    pub start: DateTime,
    pub count: i64,
    pub total_value: BigInt,
}

#[derive(Default)]
pub struct TransferQuery;

#[Object]
impl TransferQuery {
    /// Transfers matching `where`, newest first unless `orderBy` says otherwise.
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
        let filter = filter.unwrap_or_default().into_store()?;
        page(
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

    /// Count, exact total value, distinct senders and receivers, and the time span of the
    /// transfers matching `where`.
    async fn transfer_stats(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "where")] filter: Option<TransferWhere>,
    ) -> ApiResult<TransferStats> {
        let db = db(ctx);
        let filter = filter.unwrap_or_default().into_store()?;
        let s = transfers::stats(db, &filter).await?;
        Ok(TransferStats {
            count: s.count,
            total_value: BigInt::from_stored(&s.total_value),
            distinct_senders: s.distinct_senders,
            distinct_receivers: s.distinct_receivers,
            first_timestamp: s.first_timestamp.map(Into::into),
            last_timestamp: s.last_timestamp.map(Into::into),
        })
    }

    /// Transfers per hour, day or week (oldest first), for charts. Transfers without a
    /// timestamp are not counted.
    async fn transfer_volume(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "where")] filter: Option<TransferWhere>,
        interval: VolumeInterval,
    ) -> ApiResult<Vec<VolumeBucket>> {
        let db = db(ctx);
        let filter = filter.unwrap_or_default().into_store()?;
        let interval = match interval {
            VolumeInterval::Hour => Interval::Hour,
            VolumeInterval::Day => Interval::Day,
            VolumeInterval::Week => Interval::Week,
        };
        let buckets = transfers::volume(db, &filter, interval)
            .await?
            .ok_or_else(|| {
                ApiError::bad_input(format!(
                    "more than {} buckets: narrow `where.blockTimestamp` or use a longer interval",
                    transfers::MAX_BUCKETS
                ))
            })?;
        Ok(buckets
            .into_iter()
            .map(|b| VolumeBucket {
                start: b.start.into(),
                count: b.count,
                total_value: BigInt::from_stored(&b.total_value),
            })
            .collect())
    }
}
