# PyTake: a thin wrapper over meson/ninja and the test scripts.
#   make / make build   debug-optimized build in build/
#   make run            install deps, build, migrate, bootstrap, serve (SQLite)
#   make test           install deps, build, run every test (SQLite + PostgreSQL)
#   make asan           the same under AddressSanitizer + UBSan (build-asan/)
#   make bench          release build (build-release/) + wrk against /health
#   make fuzz           libFuzzer drivers (build-fuzz/), FUZZ_SECONDS each
#   make valgrind       the black-box suite (SQLite; VALGRIND_TESTS picks
#                       modules) with the server under valgrind memcheck
#                       (build-valgrind/)
#   make clean          remove every build directory
SHELL := /bin/bash
.DEFAULT_GOAL := build

BUILD_DIR    ?= build
ASAN_DIR     ?= build-asan
RELEASE_DIR  ?= build-release
FUZZ_DIR     ?= build-fuzz
FUZZ_SECONDS ?= 60
VALGRIND_DIR ?= build-valgrind
# Black-box test modules run by `make valgrind` (test id substrings, e.g.
# VALGRIND_TESTS="test_auth test_campaigns"); empty (the default): all of
# them. Timing tests skip themselves under valgrind (harness.py,
# skip_under_valgrind). The whole suite takes well over an hour.
VALGRIND_TESTS ?=
JOBS         ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: build run test asan bench fuzz valgrind clean

# $(call setup,DIR,MESON OPTIONS,ENV): `meson setup` only when DIR is not
# configured yet (an existing build dir keeps its options).
define setup
	@if [ ! -f $(1)/build.ninja ]; then \
		echo "meson setup $(1) $(2)"; \
		$(3) meson setup $(1) $(2) || exit 1; \
	fi
endef

build:
	@scripts/deps.sh run
	$(call setup,$(BUILD_DIR),--buildtype=debugoptimized)
	@ninja -C $(BUILD_DIR) -j $(JOBS)

run: build
	$(BUILD_DIR)/pytake migrate upgrade
	$(BUILD_DIR)/pytake bootstrap
	exec $(BUILD_DIR)/pytake serve

# A broken build still ends with the summary line (counted as one failure).
BUILD_FAILED = { echo "build failed: no tests ran"; echo "0 passed, 1 failed"; exit 1; }

test:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory build || $(BUILD_FAILED)
	@PYTAKE_BUILD_DIR=$(BUILD_DIR) tests/run_all.sh

asan:
	@scripts/deps.sh test
	$(call setup,$(ASAN_DIR),--buildtype=debug -Db_sanitize=address$(,)undefined -Db_lundef=false)
	@ninja -C $(ASAN_DIR) -j $(JOBS) || $(BUILD_FAILED)
	@PYTAKE_BUILD_DIR=$(ASAN_DIR) PYTAKE_TEST_TIMEOUT_SCALE=3 \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		tests/run_all.sh

bench:
	@scripts/deps.sh bench
	$(call setup,$(RELEASE_DIR),--buildtype=release)
	@ninja -C $(RELEASE_DIR) -j $(JOBS) pytake
	PYTAKE_BUILD_DIR=$(RELEASE_DIR) bench/run.sh

# Every fuzz/fuzz_*.c driver built by fuzz/meson.build runs FUZZ_SECONDS on a
# copy of its seed corpus fuzz/corpus/<name>/ (or fuzz/corpus/<name without
# fuzz_>/); crashes land in fuzz/corpus-out/.
fuzz:
	@scripts/deps.sh fuzz
	$(call setup,$(FUZZ_DIR),-Dfuzz=true -Dwerror=false -Db_sanitize=address$(,)undefined -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link,CC=clang)
	@ninja -C $(FUZZ_DIR) -j $(JOBS)
	@set -u; failed=0; ran=0; mkdir -p fuzz/corpus-out; \
	for bin in $(FUZZ_DIR)/fuzz/fuzz_*; do \
		[ -f "$$bin" ] && [ -x "$$bin" ] || continue; \
		name=$$(basename "$$bin"); ran=$$((ran + 1)); \
		corpus=$$(mktemp -d /tmp/pytake-fuzz-$$name.XXXXXX); \
		seeds="fuzz/corpus/$$name"; [ -d "$$seeds" ] || seeds="fuzz/corpus/$${name#fuzz_}"; \
		if [ -d "$$seeds" ]; then cp -R "$$seeds/." "$$corpus/"; fi; \
		echo "== $$name for $(FUZZ_SECONDS)s"; \
		if UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$$bin" \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix="fuzz/corpus-out/$$name-" "$$corpus"; then \
			echo "ok   $$name"; \
		else \
			echo "FAIL $$name (artifacts in fuzz/corpus-out/)"; failed=$$((failed + 1)); \
		fi; \
		rm -rf "$$corpus"; \
	done; \
	echo "$$((ran - failed)) passed, $$failed failed"; \
	[ $$ran -gt 0 ] && [ $$failed -eq 0 ]

# The server runs under `valgrind --leak-check=full --error-exitcode=99
# --errors-for-leak-kinds=definite` (tests/integration/harness.py,
# PYTAKE_VALGRIND=1); a test whose server logged memcheck errors or definite
# leaks fails with the report. Logs are kept in $(VALGRIND_DIR)/valgrind-logs/.
valgrind:
	@scripts/deps.sh test
	@command -v valgrind >/dev/null || { echo "valgrind not installed"; exit 1; }
	$(call setup,$(VALGRIND_DIR),--buildtype=debug)
	@ninja -C $(VALGRIND_DIR) -j $(JOBS) pytake || $(BUILD_FAILED)
	@rm -rf $(VALGRIND_DIR)/valgrind-logs
	PYTAKE_BUILD_DIR=$(VALGRIND_DIR) PYTAKE_TEST_ENGINE=sqlite PYTAKE_VALGRIND=1 \
		PYTAKE_VALGRIND_KEEP=$(CURDIR)/$(VALGRIND_DIR)/valgrind-logs \
		PYTAKE_TEST_TIMEOUT_SCALE=10 \
		python3 -u tests/integration/run.py $(addprefix -k ,$(VALGRIND_TESTS))

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(RELEASE_DIR) $(FUZZ_DIR) $(VALGRIND_DIR)

# A literal comma for use inside $(call ...) arguments.
, := ,
