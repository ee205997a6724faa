//! What holds in the store whatever happened to the processes writing it — crashes, kills,
//! outages, concurrent replicas. One definition, used by `tributary check`, the tests and the
//! crash scripts, so the rule each of them checks is the same rule.

use chrono::Utc;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};

use super::leases;

/// One invariant: its name, what it promises, and the query listing the rows that break it.
struct Rule {
    name: &'static str,
    promise: &'static str,
    /// One text column describing each row that breaks the rule; `{now}` stands for the
    /// current time where a rule needs it, `{consumer}` for [`leases::CONSUMER_MARK`].
    rows: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        name: "run_counters_add_up",
        promise: "each run's inserted + updated + unchanged + superseded + rejected = fetched",
        rows: "SELECT 'run ' || id || ' of ' || provider || ': fetched ' || fetched
                    || ', inserted ' || inserted || ', updated ' || updated || ', unchanged '
                    || unchanged || ', superseded ' || superseded || ', rejected ' || rejected
                FROM ingest_runs
                WHERE inserted + updated + unchanged + superseded + rejected <> fetched",
    },
    Rule {
        name: "run_rejections_stored",
        promise: "each run's rejected = its rows in rejected_records",
        rows:
            "SELECT 'run ' || r.id || ' of ' || r.provider || ': rejected ' || r.rejected
                FROM ingest_runs r
                WHERE r.rejected <> (SELECT count(*) FROM rejected_records x WHERE x.run_id = r.id)",
    },
    Rule {
        name: "no_run_left_unfinished",
        promise: "no run is queued or running unless a live process holds its provider's lease \
                  (a kafka consumer's run: its replica's consumer lease)",
        rows: "SELECT 'run ' || r.id || ' of ' || r.provider || ': ' || r.status
                    || ' since ' || r.queued_at || ' by ' || coalesce(r.owner, 'no owner')
                FROM ingest_runs r
                WHERE r.status IN ('queued', 'running')
                  AND NOT EXISTS (SELECT 1 FROM provider_state s
                                  WHERE s.provider = CASE WHEN r.trigger = 'consumer'
                                          THEN r.provider || '{consumer}' || r.owner
                                          ELSE r.provider END
                                    AND s.lease_owner IS NOT NULL
                                    AND s.lease_expires_at >= {now})",
    },
    Rule {
        name: "product_counts_exact",
        promise: "product_counts = SELECT name, count(*) FROM products GROUP BY name",
        rows: "SELECT coalesce(c.name, g.name) || ': counted ' || coalesce(c.count, 0)
                    || ', stored ' || coalesce(g.n, 0)
                FROM product_counts c
                FULL JOIN (SELECT name, count(*) AS n FROM products
                           WHERE name IS NOT NULL GROUP BY name) g ON g.name = c.name
                WHERE c.name IS NULL OR g.name IS NULL OR c.count <> g.n",
    },
];

/// An invariant that does not hold: how many rows break it, and the first few of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static str,
    pub promise: &'static str,
    pub rows: i64,
    pub examples: Vec<String>,
}

/// How many of the rows breaking a rule are described.
const EXAMPLES: usize = 5;

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} rows break \"{}\", such as: {}",
            self.rule,
            self.rows,
            self.promise,
            self.examples.join("; ")
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
        let rows = rule.rows.replace("{consumer}", leases::CONSUMER_MARK);
        let (sql, values) = bind_now(backend, &rows);
        let count = format!("SELECT count(*) FROM ({sql}) AS broken");
        let rows: i64 = db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                count,
                values.clone(),
            ))
            .await?
            .map(|row| row.try_get_by_index(0))
            .transpose()?
            .unwrap_or(0);
        if rows == 0 {
            continue;
        }
        let listed = format!("{sql} LIMIT {EXAMPLES}");
        let examples = db
            .query_all_raw(Statement::from_sql_and_values(backend, listed, values))
            .await?
            .iter()
            .map(|row| row.try_get_by_index::<Option<String>>(0))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        violations.push(Violation {
            rule: rule.name,
            promise: rule.promise,
            rows,
            examples,
        });
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
