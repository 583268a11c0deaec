"""Campaigns (API.md "Campaigns" and "Sending rules (the dispatcher)")
against the fake Graph server, on both engines.

Covers: create / get / list, 409 transitions; estimate exact for a mixed
audience (BR / US / IN / unknown -> OTHER) with the rate card in force;
budget_exceeded; a campaign sent exactly once per recipient (counted in
the fake's call log) with opted-out contacts skipped; the per-number rate
(sampled call-log growth in every 1-second window); 130429 retried then
sent once; 131026 failed with its code; pause stops sends, resume
finishes; cancel; status webhooks move counters to delivered / read;
recipients list and CSV (also a large export, streamed); the 6 s pair
rule across two campaigns of one number; kill -9 mid-campaign then
restart -> every recipient accepted exactly once (Meta's "sent" statuses carrying
biz_opaque_callback_data reconcile the lost answers); cross-tenant 404s."""

import base64
import collections
import itertools
import json
import os
import threading
import time

import re
import unittest
import uuid

import tenancy
from harness import Server, skip_under_valgrind, timeout_scale
from test_messages import APP_SECRET, InboxCase

_seq = itertools.count(1)


def phone(prefix):
    n = next(_seq)
    if prefix == "55":
        return "55119%04d%04d" % (os.getpid() % 10000, n)
    if prefix == "1":
        return "1415%03d%04d" % (os.getpid() % 1000, n)
    if prefix == "91":
        return "9198%04d%04d" % (os.getpid() % 10000, n)
    return "4791%03d%03d" % (os.getpid() % 1000, n)   # Norway: no market -> OTHER


def max_in_window(stamps, width):
    """The largest number of stamps (seconds) in any closed window of width."""
    stamps = sorted(stamps)
    worst, lo = 0, 0
    for hi, t in enumerate(stamps):
        while t - stamps[lo] > width:
            lo += 1
        worst = max(worst, hi - lo + 1)
    return worst


class CampaignsTest(InboxCase):

    # ---- helpers ------------------------------------------------------------

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with open(os.path.join(os.path.dirname(__file__), "..", "..", "src", "domain",
                               "rate_card_seed.csv"), "rb") as f:
            r = cls.srv.request("PUT", "/api/v1/pricing/rates", f.read(), headers={
                "Authorization": "Bearer " + cls.su["token"], "Content-Type": "text/csv"})
        assert r.status in (200, 201, 204), r

    def setUp(self):
        super().setUp()
        self.tag = "camp%d" % next(_seq)

    def admin(self, method, path, body=None, tenant=None):
        return self.call(method, path, body, tenant=tenant, role="org_admin")

    def template(self, number=None):
        number = number or self.number
        tpl = tenancy.make_template(self.srv, self.a, number["id"], components=[
            {"type": "BODY", "text": "Hi {{1}}, your code is {{2}}.",
             "example": {"body_text": [["Maria", "X1"]]}}])
        self.srv.sql("UPDATE templates SET status = 'APPROVED' WHERE id = '%s'" % tpl["id"])
        return tpl

    def contacts(self, n, prefix="55", opted_out=0):
        out = []
        for i in range(n):
            c = tenancy.make_contact(self.srv, self.a, phone="+" + phone(prefix),
                                     name="Person %d" % i, tags=[self.tag],
                                     attributes={"code": "C%d" % i})
            out.append(c)
        for c in out[:opted_out]:
            r = self.call("POST", "/api/v1/contacts/%s/opt-out" % c["id"])
            self.assertIn(r.status, (200, 204), r)
        return out

    def campaign(self, tpl, number=None, **fields):
        number = number or self.number
        body = {"name": "camp %s" % self.tag, "whatsapp_number_id": number["id"],
                "template_id": tpl["id"], "audience": {"tags": [self.tag]},
                "parameters": ["{{contact.name}}", "{{contact.attributes.code}}"]}
        body.update(fields)
        r = self.admin("POST", "/api/v1/campaigns", body)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["status"], "draft")
        return r.json()

    def get(self, cid):
        r = self.call("GET", "/api/v1/campaigns/" + cid, role="viewer")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def wait_status(self, cid, status, timeout=30):
        return self.wait_for(lambda: self.get(cid)["status"] == status and self.get(cid),
                             "campaign %s" % status, timeout=timeout)

    def sends_to(self, number=None):
        number = number or self.number
        return [c for c in self.fake.calls("POST", "/messages")
                if number["phone_number_id"] in c["path"]]

    def accepted_per_to(self, bad=()):
        """Count sends per `to` (calls answered by an error rule excluded
        by the caller through `bad`)."""
        return collections.Counter(c["body"]["to"] for c in self.sends_to())

    def request_starts(self, cid, calls):
        """The campaign's request start times (messages.created_at, s),
        checked against the fake: each accepted send's start precedes its
        arrival there (so the server's stamps are real, the exact measure of
        the rate; the fake's own stamps add its scheduling jitter - a
        Python thread reading a request late on a busy machine bunches it
        with the next ones)."""
        start = {}
        for row in self.srv.sql("SELECT wamid, created_at FROM messages WHERE campaign_id"
                                " = '%s'" % cid).split():
            wamid, at = row.split("|")
            start[wamid] = int(at) / 1e6
        arrived = {x["wamid"]: x["ts"] for x in calls if x["wamid"]}
        self.assertEqual(set(start), set(arrived))
        for wamid, at in start.items():
            self.assertLessEqual(at, arrived[wamid], "started before Meta saw it")
        return sorted(start.values())

    def recipients(self, cid, **q):
        qs = "&".join("%s=%s" % kv for kv in q.items())
        r = self.call("GET", "/api/v1/campaigns/%s/recipients?%s" % (cid, qs), role="viewer")
        self.assertEqual(r.status, 200, r)
        return r.json()

    # ---- tests ----------------------------------------------------------------

    def test_crud_and_illegal_transitions(self):
        tpl = self.template()
        self.contacts(2)
        c = self.campaign(tpl)
        self.assertEqual(self.get(c["id"])["counters"]["total"], 0)
        items = self.call("GET", "/api/v1/campaigns", role="viewer").json()["items"]
        self.assertIn(c["id"], [i["id"] for i in items])
        for action in ("pause", "resume"):
            r = self.admin("POST", "/api/v1/campaigns/%s/%s" % (c["id"], action))
            self.assertEqual(r.status, 409, r)
            self.assertEqual(r.json()["error"]["code"], "invalid_state")
        r = self.admin("POST", "/api/v1/campaigns/%s/cancel" % c["id"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "cancelled")
        for action in ("start", "resume", "pause", "cancel"):
            r = self.admin("POST", "/api/v1/campaigns/%s/%s" % (c["id"], action))
            self.assertEqual(r.status, 409, (action, r))
        # validation and roles
        r = self.admin("POST", "/api/v1/campaigns", {"name": "x"})
        self.assertEqual(r.status, 422, r)
        r = self.admin("POST", "/api/v1/campaigns", {
            "name": "x", "whatsapp_number_id": self.number["id"], "template_id": tpl["id"],
            "audience": {}})
        self.assertEqual(r.status, 422, r)
        r = self.call("POST", "/api/v1/campaigns/%s/start" % c["id"], role="agent")
        self.assertEqual(r.status, 403, r)

    def test_estimate_exact_mixed_markets_and_budget(self):
        tpl = self.template()
        for prefix in ("55", "55", "1", "91", "47"):
            self.contacts(1, prefix)
        self.contacts(1, "55", opted_out=1)
        rates = self.call("GET", "/api/v1/pricing/rates", role="viewer").json()
        rates = rates["items"] if isinstance(rates, dict) and "items" in rates else rates
        if isinstance(rates, dict):
            rates = rates.get("rates", [])
        util = {r["market"]: r for r in rates if r["category"] == "utility"}
        codes = {}
        for r in util.values():
            for cc in r.get("calling_codes", []) or []:
                codes[cc] = r["market"]

        def market(p):
            best = ""
            for cc in codes:
                if p.startswith(cc) and len(cc) > len(best):
                    best = cc
            return codes.get(best, "OTHER")

        from decimal import Decimal
        want = collections.defaultdict(lambda: [0, Decimal(0)])
        for ph in [c["phone"] for c in self.fake_contacts()]:
            m = market(ph)
            rate = Decimal((util.get(m) or util["OTHER"])["rate"])
            want[m][0] += 1
            want[m][1] += rate
        c = self.campaign(tpl)
        r = self.call("POST", "/api/v1/campaigns/%s/estimate" % c["id"], role="viewer")
        self.assertEqual(r.status, 200, r)
        e = r.json()
        self.assertEqual(e["recipients"], 5)
        self.assertEqual(e["skipped_opted_out"], 1)
        self.assertIsInstance(e["cost"]["amount"], str)
        got = {m["market"]: (m["recipients"], Decimal(m["amount"])) for m in e["by_market"]}
        self.assertEqual(got, {k: (v[0], v[1]) for k, v in want.items()})
        self.assertEqual(Decimal(e["cost"]["amount"]), sum(v[1] for v in want.values()))
        # budget below the estimate -> 422 budget_exceeded, nothing starts
        low = self.campaign(tpl, budget_limit="0.000001")
        r = self.admin("POST", "/api/v1/campaigns/%s/start" % low["id"])
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json()["error"]["code"], "budget_exceeded")
        self.assertEqual(self.get(low["id"])["status"], "draft")
        self.assertEqual(self.sends_to(), [])

    def test_audience_by_ids_and_tags(self):
        """The audience is the contacts listed by id OR carrying a listed
        tag, of this org only; opted-out ones are skipped."""
        tpl = self.template()
        tagged = self.contacts(2)                      # carry self.tag
        self.tag = "camp%d" % next(_seq)
        by_id = self.contacts(3, opted_out=1)          # other tag, listed by id
        self.tag = "camp%d" % next(_seq)
        self.contacts(2)                               # neither: left out
        other = tenancy.make_contact(self.srv, self.b, phone="+" + phone("55"),
                                     name="Other org", tags=[tagged[0]["tags"][0]])
        audience = {"contact_ids": [x["id"] for x in by_id] + [other["id"], tagged[0]["id"]],
                    "tags": [tagged[0]["tags"][0], "no-such-tag"]}
        c = self.campaign(tpl, audience=audience)
        e = self.call("POST", "/api/v1/campaigns/%s/estimate" % c["id"], role="viewer").json()
        self.assertEqual((e["recipients"], e["skipped_opted_out"]), (4, 1))
        r = self.admin("POST", "/api/v1/campaigns/%s/start" % c["id"])
        self.assertEqual(r.status, 200, r)
        done = self.wait_status(c["id"], "completed")
        k = done["counters"]
        self.assertEqual((k["total"], k["sent"], k["skipped"]), (5, 4, 1))
        want = sorted(x["phone"] for x in tagged + by_id[1:])
        self.assertEqual(sorted(self.accepted_per_to()), want)

    def test_org_monthly_budget_refuses_start(self):
        """Start is refused (422 budget_exceeded) when the estimate exceeds
        what the org may still spend this month (PUT /costs/budget)."""
        tpl = self.template()
        self.contacts(3)
        c = self.campaign(tpl)
        r = self.call("POST", "/api/v1/campaigns/%s/estimate" % c["id"], role="viewer")
        self.assertEqual(r.status, 200, r)
        est = r.json()["cost"]
        try:
            r = self.admin("PUT", "/api/v1/costs/budget", {
                "monthly_limit": "0.000001", "currency": est["currency"]})
            self.assertIn(r.status, (200, 201), r)
            r = self.admin("POST", "/api/v1/campaigns/%s/start" % c["id"])
            self.assertEqual(r.status, 422, r)
            self.assertEqual(r.json()["error"]["code"], "budget_exceeded")
            self.assertEqual(self.get(c["id"])["status"], "draft")
            self.assertEqual(self.sends_to(), [])
            # a budget that covers the estimate lets it start
            r = self.admin("PUT", "/api/v1/costs/budget", {
                "monthly_limit": "1000000", "currency": est["currency"]})
            self.assertIn(r.status, (200, 201), r)
            r = self.admin("POST", "/api/v1/campaigns/%s/start" % c["id"])
            self.assertEqual(r.status, 200, r)
            self.wait_status(c["id"], "completed")
        finally:
            # the other tests of this class share the tenant: no budget left behind
            self.srv.sql("DELETE FROM budgets WHERE organization_id = '%s'" % self.a["org_id"])

    def fake_contacts(self):
        """The tagged, not opted-out contacts of this test."""
        r = self.call("GET", "/api/v1/contacts?limit=200", role="viewer").json()["items"]
        return [c for c in r if self.tag in (c.get("tags") or []) and not c.get("opted_out")]

    def test_sends_each_recipient_once_skips_opted_out_and_webhooks_count(self):
        tpl = self.template()
        people = self.contacts(6, opted_out=1)
        c = self.campaign(tpl)
        r = self.admin("POST", "/api/v1/campaigns/%s/start" % c["id"])
        self.assertEqual(r.status, 200, r)
        self.assertIn(r.json()["status"], ("running", "completed"))
        done = self.wait_status(c["id"], "completed")
        k = done["counters"]
        self.assertEqual((k["total"], k["sent"], k["skipped"], k["queued"], k["failed"]),
                         (6, 5, 1, 0, 0))
        per_to = self.accepted_per_to()
        self.assertEqual(sorted(per_to), sorted(p["phone"] for p in people[1:]))
        self.assertEqual(set(per_to.values()), {1})
        call = self.sends_to()[0]
        body = call["body"]
        self.assertEqual(body["type"], "template")
        self.assertEqual(body["template"]["name"], tpl["name"])
        self.assertTrue(body["biz_opaque_callback_data"].startswith(c["id"] + ":"))
        who = next(p for p in people if p["phone"] == body["to"])
        params = [p["text"] for p in body["template"]["components"][0]["parameters"]]
        self.assertEqual(params, [who["name"], who["attributes"]["code"]])
        # status webhooks move the counters (each recipient once, furthest state)
        items = self.recipients(c["id"], status="sent")["items"]
        self.assertEqual(len(items), 5)
        ts = int(time.time())
        self.status(items[0]["wamid"], "delivered", ts, items[0]["phone"])
        self.status(items[1]["wamid"], "delivered", ts, items[1]["phone"])
        self.status(items[1]["wamid"], "read", ts + 1, items[1]["phone"])
        self.wait_for(lambda: self.get(c["id"])["counters"]["read"] == 1, "read counter")
        k = self.get(c["id"])["counters"]
        self.assertEqual((k["sent"], k["delivered"], k["read"]), (3, 1, 1))
        # CSV of every recipient
        r = self.call("GET", "/api/v1/campaigns/%s/recipients?format=csv" % c["id"],
                      role="viewer")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["Content-Type"].startswith("text/csv"))
        lines = r.body.decode().strip().split("\n")
        self.assertEqual(lines[0].split(",")[:3], ["contact_id", "phone", "status"])
        self.assertEqual(len(lines), 7)

    def test_sends_reopen_a_closed_conversation(self):
        """A campaign send goes into the contact's conversation with the
        number as an inbound message or an inbox reply would: the open one;
        else the most recent closed one, reopened (not a second
        conversation); else a new one."""
        tpl = self.template()
        closed_one, open_one, none = self.contacts(3)
        ids = {}
        t0 = int(time.time() * 1e6) - 3600 * 1000000
        for who, status, age in ((closed_one, "closed", 2), (closed_one, "closed", 1),
                                 (open_one, "open", 1)):
            cid = str(uuid.uuid4())
            ids.setdefault(who["id"], []).append(cid)
            self.srv.sql(
                "INSERT INTO conversations (id, organization_id, contact_id,"
                " whatsapp_number_id, status, unread_count, created_at, updated_at)"
                " VALUES ('%s', '%s', '%s', '%s', '%s', 0, %d, %d)"
                % (cid, self.a["org_id"], who["id"], self.number["id"], status,
                   t0 - age * 1000000, t0 - age * 1000000))
        c = self.campaign(tpl)
        r = self.admin("POST", "/api/v1/campaigns/%s/start" % c["id"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.wait_status(c["id"], "completed")["counters"]["sent"], 3)

        def conversations(who):
            out = self.srv.sql("SELECT id, status FROM conversations WHERE contact_id = '%s'"
                               " ORDER BY created_at" % who["id"])
            return [tuple(line.split("|")) for line in out.strip().split("\n") if line]

        def campaign_message_in(conv_id):
            return self.srv.sql("SELECT count(*) FROM messages WHERE conversation_id = '%s'"
                                " AND campaign_id = '%s'" % (conv_id, c["id"])).strip()

        older, newer = ids[closed_one["id"]]
        self.assertEqual(conversations(closed_one), [(older, "closed"), (newer, "open")])
        self.assertEqual(campaign_message_in(newer), "1")
        self.assertEqual(conversations(open_one), [(ids[open_one["id"]][0], "open")])
        self.assertEqual(campaign_message_in(ids[open_one["id"]][0]), "1")
        fresh = conversations(none)
        self.assertEqual(len(fresh), 1, fresh)
        self.assertEqual(fresh[0][1], "open")
        self.assertEqual(campaign_message_in(fresh[0][0]), "1")
        # the API shows the reopened conversation open, with the send as its
        # latest activity
        r = self.call("GET", "/api/v1/conversations/" + newer, role="viewer")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "open")
        self.assertIsNotNone(r.json()["last_message_at"])

    def test_csv_export_of_a_large_campaign_is_streamed(self):
        """20,000 recipients (inserted straight into the database) come out
        complete, newest first, quoted where needed, as a chunked stream
        (no Content-Length: the body is never built whole in memory)."""
        import csv
        import io
        import random
        tpl = self.template()
        c = self.campaign(tpl)
        n, org, cid = 20000, self.a["org_id"], c["id"]
        pfx = "%08x" % random.getrandbits(32)
        now = int(time.time() * 1e6)
        if self.srv.engine == "sqlite":
            series = ("WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s"
                      " WHERE i < %d) " % (n - 1))
            cid_of = "printf('%s-0000-4000-8000-%%012d', i)" % pfx
            rid_of = "printf('%s-0000-4000-9000-%%012d', i)" % pfx
            phone_of = "printf('+5521%09d', i)"
            src = "s"
        else:
            series = ""
            cid_of = "CAST(format('%s-0000-4000-8000-%%s', lpad(i::text, 12, '0')) AS uuid)" % pfx
            rid_of = "CAST(format('%s-0000-4000-9000-%%s', lpad(i::text, 12, '0')) AS uuid)" % pfx
            phone_of = "'+5521' || lpad(i::text, 9, '0')"
            src = "generate_series(0, %d) AS i" % (n - 1)
        self.srv.sql(
            "INSERT INTO contacts (id, organization_id, wa_id, name, tags, attributes,"
            " opted_out, created_at, updated_at) %s SELECT %s, '%s', %s, 'Bulk', '[]', '{}',"
            " %s, %d + i, %d + i FROM %s"
            % (series, cid_of, org, phone_of,
               "0" if self.srv.engine == "sqlite" else "false", now, now, src))
        self.srv.sql(
            "INSERT INTO campaign_recipients (id, organization_id, campaign_id, contact_id,"
            " phone, status, attempts, next_attempt_at, idempotency_key, error_code,"
            " error_message, created_at, updated_at) %s SELECT %s, '%s', '%s', %s, %s,"
            " CASE WHEN i %% 1000 = 0 THEN 'failed' ELSE 'pending' END, 1, 0,"
            " '%s:' || i, CASE WHEN i %% 1000 = 0 THEN 131026 END,"
            " CASE WHEN i %% 1000 = 0 THEN 'bad, \"quoted\"' END, %d + i, %d + i FROM %s"
            % (series, rid_of, org, cid, cid_of, phone_of, cid, now, now, src))
        r = self.call("GET", "/api/v1/campaigns/%s/recipients?format=csv" % cid,
                      role="viewer")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers["Content-Type"].startswith("text/csv"))
        self.assertEqual((r.headers.get("Transfer-Encoding") or "").lower(), "chunked")
        self.assertIsNone(r.headers.get("Content-Length"))
        rows = list(csv.reader(io.StringIO(r.body.decode())))
        self.assertEqual(rows[0], ["contact_id", "phone", "status", "message_id", "wamid",
                                   "error_code", "error_message", "attempts", "cost"])
        self.assertEqual(len(rows), n + 1)
        ids = [x[0] for x in rows[1:]]
        self.assertEqual(len(set(ids)), n)
        # newest first: contact n-1 first, contact 0 last
        self.assertTrue(ids[0].endswith("%012d" % (n - 1)), ids[0])
        self.assertTrue(ids[-1].endswith("%012d" % 0), ids[-1])
        last = rows[-1]
        self.assertEqual((last[1], last[2], last[5], last[6], last[7]),
                         ("+5521000000000", "failed", "131026", 'bad, "quoted"', "1"))
        # the status filter streams too
        r = self.call("GET", "/api/v1/campaigns/%s/recipients?format=csv&status=failed" % cid,
                      role="viewer")
        self.assertEqual(r.status, 200, r)
        rows = list(csv.reader(io.StringIO(r.body.decode())))
        self.assertEqual(len(rows), 1 + n // 1000)
        self.assertEqual({x[2] for x in rows[1:]}, {"failed"})
        # an unknown campaign is still a plain 404
        r = self.call("GET", "/api/v1/campaigns/%s/recipients?format=csv"
                      % "00000000-0000-4000-8000-000000000000", role="viewer")
        self.assertEqual(r.status, 404, r)

    def test_rate_limit_held(self):
        number = self.new_number(self.a)
        self.srv.sql("UPDATE whatsapp_numbers SET throughput_mps = 50 WHERE id = '%s'"
                     % number["id"])
        tpl = self.template(number)
        self.contacts(200)
        c = self.campaign(tpl, number=number)
        samples = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                samples.append((time.monotonic(), len(self.sends_to(number))))
                time.sleep(0.05)
        th = threading.Thread(target=sample)
        th.start()
        try:
            t0 = time.monotonic()
            self.assertEqual(self.admin("POST", "/api/v1/campaigns/%s/start" % c["id"]).status,
                             200)
            self.wait_status(c["id"], "completed", timeout=60)
            took = time.monotonic() - t0
        finally:
            stop.set()
            th.join()
        self.assertGreaterEqual(took, 3.5)
        worst = 0
        for i, (t, n) in enumerate(samples):
            for t2, n2 in samples[i:]:
                if t2 - t <= 1.0:
                    worst = max(worst, n2 - n)
        # The guarantee, exactly: the server's own request start times
        # (checked against the fake's arrivals, see request_starts). The
        # sampled growth and the fake's stamps carry the fake's jitter: with
        # a sender that keeps every slot on a busy machine they exceed the
        # rate now and then, so they are only printed.
        starts = self.request_starts(c["id"], self.sends_to(number))
        self.assertEqual(len(starts), 200)
        exact = max_in_window(starts, 1.0)
        self.assertLessEqual(exact, 50, "at most 50 request starts in any 1-second window")
        if os.environ.get("PYTAKE_TEST_VERBOSE"):
            print("rate 50: worst 1 s window %d at the starts, %d sampled, %d at the fake"
                  % (exact, worst, max_in_window([x["ts"] for x in self.sends_to(number)],
                                                  1.0)))
        per_to = collections.Counter(x["body"]["to"] for x in self.sends_to(number))
        self.assertEqual(len(per_to), 200)
        self.assertEqual(set(per_to.values()), {1})

    def histogram(self, srv, name):
        """{le: cumulative count} and _count of an unlabelled histogram."""
        text = srv.request("GET", "/metrics").text
        buckets = {m.group(1): int(m.group(2)) for m in re.finditer(
            r'^%s_bucket\{le="([^"]+)"\} (\d+)$' % name, text, re.M)}
        m = re.search(r"^%s_count (\d+)$" % name, text, re.M)
        return buckets, int(m.group(1)) if m else 0

    def test_sender_starts_on_its_slots_over_reused_connections(self):
        """The sender (epoll + timerfd + curl_multi_socket_action): the
        server's own request start times (messages.created_at) never put
        more than throughput_mps in any 1 s window; every started request
        is in the slot-lateness histogram, within the allowance (a later
        one is given back: slots_missed); the transfers reuse a few
        connections (the socket callback keeps them watched)."""
        mps, n = 100, 150
        number = self.new_number(self.a)
        self.srv.sql("UPDATE whatsapp_numbers SET throughput_mps = %d WHERE id = '%s'"
                     % (mps, number["id"]))
        tpl = self.template(number)
        self.contacts(n)
        name = "pytake_dispatcher_slot_lateness_seconds"
        _, count0 = self.histogram(self.srv, name)
        missed0 = self.metric(self.srv, "pytake_dispatcher_slots_missed_total", number)
        c = self.campaign(tpl, number=number)
        self.assertEqual(self.admin("POST", "/api/v1/campaigns/%s/start" % c["id"]).status, 200)
        done = self.wait_status(c["id"], "completed", timeout=60)
        self.assertEqual(done["counters"]["sent"], n)
        calls = self.sends_to(number)
        self.assertEqual(len(calls), n)
        starts = self.request_starts(c["id"], calls)
        self.assertEqual(len(starts), n)
        self.assertLessEqual(max_in_window(starts, 1.0), mps)
        buckets, count1 = self.histogram(self.srv, name)
        # one observation per started request, all within DISPATCH_LATE_US
        # (5 ms); given-back ones are counted as missed slots instead
        self.assertEqual(count1 - count0, n)
        self.assertEqual(buckets.get("0.005"), count1)
        self.assertEqual(buckets.get("+Inf"), count1)
        missed = self.metric(self.srv, "pytake_dispatcher_slots_missed_total", number) - missed0
        sched = [x.get("scheduling") for x in self.srv.log_lines()
                 if x.get("msg") == "dispatcher: sender started"]
        self.assertIn(sched[-1] if sched else None, ("SCHED_FIFO", "nice -10", "normal"))
        # a real-time sender is rarely kept waiting for a CPU (under ASan on a
        # loaded machine, a few dozen of 150); one that woke on a coarse
        # timeout instead of its slot timer would miss most of its 10 ms slots
        if sched[-1] == "SCHED_FIFO":
            self.assertLess(missed, n // 3, "the sender wakes at its slots")
        ports = {x["peer_port"] for x in calls}
        self.assertLessEqual(len(ports), 10, "connections reused: %d for %d sends"
                             % (len(ports), n))

    def test_pair_rule_holds_across_campaigns_of_the_number(self):
        """Two campaigns of one number with the same audience, started
        together while Meta answers slowly: the second must not send to a
        contact whose send from the first is still in flight (no accepted
        send recorded yet), nor within 6 s of its acceptance."""
        number = self.new_number(self.a)
        tpl = self.template(number)
        people = self.contacts(3)
        first = self.campaign(tpl, number=number)
        second = self.campaign(tpl, number=number)
        self.fake.control("POST", "/_fake/latency", {"ms": 1000})
        try:
            for c in (first, second):
                r = self.admin("POST", "/api/v1/campaigns/%s/start" % c["id"])
                self.assertEqual(r.status, 200, r)
            for c in (first, second):
                self.wait_status(c["id"], "completed", timeout=40)
        finally:
            self.fake.control("POST", "/_fake/latency", {"ms": 0})
        by_to = collections.defaultdict(list)
        for x in self.sends_to(number):
            by_to[x["body"]["to"]].append(x["ts"])
        self.assertEqual(sorted(by_to), sorted(p["phone"] for p in people))
        for to, stamps in by_to.items():
            self.assertEqual(len(stamps), 2, to)
            stamps.sort()
            # the second arrives >= 6 s after the first was answered (1 s)
            self.assertGreaterEqual(stamps[1] - stamps[0], 6.0, (to, stamps))

    def test_rate_limit_error_retried_and_permanent_failure(self):
        tpl = self.template()
        people = self.contacts(4)
        names = ("pytake_dispatcher_sends_total", "pytake_dispatcher_retries_total",
                 "pytake_dispatcher_failures_total")
        before = [self.metric(self.srv, n, self.number) for n in names]
        self.fake.error(match={"path_regex": "/messages$"}, code=130429, http_status=429,
                        count=3)
        c = self.campaign(tpl)
        self.admin("POST", "/api/v1/campaigns/%s/start" % c["id"])
        done = self.wait_status(c["id"], "completed", timeout=60)
        self.assertEqual(done["counters"]["sent"], 4)
        calls = self.sends_to()
        self.assertEqual(len(calls), 4 + 3)
        # the first 3 calls were refused, so accepted = all calls minus them
        accepted = collections.Counter(x["body"]["to"] for x in calls[3:])
        self.assertEqual(sorted(accepted), sorted(p["phone"] for p in people))
        self.assertEqual(set(accepted.values()), {1})
        # a permanent error fails the recipient with Meta's code
        self.fake.reset()
        self.tag = "camp%d" % next(_seq)
        self.contacts(1)
        self.fake.error(match={"path_regex": "/messages$"}, code=131026, count=1)
        c2 = self.campaign(tpl)
        self.admin("POST", "/api/v1/campaigns/%s/start" % c2["id"])
        done = self.wait_status(c2["id"], "completed", timeout=30)
        self.assertEqual(done["counters"]["failed"], 1)
        item = self.recipients(c2["id"])["items"][0]
        self.assertEqual((item["status"], item["error_code"], item["attempts"]),
                         ("failed", 131026, 1))
        self.assertEqual(len(self.sends_to()), 1)
        # /metrics, per number: 4 accepted sends, 3 retries, 1 failure
        want = [b + d for b, d in zip(before, (4, 3, 1))]
        deadline = time.monotonic() + 5
        while True:
            got = [self.metric(self.srv, n, self.number) for n in names]
            if got == want or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(dict(zip(names, got)), dict(zip(names, want)))

    def test_pause_resume_cancel(self):
        number = self.new_number(self.a)
        self.srv.sql("UPDATE whatsapp_numbers SET throughput_mps = 10 WHERE id = '%s'"
                     % number["id"])
        tpl = self.template(number)
        self.contacts(40)
        c = self.campaign(tpl, number=number)
        self.admin("POST", "/api/v1/campaigns/%s/start" % c["id"])
        self.wait_for(lambda: len(self.sends_to(number)) >= 5, "first sends")
        r = self.admin("POST", "/api/v1/campaigns/%s/pause" % c["id"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "paused")
        time.sleep(1.0)
        n = len(self.sends_to(number))
        time.sleep(1.5)
        self.assertEqual(len(self.sends_to(number)), n, "no sends while paused")
        self.assertLess(n, 40)
        r = self.admin("POST", "/api/v1/campaigns/%s/resume" % c["id"])
        self.assertEqual(r.json()["status"], "running")
        done = self.wait_status(c["id"], "completed", timeout=30)
        self.assertEqual(done["counters"]["sent"], 40)
        per_to = collections.Counter(x["body"]["to"] for x in self.sends_to(number))
        self.assertEqual((len(per_to), set(per_to.values())), (40, {1}))
        # cancel stops for good
        self.fake.reset()
        self.tag = "camp%d" % next(_seq)
        self.contacts(40)
        c2 = self.campaign(tpl, number=number)
        self.admin("POST", "/api/v1/campaigns/%s/start" % c2["id"])
        self.wait_for(lambda: len(self.sends_to(number)) >= 3, "first sends")
        r = self.admin("POST", "/api/v1/campaigns/%s/cancel" % c2["id"])
        self.assertEqual(r.json()["status"], "cancelled")
        time.sleep(1.0)
        n = len(self.sends_to(number))
        time.sleep(1.0)
        self.assertEqual(len(self.sends_to(number)), n)
        k = self.get(c2["id"])["counters"]
        self.assertEqual(k["queued"], 0)
        self.assertEqual(k["sent"] + k["skipped"] + k["failed"], 40)
        r = self.admin("POST", "/api/v1/campaigns/%s/resume" % c2["id"])
        self.assertEqual(r.status, 409)

    @skip_under_valgrind("the restarted server must store Meta's status webhooks before "
                         "the 15 s claim TTL ends (DISPATCH_CLAIM_TTL_US), or it resends")
    def test_zz_kill_9_mid_campaign_then_restart_sends_each_once(self):
        number = self.new_number(self.a)
        self.srv.sql("UPDATE whatsapp_numbers SET throughput_mps = 20 WHERE id = '%s'"
                     % number["id"])
        tpl = self.template(number)
        self.contacts(40)
        self.fake.control("POST", "/_fake/latency", {"ms": 300})
        c = self.campaign(tpl, number=number)
        self.admin("POST", "/api/v1/campaigns/%s/start" % c["id"])
        self.wait_for(lambda: len(self.sends_to(number)) >= 15, "sends under way")
        self.srv.proc.kill()
        self.srv.proc.wait()
        self.srv.proc = None
        self.fake.control("POST", "/_fake/latency", {"ms": 0})
        before = self.sends_to(number)
        self.srv.start()
        # Meta reports every message it accepted ("sent" status webhooks
        # carrying biz_opaque_callback_data), also those whose answer died
        # with the process.
        ts = int(time.time())
        for i, call in enumerate(before):
            self.webhook({
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881",
                             "phone_number_id": number["phone_number_id"]},
                "statuses": [{"id": "wamid.K%d.%d" % (os.getpid(), next(_seq)),
                              "status": "sent", "timestamp": str(ts),
                              "recipient_id": call["body"]["to"],
                              "biz_opaque_callback_data":
                                  call["body"]["biz_opaque_callback_data"]}]})
        done = self.wait_status(c["id"], "completed", timeout=60)
        self.assertEqual(done["counters"]["sent"], 40)
        per_to = collections.Counter(x["body"]["to"] for x in self.sends_to(number))
        self.assertEqual(len(per_to), 40)
        self.assertEqual(set(per_to.values()), {1}, "no recipient sent twice")

    def metric(self, srv, name, number):
        """The value of a dispatcher counter for number on srv's /metrics."""
        r = srv.request("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        m = re.search(r'^%s\{number="%s"\} (\d+)$' % (name, number["id"]), r.text, re.M)
        return int(m.group(1)) if m else 0

    @unittest.skipUnless(os.environ.get("PYTAKE_TEST_ENGINE") == "postgresql",
                         "several processes share a database on PostgreSQL only")
    def test_zz_two_processes_share_a_campaign(self):
        """Two `pytake serve` on one PostgreSQL database dispatch the same
        campaign: every recipient accepted exactly once, both processes
        sent, and the number's rate held across both (the fake's arrival
        timestamps: never more than throughput_mps + 1 in any 1 s window)."""
        mps, n = 60, 300
        number = self.new_number(self.a)
        self.srv.sql("UPDATE whatsapp_numbers SET throughput_mps = %d WHERE id = '%s'"
                     % (mps, number["id"]))
        tpl = self.template(number)
        self.contacts(n)
        # Meta answering in 100 ms: each process keeps ~6 requests in flight
        self.fake.control("POST", "/_fake/latency", {"ms": 100})
        with open(os.path.join(self.srv.data_dir, "encryption.key")) as f:
            key = f.read().strip()
        env = {k: v for k, v in self.srv.env.items() if k not in ("PORT", "DATA_DIR")}
        env.update({"DATABASE_URL": self.srv.database_url, "ENCRYPTION_KEY": key,
                    "GRAPH_API_BASE_URL": self.fake.base_url, "META_APP_SECRET": APP_SECRET})
        second = Server(env=env, migrate=False)
        try:
            second.start()
            c = self.campaign(tpl, number=number)
            t0 = time.monotonic()
            r = self.admin("POST", "/api/v1/campaigns/%s/start" % c["id"])
            self.assertEqual(r.status, 200, r)
            done = self.wait_status(c["id"], "completed", timeout=60)
            took = time.monotonic() - t0
            self.assertEqual(done["counters"]["sent"], n)
            first_sends = self.metric(self.srv, "pytake_dispatcher_sends_total", number)
            second_sends = self.metric(second, "pytake_dispatcher_sends_total", number)
        finally:
            self.fake.control("POST", "/_fake/latency", {"ms": 0})
            second.close()
        calls = self.sends_to(number)
        self.assertTrue(all(x["status"] == 200 and x["wamid"] for x in calls))
        per_to = collections.Counter(x["body"]["to"] for x in calls)
        self.assertEqual(len(per_to), n)
        self.assertEqual(set(per_to.values()), {1}, "no recipient sent twice")
        # both processes took part, and together sent each recipient once
        self.assertGreater(first_sends, 0)
        self.assertGreater(second_sends, 0)
        self.assertEqual(first_sends + second_sends, n)
        # the recorded wamids are the ones Meta returned
        wamids = set(self.srv.sql(
            "SELECT wamid FROM campaign_recipients WHERE campaign_id = '%s'"
            % c["id"]).split())
        self.assertEqual(wamids, {x["wamid"] for x in calls})
        worst = max_in_window([x["ts"] for x in calls], 1.0)
        # exactly, at both processes' request starts (messages.created_at,
        # checked against the fake's arrivals); the fake's stamps add its
        # own jitter (see test_rate_limit_held)
        starts = self.request_starts(c["id"], calls)
        exact = max_in_window(starts, 1.0)
        if os.environ.get("PYTAKE_TEST_VERBOSE"):
            print("two processes: sends %d + %d, worst 1 s window %d at starts, %d at the"
                  " fake (mps %d), %.1f s" % (first_sends, second_sends, exact, worst, mps, took))
        self.assertEqual(len(starts), n)
        self.assertLessEqual(exact, mps, "the number's rate held across both processes")
        self.assertGreaterEqual(took, (n - mps) / mps)

    @unittest.skipUnless(os.environ.get("PYTAKE_TEST_ENGINE") == "postgresql",
                         "PostgreSQL plans")
    def test_recording_probes_indexes_not_whole_tables(self):
        """Issue 7: the recorder's statements reach messages and
        conversations through indexes, never by scanning them whole
        (pg_stat_user_tables.seq_scan), whatever their statistics say; a
        scan per recording transaction cost ~1 ms per recorded row at
        100,000 recipients. Progress is polled in the database (the API's
        counters query is not the recorder's)."""
        # 40 mps: the 120 sends are recorded over ~3 s, in dozens of
        # recorder transactions, so a scan per transaction would show as
        # dozens of scans (the bound below leaves room for a few that are
        # not the recorder's: the start's own queries, and counters of
        # earlier tests' backends, which PostgreSQL publishes up to ~10 s
        # late -- 4 were seen once).
        mps, n = 40, 120
        number = self.new_number(self.a)
        self.srv.sql("UPDATE whatsapp_numbers SET throughput_mps = %d WHERE id = '%s'"
                     % (mps, number["id"]))
        tpl = self.template(number)
        self.contacts(n)
        c = self.campaign(tpl, number=number)

        def stats():
            out = self.srv.sql(
                "SELECT relname, seq_scan, n_tup_ins"
                " FROM pg_stat_user_tables WHERE relname IN ('messages', 'conversations')")
            rows = [line.split("|") for line in out.split("\n") if line.count("|") == 2]
            return {r[0].strip(): (int(r[1]), int(r[2])) for r in rows}

        before = stats()
        r = self.admin("POST", "/api/v1/campaigns/%s/start" % c["id"])
        self.assertEqual(r.status, 200, r)
        self.wait_for(lambda: self.srv.sql(
            "SELECT count(*) FROM campaign_recipients WHERE campaign_id = '%s'"
            " AND status = 'sent'" % c["id"]).strip() == str(n), "all sent", timeout=60)
        # backends publish their counters within ~10 s of going idle
        self.wait_for(lambda: stats()["messages"][1] - before["messages"][1] >= n,
                      "statistics flushed", timeout=30)
        after = stats()
        scans = {t: after[t][0] - before[t][0] for t in ("messages", "conversations")}
        if os.environ.get("PYTAKE_TEST_VERBOSE"):
            print("sequential scans while recording %d sends: %r" % (n, scans))
        self.assertLessEqual(scans["messages"], 8, scans)
        self.assertLessEqual(scans["conversations"], 8, scans)

    def test_other_tenant_gets_404(self):
        tpl = self.template()
        self.contacts(1)
        c = self.campaign(tpl)
        for method, suffix in (("GET", ""), ("POST", "/estimate"), ("POST", "/start"),
                               ("POST", "/pause"), ("POST", "/resume"), ("POST", "/cancel"),
                               ("GET", "/recipients"), ("GET", "/recipients?format=csv")):
            r = self.call(method, "/api/v1/campaigns/%s%s" % (c["id"], suffix), tenant=self.b,
                          role="org_admin")
            self.assertEqual(r.status, 404, (method, suffix, r))
        items = self.call("GET", "/api/v1/campaigns", tenant=self.b, role="viewer").json()
        self.assertNotIn(c["id"], [i["id"] for i in items["items"]])
        self.assertEqual(self.get(c["id"])["status"], "draft")
