# redis.sh - start/stop a throwaway Redis server for the tests.
# Source this file, then:
#   redis_start     starts redis-server on a free 127.0.0.1 port, no
#                   persistence, in the background; sets REDIS_PID,
#                   REDIS_PORT, REDIS_TMPDIR and exports PYTAKE_TEST_REDIS_URL.
#                   Returns non-zero (with its log on stderr) on failure.
#   redis_stop      kills that PID, waits for it, removes the temp dir.
#                   Safe to call twice or before start.
# With PYTAKE_SVC_STATE set to a file, "dir PATH" and "pid PID" lines are
# appended as soon as they are known (run_all.sh's watchdog reads them).

REDIS_PID=""
REDIS_PORT=""
REDIS_TMPDIR=""

_redis_note() {
	if [[ -n "${PYTAKE_SVC_STATE:-}" ]]; then
		echo "$1 $2" >>"$PYTAKE_SVC_STATE"
	fi
}

_redis_ping() {
	# PING over bash's /dev/tcp (in a subshell, so redirections stay local)
	# so redis-cli is not needed.
	(
		exec 9<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'PING\r\n' >&9
		reply=""
		IFS= read -r -t 2 reply <&9 || true
		[[ "$reply" == "+PONG"* ]]
	) 2>/dev/null
}

redis_start() {
	local here attempt i
	here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
	if ! command -v redis-server >/dev/null 2>&1; then
		echo "redis.sh: redis-server not found; install the 'redis-server'" \
			"package (scripts/deps.sh test)" >&2
		return 1
	fi
	REDIS_TMPDIR="$(mktemp -d /tmp/pytake-redis.XXXXXX)" || return 1
	_redis_note dir "$REDIS_TMPDIR"
	for attempt in 1 2 3; do
		REDIS_PORT="$(python3 "$here/../../scripts/free_port.py")" || return 1
		redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
			--appendonly no --daemonize no --dir "$REDIS_TMPDIR" \
			--logfile "$REDIS_TMPDIR/redis.log" </dev/null >/dev/null 2>&1 &
		REDIS_PID=$!
		_redis_note pid "$REDIS_PID"
		for i in $(seq 1 100); do
			if ! kill -0 "$REDIS_PID" 2>/dev/null; then
				break
			fi
			if _redis_ping "$REDIS_PORT"; then
				export PYTAKE_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
				return 0
			fi
			sleep 0.1
		done
		echo "redis.sh: start on port $REDIS_PORT failed (attempt $attempt)" >&2
		kill -KILL "$REDIS_PID" 2>/dev/null || true
		wait "$REDIS_PID" 2>/dev/null || true
		REDIS_PID=""
	done
	echo "redis.sh: could not start Redis; log:" >&2
	cat "$REDIS_TMPDIR/redis.log" >&2 2>/dev/null
	return 1
}

redis_stop() {
	local i
	if [[ -n "$REDIS_PID" ]] && kill -0 "$REDIS_PID" 2>/dev/null; then
		kill -TERM "$REDIS_PID" 2>/dev/null || true
		for i in $(seq 1 50); do
			kill -0 "$REDIS_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$REDIS_PID" 2>/dev/null || true
		wait "$REDIS_PID" 2>/dev/null || true
	fi
	REDIS_PID=""
	if [[ -n "$REDIS_TMPDIR" && -d "$REDIS_TMPDIR" ]]; then
		rm -rf "$REDIS_TMPDIR"
	fi
	REDIS_TMPDIR=""
}
