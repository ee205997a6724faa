//! Keyset pagination over any entity: pages are bounded by the sort values of the last row seen
//! (plus a unique tie-breaker), never by an offset, so rows written between two page requests
//! cannot make a page skip or repeat a row. Cursors are opaque to clients.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use sea_orm::sea_query::{Condition, Expr, ExprTrait, NullOrdering, Order, SimpleExpr};
use sea_orm::{ColumnTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};
use serde::{Deserialize, Serialize};

use crate::uint256;

/// Rows per page when the client does not say.
pub const DEFAULT_PAGE_SIZE: u64 = 100;
/// Most rows one page may ask for; more is an error, not a silent cut.
pub const MAX_PAGE_SIZE: u64 = 1000;

/// One sort column's value, as carried inside a cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KeyValue {
    #[serde(rename = "n")]
    Null,
    #[serde(rename = "i")]
    Int(i64),
    #[serde(rename = "s")]
    Text(String),
    #[serde(rename = "t")]
    Time(chrono::DateTime<Utc>),
    #[serde(rename = "b", with = "hex")]
    Bytes(Vec<u8>),
    /// A uint256 as canonical decimal digits.
    #[serde(rename = "u")]
    Uint(String),
}

impl KeyValue {
    pub fn time(value: Option<chrono::DateTime<Utc>>) -> Self {
        value.map(KeyValue::Time).unwrap_or(KeyValue::Null)
    }

    /// The value as an SQL operand of the column it belongs to.
    fn operand(&self, backend: DbBackend) -> Option<SimpleExpr> {
        Some(match self {
            KeyValue::Null => return None,
            KeyValue::Int(v) => Expr::val(*v),
            KeyValue::Text(v) => Expr::val(v.clone()),
            KeyValue::Time(v) => Expr::val(*v),
            KeyValue::Bytes(v) => Expr::val(v.clone()),
            KeyValue::Uint(v) => uint256_operand(backend, v)?,
        })
    }
}

/// A uint256 literal comparable with a stored uint256 column on `backend`.
pub fn uint256_operand(backend: DbBackend, decimal: &str) -> Option<SimpleExpr> {
    let value = uint256::parse_decimal(decimal).ok()?;
    Some(match backend {
        DbBackend::Postgres => Expr::val(value.to_string()).cast_as("numeric"),
        _ => Expr::val(uint256::to_fixed_width(value)),
    })
}

/// One sort column: its direction, whether it may hold NULL (ordered as the largest value,
/// PostgreSQL's default, on both databases), and the kind of value a cursor holds for it.
struct SortKey<C> {
    column: C,
    order: Order,
    nullable: bool,
    kind: ValueKind,
}

/// What a cursor value must be to be compared with a column. A cursor is client input: a value
/// of another kind (text for an id, say) would reach the database as an invalid comparison and
/// fail there as an internal error instead of a bad cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueKind {
    Int,
    Text,
    Time,
    Bytes,
    Uint,
    /// A column type no order here uses: not checked.
    Any,
}

impl ValueKind {
    fn of<C: ColumnTrait>(column: &C) -> ValueKind {
        use sea_orm::sea_query::ColumnType as T;
        match column.def().get_column_type() {
            T::TinyInteger
            | T::SmallInteger
            | T::Integer
            | T::BigInteger
            | T::TinyUnsigned
            | T::SmallUnsigned
            | T::Unsigned
            | T::BigUnsigned => ValueKind::Int,
            T::Char(_) | T::String(_) | T::Text => ValueKind::Text,
            T::DateTime | T::Timestamp | T::TimestampWithTimeZone => ValueKind::Time,
            T::Binary(_) | T::VarBinary(_) | T::Blob => ValueKind::Bytes,
            _ => ValueKind::Any,
        }
    }

    fn accepts(self, value: &KeyValue) -> bool {
        matches!(
            (self, value),
            (ValueKind::Any, _)
                | (ValueKind::Int, KeyValue::Int(_))
                | (ValueKind::Text, KeyValue::Text(_))
                | (ValueKind::Time, KeyValue::Time(_))
                | (ValueKind::Bytes, KeyValue::Bytes(_))
                | (ValueKind::Uint, KeyValue::Uint(_))
        )
    }
}

/// A sort order: columns with directions, the last one unique (the tie-breaker).
pub struct SortOrder<C> {
    keys: Vec<SortKey<C>>,
    /// Names the order inside cursors, so a cursor made for one order is refused by another.
    fingerprint: String,
    /// The same, shared by every cursor of a page.
    shared_fingerprint: Arc<str>,
}

impl<C: ColumnTrait> SortOrder<C> {
    /// Starts an order; add keys with `then`, ending with a unique column.
    pub fn new() -> Self {
        SortOrder {
            keys: Vec::new(),
            fingerprint: String::new(),
            shared_fingerprint: Arc::from(""),
        }
    }

    /// Adds a NOT NULL sort column.
    pub fn then(self, column: C, order: Order) -> Self {
        let kind = ValueKind::of(&column);
        self.push(column, order, false, kind)
    }

    /// Adds a sort column that may hold NULL.
    pub fn then_nullable(self, column: C, order: Order) -> Self {
        let kind = ValueKind::of(&column);
        self.push(column, order, true, kind)
    }

    /// Adds a NOT NULL uint256 column (stored as text or `numeric`; its cursor values are
    /// decimal digits).
    pub fn then_uint256(self, column: C, order: Order) -> Self {
        self.push(column, order, false, ValueKind::Uint)
    }

    fn push(mut self, column: C, order: Order, nullable: bool, kind: ValueKind) -> Self {
        if !self.fingerprint.is_empty() {
            self.fingerprint.push(',');
        }
        let direction = if matches!(order, Order::Desc) {
            "d"
        } else {
            "a"
        };
        self.fingerprint
            .push_str(&format!("{}:{direction}", column.as_str()));
        self.keys.push(SortKey {
            column,
            order,
            nullable,
            kind,
        });
        self.shared_fingerprint = Arc::from(self.fingerprint.as_str());
        self
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl<C: ColumnTrait> Default for SortOrder<C> {
    fn default() -> Self {
        Self::new()
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
        backend: DbBackend,
        select: Select<E>,
    ) -> Select<E> {
        let mut select = select;
        if let Some(values) = &self.cursor {
            select = select.filter(self.after_cursor(order, backend, values));
        }
        for key in &order.keys {
            // Reading backward reverses every key; NULL stays the largest value.
            let ascending = matches!(key.order, Order::Asc) != self.backward;
            let direction = if ascending { Order::Asc } else { Order::Desc };
            select = if key.nullable {
                let nulls = if ascending {
                    NullOrdering::Last
                } else {
                    NullOrdering::First
                };
                select.order_by_with_nulls(key.column, direction, nulls)
            } else {
                select.order_by(key.column, direction)
            };
        }
        select.limit(self.limit + 1)
    }

    /// Rows strictly after the cursor in reading order.
    fn after_cursor<C: ColumnTrait>(
        &self,
        order: &SortOrder<C>,
        backend: DbBackend,
        values: &[KeyValue],
    ) -> Condition {
        let operands: Vec<Option<SimpleExpr>> = values.iter().map(|v| v.operand(backend)).collect();
        let ascending: Vec<bool> = order
            .keys
            .iter()
            .map(|k| matches!(k.order, Order::Asc) != self.backward)
            .collect();
        // Common case, one direction and no NULL in the cursor: a row-value comparison,
        // which both databases answer from an index range.
        if operands.iter().all(Option::is_some)
            && ascending.iter().all(|a| *a == ascending[0])
            && !order.keys.iter().any(|k| k.nullable && ascending[0])
        {
            let columns = Expr::tuple(order.keys.iter().map(|k| Expr::col(k.column)));
            let cursor = Expr::tuple(operands.into_iter().flatten());
            return Condition::all().add(if ascending[0] {
                ExprTrait::gt(columns, cursor)
            } else {
                ExprTrait::lt(columns, cursor)
            });
        }
        // General case: (k1 after v1) OR (k1 = v1 AND k2 after v2) OR …
        let mut any = Condition::any();
        for (i, key) in order.keys.iter().enumerate() {
            let mut all = Condition::all();
            for (prefix, operand) in order.keys.iter().zip(&operands).take(i) {
                all = all.add(match operand {
                    Some(v) => ExprTrait::eq(Expr::col(prefix.column), v.clone()),
                    None => Expr::col(prefix.column).is_null(),
                });
            }
            let column = Expr::col(key.column);
            let after = match (&operands[i], ascending[i]) {
                // NULL is the largest value: nothing follows it ascending…
                (None, true) => continue,
                // …and every non-NULL value follows it descending.
                (None, false) => column.is_not_null(),
                (Some(v), true) if key.nullable => Condition::any()
                    .add(column.clone().gt(v.clone()))
                    .add(column.is_null())
                    .into(),
                (Some(v), true) => column.gt(v.clone()),
                (Some(v), false) => column.lt(v.clone()),
            };
            any = any.add(all.add(after));
        }
        any
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

/// A row's position in an order. Encoding to the opaque text is deferred until a client asks
/// for the cursor: most pages read only `nodes` and `endCursor`.
#[derive(Debug, Clone)]
pub struct Cursor {
    order: Arc<str>,
    values: Vec<KeyValue>,
}

impl Cursor {
    pub fn new<C: ColumnTrait>(order: &SortOrder<C>, values: Vec<KeyValue>) -> Self {
        Cursor {
            order: order.shared_fingerprint.clone(),
            values,
        }
    }

    /// The opaque text clients pass back as `after` or `before`.
    pub fn encode(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            o: &'a str,
            k: &'a [KeyValue],
        }
        let body = Body {
            o: &self.order,
            k: &self.values,
        };
        // Serializing plain enums and strings to JSON cannot fail.
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).unwrap_or_default())
    }
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
    let fits = |(key, value): (&SortKey<C>, &KeyValue)| match value {
        KeyValue::Null => key.nullable,
        // A uint256 that does not parse has no SQL operand, and would compare as NULL.
        KeyValue::Uint(text) => key.kind.accepts(value) && uint256::parse_decimal(text).is_ok(),
        _ => key.kind.accepts(value),
    };
    if !order.keys.iter().zip(&body.k).all(fits) {
        return Err(PageError::BadCursor(name));
    }
    Ok(Some(body.k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use entity::transfer;

    #[test]
    fn a_cursor_whose_uint256_does_not_parse_is_refused() {
        let order = SortOrder::new()
            .then_uint256(transfer::Column::Value, Order::Desc)
            .then(transfer::Column::Id, Order::Desc);
        let good = Cursor::new(&order, vec![KeyValue::Uint("12".into()), KeyValue::Int(3)]);
        let request = PageRequest::new(&order, Some(5), Some(&good.encode()), None, None);
        assert_eq!(
            request.map(|r| r.cursor),
            Ok(Some(vec![KeyValue::Uint("12".into()), KeyValue::Int(3)]))
        );
        for text in ["", "-1", "x", "1e3", &"9".repeat(79)] {
            let bad = Cursor::new(&order, vec![KeyValue::Uint(text.into()), KeyValue::Int(3)]);
            assert_eq!(
                PageRequest::new(&order, None, Some(&bad.encode()), None, None),
                Err(PageError::BadCursor("after")),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_cursor_value_of_another_kind_than_its_column_is_refused() {
        let order = SortOrder::new()
            .then_nullable(transfer::Column::BlockTimestamp, Order::Desc)
            .then(transfer::Column::TokenAddress, Order::Asc)
            .then(transfer::Column::Id, Order::Desc);
        let time = KeyValue::Time(chrono::DateTime::UNIX_EPOCH);
        let decode = |values: Vec<KeyValue>| {
            let text = Cursor::new(&order, values).encode();
            PageRequest::new(&order, None, Some(&text), None, None).map(|r| r.cursor)
        };
        let good = vec![time.clone(), KeyValue::Bytes(vec![1]), KeyValue::Int(7)];
        assert_eq!(decode(good.clone()), Ok(Some(good)));
        let null_time = vec![KeyValue::Null, KeyValue::Bytes(vec![]), KeyValue::Int(7)];
        assert_eq!(decode(null_time.clone()), Ok(Some(null_time)));
        for bad in [
            vec![KeyValue::Int(1), KeyValue::Bytes(vec![1]), KeyValue::Int(7)],
            vec![
                time.clone(),
                KeyValue::Text("0x01".into()),
                KeyValue::Int(7),
            ],
            vec![
                time.clone(),
                KeyValue::Bytes(vec![1]),
                KeyValue::Text("7".into()),
            ],
            vec![time.clone(), KeyValue::Bytes(vec![1]), KeyValue::Null],
            vec![time, KeyValue::Bytes(vec![1]), KeyValue::Uint("7".into())],
        ] {
            assert_eq!(
                decode(bad.clone()),
                Err(PageError::BadCursor("after")),
                "{bad:?}"
            );
        }
    }
}
