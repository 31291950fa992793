# Shared by the bench scripts: build, start a release server on a fresh data
# dir with rate limits lifted, and parse wrk output.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source bench/lib.sh
DURATION="${DURATION:-10}"
CONNS="${CONNS:-16}"
# BIN=<path> benchmarks another build of the server (e.g. an older commit's,
# to compare two versions in one run); the default builds this checkout.
cargo build --release --quiet --bin fortfolio --example argon2_rate
BIN="${BIN:-target/release/fortfolio}"
DATA=$(mktemp -d)
PORT="${PORT:-18443}"
BASE="https://127.0.0.1:$PORT/api/v1"
export FORTFOLIO_LOGGING__LEVEL=warn FORTFOLIO_LOGGING__DIR="$DATA/logs"
lift_limits
$BIN serve --data-dir "$DATA" --bind "127.0.0.1:$PORT" >"$DATA/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
wait_up "$BASE/health" "$DATA/server.log"

register() { # email -> access token
  curl -sk "$BASE/auth/register" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"violet-anchor-tundra-41\"}" | json_field access_token
}
