#!/usr/bin/env bash
# bench/webhooks.sh - load-test POST /webhooks/meta (signed status webhooks)
# on SQLite and on a throwaway PostgreSQL (tests/lib/pg.sh).
#
# For each engine: migrate a fresh database, start `pytake serve` with
# META_APP_SECRET set (HTTP_THREADS=$BENCH_HTTP_THREADS when set, else the
# server default; handlers defer their answer while the group commit runs,
# see src/meta/webhook_ingest.h),
# generate BENCH_BODIES (500) signed bodies with distinct wamids (python3
# hmac; wrk's Lua has none), run
#   wrk -t2 -c64 -d15s --latency -s bench/webhooks.lua http://127.0.0.1:PORT/webhooks/meta
# while sampling the server's VmRSS every 0.5 s (VmHWM is reset just before
# wrk through /proc/PID/clear_refs, so it is the peak under load; the
# start-up peak is printed apart), then report the rows stored, the server's
# CPU time per 1000 requests (load-independent-ish) and the processing lag:
# how long after wrk ends until no row is left unprocessed.
# Then, unless BENCH_SUSTAINED=0, a paced run on a fresh server:
# SUSTAINED_RATE (5000) requests/s offered by SUSTAINED_CONNECTIONS (64)
# connections for SUSTAINED_DURATION (20s) (wrk 4.1 has no -R: webhooks.lua
# hands out send times 1/rate apart, see PYTAKE_BENCH_RATE there; the old
# fixed pause per connection, 20 x 3 ms, only reached ~4,000/s because each
# request's latency adds to it). The achieved rate is printed and flagged
# when under 95 % of the target. Then the processor's
# pytake_webhook_processing_lag_seconds histogram is read (share of events
# processed within 0.25 s and 1 s, and its p99 bucket).
# Unless BENCH_ROUTED=0 the number the bodies name (phone_number_id
# 106540352242922, WABA 102290129340398) is registered in the database
# first, so processing does the real work of a status for a message not
# known yet (route, look the wamid up, keep it in pending_statuses) instead
# of marking an unknown number's event.
# Environment: WRK_THREADS (2), WRK_CONNECTIONS (64), WRK_DURATION (15s),
# BENCH_ENGINES ("sqlite postgresql"), PYTAKE_BUILD_DIR (build-release),
# BENCH_PERF (a directory: `perf record` samples the server while wrk runs
# and the top of `perf report` by thread and symbol goes to
# BENCH_PERF/perf-ENGINE-PHASE.txt, the samples to perf-ENGINE-PHASE.data).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${PYTAKE_BUILD_DIR:-build-release}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
THREADS="${WRK_THREADS:-2}"
CONNS="${WRK_CONNECTIONS:-64}"
DURATION="${WRK_DURATION:-15s}"
ENGINES="${BENCH_ENGINES:-sqlite postgresql}"
SECRET="bench-app-secret"

if [[ ! -x "$BUILD_DIR/pytake" ]]; then
	[[ -f "$BUILD_DIR/build.ninja" ]] || meson setup "$BUILD_DIR" --buildtype=release
	ninja -C "$BUILD_DIR" pytake
fi

# shellcheck source=../tests/lib/pg.sh
source "$ROOT/tests/lib/pg.sh"
TMP="$(mktemp -d /tmp/pytake-bench-wh.XXXXXX)"
SERVER_PID=""
SAMPLER_PID=""
stop_server() {
	if [[ -n "$SAMPLER_PID" ]]; then
		kill "$SAMPLER_PID" 2>/dev/null || true
		wait "$SAMPLER_PID" 2>/dev/null || true
		SAMPLER_PID=""
	fi
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

python3 - "$TMP/bodies.txt" "$SECRET" "${BENCH_BODIES:-500}" <<'PY'
import hashlib, hmac, json, sys
path, secret, n = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
with open(path, "w") as f:
    for i in range(n):
        body = json.dumps({"object": "whatsapp_business_account", "entry": [{
            "id": "102290129340398", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881",
                             "phone_number_id": "106540352242922"},
                "statuses": [{"id": "wamid.BENCH%06d" % i, "status": "delivered",
                              "timestamp": "1764410300", "recipient_id": "5511987654321",
                              "pricing": {"billable": True, "pricing_model": "PMP",
                                          "type": "regular", "category": "marketing"}}]}}]}]},
            separators=(",", ":"))
        sig = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
        f.write("sha256=%s\t%s\n" % (sig, body))
PY
export PYTAKE_BENCH_WEBHOOKS="$TMP/bodies.txt"

psql_bin() { # pg.sh's bindir may hold only initdb/pg_ctl wrappers
	if [[ -x "$PG_BINDIR/psql" ]]; then echo "$PG_BINDIR/psql"; else command -v psql; fi
}

# The number the bench bodies name, in an org of its own (the access token
# is never used: nothing is sent).
ROUTE_SQL="INSERT INTO organizations (id, name, slug, timezone, created_at, updated_at)
 VALUES ('01900000-0000-7000-8000-0000000000b1', 'Bench', 'bench', 'UTC', 0, 0);
INSERT INTO whatsapp_numbers (id, organization_id, phone_number_id, waba_id,
 display_phone_number, access_token_enc, webhook_path, created_at, updated_at)
 VALUES ('01900000-0000-7000-8000-0000000000b2', '01900000-0000-7000-8000-0000000000b1',
 '106540352242922', '102290129340398', '+1 555-078-3881', 'unused', 'bench-path', 0, 0);"

count_sql() { # engine url query
	if [[ "$1" == sqlite ]]; then
		sqlite3 -cmd ".timeout 5000" "${2#sqlite:}" "$3"
	else
		"$(psql_bin)" -At -d "$2" -c "$3"
	fi
}

run_engine() {
	local engine="$1" url
	local dir="$TMP/$engine-$2"
	mkdir -p "$dir/data"
	if [[ "$engine" == sqlite ]]; then
		url="sqlite:$dir/pytake.db"
	else
		pg_start >/dev/null
		"$(psql_bin)" -q -d "$PYTAKE_TEST_PG_URL" -c "CREATE DATABASE bench_wh"
		url="${PYTAKE_TEST_PG_URL%/postgres}/bench_wh"
	fi
	local port
	port="$(python3 "$ROOT/scripts/free_port.py")"
	(
		export PORT="$port" BIND_ADDRESS=127.0.0.1 DATABASE_URL="$url" \
			DATA_DIR="$dir/data" ENVIRONMENT=development LOG_LEVEL=warn \
			LOG_FORMAT=json RATE_LIMIT_ENABLED=false META_APP_SECRET="$SECRET" \
			${BENCH_HTTP_THREADS:+HTTP_THREADS="$BENCH_HTTP_THREADS"}
		unset REDIS_URL JWT_SECRET_KEY ENCRYPTION_KEY
		cd "$dir" && "$BUILD_DIR/pytake" migrate upgrade >"$dir/migrate.log" 2>&1
		if [[ "${BENCH_ROUTED:-1}" != 0 ]]; then
			count_sql "$engine" "$url" "$ROUTE_SQL" >/dev/null
		fi
		exec "$BUILD_DIR/pytake" serve </dev/null >"$dir/server.log" 2>&1
	) &
	SERVER_PID=$!
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null "http://127.0.0.1:$port/health" 2>/dev/null && break
		sleep 0.1
	done
	(
		while kill -0 "$SERVER_PID" 2>/dev/null; do
			awk '/^VmRSS|^VmHWM/ {printf "%s %s ", $1, $2} END {print ""}' \
				"/proc/$SERVER_PID/status" 2>/dev/null || true
			sleep 0.5
		done
	) >"$dir/rss.log" &
	SAMPLER_PID=$!
	local conns="$CONNS" duration="$DURATION" phase="$2"
	local target="${SUSTAINED_RATE:-5000}"
	if [[ "$phase" == sustained ]]; then
		conns="${SUSTAINED_CONNECTIONS:-64}"
		duration="${SUSTAINED_DURATION:-20s}"
		export PYTAKE_BENCH_RATE="$target" PYTAKE_BENCH_THREADS="$THREADS"
	else
		unset PYTAKE_BENCH_RATE PYTAKE_BENCH_THREADS
	fi
	echo "== engine: $engine, $phase (HTTP_THREADS=${BENCH_HTTP_THREADS:-default})"
	echo "startup peak: $(awk '/^VmHWM/ {printf "%.1f MB", $2/1024}' "/proc/$SERVER_PID/status")"
	echo 5 >"/proc/$SERVER_PID/clear_refs" 2>/dev/null || echo "(cannot reset VmHWM)"
	echo "command: ${PYTAKE_BENCH_RATE:+PYTAKE_BENCH_RATE=$PYTAKE_BENCH_RATE PYTAKE_BENCH_THREADS=$THREADS }wrk -t$THREADS -c$conns -d$duration --latency -s bench/webhooks.lua http://127.0.0.1:PORT/webhooks/meta"
	local cpu0 cpu1 perf_pid=""
	if [[ -n "${BENCH_PERF:-}" ]]; then
		# A flat CPU profile of the server while wrk runs (by thread and
		# symbol), written next to the other outputs; see BENCH_PERF above.
		perf record -q -F 499 -p "$SERVER_PID" -o "$dir/perf.data" -- sleep "${duration%s}" \
			>/dev/null 2>&1 &
		perf_pid=$!
	fi
	cpu0=$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")
	wrk -t"$THREADS" -c"$conns" -d"$duration" --latency -s "$ROOT/bench/webhooks.lua" \
		"http://127.0.0.1:$port/webhooks/meta" | tee "$dir/wrk.out" | grep -E "SUMMARY|Latency|Requests/sec"
	cpu1=$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")
	if [[ -n "$perf_pid" ]]; then
		wait "$perf_pid" || true
		mkdir -p "$BENCH_PERF"
		{
			perf report -i "$dir/perf.data" --no-children --sort comm --stdio 2>/dev/null |
				grep -v '^#' | grep -v '^$' || true
			perf report -i "$dir/perf.data" --no-children --sort comm,dso,symbol --stdio \
				2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 80 || true
		} >"$BENCH_PERF/perf-$engine-$phase.txt"
		cp "$dir/perf.data" "$BENCH_PERF/perf-$engine-$phase.data"
		echo "profile: $BENCH_PERF/perf-$engine-$phase.txt"
	fi
	awk -v c="$((cpu1 - cpu0))" -v t="$(getconf CLK_TCK)" '/^SUMMARY/ {
		split($0, a, "requests="); printf "server CPU: %.1f s, %.1f ms per 1000 requests\n", c / t, c / t * 1e6 / a[2] }' "$dir/wrk.out"
	if [[ "$phase" == sustained ]]; then
		awk -v t="$target" '/^SUMMARY/ { split($0, a, "requests_per_sec="); r = a[2] + 0;
			printf "achieved rate: %d/s of %d/s offered%s\n", r, t, r < 0.95 * t ? " (UNDER 95 %: the server or wrk could not keep the pace; more SUSTAINED_CONNECTIONS?)" : "" }' "$dir/wrk.out"
	fi
	echo "peak under load: $(awk '/^VmHWM/ {printf "%.1f MB", $2/1024}' "/proc/$SERVER_PID/status")"
	local t_end rows pending lag
	t_end=$(date +%s.%N)
	rows="$(count_sql "$engine" "$url" "SELECT COUNT(*) FROM webhook_events")"
	pending="$(count_sql "$engine" "$url" "SELECT COUNT(*) FROM webhook_events WHERE processed_at IS NULL")"
	echo "rows stored: $rows; unprocessed when wrk ended: $pending"
	for _ in $(seq 1 600); do
		pending="$(count_sql "$engine" "$url" "SELECT COUNT(*) FROM webhook_events WHERE processed_at IS NULL")"
		[[ "$pending" == 0 ]] && break
		sleep 0.1
	done
	lag=$(python3 -c "import time,sys; print('%.1f' % (time.time() - float(sys.argv[1])))" "$t_end")
	echo "processing drained after wrk: ${lag}s (unprocessed now: $pending)"
	curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null | awk '
		/^pytake_webhook_processing_lag_seconds_bucket\{le="1"\}/ { le1 = $2 }
		/^pytake_webhook_processing_lag_seconds_bucket\{le="0.25"\}/ { le025 = $2 }
		/^pytake_webhook_processing_lag_seconds_bucket\{le=/ {
			split($1, q, "\""); nb++; bound[nb] = q[2]; cum[nb] = $2 }
		/^pytake_webhook_processing_lag_seconds_count/ { n = $2 }
		/^pytake_webhook_ingest_batches_total/ { b = $2 }
		/^pytake_webhook_events_received_total/ { r += $2 }
		END { if (n > 0) {
			p99 = "?"; for (i = 1; i <= nb; i++) if (cum[i] >= 0.99 * n) { p99 = bound[i]; break }
			printf "processing lag: %d events, %.2f%% <= 0.25 s, %.2f%% <= 1 s, p99 <= %s s\n", n, 100 * le025 / n, 100 * le1 / n, p99 }
		      if (b > 0) printf "group commit: %d batches, %.1f rows per batch\n", b, r / b }' 
	awk '{for (i = 1; i < NF; i += 2) if ($(i+1) + 0 > max[$i]) max[$i] = $(i+1)} END {printf "server memory: max VmRSS sampled %.1f MB\n", max["VmRSS:"]/1024}' "$dir/rss.log"
	stop_server
	if [[ "$engine" != sqlite ]]; then
		pg_stop
	fi
}

echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "commit:  $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "cores:   $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"
for e in $ENGINES; do
	run_engine "$e" burst
	if [[ "${BENCH_SUSTAINED:-1}" != 0 ]]; then
		run_engine "$e" sustained
	fi
done
