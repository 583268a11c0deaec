#!/usr/bin/env bash
# bench/costs_summary.sh - GET /api/v1/costs/summary for one month over
# 10 million priced messages, on PostgreSQL (goal: p99 < 20 ms).
#
# The summary reads only the per-dimension daily roll-up (cost_daily_by,
# migration 0011, see src/domain/costs.h), so the data set is the roll-up
# (cost_daily, then cost_daily_by summed from it) that 10M priced
# messages leave: for the benchmarked org, March 2026 (31 local days) x 4
# categories x 10 markets x 5 numbers x (no campaign + 3 campaigns running
# that day, 93 campaigns in the month) = 24,800 rows whose `messages` add up
# to 10,028,328 (spread 1..808 per row, deterministic) and `amount` = messages x the
# (market, category) rate, exact NUMERIC. NOISE_ORGS (50) other orgs get the
# same shape (another ~1.2M rows) so the index is not the org's alone.
# Message rows are not generated: the summary never reads them (the
# unit/integration tests prove the roll-up equals the messages' sums).
#
# Then, for each group_by (day, category, campaign, market,
# whatsapp_number):
#   wrk -t2 -c8 -d10s --latency -s bench/get.lua \
#     "http://127.0.0.1:PORT/api/v1/costs/summary?from=2026-03-01&to=2026-03-31&group_by=G"
# Uses PYTAKE_TEST_PG_URL when set (an admin URL; a fresh database is made
# in it), else starts a throwaway PostgreSQL with tests/lib/pg.sh.
# Environment: WRK_THREADS (2), WRK_CONNECTIONS (8), WRK_DURATION (10s),
# NOISE_ORGS (50), PYTAKE_BUILD_DIR (build-release).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${PYTAKE_BUILD_DIR:-build-release}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
THREADS="${WRK_THREADS:-2}"
CONNS="${WRK_CONNECTIONS:-8}"
DURATION="${WRK_DURATION:-10s}"
NOISE_ORGS="${NOISE_ORGS:-50}"

if [[ ! -x "$BUILD_DIR/pytake" ]]; then
	[[ -f "$BUILD_DIR/build.ninja" ]] || meson setup "$BUILD_DIR" --buildtype=release
	ninja -C "$BUILD_DIR" pytake
fi

# shellcheck source=../tests/lib/pg.sh
source "$ROOT/tests/lib/pg.sh"
TMP="$(mktemp -d /tmp/pytake-bench-costs.XXXXXX)"
SERVER_PID=""
STARTED_PG=0
cleanup() {
	if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	[[ $STARTED_PG -eq 1 ]] && pg_stop
	rm -rf "$TMP"
}
trap cleanup EXIT

if [[ -z "${PYTAKE_TEST_PG_URL:-}" ]]; then
	pg_start
	STARTED_PG=1
fi
PSQL="${PYTAKE_PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql"
[[ -x "$PSQL" ]] || PSQL=psql
DBNAME="bench_costs_$$"
"$PSQL" -q -X "$PYTAKE_TEST_PG_URL" -c "CREATE DATABASE $DBNAME"
URL="${PYTAKE_TEST_PG_URL%/*}/$DBNAME"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export DATABASE_URL="$URL" PORT BIND_ADDRESS=127.0.0.1 ENVIRONMENT=development \
	RATE_LIMIT_ENABLED=false LOG_LEVEL=warn DATA_DIR="$TMP"

"$BUILD_DIR/pytake" migrate upgrade head >/dev/null
ORG=$("$BUILD_DIR/pytake" org create --name "Bench costs" --slug bench-costs)
"$BUILD_DIR/pytake" user create --email viewer@bench.test --password bench-pass-123 \
	--org bench-costs --role viewer --full-name Bench >/dev/null

echo "== filling cost_daily (org $ORG + $NOISE_ORGS noise orgs)"
start=$(date +%s)
"$PSQL" -q -X -v ON_ERROR_STOP=1 "$URL" <<SQL
INSERT INTO organizations (id, name, slug, timezone, created_at, updated_at)
SELECT md5('noise' || g)::uuid, 'Noise ' || g, 'noise-' || g, 'UTC', 0, 0
FROM generate_series(1, $NOISE_ORGS) g;
CREATE TEMP TABLE rates (category text, market text, rate numeric(18,6));
INSERT INTO rates
SELECT c, m, (0.0010 + ((ascii(c) * 7 + ascii(m) * 13 + length(m)) % 600) / 10000.0)::numeric(18,6)
FROM unnest(ARRAY['marketing','utility','authentication','service']) c,
     unnest(ARRAY['BR','NORTH_AMERICA','IN','ES','MX','AR','CO','DE','NL','OTHER']) m;
INSERT INTO cost_daily (organization_id, day, category, market, whatsapp_number_id,
                        campaign_id, currency, messages, amount)
SELECT o.id, to_char(DATE '2026-03-01' + d, 'YYYY-MM-DD'), r.category, r.market,
       md5(o.id::text || 'number' || n)::uuid::text,
       CASE WHEN k = 0 THEN '' ELSE md5(o.id::text || 'campaign' || ((d * 3 + k) % 93))::uuid::text END,
       'USD', x.msgs, x.msgs * CASE WHEN r.category = 'service' THEN 0 ELSE r.rate END
FROM (SELECT '$ORG'::uuid AS id UNION ALL
      SELECT md5('noise' || g)::uuid FROM generate_series(1, $NOISE_ORGS) g) o,
     generate_series(0, 30) d, rates r, generate_series(1, 5) n, generate_series(0, 3) k,
     LATERAL (SELECT (1 + (d * 131 + n * 37 + k * 59 + ascii(r.market) * 17
                         + ascii(substr(r.market, 2)) * 7 + length(r.category) * 11) % 808)::bigint AS msgs) x;
-- the per-dimension roll-up the summaries read (what pricing maintains)
INSERT INTO cost_daily_by (organization_id, dimension, day, group_key, currency,
                           messages, amount)
SELECT organization_id, 'day', day, day, currency, SUM(messages), SUM(amount)
  FROM cost_daily GROUP BY organization_id, day, currency
UNION ALL
SELECT organization_id, 'category', day, category, currency, SUM(messages), SUM(amount)
  FROM cost_daily GROUP BY organization_id, day, category, currency
UNION ALL
SELECT organization_id, 'campaign', day, campaign_id, currency, SUM(messages), SUM(amount)
  FROM cost_daily GROUP BY organization_id, day, campaign_id, currency
UNION ALL
SELECT organization_id, 'market', day, market, currency, SUM(messages), SUM(amount)
  FROM cost_daily GROUP BY organization_id, day, market, currency
UNION ALL
SELECT organization_id, 'whatsapp_number', day, whatsapp_number_id, currency,
       SUM(messages), SUM(amount)
  FROM cost_daily GROUP BY organization_id, day, whatsapp_number_id, currency;
SQL
# VACUUM outside a transaction block: sets the visibility map (index-only
# scans) and leaves autovacuum nothing to do during the measurement; the
# CHECKPOINT flushes the fill so no checkpoint lands mid-run.
"$PSQL" -X -q "$URL" -c "VACUUM (ANALYZE) cost_daily" -c "VACUUM (ANALYZE) cost_daily_by" -c "CHECKPOINT"
echo "   filled in $(( $(date +%s) - start )) s"
"$PSQL" -X -A -t "$URL" -c "SELECT 'rows total ' || count(*) FROM cost_daily" \
	-c "SELECT 'org rows ' || count(*) || ', messages ' || sum(messages) || ', amount ' || sum(amount) FROM cost_daily WHERE organization_id = '$ORG'"

"$BUILD_DIR/pytake" serve >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
	curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
	sleep 0.1
done
TOKEN=$(curl -sf -H 'Content-Type: application/json' \
	-d '{"email":"viewer@bench.test","password":"bench-pass-123"}' \
	"http://127.0.0.1:$PORT/api/v1/auth/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
export PYTAKE_BENCH_TOKEN="$TOKEN"

for g in day category campaign market whatsapp_number; do
	u="http://127.0.0.1:$PORT/api/v1/costs/summary?from=2026-03-01&to=2026-03-31&group_by=$g"
	groups=$(curl -sf -H "Authorization: Bearer $TOKEN" "$u" | python3 -c \
		'import json,sys; b=json.load(sys.stdin); print(len(b["groups"]), b["messages"], b["total"])')
	echo "== group_by=$g (groups messages total: $groups)"
	wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s bench/get.lua "$u" |
		grep -E "SUMMARY|Latency  "
done
