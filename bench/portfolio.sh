#!/usr/bin/env bash
# Portfolio paths (portfolio issue). Needs wrk and curl. Reports, same run:
#   - GET /portfolio with 20 positions req/s against GET /health req/s
#   - buys/s sustained on the durable (fsync per order) store, with p99
source "$(dirname "$0")/common.sh"
TOKEN=$(register bench@example.com)
machine
SYMS=$(curl -sk "$BASE/prices" -H "Authorization: Bearer $TOKEN" | grep -oE '"symbol":"[A-Z]+"' | cut -d'"' -f4 | head -20)
for s in $SYMS; do
  curl -sk "$BASE/portfolio/buy" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d "{\"symbol\":\"$s\",\"quantity\":\"3\"}" >/dev/null
done
POSITIONS=$(curl -sk "$BASE/portfolio" -H "Authorization: Bearer $TOKEN" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["positions"]))')
HEALTH_OUT=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$BASE/health")
HEALTH=$(echo "$HEALTH_OUT" | rps)
PF_OUT=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" "$BASE/portfolio")
PF=$(echo "$PF_OUT" | rps)
BUY_OUT=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s bench/buy.lua -H "Authorization: Bearer $TOKEN" "$BASE/portfolio/buy")
BUYS=$(echo "$BUY_OUT" | rps)
LEDGER=$(curl -sk "$BASE/portfolio" -H "Authorization: Bearer $TOKEN" | python3 -c 'import json,sys; print(next(p["quantity"] for p in json.load(sys.stdin)["positions"] if p["symbol"]=="SPY"))')
TXS=$(curl -sk "$BASE/portfolio/transactions?symbol=SPY&limit=1" -H "Authorization: Bearer $TOKEN" -o /dev/null -w '%{http_code}')
printf 'positions                    : %s\n' "$POSITIONS"
printf 'GET /health req/s            : %s (p99 %s)\n' "$HEALTH" "$(echo "$HEALTH_OUT" | p99)"
printf 'GET /portfolio req/s         : %s (p99 %s)  ratio %.2f (target >= 0.4)\n' "$PF" "$(echo "$PF_OUT" | p99)" "$(echo "$PF / $HEALTH" | bc -l)"
printf 'buys/s (durable)             : %s (p99 %s)\n' "$BUYS" "$(echo "$BUY_OUT" | p99)"
printf 'SPY quantity after the run   : %s (3 + one per 201 buy)\n' "$LEDGER"
printf 'non-2xx responses            : %s\n' "$(echo "$PF_OUT$BUY_OUT" | non2xx)"
