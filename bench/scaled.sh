#!/usr/bin/env bash
# Scaled mode (issue 12): the cost of PostgreSQL + Redis, and what a second
# instance buys. Needs wrk, curl, psql, and the PostgreSQL and Redis servers
# (BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres, is
# used to create a scratch database; BENCH_REDIS_URL, default
# redis://127.0.0.1:6379/, with a key prefix of this run's own).
# Reports, on the same run: authenticated GET /portfolio (20 positions) and
# logins on one embedded instance, one scaled instance, and two scaled
# instances behind a round-robin client (two wrk processes, one per instance,
# each with half the connections; their rates are summed). TLS is off for all
# three, as behind a TLS-terminating proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
DURATION="${DURATION:-10}"
CONNS="${CONNS:-16}"
cargo build --release --quiet --bin fortfolio
BIN="${BIN:-target/release/fortfolio}"
ADMIN_URL="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
REDIS_URL="${BENCH_REDIS_URL:-redis://127.0.0.1:6379/}"
DB="ff_bench_$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
psql -q "$ADMIN_URL" -c "CREATE DATABASE $DB"
PG_URL="${ADMIN_URL%/*}/$DB"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB" || true
  redis-cli -u "$REDIS_URL" --scan --pattern "$DB:*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
export FORTFOLIO_LOGGING__LEVEL=warn FORTFOLIO_SERVER__TLS=off
lift_limits
SCALED=(FORTFOLIO_STORAGE__BACKEND=postgres "FORTFOLIO_STORAGE__POSTGRES_URL=$PG_URL"
  FORTFOLIO_STATE__BACKEND=redis "FORTFOLIO_STATE__REDIS_URL=$REDIS_URL" "FORTFOLIO_STATE__REDIS_PREFIX=$DB:"
  FORTFOLIO_AUTH__JWT_SECRET=bench-shared-secret-0123456789abcdef0123
  FORTFOLIO_AUTH__TOTP_KEY=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff)

start() { # name port [env...] → starts a server, waits for /health
  local name=$1 port=$2; shift 2
  env "$@" FORTFOLIO_LOGGING__DIR="$WORK/$name/logs" \
    "$BIN" serve --data-dir "$WORK/$name" --bind "127.0.0.1:$port" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  wait_up "http://127.0.0.1:$port/api/v1/health" "$WORK/$name.log"
}
setup_user() { # base email → access token, after buying 20 positions
  local base=$1 email=$2 token s
  token=$(curl -s "$base/auth/register" -H 'content-type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"violet-anchor-tundra-41\"}" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
  for s in $(curl -s "$base/prices" -H "Authorization: Bearer $token" | grep -oE '"symbol":"[A-Z]+"' | cut -d'"' -f4 | head -20); do
    curl -s "$base/portfolio/buy" -H "Authorization: Bearer $token" -H 'content-type: application/json' \
      -d "{\"symbol\":\"$s\",\"quantity\":\"3\"}" >/dev/null
  done
  echo "$token"
}
login_lua() { # email → a wrk script file
  local f="$WORK/login-$1.lua"
  printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = %s\n' \
    "'{\"email\":\"$1\",\"password\":\"violet-anchor-tundra-41\"}'" >"$f"
  echo "$f"
}
one() { # url token|"" [lua] → "rate p99 non2xx"
  local out
  if [ -n "${3:-}" ]; then out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$3" "$1")
  else out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -H "Authorization: Bearer $2" "$1"); fi
  echo "$(echo "$out" | rps) $(echo "$out" | p99) $(echo "$out" | non2xx)"
}
two() { # url1 url2 token|"" [lua] → "summed-rate worst-p99 non2xx" (half the connections each)
  local half=$((CONNS / 2)) a b
  if [ -n "${4:-}" ]; then
    wrk -t1 -c"$half" -d"${DURATION}s" --latency -s "$4" "$1" >"$WORK/w1" &
    wrk -t1 -c"$half" -d"${DURATION}s" --latency -s "$4" "$2" >"$WORK/w2"
  else
    wrk -t1 -c"$half" -d"${DURATION}s" --latency -H "Authorization: Bearer $3" "$1" >"$WORK/w1" &
    wrk -t1 -c"$half" -d"${DURATION}s" --latency -H "Authorization: Bearer $3" "$2" >"$WORK/w2"
  fi
  wait %1
  a=$(rps <"$WORK/w1"); b=$(rps <"$WORK/w2")
  echo "$(echo "$a + $b" | bc) $(p99 <"$WORK/w1")/$(p99 <"$WORK/w2") $(cat "$WORK/w1" "$WORK/w2" | non2xx)"
}

start embedded 18601
start scaled-a 18602 "${SCALED[@]}"
start scaled-b 18603 "${SCALED[@]}"
E=http://127.0.0.1:18601/api/v1; A=http://127.0.0.1:18602/api/v1; B=http://127.0.0.1:18603/api/v1
TE=$(setup_user "$E" bench@example.com)
TA=$(setup_user "$A" bench@example.com)
LUA=$(login_lua bench@example.com)

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); wrk -c$CONNS, ${DURATION}s each, TLS off"
printf '%-44s %12s %10s %8s\n' "setup / measure" "req/s" "p99" "non-2xx"
row() { local r; r=($2); printf '%-44s %12s %10s %8s\n' "$1" "${r[0]}" "${r[1]}" "${r[2]}"; }
PE=$(one "$E/portfolio" "$TE"); row "embedded, 1 instance: GET /portfolio" "$PE"
PA=$(one "$A/portfolio" "$TA"); row "scaled, 1 instance: GET /portfolio" "$PA"
PAB=$(two "$A/portfolio" "$B/portfolio" "$TA"); row "scaled, 2 instances: GET /portfolio" "$PAB"
LE=$(one "$E/auth/login" "" "$LUA"); row "embedded, 1 instance: POST /auth/login" "$LE"
LA=$(one "$A/auth/login" "" "$LUA"); row "scaled, 1 instance: POST /auth/login" "$LA"
LAB=$(two "$A/auth/login" "$B/auth/login" "" "$LUA"); row "scaled, 2 instances: POST /auth/login" "$LAB"
ratio() { echo "scale=2; $(echo "$1" | cut -d' ' -f1) / $(echo "$2" | cut -d' ' -f1)" | bc; }
echo "GET /portfolio: scaled ÷ embedded = $(ratio "$PA" "$PE"); two scaled ÷ one scaled = $(ratio "$PAB" "$PA")"
echo "logins:         scaled ÷ embedded = $(ratio "$LA" "$LE"); two scaled ÷ one scaled = $(ratio "$LAB" "$LA")"
