-- wrk script for the GET benchmarks (bench/run.sh: /health and
-- /api/v1/auth/me; bench/conversations.sh; bench/costs_summary.sh): the URL
-- carries the query; when PYTAKE_BENCH_TOKEN is set, every request sends
-- it as a Bearer token:
--   [PYTAKE_BENCH_TOKEN=<access token>] wrk ... -s bench/get.lua URL
-- Counts non-2xx answers and prints one summary line at the end:
--   SUMMARY requests_per_sec=... p50_ms=... p99_ms=... non_2xx=... errors=... requests=...
-- Each wrk thread has its own Lua state; per-thread counters are read back
-- in done() through the thread objects.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non_2xx = 0
  wrk.headers["Accept"] = "application/json"
  local token = os.getenv("PYTAKE_BENCH_TOKEN")
  if token ~= nil and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non_2xx") or 0)
  end
  local seconds = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout
  io.write(string.format(
    "SUMMARY requests_per_sec=%.0f p50_ms=%.3f p99_ms=%.3f non_2xx=%d errors=%d requests=%d\n",
    summary.requests / seconds,
    latency:percentile(50) / 1000.0,
    latency:percentile(99) / 1000.0,
    bad, errors, summary.requests))
end
