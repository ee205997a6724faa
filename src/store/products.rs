//! Products and their per-name counts: the bulk writer every ingestion path uses, and the read
//! queries.
//!
//! `product_counts` is kept exact in the writer's own transaction: each batch adds one for the
//! name of every product it inserts or renames and takes one from the name a renamed product
//! had. Only the names a batch touches are written, so the cost follows the batch, not the
//! table (a full `GROUP BY` per batch measured far slower; see bench/README.md).
//!
//! A bulk import that writes many batches in one transaction defers the counts instead
//! ([`Counts::Deferred`]): each batch appends its changes to a temporary table, and
//! [`apply_deferred_counts`] sums them into `product_counts` once before the commit. A name the
//! import touches is then written once, not once per batch (500,000 rows: 217,000 count rows
//! written instead of 450,000 updates).
//!
//! A first load (an import into an empty `products`, see `store::first_load`) moves no counts
//! at all ([`Counts::Recount`]) and counts every name once at the end ([`count_all_names`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{product, product_count};
use sea_orm::sea_query::{Condition, Order};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, Statement,
    Value,
};

use super::arrays;
use super::filter::{RangeFilter, TextFilter};
use super::first_load;
use super::keyset::{KeyValue, Page, PageRequest, SortOrder};
use super::upsert::{UpsertCounts, last_wins, values_placeholders};
use crate::entities::product::ProductRecord;

/// Rows per PostgreSQL statement: one import batch (see `import::batch_size`).
const POSTGRES_CHUNK: usize = 20_000;
/// Rows per SQLite statement: 5 parameters each stays under SQLite's 32,766 parameters.
const SQLITE_CHUNK: usize = 2_000;

/// Any constant works: it only has to be the same for every writer of products.
const WRITER_LOCK: i64 = 0x7072_6f64_7563_7473; // "products"

/// How a write moves `product_counts` along.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counts {
    /// In the same statement: exact when the caller commits.
    Immediate,
    /// Into a temporary table of the caller's transaction (PostgreSQL) that [`defer_counts`]
    /// created, summed into `product_counts` by [`apply_deferred_counts`], which the caller
    /// must run before it commits. SQLite writes them at once whatever is asked.
    Deferred,
    /// Not moved: the caller counts every name once before it commits ([`count_all_names`]),
    /// as a first load does. PostgreSQL only.
    Recount,
}

/// The tables as a first load takes them: the SKU is the primary key, which stays, so no SKU
/// can repeat; `product_counts` is filled once, by [`count_all_names`].
pub const FIRST_LOAD: &[first_load::Table] = &[
    first_load::Table {
        name: "products",
        repeats: None,
    },
    first_load::Table {
        name: "product_counts",
        repeats: None,
    },
];

/// Fills `product_counts`, which must be empty, from every product: the end of a first load,
/// whose writes used [`Counts::Recount`].
pub async fn count_all_names<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    db.execute_unprepared(
        "INSERT INTO product_counts (name, count)
         SELECT name, count(*) FROM products WHERE name IS NOT NULL GROUP BY name",
    )
    .await?;
    Ok(())
}

/// Starts collecting [`Counts::Deferred`] changes in the caller's transaction: a temporary
/// table of its own, dropped at its end whatever happens. Nothing on SQLite.
pub async fn defer_counts<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_unprepared(
            "CREATE TEMPORARY TABLE product_count_changes (name text NOT NULL, d bigint NOT NULL) \
             ON COMMIT DROP",
        )
        .await?;
    }
    Ok(())
}

/// Inserts new products and replaces changed ones, by SKU (the last record with a SKU wins),
/// and moves `product_counts` along in the same transaction. Runs inside whatever transaction
/// `db` is; the caller commits.
pub async fn upsert<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    records: &[ProductRecord],
) -> Result<UpsertCounts, DbErr> {
    upsert_with(db, provider, records, Counts::Immediate).await
}

/// [`upsert`], with the count changes applied as `counts` says.
pub async fn upsert_with<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    records: &[ProductRecord],
    counts_mode: Counts,
) -> Result<UpsertCounts, DbErr> {
    let mut counts = UpsertCounts::default();
    let mut kept = last_wins(records, |r| r.sku.as_str(), &mut counts);
    // In key order, the primary-key index is written page by page rather than all over
    // (measured: about a tenth off a 500,000-row import).
    kept.sort_unstable_by(|&a, &b| records[a].sku.cmp(&records[b].sku));
    if kept.is_empty() {
        return Ok(counts);
    }
    let backend = db.get_database_backend();
    if backend == DbBackend::Postgres {
        // Writers take turns until commit. Each batch reads the names it replaces; a writer
        // committing the same SKU in between would make that read stale and the counts drift.
        // (SQLite writers are serialized by the database already.)
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            "SELECT pg_advisory_xact_lock($1)",
            [Value::from(WRITER_LOCK)],
        ))
        .await?;
    }
    let now = Utc::now();
    let chunk = match backend {
        DbBackend::Postgres => POSTGRES_CHUNK,
        _ => SQLITE_CHUNK,
    };
    for indices in kept.chunks(chunk) {
        let rows: Vec<&ProductRecord> = indices.iter().map(|&i| &records[i]).collect();
        let written = match backend {
            DbBackend::Postgres => upsert_postgres(db, provider, now, &rows, counts_mode).await?,
            _ => upsert_sqlite(db, provider, now, &rows).await?,
        };
        counts.add(written);
    }
    Ok(counts)
}

/// Sums the count changes a transaction's [`Counts::Deferred`] writes collected into
/// `product_counts`, and deletes the names no product carries any more. Does nothing when
/// there are none (or on SQLite, which never defers).
pub async fn apply_deferred_counts<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    // Two statements: a row updated by a statement cannot also be deleted by it.
    let emptied = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "WITH sums AS (
                 SELECT name, sum(d)::bigint AS d FROM product_count_changes
                 GROUP BY name HAVING sum(d) <> 0
             ),
             counted AS (
                 INSERT INTO product_counts AS c (name, count) SELECT name, d FROM sums
                 ON CONFLICT (name) DO UPDATE SET count = c.count + EXCLUDED.count
                 RETURNING c.name, c.count
             )
             SELECT array_agg(name) AS emptied FROM counted WHERE count = 0",
        ))
        .await?
        .map(|row| row.try_get::<Option<Vec<String>>>("", "emptied"))
        .transpose()?
        .flatten();
    delete_emptied(db, emptied).await?;
    db.execute_unprepared("DROP TABLE product_count_changes")
        .await?;
    Ok(())
}

/// Deletes the counts an upsert took to zero (PostgreSQL): a name no product carries any more.
async fn delete_emptied<C: ConnectionTrait>(
    db: &C,
    names: Option<Vec<String>>,
) -> Result<(), DbErr> {
    if let Some(names) = names {
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "DELETE FROM product_counts WHERE name = ANY($1) AND count = 0",
            [Value::from(names)],
        ))
        .await?;
    }
    Ok(())
}

/// One statement: the old names of the SKUs in the batch, the upsert, and the count changes it
/// implies, from one snapshot. Counts that reach zero are deleted by a second statement.
async fn upsert_postgres<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    now: DateTime<Utc>,
    rows: &[&ProductRecord],
    counts_mode: Counts,
) -> Result<UpsertCounts, DbErr> {
    // Both forms share the input, the old names, the upsert and the count changes; they differ
    // in where the changes go.
    const HEAD: &str = r#"
        WITH input AS (
            SELECT sku, NULLIF(name, '') AS name, NULLIF(description, '') AS description
            FROM UNNEST($1::text[], $2::text[], $3::text[]) AS i(sku, name, description)
        ),
        old AS (
            SELECT p.sku, p.name FROM products p JOIN input USING (sku)
        ),
        written AS (
            INSERT INTO products AS p (sku, name, description, provider, updated_at)
            SELECT sku, name, description, $4, $5 FROM input
            ON CONFLICT (sku) DO UPDATE SET
                name = EXCLUDED.name,
                description = EXCLUDED.description,
                provider = EXCLUDED.provider,
                updated_at = EXCLUDED.updated_at
            WHERE (p.name, p.description) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.description)
            RETURNING p.sku, p.name, (xmax = 0) AS inserted
        ),
        delta AS (
            SELECT name, 1 AS d FROM written WHERE name IS NOT NULL
            UNION ALL
            SELECT o.name, -1 FROM written w JOIN old o USING (sku)
            WHERE NOT w.inserted AND o.name IS NOT NULL
        ),"#;
    const IMMEDIATE: &str = r#"
        sums AS (
            SELECT name, sum(d)::bigint AS d FROM delta GROUP BY name HAVING sum(d) <> 0
        ),
        counted AS (
            INSERT INTO product_counts AS c (name, count) SELECT name, d FROM sums
            ON CONFLICT (name) DO UPDATE SET count = c.count + EXCLUDED.count
            RETURNING c.name, c.count
        )
        SELECT (SELECT count(*) FROM written WHERE inserted) AS inserted,
               (SELECT count(*) FROM written WHERE NOT inserted) AS updated,
               (SELECT array_agg(name) FROM counted WHERE count = 0) AS emptied"#;
    const DEFERRED: &str = r#"
        kept AS (
            INSERT INTO product_count_changes (name, d) SELECT name, d FROM delta
        )
        SELECT (SELECT count(*) FROM written WHERE inserted) AS inserted,
               (SELECT count(*) FROM written WHERE NOT inserted) AS updated,
               NULL::text[] AS emptied"#;
    // `delta` unread: PostgreSQL then reads no old names at all.
    const RECOUNT: &str = r#"
        counted AS (SELECT inserted FROM written)
        SELECT (SELECT count(*) FROM counted WHERE inserted) AS inserted,
               (SELECT count(*) FROM counted WHERE NOT inserted) AS updated,
               NULL::text[] AS emptied"#;
    let sql = match counts_mode {
        Counts::Immediate => format!("{HEAD}{IMMEDIATE}"),
        Counts::Deferred => format!("{HEAD}{DEFERRED}"),
        Counts::Recount => format!("{HEAD}{RECOUNT}"),
    };
    // An empty string stands for "none" (`arrays`), which is exact because a blank name or
    // description is never stored (see `ProductRecord`).
    let values = vec![
        arrays::texts(rows.iter().map(|r| Some(r.sku.as_str()))),
        arrays::texts(rows.iter().map(|r| r.name.as_deref())),
        arrays::texts(rows.iter().map(|r| r.description.as_deref())),
        Value::from(provider),
        Value::from(now),
    ];
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("product upsert returned no counts".into()))?;
    let inserted: i64 = row.try_get("", "inserted")?;
    let updated: i64 = row.try_get("", "updated")?;
    let emptied: Option<Vec<String>> = row.try_get("", "emptied")?;
    delete_emptied(db, emptied).await?;
    Ok(UpsertCounts {
        inserted: inserted as u64,
        updated: updated as u64,
        unchanged: rows.len() as u64 - inserted as u64 - updated as u64,
        superseded: 0,
    })
}

/// SQLite: read the stored names and descriptions first, work out the outcome and the count
/// changes here, then write products and counts.
async fn upsert_sqlite<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    now: DateTime<Utc>,
    rows: &[&ProductRecord],
) -> Result<UpsertCounts, DbErr> {
    let skus: Vec<Value> = rows.iter().map(|r| Value::from(r.sku.clone())).collect();
    let existing_sql = format!(
        "SELECT sku, name, description FROM products WHERE sku IN ({})",
        vec!["?"; rows.len()].join(", ")
    );
    let mut stored: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
    for row in db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            existing_sql,
            skus,
        ))
        .await?
    {
        let sku: String = row.try_get("", "sku")?;
        let name: Option<String> = row.try_get("", "name")?;
        let description: Option<String> = row.try_get("", "description")?;
        stored.insert(sku, (name, description));
    }

    let mut counts = UpsertCounts::default();
    let mut delta: HashMap<&str, i64> = HashMap::new();
    let mut changed: Vec<&ProductRecord> = Vec::with_capacity(rows.len());
    for r in rows {
        match stored.get(&r.sku) {
            Some((name, description)) if *name == r.name && *description == r.description => {
                counts.unchanged += 1;
                continue;
            }
            Some((name, _)) => {
                counts.updated += 1;
                if let Some(old) = name {
                    *delta.entry(old.as_str()).or_default() -= 1;
                }
            }
            None => counts.inserted += 1,
        }
        if let Some(new) = &r.name {
            *delta.entry(new.as_str()).or_default() += 1;
        }
        changed.push(r);
    }
    if changed.is_empty() {
        return Ok(counts);
    }

    let sql = format!(
        "INSERT INTO products (sku, name, description, provider, updated_at) VALUES {}
         ON CONFLICT (sku) DO UPDATE SET name = excluded.name,
            description = excluded.description, provider = excluded.provider,
            updated_at = excluded.updated_at",
        values_placeholders(DbBackend::Sqlite, changed.len(), 5)
    );
    let mut values = Vec::with_capacity(changed.len() * 5);
    for r in &changed {
        values.extend([
            Value::from(r.sku.clone()),
            Value::from(r.name.clone()),
            Value::from(r.description.clone()),
            Value::from(provider),
            Value::from(now),
        ]);
    }
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        sql,
        values,
    ))
    .await?;

    let delta: Vec<(&str, i64)> = delta.into_iter().filter(|(_, d)| *d != 0).collect();
    for part in delta.chunks(SQLITE_CHUNK) {
        let sql = format!(
            "INSERT INTO product_counts (name, count) VALUES {}
             ON CONFLICT (name) DO UPDATE SET count = product_counts.count + excluded.count",
            values_placeholders(DbBackend::Sqlite, part.len(), 2)
        );
        let values: Vec<Value> = part
            .iter()
            .flat_map(|(name, d)| [Value::from(*name), Value::from(*d)])
            .collect();
        db.execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            sql,
            values,
        ))
        .await?;
        let emptied: Vec<Value> = part
            .iter()
            .filter(|(_, d)| *d < 0)
            .map(|(name, _)| Value::from(*name))
            .collect();
        if !emptied.is_empty() {
            let sql = format!(
                "DELETE FROM product_counts WHERE count = 0 AND name IN ({})",
                vec!["?"; emptied.len()].join(", ")
            );
            db.execute_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                sql,
                emptied,
            ))
            .await?;
        }
    }
    Ok(counts)
}

pub async fn get(db: &DatabaseConnection, sku: &str) -> Result<Option<product::Model>, DbErr> {
    if !super::nul::storable(sku) {
        return Ok(None);
    }
    product::Entity::find_by_id(sku.to_string()).one(db).await
}

/// What `products(where: …)` may filter on.
#[derive(Debug, Clone, Default)]
pub struct ProductFilter {
    pub sku: TextFilter,
    pub name: TextFilter,
    pub updated_at: RangeFilter<DateTime<Utc>>,
}

impl ProductFilter {
    fn condition(&self) -> Condition {
        use product::Column as C;
        Condition::all()
            .add(self.sku.condition(C::Sku))
            .add(self.name.condition(C::Name))
            .add(self.updated_at.condition(C::UpdatedAt))
    }
}

/// Fields a product list can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductSort {
    Sku,
    Name,
    UpdatedAt,
}

/// The keyset order for `sort` (default: by SKU), ending with the SKU as tie-breaker.
pub fn order(sort: &[(ProductSort, Order)]) -> SortOrder<product::Column> {
    use product::Column as C;
    let mut order = SortOrder::new();
    for (field, direction) in sort {
        order = match field {
            ProductSort::Sku => order.then(C::Sku, direction.clone()),
            ProductSort::Name => order.then_nullable(C::Name, direction.clone()),
            ProductSort::UpdatedAt => order.then(C::UpdatedAt, direction.clone()),
        };
    }
    let last = sort.last().map(|(_, d)| d.clone()).unwrap_or(Order::Asc);
    order.then(C::Sku, last)
}

/// A product's sort values for `sort`, matching `order(sort)`.
pub fn cursor_values(sort: &[(ProductSort, Order)], p: &product::Model) -> Vec<KeyValue> {
    let mut values: Vec<KeyValue> = sort
        .iter()
        .map(|(field, _)| match field {
            ProductSort::Sku => KeyValue::Text(p.sku.clone()),
            ProductSort::Name => p.name.clone().map_or(KeyValue::Null, KeyValue::Text),
            ProductSort::UpdatedAt => KeyValue::Time(p.updated_at),
        })
        .collect();
    values.push(KeyValue::Text(p.sku.clone()));
    values
}

pub async fn list(
    db: &DatabaseConnection,
    filter: &ProductFilter,
    sort: &[(ProductSort, Order)],
    page: &PageRequest,
) -> Result<Page<product::Model>, DbErr> {
    let backend = db.get_database_backend();
    let select = product::Entity::find().filter(filter.condition());
    let rows = page.apply(&order(sort), backend, select).all(db).await?;
    Ok(page.finish(rows))
}

/// What `productCounts(where: …)` may filter on.
#[derive(Debug, Clone, Default)]
pub struct CountFilter {
    pub name: TextFilter,
    pub count: RangeFilter<i64>,
}

/// How `productCounts` is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CountSort {
    /// The most common names first; names in order within one count.
    #[default]
    CountDesc,
    Name,
}

pub fn count_order(sort: CountSort) -> SortOrder<product_count::Column> {
    use product_count::Column as C;
    match sort {
        CountSort::CountDesc => SortOrder::new()
            .then(C::Count, Order::Desc)
            .then(C::Name, Order::Asc),
        CountSort::Name => SortOrder::new().then(C::Name, Order::Asc),
    }
}

pub fn count_cursor_values(sort: CountSort, c: &product_count::Model) -> Vec<KeyValue> {
    match sort {
        CountSort::CountDesc => vec![KeyValue::Int(c.count), KeyValue::Text(c.name.clone())],
        CountSort::Name => vec![KeyValue::Text(c.name.clone())],
    }
}

pub async fn list_counts(
    db: &DatabaseConnection,
    filter: &CountFilter,
    sort: CountSort,
    page: &PageRequest,
) -> Result<Page<product_count::Model>, DbErr> {
    use product_count::Column as C;
    let backend = db.get_database_backend();
    let select = product_count::Entity::find().filter(
        Condition::all()
            .add(filter.name.condition(C::Name))
            .add(filter.count.condition(C::Count)),
    );
    let rows = page
        .apply(&count_order(sort), backend, select)
        .all(db)
        .await?;
    Ok(page.finish(rows))
}
