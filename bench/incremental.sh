#!/usr/bin/env bash
# Incremental sync, run by hand: 100,000 records at a stand-in API that lists the records
# changed since a time (`GET /changes?since=…`, pages of 1,000), ingested by `tributary ingest`;
# then 1% of them change and the provider runs again. The second run asks only from the
# high-water mark, so its wall time is printed as a ratio to the first run's, both measured
# here (target <= 0.05x). Beside it: the requests and records each run took from the API.
#
# Usage: bench/incremental.sh [RECORDS] [LATENCY_MS]   (defaults 100000, 0)
# Database: $DATABASE_URL, default a fresh PostgreSQL database at $PGURL.
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS=${1:-100000}
LATENCY_MS=${2:-0}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
WORK=${WORK:-/tmp/tributary-bench-incremental}
BIN=${BIN:-target/release/tributary}
API=${API:-target/release/examples/changes_api}
mkdir -p "$WORK/providers"

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  echo "==> build"
  cargo build --release --locked --quiet
  cargo build --release --locked --quiet --example changes_api
fi

if [[ -z "${DATABASE_URL:-}" ]]; then
  psql "$PGURL/postgres" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS tributary_bench_incremental" -c "CREATE DATABASE tributary_bench_incremental"
  DATABASE_URL="$PGURL/tributary_bench_incremental"
fi
export DATABASE_URL

# The stand-in runs until its stdin closes (when this script exits).
coproc STANDIN { "$API" "$RECORDS" 1000 "$LATENCY_MS"; }
read -r BASE <&"${STANDIN[0]}"
echo "API: $BASE ($RECORDS records, pages of 1,000, latency $LATENCY_MS ms)"

cat > "$WORK/providers/changes.toml" <<TOML
entity = "record"
dataset = "changes"
key = "id"
[source]
kind = "http"
url = "$BASE/changes"
records = "\$.records[*]"
[source.pagination]
kind = "cursor"
token_path = "\$.next"
param = "cursor"
[source.incremental]
cursor = "\$.updated_at"
param = "since"
initial = "2023-12-31T00:00:00Z"
[fields]
id = "id"
value = "value"
updated_at = { path = "updated_at", transforms = ["timestamp"] }
TOML

export TRIBUTARY_PROVIDERS_DIR="$WORK/providers"
# The stand-in listens on loopback, which provider requests may not reach by default.
export TRIBUTARY_OUTBOUND__ALLOWED_NETWORKS='["127.0.0.0/8"]'
"$BIN" migrate

timed_run() {
  local start end
  start=$(date +%s.%N)
  "$BIN" ingest changes > /dev/null
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}
stats() { curl -sf -X POST "$BASE/stats"; }

first=$(timed_run)
first_stats=$(stats)
changed=$((RECORDS / 100))
curl -sf -X POST "$BASE/touch?every=100&changed=$changed" > /dev/null
second=$(timed_run)
second_stats=$(stats)
rows=$(psql "$DATABASE_URL" -tA -c "SELECT count(*) FROM records WHERE dataset = 'changes'")

echo
printf 'first run:  %8.2f s  %s\n' "$first" "$first_stats"
printf 'second run: %8.2f s  %s  (%d records changed)\n' "$second" "$second_stats" "$changed"
printf 'rows stored: %s\n' "$rows"
printf 'second / first: %.3fx (target <= 0.05x)\n' "$(echo "$second / $first" | bc -l)"
