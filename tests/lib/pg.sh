# pg.sh - start/stop a throwaway PostgreSQL server for the tests.
# Source this file, then:
#   pg_start        initdb into a fresh temp dir, start on a free loopback
#                   port; sets PG_TMPDIR, PG_DATADIR, PG_PORT, PG_PID, PG_BINDIR
#                   and exports PYTAKE_TEST_PG_URL and PYTAKE_PG_BINDIR.
#                   Returns non-zero (with the server log on stderr) on failure.
#   pg_stop         stops that server (pg_ctl stop -m fast, then its PID) and
#                   removes the temp dir. Safe to call twice or before start.
# As root the server runs as the `postgres` user (initdb refuses root).
# With PYTAKE_SVC_STATE set to a file, "dir PATH" and "pid PID" lines are
# appended as soon as they are known (run_all.sh's watchdog reads them).
# The server listens on 127.0.0.1 only; its socket lives in the temp dir.

PG_TMPDIR=""
PG_DATADIR=""
PG_PORT=""
PG_PID=""
PG_BINDIR=""
PG_RUNAS=()

_pg_find_bindir() {
	local d
	if [[ -n "${PG_BINDIR_OVERRIDE:-}" && -x "${PG_BINDIR_OVERRIDE}/initdb" ]]; then
		echo "$PG_BINDIR_OVERRIDE"
		return 0
	fi
	if command -v initdb >/dev/null 2>&1; then
		dirname "$(command -v initdb)"
		return 0
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

_pg_note() {
	if [[ -n "${PYTAKE_SVC_STATE:-}" ]]; then
		echo "$1 $2" >>"$PYTAKE_SVC_STATE"
	fi
}

_pg_as() {
	"${PG_RUNAS[@]}" "$@"
}

pg_start() {
	local here attempt
	here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
	if ! PG_BINDIR="$(_pg_find_bindir)"; then
		echo "pg.sh: PostgreSQL server binaries (initdb, pg_ctl) not found;" \
			"install the 'postgresql' package (scripts/deps.sh test)" >&2
		return 1
	fi
	PG_TMPDIR="$(mktemp -d /tmp/pytake-pg.XXXXXX)" || return 1
	_pg_note dir "$PG_TMPDIR"
	PG_DATADIR="$PG_TMPDIR/data"
	if [[ "$(id -u)" -eq 0 ]]; then
		if ! id postgres >/dev/null 2>&1; then
			echo "pg.sh: running as root but there is no 'postgres' user" >&2
			return 1
		fi
		chown postgres: "$PG_TMPDIR" || return 1
		PG_RUNAS=(runuser -u postgres --)
	else
		PG_RUNAS=()
	fi
	if ! _pg_as "$PG_BINDIR/initdb" -D "$PG_DATADIR" -U postgres -A trust \
		-E UTF8 --locale=C --no-sync >"$PG_TMPDIR/initdb.log" 2>&1; then
		echo "pg.sh: initdb failed:" >&2
		cat "$PG_TMPDIR/initdb.log" >&2
		return 1
	fi
	for attempt in 1 2 3; do
		PG_PORT="$(python3 "$here/../../scripts/free_port.py")" || return 1
		if _pg_as "$PG_BINDIR/pg_ctl" -D "$PG_DATADIR" -l "$PG_TMPDIR/server.log" \
			-w -t 60 -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_TMPDIR \
-c fsync=off -c synchronous_commit=off -c full_page_writes=off \
-c max_connections=300 -c shared_buffers=128MB" start >/dev/null 2>&1; then
			PG_PID="$(head -n 1 "$PG_DATADIR/postmaster.pid")"
			_pg_note pid "$PG_PID"
			export PYTAKE_TEST_PG_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
			export PYTAKE_PG_BINDIR="$PG_BINDIR"
			return 0
		fi
		echo "pg.sh: start on port $PG_PORT failed (attempt $attempt)" >&2
	done
	echo "pg.sh: could not start PostgreSQL; server log:" >&2
	cat "$PG_TMPDIR/server.log" >&2 2>/dev/null
	return 1
}

pg_stop() {
	local i
	if [[ -n "$PG_DATADIR" && -f "$PG_DATADIR/postmaster.pid" ]]; then
		_pg_as "$PG_BINDIR/pg_ctl" -D "$PG_DATADIR" -m fast -w -t 30 stop \
			>/dev/null 2>&1 || true
	fi
	if [[ -n "$PG_PID" ]] && kill -0 "$PG_PID" 2>/dev/null; then
		kill -TERM "$PG_PID" 2>/dev/null || true
		for i in $(seq 1 50); do
			kill -0 "$PG_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$PG_PID" 2>/dev/null || true
	fi
	if [[ -n "$PG_TMPDIR" && -d "$PG_TMPDIR" ]]; then
		rm -rf "$PG_TMPDIR"
	fi
	PG_TMPDIR=""
	PG_DATADIR=""
	PG_PID=""
}
