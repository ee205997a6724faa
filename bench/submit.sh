#!/usr/bin/env bash
# Event ingestion benchmark, run by hand (never by `cargo test`).
#
# wrk posts the README's example body (../shared/data/submit/readme_example_request.json) to
# `POST /submit` for DURATION seconds from CONNECTIONS connections, against a release server on
# PostgreSQL. Every 204 means the event was committed (group commit). Prints acknowledged
# requests/s and latency, checks that the rows in `events` equal the 204s the server sent, and
# prints the ratio to a baseline measured in the same run: the same wrk against `GET /healthz`
# on the same server, its ceiling without any database write.
#
# wrk, the server and PostgreSQL share this machine's cores; the figures are for that setup.
# Needs: PostgreSQL at $PGURL (a role that may create databases), psql, wrk (apt-get install
# wrk), curl, bc. Usage: bench/submit.sh [DURATION] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-30}
CONNECTIONS=${2:-128}
THREADS=${THREADS:-2}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
WORK=${WORK:-/tmp/tributary-bench}
SHARED=${SHARED:-../shared}
BIN=${BIN:-target/release/tributary}
PORT=${PORT:-18747}
BODY="$SHARED/data/submit/readme_example_request.json"

for tool in psql wrk curl bc; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  echo "==> build"
  cargo build --release --locked --quiet
fi
mkdir -p "$WORK"

psql "$PGURL/postgres" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS tributary_bench_submit" -c "CREATE DATABASE tributary_bench_submit"
URL="$PGURL/tributary_bench_submit"
DATABASE_URL=$URL "$BIN" migrate
echo "PostgreSQL: fsync=$(psql "$URL" -At -c 'SHOW fsync'), synchronous_commit=$(psql "$URL" -At -c 'SHOW synchronous_commit')"

DATABASE_URL=$URL TRIBUTARY_LISTEN=127.0.0.1:$PORT RUST_LOG=warn "$BIN" serve &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.1
done
kill -0 $SERVER 2>/dev/null || { echo "the server did not start (port $PORT taken? set PORT)" >&2; exit 1; }

LUA="$WORK/submit.lua"
python3 - "$BODY" > "$LUA" <<'PY'
import json, sys
body = open(sys.argv[1]).read()
print('wrk.method = "POST"')
print('wrk.headers["Content-Type"] = "application/json"')
print('wrk.body = ' + json.dumps(body))
PY

summary() { # wrk output file -> "requests non2xx errors rps p50 p99"
  local f=$1
  local requests non2xx errors rps p50 p99
  requests=$(grep -Eo '^ *[0-9]+ requests in' "$f" | grep -Eo '[0-9]+' | head -1)
  non2xx=$(grep -Eo 'Non-2xx or 3xx responses: [0-9]+' "$f" | grep -Eo '[0-9]+$' || echo 0)
  errors=$(grep -Eo 'Socket errors: .*' "$f" || echo "none")
  rps=$(grep -Eo 'Requests/sec: *[0-9.]+' "$f" | grep -Eo '[0-9.]+$')
  p50=$(grep -E '^ +50%' "$f" | awk '{print $2}')
  p99=$(grep -E '^ +99%' "$f" | awk '{print $2}')
  echo "$requests ${non2xx:-0} $rps $p50 $p99 | $errors"
}

echo "==> baseline: GET /healthz, ${DURATION}s, $CONNECTIONS connections"
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "http://127.0.0.1:$PORT/healthz" >/dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "http://127.0.0.1:$PORT/healthz" > "$WORK/wrk-healthz.txt"
read -r _ _ base_rps base_p50 base_p99 _ < <(summary "$WORK/wrk-healthz.txt")

echo "==> POST /submit (README example body), ${DURATION}s, $CONNECTIONS connections"
# A short warm-up, then empty the table so the count below covers the measured run only.
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s "$LUA" "http://127.0.0.1:$PORT/submit" >/dev/null
sleep 1
psql "$URL" -q -c "TRUNCATE events"
# The server's own count of /submit answers with status $1.
metric() {
  curl -s "http://127.0.0.1:$PORT/metrics" | awk -v st="status=\"$1\"" \
    '/^http_requests_total\{/ && index($0, "route=\"/submit\"") && index($0, st) {s+=$2} END {print s+0}'
}
before_204=$(metric 204)
before_503=$(metric 503)
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$LUA" "http://127.0.0.1:$PORT/submit" | tee "$WORK/wrk-submit.txt"
sleep 1
read -r requests non2xx rps p50 p99 errors < <(summary "$WORK/wrk-submit.txt")
sent_204=$(( $(metric 204) - before_204 ))
sent_503=$(( $(metric 503) - before_503 ))
rows=$(psql "$URL" -At -c "SELECT count(*) FROM events")
acked=$(( requests - non2xx ))
acked_rps=$(echo "$acked / $DURATION" | bc -l)

# wrk drops the requests in flight at its deadline, so a few events may be committed whose 204
# nobody read. oha (cargo install oha) can wait for them: with it, a second run checks that the
# rows equal the 204s the client received, exactly.
oha_line="oha not installed: skipped the exact client-side check"
if command -v oha >/dev/null; then
  echo "==> POST /submit with oha, waiting for in-flight requests at the deadline"
  psql "$URL" -q -c "TRUNCATE events"
  oha --no-tui -w -z "${DURATION}s" -c "$CONNECTIONS" -m POST -T application/json -D "$BODY" \
    --output-format json "http://127.0.0.1:$PORT/submit" > "$WORK/oha-submit.json"
  oha_rows=$(psql "$URL" -At -c "SELECT count(*) FROM events")
  oha_line=$(python3 - "$WORK/oha-submit.json" "$oha_rows" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ok = d["statusCodeDistribution"].get("204", 0)
others = {k: v for k, v in d["statusCodeDistribution"].items() if k != "204"}
rows = int(sys.argv[2])
print(f"oha: {ok / d['summary']['total']:.0f} acknowledged req/s, p50 {d['latencyPercentiles']['p50'] * 1000:.2f}ms, "
      f"p99 {d['latencyPercentiles']['p99'] * 1000:.2f}ms; 204s received {ok}, other statuses {others or 'none'}, "
      f"errors {d['errorDistribution'] or 'none'}; rows {rows} ({'equal' if rows == ok else 'DIFFERENT'})")
PY
)
fi

echo
echo "==> results (${DURATION}s, $CONNECTIONS connections, $THREADS wrk threads, one 2-core machine for wrk + server + PostgreSQL)"
printf 'baseline GET /healthz: %.0f req/s, p50 %s, p99 %s\n' "$base_rps" "$base_p50" "$base_p99"
printf 'POST /submit:          %.0f acknowledged req/s (204 read by wrk: %d of %d responses), p50 %s, p99 %s\n' "$acked_rps" "$acked" "$requests" "$p50" "$p99"
printf 'ratio to baseline:     %.2fx (target: >= 0.5x of /healthz, p99 <= 50 ms, rows = 204s)\n' "$(echo "$acked_rps / $base_rps" | bc -l)"
echo "503 (queue full):      $sent_503"
echo "rows in events:        $rows; 204s the server sent: $sent_204 ($( [[ $rows == "$sent_204" ]] && echo equal || echo "$(( rows - sent_204 )) more rows: requests wrk abandoned at its deadline after their batch was taken"))"
echo "$oha_line"
