#!/usr/bin/env bash
# bench/soak.sh - the soak test of issue 10: SOAK_DURATION seconds (600) of
# mixed load at a steady rate (signed webhooks, inbox reads, sends through
# POST /messages against the fake Graph, a campaign running all along) with
# the server's RSS sampled every 5 s; bench/soak.py does the work and prints
# RSS after warm-up vs at the end, errors, p99 of the first vs the last
# minute, and a PASS/FAIL verdict (exit status 0/1).
# Environment: SOAK_ENGINE (sqlite; or postgresql: a throwaway server from
# tests/lib/pg.sh, stopped by PID at the end), SOAK_DURATION (600),
# SOAK_WARMUP (60), SOAK_WEBHOOK_RPS (20), SOAK_INBOX_RPS (10),
# SOAK_SEND_RPS (4), SOAK_CAMPAIGN_MPS (2), SOAK_CONTACTS (200),
# SOAK_RSS_EVERY (5), SOAK_RSS_SLACK_KIB (max(8 MiB, 5% of the warm RSS)),
# PYTAKE_BUILD_DIR (build-release).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${PYTAKE_BUILD_DIR:-build-release}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
export PYTAKE_BUILD_DIR="$BUILD_DIR"
ENGINE="${SOAK_ENGINE:-sqlite}"

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
echo "binary:  $BUILD_DIR/pytake"
echo "cores:   $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ "$ENGINE" == postgresql ]]; then
	pg_start >/dev/null
fi
rc=0
PYTAKE_TEST_ENGINE="$ENGINE" python3 -u "$ROOT/bench/soak.py" || rc=$?
exit $rc
