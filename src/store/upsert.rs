//! What a batch upsert did, and helpers the per-entity bulk writers share.

use std::collections::HashMap;
use std::hash::Hash;

use sea_orm::DbBackend;

/// Outcome counts of writing records: what happened to stored rows (`inserted`, `updated`,
/// `unchanged`), and the records a later record with the same key in the same input replaced
/// before anything was written (`superseded`). The four add up to the records written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertCounts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub superseded: u64,
}

impl UpsertCounts {
    pub fn add(&mut self, other: UpsertCounts) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.superseded += other.superseded;
    }
}

/// What an upsert did, from the rows it was given, how many of their keys were stored before
/// it, and how many rows it wrote. SQLite's one writer makes a count taken just before the
/// statement, in the same transaction, exact; the arithmetic saturates all the same.
pub fn counted(rows: u64, existing: u64, changed: u64) -> UpsertCounts {
    let inserted = rows.saturating_sub(existing);
    let updated = changed.saturating_sub(inserted);
    UpsertCounts {
        inserted,
        updated,
        unchanged: existing.saturating_sub(updated),
        superseded: 0,
    }
}

/// PostgreSQL's count of an upsert, exact whatever else writes at the same time: the upsert
/// is the CTE `written`, ending in `RETURNING (xmax = 0) AS inserted` (a fresh row has no
/// deleting transaction), and `rows` records went in.
pub async fn postgres_counted<C: sea_orm::ConnectionTrait>(
    db: &C,
    with_written: String,
    values: Vec<sea_orm::Value>,
    rows: u64,
) -> Result<UpsertCounts, sea_orm::DbErr> {
    let sql = format!(
        "{with_written}
         SELECT count(*) FILTER (WHERE inserted) AS inserted,
                count(*) FILTER (WHERE NOT inserted) AS updated
         FROM written"
    );
    let row = db
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?
        .ok_or_else(|| sea_orm::DbErr::RecordNotFound("upsert returned no counts".into()))?;
    let inserted: i64 = row.try_get("", "inserted")?;
    let updated: i64 = row.try_get("", "updated")?;
    let (inserted, updated) = (inserted as u64, updated as u64);
    Ok(UpsertCounts {
        inserted,
        updated,
        unchanged: rows.saturating_sub(inserted + updated),
        superseded: 0,
    })
}

/// Keeps the last record per key, in first-seen order, so one statement never touches a row
/// twice (PostgreSQL refuses that). The others are counted as superseded into `counts`.
pub fn last_wins<'a, T, K: Hash + Eq>(
    records: &'a [T],
    key: impl Fn(&'a T) -> K,
    counts: &mut UpsertCounts,
) -> Vec<usize> {
    let mut position: HashMap<K, usize> = HashMap::with_capacity(records.len());
    let mut kept: Vec<usize> = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        match position.get(&key(record)) {
            Some(&slot) => {
                counts.superseded += 1;
                kept[slot] = i;
            }
            None => {
                position.insert(key(record), kept.len());
                kept.push(i);
            }
        }
    }
    kept
}

/// `($1, $2, …), ($n, …)` (PostgreSQL) or `(?, ?, …), …` (SQLite) for `rows` × `columns`.
pub fn values_placeholders(backend: DbBackend, rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            match backend {
                DbBackend::Postgres => {
                    sql.push('$');
                    sql.push_str(&(row * columns + column + 1).to_string());
                }
                _ => sql.push('?'),
            }
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_duplicate_wins_and_is_counted() {
        let records = [("a", 1), ("b", 1), ("a", 2), ("b", 1), ("c", 1)];
        let mut counts = UpsertCounts::default();
        let kept = last_wins(&records, |r| r.0, &mut counts);
        assert_eq!(kept, vec![2, 3, 4]);
        assert_eq!(
            counts,
            UpsertCounts {
                superseded: 2,
                ..UpsertCounts::default()
            }
        );
    }

    #[test]
    fn placeholders_per_backend() {
        assert_eq!(
            values_placeholders(DbBackend::Postgres, 2, 2),
            "($1, $2), ($3, $4)"
        );
        assert_eq!(values_placeholders(DbBackend::Sqlite, 2, 1), "(?), (?)");
    }
}
