#!/usr/bin/env bash
# Account paths (foundation issue). Needs wrk (apt-get install -y wrk) and curl.
# Reports, on the same machine and run:
#   - logins/s against raw argon2id verifications/s with the same parameters
#   - authenticated GET /me requests/s against GET /health requests/s
source "$(dirname "$0")/common.sh"
TOKEN=$(register bench@example.com)
machine
RAW=$(target/release/examples/argon2_rate "$DURATION")
LOGIN_OUT=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s bench/login.lua "$BASE/auth/login")
LOGINS=$(echo "$LOGIN_OUT" | rps)
HEALTH_OUT=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$BASE/health")
HEALTH=$(echo "$HEALTH_OUT" | rps)
ME_OUT=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" "$BASE/me")
ME=$(echo "$ME_OUT" | rps)
printf 'raw argon2id verifications/s : %s\n' "$RAW"
printf 'logins/s                     : %s (p99 %s)  ratio %.2f (target >= 0.85)\n' "$LOGINS" "$(echo "$LOGIN_OUT" | p99)" "$(echo "$LOGINS / $RAW" | bc -l)"
printf 'GET /health req/s            : %s (p99 %s)\n' "$HEALTH" "$(echo "$HEALTH_OUT" | p99)"
printf 'GET /me req/s                : %s (p99 %s)  ratio %.2f (target >= 0.5)\n' "$ME" "$(echo "$ME_OUT" | p99)" "$(echo "$ME / $HEALTH" | bc -l)"
printf 'non-2xx responses            : %s\n' "$(echo "$LOGIN_OUT$ME_OUT" | non2xx)"
