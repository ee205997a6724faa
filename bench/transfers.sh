#!/usr/bin/env bash
# Transfers benchmark, run by hand (never by `cargo test`).
#
# 1. Import: `tributary import transfer` of 1,000,000 generated transfers into an empty
#    PostgreSQL database, against the limit measured in the same run: what PostgreSQL does
#    alone for a first load of the same table (`\copy` into a staging table, one INSERT …
#    SELECT into the table without its indexes, then the indexes built). Prints the ratio, our
#    peak memory, and the re-load baseline beside it (`\copy` plus one INSERT … ON CONFLICT
#    into the fully indexed table). Then the same file again (every row unchanged), as a
#    ratio to the first import.
#
# The `transfers` query over the same rows is `bench/query.sh`.
#
# Needs: PostgreSQL reachable at $PGURL (a role that may create databases), python3, psql,
# GNU time, bc. Usage: bench/transfers.sh [ROWS]
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${1:-1000000}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
WORK=${WORK:-/tmp/tributary-bench}
SHARED=${SHARED:-../shared}
BIN=${BIN:-target/release/tributary}

for tool in psql python3 bc /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  echo "==> build"
  cargo build --release --locked --quiet
fi

mkdir -p "$WORK"
CSV="$WORK/data-$ROWS/token_transfers.csv"
if [[ ! -f "$CSV" ]]; then
  echo "==> generate $ROWS transfers"
  python3 "$SHARED/bench/gen_transfers.py" "$WORK/data-$ROWS" "$ROWS"
fi
echo "input: $CSV ($(du -h "$CSV" | cut -f1))"

fresh_db() {
  psql "$PGURL/postgres" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
}

now() { date +%s.%N; }

URL="$PGURL/tributary_bench_import"
# --- the limit ---------------------------------------------------------------------------
# What PostgreSQL does alone for a first load of the same table (made by Tributary's own
# migrations): its indexes and unique constraint dropped, `\copy` of the CSV into a staging
# table, one INSERT … SELECT decoding hex into the unindexed table, then every index and the
# constraint built again, exactly as the migrations defined them.
fresh_db tributary_bench_limit
LIMIT_URL="$PGURL/tributary_bench_limit"
DATABASE_URL=$LIMIT_URL "$BIN" migrate
REBUILD="$WORK/rebuild.sql"
psql "$LIMIT_URL" -At -v ON_ERROR_STOP=1 -c "
  SELECT CASE WHEN c.conname IS NULL THEN pg_get_indexdef(x.indexrelid)
              ELSE 'ALTER TABLE transfers ADD CONSTRAINT ' || quote_ident(c.conname) || ' '
                   || pg_get_constraintdef(c.oid) END || ';'
  FROM pg_index x LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
  WHERE x.indrelid = 'transfers'::regclass AND NOT x.indisprimary" > "$REBUILD"
psql "$LIMIT_URL" -At -v ON_ERROR_STOP=1 -c "
  SELECT CASE WHEN c.conname IS NULL THEN 'DROP INDEX ' || x.indexrelid::regclass::text
              ELSE 'ALTER TABLE transfers DROP CONSTRAINT ' || quote_ident(c.conname) END || ';'
  FROM pg_index x LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
  WHERE x.indrelid = 'transfers'::regclass AND NOT x.indisprimary" | psql "$LIMIT_URL" -q -v ON_ERROR_STOP=1
psql "$LIMIT_URL" -q -v ON_ERROR_STOP=1 -c "CREATE UNLOGGED TABLE staging (token_address text, from_address text, to_address text, value text, transaction_hash text, log_index text, block_number text, block_timestamp text)"
echo "==> the limit: \\copy, INSERT … SELECT into the unindexed table, build the indexes"
t0=$(now)
psql "$LIMIT_URL" -q -v ON_ERROR_STOP=1 -c "\\copy staging FROM '$CSV' WITH (FORMAT csv, HEADER true)"
t1=$(now)
psql "$LIMIT_URL" -q -v ON_ERROR_STOP=1 \
  -c "INSERT INTO transfers (token_address, from_address, to_address, value, transaction_hash, log_index, block_number, block_timestamp)
      SELECT decode(substr(token_address, 3), 'hex'), decode(substr(from_address, 3), 'hex'),
             decode(substr(to_address, 3), 'hex'), value::numeric,
             decode(substr(transaction_hash, 3), 'hex'), log_index::int, block_number::bigint,
             to_timestamp(block_timestamp::bigint)
      FROM staging"
t2=$(now)
psql "$LIMIT_URL" -q -v ON_ERROR_STOP=1 -f "$REBUILD"
t3=$(now)
limit=$(echo "$t3 - $t0" | bc -l)
printf 'limit: %.2f s (copy %.2f s, insert %.2f s, indexes %.2f s)\n' "$limit" \
  "$(echo "$t1 - $t0" | bc -l)" "$(echo "$t2 - $t1" | bc -l)" "$(echo "$t3 - $t2" | bc -l)"
psql "$PGURL/postgres" -q -c "DROP DATABASE tributary_bench_limit"

# --- the re-load baseline -----------------------------------------------------------------
# An upsert into the fully indexed table: the right yardstick for loading into a table that
# already has rows, not for a first load.
fresh_db tributary_bench_baseline
BASE_URL="$PGURL/tributary_bench_baseline"
DATABASE_URL=$BASE_URL "$BIN" migrate
psql "$BASE_URL" -q -v ON_ERROR_STOP=1 -c "CREATE TABLE staging (token_address text, from_address text, to_address text, value text, transaction_hash text, log_index text, block_number text, block_timestamp text)"
echo "==> re-load baseline: psql \\copy + INSERT … ON CONFLICT into the indexed table"
t0=$(now)
psql "$BASE_URL" -q -v ON_ERROR_STOP=1 \
  -c "\\copy staging FROM '$CSV' WITH (FORMAT csv, HEADER true)" \
  -c "INSERT INTO transfers (token_address, from_address, to_address, value, transaction_hash, log_index, block_number, block_timestamp)
      SELECT decode(substr(token_address, 3), 'hex'), decode(substr(from_address, 3), 'hex'),
             decode(substr(to_address, 3), 'hex'), value::numeric,
             decode(substr(transaction_hash, 3), 'hex'), log_index::int, block_number::bigint,
             to_timestamp(block_timestamp::bigint)
      FROM staging
      ON CONFLICT (transaction_hash, log_index) DO UPDATE SET
        token_address = EXCLUDED.token_address, from_address = EXCLUDED.from_address,
        to_address = EXCLUDED.to_address, value = EXCLUDED.value,
        block_number = EXCLUDED.block_number, block_timestamp = EXCLUDED.block_timestamp"
t1=$(now)
baseline=$(echo "$t1 - $t0" | bc -l)
printf 're-load baseline: %.2f s\n' "$baseline"
psql "$PGURL/postgres" -q -c "DROP DATABASE tributary_bench_baseline"

# --- ours -------------------------------------------------------------------------------
fresh_db tributary_bench_import
DATABASE_URL=$URL "$BIN" migrate
echo "==> tributary import transfer"
t0=$(now)
DATABASE_URL=$URL /usr/bin/time -f '%M' -o "$WORK/rss" "$BIN" import transfer "$CSV"
t1=$(now)
ours=$(echo "$t1 - $t0" | bc -l)
rss_mb=$(echo "$(cat "$WORK/rss") / 1024" | bc -l)
echo "==> the same file again"
t0=$(now)
DATABASE_URL=$URL "$BIN" import transfer "$CSV"
t1=$(now)
again=$(echo "$t1 - $t0" | bc -l)

echo
echo "==> results ($ROWS transfers)"
printf 'first import:  %.2f s  limit %.2f s  ratio %.2fx  (target <= 1.3x; %.2fx of the re-load baseline, %.2f s)\n' \
    "$ours" "$limit" "$(echo "$ours / $limit" | bc -l)" "$(echo "$ours / $baseline" | bc -l)" "$baseline"
printf 'peak memory:   %.0f MB (target < 200 MB)\n' "$rss_mb"
printf 'second import: %.2f s (all rows unchanged)  %.2fx of the first import (target <= 0.5x)\n' \
  "$again" "$(echo "$again / $ours" | bc -l)"
