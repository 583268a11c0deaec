#!/usr/bin/env bash
# run_all.sh - run every test PyTake has, against SQLite and PostgreSQL.
#
# Uses the build in ${PYTAKE_BUILD_DIR:-build} (relative to the repo root or
# absolute). Starts its own throwaway PostgreSQL and Redis on free loopback
# ports, stops them (by PID) on exit, runs:
#   1. every unit test binary <build>/tests/unit/test_* (cmocka)
#   2. the black-box suite tests/integration/run.py with
#      PYTAKE_TEST_ENGINE=sqlite, then =postgresql
# and ends with exactly one line "N passed, M failed" over everything.
# Exit status: 1 when anything failed or a suite could not run, else 0.
#
# Environment: UNIT_TIMEOUT (300 s per unit binary), INTEGRATION_TIMEOUT
# (1800 s per engine), PYTAKE_TEST_ENGINES ("sqlite postgresql").
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1

BUILD_DIR="${PYTAKE_BUILD_DIR:-build}"
case "$BUILD_DIR" in
/*) ;;
*) BUILD_DIR="$ROOT/$BUILD_DIR" ;;
esac
export PYTAKE_BUILD_DIR="$BUILD_DIR"
UNIT_TIMEOUT="${UNIT_TIMEOUT:-300}"
INTEGRATION_TIMEOUT="${INTEGRATION_TIMEOUT:-1800}"
ENGINES="${PYTAKE_TEST_ENGINES:-sqlite postgresql}"

TOTAL_PASSED=0
TOTAL_FAILED=0
BROKEN=0          # suites that could not run at all
RUN_TMP="$(mktemp -d /tmp/pytake-tests.XXXXXX)"
export PYTAKE_TEST_TMPDIR="$RUN_TMP"  # the harness's per-server temp dirs

# shellcheck source=lib/pg.sh
source "$ROOT/tests/lib/pg.sh"
# shellcheck source=lib/redis.sh
source "$ROOT/tests/lib/redis.sh"

WATCHDOG_PID=""
cleanup() {
	if [[ -n "$WATCHDOG_PID" ]]; then
		kill -TERM "$WATCHDOG_PID" 2>/dev/null
		wait "$WATCHDOG_PID" 2>/dev/null
	fi
	pg_stop
	redis_stop
	rm -rf "$RUN_TMP"
}

# If this script dies without running its traps (SIGKILL), a watchdog in its
# own session stops the servers it started, by PID, and removes their dirs:
# postgres runs in its own session (pg_ctl) and would outlive us otherwise.
# pg.sh/redis.sh append "dir PATH" / "pid PID" lines to PYTAKE_SVC_STATE as
# soon as they know them; a postgres still starting is found through its
# postmaster.pid.
export PYTAKE_SVC_STATE="$RUN_TMP/services"
: >"$PYTAKE_SVC_STATE"
start_watchdog() {
	setsid bash -c '
		parent=$1 state=$2 run_tmp=$3
		trap "exit 0" TERM
		while kill -0 "$parent" 2>/dev/null; do sleep 2 & wait $!; done
		pids=() dirs=()
		while read -r kind value; do
			case "$kind" in
			pid) pids+=("$value") ;;
			dir)
				dirs+=("$value")
				if [[ -f "$value/data/postmaster.pid" ]]; then
					pids+=("$(head -n 1 "$value/data/postmaster.pid")")
				fi
				;;
			esac
		done <"$state"
		for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null; done
		for _ in $(seq 1 100); do
			alive=0
			for pid in "${pids[@]}"; do
				kill -0 "$pid" 2>/dev/null && alive=1
			done
			((alive)) || break
			sleep 0.1
		done
		for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
		rm -rf "${dirs[@]}" "$run_tmp"
	' run_all-watchdog "$$" "$PYTAKE_SVC_STATE" "$RUN_TMP" \
		</dev/null >/dev/null 2>&1 &
	WATCHDOG_PID=$!
}
CHILD_PID=""
TAIL_PID=""
on_signal() {
	echo "run_all.sh: interrupted, stopping what it started" >&2
	[[ -n "$CHILD_PID" ]] && kill -TERM "$CHILD_PID" 2>/dev/null
	local pid
	for pid in "${ENGINE_PID[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for pid in "${ENGINE_PID[@]}"; do wait "$pid" 2>/dev/null; done
	[[ -n "$CHILD_PID" ]] && wait "$CHILD_PID" 2>/dev/null
	[[ -n "$TAIL_PID" ]] && kill -TERM "$TAIL_PID" 2>/dev/null
	exit 130
}

# Run a command in the background and wait for it, so a signal to this
# script is handled at once (bash defers traps while a foreground child
# runs). Sets RC.
run_child() {
	"$@" &
	CHILD_PID=$!
	wait "$CHILD_PID"
	RC=$?
	CHILD_PID=""
}
trap cleanup EXIT
trap on_signal INT TERM

say() { printf '%s\n' "$*"; }
count() {
	TOTAL_PASSED=$((TOTAL_PASSED + $1))
	TOTAL_FAILED=$((TOTAL_FAILED + $2))
}
broken() {
	say "!! $1"
	BROKEN=$((BROKEN + 1))
	count 0 1
}

# Sum cmocka's summary lines ("[  PASSED  ] N test(s)." and
# "[  FAILED  ] M test(s)") over every group in one output file.
# Prints "passed failed groups".
parse_cmocka() {
	awk '
		/^\[  PASSED  \] [0-9]+ test/ { p += $4; g++ }
		/^\[  FAILED  \] [0-9]+ test/ { f += $4 }
		END { printf "%d %d %d\n", p, f, g }
	' "$1"
}

run_unit_tests() {
	local bin name out rc passed failed groups
	local found=0
	say "== unit tests ($BUILD_DIR/tests/unit)"
	for bin in "$BUILD_DIR"/tests/unit/test_*; do
		[[ -f "$bin" && -x "$bin" ]] || continue
		found=1
		name="$(basename "$bin")"
		out="$RUN_TMP/$name.out"
		run_child env -u CMOCKA_MESSAGE_OUTPUT -u CMOCKA_XML_FILE \
			timeout -k 10 "$UNIT_TIMEOUT" "$bin" >"$out" 2>&1 </dev/null
		rc=$RC
		read -r passed failed groups < <(parse_cmocka "$out")
		if ((groups == 0)); then
			# No summary: crashed, aborted or not a cmocka binary.
			failed=$((failed > 0 ? failed : 1))
		elif ((rc != 0 && failed == 0)); then
			# A summary but a bad exit (crash after the summary,
			# sanitizer report at exit, timeout): count it.
			failed=1
		fi
		count "$passed" "$failed"
		if ((failed > 0)); then
			say "---- $name (exit $rc) output:"
			cat "$out"
			say "---- end of $name"
			say "FAIL unit $name: $passed passed, $failed failed (exit $rc)"
		else
			say "ok   unit $name: $passed passed, $failed failed"
		fi
	done
	if ((found == 0)); then
		say "   (no unit test binaries found)"
	fi
}

# Start tests/integration/run.py for one engine in the background, its
# output into $RUN_TMP/integration-ENGINE.out; sets ENGINE_PID[engine].
# The engines run side by side: each suite spends most of its time waiting
# on servers it started, so two suites share the two cores well.
declare -A ENGINE_PID
start_integration() {
	local engine="$1" out
	out="$RUN_TMP/integration-$engine.out"
	: >"$out"
	env PYTAKE_TEST_ENGINE="$engine" PYTAKE_TEST_PARENT_PID="$$" timeout -k 10 "$INTEGRATION_TIMEOUT" \
		python3 -u "$ROOT/tests/integration/run.py" >"$out" 2>&1 </dev/null &
	ENGINE_PID[$engine]=$!
}

# Wait for one engine's suite, print its output (indented) and count its
# last "N passed, M failed" line.
finish_integration() {
	local engine="$1" out rc line passed failed
	out="$RUN_TMP/integration-$engine.out"
	CHILD_PID="${ENGINE_PID[$engine]}"
	wait "$CHILD_PID"
	rc=$?
	CHILD_PID=""
	say "== black-box tests, engine $engine"
	sed 's/^/   /' "$out"
	line="$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)"
	if [[ -z "$line" ]]; then
		broken "integration ($engine): no summary line (exit $rc)"
		return
	fi
	passed="$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$line")"
	failed="$(sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/' <<<"$line")"
	if ((rc != 0 && failed == 0)); then
		failed=1
	fi
	count "$passed" "$failed"
	if ((failed > 0)); then
		say "FAIL integration ($engine): $line"
	else
		say "ok   integration ($engine): $line"
	fi
}

main() {
	local engine services_ok=1
	if [[ ! -x "$BUILD_DIR/pytake" ]]; then
		say "!! $BUILD_DIR/pytake not found: build first (make build)"
		BROKEN=$((BROKEN + 1))
		count 0 1
	fi

	start_watchdog
	say "== starting throwaway PostgreSQL and Redis"
	if ! pg_start; then
		broken "PostgreSQL could not start"
		services_ok=0
	else
		say "   PostgreSQL pid $PG_PID on 127.0.0.1:$PG_PORT"
	fi
	if ! redis_start; then
		broken "Redis could not start"
		services_ok=0
	else
		say "   Redis pid $REDIS_PID on 127.0.0.1:$REDIS_PORT"
	fi

	run_unit_tests

	local started=()
	if [[ -x "$BUILD_DIR/pytake" ]]; then
		say "== black-box tests, engines: $ENGINES (side by side; output follows each)"
		for engine in $ENGINES; do
			if [[ "$engine" == postgresql && $services_ok -eq 0 ]]; then
				broken "integration (postgresql): skipped, services did not start"
				continue
			fi
			start_integration "$engine"
			started+=("$engine")
		done
		for engine in "${started[@]}"; do
			finish_integration "$engine"
		done
	fi

	say "== done"
	if ((BROKEN > 0)); then
		say "   $BROKEN suite(s) could not run"
	fi
	say "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
	if ((TOTAL_FAILED > 0 || BROKEN > 0)); then
		return 1
	fi
	return 0
}

main
exit $?
