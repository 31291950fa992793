#!/usr/bin/env bash
# Predictions (model issue). Needs wrk and curl. Reports:
#   - training time (walk-forward evaluation + final fit) per bundled symbol,
#     measured as the first POST /predictions of each symbol at horizon 5
#   - the second (cached) request's time inside the server (Server-Timing),
#     and cached predictions req/s
# (WTI's model learns from the days after its negative close of 2020-04-20.)
source "$(dirname "$0")/common.sh"
TOKEN=$(register bench@example.com)
machine
SYMS=$(curl -sk "$BASE/prices" -H "Authorization: Bearer $TOKEN" | grep -oE '"symbol":"[A-Z]+"' | cut -d'"' -f4)
printf '%-7s %7s %6s %10s %16s\n' SYMBOL ROWS STATUS TRAIN_S CACHED_SERVER_MS
for s in $SYMS; do
  ROWS=$(curl -sk "$BASE/prices/$s?history=max" -H "Authorization: Bearer $TOKEN" | grep -o '"date"' | wc -l)
  REQ=(-sk -o /dev/null -D - "$BASE/predictions" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d "{\"symbol\":\"$s\",\"horizon_days\":5}")
  # Server-Timing: the time spent inside the server, in ms.
  HEAD=$(curl "${REQ[@]}")
  STATUS=$(echo "$HEAD" | sed -nE 's/^HTTP\/[0-9.]+ ([0-9]+).*/\1/p' | head -1)
  FIRST=$(echo "$HEAD" | sed -nE 's/^server-timing: app;dur=([0-9.]+).*/\1/p')
  SECOND=$(curl "${REQ[@]}" | sed -nE 's/^server-timing: app;dur=([0-9.]+).*/\1/p')
  printf '%-7s %7s %6s %10.3f %16.3f\n' "$s" "$ROWS" "$STATUS" "$(echo "$FIRST / 1000" | bc -l)" "$SECOND"
done
OUT=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s bench/predict.lua -H "Authorization: Bearer $TOKEN" "$BASE/predictions")
printf 'cached predictions req/s     : %s (p99 %s), non-2xx %s\n' "$(echo "$OUT" | rps)" "$(echo "$OUT" | p99)" "$(echo "$OUT" | non2xx)"
