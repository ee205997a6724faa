//! ERC-20 tokens: the bulk writer and the read queries.

use entity::token;
use sea_orm::sea_query::{Condition, Order};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, Statement, Value,
};

use super::filter::{BytesFilter, TextFilter};
use super::keyset::{KeyValue, Page, PageRequest, SortOrder};
use super::upsert::{UpsertCounts, counted, last_wins, postgres_counted, values_placeholders};
use crate::entities::token::TokenRecord;
use crate::uint256;

/// Rows per statement: 8 parameters each, under both databases' parameter limits.
const CHUNK: usize = 2_000;

/// Inserts new tokens and fills in or changes known ones, by address. A field the record
/// leaves empty keeps its stored value: sources differ in what they know (BigQuery's export
/// often lacks symbol and name), and a sparser source must not erase a richer one.
pub async fn upsert<C: ConnectionTrait>(
    db: &C,
    records: &[TokenRecord],
) -> Result<UpsertCounts, DbErr> {
    let mut counts = UpsertCounts::default();
    let kept = last_wins(records, |r| r.address, &mut counts);
    let backend = db.get_database_backend();
    for indices in kept.chunks(CHUNK) {
        let rows: Vec<&TokenRecord> = indices.iter().map(|&i| &records[i]).collect();
        counts.add(upsert_chunk(db, backend, &rows).await?);
    }
    Ok(counts)
}

async fn upsert_chunk<C: ConnectionTrait>(
    db: &C,
    backend: DbBackend,
    rows: &[&TokenRecord],
) -> Result<UpsertCounts, DbErr> {
    let now = chrono::Utc::now();
    let supply = match backend {
        DbBackend::Postgres => "CAST(NULLIF(v.total_supply, '') AS numeric)",
        _ => "NULLIF(v.total_supply, '')",
    };
    // Each stored field becomes COALESCE(new, old); the row changes only when one differs.
    let fields = [
        "symbol",
        "name",
        "decimals",
        "total_supply",
        "block_number",
        "block_timestamp",
    ];
    let set: Vec<String> = fields
        .iter()
        .map(|f| format!("{f} = COALESCE(excluded.{f}, tokens.{f})"))
        .collect();
    let differs: Vec<String> = fields
        .iter()
        .map(|f| match backend {
            DbBackend::Postgres => {
                format!("(excluded.{f} IS NOT NULL AND excluded.{f} IS DISTINCT FROM tokens.{f})")
            }
            _ => format!("(excluded.{f} IS NOT NULL AND excluded.{f} IS NOT tokens.{f})"),
        })
        .collect();
    let timestamp_cast = match backend {
        DbBackend::Postgres => "CAST(v.block_timestamp AS timestamptz)",
        _ => "v.block_timestamp",
    };
    let updated_cast = match backend {
        DbBackend::Postgres => "CAST(v.updated_at AS timestamptz)",
        _ => "v.updated_at",
    };
    let decimals_cast = match backend {
        DbBackend::Postgres => "CAST(v.decimals AS integer)",
        _ => "v.decimals",
    };
    let number_cast = match backend {
        DbBackend::Postgres => "CAST(v.block_number AS bigint)",
        _ => "v.block_number",
    };
    let input = format!(
        "v (address, symbol, name, decimals, total_supply, block_number, block_timestamp, updated_at) AS (VALUES {})",
        values_placeholders(backend, rows.len(), 8)
    );
    let insert = format!(
        "INSERT INTO tokens (address, symbol, name, decimals, total_supply, block_number, block_timestamp, updated_at)
         SELECT v.address, v.symbol, v.name, {decimals_cast}, {supply}, {number_cast}, {timestamp_cast}, {updated_cast} FROM v WHERE true
         ON CONFLICT (address) DO UPDATE SET {set}, updated_at = excluded.updated_at
         WHERE {differs}",
        set = set.join(", "),
        differs = differs.join(" OR "),
    );
    let mut values = Vec::with_capacity(rows.len() * 8);
    for r in rows {
        let supply = r.total_supply.map(|s| match backend {
            DbBackend::Postgres => s.to_string(),
            _ => uint256::to_fixed_width(s),
        });
        values.extend([
            Value::from(r.address.to_vec()),
            Value::from(r.symbol.clone()),
            Value::from(r.name.clone()),
            Value::from(r.decimals.map(i64::from)),
            Value::from(supply.unwrap_or_default()),
            Value::from(r.block_number),
            Value::from(r.block_timestamp),
            Value::from(now),
        ]);
    }
    if backend == DbBackend::Postgres {
        let with_written =
            format!("WITH {input}, written AS ({insert} RETURNING (xmax = 0) AS inserted)");
        return postgres_counted(db, with_written, values, rows.len() as u64).await;
    }
    let addresses: Vec<Value> = rows
        .iter()
        .map(|r| Value::from(r.address.to_vec()))
        .collect();
    let existing = token::Entity::find()
        .filter(token::Column::Address.is_in(addresses))
        .count(db)
        .await?;
    let changed = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            format!("WITH {input} {insert}"),
            values,
        ))
        .await?
        .rows_affected();
    Ok(counted(rows.len() as u64, existing, changed))
}

pub async fn get(db: &DatabaseConnection, address: &[u8]) -> Result<Option<token::Model>, DbErr> {
    token::Entity::find_by_id(address.to_vec()).one(db).await
}

/// Tokens for many addresses at once (the DataLoader behind `Transfer.token`).
pub async fn by_addresses(
    db: &DatabaseConnection,
    addresses: &[Vec<u8>],
) -> Result<Vec<token::Model>, DbErr> {
    let mut found = Vec::with_capacity(addresses.len());
    for chunk in addresses.chunks(CHUNK) {
        found.extend(
            token::Entity::find()
                .filter(token::Column::Address.is_in(chunk.to_vec()))
                .all(db)
                .await?,
        );
    }
    Ok(found)
}

/// What `tokens(where: …)` may filter on.
#[derive(Debug, Clone, Default)]
pub struct TokenFilter {
    pub address: BytesFilter,
    pub symbol: TextFilter,
    pub name: TextFilter,
}

impl TokenFilter {
    fn condition(&self) -> Condition {
        Condition::all()
            .add(self.address.condition(token::Column::Address))
            .add(self.symbol.condition(token::Column::Symbol))
            .add(self.name.condition(token::Column::Name))
    }
}

/// Fields a token list can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSort {
    Address,
    Symbol,
    BlockNumber,
}

pub fn order(sort: &[(TokenSort, Order)]) -> SortOrder<token::Column> {
    use token::Column as C;
    let mut order = SortOrder::new();
    for (field, direction) in sort {
        order = match field {
            TokenSort::Address => order.then(C::Address, direction.clone()),
            TokenSort::Symbol => order.then_nullable(C::Symbol, direction.clone()),
            TokenSort::BlockNumber => order.then_nullable(C::BlockNumber, direction.clone()),
        };
    }
    // The address is unique: the tie-breaker (and the default order).
    let last = sort.last().map(|(_, d)| d.clone()).unwrap_or(Order::Asc);
    order.then(C::Address, last)
}

pub fn cursor_values(sort: &[(TokenSort, Order)], t: &token::Model) -> Vec<KeyValue> {
    let mut values: Vec<KeyValue> = sort
        .iter()
        .map(|(field, _)| match field {
            TokenSort::Address => KeyValue::Bytes(t.address.clone()),
            TokenSort::Symbol => t
                .symbol
                .clone()
                .map(KeyValue::Text)
                .unwrap_or(KeyValue::Null),
            TokenSort::BlockNumber => t.block_number.map(KeyValue::Int).unwrap_or(KeyValue::Null),
        })
        .collect();
    values.push(KeyValue::Bytes(t.address.clone()));
    values
}

pub async fn list(
    db: &DatabaseConnection,
    filter: &TokenFilter,
    sort: &[(TokenSort, Order)],
    page: &PageRequest,
) -> Result<Page<token::Model>, DbErr> {
    let backend = db.get_database_backend();
    let select = token::Entity::find().filter(filter.condition());
    let rows = page.apply(&order(sort), backend, select).all(db).await?;
    Ok(page.finish(rows))
}
