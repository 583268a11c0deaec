#!/usr/bin/env bash
# bench/conversations.sh - GET /api/v1/conversations?limit=50 (the inbox's
# first page) over a database of 100,000 messages, on SQLite and on a
# throwaway PostgreSQL (tests/lib/pg.sh).
#
# For each engine: migrate a fresh database, create an org and an agent with
# the CLI, then fill a realistic inbox deterministically with set-based SQL
# through the engine's own CLI (sqlite3 / psql; a few seconds):
#   BENCH_CONVERSATIONS (2,000) contacts, each with one conversation on the
#   org's one number; BENCH_MESSAGES (100,000) messages spread round-robin
#   over them (message k belongs to conversation k % 2000, created
#   T0 + k s, every third one outbound), so each conversation's
#   last_message_at is its newest message; every 10th conversation is
#   closed, every other one assigned to the agent, unread_count = c % 5,
#   the window open for the newest half.
# PostgreSQL gets VACUUM (ANALYZE) + CHECKPOINT after the fill (autovacuum
# and checkpoints stay out of the measurement); SQLite gets no ANALYZE
# (a deployed database has none either). The plan of the list query is
# printed (EXPLAIN QUERY PLAN / EXPLAIN with a generic plan, as the server's
# prepared statement runs it): it must walk conversations_org_activity_idx
# (migration 0012) and stop after 51 rows, never sort the org's
# conversations or read messages.
# Then, after one checked request (50 items, a next_cursor):
#   wrk -t2 -c8 -d10s --latency -s bench/get.lua \
#     "http://127.0.0.1:PORT/api/v1/conversations?limit=50"
# with the agent's Bearer token, the server's CPU time per request
# (/proc/PID/stat: less sensitive to the machine's load than requests/s;
# on PostgreSQL also the cluster's backends' CPU per request) and one
# SUMMARY line per engine.
# BENCH_OLD_INDEX=1 puts back the index of before migration 0012
# (conversations_org_last_idx on last_message_at) to measure the
# difference.
# Environment: WRK_THREADS (2), WRK_CONNECTIONS (8), WRK_DURATION (10s),
# BENCH_ENGINES ("sqlite postgresql"), BENCH_CONVERSATIONS (2000),
# BENCH_MESSAGES (100000), BENCH_OLD_INDEX (0), PYTAKE_BUILD_DIR
# (build-release).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${PYTAKE_BUILD_DIR:-build-release}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
THREADS="${WRK_THREADS:-2}"
CONNS="${WRK_CONNECTIONS:-8}"
DURATION="${WRK_DURATION:-10s}"
ENGINES="${BENCH_ENGINES:-sqlite postgresql}"
NCONV="${BENCH_CONVERSATIONS:-2000}"
NMSG="${BENCH_MESSAGES:-100000}"
T0=1764000000000000 # 2025-11-24T16:00:00Z, microseconds

if [[ ! -x "$BUILD_DIR/pytake" ]]; then
	[[ -f "$BUILD_DIR/build.ninja" ]] || meson setup "$BUILD_DIR" --buildtype=release
	ninja -C "$BUILD_DIR" pytake
fi

# shellcheck source=../tests/lib/pg.sh
source "$ROOT/tests/lib/pg.sh"
TMP="$(mktemp -d /tmp/pytake-bench-conv.XXXXXX)"
SERVER_PID=""
stop_server() {
	if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$SERVER_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	SERVER_PID=""
}
cleanup() {
	stop_server
	pg_stop || true
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql_bin() { # pg.sh's bindir may hold only initdb/pg_ctl wrappers
	if [[ -x "$PG_BINDIR/psql" ]]; then echo "$PG_BINDIR/psql"; else command -v psql; fi
}

# The fill, in each engine's dialect. Ids are fixed UUIDs (v7 layout) whose
# last 12 hex digits are the row number: 8001 contacts, 8002 conversations,
# 8003 messages; the number is ...-8000-0000000000b2.
fill_sqlite() { # db-file org-id agent-id
	sqlite3 -bail "$1" <<SQL
PRAGMA journal_mode=WAL;
BEGIN;
INSERT INTO whatsapp_numbers (id, organization_id, phone_number_id, waba_id,
  display_phone_number, access_token_enc, webhook_path, created_at, updated_at)
VALUES ('01900000-0000-7000-8000-0000000000b2', '$2', '106540352242922',
  '102290129340398', '+1 555-078-3881', 'unused', 'bench-conv', $T0, $T0);
WITH RECURSIVE g(c) AS (SELECT 0 UNION ALL SELECT c + 1 FROM g WHERE c + 1 < $NCONV)
INSERT INTO contacts (id, organization_id, wa_id, name, tags, attributes,
  created_at, updated_at)
SELECT printf('01900000-0000-7000-8001-%012x', c), '$2', printf('5511%09d', c),
  'Contact ' || c, '["bench"]', '{}', $T0, $T0 FROM g;
WITH RECURSIVE g(c) AS (SELECT 0 UNION ALL SELECT c + 1 FROM g WHERE c + 1 < $NCONV)
INSERT INTO conversations (id, organization_id, contact_id, whatsapp_number_id,
  status, assigned_to, unread_count, created_at, updated_at)
SELECT printf('01900000-0000-7000-8002-%012x', c), '$2',
  printf('01900000-0000-7000-8001-%012x', c), '01900000-0000-7000-8000-0000000000b2',
  CASE WHEN c % 10 = 9 THEN 'closed' ELSE 'open' END,
  CASE WHEN c % 2 = 0 THEN '$3' END, c % 5, $T0, $T0 FROM g;
WITH RECURSIVE g(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM g WHERE k + 1 < $NMSG)
INSERT INTO messages (id, organization_id, conversation_id, whatsapp_number_id,
  contact_id, direction, type, text, status, wamid, created_at)
SELECT printf('01900000-0000-7000-8003-%012x', k), '$2',
  printf('01900000-0000-7000-8002-%012x', k % $NCONV),
  '01900000-0000-7000-8000-0000000000b2',
  printf('01900000-0000-7000-8001-%012x', k % $NCONV),
  CASE WHEN k % 3 = 2 THEN 'outbound' ELSE 'inbound' END, 'text',
  'Message number ' || k || ' of the bench inbox',
  CASE WHEN k % 3 = 2 THEN 'delivered' ELSE 'received' END,
  'wamid.BENCHCONV' || k, $T0 + k * 1000000 FROM g;
UPDATE conversations SET
  last_message_at = (SELECT MAX(created_at) FROM messages m WHERE m.conversation_id = conversations.id),
  last_inbound_at = (SELECT MAX(created_at) FROM messages m WHERE m.conversation_id = conversations.id
                     AND m.direction = 'inbound');
UPDATE conversations SET window_expires_at = last_inbound_at + 86400000000,
  updated_at = COALESCE(last_message_at, created_at);
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
}

fill_pg() { # url org-id agent-id
	"$(psql_bin)" -q -X -v ON_ERROR_STOP=1 -d "$1" <<SQL
BEGIN;
INSERT INTO whatsapp_numbers (id, organization_id, phone_number_id, waba_id,
  display_phone_number, access_token_enc, webhook_path, created_at, updated_at)
VALUES ('01900000-0000-7000-8000-0000000000b2', '$2', '106540352242922',
  '102290129340398', '+1 555-078-3881', 'unused', 'bench-conv', $T0, $T0);
INSERT INTO contacts (id, organization_id, wa_id, name, tags, attributes,
  created_at, updated_at)
SELECT ('01900000-0000-7000-8001-' || lpad(to_hex(c), 12, '0'))::uuid, '$2',
  '5511' || lpad(c::text, 9, '0'), 'Contact ' || c, '["bench"]', '{}', $T0, $T0
FROM generate_series(0, $NCONV - 1) c;
INSERT INTO conversations (id, organization_id, contact_id, whatsapp_number_id,
  status, assigned_to, unread_count, created_at, updated_at)
SELECT ('01900000-0000-7000-8002-' || lpad(to_hex(c), 12, '0'))::uuid, '$2',
  ('01900000-0000-7000-8001-' || lpad(to_hex(c), 12, '0'))::uuid,
  '01900000-0000-7000-8000-0000000000b2',
  CASE WHEN c % 10 = 9 THEN 'closed' ELSE 'open' END,
  CASE WHEN c % 2 = 0 THEN '$3'::uuid END, c % 5, $T0, $T0
FROM generate_series(0, $NCONV - 1) c;
INSERT INTO messages (id, organization_id, conversation_id, whatsapp_number_id,
  contact_id, direction, type, text, status, wamid, created_at)
SELECT ('01900000-0000-7000-8003-' || lpad(to_hex(k), 12, '0'))::uuid, '$2',
  ('01900000-0000-7000-8002-' || lpad(to_hex(k % $NCONV), 12, '0'))::uuid,
  '01900000-0000-7000-8000-0000000000b2',
  ('01900000-0000-7000-8001-' || lpad(to_hex(k % $NCONV), 12, '0'))::uuid,
  CASE WHEN k % 3 = 2 THEN 'outbound' ELSE 'inbound' END, 'text',
  'Message number ' || k || ' of the bench inbox',
  CASE WHEN k % 3 = 2 THEN 'delivered' ELSE 'received' END,
  'wamid.BENCHCONV' || k, $T0 + k::bigint * 1000000
FROM generate_series(0, $NMSG - 1) k;
UPDATE conversations cv SET last_message_at = m.last_at, last_inbound_at = m.last_in
FROM (SELECT conversation_id, MAX(created_at) AS last_at,
             MAX(created_at) FILTER (WHERE direction = 'inbound') AS last_in
      FROM messages GROUP BY conversation_id) m
WHERE m.conversation_id = cv.id;
UPDATE conversations SET window_expires_at = last_inbound_at + 86400000000,
  updated_at = COALESCE(last_message_at, created_at);
COMMIT;
SQL
	"$(psql_bin)" -q -X -d "$1" -c "VACUUM (ANALYZE)" -c "CHECKPOINT"
}

# The list query as conversations_list (src/domain/conversations.c) sends
# it for the first page of 50 (limit + 1 rows, no filter).
LIST_SQL_COLS="SELECT cv.id, cv.organization_id, cv.whatsapp_number_id, cv.status, cv.assigned_to, COALESCE(cv.last_message_at, 0), COALESCE(cv.last_inbound_at, 0), COALESCE(cv.window_expires_at, 0), cv.unread_count, cv.created_at, cv.updated_at, ct.id, ct.name, ct.wa_id, ct.bsuid FROM conversations cv JOIN contacts ct ON ct.id = cv.contact_id WHERE TRUE AND cv.organization_id = "
LIST_SQL_TAIL=" AND (COALESCE(cv.last_message_at, cv.created_at), cv.id) < (9223372036854775807, 'ffffffff-ffff-ffff-ffff-ffffffffffff') ORDER BY COALESCE(cv.last_message_at, cv.created_at) DESC, cv.id DESC LIMIT 51"

explain() { # engine url org
	echo "-- plan of the list query (first page):"
	if [[ "$1" == sqlite ]]; then
		sqlite3 "${2#sqlite:}" "EXPLAIN QUERY PLAN ${LIST_SQL_COLS}'$3'${LIST_SQL_TAIL}" | sed 's/^/   /'
	else
		# The server's statement is prepared once and reused; a generic plan
		# (no parameter values) is what it ends up running.
		"$(psql_bin)" -X -q -At -d "$2" <<SQL | sed 's/^/   /'
SET plan_cache_mode = force_generic_plan;
PREPARE q(uuid, bigint, uuid, bigint) AS
$(echo "$LIST_SQL_COLS" | sed 's/= $/= $1/')$(echo "$LIST_SQL_TAIL" | sed "s/(9223372036854775807, 'ffffffff-ffff-ffff-ffff-ffffffffffff')/(\$2, \$3)/; s/LIMIT 51/LIMIT \$4/");
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE q('$3', 9223372036854775807, 'ffffffff-ffff-ffff-ffff-ffffffffffff', 51);
SQL
	fi
}

# CPU ticks (utime + stime) of the throwaway cluster's processes: the
# postmaster's children (the server's backends among them).
pg_cpu() {
	local pid total=0 t
	for pid in $(ps -o pid= --ppid "$PG_PID"); do
		t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) || continue
		total=$((total + t))
	done
	echo "$total"
}

run_engine() {
	local engine="$1" url dir="$TMP/$1"
	mkdir -p "$dir/data"
	if [[ "$engine" == sqlite ]]; then
		url="sqlite:$dir/pytake.db"
	else
		pg_start >/dev/null
		"$(psql_bin)" -q -X -d "$PYTAKE_TEST_PG_URL" -c "CREATE DATABASE bench_conv"
		url="${PYTAKE_TEST_PG_URL%/postgres}/bench_conv"
	fi
	local port
	port="$(python3 "$ROOT/scripts/free_port.py")"
	export PORT="$port" BIND_ADDRESS=127.0.0.1 DATABASE_URL="$url" \
		DATA_DIR="$dir/data" ENVIRONMENT=development LOG_LEVEL=warn \
		LOG_FORMAT=json RATE_LIMIT_ENABLED=false
	unset REDIS_URL JWT_SECRET_KEY ENCRYPTION_KEY
	echo "== engine: $engine"
	(cd "$dir" && "$BUILD_DIR/pytake" migrate upgrade >"$dir/migrate.log" 2>&1)
	local org agent start
	org=$(cd "$dir" && "$BUILD_DIR/pytake" org create --name "Bench inbox" --slug bench-inbox)
	(cd "$dir" && "$BUILD_DIR/pytake" user create --email agent@bench.test \
		--password bench-pass-123 --org bench-inbox --role agent --full-name Agent >/dev/null)
	if [[ "$engine" == sqlite ]]; then
		agent=$(sqlite3 "${url#sqlite:}" "SELECT id FROM users WHERE email = 'agent@bench.test'")
	else
		agent=$("$(psql_bin)" -X -At -d "$url" -c "SELECT id FROM users WHERE email = 'agent@bench.test'")
	fi
	if [[ "${BENCH_OLD_INDEX:-0}" == 1 ]]; then
		local old="DROP INDEX conversations_org_activity_idx; CREATE INDEX conversations_org_last_idx ON conversations (organization_id, last_message_at DESC, id DESC);"
		if [[ "$engine" == sqlite ]]; then
			sqlite3 "${url#sqlite:}" "$old"
		else
			"$(psql_bin)" -q -X -d "$url" -c "$old"
		fi
		echo "(BENCH_OLD_INDEX=1: the index of before migration 0012)"
	fi
	start=$(date +%s.%N)
	if [[ "$engine" == sqlite ]]; then
		fill_sqlite "${url#sqlite:}" "$org" "$agent" >/dev/null
	else
		fill_pg "$url" "$org" "$agent"
	fi
	python3 -c "import sys,time; print('filled %s conversations, %s messages in %.1f s' % (sys.argv[2], sys.argv[3], time.time() - float(sys.argv[1])))" \
		"$start" "$NCONV" "$NMSG"
	explain "$engine" "$url" "$org"

	(cd "$dir" && exec "$BUILD_DIR/pytake" serve </dev/null >"$dir/server.log" 2>&1) &
	SERVER_PID=$!
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null && break
		sleep 0.1
	done
	local token u
	token=$(curl -fsS -H 'Content-Type: application/json' \
		-d '{"email":"agent@bench.test","password":"bench-pass-123"}' \
		"http://127.0.0.1:$port/api/v1/auth/login" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
	export PYTAKE_BENCH_TOKEN="$token"
	u="http://127.0.0.1:$port/api/v1/conversations?limit=50"
	# One checked request: a full page, newest activity first, a next page.
	curl -fsS -H "Authorization: Bearer $token" "$u" | python3 -c '
import json, sys
b = json.load(sys.stdin)
items = b["items"]
assert len(items) == 50, len(items)
assert b["next_cursor"], "no next_cursor"
assert items[0]["contact"]["name"] == "Contact %d" % (int(sys.argv[1]) - 1), items[0]["contact"]
print("first page: %d items, newest %s (unread %d), next_cursor set, %d bytes"
      % (len(items), items[0]["contact"]["name"], items[0]["unread_count"], len(json.dumps(b))))
' "$NCONV"
	echo "command: wrk -t$THREADS -c$CONNS -d$DURATION --latency -s bench/get.lua \"http://127.0.0.1:PORT/api/v1/conversations?limit=50\""
	echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
	local cpu0 cpu1 db0=0 db1=0
	cpu0=$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")
	[[ "$engine" == sqlite ]] || db0=$(pg_cpu)
	wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$ROOT/bench/get.lua" "$u" \
		>"$dir/wrk.out"
	cpu1=$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")
	[[ "$engine" == sqlite ]] || db1=$(pg_cpu)
	grep -E "Latency  " "$dir/wrk.out" || true
	awk -v c="$((cpu1 - cpu0))" -v d="$((db1 - db0))" -v t="$(getconf CLK_TCK)" '/^SUMMARY/ {
		split($0, a, "requests="); printf "server CPU: %.1f s, %.2f ms per request", c / t, c / t * 1e3 / a[2]
		if (d > 0) printf "; PostgreSQL backends: %.2f ms per request", d / t * 1e3 / a[2]
		printf "\n" }' "$dir/wrk.out"
	echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
	sed -n "s/^SUMMARY/SUMMARY engine=$engine/p" "$dir/wrk.out"
	stop_server
	if [[ "$engine" != sqlite ]]; then
		pg_stop
	fi
}

for engine in $ENGINES; do
	run_engine "$engine"
done
