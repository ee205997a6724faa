#!/usr/bin/env bash
# Host resolution benchmark, run by hand (never by `cargo test`).
#
# OBSERVATIONS (default 100,000) generated host reports from three tools, half of them of
# machines another tool reports too (bench/gen_hosts.py), pushed to three `entity = "host"` push
# providers of a release server on PostgreSQL, 1,000 per request. Prints observations/s (target
# >= 20,000/s) and the CPU seconds the server and PostgreSQL spent on it, and checks the outcome:
# every machine one host, every report one observation, no conflict. Then pushes everything
# again (every report unchanged).
#
# Baseline, same run: `psql \copy` of the same reports as CSV into a staging table plus one
# INSERT … ON CONFLICT (provider, external_id) into a copy of `host_observations` — storing the
# reports without resolving anything. The ratio says what resolution and HTTP cost on top.
#
# Needs: PostgreSQL reachable at $PGURL (a role that may create databases), python3, psql, curl,
# bc. Usage: bench/hosts.sh [OBSERVATIONS]; BATCH=N pushes N reports per request (default 1,000);
# PARALLEL=1 pushes each tool's reports from its own client at once; BIN=PATH runs another
# build of the server (to compare two versions in one sitting).
set -euo pipefail
cd "$(dirname "$0")/.."

TOTAL=${1:-100000}
BATCH=${BATCH:-1000}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
WORK=${WORK:-/tmp/tributary-bench-hosts}
BIN=${BIN:-target/release/tributary}
PORT=${PORT:-18081}

for tool in psql python3 curl bc; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  echo "==> build"
  cargo build --release --locked --quiet
fi

DATA="$WORK/data-$TOTAL"
if [[ ! -f "$DATA/expected.txt" ]]; then
  echo "==> generate $TOTAL observations"
  python3 bench/gen_hosts.py "$DATA" "$TOTAL"
fi
read -r MACHINES OBSERVATIONS < "$DATA/expected.txt"

fresh_db() {
  psql "$PGURL/postgres" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
}
now() { date +%s.%N; }

# --- baseline ---------------------------------------------------------------------------
fresh_db tributary_bench_hosts_baseline
BASE_URL="$PGURL/tributary_bench_hosts_baseline"
DATABASE_URL=$BASE_URL "$BIN" migrate
# The same columns and indexes as host_observations (LIKE copies no foreign key).
psql "$BASE_URL" -q -v ON_ERROR_STOP=1 \
  -c "CREATE TABLE observations (LIKE host_observations INCLUDING ALL)" \
  -c "CREATE TABLE staging (provider text, external_id text, hostname text, fqdn text, os text, cloud_instance_id text, macs text, private_ips text, last_seen text)"
echo "==> baseline: psql \\copy + INSERT … ON CONFLICT"
t0=$(now)
psql "$BASE_URL" -q -v ON_ERROR_STOP=1 \
  -c "\\copy staging FROM '$DATA/observations.csv' WITH (FORMAT csv, HEADER true)" \
  -c "INSERT INTO observations (provider, external_id, host_id, hostname, fqdn, os, cloud_instance_id,
        private_ips, public_ips, macs, last_seen, reported_at, updated_at)
      SELECT provider, external_id, 0, nullif(hostname, ''), nullif(fqdn, ''), nullif(os, ''),
             nullif(cloud_instance_id, ''), private_ips::jsonb, '[]'::jsonb, macs::jsonb,
             last_seen::timestamptz, now(), now()
      FROM staging
      ON CONFLICT (provider, external_id) DO UPDATE SET
        hostname = EXCLUDED.hostname, fqdn = EXCLUDED.fqdn, os = EXCLUDED.os,
        cloud_instance_id = EXCLUDED.cloud_instance_id, private_ips = EXCLUDED.private_ips,
        macs = EXCLUDED.macs, last_seen = EXCLUDED.last_seen, updated_at = EXCLUDED.updated_at"
t1=$(now)
baseline=$(echo "$t1 - $t0" | bc -l)
printf 'baseline: %.2f s\n' "$baseline"

# --- ours -------------------------------------------------------------------------------
fresh_db tributary_bench_hosts
URL="$PGURL/tributary_bench_hosts"
PROVIDERS="$WORK/providers"
mkdir -p "$PROVIDERS"
for tool in tool-a tool-b tool-c; do
  cat > "$PROVIDERS/$tool.toml" <<TOML
entity = "host"
[source]
kind = "push"
[fields]
id = "id"
hostname = "hostname"
fqdn = "fqdn"
os = "os"
cloud_instance_id = "instance"
macs = { path = "macs", transforms = ["mac"] }
ips = { path = "ips", transforms = ["ip"] }
last_seen = { path = "last_seen", transforms = ["timestamp"] }
TOML
done
DATABASE_URL=$URL TRIBUTARY_LISTEN=127.0.0.1:$PORT TRIBUTARY_PROVIDERS_DIR=$PROVIDERS \
  TRIBUTARY_HTTP__BODY_LIMIT_BYTES=16777216 RUST_LOG=warn "$BIN" serve &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
  sleep 0.1
done

echo "==> push $OBSERVATIONS observations, $BATCH per request${PARALLEL:+ (PARALLEL=$PARALLEL: one client per tool at once)}"
# CPU seconds the server and this database's PostgreSQL backends have used (PostgreSQL's only
# when it runs on this machine): where the time of a push goes, which wall time alone hides.
TICKS=$(getconf CLK_TCK)
cpu_of() { [[ -r /proc/$1/stat ]] && awk -v t="$TICKS" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat" || echo 0; }
backends_cpu() {
  local total=0
  for pid in $(psql "$URL" -At -c "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"); do
    total=$(echo "$total + $(cpu_of "$pid")" | bc -l)
  done
  echo "$total"
}
server_before=$(cpu_of "$SERVER")
backends_before=$(backends_cpu)
first=$(python3 bench/push_hosts.py "http://127.0.0.1:$PORT" "$DATA" "$BATCH")
server_cpu=$(echo "$(cpu_of "$SERVER") - $server_before" | bc -l)
backends_cpu=$(echo "$(backends_cpu) - $backends_before" | bc -l)
echo "$first"
echo "==> push them all again"
again=$(python3 bench/push_hosts.py "http://127.0.0.1:$PORT" "$DATA" "$BATCH")
echo "$again"

read -r hosts observations conflicts < <(psql "$URL" -At -F ' ' -c \
  "SELECT (SELECT count(*) FROM hosts), (SELECT count(*) FROM host_observations), (SELECT count(*) FROM host_conflicts)")
seconds=$(echo "$first" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
seconds_again=$(echo "$again" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')

echo
echo "==> results ($OBSERVATIONS observations of $MACHINES machines from 3 tools)"
printf 'resolution:   %.2f s = %.0f observations/s (target >= 20000/s); baseline %.2f s, ratio %.2fx\n' \
  "$seconds" "$(echo "$OBSERVATIONS / $seconds" | bc -l)" "$baseline" "$(echo "$seconds / $baseline" | bc -l)"
printf 'cpu:          server %.2f s, PostgreSQL backends %.2f s (first push)\n' "$server_cpu" "$backends_cpu"
printf 'again:        %.2f s = %.0f observations/s (all unchanged)\n' \
  "$seconds_again" "$(echo "$OBSERVATIONS / $seconds_again" | bc -l)"
echo "hosts:        $hosts (expected $MACHINES)"
echo "observations: $observations (expected $OBSERVATIONS)"
echo "conflicts:    $conflicts (expected 0)"
[[ "$hosts" == "$MACHINES" && "$observations" == "$OBSERVATIONS" && "$conflicts" == 0 ]] \
  || { echo "wrong outcome" >&2; exit 1; }
