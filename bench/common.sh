# Shared by the bench scripts: build, start a release server on a fresh data
# dir with rate limits lifted, and parse wrk output.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DURATION="${DURATION:-10}"
CONNS="${CONNS:-16}"
command -v wrk >/dev/null || { echo "wrk is required: apt-get install -y wrk" >&2; exit 1; }
# BIN=<path> benchmarks another build of the server (e.g. an older commit's,
# to compare two versions in one run); the default builds this checkout.
cargo build --release --quiet --bin fortfolio --example argon2_rate
BIN="${BIN:-target/release/fortfolio}"
DATA=$(mktemp -d)
PORT="${PORT:-18443}"
BASE="https://127.0.0.1:$PORT/api/v1"
export FORTFOLIO_LOGGING__LEVEL=warn FORTFOLIO_LOGGING__DIR="$DATA/logs"
# Rate limits would (correctly) refuse a benchmark; lift them for this run.
for k in register login refresh account password portfolio prices news predictions; do
  export "FORTFOLIO_RATE_LIMITS__$(echo "$k" | tr a-z A-Z)=1000000/s"
done
# So would the lockout: 16 concurrent logins to one account hold more
# attempts in flight than the threshold allows (by design, see README), so
# the login benchmark raises the threshold too.
export FORTFOLIO_AUTH__LOCKOUT_THRESHOLD=1000000
$BIN serve --data-dir "$DATA" --bind "127.0.0.1:$PORT" >"$DATA/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do curl -skf "$BASE/health" >/dev/null && break; sleep 0.2; done

register() { # email -> access token
  curl -sk "$BASE/auth/register" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"violet-anchor-tundra-41\"}" | sed -E 's/.*"access_token":"([^"]+)".*/\1/'
}
rps() { sed -nE 's/^Requests\/sec:[[:space:]]+([0-9.]+).*/\1/p'; }
p99() { sed -nE 's/^[[:space:]]+99%[[:space:]]+([0-9.]+[a-z]+).*/\1/p'; }
non2xx() { local n; n=$(sed -nE 's/.*Non-2xx or 3xx responses: ([0-9]+).*/\1/p' | paste -sd+ | bc 2>/dev/null); echo "${n:-0}"; }
machine() { echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -nE 's/^model name\s+: (.*)/\1/p' /proc/cpuinfo | head -1)"; }
