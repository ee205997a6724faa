//! Keyset pagination over any entity: pages are bounded by the sort values of the last row seen
//! (plus a unique tie-breaker), never by an offset, so rows written between two page requests
//! cannot make a page skip or repeat a row. Cursors are opaque to clients.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use sea_orm::sea_query::{Condition, Order};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};
use serde::{Deserialize, Serialize};

/// Rows per page when the client does not say.
pub const DEFAULT_PAGE_SIZE: u64 = 100;
/// Most rows one page may ask for; more is an error, not a silent cut.
pub const MAX_PAGE_SIZE: u64 = 1000;

/// One sort column's value, as carried inside a cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KeyValue {
    #[serde(rename = "i")]
    Int(i64),
    #[serde(rename = "s")]
    Text(String),
    #[serde(rename = "t")]
    Time(chrono::DateTime<Utc>),
    #[serde(rename = "b", with = "hex")]
    Bytes(Vec<u8>),
}

impl From<KeyValue> for sea_orm::Value {
    fn from(value: KeyValue) -> Self {
        match value {
            KeyValue::Int(v) => v.into(),
            KeyValue::Text(v) => v.into(),
            KeyValue::Time(v) => v.into(),
            KeyValue::Bytes(v) => v.into(),
        }
    }
}

/// A sort order: columns with directions, the last one unique (the tie-breaker).
pub struct SortOrder<C> {
    keys: Vec<(C, Order)>,
    /// Names the order inside cursors, so a cursor made for one order is refused by another.
    fingerprint: String,
}

impl<C: ColumnTrait> SortOrder<C> {
    /// `keys` must end with a unique column.
    pub fn new(keys: Vec<(C, Order)>) -> Self {
        let fingerprint = keys
            .iter()
            .map(|(c, o)| {
                format!(
                    "{}:{}",
                    c.as_str(),
                    if matches!(o, Order::Desc) { "d" } else { "a" }
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        SortOrder { keys, fingerprint }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// What one page request asks for, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    pub limit: u64,
    /// `last`/`before`: read towards the start of the order.
    pub backward: bool,
    /// Sort values of the row to continue after (forward) or before (backward).
    pub cursor: Option<Vec<KeyValue>>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PageError {
    #[error("`{0}` must be between 0 and {MAX_PAGE_SIZE}, got {1}")]
    Size(&'static str, i64),
    #[error("use either `first`/`after` or `last`/`before`, not both")]
    Mixed,
    #[error(
        "`{0}` is not a cursor from this list (cursors are opaque: pass back `endCursor` or `startCursor` as received)"
    )]
    BadCursor(&'static str),
    #[error("`{0}` was made for a different `orderBy`; start again without a cursor")]
    OtherOrder(&'static str),
}

#[derive(Serialize, Deserialize)]
struct CursorBody {
    o: String,
    k: Vec<KeyValue>,
}

impl PageRequest {
    /// Validates Relay arguments against `order`.
    pub fn new<C: ColumnTrait>(
        order: &SortOrder<C>,
        first: Option<i64>,
        after: Option<&str>,
        last: Option<i64>,
        before: Option<&str>,
    ) -> Result<Self, PageError> {
        if (first.is_some() || after.is_some()) && (last.is_some() || before.is_some()) {
            return Err(PageError::Mixed);
        }
        let size = |name: &'static str, value: Option<i64>| match value {
            None => Ok(DEFAULT_PAGE_SIZE),
            Some(n) if (0..=MAX_PAGE_SIZE as i64).contains(&n) => Ok(n as u64),
            Some(n) => Err(PageError::Size(name, n)),
        };
        let backward = last.is_some() || before.is_some();
        let (limit, cursor) = if backward {
            (size("last", last)?, decode(order, "before", before)?)
        } else {
            (size("first", first)?, decode(order, "after", after)?)
        };
        Ok(PageRequest {
            limit,
            backward,
            cursor,
        })
    }

    /// Adds the keyset condition, the order and the limit (one row more than the page, to
    /// know whether another page follows) to `select`.
    pub fn apply<E: EntityTrait>(
        &self,
        order: &SortOrder<E::Column>,
        select: Select<E>,
    ) -> Select<E> {
        let mut select = select;
        if let Some(values) = &self.cursor {
            // (k1 > v1) OR (k1 = v1 AND k2 > v2) OR …, each ">" flipped for DESC and backward.
            let mut any = Condition::any();
            for i in 0..order.keys.len() {
                let mut all = Condition::all();
                for (j, (column, _)) in order.keys.iter().enumerate().take(i) {
                    all = all.add(column.eq(values[j].clone()));
                }
                let (column, direction) = &order.keys[i];
                let value = values[i].clone();
                let ascending = matches!(direction, Order::Asc) != self.backward;
                all = all.add(if ascending {
                    column.gt(value)
                } else {
                    column.lt(value)
                });
                any = any.add(all);
            }
            select = select.filter(any);
        }
        for (column, direction) in &order.keys {
            let direction = match (direction, self.backward) {
                (Order::Desc, false) | (Order::Asc, true) => Order::Desc,
                _ => Order::Asc,
            };
            select = select.order_by(*column, direction);
        }
        select.limit(self.limit + 1)
    }

    /// Turns the fetched rows (as `apply` ordered them) into a page in the sort order.
    pub fn finish<M>(&self, mut rows: Vec<M>) -> Page<M> {
        let more = rows.len() as u64 > self.limit;
        rows.truncate(self.limit as usize);
        if self.backward {
            rows.reverse();
        }
        Page {
            has_next_page: if self.backward {
                self.cursor.is_some()
            } else {
                more
            },
            has_previous_page: if self.backward {
                more
            } else {
                self.cursor.is_some()
            },
            rows,
        }
    }
}

/// One page of rows in the requested order.
#[derive(Debug)]
pub struct Page<M> {
    pub rows: Vec<M>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

/// The opaque cursor of a row whose sort values are `values`.
pub fn encode<C: ColumnTrait>(order: &SortOrder<C>, values: Vec<KeyValue>) -> String {
    let body = CursorBody {
        o: order.fingerprint.clone(),
        k: values,
    };
    // Serializing plain enums and strings to JSON cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).unwrap_or_default())
}

fn decode<C: ColumnTrait>(
    order: &SortOrder<C>,
    name: &'static str,
    cursor: Option<&str>,
) -> Result<Option<Vec<KeyValue>>, PageError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let body: CursorBody = URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(PageError::BadCursor(name))?;
    if body.o != order.fingerprint {
        return Err(PageError::OtherOrder(name));
    }
    if body.k.len() != order.keys.len() {
        return Err(PageError::BadCursor(name));
    }
    Ok(Some(body.k))
}
