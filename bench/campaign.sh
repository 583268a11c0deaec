#!/usr/bin/env bash
# bench/campaign.sh - one big campaign through the dispatcher against the
# fake Graph (bench/campaign.py does the work and prints the results).
# The defaults are issue 7's scenario: 100,000 recipients, 1000 mps, Meta
# answering in 50 ms.
# Per engine in BENCH_ENGINES ("sqlite postgresql"; PostgreSQL is a
# throwaway server from tests/lib/pg.sh, stopped by PID at the end).
# Environment: BENCH_RECIPIENTS (100000), BENCH_MPS (1000),
# BENCH_LATENCY_MS (50), BENCH_EDGE_S (2), PYTAKE_BUILD_DIR (build-release).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${PYTAKE_BUILD_DIR:-build-release}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
export PYTAKE_BUILD_DIR="$BUILD_DIR"
ENGINES="${BENCH_ENGINES:-sqlite postgresql}"

if [[ ! -x "$BUILD_DIR/pytake" ]]; then
	[[ -f "$BUILD_DIR/build.ninja" ]] || meson setup "$BUILD_DIR" --buildtype=release
	ninja -C "$BUILD_DIR" pytake
fi

# shellcheck source=../tests/lib/pg.sh
source "$ROOT/tests/lib/pg.sh"
trap 'pg_stop || true' EXIT
trap 'exit 130' INT TERM

echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "commit:  $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "cores:   $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"
rc=0
for engine in $ENGINES; do
	echo "== engine: $engine"
	if [[ "$engine" == postgresql ]]; then
		pg_start >/dev/null
	fi
	PYTAKE_TEST_ENGINE="$engine" python3 "$ROOT/bench/campaign.py" || rc=1
	if [[ "$engine" == postgresql ]]; then
		pg_stop
	fi
done
exit $rc
