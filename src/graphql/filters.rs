//! `where` operator inputs shared by every list, turned into the store's filters.

use async_graphql::{Enum, InputObject};
use sea_orm::sea_query::Order;

use super::error::ApiError;
use super::scalars::{BigInt, Bytes, DateTime};
use crate::store::filter::{BytesFilter, MAX_IN, RangeFilter, TextFilter};

/// Sort direction of one `orderBy` entry.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortDirection {
    #[default]
    Asc,
    Desc,
}

impl From<SortDirection> for Order {
    fn from(d: SortDirection) -> Self {
        match d {
            SortDirection::Asc => Order::Asc,
            SortDirection::Desc => Order::Desc,
        }
    }
}

/// Matches bytes (addresses, hashes) exactly.
#[derive(InputObject, Debug, Clone, Default)]
#[graphql(name = "BytesFilter")]
pub struct BytesFilterInput {
    pub eq: Option<Bytes>,
    #[graphql(name = "in")]
    pub any_of: Option<Vec<Bytes>>,
}

/// Compares times; a range is `{gte, lt}`.
#[derive(InputObject, Debug, Clone, Default)]
#[graphql(name = "DateTimeFilter")]
pub struct DateTimeFilterInput {
    pub eq: Option<DateTime>,
    #[graphql(name = "in")]
    pub any_of: Option<Vec<DateTime>>,
    pub gt: Option<DateTime>,
    pub gte: Option<DateTime>,
    pub lt: Option<DateTime>,
    pub lte: Option<DateTime>,
}

/// Compares whole numbers.
#[derive(InputObject, Debug, Clone, Default)]
#[graphql(name = "IntFilter")]
pub struct IntFilterInput {
    pub eq: Option<i64>,
    #[graphql(name = "in")]
    pub any_of: Option<Vec<i64>>,
    pub gt: Option<i64>,
    pub gte: Option<i64>,
    pub lt: Option<i64>,
    pub lte: Option<i64>,
}

/// Compares exact integers of any size.
#[derive(InputObject, Debug, Clone, Default)]
#[graphql(name = "BigIntFilter")]
pub struct BigIntFilterInput {
    pub eq: Option<BigInt>,
    #[graphql(name = "in")]
    pub any_of: Option<Vec<BigInt>>,
    pub gt: Option<BigInt>,
    pub gte: Option<BigInt>,
    pub lt: Option<BigInt>,
    pub lte: Option<BigInt>,
}

/// Matches text.
#[derive(InputObject, Debug, Clone, Default)]
#[graphql(name = "StringFilter")]
pub struct StringFilterInput {
    pub eq: Option<String>,
    #[graphql(name = "in")]
    pub any_of: Option<Vec<String>>,
    pub starts_with: Option<String>,
    pub contains: Option<String>,
}

/// An `in` list may hold at most `MAX_IN` values; `path` names it in the error.
fn check_in<T>(path: &str, list: &Option<Vec<T>>) -> Result<(), ApiError> {
    match list {
        Some(values) if values.len() > MAX_IN => Err(ApiError::bad_input(format!(
            "`{path}.in` has {} values; at most {MAX_IN} are allowed",
            values.len()
        ))),
        _ => Ok(()),
    }
}

impl BytesFilterInput {
    pub fn into_store(self, path: &str) -> Result<BytesFilter, ApiError> {
        check_in(path, &self.any_of)?;
        Ok(BytesFilter {
            eq: self.eq.map(|b| b.0),
            any_of: self.any_of.map(|l| l.into_iter().map(|b| b.0).collect()),
        })
    }
}

fn range<I, T>(
    path: &str,
    eq: Option<I>,
    any_of: Option<Vec<I>>,
    bounds: [Option<I>; 4],
    map: impl Fn(I) -> T,
) -> Result<RangeFilter<T>, ApiError> {
    check_in(path, &any_of)?;
    let [gt, gte, lt, lte] = bounds;
    Ok(RangeFilter {
        eq: eq.map(&map),
        any_of: any_of.map(|l| l.into_iter().map(&map).collect()),
        gt: gt.map(&map),
        gte: gte.map(&map),
        lt: lt.map(&map),
        lte: lte.map(&map),
    })
}

impl DateTimeFilterInput {
    pub fn into_store(
        self,
        path: &str,
    ) -> Result<RangeFilter<chrono::DateTime<chrono::Utc>>, ApiError> {
        range(
            path,
            self.eq,
            self.any_of,
            [self.gt, self.gte, self.lt, self.lte],
            |t| t.0,
        )
    }
}

impl IntFilterInput {
    pub fn into_store(self, path: &str) -> Result<RangeFilter<i64>, ApiError> {
        range(
            path,
            self.eq,
            self.any_of,
            [self.gt, self.gte, self.lt, self.lte],
            |n| n,
        )
    }
}

impl BigIntFilterInput {
    /// For uint256 columns: a negative bound is a mistake the client should hear about.
    pub fn into_store(self, path: &str) -> Result<RangeFilter<String>, ApiError> {
        let negative = [&self.eq, &self.gt, &self.gte, &self.lt, &self.lte]
            .into_iter()
            .flatten()
            .chain(self.any_of.iter().flatten())
            .any(|v| v.as_str().starts_with('-'));
        if negative {
            return Err(ApiError::bad_input(format!(
                "`{path}` compares unsigned amounts: use values of 0 or more"
            )));
        }
        let too_big = [&self.eq, &self.gt, &self.gte, &self.lt, &self.lte]
            .into_iter()
            .flatten()
            .chain(self.any_of.iter().flatten())
            .any(|v| crate::uint256::parse_decimal(v.as_str()).is_err());
        if too_big {
            return Err(ApiError::bad_input(format!(
                "`{path}` compares uint256 amounts: values above 2^256-1 cannot match"
            )));
        }
        range(
            path,
            self.eq,
            self.any_of,
            [self.gt, self.gte, self.lt, self.lte],
            |v| v.as_str().to_string(),
        )
    }
}

/// Longest text a string filter compares, in characters. Far longer than any stored name or
/// key, and short enough for SQLite's LIKE pattern limit (50,000 bytes) once escaped.
pub const MAX_FILTER_TEXT: usize = 4_096;

impl StringFilterInput {
    pub fn into_store(self, path: &str) -> Result<TextFilter, ApiError> {
        check_in(path, &self.any_of)?;
        let values = [
            ("eq", self.eq.iter().collect::<Vec<_>>()),
            ("in", self.any_of.iter().flatten().collect()),
            ("startsWith", self.starts_with.iter().collect()),
            ("contains", self.contains.iter().collect()),
        ];
        for (operator, texts) in values {
            if let Some(long) = texts.iter().find(|t| t.chars().count() > MAX_FILTER_TEXT) {
                return Err(ApiError::bad_input(format!(
                    "`{path}.{operator}` is {} characters long; at most {MAX_FILTER_TEXT} are allowed",
                    long.chars().count()
                )));
            }
        }
        Ok(TextFilter {
            eq: self.eq,
            any_of: self.any_of,
            starts_with: self.starts_with,
            contains: self.contains,
        })
    }
}

/// `Option<input>` to a store filter, or the empty filter.
pub fn optional<I, F: Default>(
    input: Option<I>,
    path: &str,
    convert: impl FnOnce(I, &str) -> Result<F, ApiError>,
) -> Result<F, ApiError> {
    input.map_or_else(|| Ok(F::default()), |i| convert(i, path))
}
