#!/usr/bin/env bash
# Rerunnable benchmark of the account paths (issue: foundation).
#   bench/run.sh            # needs wrk (apt-get install wrk) and curl
# Reports, on the same machine and run:
#   - logins/s against raw argon2id verifications/s with the same parameters
#   - authenticated GET /me requests/s against GET /health requests/s
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-10}"
CONNS="${CONNS:-16}"
command -v wrk >/dev/null || { echo "wrk is required: apt-get install -y wrk" >&2; exit 1; }

cargo build --release --quiet --bin fortfolio --example argon2_rate
BIN=target/release/fortfolio
DATA=$(mktemp -d)
PORT="${PORT:-18443}"
BASE="https://127.0.0.1:$PORT/api/v1"
export FORTFOLIO_LOGGING__LEVEL=warn
# Rate limits would (correctly) refuse a benchmark; lift them for this run.
for k in register login refresh account password; do
  export "FORTFOLIO_RATE_LIMITS__$(echo "$k" | tr a-z A-Z)=1000000/s"
done
$BIN serve --data-dir "$DATA" --bind "127.0.0.1:$PORT" >"$DATA/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 50); do curl -skf "$BASE/health" >/dev/null && break; sleep 0.2; done

TOKEN=$(curl -sk "$BASE/auth/register" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"violet-anchor-tundra-41"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

rps() { sed -nE 's/^Requests\/sec:[[:space:]]+([0-9.]+).*/\1/p'; }
p99() { sed -nE 's/^[[:space:]]+99%[[:space:]]+([0-9.]+[a-z]+).*/\1/p'; }

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -nE 's/^model name\s+: (.*)/\1/p' /proc/cpuinfo | head -1)"
RAW=$(target/release/examples/argon2_rate "$DURATION")
LOGIN_OUT=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s bench/login.lua "$BASE/auth/login")
LOGINS=$(echo "$LOGIN_OUT" | rps)
HEALTH_OUT=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$BASE/health")
HEALTH=$(echo "$HEALTH_OUT" | rps)
ME_OUT=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" "$BASE/me")
ME=$(echo "$ME_OUT" | rps)
NON2XX=$(echo "$LOGIN_OUT$ME_OUT" | sed -nE 's/.*Non-2xx or 3xx responses: ([0-9]+).*/\1/p' | paste -sd+ | bc 2>/dev/null || true)

printf 'raw argon2id verifications/s : %s\n' "$RAW"
printf 'logins/s                     : %s (p99 %s)  ratio %.2f (target >= 0.85)\n' "$LOGINS" "$(echo "$LOGIN_OUT" | p99)" "$(echo "$LOGINS / $RAW" | bc -l)"
printf 'GET /health req/s            : %s (p99 %s)\n' "$HEALTH" "$(echo "$HEALTH_OUT" | p99)"
printf 'GET /me req/s                : %s (p99 %s)  ratio %.2f (target >= 0.5)\n' "$ME" "$(echo "$ME_OUT" | p99)" "$(echo "$ME / $HEALTH" | bc -l)"
printf 'non-2xx responses            : %s\n' "${NON2XX:-0}"
