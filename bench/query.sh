#!/usr/bin/env bash
# The `transfers` query a frontend sends — the busiest token, a 6-hour window, `first: 100`,
# newest first — from 32 concurrent clients, against its limit and its peer in one run:
#
# - Tributary: wrk posting the query to `POST /graphql` of a release server (its pool at the
#   default size, two connections per core).
# - The limit: pgbench running the statement the server sends for that query — taken from the
#   server's own log at debug level (`RUST_LOG=sqlx::query=debug`), not written by hand —
#   prepared, from 32 clients. pgbench variables hold numbers only, so each window is its own
#   script with the parameters written in as literals; pgbench picks one per transaction.
# - The peer: PostGraphile 4 with postgraphile-plugin-connection-filter over the same database,
#   the same query in its dialect (the token through PostGraphile's own `condition`, since the
#   filter plugin offers no operators on `bytea`; the window through `filter`), wrk. Installed
#   with npm into $WORK/postgraphile when missing; `PEER_WORKERS` sets its
#   `--cluster-workers` (default: one per core).
#
# All three draw from the same 100 windows, at random per request, and first check that they
# return the same 100 rows for one window. wrk or pgbench share the machine's cores with the
# server and PostgreSQL, as on one host.
#
# The database `tributary_bench_query` is filled once by `tributary import transfer` of ROWS
# generated transfers (../shared/bench/gen_transfers.py) and kept for later runs.
#
# Needs: PostgreSQL at $PGURL (a role that may create databases), psql, pgbench, wrk, python3,
# node and npm, curl. Usage: bench/query.sh [ROWS] [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${1:-1000000}
DURATION=${2:-20}
CLIENTS=${CLIENTS:-32}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
WORK=${WORK:-/tmp/tributary-bench}
SHARED=${SHARED:-../shared}
BIN=${BIN:-target/release/tributary}
PORT=${PORT:-18081}
PEER_PORT=${PEER_PORT:-18082}
PEER_WORKERS=${PEER_WORKERS:-$(nproc)}

for tool in psql pgbench wrk python3 node npm curl bc; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  echo "==> build"
  cargo build --release --locked --quiet
fi
mkdir -p "$WORK"
Q="$WORK/query"
rm -rf "$Q" && mkdir -p "$Q"

PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
wait_for() {
  for _ in $(seq 1 300); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "not answering: $1" >&2
  exit 1
}

# --- data -------------------------------------------------------------------------------
URL="$PGURL/tributary_bench_query"
have=$(psql "$URL" -At -c "SELECT count(*) FROM transfers" 2>/dev/null || echo 0)
if [[ "$have" != "$ROWS" ]]; then
  CSV="$WORK/data-$ROWS/token_transfers.csv"
  if [[ ! -f "$CSV" ]]; then
    echo "==> generate $ROWS transfers"
    python3 "$SHARED/bench/gen_transfers.py" "$WORK/data-$ROWS" "$ROWS"
  fi
  echo "==> tributary import transfer ($ROWS rows, once)"
  psql "$PGURL/postgres" -q -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS tributary_bench_query" -c "CREATE DATABASE tributary_bench_query"
  DATABASE_URL=$URL "$BIN" migrate
  DATABASE_URL=$URL "$BIN" import transfer "$CSV"
fi
psql "$URL" -q -c "VACUUM ANALYZE transfers"

# The busiest token and 100 six-hour windows inside the data (the same for all three).
TOKEN=$(psql "$URL" -At -c "SELECT encode(token_address, 'hex') FROM transfers GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
read -r TMIN TMAX < <(psql "$URL" -At -F ' ' -c "SELECT extract(epoch FROM min(block_timestamp))::bigint, extract(epoch FROM max(block_timestamp))::bigint FROM transfers")
python3 - "$TMIN" "$TMAX" >"$Q/windows" <<'PY'
import random, sys, datetime
lo, hi = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(7)
iso = lambda t: datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
for _ in range(100):
    start = rng.randint(lo, max(lo, hi - 21600))
    print(iso(start), iso(start + 21600))
PY
read -r FROM1 TO1 < "$Q/windows"
matching=$(psql "$URL" -At -c "SELECT count(*) FROM transfers WHERE token_address = '\\x$TOKEN' AND block_timestamp >= '$FROM1' AND block_timestamp < '$TO1'")
echo "token 0x$TOKEN; first window $FROM1 .. $TO1 holds $matching of its transfers"

# The two GraphQL requests, as wrk scripts drawing a window per request.
OURS_QUERY='query Window($t: Bytes!, $from: DateTime!, $to: DateTime!) { transfers(where: {token: {eq: $t}, blockTimestamp: {gte: $from, lt: $to}}, orderBy: [{field: BLOCK_TIMESTAMP, direction: DESC}], first: 100) { nodes { id from to value blockTimestamp transactionHash } pageInfo { hasNextPage endCursor } } }'
PEER_QUERY='query Window($t: String!, $from: Datetime!, $to: Datetime!) { allTransfers(condition: {tokenAddress: $t}, filter: {blockTimestamp: {greaterThanOrEqualTo: $from, lessThan: $to}}, orderBy: [BLOCK_TIMESTAMP_DESC, ID_DESC], first: 100) { nodes { id fromAddress toAddress value blockTimestamp transactionHash } pageInfo { hasNextPage endCursor } } }'
body() { # QUERY TOKEN FROM TO
  python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1], "variables": {"t": sys.argv[2], "from": sys.argv[3], "to": sys.argv[4]}}))' "$@"
}
lua() { # QUERY TOKEN > script
  echo 'wrk.method = "POST"'
  echo 'wrk.headers["Content-Type"] = "application/json"'
  echo 'local bodies = {'
  while read -r from to; do
    printf '  [==[%s]==],\n' "$(body "$1" "$2" "$from" "$to")"
  done <"$Q/windows"
  echo '}'
  echo 'math.randomseed(os.time())'
  echo 'request = function() return wrk.format(nil, "/graphql", nil, bodies[math.random(#bodies)]) end'
}
lua "$OURS_QUERY" "0x$TOKEN" >"$Q/ours.lua"
lua "$PEER_QUERY" "\\x$TOKEN" >"$Q/peer.lua"

# Runs wrk for DURATION s after a 2 s warm-up; prints "req/s p50_ms p99_ms".
measure_wrk() { # URL SCRIPT NAME
  wrk -t2 -c"$CLIENTS" -d2s -s "$2" "$1" >/dev/null
  wrk -t2 -c"$CLIENTS" -d"${DURATION}s" --latency -s "$2" "$1" >"$Q/$3.wrk"
  python3 - "$Q/$3.wrk" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(label):
    value, unit = re.search(r"^\s+%s\s+([\d.]+)(us|ms|s)\s*$" % label, text, re.M).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
if bad:
    sys.exit("wrk saw %s failed responses" % bad.group(1))
print(float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)), ms("50%"), ms("99%"))
PY
}

# --- Tributary --------------------------------------------------------------------------
# First with statements logged, to take the SQL of the query from the server's own log.
DATABASE_URL=$URL TRIBUTARY_LISTEN=127.0.0.1:$PORT TRIBUTARY_LOG_FORMAT=json \
  RUST_LOG=warn,sqlx::query=debug "$BIN" serve 2>"$Q/server-debug.log" &
PIDS+=($!)
wait_for "http://127.0.0.1:$PORT/healthz"
body "$OURS_QUERY" "0x$TOKEN" "$FROM1" "$TO1" >"$Q/ours-body.json"
curl -sf -H 'Content-Type: application/json' --data @"$Q/ours-body.json" \
  "http://127.0.0.1:$PORT/graphql" >"$Q/ours-answer.json"
kill "${PIDS[-1]}" && wait "${PIDS[-1]}" 2>/dev/null || true
python3 - "$Q/server-debug.log" >"$Q/statement.sql" <<'PY'
import json, sys
found = None
for line in open(sys.argv[1]):
    try:
        event = json.loads(line)
    except ValueError:
        continue
    sql = (event.get("db.statement") or event.get("summary") or "").strip()
    if event.get("target") == "sqlx::query" and 'FROM "transfers"' in sql and "LIMIT" in sql:
        found = sql
if found is None:
    sys.exit("the server's debug log holds no statement reading transfers")
print(found)
PY
echo "==> the statement the server sent (from its log):"
cat "$Q/statement.sql"

# One pgbench script per window: the statement with its parameters as literals. Every
# parameter is named by what it is compared with; any other fails the run rather than guess.
python3 - "$Q" "$TOKEN" <<'PY'
import re, sys
q, token = sys.argv[1], sys.argv[2]
sql = open(q + "/statement.sql").read().strip()
windows = [line.split() for line in open(q + "/windows")]
def script(start, end):
    def literal(m):
        before = sql[: m.start()]
        if re.search(r'"token_address"\s*=\s*$', before):
            return "'\\x%s'" % token
        if re.search(r'"block_timestamp"\s*>=\s*$', before):
            return "'%s'" % start
        if re.search(r'"block_timestamp"\s*<\s*$', before):
            return "'%s'" % end
        if re.search(r"LIMIT\s*$", before):
            return "101"
        sys.exit("unrecognised parameter %s in: %s" % (m.group(0), sql))
    return re.sub(r"\$\d+", literal, sql)
for i, (start, end) in enumerate(windows):
    with open("%s/window-%03d.sql" % (q, i), "w") as f:
        f.write(" ".join(script(start, end).split()) + ";\n")
PY

# The three answers to the first window: the same 100 ids, in the same order.
python3 - "$Q/ours-answer.json" >"$Q/ours.ids" <<'PY'
import json, sys
answer = json.load(open(sys.argv[1]))
if "errors" in answer:
    sys.exit("Tributary answered with errors: %s" % answer["errors"])
print("\n".join(n["id"] for n in answer["data"]["transfers"]["nodes"]))
PY
psql "$URL" -At -f "$Q/window-000.sql" | cut -d'|' -f1 | head -n 100 >"$Q/limit.ids"
cmp -s "$Q/ours.ids" "$Q/limit.ids" || { echo "Tributary and the statement disagree" >&2; exit 1; }

echo "==> Tributary: $CLIENTS connections, ${DURATION} s"
DATABASE_URL=$URL TRIBUTARY_LISTEN=127.0.0.1:$PORT RUST_LOG=warn "$BIN" serve &
PIDS+=($!)
wait_for "http://127.0.0.1:$PORT/healthz"
read -r ours_rps ours_p50 ours_p99 < <(measure_wrk "http://127.0.0.1:$PORT" "$Q/ours.lua" ours)
kill "${PIDS[-1]}" && wait "${PIDS[-1]}" 2>/dev/null || true
echo "$ours_rps req/s, p50 $ours_p50 ms, p99 $ours_p99 ms"

# --- the limit: PostgreSQL alone ------------------------------------------------------
echo "==> PostgreSQL alone: pgbench, $CLIENTS clients, the same statement prepared, ${DURATION} s"
SCRIPTS=()
for f in "$Q"/window-*.sql; do SCRIPTS+=(-f "$f"); done
pgbench -n -M prepared -c "$CLIENTS" -j 2 -T 2 "${SCRIPTS[@]}" "$URL" >/dev/null
(cd "$Q" && pgbench -n -M prepared -c "$CLIENTS" -j 2 -T "$DURATION" -l --log-prefix=pgbench \
  "${SCRIPTS[@]}" "$URL" >"$Q/pgbench.txt")
read -r limit_tps limit_p50 limit_p99 < <(python3 - "$Q" <<'PY'
import glob, re, sys
q = sys.argv[1]
text = open(q + "/pgbench.txt").read()
tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", text).group(1))
latencies = sorted(int(line.split()[2]) for f in glob.glob(q + "/pgbench.*") if not f.endswith(".txt") for line in open(f))
pick = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] / 1000.0
print(tps, pick(0.50), pick(0.99))
PY
)
echo "$limit_tps tps, p50 $limit_p50 ms, p99 $limit_p99 ms"

# --- the peer: PostGraphile ------------------------------------------------------------
PEER="$WORK/postgraphile"
if [[ ! -x "$PEER/node_modules/.bin/postgraphile" ]]; then
  echo "==> npm install postgraphile@4 postgraphile-plugin-connection-filter@2"
  mkdir -p "$PEER"
  (cd "$PEER" && npm init -y >/dev/null && npm install --no-audit --no-fund --silent \
    postgraphile@4 postgraphile-plugin-connection-filter@2)
fi
echo "==> PostGraphile 4 + connection-filter ($PEER_WORKERS workers): $CLIENTS connections, ${DURATION} s"
NODE_ENV=production "$PEER/node_modules/.bin/postgraphile" -c "$URL" --schema public \
  --host 127.0.0.1 --port "$PEER_PORT" --append-plugins postgraphile-plugin-connection-filter \
  --cluster-workers "$PEER_WORKERS" --disable-query-log >"$Q/peer.log" 2>&1 &
PIDS+=($!)
wait_for "http://127.0.0.1:$PEER_PORT/graphql"
body "$PEER_QUERY" "\\x$TOKEN" "$FROM1" "$TO1" >"$Q/peer-body.json"
curl -sf -H 'Content-Type: application/json' --data @"$Q/peer-body.json" \
  "http://127.0.0.1:$PEER_PORT/graphql" >"$Q/peer-answer.json"
python3 - "$Q/peer-answer.json" >"$Q/peer.ids" <<'PY'
import json, sys
answer = json.load(open(sys.argv[1]))
if "errors" in answer:
    sys.exit("PostGraphile answered with errors: %s" % answer["errors"])
print("\n".join(str(n["id"]) for n in answer["data"]["allTransfers"]["nodes"]))
PY
cmp -s "$Q/ours.ids" "$Q/peer.ids" || { echo "Tributary and PostGraphile disagree" >&2; exit 1; }
read -r peer_rps peer_p50 peer_p99 < <(measure_wrk "http://127.0.0.1:$PEER_PORT" "$Q/peer.lua" peer)
echo "$peer_rps req/s, p50 $peer_p50 ms, p99 $peer_p99 ms"

echo
echo "==> results (transfers query, $ROWS rows, $CLIENTS clients, $DURATION s each, same run)"
printf 'Tributary:    %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms\n' "$ours_rps" "$ours_p50" "$ours_p99"
printf 'limit:        %8.0f tps    p50 %6.2f ms  p99 %6.2f ms  (pgbench, the same statement)\n' "$limit_tps" "$limit_p50" "$limit_p99"
printf 'PostGraphile: %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms\n' "$peer_rps" "$peer_p50" "$peer_p99"
printf 'throughput vs the limit: %.2fx (target >= 0.5x)\n' "$(echo "$ours_rps / $limit_tps" | bc -l)"
printf 'throughput vs PostGraphile: %.2fx (target >= 5x)\n' "$(echo "$ours_rps / $peer_rps" | bc -l)"
printf 'p99 vs the limit'"'"'s p99: %.2fx (target <= 2x)\n' "$(echo "$ours_p99 / $limit_p99" | bc -l)"
