#!/usr/bin/env bash
# Products benchmark, run by hand (never by `cargo test`).
#
# `tributary import product` of ROWS generated products (default 500,000: 466,693 SKUs, 222,024
# names, CRLF, quoted multi-line descriptions; ../shared/bench/gen_products.py) into an empty
# PostgreSQL database, products and product_counts, against the limit measured in the same run
# on identical tables (created by Tributary's own migrations): `psql \copy` into a staging
# table, DISTINCT ON (sku) into products and one GROUP BY into product_counts, with the
# secondary indexes built after. Beside it, the re-load baseline: the same with INSERT … ON
# CONFLICT into the indexed tables. Prints the ratios, our peak memory, a second import of the
# same file, and checks that all three databases end with the same products and counts.
#
# Needs: PostgreSQL reachable at $PGURL (a role that may create databases), python3, psql,
# GNU time, bc. Usage: bench/products.sh [ROWS]
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${1:-500000}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
WORK=${WORK:-/tmp/tributary-bench}
SHARED=${SHARED:-../shared}
BIN=${BIN:-target/release/tributary}

for tool in psql python3 /usr/bin/time bc; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  echo "==> build"
  cargo build --release --locked --quiet
fi

mkdir -p "$WORK"
CSV="$WORK/products-$ROWS.csv"
if [[ ! -f "$CSV" ]]; then
  echo "==> generate $ROWS products"
  python3 "$SHARED/bench/gen_products.py" "$ROWS" > "$CSV"
fi
echo "input: $CSV ($(du -h "$CSV" | cut -f1))"

fresh_db() {
  psql "$PGURL/postgres" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
}
now() { date +%s.%N; }
# Products and counts as one fingerprint each, to compare the two databases.
fingerprint() {
  psql "$1" -At -c "SELECT md5(string_agg(sku || '|' || coalesce(name, '') || '|' || coalesce(description, ''), E'\n' ORDER BY sku)) FROM products" \
                -c "SELECT md5(string_agg(name || '|' || count, E'\n' ORDER BY name)) FROM product_counts"
}

# The CSV into $1's staging table, each SKU's last row into products (with $2 as the
# conflict clause), one GROUP BY into product_counts; further psql arguments run after.
load_by_hand() {
  local url=$1 conflict=$2
  shift 2
  psql "$url" -q -v ON_ERROR_STOP=1 \
    -c "\\copy staging (name, sku, description) FROM '$CSV' WITH (FORMAT csv, HEADER true)" \
    -c "INSERT INTO products (sku, name, description, provider, updated_at)
        SELECT DISTINCT ON (sku) sku, NULLIF(name, ''), NULLIF(description, ''), 'by hand', now()
        FROM staging ORDER BY sku, line DESC $conflict" \
    -c "INSERT INTO product_counts (name, count)
        SELECT name, count(*) FROM products WHERE name IS NOT NULL GROUP BY name" \
    "$@"
}

# --- the limit ---------------------------------------------------------------------------
# What PostgreSQL does alone for a first load of the same tables (made by Tributary's own
# migrations): their secondary indexes dropped (the SKU, the primary key, stays), `\copy` into
# a staging table, DISTINCT ON (sku) — the last row of a SKU — into products, one GROUP BY into
# product_counts, then the indexes built again exactly as the migrations defined them.
fresh_db tributary_bench_products_limit
LIMIT_URL="$PGURL/tributary_bench_products_limit"
DATABASE_URL=$LIMIT_URL "$BIN" migrate
INDEXES="SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS def FROM pg_index
         WHERE indrelid IN ('products'::regclass, 'product_counts'::regclass) AND NOT indisprimary"
psql "$LIMIT_URL" -At -v ON_ERROR_STOP=1 -c "SELECT def || ';' FROM ($INDEXES) i" > "$WORK/products-rebuild.sql"
psql "$LIMIT_URL" -At -v ON_ERROR_STOP=1 -c "SELECT 'DROP INDEX ' || name || ';' FROM ($INDEXES) i" \
  | psql "$LIMIT_URL" -q -v ON_ERROR_STOP=1
psql "$LIMIT_URL" -q -v ON_ERROR_STOP=1 -c "CREATE UNLOGGED TABLE staging (line bigserial, name text, sku text, description text)"
echo "==> the limit: \\copy + DISTINCT ON into products + GROUP BY into counts + indexes"
t0=$(now)
load_by_hand "$LIMIT_URL" "" -f "$WORK/products-rebuild.sql"
t1=$(now)
limit=$(echo "$t1 - $t0" | bc -l)
printf 'limit: %.2f s\n' "$limit"

# --- the re-load baseline -----------------------------------------------------------------
# An upsert into the fully indexed tables: the yardstick for a load into tables that already
# have rows, not for a first load.
fresh_db tributary_bench_products_baseline
BASE_URL="$PGURL/tributary_bench_products_baseline"
DATABASE_URL=$BASE_URL "$BIN" migrate
psql "$BASE_URL" -q -v ON_ERROR_STOP=1 -c "CREATE TABLE staging (line bigserial, name text, sku text, description text)"
echo "==> re-load baseline: psql \\copy + INSERT … ON CONFLICT + GROUP BY"
t0=$(now)
load_by_hand "$BASE_URL" "ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name,
  description = EXCLUDED.description, provider = EXCLUDED.provider, updated_at = EXCLUDED.updated_at"
t1=$(now)
baseline=$(echo "$t1 - $t0" | bc -l)
printf 're-load baseline: %.2f s\n' "$baseline"

# --- ours -------------------------------------------------------------------------------
fresh_db tributary_bench_products
URL="$PGURL/tributary_bench_products"
DATABASE_URL=$URL "$BIN" migrate
echo "==> tributary import product"
t0=$(now)
DATABASE_URL=$URL /usr/bin/time -f '%M' -o "$WORK/products-rss" "$BIN" import product "$CSV"
t1=$(now)
ours=$(echo "$t1 - $t0" | bc -l)
rss_mb=$(echo "$(cat "$WORK/products-rss") / 1024" | bc -l)
echo "==> the same file again"
t0=$(now)
DATABASE_URL=$URL "$BIN" import product "$CSV"
t1=$(now)
again=$(echo "$t1 - $t0" | bc -l)

if [[ "$(fingerprint "$BASE_URL")" == "$(fingerprint "$URL")" && "$(fingerprint "$LIMIT_URL")" == "$(fingerprint "$URL")" ]]; then
  same="yes"
else
  same="NO"
fi
read -r products names < <(psql "$URL" -At -F ' ' -c "SELECT (SELECT count(*) FROM products), (SELECT count(*) FROM product_counts)")

echo
echo "==> results ($ROWS rows: $products products, $names names with products)"
printf 'first import:  %.2f s  limit %.2f s  ratio %.2fx  (target <= 1.2x; %.2fx of the re-load baseline, %.2f s)\n' \
  "$ours" "$limit" "$(echo "$ours / $limit" | bc -l)" "$(echo "$ours / $baseline" | bc -l)" "$baseline"
printf 'peak memory:   %.0f MB (target < 200 MB)\n' "$rss_mb"
printf 'second import: %.2f s  ratio %.2fx of the first\n' "$again" "$(echo "$again / $ours" | bc -l)"
echo "same products and counts as the limit and the baseline: $same"
