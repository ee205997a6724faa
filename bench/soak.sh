#!/usr/bin/env bash
# Soak, run by hand (never by `cargo test`), loopback only: one release server on PostgreSQL for
# DURATION seconds (default 1200 = 20 minutes) under
#   - three providers on 10-second schedules against the stand-in provider (Qualys and
#     CrowdStrike hosts from the Silk routes, the providers/ files with only the schedule and
#     the base URL changed, and a cursor-paginated record listing);
#   - POST /submit at about half the benchmark target (35,000 req/s): wrk, SUBMIT_CONNECTIONS
#     connections each pausing SUBMIT_DELAY_MS between requests (bench/soak_submit.lua);
#   - GraphQL queries at about 200/s: wrk, 4 connections each pausing 20 ms (bench/soak_query.lua).
# The server's RSS is sampled every 10 s. Prints RSS at start (after a 30 s warm-up) and end,
# the samples, requests and errors by kind, and exits non-zero when RSS grew more than
# RSS_GROWTH_MB (default 64) beyond the warm sample, or when any error occurred (no fault is
# injected, so every error counts): a non-2xx answer or socket error in either wrk, a run that
# did not succeed, an ERROR line or panic in the server log, or fewer rows in `events` than
# 204s the server sent (or more than one per connection beyond them: the requests wrk abandons
# at the end).
#
# Usage: bench/soak.sh [DURATION_SECONDS]
# Needs PostgreSQL at $PGURL (default postgres://postgres@127.0.0.1:5432), psql, wrk, curl.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-1200}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
WORK=${WORK:-/tmp/tributary-soak}
SHARED=${SHARED:-../shared}
PORT=${PORT:-18771}
SUBMIT_CONNECTIONS=${SUBMIT_CONNECTIONS:-140}
export SUBMIT_DELAY_MS=${SUBMIT_DELAY_MS:-4}
RSS_GROWTH_MB=${RSS_GROWTH_MB:-64}
BIN=${BIN:-target/release/tributary}
MOCK_PROVIDER=${MOCK_PROVIDER:-target/release/examples/mock_provider}

for tool in psql wrk curl; do
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

psql "$PGURL/postgres" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS tributary_soak" -c "CREATE DATABASE tributary_soak"
export DATABASE_URL="$PGURL/tributary_soak"
"$BIN" migrate

coproc MOCK { "$MOCK_PROVIDER" 20; }
PROVIDER_PID=$MOCK_PID
read -r BASE <&"${MOCK[0]}"
for tool in qualys crowdstrike; do
  sed -e 's/^schedule = .*/schedule = "*\/10 * * * * *"/' providers/$tool.toml > "$WORK/providers/$tool.toml"
done
cat > "$WORK/providers/items.toml" <<TOML
entity = "record"
dataset = "items"
key = "id"
schedule = "*/10 * * * * *"
[source]
kind = "http"
url = "$BASE/cursor"
records = "\$.items[*]"
[source.pagination]
kind = "cursor"
token_path = "\$.next"
param = "cursor"
[fields]
id = "\$.id"
name = "\$.name"
TOML
export SILK_BASE_URL=$BASE SILK_TOKEN=soak-token
export TRIBUTARY_PROVIDERS_DIR="$WORK/providers" TRIBUTARY_LISTEN="127.0.0.1:$PORT" RUST_LOG=${RUST_LOG:-warn}
"$BIN" providers

"$BIN" serve > "$WORK/server.log" 2>&1 &
SERVER=$!
cleanup() {
  kill "$SERVER" 2>/dev/null || true
  kill "$PROVIDER_PID" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.1
done
kill -0 "$SERVER" 2>/dev/null || { echo "the server did not start: $WORK/server.log" >&2; exit 1; }

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER/status"; }
echo "==> soak: ${DURATION}s; RSS every 10 s into $WORK/rss.txt"
echo "0 $(rss_kb)" > "$WORK/rss.txt"
wrk -t1 -c"$SUBMIT_CONNECTIONS" -d"${DURATION}s" --timeout 10s -s bench/soak_submit.lua \
  "http://127.0.0.1:$PORT/submit" > "$WORK/wrk-submit.txt" 2>&1 &
WRK_SUBMIT=$!
wrk -t1 -c4 -d"${DURATION}s" --timeout 10s -s bench/soak_query.lua \
  "http://127.0.0.1:$PORT/graphql" > "$WORK/wrk-query.txt" 2>&1 &
WRK_QUERY=$!
started=$SECONDS
while kill -0 "$WRK_SUBMIT" 2>/dev/null || kill -0 "$WRK_QUERY" 2>/dev/null; do
  sleep 10
  kill -0 "$SERVER" 2>/dev/null || { echo "the server died: $WORK/server.log" >&2; exit 1; }
  echo "$((SECONDS - started)) $(rss_kb)" >> "$WORK/rss.txt"
done
wait "$WRK_SUBMIT" "$WRK_QUERY" || true
sleep 12 # let the last scheduled runs finish
end_rss=$(rss_kb)
metrics=$(curl -sf "http://127.0.0.1:$PORT/metrics")
kill -TERM "$SERVER"; wait "$SERVER" || true

# --- figures ---------------------------------------------------------------------------------
wrk_field() { { grep -Eo "$2" "$1" | grep -Eo "[0-9.]+" | head -1; } || true; }
submit_requests=$(wrk_field "$WORK/wrk-submit.txt" '[0-9]+ requests in')
submit_rps=$(wrk_field "$WORK/wrk-submit.txt" 'Requests/sec: *[0-9.]+')
submit_non2xx=$(wrk_field "$WORK/wrk-submit.txt" 'Non-2xx or 3xx responses: [0-9]+' || true)
submit_sock=$(grep -Eo 'Socket errors: .*' "$WORK/wrk-submit.txt" || true)
query_requests=$(wrk_field "$WORK/wrk-query.txt" '[0-9]+ requests in')
query_rps=$(wrk_field "$WORK/wrk-query.txt" 'Requests/sec: *[0-9.]+')
query_non2xx=$(wrk_field "$WORK/wrk-query.txt" 'Non-2xx or 3xx responses: [0-9]+' || true)
query_sock=$(grep -Eo 'Socket errors: .*' "$WORK/wrk-query.txt" || true)
query_errors=$(grep -Eo 'graphql errors: [0-9]+' "$WORK/wrk-query.txt" | grep -Eo '[0-9]+' || echo "?")
acked=$(grep -E '^http_requests_total\{.*route="/submit".*status="204"' <<<"$metrics" | awk '{s+=$2} END {print s+0}')
events=$(psql "$DATABASE_URL" -At -c "SELECT count(*) FROM events")
runs=$(psql "$DATABASE_URL" -At -c "SELECT provider || ' ' || status || ' ' || count(*) FROM ingest_runs GROUP BY provider, status ORDER BY 1" | paste -sd ';' | sed 's/;/; /g')
bad_runs=$(psql "$DATABASE_URL" -At -c "SELECT count(*) FROM ingest_runs WHERE status <> 'succeeded'")
log_errors=$(grep -c -E 'ERROR|panicked' "$WORK/server.log" || true)
log_warnings=$(grep -c -E 'WARN' "$WORK/server.log" || true)
warm_rss=$(awk '$1 >= 30 {print $2; exit}' "$WORK/rss.txt")
max_rss=$(awk 'max < $2 {max = $2} END {print max}' "$WORK/rss.txt")
(( end_rss > max_rss )) && max_rss=$end_rss

echo
echo "==> RSS samples (seconds kB)"
paste -sd ' ' "$WORK/rss.txt" | fold -w 120
echo
echo "==> soak ${DURATION}s"
echo "RSS: start (after 30 s) $((warm_rss / 1024)) MB, end $((end_rss / 1024)) MB, peak $((max_rss / 1024)) MB (bound: start + $RSS_GROWTH_MB MB)"
echo "/submit: $submit_requests requests, $submit_rps req/s, non-2xx ${submit_non2xx:-0}, socket errors: ${submit_sock:-none}"
echo "/submit: $acked answered 204 by the server, $events rows in events"
echo "GraphQL: $query_requests requests, $query_rps req/s, non-2xx ${query_non2xx:-0}, responses with errors $query_errors, socket errors: ${query_sock:-none}"
echo "runs: $runs"
echo "server log: $log_errors ERROR/panic lines, $log_warnings WARN lines ($WORK/server.log)"

failed=0
(( end_rss <= warm_rss + RSS_GROWTH_MB * 1024 )) || { echo "FAIL: RSS grew beyond the bound"; failed=1; }
(( ${submit_non2xx:-0} == 0 && ${query_non2xx:-0} == 0 )) || { echo "FAIL: non-2xx answers"; failed=1; }
[[ -z "$submit_sock$query_sock" ]] || { echo "FAIL: socket errors"; failed=1; }
[[ "$query_errors" == 0 ]] || { echo "FAIL: GraphQL responses with errors"; failed=1; }
(( bad_runs == 0 )) || { echo "FAIL: $bad_runs runs did not succeed"; failed=1; }
(( log_errors == 0 )) || { echo "FAIL: errors in the server log"; failed=1; }
# A request wrk abandons when its time is up may be stored without its 204 being counted: at
# most one per connection.
(( events >= acked && events <= acked + SUBMIT_CONNECTIONS )) || { echo "FAIL: $acked acknowledged but $events stored"; failed=1; }
exit $failed
