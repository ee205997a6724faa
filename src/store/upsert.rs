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

/// Keeps the last record per key, in first-seen order, so one statement never touches a row
/// twice (PostgreSQL refuses that). The others are counted as superseded into `counts`.
pub fn last_wins<T, K: Hash + Eq>(
    records: &[T],
    key: impl Fn(&T) -> K,
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
