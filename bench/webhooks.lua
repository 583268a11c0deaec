-- wrk script for POST /webhooks/meta: signed status webhooks.
-- The bodies and their X-Hub-Signature-256 values are made by
-- bench/webhooks.sh (wrk's Lua has no HMAC) into the file named by
-- PYTAKE_BENCH_WEBHOOKS: one "sha256=<hex>\t<body>" line per body, each with
-- a distinct wamid. Requests are pre-built at init and sent round-robin.
-- Prints one line at the end:
--   SUMMARY requests_per_sec=... p50_ms=... p99_ms=... non_2xx=... errors=...

-- the SUMMARY line and non-2xx counting (bench/summary.lua, next to this file)
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "summary.lua")
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  summary_track(thread)
end

function init(args)
  local path = os.getenv("PYTAKE_BENCH_WEBHOOKS")
  local f = assert(io.open(path, "r"), "PYTAKE_BENCH_WEBHOOKS: cannot open " .. tostring(path))
  reqs = {}
  for line in f:lines() do
    local sig, body = line:match("^(sha256=%x+)\t(.*)$")
    if sig then
      reqs[#reqs + 1] = wrk.format("POST", "/webhooks/meta", {
        ["Content-Type"] = "application/json",
        ["X-Hub-Signature-256"] = sig,
      }, body)
    end
  end
  f:close()
  assert(#reqs > 0, "no signed bodies in " .. path)
  -- threads start at different offsets
  idx = (id or 0) * 7919 % #reqs
end

-- Paced load for the sustained-rate run (wrk 4.1 has no -R):
-- PYTAKE_BENCH_RATE (requests/s for the whole run, split evenly over the
-- PYTAKE_BENCH_THREADS threads): each thread hands out send times one
-- interval apart and a connection that finished its request waits for the
-- next free one, so the offered rate holds whatever the latency, as long as
-- enough connections are free (a thread that fell behind, e.g. its timers
-- fired late on a busy machine, catches up on at most CATCH_UP_MS of
-- missed send times). Needs LuaJIT's ffi for a millisecond clock.
-- Else PYTAKE_BENCH_DELAY_MS: a fixed pause per connection between requests.
local rate = tonumber(os.getenv("PYTAKE_BENCH_RATE") or "")
local pace = tonumber(os.getenv("PYTAKE_BENCH_DELAY_MS") or "")
if rate and rate > 0 then
  local ffi = require("ffi")
  ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } pytake_timespec;
    int clock_gettime(int clk, pytake_timespec *ts);
  ]]
  local ts = ffi.new("pytake_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  end
  local interval = (tonumber(os.getenv("PYTAKE_BENCH_THREADS") or "") or 1) * 1000 / rate
  local next_due = nil
  local CATCH_UP_MS = 100
  function delay()
    local now = now_ms()
    if next_due == nil then
      next_due = now
    elseif next_due < now - CATCH_UP_MS then
      next_due = now - CATCH_UP_MS
    end
    local wait = next_due - now
    next_due = next_due + interval
    return math.floor(wait + 0.5)
  end
elseif pace and pace > 0 then
  function delay()
    return pace
  end
end

function request()
  idx = idx % #reqs + 1
  return reqs[idx]
end
