//! What holds in the store whatever happened to the processes writing it — crashes, kills,
//! outages, concurrent replicas. One definition, used by `tributary check`, the tests and the
//! crash scripts, so the rule each of them checks is the same rule.

use chrono::Utc;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};

/// One invariant: its name, what it promises, and the query counting the rows that break it.
struct Rule {
    name: &'static str,
    promise: &'static str,
    /// `SELECT count(*) …` with `{now}` for the current time where a rule needs it.
    count: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        name: "run_counters_add_up",
        promise: "each run's inserted + updated + unchanged + superseded + rejected = fetched",
        count: "SELECT count(*) FROM ingest_runs
                WHERE inserted + updated + unchanged + superseded + rejected <> fetched",
    },
    Rule {
        name: "run_rejections_stored",
        promise: "each run's rejected = its rows in rejected_records",
        count:
            "SELECT count(*) FROM ingest_runs r
                WHERE r.rejected <> (SELECT count(*) FROM rejected_records x WHERE x.run_id = r.id)",
    },
    Rule {
        name: "no_run_left_unfinished",
        promise: "no run is queued or running unless a live process holds its provider's lease",
        count: "SELECT count(*) FROM ingest_runs r
                WHERE r.status IN ('queued', 'running')
                  AND NOT EXISTS (SELECT 1 FROM provider_state s
                                  WHERE s.provider = r.provider AND s.lease_owner IS NOT NULL
                                    AND s.lease_expires_at >= {now})",
    },
    Rule {
        name: "product_counts_exact",
        promise: "product_counts = SELECT name, count(*) FROM products GROUP BY name",
        count: "SELECT count(*) FROM product_counts c
                FULL JOIN (SELECT name, count(*) AS n FROM products
                           WHERE name IS NOT NULL GROUP BY name) g ON g.name = c.name
                WHERE c.name IS NULL OR g.name IS NULL OR c.count <> g.n",
    },
];

/// An invariant that does not hold, with how many rows break it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static str,
    pub promise: &'static str,
    pub rows: i64,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} rows break \"{}\"",
            self.rule, self.rows, self.promise
        )
    }
}

/// The names and promises of every invariant, in the order [`check`] reports them.
pub fn rules() -> impl Iterator<Item = (&'static str, &'static str)> {
    RULES.iter().map(|r| (r.name, r.promise))
}

/// Every invariant that does not hold now; empty when the store is consistent.
pub async fn check<C: ConnectionTrait>(db: &C) -> Result<Vec<Violation>, DbErr> {
    let backend = db.get_database_backend();
    let mut violations = Vec::new();
    for rule in RULES {
        let (sql, values) = bind_now(backend, rule.count);
        let rows: i64 = db
            .query_one_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?
            .map(|row| row.try_get_by_index(0))
            .transpose()?
            .unwrap_or(0);
        if rows != 0 {
            violations.push(Violation {
                rule: rule.name,
                promise: rule.promise,
                rows,
            });
        }
    }
    Ok(violations)
}

/// `{now}` as the backend's placeholder, bound to the current time.
fn bind_now(backend: DbBackend, sql: &str) -> (String, Vec<Value>) {
    if !sql.contains("{now}") {
        return (sql.to_string(), Vec::new());
    }
    let placeholder = match backend {
        DbBackend::Postgres => "$1",
        _ => "?",
    };
    (
        sql.replace("{now}", placeholder),
        vec![Value::from(Utc::now())],
    )
}
