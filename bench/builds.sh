#!/usr/bin/env bash
# Authenticated GET /me against GET /health for two builds in one run, so a
# change's effect on the per-request cost of authentication is measured on
# the same machine at the same time: `bench/builds.sh /path/to/old/fortfolio`.
# The other build runs first, then this checkout's; each on a fresh data dir.
set -euo pipefail
cd "$(dirname "$0")/.."
OTHER="${1:?usage: bench/builds.sh <other fortfolio binary>}"
DURATION="${DURATION:-10}"
CONNS="${CONNS:-16}"
PORT="${PORT:-18443}"
source bench/lib.sh
cargo build --release --quiet --bin fortfolio
measure() { # label binary
  local data pid base token health me
  data=$(mktemp -d)
  base="https://127.0.0.1:$PORT/api/v1"
  FORTFOLIO_LOGGING__LEVEL=warn FORTFOLIO_LOGGING__DIR="$data/logs" \
    FORTFOLIO_RATE_LIMITS__REGISTER=1000000/s FORTFOLIO_RATE_LIMITS__ACCOUNT=1000000/s \
    "$2" serve --data-dir "$data" --bind "127.0.0.1:$PORT" >"$data/server.log" 2>&1 &
  pid=$!
  wait_up "$base/health" "$data/server.log"
  token=$(curl -sk "$base/auth/register" -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"violet-anchor-tundra-41"}' | json_field access_token)
  health=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$base/health")
  me=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -H "Authorization: Bearer $token" "$base/me")
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$data"
  printf '%-8s GET /health %9s req/s (p99 %s)   GET /me %9s req/s (p99 %s)   /me ÷ /health %.3f\n' \
    "$1" "$(echo "$health" | rps)" "$(echo "$health" | p99)" "$(echo "$me" | rps)" "$(echo "$me" | p99)" \
    "$(echo "$(echo "$me" | rps) / $(echo "$health" | rps)" | bc -l)"
}
echo "machine: $(nproc) cores, ${DURATION}s per run, $CONNS connections"
measure other "$OTHER"
measure this target/release/fortfolio
