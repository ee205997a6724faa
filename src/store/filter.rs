//! Column filters shared by every list query: the store's side of GraphQL's `where` inputs.

use sea_orm::sea_query::extension::postgres::PgFunc;
use sea_orm::sea_query::{Condition, Expr, ExprTrait, LikeExpr, SimpleExpr};
use sea_orm::{ColumnTrait, DbBackend};

use super::keyset::uint256_operand;
use super::nul::storable;

/// Most values one `in` list may hold.
pub const MAX_IN: usize = 1000;

/// Equality filters on a bytes column (addresses, hashes).
#[derive(Debug, Clone, Default)]
pub struct BytesFilter {
    pub eq: Option<Vec<u8>>,
    pub any_of: Option<Vec<Vec<u8>>>,
}

/// Comparisons on an ordered column.
#[derive(Debug, Clone)]
pub struct RangeFilter<T> {
    pub eq: Option<T>,
    pub any_of: Option<Vec<T>>,
    pub gt: Option<T>,
    pub gte: Option<T>,
    pub lt: Option<T>,
    pub lte: Option<T>,
}

impl<T> Default for RangeFilter<T> {
    fn default() -> Self {
        RangeFilter {
            eq: None,
            any_of: None,
            gt: None,
            gte: None,
            lt: None,
            lte: None,
        }
    }
}

/// Text filters.
#[derive(Debug, Clone, Default)]
pub struct TextFilter {
    pub eq: Option<String>,
    pub any_of: Option<Vec<String>>,
    pub starts_with: Option<String>,
    pub contains: Option<String>,
}

impl BytesFilter {
    pub fn condition(&self, column: impl ColumnTrait) -> Condition {
        let mut all = Condition::all();
        if let Some(v) = &self.eq {
            all = all.add(column.eq(v.clone()));
        }
        if let Some(vs) = &self.any_of {
            all = all.add(column.is_in(vs.clone()));
        }
        all
    }
}

impl<T: Clone + Into<sea_orm::Value>> RangeFilter<T> {
    pub fn condition(&self, column: impl ColumnTrait) -> Condition {
        self.condition_with(column, |v| Some(Expr::val(v.clone())))
    }
}

impl<T> RangeFilter<T> {
    /// Builds the condition with `operand` turning each bound into an SQL operand (`None`
    /// makes the filter match nothing: a bound that cannot be represented).
    pub fn condition_with(
        &self,
        column: impl ColumnTrait,
        operand: impl Fn(&T) -> Option<SimpleExpr>,
    ) -> Condition {
        let col = || Expr::col(column);
        let mut all = Condition::all();
        type Compare = fn(SimpleExpr, SimpleExpr) -> SimpleExpr;
        let bounds: [(&Option<T>, Compare); 5] = [
            (&self.eq, |c, o| c.eq(o)),
            (&self.gt, |c, o| c.gt(o)),
            (&self.gte, |c, o| c.gte(o)),
            (&self.lt, |c, o| c.lt(o)),
            (&self.lte, |c, o| c.lte(o)),
        ];
        for (value, compare) in bounds {
            if let Some(v) = value {
                all = all.add(match operand(v) {
                    Some(o) => compare(col(), o),
                    None => Expr::val(false),
                });
            }
        }
        if let Some(vs) = &self.any_of {
            let operands: Option<Vec<SimpleExpr>> = vs.iter().map(&operand).collect();
            all = all.add(match operands {
                Some(list) => col().is_in(list),
                None => Expr::val(false),
            });
        }
        all
    }
}

impl RangeFilter<String> {
    /// For uint256 columns: bounds are decimal strings compared exactly on both databases.
    pub fn uint256_condition(&self, backend: DbBackend, column: impl ColumnTrait) -> Condition {
        self.condition_with(column, |v| uint256_operand(backend, v))
    }
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// `column = value` for a text argument; false for a value no row can hold (a NUL character,
/// see [`super::nul`]): it matches nothing instead of failing.
pub fn text_eq(column: impl ColumnTrait, value: &str) -> SimpleExpr {
    if storable(value) {
        column.eq(value)
    } else {
        Expr::val(false)
    }
}

impl TextFilter {
    pub fn condition(&self, column: impl ColumnTrait) -> Condition {
        let mut all = Condition::all();
        let unmatchable = [&self.eq, &self.starts_with, &self.contains]
            .into_iter()
            .flatten()
            .any(|v| !storable(v));
        if unmatchable {
            return all.add(Expr::val(false));
        }
        if let Some(v) = &self.eq {
            all = all.add(column.eq(v.clone()));
        }
        if let Some(vs) = &self.any_of {
            let storable: Vec<String> = vs.iter().filter(|v| storable(v)).cloned().collect();
            all = all.add(column.is_in(storable));
        }
        // `%` and `_` in the client's text are literal characters, not wildcards.
        if let Some(prefix) = &self.starts_with {
            let pattern = LikeExpr::new(format!("{}%", escape_like(prefix))).escape('\\');
            all = all.add(Expr::col(column).like(pattern));
        }
        if let Some(part) = &self.contains {
            let pattern = LikeExpr::new(format!("%{}%", escape_like(part))).escape('\\');
            all = all.add(Expr::col(column).like(pattern));
        }
        all
    }
}

/// `column IN (values)` that stays fast under PostgreSQL's cached generic plans: there the
/// values go as one array parameter (`column = ANY($1)`), which the index can use together
/// with the other columns of a composite key. A long `IN ($1, …, $1000)` list with a generic
/// plan uses the index for the leading column only and checks every row against the list.
pub fn text_in(backend: DbBackend, column: impl ColumnTrait, values: &[String]) -> SimpleExpr {
    match backend {
        DbBackend::Postgres => {
            let array = super::arrays::texts(values.iter().map(|v| Some(v.as_str())));
            Expr::col(column.as_column_ref()).eq(PgFunc::any(Expr::val(array)))
        }
        _ => column.is_in(values.to_vec()),
    }
}
