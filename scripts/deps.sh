#!/usr/bin/env bash
# deps.sh [run|test|bench|fuzz] - make sure the Debian packages PyTake needs
# for that purpose are installed.
#
# Nothing missing: prints nothing, exits 0.
# Missing and root with apt-get: installs them non-interactively (one
#   `apt-get update` first), exits with apt-get's status.
# Missing and not root: prints the exact `sudo apt-get install ...` line on
#   stderr and exits 1.
set -euo pipefail

purpose="${1:-run}"

# build: compilers, meson/ninja, the libraries, cmocka; python3 runs
# scripts/embed_migrations.py during the build and the test harness.
build_pkgs=(build-essential pkg-config meson ninja-build libmicrohttpd-dev
	libjansson-dev libpq-dev libsqlite3-dev libhiredis-dev
	libcurl4-openssl-dev libssl-dev libsodium-dev libcmocka-dev python3)
test_pkgs=(postgresql redis-server sqlite3 curl clang libclang-rt-14-dev chromium)
bench_pkgs=(wrk curl procps)
fuzz_pkgs=(clang libclang-rt-14-dev)
# test: our own PostgreSQL/Redis servers, sqlite3 and psql CLIs for the
# harness, clang's sanitizer runtime; bench: wrk, curl, free (procps).
# chromium (headless) renders the /docs page in tests/integration/test_docs.py.

case "$purpose" in
run | build) wanted=("${build_pkgs[@]}") ;;
test) wanted=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
bench) wanted=("${build_pkgs[@]}" "${bench_pkgs[@]}") ;;
fuzz) wanted=("${build_pkgs[@]}" "${fuzz_pkgs[@]}") ;;
*)
	echo "usage: $0 [run|test|bench|fuzz]" >&2
	exit 2
	;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps.sh: dpkg-query not found; this script knows Debian/Ubuntu only." >&2
	echo "deps.sh: install the equivalents of: ${wanted[*]}" >&2
	exit 1
fi

missing=()
for pkg in "${wanted[@]}"; do
	status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
	if [[ "$status" != "install ok installed" ]]; then
		missing+=("$pkg")
	fi
done

if ((${#missing[@]} == 0)); then
	exit 0
fi

if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
	echo "deps.sh: installing missing packages: ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	# The tests start their own PostgreSQL and Redis: keep the packages'
	# scripts from starting system-wide services we would never stop
	# (policy-rc.d exit 101 = "not allowed"), unless a policy exists.
	policy=/usr/sbin/policy-rc.d
	if [[ ! -e "$policy" ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		trap 'rm -f "$policy"' EXIT
	fi
	if ! apt-get update </dev/null; then
		echo "deps.sh: apt-get update failed; trying the install anyway" >&2
	fi
	apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
	exit 0
fi

echo "deps.sh: missing packages: ${missing[*]}" >&2
echo "deps.sh: install them with:" >&2
echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
exit 1
