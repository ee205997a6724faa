#!/usr/bin/env bash
# Crash consistency, run by hand (never by `cargo test`): SIGKILL at a random moment, start
# again, and check that nothing was lost, duplicated or left running. Three scenarios, RUNS
# kills each (default 20), each in a fresh PostgreSQL database, loopback only:
#
#   import    `tributary import product` of a generated file (alternately the file and a copy
#             with every name moved one row down and three rows without a SKU), killed, then
#             run again to completion. Checks: products = the last row of each SKU of the file
#             imported last (every SKU, every name); every killed run `interrupted`, none
#             failed; and `tributary check` (run counters add up, rejections stored, no run left
#             queued/running, product_counts = GROUP BY).
#   provider  the patients pipeline (10 listing pages, 10,000 followed documents) from the
#             stand-in provider with latency, triggered on a server that is killed mid-run and
#             started again: the run is marked interrupted once its lease lapses and resumed
#             from its checkpoint. Checks: 10,000 records and raw payloads, inserted once across
#             the runs; and `tributary check`.
#   submit    32 keep-alive clients post events with unique ids (bench/crash_submit.py); the
#             server is killed under that load and started again. Checks: every event answered
#             204 is in `events` exactly once; no id is stored twice.
#
# Usage: bench/crash.sh [RUNS]     SCENARIOS="import provider submit" (default: all three)
# Needs PostgreSQL at $PGURL (default postgres://postgres@127.0.0.1:5432, a role that may
# create databases), psql, curl, python3. Exits non-zero on any violation.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-20}
SCENARIOS=${SCENARIOS:-import provider submit}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
WORK=${WORK:-/tmp/tributary-crash}
SHARED=${SHARED:-../shared}
PRODUCT_ROWS=${PRODUCT_ROWS:-100000}
LATENCY_MS=${LATENCY_MS:-5}
PORT=${PORT:-18761}
BIN=${BIN:-target/release/tributary}
MOCK_PROVIDER=${MOCK_PROVIDER:-target/release/examples/mock_provider}
LEASE_TTL=3

for tool in psql curl python3; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  echo "==> build"
  cargo build --release --locked --quiet
  cargo build --release --locked --quiet --example mock_provider
fi
rm -rf "$WORK"
mkdir -p "$WORK/providers"

# The stand-in provider is on loopback, which provider requests may reach only when allowed.
export TRIBUTARY_OUTBOUND__ALLOWED_NETWORKS='["127.0.0.0/8"]'
export RUST_LOG=${RUST_LOG:-warn}
export TRIBUTARY_SAMPLE_DATA=false

SERVER=""
PROVIDER_PID=""
cleanup() {
  [[ -n "$SERVER" ]] && kill -9 "$SERVER" 2>/dev/null || true
  [[ -n "$PROVIDER_PID" ]] && kill "$PROVIDER_PID" 2>/dev/null || true
}
trap cleanup EXIT

fresh_db() { # name -> prints its URL
  psql "$PGURL/postgres" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
  echo "$PGURL/$1"
}
q() { psql "$URL" -At -v ON_ERROR_STOP=1 -c "$1"; }
# A random number of milliseconds in [from, to).
random_ms() { python3 -c "import random; print(random.randrange($1, $2))"; }
sleep_ms() { sleep "$(python3 -c "print($1/1000)")"; }

start_server() { # log file; extra environment in the caller's exports
  "$BIN" serve >>"$1" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER" 2>/dev/null || break
    sleep 0.05
  done
  echo "the server did not start; its log: $1" >&2
  exit 1
}
kill_server() { kill -9 "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; SERVER=""; }
stop_server() { kill -TERM "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; SERVER=""; }

SUMMARY=()
TOTAL_VIOLATIONS=0
violation() { echo "  VIOLATION (run $1): $2"; VIOLATIONS=$((VIOLATIONS + 1)); }
expect_eq() { # run, what, got, want
  [[ "$3" == "$4" ]] || violation "$1" "$2: got $3, expected $4"
}
# The store's invariants, as `tributary check` defines them for the tests too: run counters
# add up (superseded included), rejections stored, no run left unfinished, product counts exact.
expect_invariants() { # run
  local out code=0
  out=$("$BIN" check 2>&1) || code=$?
  (( code == 0 )) || violation "$1" "tributary check: $(grep -v '^ok ' <<<"$out" | tr '\n' ' ')"
}

scenario_import() {
  URL=$(fresh_db tributary_crash_import)
  export DATABASE_URL=$URL
  "$BIN" migrate
  python3 "$SHARED/bench/gen_products.py" "$PRODUCT_ROWS" > "$WORK/a.csv"
  python3 bench/crash_products.py "$WORK/a.csv" "$WORK/b.csv" "$WORK/expect-a.csv" "$WORK/expect-b.csv"
  local killed=0 finished=0 early=0
  for i in $(seq 1 "$RUNS"); do
    local runs_before; runs_before=$(q "SELECT count(*) FROM ingest_runs")
    local file=a; (( i % 2 == 0 )) && file=b
    local at; at=$(random_ms 50 3000)
    "$BIN" import product "$WORK/$file.csv" >>"$WORK/import.log" 2>&1 &
    local pid=$!
    sleep_ms "$at"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # Where the kill landed: in the run (left running), before it began, or after it ended.
    local outcome; outcome=$(q "SELECT status FROM ingest_runs ORDER BY id DESC LIMIT 1")
    [[ $(q "SELECT count(*) FROM ingest_runs") == "$runs_before" ]] && outcome="killed before the run began"
    case $outcome in
      running) killed=$((killed + 1)); outcome="killed mid-run" ;;
      succeeded) finished=$((finished + 1)); outcome="finished first" ;;
      *) early=$((early + 1)) ;;
    esac
    # Run again to completion (it waits for the killed import's lease to lapse).
    local code=0
    "$BIN" import product "$WORK/$file.csv" >>"$WORK/import.log" 2>&1 || code=$?
    [[ $code == 0 || $code == 2 ]] || violation "$i" "the re-run import exited $code"
    local expected; expected=$(wc -l < "$WORK/expect-$file.csv")
    local checks
    checks=$(psql "$URL" -At -v ON_ERROR_STOP=1 <<SQL
CREATE TEMP TABLE expected (sku text, name text);
\copy expected FROM '$WORK/expect-$file.csv' WITH (FORMAT csv)
SELECT 'products', count(*) FROM products;
SELECT 'wrong_products', count(*) FROM expected e FULL JOIN products p ON p.sku = e.sku
  WHERE p.sku IS NULL OR e.sku IS NULL OR p.name IS DISTINCT FROM e.name;
SELECT 'interrupted', count(*) FROM ingest_runs WHERE status = 'interrupted';
SELECT 'failed', count(*) FROM ingest_runs WHERE status = 'failed';
SQL
)
    local got; got() { awk -F'|' -v k="$1" '$1 == k {print $2}' <<<"$checks"; }
    expect_eq "$i" "products" "$(got products)" "$expected"
    expect_eq "$i" "products differing from the file's last rows" "$(got wrong_products)" 0
    expect_invariants "$i"
    expect_eq "$i" "killed runs marked interrupted" "$(got interrupted)" "$killed"
    expect_eq "$i" "runs failed" "$(got failed)" 0
    printf '  run %2d: %s.csv, kill at %4d ms (%s): %s products, %s interrupted runs so far\n' \
      "$i" "$file" "$at" "$outcome" "$(got products)" "$(got interrupted)"
  done
  SUMMARY+=("import: $RUNS runs, $killed killed mid-import, $early killed before the run began (first pass), $finished finished before the kill, $VIOLATIONS violation(s)")
}

scenario_provider() {
  URL=$(fresh_db tributary_crash_provider)
  export DATABASE_URL=$URL
  "$BIN" migrate
  coproc MOCK { "$MOCK_PROVIDER" "$LATENCY_MS"; }
  PROVIDER_PID=$MOCK_PID
  local base; read -r base <&"${MOCK[0]}"
  export TRIBUTARY_PROVIDERS_DIR="$WORK/providers" TRIBUTARY_LISTEN="127.0.0.1:$PORT"
  export TRIBUTARY_SCHEDULER__LEASE_TTL_SECS=$LEASE_TTL
  local killed=0 finished=0
  for i in $(seq 1 "$RUNS"); do
    rm -f "$WORK"/providers/*.toml
    cat > "$WORK/providers/p$i.toml" <<TOML
entity = "record"
dataset = "patients_$i"
key = "id"
[source]
kind = "http"
url = "$base/storage/v1/b/patients-bucket/o"
records = "\$.items[*]"
skip = [{ field = "\$.name", starts_with = "index" }]
[source.pagination]
kind = "cursor"
token_path = "\$.nextPageToken"
param = "pageToken"
[source.follow]
url = "\$.mediaLink"
concurrency = 16
[parse]
format = "text"
pattern = '(?s)ID: (?P<id>[^\n]*)\nNAME: (?P<name>[^\n]*)\nAGE: (?P<age>[^\n]*)'
[fields]
id = { path = "id", transforms = ["trim"] }
name = { path = "name", transforms = ["trim"] }
age = { path = "age", transforms = [{ int = { default = -1 } }] }
TOML
    start_server "$WORK/provider-server.log"
    curl -sf -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/graphql" \
      -d "{\"query\":\"mutation { triggerIngest(provider: \\\"p$i\\\", mode: FULL) { run { id } } }\"}" >/dev/null
    local at; at=$(random_ms 100 4000)
    sleep_ms "$at"
    kill_server
    local state; state=$(q "SELECT status FROM ingest_runs WHERE provider = 'p$i' ORDER BY id LIMIT 1")
    if [[ "$state" == succeeded ]]; then finished=$((finished + 1)); else killed=$((killed + 1)); fi
    start_server "$WORK/provider-server.log"
    local deadline=$((SECONDS + 120))
    until [[ "$(q "SELECT count(*) FILTER (WHERE status IN ('queued','running')) || ',' || count(*) FILTER (WHERE status = 'succeeded') FROM ingest_runs WHERE provider = 'p$i'")" == 0,1 ]]; do
      if (( SECONDS > deadline )); then violation "$i" "no run of p$i succeeded within 120 s after the restart"; break; fi
      sleep 0.2
    done
    stop_server
    local checks
    checks=$(psql "$URL" -At -v ON_ERROR_STOP=1 <<SQL
SELECT 'records', count(*), count(DISTINCT key) FROM records WHERE dataset = 'patients_$i';
SELECT 'raw', count(*) FROM raw_records WHERE provider = 'p$i';
SELECT 'inserted', sum(inserted) FROM ingest_runs WHERE provider = 'p$i';
SELECT 'runs', count(*), string_agg(status || coalesce(' (' || error || ')', ''), '; ' ORDER BY id)
  FROM ingest_runs WHERE provider = 'p$i';
SQL
)
    local got; got() { awk -F'|' -v k="$1" -v n="${2:-2}" '$1 == k {print $n}' <<<"$checks"; }
    expect_eq "$i" "records" "$(got records)" 10000
    expect_eq "$i" "distinct record keys" "$(got records 3)" 10000
    expect_eq "$i" "raw payloads" "$(got raw)" 10000
    expect_eq "$i" "records inserted across the runs" "$(got inserted)" 10000
    expect_invariants "$i"
    printf '  run %2d: kill at %4d ms (%s): %s runs: %s\n' "$i" "$at" "$state" "$(got runs)" "$(got runs 3)"
  done
  kill "$PROVIDER_PID" 2>/dev/null || true
  PROVIDER_PID=""
  unset TRIBUTARY_PROVIDERS_DIR TRIBUTARY_SCHEDULER__LEASE_TTL_SECS
  SUMMARY+=("provider: $RUNS runs, $killed killed mid-run, $finished finished before the kill, $VIOLATIONS violation(s)")
}

scenario_submit() {
  URL=$(fresh_db tributary_crash_submit)
  export DATABASE_URL=$URL TRIBUTARY_LISTEN="127.0.0.1:$PORT"
  export TRIBUTARY_PROVIDERS_DIR="$WORK/no-providers"
  "$BIN" migrate
  local acked_total=0 unanswered_total=0 extra_total=0
  start_server "$WORK/submit-server.log"
  for i in $(seq 1 "$RUNS"); do
    python3 bench/crash_submit.py "$PORT" 4 "r$i" "$WORK/acked-$i.txt" 32 > "$WORK/load-$i.txt" 2>>"$WORK/load-errors.txt" &
    local load=$!
    local at; at=$(random_ms 500 2500)
    sleep_ms "$at"
    kill_server
    start_server "$WORK/submit-server.log"
    wait "$load"
    local acked unanswered unexpected
    read -r acked unanswered unexpected < "$WORK/load-$i.txt"
    local checks
    checks=$(psql "$URL" -At -v ON_ERROR_STOP=1 <<SQL
CREATE TEMP TABLE acked (id text PRIMARY KEY);
\copy acked FROM '$WORK/acked-$i.txt'
SELECT 'missing', count(*) FROM acked a
  WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.metadata->>'id' = a.id);
SELECT 'twice', count(*) FROM (SELECT metadata->>'id' FROM events GROUP BY 1 HAVING count(*) > 1) d;
SELECT 'stored', count(*) FROM events WHERE metadata->>'id' LIKE 'r$i-%';
SQL
)
    local got; got() { awk -F'|' -v k="$1" '$1 == k {print $2}' <<<"$checks"; }
    expect_eq "$i" "acknowledged events missing" "$(got missing)" 0
    expect_eq "$i" "events stored twice" "$(got twice)" 0
    expect_eq "$i" "answers other than 204 or no answer" "$unexpected" 0
    local extra=$(( $(got stored) - acked ))
    (( extra >= 0 && extra <= unanswered )) || violation "$i" "stored $(got stored) for $acked acknowledged and $unanswered unanswered"
    acked_total=$((acked_total + acked)); unanswered_total=$((unanswered_total + unanswered)); extra_total=$((extra_total + extra))
    printf '  run %2d: kill at %4d ms: %6d acknowledged, all stored once; %4d unanswered, %3d of them stored\n' \
      "$i" "$at" "$acked" "$unanswered" "$extra"
  done
  stop_server
  unset TRIBUTARY_PROVIDERS_DIR
  SUMMARY+=("submit: $RUNS kills, $acked_total acknowledged events all stored exactly once, $unanswered_total unanswered ($extra_total of them stored), $VIOLATIONS violation(s)")
}

for scenario in $SCENARIOS; do
  echo "==> $scenario: $RUNS kills"
  VIOLATIONS=0
  "scenario_$scenario"
  TOTAL_VIOLATIONS=$((TOTAL_VIOLATIONS + VIOLATIONS))
done
panics=$(cat "$WORK"/*.log 2>/dev/null | grep -c panicked || true)
echo
echo "==> summary"
for line in "${SUMMARY[@]}"; do echo "$line"; done
echo "panics in server and import logs: $panics"
(( TOTAL_VIOLATIONS == 0 && panics == 0 ))
