"""Rate cards: GET /api/v1/pricing/rates (the card in force, ?at=), PUT as
CSV and JSON, whole-card validation (422 listing every bad row, nothing
stored), conflicts with stored rows (409, the past is not rewritten;
identical rows ignored), roles (super_admin only for PUT), the audit row,
and `pytake pricing seed|import`. Runs on both engines.

The tests share one installation-wide card and run in name order."""

import os
import time
import unittest

from harness import Server, bearer, bootstrap_super_admin, make_tenant

HEADER = "market,calling_codes,category,rate,currency,effective_from\n"
CSV = {"Content-Type": "text/csv"}


class PricingTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        try:
            cls.srv.start()
            cls.su = bootstrap_super_admin(cls.srv)
            cls.a = make_tenant(cls.srv, cls.su["token"], "pricing-a")
        except Exception:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    # ---- helpers ----------------------------------------------------------

    def token(self, role):
        return self.su["token"] if role == "super_admin" else self.a["users"][role]["token"]

    def get(self, query="", role="viewer"):
        r = self.srv.request("GET", "/api/v1/pricing/rates" + query,
                             headers=bearer(self.token(role)))
        self.assertEqual(r.status, 200, r)
        return r.json()

    def wait_get(self, query, predicate, timeout=5):
        """GET until predicate(card): another process's change is seen
        once the server re-checks its snapshot (about a second)."""
        deadline = time.monotonic() + timeout
        while True:
            card = self.get(query)
            if predicate(card) or time.monotonic() > deadline:
                return card
            time.sleep(0.1)

    def put_csv(self, text, role="super_admin"):
        return self.srv.request("PUT", "/api/v1/pricing/rates", text,
                                headers=dict(CSV, **bearer(self.token(role))))

    def put_json(self, body, role="super_admin"):
        return self.srv.request("PUT", "/api/v1/pricing/rates", body,
                                headers=bearer(self.token(role)))

    def rate(self, card, market, category):
        for r in card["rates"]:
            if r["market"] == market and r["category"] == category:
                return r
        return None

    def stored_rows(self):
        return int(self.srv.sql("SELECT count(*) FROM rate_cards").strip())

    def details(self, r):
        return {(d["field"], d["message"]) for d in r.json()["error"].get("details", [])}

    def assert_detail(self, r, field, needle):
        msgs = [m for f, m in self.details(r) if f == field]
        self.assertTrue(any(needle in m for m in msgs),
                        "no detail %r containing %r in %r" % (field, needle, r.text))

    # ---- tests ------------------------------------------------------------

    def test_01_empty_card(self):
        card = self.get()
        self.assertEqual(card["rates"], [])
        self.assertIsNone(card["currency"])
        self.assertTrue(card["at"].endswith("Z"))

    def test_02_seed_with_cli(self):
        rc, out, err = self.srv.cli("pricing", "seed")
        self.assertEqual(rc, 0, err)
        self.assertIn("22 rates", out)
        rc, out, err = self.srv.cli("pricing", "seed")  # not empty any more
        self.assertEqual(rc, 0, err)
        self.assertIn("nothing loaded", out)
        self.assertEqual(self.stored_rows(), 22)
        card = self.wait_get("?at=2026-11-29", lambda c: c["rates"])
        self.assertEqual(card["currency"], "USD")
        self.assertEqual(len(card["rates"]), 20)
        na = self.rate(card, "NORTH_AMERICA", "utility")
        self.assertEqual(na, {"market": "NORTH_AMERICA", "calling_codes": ["1"],
                              "category": "utility", "rate": "0.0034", "currency": "USD",
                              "effective_from": "2026-10-01"})
        self.assertEqual(self.rate(card, "BR", "marketing")["rate"], "0.0625")
        self.assertEqual(self.rate(card, "OTHER", "marketing")["calling_codes"], [])
        # before the 2026-10-01 card: the older utility rate, no CO yet
        old = self.get("?at=2026-09-30T23:59:59Z")
        self.assertEqual(self.rate(old, "NORTH_AMERICA", "utility")["rate"], "0.004")
        self.assertIsNone(self.rate(old, "CO", "utility"))
        self.assertEqual(len(old["rates"]), 13)
        # exact money in the database (NUMERIC / integer micro-units)
        stored = self.srv.sql("SELECT rate FROM rate_cards WHERE market = 'NORTH_AMERICA' "
                              "AND category = 'utility' ORDER BY effective_from").split()
        self.assertEqual(stored, ["0.004000", "0.003400"] if self.srv.engine == "postgresql"
                         else ["4000", "3400"])

    def test_03_put_csv_later_card(self):
        r = self.put_csv(HEADER + "BR,55,marketing,0.0700,USD,2030-01-01\r\n"
                                  "BR,55,utility,0.0068,USD,2026-10-01\r\n")
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual((body["inserted"], body["unchanged"]), (1, 1))
        # the answer is the card in force now: the 2030 rate is not yet
        self.assertEqual(self.rate(body, "BR", "marketing")["rate"], "0.0625")
        # earlier moments keep the earlier rate; the new one from its date
        self.assertEqual(self.rate(self.get("?at=2029-12-31T23:59:59.999999Z"), "BR",
                                   "marketing")["rate"], "0.0625")
        later = self.rate(self.get("?at=2030-01-01"), "BR", "marketing")
        self.assertEqual((later["rate"], later["effective_from"]), ("0.07", "2030-01-01"))
        self.assertEqual(self.stored_rows(), 23)

    def test_04_put_json(self):
        r = self.put_json({"rates": [
            {"market": "GB", "calling_codes": ["44"], "category": "utility",
             "rate": "0.022", "currency": "USD", "effective_from": "2030-01-01"},
            {"market": "NORTH_AMERICA", "calling_codes": ["1"], "category": "marketing",
             "rate": "0.025", "currency": "USD", "effective_from": "2025-01-01"}]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["inserted"], r.json()["unchanged"]), (1, 1))
        self.assertIsNone(self.rate(self.get(), "GB", "utility"))
        gb = self.rate(self.get("?at=2030-06-01"), "GB", "utility")
        self.assertEqual(gb["calling_codes"], ["44"])
        self.assertEqual(gb["rate"], "0.022")
        # the GET answer is itself a valid PUT body: all identical
        card = self.get()
        r = self.put_json({"rates": card["rates"]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["inserted"], r.json()["unchanged"]), (0, len(card["rates"])))

    def test_05_bad_csv_lists_every_row(self):
        before = self.stored_rows()
        r = self.put_csv(HEADER +
                         "MX,52,marketing,0.0400,USD,2031-01-01\n"     # line 2: fine
                         "MX,52,utility,\"0,05\",USD,2031-01-01\n"     # 3: bad rate
                         "MX,52,gossip,0.01,USD,2031-01-01\n"          # 4: category
                         "MX,52,authentication,-0.01,USD,2031-01-01\n" # 5: negative
                         "MX,52,service,0.01,USD,2031-02-30\n"         # 6: bad date
                         "MX,52,marketing_lite,1e3,USD,2031-01-01\n"   # 7: exponent
                         "MX,52,referral_conversion,0.0000001,USD,2031-01-01\n")  # 8
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json()["error"]["code"], "validation_error")
        self.assert_detail(r, "line 3", "0,05")
        self.assert_detail(r, "line 4", "category")
        self.assert_detail(r, "line 5", "negative")
        self.assert_detail(r, "line 6", "effective_from")
        self.assert_detail(r, "line 7", "rate")
        self.assert_detail(r, "line 8", "6 decimals")
        self.assertNotIn("line 2", {f for f, _ in self.details(r)})
        self.assertEqual(self.stored_rows(), before)  # nothing stored, not even line 2
        # a missing column
        r = self.put_csv("market,calling_codes,category,currency,effective_from\n"
                         "MX,52,marketing,USD,2031-01-01\n")
        self.assertEqual(r.status, 422, r)
        self.assert_detail(r, "header", "rate")
        # an empty body
        r = self.put_csv("")
        self.assertEqual(r.status, 422, r)
        self.assertEqual(self.stored_rows(), before)

    def test_06_bad_json(self):
        before = self.stored_rows()
        r = self.put_json({"rates": [
            {"market": "MX", "calling_codes": ["52"], "category": "marketing",
             "rate": "0.04", "currency": "USD", "effective_from": "2031-01-01"},
            {"market": "MX", "calling_codes": ["52"], "category": "utility",
             "rate": "0,05", "currency": "USD", "effective_from": "2031-01-01"},
            {"market": "MX", "calling_codes": ["52"], "category": "nope",
             "rate": "0.01", "currency": "USD", "effective_from": "31/01/2031"},
            {"market": "mx", "calling_codes": [], "category": "service",
             "rate": "0.01", "currency": "XYZ", "effective_from": "2031-01-01"},
            {"market": "MX", "calling_codes": ["52"], "category": "marketing",
             "rate": "0.05", "currency": "USD", "effective_from": "2031-01-01"}]})
        self.assertEqual(r.status, 422, r)
        self.assert_detail(r, "rates[1].rate", "0,05")
        self.assert_detail(r, "rates[2].category", "must be one of")
        self.assert_detail(r, "rates[2].effective_from", "YYYY-MM-DD")
        self.assert_detail(r, "rates[3].market", "")
        self.assert_detail(r, "rates[3].currency", "ISO 4217")
        self.assert_detail(r, "rates[4]", "appears twice")
        self.assertFalse(any(f.startswith("rates[0]") for f, _ in self.details(r)))
        # money as a JSON number is a type error
        r = self.put_json({"rates": [
            {"market": "MX", "calling_codes": ["52"], "category": "marketing",
             "rate": 0.04, "currency": "USD", "effective_from": "2031-01-01"}]})
        self.assertEqual(r.status, 400, r)
        self.assert_detail(r, "rates[0].rate", "string")
        r = self.put_json({"rates": "all of them"})
        self.assertEqual(r.status, 400, r)
        r = self.put_json({})
        self.assertEqual(r.status, 422, r)
        r = self.srv.request("PUT", "/api/v1/pricing/rates", "{not json",
                             headers=dict(bearer(self.su["token"]),
                                          **{"Content-Type": "application/json"}))
        self.assertEqual(r.status, 400, r)
        self.assertEqual(self.stored_rows(), before)

    def test_07_conflict_never_rewrites_the_past(self):
        before = self.stored_rows()
        r = self.put_csv(HEADER + "BR,55,marketing,0.0800,USD,2030-01-01\n"
                                  "MX,52,marketing,0.0400,USD,2031-01-01\n"
                                  "NORTH_AMERICA,1,utility,0.0001,USD,2025-01-01\n")
        self.assertEqual(r.status, 409, r)
        self.assertEqual(r.json()["error"]["code"], "conflict")
        self.assert_detail(r, "line 2", "already stored")
        self.assert_detail(r, "line 4", "already stored")
        self.assertNotIn("line 3", {f for f, _ in self.details(r)})
        self.assertEqual(self.stored_rows(), before)
        self.assertEqual(self.rate(self.get("?at=2025-06-01"), "NORTH_AMERICA",
                                   "utility")["rate"], "0.004")
        # another currency than the installation's
        r = self.put_csv(HEADER + "MX,52,marketing,0.0400,EUR,2031-01-01\n")
        self.assertEqual(r.status, 422, r)
        self.assert_detail(r, "line 2", "currency")
        self.assertEqual(self.stored_rows(), before)

    def test_08_roles_and_media_type(self):
        body = HEADER + "MX,52,marketing,0.0400,USD,2031-01-01\n"
        for role in ("viewer", "agent", "org_admin"):
            with self.subTest(role=role):
                r = self.put_csv(body, role=role)
                self.assertEqual(r.status, 403, r)
                self.assertEqual(r.json()["error"]["code"], "forbidden")
                self.get(role=role)  # every role reads the card
        r = self.srv.request("GET", "/api/v1/pricing/rates")
        self.assertEqual(r.status, 401, r)
        r = self.srv.request("PUT", "/api/v1/pricing/rates", body,
                             headers=dict(bearer(self.su["token"]),
                                          **{"Content-Type": "text/plain"}))
        self.assertEqual(r.status, 415, r)
        for ctype in ("text/csvx", "application/jsonl", "application/json-seq",
                      "text/plain; x=text/csv"):
            with self.subTest(ctype=ctype):
                r = self.srv.request("PUT", "/api/v1/pricing/rates", body,
                                     headers=dict(bearer(self.su["token"]),
                                                  **{"Content-Type": ctype}))
                self.assertEqual(r.status, 415, r)
        # any case, with parameters: parsed as JSON (and refused for its shape)
        r = self.srv.request("PUT", "/api/v1/pricing/rates", "{}",
                             headers=dict(bearer(self.su["token"]),
                                          **{"Content-Type": "Application/JSON; charset=utf-8"}))
        self.assertEqual(r.status, 422, r)
        r = self.srv.request("GET", "/api/v1/pricing/rates?at=yesterday",
                             headers=bearer(self.token("viewer")))
        self.assertEqual(r.status, 422, r)
        self.assert_detail(r, "at", "date")

    def test_09_audit(self):
        r = self.srv.request("GET", "/api/v1/audit-logs?table_name=rate_cards",
                             headers=bearer(self.su["token"]))
        self.assertEqual(r.status, 200, r)
        items = r.json()["items"]
        self.assertEqual([i["action"] for i in items], ["import", "import"])
        self.assertEqual(items[0]["user_id"], self.su["user_id"])
        self.assertEqual(items[0]["changes"], {"rows": [0, 1]})

    def test_10_cli_import(self):
        path = os.path.join(self.srv.tmpdir, "card.csv")
        with open(path, "w") as f:
            f.write(HEADER + "MX,52,marketing,0.0400,USD,2031-01-01\n"
                             "AR,54,utility,0.0260,USD,2026-10-01\n")
        before = self.stored_rows()
        rc, out, err = self.srv.cli("pricing", "import", path)
        self.assertEqual(rc, 0, err)
        self.assertIn("1 rates stored, 1 already present", out)
        self.assertEqual(self.stored_rows(), before + 1)
        # another process stored it: visible after the snapshot's TTL at
        # the latest; the database has it now
        self.assertIn("MX", self.srv.sql("SELECT market FROM rate_cards WHERE "
                                         "category = 'marketing'"))
        # JSON file, with a bad row: nothing stored, each problem printed
        jpath = os.path.join(self.srv.tmpdir, "card.json")
        with open(jpath, "w") as f:
            f.write('{"rates": [{"market": "PE", "calling_codes": ["51"], '
                    '"category": "marketing", "rate": "0.05", "currency": "USD", '
                    '"effective_from": "2031-01-01"}, {"market": "PE", '
                    '"calling_codes": ["51"], "category": "utility", "rate": "-1", '
                    '"currency": "USD", "effective_from": "2031-01-01"}]}')
        rc, out, err = self.srv.cli("pricing", "import", jpath)
        self.assertNotEqual(rc, 0)
        self.assertIn("rates[1].rate", err)
        self.assertEqual(self.stored_rows(), before + 1)
        # a conflicting file
        with open(path, "w") as f:
            f.write(HEADER + "MX,52,marketing,0.0500,USD,2031-01-01\n")
        rc, out, err = self.srv.cli("pricing", "import", path)
        self.assertNotEqual(rc, 0)
        self.assertIn("line 2", err)
        rc, out, err = self.srv.cli("pricing", "import", os.path.join(self.srv.tmpdir, "nope"))
        self.assertNotEqual(rc, 0)
        self.assertEqual(len(err.strip().splitlines()), 1)
        self.assertEqual(self.stored_rows(), before + 1)


class PricingBootstrapTest(unittest.TestCase):
    """`pytake bootstrap` on a fresh database loads the example card."""

    def test_bootstrap_seeds(self):
        with Server() as srv:
            rc, out, err = srv.cli("bootstrap")
            self.assertEqual(rc, 0, err)
            self.assertIn("example rate card (22 rates)", out)
            self.assertEqual(int(srv.sql("SELECT count(*) FROM rate_cards").strip()), 22)
            rc, out, err = srv.cli("bootstrap")
            self.assertEqual(rc, 0, err)
            self.assertNotIn("rate card", out)
            self.assertEqual(int(srv.sql("SELECT count(*) FROM rate_cards").strip()), 22)


if __name__ == "__main__":
    unittest.main()
