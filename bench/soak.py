#!/usr/bin/env python3
"""bench/soak.py - a long mixed load at a steady rate, RSS sampled.

Run through bench/soak.sh (which builds the binary and, for
SOAK_ENGINE=postgresql, starts a throwaway PostgreSQL). Python standard
library only; reuses the black-box harness (tests/integration) and the fake
Graph (tests/fakes/fake_graph.py).

Setup: the fake Graph; a fresh `pytake serve` (LOG_LEVEL=warn, rate limits
off) on PYTAKE_TEST_ENGINE; a tenant, a WhatsApp number (phone_number_id
routed by the signed webhooks), an APPROVED template and SOAK_CONTACTS (200)
contacts tagged "soak". Then for SOAK_DURATION seconds (600), each stream at
its own fixed rate (a scheduler thread per stream hands requests to a small
worker pool, so a slow answer does not slow the offered rate):
  - webhooks   SOAK_WEBHOOK_RPS (20/s): signed POST /webhooks/meta, inbound
               text messages from the contacts (opening their service
               window) and, for messages we sent, delivered/read statuses;
  - inbox      SOAK_INBOX_RPS (10/s): GET /api/v1/conversations and
               GET /api/v1/conversations/{id}/messages, alternately;
  - sends      SOAK_SEND_RPS (4/s): POST /api/v1/messages (text, to a
               contact whose inbound message was acknowledged at least
               5 s earlier, so the processor has opened its service
               window) against the fake Graph;
  - campaign   one campaign over the "soak" tag at SOAK_CAMPAIGN_MPS (2/s)
               runs all along: when one completes the next is started;
  - RSS        VmRSS of the server every SOAK_RSS_EVERY seconds (5).
Every answer is recorded (stream, start time, latency, status); a non-2xx
answer or a failed connection is an error.

Report: RSS after the warm-up (the first SOAK_WARMUP seconds, default 60,
at most half the run) vs at the end and the growth; errors and non-2xx by
stream; p50/p99 of the first minute, the last minute and overall; server CPU
time per request. Verdict PASS when: no errors, RSS at the end within
SOAK_RSS_SLACK_KIB (default: the larger of 8 MiB and 5% of the warm RSS) of
the RSS after warm-up, and the last minute's p99 within 2x the first
minute's. Prints one "SUMMARY ..." line and exits 0 on PASS, 1 on FAIL."""

import concurrent.futures
import hashlib
import hmac
import json
import os
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from harness import Server, bearer, bootstrap_super_admin, make_tenant  # noqa: E402
import tenancy  # noqa: E402
from test_templates import FakeGraph  # noqa: E402


def env_num(name, default, kind=float):
    return kind(os.environ.get(name, default))


DURATION = env_num("SOAK_DURATION", 600)
WARMUP = min(env_num("SOAK_WARMUP", 60), DURATION / 2)
WINDOW = min(60.0, DURATION / 2)  # "first minute" / "last minute"
RATES = {"webhooks": env_num("SOAK_WEBHOOK_RPS", 20), "inbox": env_num("SOAK_INBOX_RPS", 10),
         "sends": env_num("SOAK_SEND_RPS", 4)}
CAMPAIGN_MPS = env_num("SOAK_CAMPAIGN_MPS", 2, int)
CONTACTS = env_num("SOAK_CONTACTS", 200, int)
RSS_EVERY = env_num("SOAK_RSS_EVERY", 5)
RSS_SLACK_KIB = os.environ.get("SOAK_RSS_SLACK_KIB")
PROCESS_LAG_S = 5.0  # a contact is written to this long after its inbound message
APP_SECRET = "soak-app-secret"
PNID = "990%d" % os.getpid()
WABA = "880%d" % os.getpid()
TAG = "soak"


def sign(body):
    return "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(value):
    value = dict(value, messaging_product="whatsapp",
                 metadata={"display_phone_number": "15550001111", "phone_number_id": PNID})
    return json.dumps({"object": "whatsapp_business_account", "entry": [
        {"id": WABA, "changes": [{"field": "messages", "value": value}]}]},
        separators=(",", ":")).encode()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values, p):
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))]


class Soak:
    def __init__(self, srv, fake):
        self.srv, self.fake = srv, fake
        self.lock = threading.Lock()
        self.records = []        # (stream, t_rel, latency_s, status)
        self.rss = []            # (t_rel, kib)
        self.sent = []           # wamids of our sends (for status webhooks)
        self.wrote_in = {}       # wa_id -> when its inbound message was acknowledged
        self.error_samples = []  # (stream, status, body) of the first errors
        self.conversations = []  # ids seen in the inbox
        self.campaigns = 0
        self.seq = 0
        self.stop = threading.Event()

    # ---- setup -------------------------------------------------------------

    def setup(self):
        su = bootstrap_super_admin(self.srv)
        t = make_tenant(self.srv, su["token"], "soakorg")
        self.org = t["org_id"]
        self.admin = bearer(t["users"]["org_admin"]["token"])
        self.agent = bearer(t["users"]["agent"]["token"])
        self.number = tenancy.make_number(self.srv, t, phone_number_id=PNID, waba_id=WABA,
                                          access_token="EAAG-soak-token")["id"]
        self.srv.sql("UPDATE whatsapp_numbers SET throughput_mps = %d WHERE id = '%s'"
                     % (CAMPAIGN_MPS, self.number))
        tpl = tenancy.make_template(self.srv, t, self.number)
        self.srv.sql("UPDATE templates SET status = 'APPROVED' WHERE id = '%s'" % tpl["id"])
        self.template = tpl["id"]
        self.wa_ids = ["55119%08d" % i for i in range(CONTACTS)]
        for i, wa in enumerate(self.wa_ids):
            r = self.srv.request("POST", "/api/v1/contacts",
                                 {"phone": "+" + wa, "name": "Soak %d" % i, "tags": [TAG]},
                                 headers=self.admin)
            if r.status != 201:
                raise RuntimeError("create contact: %r" % (r,))

    # ---- one request per stream -------------------------------------------

    def record(self, stream, t_rel, latency, status):
        with self.lock:
            self.records.append((stream, t_rel, latency, status))

    def timed(self, stream, method, path, body=None, headers=None):
        started = time.monotonic()
        try:
            r = self.srv.request(method, path, body, headers=headers, timeout=30)
            status = r.status
        except Exception:  # connection refused/reset, timeout: an error
            r, status = None, 0
        self.record(stream, started - self.t0, time.monotonic() - started, status)
        if not 200 <= status < 300:
            with self.lock:
                if len(self.error_samples) < 5:
                    self.error_samples.append((stream, method, path, status,
                                               r.text[:300] if r is not None else ""))
        return r

    def do_webhooks(self, i):
        with self.lock:
            self.seq += 1
            n = self.seq
            wamid = self.sent[n % len(self.sent)] if self.sent and n % 3 == 0 else None
        now = int(time.time())
        if wamid is not None:
            body = webhook_body({"statuses": [{
                "id": wamid, "status": "delivered" if n % 2 else "read",
                "timestamp": str(now), "recipient_id": self.wa_ids[n % CONTACTS]}]})
        else:
            wa = self.wa_ids[n % CONTACTS]
            body = webhook_body({
                "contacts": [{"profile": {"name": "Soak"}, "wa_id": wa}],
                "messages": [{"from": wa, "id": "wamid.SOAK%d.%d" % (os.getpid(), n),
                              "timestamp": str(now), "type": "text",
                              "text": {"body": "hello %d" % n}}]})
        r = self.timed("webhooks", "POST", "/webhooks/meta", body,
                       {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)})
        if r is not None and r.status == 200 and wamid is None:
            with self.lock:
                self.wrote_in.setdefault(self.wa_ids[n % CONTACTS], time.monotonic())

    def do_inbox(self, i):
        with self.lock:
            conv = self.conversations[i % len(self.conversations)] if self.conversations else None
        if i % 2 == 0 or conv is None:
            r = self.timed("inbox", "GET", "/api/v1/conversations?limit=20", headers=self.agent)
            if r is not None and r.status == 200:
                ids = [c["id"] for c in r.json().get("items", [])]
                with self.lock:
                    self.conversations = ids or self.conversations
        else:
            self.timed("inbox", "GET", "/api/v1/conversations/%s/messages?limit=50" % conv,
                       headers=self.agent)

    def do_sends(self, i):
        # Webhooks are processed after the 200 (webhook processor): a
        # contact's service window is open a moment after its inbound
        # message was acknowledged, not at once.
        settled = time.monotonic() - PROCESS_LAG_S
        with self.lock:
            pool = sorted(wa for wa, t in self.wrote_in.items() if t <= settled)
        if not pool:
            return
        r = self.timed("sends", "POST", "/api/v1/messages", {
            "whatsapp_number_id": self.number, "to": pool[i % len(pool)], "type": "text",
            "text": {"body": "soak reply %d" % i}}, headers=self.agent)
        if r is not None and r.status == 202:
            wamid = r.json().get("wamid")
            if wamid:
                with self.lock:
                    self.sent.append(wamid)
                    del self.sent[:-500]

    # ---- drivers -------------------------------------------------------------

    def stream(self, name, rate, fn):
        """Offer fn at `rate` per second until stop (fixed schedule; a
        request that would start later than one period behind is counted as
        skipped rather than bunched)."""
        period = 1.0 / rate
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=16)
        i, skipped = 0, 0
        start = time.monotonic()
        while not self.stop.is_set():
            due = start + i * period
            now = time.monotonic()
            if due > now:
                self.stop.wait(due - now)
                continue
            if now - due > period:
                skipped += 1
            else:
                pool.submit(fn, i)
            i += 1
        pool.shutdown(wait=True)
        with self.lock:
            self.skipped[name] = skipped

    def campaign_loop(self):
        current = None
        while not self.stop.is_set():
            if current is not None:
                r = self.timed("campaign", "GET", "/api/v1/campaigns/" + current,
                               headers=self.admin)
                if r is not None and r.status == 200 and r.json()["status"] in (
                        "running", "scheduled", "draft"):
                    self.stop.wait(2)
                    continue
            r = self.timed("campaign", "POST", "/api/v1/campaigns", {
                "name": "soak %d" % self.campaigns, "whatsapp_number_id": self.number,
                "template_id": self.template, "audience": {"tags": [TAG]}},
                headers=self.admin)
            if r is None or r.status != 201:
                self.stop.wait(2)
                continue
            current = r.json()["id"]
            self.timed("campaign", "POST", "/api/v1/campaigns/%s/start" % current,
                       headers=self.admin)
            self.campaigns += 1

    def sample_rss(self):
        pid = self.srv.proc.pid
        while True:
            try:
                self.rss.append((time.monotonic() - self.t0, rss_kib(pid)))
            except OSError:
                return
            if self.stop.wait(RSS_EVERY):
                return

    def run(self):
        self.skipped = {}
        self.t0 = time.monotonic()
        self.cpu0 = cpu_seconds(self.srv.proc.pid)
        threads = [threading.Thread(target=self.stream, args=(n, RATES[n], fn))
                   for n, fn in (("webhooks", self.do_webhooks), ("inbox", self.do_inbox),
                                 ("sends", self.do_sends)) if RATES[n] > 0]
        threads.append(threading.Thread(target=self.campaign_loop))
        threads.append(threading.Thread(target=self.sample_rss))
        for t in threads:
            t.start()
        next_note = 60
        while time.monotonic() - self.t0 < DURATION:
            time.sleep(1)
            el = time.monotonic() - self.t0
            if el >= next_note:
                with self.lock:
                    n, bad = len(self.records), sum(1 for r in self.records
                                                    if not 200 <= r[3] < 300)
                print("  t=%4.0fs requests %d, errors %d, rss %d KiB, load %s" % (
                    el, n, bad, self.rss[-1][1] if self.rss else 0,
                    open("/proc/loadavg").read().split()[0]), flush=True)
                next_note += 60
        self.stop.set()
        for t in threads:
            t.join()
        self.elapsed = time.monotonic() - self.t0
        self.cpu1 = cpu_seconds(self.srv.proc.pid)

    # ---- report ------------------------------------------------------------

    def report(self):
        recs = self.records
        end = self.elapsed
        ok = [r for r in recs if 200 <= r[3] < 300]
        errors = [r for r in recs if not 200 <= r[3] < 300]
        by_stream = {}
        for s, _, _, st in recs:
            d = by_stream.setdefault(s, {"n": 0, "non2xx": 0, "failed": 0})
            d["n"] += 1
            if st == 0:
                d["failed"] += 1
            elif not 200 <= st < 300:
                d["non2xx"] += 1
        for s, d in sorted(by_stream.items()):
            print("stream %-9s requests %6d  non-2xx %d  connection errors %d  skipped %d"
                  % (s, d["n"], d["non2xx"], d["failed"], self.skipped.get(s, 0)))
        if errors:
            statuses = {}
            for s, _, _, st in errors:
                statuses["%s:%d" % (s, st)] = statuses.get("%s:%d" % (s, st), 0) + 1
            print("errors by stream:status: %r" % statuses)
            for e in self.error_samples:
                print("  first errors: %s %s %s -> %d %s" % e)
        lat_first = [r[2] for r in recs if r[1] < WINDOW]
        lat_last = [r[2] for r in recs if r[1] >= end - WINDOW]
        lat_all = [r[2] for r in recs]
        p99_first, p99_last, p99_all = (pct(x, 0.99) * 1000 for x in
                                        (lat_first, lat_last, lat_all))
        print("latency ms: first %.0fs p50 %.1f p99 %.1f | last %.0fs p50 %.1f p99 %.1f |"
              " overall p50 %.1f p99 %.1f max %.1f" % (
                  WINDOW, pct(lat_first, 0.5) * 1000, p99_first, WINDOW,
                  pct(lat_last, 0.5) * 1000, p99_last, pct(lat_all, 0.5) * 1000, p99_all,
                  max(lat_all, default=0) * 1000))
        for s in sorted(by_stream):
            xs = [r[2] for r in recs if r[0] == s]
            print("  %-9s p50 %.1f ms  p99 %.1f ms" % (s, pct(xs, 0.5) * 1000,
                                                    pct(xs, 0.99) * 1000))
        warm = [k for t, k in self.rss if t <= WARMUP]
        rss_warm = warm[-1] if warm else (self.rss[0][1] if self.rss else 0)
        tail = [k for _, k in self.rss[-3:]]
        rss_end = sorted(tail)[len(tail) // 2] if tail else 0  # median of the last 3
        rss_max_after = max((k for t, k in self.rss if t > WARMUP), default=rss_end)
        slack = int(RSS_SLACK_KIB) if RSS_SLACK_KIB else max(8192, rss_warm // 20)
        growth = rss_end - rss_warm
        print("RSS KiB: after warm-up (%.0f s) %d, at the end %d (growth %+d, slack %d),"
              " max after warm-up %d, samples %d" % (WARMUP, rss_warm, rss_end, growth, slack,
                                                     rss_max_after, len(self.rss)))
        # A leak keeps climbing; caches filling (SQLite's page cache per
        # connection, allocator arenas) flatten out: the slope over the
        # second half of the run tells them apart.
        half = [(t, k) for t, k in self.rss if t >= end / 2]
        slope = 0.0
        if len(half) >= 3:
            mt = sum(t for t, _ in half) / len(half)
            mk = sum(k for _, k in half) / len(half)
            den = sum((t - mt) ** 2 for t, _ in half)
            slope = 60 * sum((t - mt) * (k - mk) for t, k in half) / den if den else 0.0
        print("RSS trend over the second half: %+.0f KiB/min" % slope)
        print("RSS samples (s:KiB): " + " ".join("%.0f:%d" % (t, k) for t, k in self.rss))
        cpu_ms = (self.cpu1 - self.cpu0) * 1000 / max(1, len(recs))
        print("server CPU %.1f s over %.0f s (%.2f ms per request); campaigns started %d;"
              " load %s" % (self.cpu1 - self.cpu0, end, cpu_ms, self.campaigns,
                            " ".join(open("/proc/loadavg").read().split()[:3])))
        reasons = []
        if errors:
            reasons.append("%d errors" % len(errors))
        if growth > slack:
            reasons.append("RSS grew %d KiB after warm-up" % growth)
        if p99_last > 2 * p99_first:
            reasons.append("last-minute p99 %.1f ms > 2x first-minute %.1f ms"
                           % (p99_last, p99_first))
        if not ok:
            reasons.append("no successful request")
        verdict = "PASS" if not reasons else "FAIL"
        print("SUMMARY engine=%s duration_s=%.0f requests=%d errors=%d rss_warm_kib=%d"
              " rss_end_kib=%d rss_growth_kib=%d rss_late_kib_per_min=%.0f"
              " p99_first_ms=%.1f p99_last_ms=%.1f"
              " p99_all_ms=%.1f cpu_ms_per_req=%.2f verdict=%s%s" % (
                  self.srv.engine, end, len(recs), len(errors), rss_warm, rss_end, growth,
                  slope, p99_first, p99_last, p99_all, cpu_ms, verdict,
                  (" (" + "; ".join(reasons) + ")") if reasons else ""))
        return verdict == "PASS"


def main():
    fake = FakeGraph()
    srv = Server(env={"GRAPH_API_BASE_URL": fake.base_url, "LOG_LEVEL": "warn",
                      "META_APP_SECRET": APP_SECRET, "RATE_LIMIT_ENABLED": "false"})
    try:
        srv.start()
        soak = Soak(srv, fake)
        soak.setup()
        print("soak: %s, %.0f s (warm-up %.0f s), webhooks %.0f/s, inbox %.0f/s, sends %.0f/s,"
              " campaign %d/s over %d contacts; server pid %d" % (
                  srv.engine, DURATION, WARMUP, RATES["webhooks"], RATES["inbox"],
                  RATES["sends"], CAMPAIGN_MPS, CONTACTS, srv.proc.pid), flush=True)
        soak.run()
        alive = srv.proc.poll() is None
        passed = soak.report()
        if not alive:
            print("the server died during the soak")
            passed = False
    finally:
        srv.close()
        fake.stop()
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
