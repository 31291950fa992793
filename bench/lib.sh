# Helpers shared by the bench scripts: read wrk's output, describe the
# machine, lift the limits a benchmark would (correctly) run into.
command -v wrk >/dev/null || { echo "wrk is required: apt-get install -y wrk" >&2; exit 1; }
rps() { sed -nE 's/^Requests\/sec:[[:space:]]+([0-9.]+).*/\1/p'; }
p99() { sed -nE 's/^[[:space:]]+99%[[:space:]]+([0-9.]+[a-z]+).*/\1/p'; }
# wrk's p99 ("850.00us", "3.21ms", "1.02s") in milliseconds.
p99_ms() {
  p99 | awk '/us$/ {printf "%.3f", $0 / 1000; next} /ms$/ {printf "%.3f", $0 + 0; next} /s$/ {printf "%.3f", $0 * 1000}'
}
non2xx() { local n; n=$(sed -nE 's/.*Non-2xx or 3xx responses: ([0-9]+).*/\1/p' | paste -sd+ | bc 2>/dev/null); echo "${n:-0}"; }
machine() { echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -nE 's/^model name\s+: (.*)/\1/p' /proc/cpuinfo | head -1)"; }
# Rate limits and the lockout would refuse a benchmark's traffic: 16
# concurrent logins to one account hold more attempts in flight than the
# lockout threshold allows (by design, see README).
lift_limits() {
  local k
  for k in register login refresh account password portfolio prices news predictions recovery; do
    export "FORTFOLIO_RATE_LIMITS__$(echo "$k" | tr a-z A-Z)=1000000/s"
  done
  export FORTFOLIO_AUTH__LOCKOUT_THRESHOLD=1000000
}
wait_up() { # url [log file shown on failure]
  local _
  for _ in $(seq 150); do curl -skf "$1" >/dev/null && return 0; sleep 0.2; done
  echo "no answer from $1" >&2
  [ -n "${2:-}" ] && cat "$2" >&2
  exit 1
}
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
# base (http://…/api/v1) → the access token of a new user bench@example.com
# (password $PASSWORD, or the benches' usual one) holding 20 positions.
fortfolio_user() {
  local base=$1 token s
  token=$(curl -sk "$base/auth/register" -H 'content-type: application/json' \
    -d "{\"email\":\"bench@example.com\",\"password\":\"${PASSWORD:-violet-anchor-tundra-41}\"}" | json_field access_token)
  for s in $(curl -sk "$base/prices" -H "Authorization: Bearer $token" | grep -oE '"symbol":"[A-Z]+"' | cut -d'"' -f4 | head -20); do
    curl -skf "$base/portfolio/buy" -H "Authorization: Bearer $token" -H 'content-type: application/json' \
      -d "{\"symbol\":\"$s\",\"quantity\":\"3\"}" >/dev/null
  done
  echo "$token"
}
