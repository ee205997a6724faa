//! First loads: an import into a table that is empty takes the table for its transaction,
//! drops the table's secondary indexes and unique constraints, inserts without conflict
//! handling, and builds them once at the end. Building an index over a finished table is
//! several times cheaper than maintaining it row by row (1,000,000 transfers: 44 s into the
//! indexed table, 14 s to insert and then index), and it is what a hand-written load does.
//!
//! Everything happens in the import's one transaction, so a crash or a failure rolls the drop
//! back with the rows: the table is left as it was, empty and fully indexed, and a rerun starts
//! over. Queries on the table wait until the load commits. PostgreSQL only.

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, SqlErr, Statement};
use sea_orm::{TransactionTrait, Value};

use super::runs;
use super::upsert::UpsertCounts;

/// A table that imports may load this way.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    /// How rows that repeat a key are settled before the unique constraint that the load
    /// dropped is built again; `None` when the key is the primary key, which stays.
    pub repeats: Option<Repeats>,
}

/// Of several rows with one key, the last inserted is kept.
#[derive(Debug, Clone, Copy)]
pub struct Repeats {
    /// The natural key's columns, as its unique constraint lists them.
    pub key: &'static [&'static str],
    /// A column that grows with every insert (a sequence-backed id).
    pub order: &'static str,
}

/// A first load under way: the tables are held, and these statements rebuild what was dropped.
#[derive(Debug)]
pub struct FirstLoad {
    /// Per table, unique constraints first: they are what a repeated key makes fail.
    rebuild: Vec<(Table, Vec<String>)>,
}

/// Takes `tables` for a first load inside `txn` when none has a row, dropping their indexes
/// and unique constraints (primary keys stay). `None` when one has rows: nothing was changed,
/// and the caller should end `txn` to release the locks.
pub async fn begin(
    txn: &DatabaseTransaction,
    tables: &[Table],
) -> Result<Option<FirstLoad>, DbErr> {
    for table in tables {
        if has_rows(txn, table.name).await? {
            return Ok(None);
        }
    }
    // Checked again under the locks: another writer may have inserted meanwhile.
    for table in tables {
        txn.execute_unprepared(&format!(
            "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
            table.name
        ))
        .await?;
        if has_rows(txn, table.name).await? {
            return Ok(None);
        }
    }
    let mut rebuild = Vec::with_capacity(tables.len());
    for &table in tables {
        rebuild.push((table, drop_indexes(txn, table.name).await?));
    }
    Ok(Some(FirstLoad { rebuild }))
}

/// Drops `table`'s indexes and unique constraints but its primary key, returning the
/// statements that build them again, unique constraints first.
async fn drop_indexes(txn: &DatabaseTransaction, table: &str) -> Result<Vec<String>, DbErr> {
    let rows = txn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            r#"SELECT x.indexrelid::regclass::text AS index_name,
                      pg_get_indexdef(x.indexrelid) AS index_def,
                      quote_ident(c.conname) AS constraint_name,
                      pg_get_constraintdef(c.oid) AS constraint_def
               FROM pg_index x
               LEFT JOIN pg_constraint c
                 ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
                AND c.contype IN ('u', 'x')
               WHERE x.indrelid = $1::regclass AND NOT x.indisprimary
               ORDER BY c.conname IS NULL, 1"#,
            [Value::from(table)],
        ))
        .await?;
    let mut rebuild = Vec::with_capacity(rows.len());
    for row in rows {
        let index: String = row.try_get("", "index_name")?;
        let index_def: String = row.try_get("", "index_def")?;
        let constraint: Option<String> = row.try_get("", "constraint_name")?;
        let constraint_def: Option<String> = row.try_get("", "constraint_def")?;
        match (constraint, constraint_def) {
            (Some(name), Some(def)) => {
                txn.execute_unprepared(&format!("ALTER TABLE {table} DROP CONSTRAINT {name}"))
                    .await?;
                rebuild.push(format!("ALTER TABLE {table} ADD CONSTRAINT {name} {def}"));
            }
            _ => {
                txn.execute_unprepared(&format!("DROP INDEX {index}"))
                    .await?;
                rebuild.push(index_def);
            }
        }
    }
    Ok(rebuild)
}

/// Builds what [`begin`] dropped. Rows that repeat a key (from different batches: a batch
/// itself holds each key once) are removed first, keeping the last inserted; they move from
/// the run's `inserted` to its `superseded`, stored and in `counts`.
pub async fn finish(
    txn: &DatabaseTransaction,
    load: FirstLoad,
    run_id: i64,
    counts: &mut UpsertCounts,
) -> Result<(), DbErr> {
    let mut removed = 0;
    for (table, statements) in &load.rebuild {
        removed += finish_table(txn, table, statements).await?;
    }
    if removed > 0 {
        runs::supersede(txn, run_id, removed).await?;
        counts.inserted = counts.inserted.saturating_sub(removed);
        counts.superseded += removed;
    }
    Ok(())
}

async fn finish_table(
    txn: &DatabaseTransaction,
    table: &Table,
    statements: &[String],
) -> Result<u64, DbErr> {
    // Most files repeat no key: try without the search for repeats first.
    let attempt = txn.begin().await?;
    match rebuild(&attempt, statements).await {
        Ok(()) => {
            attempt.commit().await?;
            return Ok(0);
        }
        Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            attempt.rollback().await?;
        }
        Err(error) => return Err(error),
    }
    let Some(Repeats { key, order }) = table.repeats else {
        return Err(DbErr::Custom(format!(
            "{}: a key repeats, and the table has no rule for settling repeats",
            table.name
        )));
    };
    let name = table.name;
    let same_key = key
        .iter()
        .map(|column| format!("t.{column} = d.{column}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let key = key.join(", ");
    let removed = txn
        .execute_unprepared(&format!(
            "DELETE FROM {name} t
             USING (SELECT {key}, max({order}) AS last FROM {name}
                    GROUP BY {key} HAVING count(*) > 1) d
             WHERE {same_key} AND t.{order} < d.last"
        ))
        .await?
        .rows_affected();
    rebuild(txn, statements).await?;
    Ok(removed)
}

async fn rebuild<C: ConnectionTrait>(db: &C, statements: &[String]) -> Result<(), DbErr> {
    for statement in statements {
        db.execute_unprepared(statement).await?;
    }
    Ok(())
}

async fn has_rows(txn: &DatabaseTransaction, table: &str) -> Result<bool, DbErr> {
    let row = txn
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT EXISTS (SELECT 1 FROM {table}) AS has_rows"),
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("EXISTS returned no row".into()))?;
    row.try_get("", "has_rows")
}
