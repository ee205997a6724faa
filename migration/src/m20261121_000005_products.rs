//! Products and the name → number-of-products aggregate.
//!
//! `sku` is the natural key. `product_counts` holds one row per name that at least one product
//! has, kept exact by the writer in the same transaction as the products (a count that reaches
//! zero is deleted before the commit). No CHECK on the count: the writer's upsert proposes a
//! negative change as the row to insert, and PostgreSQL checks that row before it turns into an
//! update of the existing one.
//! On PostgreSQL the text keys use the "C" collation: ordering and keyset cursors then compare
//! bytes as SQLite does, and `LIKE 'prefix%'` can use the indexes.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &[&str] = &[
    r#"CREATE TABLE products (
        sku text COLLATE "C" PRIMARY KEY,
        name text COLLATE "C",
        description text,
        provider text NOT NULL,
        updated_at timestamptz NOT NULL
    )"#,
    r#"CREATE TABLE product_counts (
        name text COLLATE "C" PRIMARY KEY,
        count bigint NOT NULL
    )"#,
];

const SQLITE_UP: &[&str] = &[
    r#"CREATE TABLE products (
        sku text PRIMARY KEY,
        name text,
        description text,
        provider text NOT NULL,
        updated_at text NOT NULL
    )"#,
    r#"CREATE TABLE product_counts (
        name text PRIMARY KEY,
        count integer NOT NULL
    )"#,
];

/// The same on both backends. Every index slows imports, so each must serve a query.
const INDEXES: &[&str] = &[
    // products(where: {name}) and orderBy NAME, with the SKU as keyset tie-breaker.
    "CREATE INDEX products_name ON products (name, sku)",
    // products(where: {updatedAt}) — "what changed since" — and orderBy UPDATED_AT.
    "CREATE INDEX products_updated ON products (updated_at, sku)",
    // productCounts(orderBy: COUNT_DESC), the default: the most common names first.
    "CREATE INDEX product_counts_count ON product_counts (count DESC, name)",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let tables = match manager.get_database_backend() {
            DbBackend::Postgres => POSTGRES_UP,
            DbBackend::Sqlite => SQLITE_UP,
            other => {
                return Err(DbErr::Migration(format!("unsupported database {other:?}")));
            }
        };
        for sql in tables.iter().chain(INDEXES) {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP TABLE product_counts").await?;
        db.execute_unprepared("DROP TABLE products").await?;
        Ok(())
    }
}
