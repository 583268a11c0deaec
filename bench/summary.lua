-- summary.lua: what every wrk script of bench/ shares (loaded with
-- dofile by get.lua and webhooks.lua): count non-2xx answers per thread
-- and print one line at the end:
--   SUMMARY requests_per_sec=... p50_ms=... p99_ms=... non_2xx=... errors=... requests=...
-- The loading script calls summary_track(thread) from its setup(). Each wrk
-- thread has its own Lua state; done() reads the per-thread counters back
-- through the thread objects.

local threads = {}

function summary_track(thread)
  table.insert(threads, thread)
end

non_2xx = 0

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
