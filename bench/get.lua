-- wrk script for the GET benchmarks (bench/run.sh: /health and
-- /api/v1/auth/me; bench/conversations.sh; bench/costs_summary.sh): the URL
-- carries the query; when PYTAKE_BENCH_TOKEN is set, every request sends
-- it as a Bearer token:
--   [PYTAKE_BENCH_TOKEN=<access token>] wrk ... -s bench/get.lua URL
-- Counts non-2xx answers and prints one summary line at the end:
--   SUMMARY requests_per_sec=... p50_ms=... p99_ms=... non_2xx=... errors=... requests=...

-- the SUMMARY line and non-2xx counting (bench/summary.lua, next to this file)
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "summary.lua")

function setup(thread)
  summary_track(thread)
end

function init(args)
  wrk.headers["Accept"] = "application/json"
  local token = os.getenv("PYTAKE_BENCH_TOKEN")
  if token ~= nil and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end
