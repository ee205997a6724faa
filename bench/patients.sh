#!/usr/bin/env bash
# The patients pipeline (10-page listing, 10,000 followed text documents parsed by regex),
# run by hand: `tributary ingest` against the local stand-in provider with a fixed latency per
# response, timed against the ideal for that latency and the configured concurrency:
#   ideal = pages × (latency + ceil(documents per page / concurrency) × latency)
# (listing pages are sequential, each page's documents are fetched `concurrency` at a time).
#
# Usage: bench/patients.sh [LATENCY_MS] [CONCURRENCY]   (defaults 20 ms, 50)
# Database: $DATABASE_URL, default a fresh PostgreSQL database at $PGURL.
set -euo pipefail
cd "$(dirname "$0")/.."

LATENCY_MS=${1:-20}
CONCURRENCY=${2:-50}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
WORK=${WORK:-/tmp/tributary-bench-patients}
BIN=${BIN:-target/release/tributary}
MOCK_PROVIDER=${MOCK_PROVIDER:-target/release/examples/mock_provider}
mkdir -p "$WORK/providers"

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  echo "==> build"
  cargo build --release --locked --quiet
  cargo build --release --locked --quiet --example mock_provider
fi

if [[ -z "${DATABASE_URL:-}" ]]; then
  psql "$PGURL/postgres" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS tributary_bench_patients" -c "CREATE DATABASE tributary_bench_patients"
  DATABASE_URL="$PGURL/tributary_bench_patients"
fi
export DATABASE_URL

# The stand-in provider runs until its stdin closes (when this script exits).
coproc MOCK { "$MOCK_PROVIDER" "$LATENCY_MS"; }
read -r BASE <&"${MOCK[0]}"
echo "provider: $BASE (latency $LATENCY_MS ms), concurrency $CONCURRENCY"

cat > "$WORK/providers/patients.toml" <<TOML
entity = "record"
dataset = "patients"
key = "id"
[source]
kind = "http"
url = "$BASE/storage/v1/b/patients-bucket/o"
records = "\$.items[*]"
skip = [{ field = "\$.name", starts_with = "index" }]
[source.pagination]
kind = "cursor"
token_path = "\$.nextPageToken"
param = "pageToken"
[source.follow]
url = "\$.mediaLink"
concurrency = $CONCURRENCY
[parse]
format = "text"
pattern = '(?s)ID: (?P<id>[^\n]*)\nNAME: (?P<name>[^\n]*)\nAGE: (?P<age>[^\n]*)\nINSTITUTION: (?P<institution>[^\n]*)\nACTIVITY: (?P<activity>[^\n]*)\nCOMMENT: (?P<comment>.*)'
[fields]
id = { path = "id", transforms = ["trim"] }
name_hash = { path = "name", transforms = ["trim", { sha256 = { key = "bench-key" } }] }
age = { path = "age", transforms = [{ int = { default = -1 } }] }
institution = { path = "institution", transforms = ["trim"] }
activity = { path = "activity", transforms = ["trim"] }
comment = { path = "comment", transforms = ["trim"] }
TOML

export TRIBUTARY_PROVIDERS_DIR="$WORK/providers"
# The stand-in provider listens on loopback, which provider requests may not reach by default.
export TRIBUTARY_OUTBOUND__ALLOWED_NETWORKS='["127.0.0.0/8"]'
"$BIN" migrate
start=$(date +%s.%N)
"$BIN" ingest patients --mode full
end=$(date +%s.%N)
took=$(echo "$end - $start" | bc -l)
ideal=$(echo "10 * ($LATENCY_MS + ((1000 + $CONCURRENCY - 1) / $CONCURRENCY) * $LATENCY_MS) / 1000" | bc -l)
echo
printf 'patients: %.2f s for 10,000 documents; ideal %.2f s at %d ms latency and concurrency %d; ratio %.2fx (target <= 1.3x)\n' \
  "$took" "$ideal" "$LATENCY_MS" "$CONCURRENCY" "$(echo "$took / $ideal" | bc -l)"
