#!/usr/bin/env bash
# Reads during a registration storm: the p99 of GET /portfolio (20
# positions, wrk -t1 -c16) alone, then while another wrk -t1 -c16 registers
# new accounts for the whole run, and how many registrations were answered
# 201 or refused. TLS off, loopback, like bench/compare.sh.
#
#   bench/register_storm.sh                  this checkout's release build
#   bench/register_storm.sh <other binary>   that build first, then this one
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
DURATION="${DURATION:-10}"
PORT="${PORT:-18711}"
cargo build --release --quiet --bin fortfolio
export FORTFOLIO_LOGGING__LEVEL=warn FORTFOLIO_SERVER__TLS=off
lift_limits
measure() { # label binary
  local data pid base token alone storm out
  data=$(mktemp -d)
  base="http://127.0.0.1:$PORT/api/v1"
  FORTFOLIO_LOGGING__DIR="$data/logs" "$2" serve --data-dir "$data" --bind "127.0.0.1:$PORT" >"$data/server.log" 2>&1 &
  pid=$!
  wait_up "$base/health" "$data/server.log"
  token=$(fortfolio_user "$base")
  alone=$(wrk -t1 -c16 -d"${DURATION}s" --latency -H "Authorization: Bearer $token" "$base/portfolio" | p99)
  wrk -t1 -c16 -d"$((DURATION + 2))s" -s bench/register.lua "http://127.0.0.1:$PORT" >"$data/storm" &
  sleep 1
  storm=$(wrk -t1 -c16 -d"${DURATION}s" --latency -H "Authorization: Bearer $token" "$base/portfolio" | p99)
  wait $!
  out=$(cat "$data/storm")
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$data"
  printf '%-6s p99 GET /portfolio alone %8s, in a registration storm %8s; registrations %s/s, refused %s\n' \
    "$1" "$alone" "$storm" "$(echo "$out" | rps)" "$(echo "$out" | non2xx)"
}
machine
[ -n "${1:-}" ] && measure other "$1"
measure this target/release/fortfolio
