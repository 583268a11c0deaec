#!/usr/bin/env python3
"""bench/campaign.py - how fast the dispatcher sends one big campaign.

Run through bench/campaign.sh (which starts a throwaway PostgreSQL when
BENCH_ENGINE=postgresql). Python standard library only; reuses the black-box
harness (tests/integration) and the fake Graph (tests/fakes/fake_graph.py).

The defaults are issue 7's scenario: 100,000 recipients, throughput_mps =
1000, the fake Graph answering every send in 50 ms.

Steps: fake Graph answering every send in BENCH_LATENCY_MS (50); a fresh
`pytake serve` (LOG_LEVEL=warn) on PYTAKE_TEST_ENGINE; a tenant, a number
with throughput_mps = BENCH_MPS (1000), an APPROVED template; BENCH_RECIPIENTS
(100000) contacts inserted straight into the database (the API would take
longer than the campaign); a campaign over their tag; start (which
materialises the recipients in bulk: timed); wait until completed. Then,
from the fake's call log (arrival timestamps) and the server's /metrics and
/proc/PID/stat:
  - achieved sends/s over the whole send phase (first to last call) and
    sustained: the calls that arrived between the first call + BENCH_EDGE_S
    (2) and the last call - BENCH_EDGE_S, divided by that span (ramp-up
    and tail left out), with the smallest and largest whole-second bucket
    inside it;
  - the largest number of sends in any 1-second sliding window (must not
    exceed throughput_mps), from the fake's arrival timestamps (which carry
    its own scheduling jitter: on a loaded machine a stalled fake stamps a
    burst late) and from the server's own request start times
    (messages.created_at);
  - server CPU time per 1,000 sends (user + system of `pytake serve`, from
    the start's answer to completion; materialising is timed apart), and the fake Graph's own CPU time
    (it must not be the bottleneck: a busy fake delays and bunches its
    arrival timestamps);
  - sends / retries / failures / missed slots from the dispatcher metrics,
    and the slot-lateness histogram (how long after its slot each request
    started);
  - recipients accepted exactly once (distinct wamids == recipients).
Prints one "SUMMARY ..." line at the end."""

import json
import os
import sqlite3
import sys
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from harness import Server, bootstrap_super_admin, make_tenant, bearer  # noqa: E402
import tenancy  # noqa: E402
from test_templates import FakeGraph  # noqa: E402

N = int(os.environ.get("BENCH_RECIPIENTS", "100000"))
MPS = int(os.environ.get("BENCH_MPS", "1000"))
LATENCY_MS = int(os.environ.get("BENCH_LATENCY_MS", "50"))
EDGE_S = float(os.environ.get("BENCH_EDGE_S", "2"))
TAG = "bench"


def insert_contacts(srv, org_id, n):
    now = int(time.time() * 1e6)
    if srv.engine == "sqlite":
        db = sqlite3.connect(srv.db_path, timeout=30)
        with db:
            db.executemany(
                "INSERT INTO contacts (id, organization_id, wa_id, name, tags, attributes,"
                " opted_out, created_at, updated_at) VALUES (?, ?, ?, ?, ?, '{}', 0, ?, ?)",
                ((str(uuid.uuid4()), org_id, "55119%08d" % i, "Bench %d" % i,
                  json.dumps([TAG]), now + i, now + i) for i in range(n)))
        db.close()
    else:
        srv.sql("INSERT INTO contacts (id, organization_id, wa_id, name, tags, attributes,"
                " opted_out, created_at, updated_at) SELECT gen_random_uuid(), '%s',"
                " '55119' || lpad(i::text, 8, '0'), 'Bench ' || i, '[\"%s\"]', '{}', false,"
                " %d + i, %d + i FROM generate_series(0, %d) AS i"
                % (org_id, TAG, now, now, n - 1))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric_sum(text, name):
    total = 0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += int(line.rsplit(" ", 1)[1])
    return total


def max_in_window(stamps, width):
    worst, lo = 0, 0
    for hi, t in enumerate(stamps):
        while t - stamps[lo] > width:
            lo += 1
        worst = max(worst, hi - lo + 1)
    return worst


def main():
    fake = FakeGraph()
    srv = Server(env={"GRAPH_API_BASE_URL": fake.base_url, "LOG_LEVEL": "warn",
                      "META_APP_SECRET": "bench-secret"})
    try:
        srv.start()
        su = bootstrap_super_admin(srv)
        t = make_tenant(srv, su["token"], "benchorg")
        admin = bearer(t["users"]["org_admin"]["token"])
        number = tenancy.make_number(srv, t, access_token="EAAG-bench-token")
        srv.sql("UPDATE whatsapp_numbers SET throughput_mps = %d WHERE id = '%s'"
                % (MPS, number["id"]))
        tpl = tenancy.make_template(srv, t, number["id"], components=[
            {"type": "BODY", "text": "Hi {{1}}, your order has shipped.",
             "example": {"body_text": [["Maria"]]}}])
        srv.sql("UPDATE templates SET status = 'APPROVED' WHERE id = '%s'" % tpl["id"])
        t0 = time.monotonic()
        insert_contacts(srv, t["org_id"], N)
        print("contacts inserted: %d in %.1f s" % (N, time.monotonic() - t0), flush=True)
        r = srv.request("POST", "/api/v1/campaigns", {
            "name": "bench", "whatsapp_number_id": number["id"], "template_id": tpl["id"],
            "audience": {"tags": [TAG]}, "parameters": ["{{contact.name}}"]}, headers=admin)
        assert r.status == 201, r
        cid = r.json()["id"]
        fake.control("POST", "/_fake/latency", {"ms": LATENCY_MS})
        cpu0 = cpu_seconds(srv.proc.pid)
        fcpu0 = cpu_seconds(fake.proc.pid)
        t0 = time.monotonic()
        r = srv.request("POST", "/api/v1/campaigns/%s/start" % cid, headers=admin, timeout=600)
        assert r.status == 200, r
        cpu_mid = cpu_seconds(srv.proc.pid)
        print("start answered in %.1f s (recipients materialised; server CPU %.2f s)"
              % (time.monotonic() - t0, cpu_mid - cpu0), flush=True)
        # polled in the database: GET /campaigns/{id} counts every recipient
        # (100,000 rows), which would load the server being measured
        while srv.sql("SELECT status FROM campaigns WHERE id = '%s'" % cid).strip() in (
                "running", "scheduled"):
            time.sleep(0.5)
        cpu1 = cpu_seconds(srv.proc.pid)
        fcpu1 = cpu_seconds(fake.proc.pid)
        took = time.monotonic() - t0
        c = srv.request("GET", "/api/v1/campaigns/" + cid, headers=admin).json()
        # the server's own start times (messages.created_at = when the
        # dispatcher started the request, microseconds)
        starts = sorted(int(x) / 1e6 for x in srv.sql(
            "SELECT created_at FROM messages WHERE campaign_id = '%s'" % cid).split())
        calls = fake.control("GET", "/_fake/calls?fields=ts,status,wamid&path_contains=/messages")
        metrics = srv.request("GET", "/metrics").text
    finally:
        srv.close()
        fake.stop()
    stamps = sorted(x["ts"] for x in calls)
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    lo_t, hi_t = (stamps[0] + EDGE_S, stamps[-1] - EDGE_S) if stamps else (0.0, 0.0)
    if hi_t - lo_t < 1.0:  # too short a run: the whole send phase
        lo_t, hi_t = (stamps[0], stamps[-1]) if stamps else (0.0, 0.0)
    steady = [s for s in stamps if lo_t <= s < hi_t]
    sustained = len(steady) / (hi_t - lo_t) if hi_t > lo_t else 0.0
    buckets = {}
    for s in steady:
        buckets[int(s - lo_t)] = buckets.get(int(s - lo_t), 0) + 1
    inner = [buckets.get(k, 0) for k in range(int(hi_t - lo_t))]  # whole seconds only
    worst = max_in_window(stamps, 1.0)
    ok200 = sum(1 for x in calls if x["status"] == 200)
    wamids = len({x["wamid"] for x in calls if x["wamid"]})
    k = c["counters"]
    print("campaign: status %s, sent %d, failed %d, queued %d (of %d) in %.1f s after start"
          % (c["status"], k["sent"], k["failed"], k["queued"], k["total"], took))
    print("fake Graph: %d calls (%d answered 200, %d distinct wamids), latency %d ms"
          % (len(calls), ok200, wamids, LATENCY_MS))
    print("achieved: %.0f sends/s over the send phase (%.1f s); sustained %.1f/s over"
          " %.1f s (first and last %.0f s left out; per-second min %d, max %d);"
          " configured %d/s"
          % (len(stamps) / span if span else 0, span, sustained, hi_t - lo_t, EDGE_S,
             min(inner) if inner else 0, max(inner) if inner else 0, MPS))
    print("largest count in any 1 s sliding window: %d at the fake's arrivals (its own"
          " scheduling jitter included), %d at the server's request starts (limit %d)"
          % (worst, max_in_window(starts, 1.0), MPS))
    print("server CPU: %.2f s while sending, %.1f ms per 1000 sends (materialising"
          " excluded)" % (cpu1 - cpu_mid, (cpu1 - cpu_mid) * 1e6 / max(1, ok200)))
    print("fake Graph CPU: %.2f s (%.0f%% of one core over the campaign)"
          % (fcpu1 - fcpu0, 100.0 * (fcpu1 - fcpu0) / max(took, 1e-9)))
    print("dispatcher metrics: sends %d, retries %d, failures %d, missed slots %d"
          " (of which in-flight cap %d)"
          % (metric_sum(metrics, "pytake_dispatcher_sends_total"),
             metric_sum(metrics, "pytake_dispatcher_retries_total"),
             metric_sum(metrics, "pytake_dispatcher_failures_total"),
             metric_sum(metrics, "pytake_dispatcher_slots_missed_total"),
             metric_sum(metrics, "pytake_dispatcher_slots_missed_inflight_full_total")))
    # how late after its slot each request started (cumulative buckets)
    late = [(line.split('le="', 1)[1].split('"', 1)[0], int(line.rsplit(" ", 1)[1]))
            for line in metrics.splitlines()
            if line.startswith("pytake_dispatcher_slot_lateness_seconds_bucket{")]
    if late and late[-1][1]:
        print("slot lateness of started requests: " + ", ".join(
            "<= %s s %.2f%%" % (le, 100.0 * n / late[-1][1]) for le, n in late if le != "+Inf"))
    print("SUMMARY engine=%s recipients=%d mps=%d latency_ms=%d sent=%d sends_per_sec=%.0f"
          " sustained_per_sec=%.1f max_1s_window=%d max_1s_window_server=%d"
          " cpu_ms_per_1000=%.1f"
          % (srv.engine, N, MPS, LATENCY_MS, k["sent"], len(stamps) / span if span else 0,
             sustained, worst, max_in_window(starts, 1.0),
             (cpu1 - cpu_mid) * 1e6 / max(1, ok200)))
    return 0 if k["sent"] == N and wamids == N else 1


if __name__ == "__main__":
    sys.exit(main())
