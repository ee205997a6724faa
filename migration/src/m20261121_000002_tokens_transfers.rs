//! ERC-20 tokens and transfers.
//!
//! Exactness: addresses and hashes are bytes; uint256 amounts are `numeric(78,0)` on PostgreSQL
//! and, on SQLite (which has no exact wide number type), text zero-padded to 78 digits, so that
//! text comparison is numeric comparison. The SQL is written per backend because the two
//! differ in exactly those types.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &[&str] = &[
    r#"CREATE TABLE tokens (
        address bytea PRIMARY KEY CHECK (length(address) = 20),
        symbol text,
        name text,
        decimals integer,
        total_supply numeric(78,0),
        block_number bigint,
        block_timestamp timestamptz,
        updated_at timestamptz NOT NULL
    )"#,
    r#"CREATE TABLE transfers (
        id bigserial PRIMARY KEY,
        token_address bytea NOT NULL CHECK (length(token_address) = 20),
        from_address bytea NOT NULL CHECK (length(from_address) = 20),
        to_address bytea NOT NULL CHECK (length(to_address) = 20),
        value numeric(78,0) NOT NULL CHECK (value >= 0),
        transaction_hash bytea NOT NULL CHECK (length(transaction_hash) = 32),
        log_index integer NOT NULL,
        block_number bigint NOT NULL,
        block_timestamp timestamptz,
        CONSTRAINT transfers_natural_key UNIQUE (transaction_hash, log_index)
    )"#,
];

const SQLITE_UP: &[&str] = &[
    r#"CREATE TABLE tokens (
        address blob PRIMARY KEY CHECK (length(address) = 20),
        symbol text,
        name text,
        decimals integer,
        total_supply text CHECK (total_supply IS NULL OR length(total_supply) = 78),
        block_number integer,
        block_timestamp text,
        updated_at text NOT NULL
    )"#,
    r#"CREATE TABLE transfers (
        id integer PRIMARY KEY AUTOINCREMENT,
        token_address blob NOT NULL CHECK (length(token_address) = 20),
        from_address blob NOT NULL CHECK (length(from_address) = 20),
        to_address blob NOT NULL CHECK (length(to_address) = 20),
        value text NOT NULL CHECK (length(value) = 78),
        transaction_hash blob NOT NULL CHECK (length(transaction_hash) = 32),
        log_index integer NOT NULL,
        block_number integer NOT NULL,
        block_timestamp text,
        CONSTRAINT transfers_natural_key UNIQUE (transaction_hash, log_index)
    )"#,
];

/// The same on both backends. Every index slows bulk imports, so each must serve a query.
const INDEXES: &[&str] = &[
    // transfers(where: {token, blockTimestamp}) ordered by time, and Token.transfers: the
    // hottest query. The id makes the keyset (time, id) an index range.
    "CREATE INDEX transfers_token_time ON transfers (token_address, block_timestamp, id)",
    // transfers(where: {from}) and the "from" half of {account}.
    "CREATE INDEX transfers_from_time ON transfers (from_address, block_timestamp, id)",
    // transfers(where: {to}) and the "to" half of {account}.
    "CREATE INDEX transfers_to_time ON transfers (to_address, block_timestamp, id)",
    // Time ranges across all tokens, the default order, and transferVolume buckets.
    "CREATE INDEX transfers_time ON transfers (block_timestamp, id)",
    // tokens(where: {symbol}) look-ups.
    "CREATE INDEX tokens_symbol ON tokens (symbol)",
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
        db.execute_unprepared("DROP TABLE transfers").await?;
        db.execute_unprepared("DROP TABLE tokens").await?;
        Ok(())
    }
}
