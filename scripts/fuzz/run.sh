#!/usr/bin/env bash
# Contract fuzzing: schemathesis (every check, stateful phase included)
# against the release server, authenticated as a fuzz account, with a fixed
# seed and a bounded number of examples per operation. Any failure fails.
#
#   scripts/fuzz/run.sh [max examples per operation, default 500]
#
# Needs target/release/fortfolio (or FORTFOLIO_BIN) and schemathesis
# (`.ci/run` installs it into a virtual environment; set
# SCHEMATHESIS=/path/to/st otherwise).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
examples="${1:-500}"
st="${SCHEMATHESIS:-st}"
bin="${FORTFOLIO_BIN:-$root/target/release/fortfolio}"
case "$bin" in /*) ;; *) bin="$root/$bin" ;; esac
work="$(mktemp -d)"
port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"

# Limits high enough that the fuzzer tests the contract, not the limiter;
# the rate limiter and lockout have their own tests.
cat > "$work/fuzz.toml" <<TOML
[server]
bind = "127.0.0.1:$port"
tls = "off"
[storage]
data_dir = "$work/data"
[logging]
dir = "$work/logs"
level = "warn"
[auth]
lockout_threshold = 1000000
# A mail server that never answers: the mailing endpoints (SPEC §12) run
# their real paths and queue their mails instead of answering 503.
[smtp]
host = "127.0.0.1"
port = $((port + 1))
security = "none"
[rate_limits]
register = "100000/min"
login = "100000/min"
two_factor = "100000/min"
refresh = "100000/min"
logout = "100000/min"
password = "100000/min"
account = "100000/min"
portfolio = "100000/min"
prices = "100000/min"
news = "100000/min"
predictions = "100000/min"
admin = "100000/min"
recovery = "100000/min"
TOML

"$bin" --config "$work/fuzz.toml" serve > "$work/server.log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 100); do
  curl -fsS "$base/api/v1/health" > /dev/null 2>&1 && break
  sleep 0.1
done

export FORTFOLIO_FUZZ_BASE="$base"
export FORTFOLIO_FUZZ_EMAIL="fuzz-$RANDOM@fuzz.example.org"
export FORTFOLIO_FUZZ_PASSWORD="fuzzing-account-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
curl -fsS -o /dev/null -H 'content-type: application/json' \
  -d "{\"email\": \"$FORTFOLIO_FUZZ_EMAIL\", \"password\": \"$FORTFOLIO_FUZZ_PASSWORD\"}" \
  "$base/api/v1/auth/register"
# Something to sell, list and page through.
token=$(curl -fsS -H 'content-type: application/json' \
  -d "{\"email\": \"$FORTFOLIO_FUZZ_EMAIL\", \"password\": \"$FORTFOLIO_FUZZ_PASSWORD\"}" \
  "$base/api/v1/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
for symbol in AAPL MSFT SPY; do
  curl -fsS -o /dev/null -H 'content-type: application/json' -H "authorization: Bearer $token" \
    -d "{\"symbol\": \"$symbol\", \"quantity\": \"100\"}" "$base/api/v1/portfolio/buy"
done

export SCHEMATHESIS_HOOKS="hooks"
export FORTFOLIO_FUZZ_EXERCISED="$root/target/schemathesis/exercised.json"
mkdir -p "$root/target/schemathesis"
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
cd "$work"
status=0
"$st" --config-file "$here/schemathesis.toml" run "$base/api/v1/openapi.json" \
  --url "$base" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "$examples" \
  --seed 20261128 \
  --workers 2 \
  --generation-codec utf-8 \
  --suppress-health-check too_slow,filter_too_much \
  --request-timeout 30 \
  --report junit --report-dir "$root/target/schemathesis" \
  --no-color || status=$?
echo "== what the fuzzer sent (from $FORTFOLIO_FUZZ_EXERCISED)"
python3 -m json.tool "$FORTFOLIO_FUZZ_EXERCISED"
exit "$status"
