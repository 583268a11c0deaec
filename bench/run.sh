#!/usr/bin/env bash
# bench/run.sh - load-test GET /health of a release build with wrk.
#
# Builds build-release (meson --buildtype=release) unless PYTAKE_BUILD_DIR
# points at a build already made, starts `pytake serve` on SQLite in a temp
# dir on a free loopback port (LOG_LEVEL=warn, RATE_LIMIT_ENABLED=false),
# waits for /health, runs
#   wrk -t2 -c64 -d15s --latency -s bench/get.lua http://127.0.0.1:PORT/health
# and stops the server by its PID. Prints the machine facts and wrk's
# SUMMARY line for bench/README.md.
# Environment: WRK_THREADS (2), WRK_CONNECTIONS (64), WRK_DURATION (15s).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${PYTAKE_BUILD_DIR:-build-release}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
THREADS="${WRK_THREADS:-2}"
CONNS="${WRK_CONNECTIONS:-64}"
DURATION="${WRK_DURATION:-15s}"

if ! command -v wrk >/dev/null 2>&1; then
	echo "bench: wrk not found (scripts/deps.sh bench installs it)" >&2
	exit 1
fi
if [[ ! -x "$BUILD_DIR/pytake" ]]; then
	if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
		meson setup "$BUILD_DIR" --buildtype=release
	fi
	ninja -C "$BUILD_DIR" pytake
fi

TMP="$(mktemp -d /tmp/pytake-bench.XXXXXX)"
SERVER_PID=""
cleanup() {
	if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$SERVER_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT="$(python3 "$ROOT/scripts/free_port.py")"
export PORT BIND_ADDRESS=127.0.0.1 DATABASE_URL="sqlite:$TMP/pytake.db" \
	DATA_DIR="$TMP/data" ENVIRONMENT=development LOG_LEVEL=warn \
	LOG_FORMAT=json RATE_LIMIT_ENABLED=false
unset REDIS_URL JWT_SECRET_KEY ENCRYPTION_KEY

(cd "$TMP" && "$BUILD_DIR/pytake" migrate upgrade) >"$TMP/migrate.log" 2>&1 || {
	echo "bench: migrate failed:" >&2
	cat "$TMP/migrate.log" >&2
	exit 1
}
(cd "$TMP" && exec "$BUILD_DIR/pytake" serve) </dev/null >"$TMP/server.log" 2>&1 &
SERVER_PID=$!

ready=0
for _ in $(seq 1 100); do
	if ! kill -0 "$SERVER_PID" 2>/dev/null; then
		break
	fi
	if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/health" 2>/dev/null; then
		ready=1
		break
	fi
	sleep 0.1
done
if ((ready == 0)); then
	echo "bench: server did not become ready; log:" >&2
	cat "$TMP/server.log" >&2
	exit 1
fi

echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "commit:  $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "cores:   $(nproc)"
echo "cpu:     $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)"
echo "memory:  $(free -h | awk '/^Mem:/ {print $2}')"
echo "command: wrk -t$THREADS -c$CONNS -d$DURATION --latency -s bench/get.lua http://127.0.0.1:PORT/health"
echo
wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$ROOT/bench/get.lua" \
	"http://127.0.0.1:$PORT/health" | tee "$TMP/wrk.out"
if ! grep -q '^SUMMARY ' "$TMP/wrk.out"; then
	echo "bench: wrk printed no SUMMARY line" >&2
	exit 1
fi

# ---- GET /api/v1/auth/me (identity issue) ---------------------------------
# The authenticated path: log in once with curl, then wrk on /auth/me with
# the Bearer token (JWT check + one user/revocation query + profile read),
# to compare with /health above (the default 15-minute access token outlasts
# the run). Skip with BENCH_AUTH=0.
if [[ "${BENCH_AUTH:-1}" != "0" ]]; then
	(cd "$TMP" && "$BUILD_DIR/pytake" org create --name "Bench Org" --slug bench &&
		"$BUILD_DIR/pytake" user create --email bench@example.com \
			--password bench-password-123 --org bench --role viewer) \
		>"$TMP/auth-setup.log" 2>&1 || {
		echo "bench: could not create the bench user:" >&2
		cat "$TMP/auth-setup.log" >&2
		exit 1
	}
	LOGIN="$(curl -fsS -H 'Content-Type: application/json' \
		-d '{"email":"bench@example.com","password":"bench-password-123"}' \
		"http://127.0.0.1:$PORT/api/v1/auth/login")" || {
		echo "bench: login failed" >&2
		exit 1
	}
	PYTAKE_BENCH_TOKEN="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])' <<<"$LOGIN")"
	export PYTAKE_BENCH_TOKEN
	echo
	echo "command: wrk -t$THREADS -c$CONNS -d$DURATION --latency -s bench/get.lua http://127.0.0.1:PORT/api/v1/auth/me"
	echo
	wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$ROOT/bench/get.lua" \
		"http://127.0.0.1:$PORT/api/v1/auth/me" | tee "$TMP/wrk-auth.out"
	if ! grep -q '^SUMMARY .* non_2xx=0 ' "$TMP/wrk-auth.out"; then
		echo "bench: /auth/me run had no SUMMARY line or non-2xx answers" >&2
		exit 1
	fi
fi

# ---- POST /webhooks/meta (webhook ingestion issue) ---------------------------
# Signed status webhooks on SQLite and a throwaway PostgreSQL, each with its
# own server (META_APP_SECRET, HTTP_THREADS=64): see bench/webhooks.sh.
# Skip with BENCH_WEBHOOKS=0; BENCH_ENGINES="sqlite" for one engine.
if [[ "${BENCH_WEBHOOKS:-1}" != "0" ]]; then
	echo
	PYTAKE_BUILD_DIR="$BUILD_DIR" "$ROOT/bench/webhooks.sh"
fi
