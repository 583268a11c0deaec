"""Costs (issue 8): messages priced once by signed status webhooks, daily
roll-ups and summaries by every group_by equal to exact sums computed here
with decimal.Decimal, free types, duplicates x5, a later rate card leaving
old costs alone, budgets (GET/PUT, validation, audit), alerts raised once
each per month, cross-tenant isolation, request validation. Both engines.

Outbound messages are inserted with SQL (as the sending code leaves them);
everything else goes through HTTP. The rate card is the embedded example
(effective 2025-01-01), read here from ../shared/pricing to compute the
expected amounts."""

import csv
import datetime
import hashlib
import hmac
import json
import os
import time
import unittest
import uuid
from decimal import Decimal
from zoneinfo import ZoneInfo

from harness import Server, bearer, bootstrap_super_admin, make_tenant
import tenancy

APP_SECRET = "test-app-secret"
CARD_CSV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src",
                        "domain", "rate_card_seed.csv")
TZ_A = "America/Sao_Paulo"
WABA = "102290129340399"


ES_ROWS = [  # the example card has no ES row before 2026-10: add 2025 ones
    {"market": "ES", "calling_codes": ["34"], "category": "marketing", "rate": "0.0509",
     "currency": "USD", "effective_from": "2025-01-01"},
    {"market": "ES", "calling_codes": ["34"], "category": "utility", "rate": "0.0170",
     "currency": "USD", "effective_from": "2025-01-01"},
]


def day_ts(date):
    return int(datetime.datetime.strptime(date, "%Y-%m-%d").replace(
        tzinfo=datetime.timezone.utc).timestamp())


class Card:
    """The rate card model of domain/pricing.h, in Python, with Decimal."""

    def __init__(self):
        self.rows = []  # (market, codes, category, rate, effective_from seconds)
        with open(CARD_CSV, newline="") as f:
            for row in csv.DictReader(f):
                self.add(row["market"], row["calling_codes"].split(), row["category"],
                         row["rate"], row["effective_from"])
        for r in ES_ROWS:
            self.add(r["market"], r["calling_codes"], r["category"], r["rate"],
                     r["effective_from"])

    def add(self, market, codes, category, rate, eff):
        self.rows.append((market, codes, category, Decimal(rate), day_ts(eff)))

    def market(self, wa_id, t):
        latest = {}
        for m, codes, _, _, eff in self.rows:
            if eff <= t and (m not in latest or eff > latest[m][0]):
                latest[m] = (eff, codes)
        best, best_len = "OTHER", 0
        for m, (_, codes) in latest.items():
            for c in codes:
                if wa_id.startswith(c) and len(c) > best_len:
                    best, best_len = m, len(c)
        return best

    def rate(self, market, category, t):
        found = None
        for m, _, cat, rate, eff in self.rows:
            if m == market and cat == category and eff <= t and (found is None or eff > found[0]):
                found = (eff, rate)
        if found is None and market != "OTHER":
            return self.rate("OTHER", category, t)
        return found[1] if found else None


CARD = Card()


def ts(y, mo, d, h=12, mi=0):
    return int(datetime.datetime(y, mo, d, h, mi, tzinfo=datetime.timezone.utc).timestamp())


def local_day(t, zone):
    return datetime.datetime.fromtimestamp(t, ZoneInfo(zone)).strftime("%Y-%m-%d")


def sign(body):
    return "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


def status_body(pnid, wamid, st, t, wa_id, pricing):
    s = {"id": wamid, "status": st, "timestamp": str(t), "recipient_id": wa_id}
    if pricing is not None:
        s["pricing"] = pricing
    value = {"messaging_product": "whatsapp", "statuses": [s],
             "metadata": {"display_phone_number": "15550000000", "phone_number_id": pnid}}
    return json.dumps({"object": "whatsapp_business_account", "entry": [
        {"id": WABA, "changes": [{"field": "messages", "value": value}]}]},
        separators=(",", ":")).encode()


def regular(category):
    return {"billable": True, "pricing_model": "PMP", "category": category, "type": "regular"}


def free(kind, category="service"):
    return {"billable": False, "pricing_model": "PMP", "category": category, "type": kind}


class CostsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(env={"META_APP_SECRET": APP_SECRET,
                              "WEBHOOK_VERIFY_TOKEN": "verify-token-123456789"})
        try:
            cls.srv.start()
            cls.su = bootstrap_super_admin(cls.srv)
            rc, out, err = cls.srv.cli("pricing", "seed")
            if rc != 0:
                raise RuntimeError("pytake pricing seed: %s%s" % (out, err))
            r = cls.srv.request("PUT", "/api/v1/pricing/rates", {"rates": ES_ROWS},
                                headers=bearer(cls.su["token"]))
            if r.status != 200:
                raise RuntimeError("PUT ES rates: %r" % r)
            cls.a = make_tenant(cls.srv, cls.su["token"], "costa")
            cls.b = make_tenant(cls.srv, cls.su["token"], "costb")
            cls.c = make_tenant(cls.srv, cls.su["token"], "costc")
            cls.nums = {}
            for key, t, pnid in (("a", cls.a, "201000000000001"), ("a2", cls.a, "201000000000002"),
                                 ("b", cls.b, "202000000000001"), ("c", cls.c, "203000000000001")):
                n = tenancy.make_number(cls.srv, t, phone_number_id=pnid, waba_id=WABA)
                cls.nums[key] = (n["id"], pnid)
            cls.srv.sql("UPDATE organizations SET timezone = '%s' WHERE id = '%s'"
                        % (TZ_A, cls.a["org_id"]))
            cls.expected = []   # (day, category, market, number_id, campaign, amount)
            cls.priced_a = False
            time.sleep(1.2)  # the server re-reads the card at most once a second
        except Exception:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    # ---- helpers ----------------------------------------------------------

    def q(self, sql):
        out = self.srv.sql(sql).strip()
        return [line.split("|") for line in out.splitlines()] if out else []

    def post(self, body):
        r = self.srv.request("POST", "/webhooks/meta", body,
                             headers={"X-Hub-Signature-256": sign(body),
                                      "Content-Type": "application/json"})
        self.assertEqual(r.status, 200, r)

    def wait_processed(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.q("SELECT COUNT(*) FROM webhook_events WHERE processed_at IS NULL") == [["0"]]:
                return
            time.sleep(0.05)
        self.fail("webhook events still pending after %ss" % timeout)

    def outbound(self, tenant, number_key, wa_id, campaign=None):
        """An outbound message row as the sending code leaves it; its wamid."""
        org = tenant["org_id"]
        number_id = self.nums[number_key][0]
        rows = self.q("SELECT id FROM contacts WHERE organization_id = '%s' AND wa_id = '%s'"
                      % (org, wa_id))
        if rows:
            contact = rows[0][0]
        else:
            contact = str(uuid.uuid4())
            self.srv.sql("INSERT INTO contacts (id, organization_id, wa_id, created_at, updated_at)"
                         " VALUES ('%s', '%s', '%s', 1, 1)" % (contact, org, wa_id))
        conv, msg, wamid = str(uuid.uuid4()), str(uuid.uuid4()), "wamid.c-" + uuid.uuid4().hex
        self.srv.sql("INSERT INTO conversations (id, organization_id, contact_id,"
                     " whatsapp_number_id, status, created_at, updated_at)"
                     " VALUES ('%s', '%s', '%s', '%s', 'closed', 1, 1)"
                     % (conv, org, contact, number_id))
        self.srv.sql("INSERT INTO messages (id, organization_id, conversation_id,"
                     " whatsapp_number_id, contact_id, direction, type, status, wamid,"
                     " created_at, campaign_id) VALUES ('%s', '%s', '%s', '%s', '%s', 'outbound',"
                     " 'template', 'sent', '%s', 1, %s)"
                     % (msg, org, conv, number_id, contact, wamid,
                        "'%s'" % campaign if campaign else "NULL"))
        return wamid, msg

    def deliver(self, number_key, wamid, wa_id, t, pricing, repeats=5):
        """sent + delivered + read with pricing, each repeated."""
        pnid = self.nums[number_key][1]
        for i in range(repeats):
            for k, st in enumerate(("sent", "delivered", "read")):
                self.post(status_body(pnid, wamid, st, t + k, wa_id, pricing))

    def summary(self, tenant, frm, to, group_by, role="viewer"):
        r = self.srv.request("GET", "/api/v1/costs/summary?from=%s&to=%s&group_by=%s"
                             % (frm, to, group_by),
                             headers=bearer(tenant["users"][role]["token"]))
        self.assertEqual(r.status, 200, r)
        return r.json()

    def price_march_for_a(self):
        """Tenant A's March traffic (once per class)."""
        if type(self).priced_a:
            return
        camp = str(uuid.uuid4())
        plan = [
            # (number, wa_id, campaign, t, pricing)
            ("a", "5511987650001", None, ts(2025, 3, 10), regular("marketing")),
            ("a", "5511987650002", camp, ts(2025, 3, 10), regular("utility")),
            ("a", "5511987650003", camp, ts(2025, 3, 11, 2, 30), regular("marketing")),  # 10th local
            ("a", "5511987650004", None, ts(2025, 3, 11, 3, 0), regular("authentication")),
            ("a2", "15551230001", camp, ts(2025, 3, 12), regular("marketing")),
            ("a2", "15551230002", None, ts(2025, 3, 12), {"billable": True, "pricing_model": "CBP",
                                                         "category": "utility"}),  # no type
            ("a", "919812345678", camp, ts(2025, 3, 15), regular("marketing")),
            ("a", "34612345678", None, ts(2025, 3, 20), regular("marketing")),
            ("a", "34612345679", None, ts(2025, 3, 20), regular("utility")),
            ("a", "8613800000000", None, ts(2025, 3, 21), regular("marketing")),  # OTHER
            ("a2", "5511987650005", None, ts(2025, 3, 22), free("free_customer_service")),
            ("a", "919812345679", None, ts(2025, 3, 31, 20, 0), free("free_entry_point",
                                                                    "marketing")),
        ]
        for number, wa_id, campaign, t, pricing in plan:
            wamid, _ = self.outbound(self.a, number, wa_id, campaign)
            self.deliver(number, wamid, wa_id, t, pricing)
            cat = pricing["category"]
            market = CARD.market(wa_id, t)
            amount = Decimal(0)
            if pricing.get("type", "regular") == "regular" and pricing["billable"]:
                amount = CARD.rate(market, cat, t)
            type(self).expected.append((local_day(t, TZ_A), cat, market,
                                       self.nums[number][0], campaign, amount))
        # a status without pricing and an inbound-only wamid price nothing
        wamid, _ = self.outbound(self.a, "a", "5511987650009")
        self.post(status_body(self.nums["a"][1], wamid, "sent", ts(2025, 3, 10), "5511987650009",
                              None))
        self.wait_processed()
        type(self).priced_a = True

    def expected_groups(self, group_by, rows=None):
        idx = {"day": 0, "category": 1, "market": 2, "whatsapp_number": 3, "campaign": 4}[group_by]
        out = {}
        for row in rows if rows is not None else self.expected:
            k = row[idx]
            n, a = out.get(k, (0, Decimal(0)))
            out[k] = (n + 1, a + row[5])
        return out

    # ---- tests ------------------------------------------------------------

    def test_summary_equals_exact_sums_for_every_group_by(self):
        self.price_march_for_a()
        total = sum((r[5] for r in self.expected), Decimal(0))
        for g in ("day", "category", "campaign", "market", "whatsapp_number"):
            body = self.summary(self.a, "2025-03-01", "2025-03-31", g)
            self.assertEqual(body["currency"], "USD")
            self.assertIsInstance(body["total"], str)
            self.assertEqual(Decimal(body["total"]), total, g)
            got = {grp["key"]: (grp["messages"], Decimal(grp["amount"])) for grp in body["groups"]}
            for grp in body["groups"]:
                self.assertIsInstance(grp["amount"], str)
            self.assertEqual(got, self.expected_groups(g), g)
        # the local-day rule: 02:30Z on the 11th is the 10th in Sao Paulo
        days = self.expected_groups("day")
        self.assertIn("2025-03-10", days)
        self.assertEqual(days["2025-03-10"][0], 3)
        # a narrower range
        body = self.summary(self.a, "2025-03-10", "2025-03-10", "category")
        self.assertEqual(sum(g["messages"] for g in body["groups"]), 3)

    def test_priced_once_with_market_rate_and_free_reason(self):
        self.price_march_for_a()
        rows = self.q("SELECT pricing_market, pricing_category, cost, currency,"
                      " pricing_free_reason, priced_at FROM messages"
                      " WHERE organization_id = '%s' AND priced_at >= %d AND priced_at < %d"
                      % (self.a["org_id"], ts(2025, 3, 1, 0) * 10**6, ts(2025, 4, 1, 3) * 10**6))
        self.assertEqual(len(rows), len(self.expected))
        markets = sorted(r[0] for r in rows)
        self.assertEqual(markets, sorted(r[2] for r in self.expected))
        self.assertEqual(set(markets), {"BR", "NORTH_AMERICA", "IN", "ES", "OTHER"})
        reasons = sorted(r[4] for r in rows if r[4])
        self.assertEqual(reasons, ["free_customer_service", "free_entry_point"])
        unpriced = self.q("SELECT COUNT(*) FROM messages m JOIN contacts c"
                          " ON c.id = m.contact_id WHERE c.wa_id = '5511987650009'"
                          " AND m.priced_at IS NULL")
        self.assertEqual(unpriced, [["1"]])
        # the messages API shows cost/currency/pricing_category
        mid = self.q("SELECT id FROM messages WHERE organization_id = '%s'"
                     " AND pricing_market = 'NORTH_AMERICA' AND pricing_category = 'marketing'"
                     % self.a["org_id"])[0][0]
        r = self.srv.request("GET", "/api/v1/messages/" + mid,
                             headers=bearer(self.a["users"]["viewer"]["token"]))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(Decimal(r.json()["cost"]), CARD.rate("NORTH_AMERICA", "marketing", ts(2025, 3, 12)))
        self.assertEqual(r.json()["currency"], "USD")
        self.assertEqual(r.json()["pricing_category"], "marketing")

    def test_later_card_prices_new_messages_leaves_old(self):
        self.price_march_for_a()
        old = self.q("SELECT id, cost FROM messages WHERE organization_id = '%s'"
                     " AND priced_at IS NOT NULL ORDER BY id" % self.a["org_id"])
        new_rate = Decimal("0.0777")
        r = self.srv.request("PUT", "/api/v1/pricing/rates", {"rates": [{
            "market": "BR", "calling_codes": ["55"], "category": "marketing",
            "rate": str(new_rate), "currency": "USD", "effective_from": "2025-06-01"}]},
            headers=bearer(self.su["token"]))
        self.assertEqual(r.status, 200, r)
        wamid, mid = self.outbound(self.a, "a", "5511987650077")
        self.deliver("a", wamid, "5511987650077", ts(2025, 6, 5), regular("marketing"), repeats=2)
        wamid2, mid2 = self.outbound(self.a, "a", "5511987650078")
        # a status dated before the new card still gets the old rate
        self.deliver("a", wamid2, "5511987650078", ts(2025, 5, 31, 23, 0), regular("marketing"),
                     repeats=1)
        self.wait_processed()
        cost = self.q("SELECT cost FROM messages WHERE id = '%s'" % mid)[0][0]
        r = self.srv.request("GET", "/api/v1/messages/" + mid,
                             headers=bearer(self.a["users"]["viewer"]["token"]))
        self.assertEqual(Decimal(r.json()["cost"]), new_rate, cost)
        r = self.srv.request("GET", "/api/v1/messages/" + mid2,
                             headers=bearer(self.a["users"]["viewer"]["token"]))
        self.assertEqual(Decimal(r.json()["cost"]), CARD.rate("BR", "marketing", ts(2025, 3, 12)))
        self.assertEqual(self.q("SELECT id, cost FROM messages WHERE organization_id = '%s'"
                                " AND priced_at IS NOT NULL AND id NOT IN ('%s', '%s') ORDER BY id"
                                % (self.a["org_id"], mid, mid2)), old)
        body = self.summary(self.a, "2025-06-01", "2025-06-30", "market")
        self.assertEqual(body["groups"], [{"key": "BR", "messages": 1,
                                           "amount": body["groups"][0]["amount"]}])
        self.assertEqual(Decimal(body["total"]), new_rate)
        # March is unchanged by the new card
        march = self.summary(self.a, "2025-03-01", "2025-03-31", "day")
        self.assertEqual(Decimal(march["total"]), sum((r[5] for r in self.expected), Decimal(0)))

    def test_cross_tenant_isolation(self):
        self.price_march_for_a()
        body = self.summary(self.b, "2025-03-01", "2025-03-31", "day")
        self.assertEqual(body["groups"], [])
        self.assertEqual(Decimal(body["total"]), 0)
        # B's own message shows in B's summary only
        wamid, _ = self.outbound(self.b, "b", "5511955550001")
        self.deliver("b", wamid, "5511955550001", ts(2025, 3, 10), regular("marketing"), 1)
        self.wait_processed()
        body = self.summary(self.b, "2025-03-01", "2025-03-31", "whatsapp_number")
        self.assertEqual([g["key"] for g in body["groups"]], [self.nums["b"][0]])
        self.assertEqual(Decimal(body["total"]), CARD.rate("BR", "marketing", ts(2025, 3, 12)))
        a_body = self.summary(self.a, "2025-03-01", "2025-03-31", "whatsapp_number")
        self.assertNotIn(self.nums["b"][0], [g["key"] for g in a_body["groups"]])
        self.assertEqual(Decimal(a_body["total"]), sum((r[5] for r in self.expected), Decimal(0)))
        # B's budget and alerts are B's
        r = self.srv.request("GET", "/api/v1/costs/alerts",
                             headers=bearer(self.b["users"]["viewer"]["token"]))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["items"], [])

    def test_summary_validation(self):
        h = bearer(self.a["users"]["viewer"]["token"])
        bad = [
            ("to=2025-03-31&group_by=day", "from"),
            ("from=2025-03-01&group_by=day", "to"),
            ("from=2025-02-30&to=2025-03-31", "from"),
            ("from=2025-3-1&to=2025-03-31", "from"),
            ("from=2025-03-31&to=2025-03-01", "to"),
            ("from=2024-01-01&to=2025-01-01", "to"),  # 367 days
            ("from=2025-03-01&to=2025-03-31&group_by=country", "group_by"),
        ]
        for query, field in bad:
            r = self.srv.request("GET", "/api/v1/costs/summary?" + query, headers=h)
            self.assertEqual(r.status, 422, (query, r))
            self.assertEqual(r.json()["error"]["code"], "validation_error")
            self.assertEqual(r.json()["error"]["details"][0]["field"], field, query)
        r = self.srv.request("GET", "/api/v1/costs/summary?from=2024-01-01&to=2024-12-31",
                             headers=h)  # 366 days, default group_by
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["group_by"], "day")
        r = self.srv.request("GET", "/api/v1/costs/summary?from=2025-03-01&to=2025-03-31")
        self.assertEqual(r.status, 401)

    def test_budget_put_get_validation_and_audit(self):
        admin = bearer(self.b["users"]["org_admin"]["token"])
        viewer = bearer(self.b["users"]["viewer"]["token"])
        r = self.srv.request("GET", "/api/v1/costs/budget", headers=viewer)
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.json()["monthly_limit"])
        self.assertEqual(r.json()["alert_threshold_percent"], 80)
        for body, code in (({"monthly_limit": "-1"}, 422), ({"monthly_limit": "abc"}, 422),
                           ({"monthly_limit": "1.1234567"}, 422), ({}, 422),
                           ({"monthly_limit": 5}, 400),
                           ({"monthly_limit": "5", "alert_threshold_percent": 0}, 422),
                           ({"monthly_limit": "5", "alert_threshold_percent": 101}, 422),
                           ({"monthly_limit": "5", "currency": "EUR"}, 422),
                           ({"monthly_limit": "5", "currency": "XYZ"}, 422)):
            r = self.srv.request("PUT", "/api/v1/costs/budget", body, headers=admin)
            self.assertEqual(r.status, code, (body, r))
        r = self.srv.request("PUT", "/api/v1/costs/budget", {"monthly_limit": "5"}, headers=viewer)
        self.assertEqual(r.status, 403, r)
        r = self.srv.request("PUT", "/api/v1/costs/budget", {"monthly_limit": "150.5"},
                             headers=admin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["monthly_limit"], "150.50")
        self.assertEqual(r.json()["alert_threshold_percent"], 80)
        self.assertEqual(r.json()["currency"], "USD")
        r = self.srv.request("PUT", "/api/v1/costs/budget",
                             {"monthly_limit": "200", "alert_threshold_percent": 90,
                              "currency": "USD"}, headers=admin)
        self.assertEqual(r.status, 200, r)
        r = self.srv.request("GET", "/api/v1/costs/budget", headers=viewer)
        self.assertEqual((r.json()["monthly_limit"], r.json()["alert_threshold_percent"]),
                         ("200.00", 90))
        audit = self.q("SELECT action FROM audit_logs WHERE organization_id = '%s'"
                       " AND table_name = 'budgets' ORDER BY created_at" % self.b["org_id"])
        self.assertEqual(audit, [["create"], ["update"]])
        # the other tenant's budget is untouched
        r = self.srv.request("GET", "/api/v1/costs/budget",
                             headers=bearer(self.a["users"]["viewer"]["token"]))
        self.assertIsNone(r.json()["monthly_limit"])

    def test_alerts_raised_once_each_per_month(self):
        admin = bearer(self.c["users"]["org_admin"]["token"])
        r = self.srv.request("PUT", "/api/v1/costs/budget",
                             {"monthly_limit": "0.20", "alert_threshold_percent": 50},
                             headers=admin)
        self.assertEqual(r.status, 200, r)
        rate = CARD.rate("BR", "marketing", ts(2025, 3, 12))  # 0.0625: 0.0625, 0.125 (>= 0.10), ..., 0.25 (>= 0.20)
        spent, raised = Decimal(0), []
        for i in range(6):
            wa_id = "551197777%04d" % i
            wamid, _ = self.outbound(self.c, "c", wa_id)
            self.deliver("c", wamid, wa_id, ts(2025, 4, 2 + i), regular("marketing"), repeats=3)
            self.wait_processed()
            spent += rate
            r = self.srv.request("GET", "/api/v1/costs/alerts", headers=admin)
            self.assertEqual(r.status, 200, r)
            kinds = [a["kind"] for a in r.json()["items"]]
            want = (["threshold"] if spent >= Decimal("0.10") else []) + \
                   (["limit"] if spent >= Decimal("0.20") else [])
            self.assertEqual(sorted(kinds), sorted(want), spent)
            raised = r.json()["items"]
        by_kind = {a["kind"]: a for a in raised}
        self.assertEqual(by_kind["threshold"]["month"], "2025-04")
        self.assertEqual(Decimal(by_kind["threshold"]["spent"]), rate * 2)
        self.assertEqual(Decimal(by_kind["limit"]["spent"]), rate * 4)
        self.assertEqual(Decimal(by_kind["limit"]["limit"]), Decimal("0.20"))
        self.assertEqual(by_kind["limit"]["currency"], "USD")
        # newest first: limit after threshold
        self.assertEqual([a["kind"] for a in raised], ["limit", "threshold"])
        self.assertEqual(self.q("SELECT COUNT(*) FROM cost_alerts WHERE organization_id = '%s'"
                                % self.c["org_id"]), [["2"]])
        logs = [l for l in self.srv.log_lines() if l.get("msg") == "cost budget alert"]
        self.assertEqual(sorted(l["kind"] for l in logs if l.get("org_id") == self.c["org_id"]),
                         ["limit", "threshold"])
        metrics = self.srv.request("GET", "/metrics").body.decode()
        if "pytake_cost_alerts_total" in metrics:  # registered by serve (see costs.h)
            self.assertIn('pytake_cost_alerts_total{kind="limit"}', metrics)
        # a new month starts over
        wamid, _ = self.outbound(self.c, "c", "5511977779999")
        self.deliver("c", wamid, "5511977779999", ts(2025, 5, 2), regular("marketing"), repeats=2)
        self.wait_processed()
        wamid, _ = self.outbound(self.c, "c", "5511977779998")
        self.deliver("c", wamid, "5511977779998", ts(2025, 5, 3), regular("marketing"), repeats=2)
        self.wait_processed()
        rows = self.q("SELECT kind, month FROM cost_alerts WHERE organization_id = '%s'"
                      " ORDER BY month, kind" % self.c["org_id"])
        self.assertEqual(rows, [["limit", "2025-04"], ["threshold", "2025-04"],
                                ["threshold", "2025-05"]])


if __name__ == "__main__":
    unittest.main()
