"""Templates API against the fake Graph server (tests/fakes/fake_graph.py):
create/list/get/patch/delete, Meta's validation rules as 422 details,
submit (the exact JSON and token Meta receives, 409 on a second submit,
Meta errors as 502 meta_error with the template unchanged), sync over two
pages (created / unchanged / updated), delete at Meta, preview, audit rows,
cross-tenant 404s (tenancy.py), another org's number as a body field, and
the role matrix. Runs on both engines."""

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from harness import (ROOT, HarnessError, Server, bearer, bootstrap_super_admin, make_tenant,
                     timeout_scale)
import tenancy

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TEMPLATE_FIELDS = {"id", "whatsapp_number_id", "name", "language", "category", "status",
                   "rejected_reason", "quality_score", "meta_template_id", "parameter_format",
                   "components", "created_at", "updated_at"}
UNKNOWN_ID = "00000000-0000-7000-8000-000000000000"

COMPONENTS = [
    {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}",
     "example": {"header_text": ["42"]}},
    {"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped.",
     "example": {"body_text": [["Ann", "42"]]}},
    {"type": "FOOTER", "text": "Thanks for shopping"},
    {"type": "BUTTONS", "buttons": [
        {"type": "QUICK_REPLY", "text": "Stop updates"},
        {"type": "URL", "text": "Track", "url": "https://shop.test/t/{{1}}",
         "example": ["https://shop.test/t/42"]}]},
]


class FakeGraph:
    """tests/fakes/fake_graph.py on a free port; stopped by its PID."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="pytake-fake-graph-",
                                    dir=os.environ.get("PYTAKE_TEST_TMPDIR") or None)
        port_file = os.path.join(self.tmp, "port")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tests", "fakes", "fake_graph.py"),
             "--port", "0", "--port-file", port_file],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise HarnessError("fake Graph server did not start")
            time.sleep(0.02)
        with open(port_file) as f:
            self.port = int(f.read().strip())
        self.base_url = "http://127.0.0.1:%d/v24.0" % self.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def control(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data,
                         headers={"Content-Type": "application/json"} if data else {})
            r = conn.getresponse()
            payload = r.read()
            if r.status != 200:
                raise HarnessError("fake %s %s: %d %r" % (method, path, r.status, payload))
            return json.loads(payload)
        finally:
            conn.close()

    def calls(self, method=None, path_contains=None):
        out = self.control("GET", "/_fake/calls")
        return [c for c in out
                if (method is None or c["method"] == method)
                and (path_contains is None or path_contains in c["path"])]

    def reset(self):
        self.control("POST", "/_fake/reset")

    def error(self, **rule):
        self.control("POST", "/_fake/errors", rule)

    def seed(self, waba_id, templates, page_size=None):
        body = {"waba_id": waba_id, "templates": templates}
        if page_size:
            body["page_size"] = page_size
        self.control("POST", "/_fake/templates", body)


class TemplatesTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeGraph()
        cls.srv = None
        cls.seq = 0
        try:
            cls.srv = Server(env={"GRAPH_API_BASE_URL": cls.fake.base_url})
            cls.srv.start()
            cls.su = bootstrap_super_admin(cls.srv)
            cls.a = make_tenant(cls.srv, cls.su["token"], "alpha")
            cls.b = make_tenant(cls.srv, cls.su["token"], "beta")
            cls.number = cls.new_number(cls.a)
        except Exception:
            if cls.srv is not None:
                cls.srv.close()
            cls.fake.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.close()
        finally:
            cls.fake.stop()

    def setUp(self):
        self.fake.reset()

    # ---- helpers ----------------------------------------------------------

    @classmethod
    def new_number(cls, tenant, waba_id=None):
        """A number with its own WABA (so fake template stores never mix)
        and a recognisable access token (kept in the answer as "_token")."""
        cls.seq += 1
        token = "EAAG-test-token-%d-%d" % (os.getpid(), cls.seq)
        n = tenancy.make_number(cls.srv, tenant, access_token=token,
                                waba_id=waba_id or "88%d%03d" % (os.getpid(), cls.seq))
        n["_token"] = token
        return n

    def call(self, method, path, body=None, tenant=None, role="org_admin"):
        token = (tenant or self.a)["users"][role]["token"]
        return self.srv.request(method, path, body, headers=bearer(token))

    def body(self, number=None, **fields):
        type(self).seq += 1
        b = {"whatsapp_number_id": (number or self.number)["id"],
             "name": "order_update_%d" % self.seq, "language": "en_US",
             "category": "UTILITY", "components": COMPONENTS}
        b.update(fields)
        return b

    def create(self, number=None, tenant=None, **fields):
        r = self.call("POST", "/api/v1/templates", self.body(number, **fields), tenant)
        self.assertEqual(r.status, 201, r)
        return r.json()

    def get(self, tid, tenant=None):
        r = self.call("GET", "/api/v1/templates/" + tid, tenant=tenant)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def submit(self, tid):
        return self.call("POST", "/api/v1/templates/%s/submit" % tid)

    def assert_error(self, r, status, code, fields=None):
        self.assertEqual(r.status, status, r)
        err = r.json()["error"]
        self.assertEqual(err["code"], code, err)
        if fields is not None:
            self.assertEqual([d["field"] for d in err["details"]], fields, err)
        return err

    def audit(self, tid, action):
        r = self.call("GET", "/api/v1/audit-logs?table_name=templates&record_id=%s&action=%s"
                      % (tid, action))
        self.assertEqual(r.status, 200, r)
        return r.json()["items"]

    # ---- create, read, list ------------------------------------------------

    def test_create_answers_201_draft_with_location(self):
        b = self.body(parameter_format="POSITIONAL")
        r = self.call("POST", "/api/v1/templates", b)
        self.assertEqual(r.status, 201, r)
        t = r.json()
        self.assertEqual(set(t), TEMPLATE_FIELDS)
        self.assertRegex(t["id"], UUID_RE)
        self.assertEqual(r.headers["Location"], "/api/v1/templates/" + t["id"])
        self.assertEqual((t["status"], t["name"], t["language"], t["category"]),
                         ("DRAFT", b["name"], "en_US", "UTILITY"))
        self.assertEqual(t["components"], COMPONENTS)
        self.assertEqual(t["parameter_format"], "POSITIONAL")
        self.assertIsNone(t["meta_template_id"])
        self.assertIsNone(t["rejected_reason"])
        self.assertIsNone(t["quality_score"])
        self.assertEqual(t["whatsapp_number_id"], self.number["id"])
        self.assertEqual(self.get(t["id"]), t)
        self.assertEqual(self.get(t["id"], tenant=self.a)["id"], t["id"])
        # viewers read it too
        r = self.call("GET", "/api/v1/templates/" + t["id"], role="viewer")
        self.assertEqual(r.status, 200, r)
        rows = self.audit(t["id"], "create")
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["changes"]["status"], [None, "DRAFT"])
        self.assertEqual(rows[0]["changes"]["name"], [None, b["name"]])
        self.assertEqual(self.fake.calls(), [], "create must not call Meta")

    def test_duplicate_name_language_is_409(self):
        t = self.create()
        r = self.call("POST", "/api/v1/templates", self.body(name=t["name"]))
        self.assert_error(r, 409, "conflict")
        # another language of the same name is a different template
        r = self.call("POST", "/api/v1/templates", self.body(name=t["name"], language="pt_BR"))
        self.assertEqual(r.status, 201, r)
        # and the same name on another number too
        r = self.call("POST", "/api/v1/templates",
                      self.body(self.new_number(self.a), name=t["name"]))
        self.assertEqual(r.status, 201, r)

    def test_validation_details_name_each_broken_rule(self):
        bad = self.body(name="Bad Name", language="xx_YY", category="NOPE", components=[
            {"type": "HEADER", "format": "TEXT", "text": "{{1}} and {{2}}"},
            {"type": "BODY", "text": "{{1}} hello {{3}}"},
            {"type": "FOOTER", "text": "bye {{1}}"}])
        r = self.call("POST", "/api/v1/templates", bad)
        err = self.assert_error(r, 422, "validation_error")
        fields = [d["field"] for d in err["details"]]
        for f in ("name", "language", "category", "components[0].text",
                  "components[1].text", "components[2].text"):
            self.assertIn(f, fields)
        # one entry per broken rule: the body breaks three
        self.assertEqual(fields.count("components[1].text"), 3, err)
        # missing fields are 422, a wrong JSON type 400
        r = self.call("POST", "/api/v1/templates", {"whatsapp_number_id": self.number["id"]})
        err = self.assert_error(r, 422, "validation_error")
        self.assertTrue({"name", "language", "category", "components"}
                        <= {d["field"] for d in err["details"]}, err)
        r = self.call("POST", "/api/v1/templates", self.body(name=7))
        self.assert_error(r, 400, "invalid_request")
        r = self.call("POST", "/api/v1/templates", self.body(whatsapp_number_id=5))
        self.assert_error(r, 400, "invalid_request")
        r = self.call("POST", "/api/v1/templates", "not json")
        self.assertEqual(r.status, 400, r)
        self.assertEqual(self.srv.sql("SELECT count(*) FROM templates WHERE name = 'Bad Name'")
                         .strip(), "0")

    def test_number_of_another_org_is_like_an_unknown_number(self):
        b_number = self.new_number(self.b)
        answers = []
        for number_id in (b_number["id"], UNKNOWN_ID, "not-a-uuid"):
            with self.subTest(number_id=number_id):
                r = self.call("POST", "/api/v1/templates",
                              self.body(whatsapp_number_id=number_id, name="same_name"))
                err = self.assert_error(r, 422, "validation_error", ["whatsapp_number_id"])
                answers.append(err)
                r = self.call("POST", "/api/v1/templates/sync",
                              {"whatsapp_number_id": number_id})
                answers.append(self.assert_error(r, 422, "validation_error",
                                                 ["whatsapp_number_id"]))
                self.assertNotIn(b_number["id"], r.text)
        self.assertTrue(all(a == answers[0] for a in answers[::2]), answers)
        self.assertTrue(all(a == answers[1] for a in answers[1::2]), answers)
        self.assertEqual(self.fake.calls(), [], "nothing may reach Meta")

    def test_list_filters_and_paging(self):
        n = self.new_number(self.a)
        made = [self.create(n, category="MARKETING" if i % 2 else "UTILITY",
                            language="pt_BR" if i == 0 else "en_US") for i in range(5)]
        base = "/api/v1/templates?whatsapp_number_id=" + n["id"]
        r = self.call("GET", base, role="viewer")
        self.assertEqual(r.status, 200, r)
        page = r.json()
        self.assertEqual([t["id"] for t in page["items"]], [t["id"] for t in reversed(made)])
        self.assertIsNone(page["next_cursor"])
        # paging: 2 + 2 + 1, newest first
        seen, cursor = [], None
        while True:
            r = self.call("GET", base + "&limit=2" + ("&cursor=" + cursor if cursor else ""))
            self.assertEqual(r.status, 200, r)
            seen += [t["id"] for t in r.json()["items"]]
            cursor = r.json()["next_cursor"]
            if not cursor:
                break
        self.assertEqual(seen, [t["id"] for t in reversed(made)])
        cases = [("&category=MARKETING", [made[3], made[1]]),
                 ("&language=pt_BR", [made[0]]),
                 ("&name=" + made[2]["name"], [made[2]]),
                 ("&status=DRAFT&category=UTILITY", [made[4], made[2], made[0]]),
                 ("&status=APPROVED", [])]
        for q, want in cases:
            with self.subTest(q=q):
                r = self.call("GET", base + q)
                self.assertEqual(r.status, 200, r)
                self.assertEqual([t["id"] for t in r.json()["items"]], [t["id"] for t in want])
        for q, field in (("?status=NOPE", "status"), ("?category=x", "category"),
                         ("?whatsapp_number_id=zz", "whatsapp_number_id"), ("?limit=0", "limit")):
            with self.subTest(q=q):
                self.assert_error(self.call("GET", "/api/v1/templates" + q), 422,
                                  "validation_error", [field])
        # B sees none of A's templates
        r = self.call("GET", base, tenant=self.b)
        self.assertEqual(r.json()["items"], [])

    # ---- patch ---------------------------------------------------------------

    def test_patch_draft_revalidates_and_audits(self):
        t = self.create()
        new_body = [{"type": "BODY", "text": "Hello {{1}}, welcome!",
                     "example": {"body_text": [["Ann"]]}}]
        r = self.call("PATCH", "/api/v1/templates/" + t["id"],
                      {"components": new_body, "category": "MARKETING",
                       "whatsapp_number_id": UNKNOWN_ID})
        self.assertEqual(r.status, 200, r)
        p = r.json()
        self.assertEqual(p["components"], new_body)
        self.assertEqual((p["category"], p["status"], p["name"]), ("MARKETING", "DRAFT", t["name"]))
        self.assertEqual(p["whatsapp_number_id"], t["whatsapp_number_id"])
        self.assertEqual(self.get(t["id"]), p)
        rows = self.audit(t["id"], "update")
        self.assertEqual(rows[0]["changes"]["category"], ["UTILITY", "MARKETING"])
        self.assertEqual(rows[0]["changes"]["components"], [COMPONENTS, new_body])
        # a broken patch changes nothing
        r = self.call("PATCH", "/api/v1/templates/" + t["id"],
                      {"components": [{"type": "FOOTER", "text": "only a footer"}]})
        err = self.assert_error(r, 422, "validation_error")
        self.assertTrue(err["details"])
        r = self.call("PATCH", "/api/v1/templates/" + t["id"], {"name": "Not Valid"})
        self.assert_error(r, 422, "validation_error", ["name"])
        self.assertEqual(self.get(t["id"]), p)
        # renaming onto a sibling's (name, language) is a conflict
        other = self.create()
        r = self.call("PATCH", "/api/v1/templates/" + t["id"], {"name": other["name"]})
        self.assert_error(r, 409, "conflict")

    # ---- submit ---------------------------------------------------------------

    def test_submit_sends_exact_json_with_the_numbers_token(self):
        t = self.create(parameter_format="POSITIONAL")
        r = self.submit(t["id"])
        self.assertEqual(r.status, 200, r)
        s = r.json()
        self.assertEqual(s["status"], "PENDING")
        self.assertTrue(s["meta_template_id"])
        self.assertEqual(s["category"], "UTILITY")
        self.assertEqual(self.get(t["id"]), s)
        calls = self.fake.calls()
        self.assertEqual(len(calls), 1, calls)
        c = calls[0]
        self.assertEqual((c["method"], c["path"]),
                         ("POST", "/v24.0/%s/message_templates" % self.number["waba_id"]))
        self.assertEqual(c["body"], {"name": t["name"], "language": "en_US",
                                     "category": "UTILITY", "parameter_format": "POSITIONAL",
                                     "components": COMPONENTS})
        self.assertEqual(c["headers"].get("Authorization"), "Bearer " + self.number["_token"])
        # the token is nowhere in our answers or logs
        self.assertNotIn(self.number["_token"], r.text)
        self.assertNotIn(self.number["_token"], self.srv.log_text())
        rows = self.audit(t["id"], "submit")
        self.assertEqual(rows[0]["changes"]["status"], ["DRAFT", "PENDING"])
        self.assertEqual(rows[0]["changes"]["meta_template_id"], [None, s["meta_template_id"]])
        # twice: 409, and Meta is not called again
        self.assert_error(self.submit(t["id"]), 409, "invalid_state")
        self.assertEqual(len(self.fake.calls()), 1)
        # PATCH of a PENDING template: 409, unchanged
        r = self.call("PATCH", "/api/v1/templates/" + t["id"], {"category": "MARKETING"})
        self.assert_error(r, 409, "invalid_state")
        self.assertEqual(self.get(t["id"]), s)

    def test_change_during_the_meta_call_is_409_and_kept(self):
        """No transaction is held across the Graph call: a PATCH made while
        Meta is slow succeeds, and the submit's write then sees the row
        changed and answers 409 instead of overwriting it."""
        t = self.create()
        self.fake.error(match={"method": "POST", "path_regex": "message_templates"},
                        latency_ms=3000)
        result = {}
        th = threading.Thread(target=lambda: result.update(r=self.submit(t["id"])))
        th.start()
        deadline = time.monotonic() + 5
        while not self.fake.calls("POST") and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertTrue(self.fake.calls("POST"), "submit did not reach Meta")
        started = time.monotonic()
        r = self.call("PATCH", "/api/v1/templates/" + t["id"], {"category": "MARKETING"})
        self.assertEqual(r.status, 200, r)
        # Meta takes 3 s; a PATCH that waited for the call would take
        # most of that (the bound leaves room for a busy machine).
        self.assertLess(time.monotonic() - started, 2.0 * timeout_scale(),
                        "PATCH waited for the Graph call")
        th.join(10)
        self.assert_error(result["r"], 409, "invalid_state")
        now = self.get(t["id"])
        self.assertEqual((now["status"], now["category"], now["meta_template_id"]),
                         ("DRAFT", "MARKETING", None))

    def test_submit_without_parameter_format_omits_it(self):
        t = self.create()
        self.assertEqual(self.submit(t["id"]).status, 200)
        body = self.fake.calls("POST")[0]["body"]
        self.assertEqual(set(body), {"name", "language", "category", "components"})

    def test_meta_error_is_502_with_metas_code_and_template_unchanged(self):
        cases = [
            {"code": 100, "subcode": 2388024, "message": "Invalid parameter",
             "fbtrace_id": "AbCdEfG123"},
            {"code": 131009, "message": "(#131009) Parameter value is not valid"},
            {"code": 1, "http_status": 500, "message": "An unknown error occurred"},
        ]
        for rule in cases:
            with self.subTest(code=rule["code"]):
                t = self.create()
                self.fake.error(match={"method": "POST", "path_regex": "message_templates"},
                                **rule)
                r = self.submit(t["id"])
                err = self.assert_error(r, 502, "meta_error")
                d = err["details"][0]
                self.assertEqual(d["code"], rule["code"])
                self.assertEqual(d["subcode"], rule.get("subcode"))
                self.assertEqual(d["message"], rule["message"])
                self.assertTrue(d["fbtrace_id"])
                if "fbtrace_id" in rule:
                    self.assertEqual(d["fbtrace_id"], rule["fbtrace_id"])
                self.assertEqual(self.get(t["id"]), t, "template must stay DRAFT, unchanged")
                self.assertEqual(self.audit(t["id"], "submit"), [])
        # Meta unreachable: 502 meta_error too, nothing changed
        t = self.create()
        self.fake.error(match={"path_regex": "message_templates"}, raw_body="<html>oops</html>",
                        http_status=503)
        r = self.submit(t["id"])
        err = self.assert_error(r, 502, "meta_error")
        self.assertIn("transport", err["details"][0])
        self.assertEqual(self.get(t["id"])["status"], "DRAFT")
        # after the error the same template submits fine
        self.assertEqual(self.submit(t["id"]).status, 200)

    # ---- delete ---------------------------------------------------------------

    def test_delete_draft_stays_local(self):
        t = self.create()
        r = self.call("DELETE", "/api/v1/templates/" + t["id"])
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        self.assertEqual(self.call("GET", "/api/v1/templates/" + t["id"]).status, 404)
        self.assertEqual(self.fake.calls(), [])
        rows = self.audit(t["id"], "delete")
        self.assertEqual(rows[0]["changes"]["name"], [t["name"], None])
        self.assert_error(self.call("DELETE", "/api/v1/templates/" + t["id"]), 404, "not_found")

    def test_delete_submitted_deletes_at_meta(self):
        t = self.create()
        s = self.submit(t["id"]).json()
        # Meta refuses: 502 and nothing deleted here
        self.fake.error(match={"method": "DELETE"}, code=100, subcode=2593002,
                        message="Message template not found")
        r = self.call("DELETE", "/api/v1/templates/" + t["id"])
        err = self.assert_error(r, 502, "meta_error")
        self.assertEqual(err["details"][0]["subcode"], 2593002)
        self.assertEqual(self.get(t["id"]), s)
        # then it works
        r = self.call("DELETE", "/api/v1/templates/" + t["id"])
        self.assertEqual(r.status, 204, r)
        dels = self.fake.calls("DELETE")
        self.assertEqual(len(dels), 2, dels)
        self.assertEqual(dels[-1]["path"], "/v24.0/%s/message_templates" % self.number["waba_id"])
        self.assertIn("name=" + t["name"], dels[-1]["query"])
        self.assertIn("hsm_id=" + s["meta_template_id"], dels[-1]["query"])
        self.assertEqual(dels[-1]["headers"].get("Authorization"),
                         "Bearer " + self.number["_token"])
        self.assertEqual(self.call("GET", "/api/v1/templates/" + t["id"]).status, 404)

    # ---- sync -----------------------------------------------------------------

    def meta_templates(self, count, prefix):
        out = []
        for i in range(count):
            out.append({"id": "90%d%04d" % (os.getpid(), i), "name": "%s_%d" % (prefix, i),
                        "language": "en_US" if i % 2 == 0 else "pt_BR",
                        "status": "APPROVED" if i != 1 else "REJECTED",
                        "category": "MARKETING" if i % 2 else "UTILITY",
                        "parameter_format": "POSITIONAL",
                        "components": [{"type": "BODY", "text": "Promo number %d for you" % i}]})
        out[1]["rejected_reason"] = "INVALID_FORMAT"
        out[2]["quality_score"] = {"score": "GREEN", "date": 1700000000}
        return out

    def sync(self, number, tenant=None):
        return self.call("POST", "/api/v1/templates/sync", {"whatsapp_number_id": number["id"]},
                         tenant)

    def test_sync_over_two_pages_creates_then_unchanged_then_updated(self):
        n = self.new_number(self.a)
        seeded = self.meta_templates(5, "promo")
        self.fake.seed(n["waba_id"], seeded, page_size=3)
        r = self.sync(n)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"created": 5, "updated": 0, "unchanged": 0})
        gets = self.fake.calls("GET", "message_templates")
        self.assertEqual(len(gets), 2, "two pages: %r" % gets)
        self.assertIn("after=", gets[1]["query"])
        self.assertEqual(gets[0]["headers"].get("Authorization"), "Bearer " + n["_token"])
        lst = self.call("GET", "/api/v1/templates?whatsapp_number_id=" + n["id"]).json()["items"]
        by_name = {t["name"]: t for t in lst}
        self.assertEqual(set(by_name), {t["name"] for t in seeded})
        for m in seeded:
            t = by_name[m["name"]]
            self.assertEqual((t["meta_template_id"], t["status"], t["category"], t["language"],
                              t["components"], t["parameter_format"]),
                             (m["id"], m["status"], m["category"], m["language"],
                              m["components"], "POSITIONAL"))
        self.assertEqual(by_name["promo_1"]["rejected_reason"], "INVALID_FORMAT")
        self.assertEqual(by_name["promo_2"]["quality_score"], "GREEN")
        self.assertIsNone(by_name["promo_0"]["rejected_reason"])
        self.assertEqual(len(self.audit(by_name["promo_3"]["id"], "create")), 1)
        # again: nothing changed
        r = self.sync(n)
        self.assertEqual(r.json(), {"created": 0, "updated": 0, "unchanged": 5})
        # Meta changed one (approved after appeal, new text): updated 1
        seeded[1]["status"] = "APPROVED"
        seeded[1]["rejected_reason"] = "NONE"
        seeded[1]["components"] = [{"type": "BODY", "text": "Fixed promo text"}]
        self.fake.seed(n["waba_id"], seeded, page_size=3)
        r = self.sync(n)
        self.assertEqual(r.json(), {"created": 0, "updated": 1, "unchanged": 4})
        t1 = self.get(by_name["promo_1"]["id"])
        self.assertEqual((t1["status"], t1["rejected_reason"], t1["components"]),
                         ("APPROVED", None, seeded[1]["components"]))
        rows = self.audit(t1["id"], "update")
        self.assertEqual(rows[0]["changes"]["status"], ["REJECTED", "APPROVED"])
        # a template submitted here and then listed by Meta is the same row
        local = self.create(n)
        self.assertEqual(self.submit(local["id"]).status, 200)
        r = self.sync(n)
        self.assertEqual(r.json(), {"created": 0, "updated": 0, "unchanged": 6})

    def test_patch_only_while_draft_or_rejected(self):
        """API.md: PATCH only while DRAFT or REJECTED (else 409 invalid_state)."""
        n = self.new_number(self.a)
        seeded = self.meta_templates(3, "edit")[:2]
        for i, m in enumerate(seeded):
            m["id"] = "91%d%04d" % (os.getpid(), i)
        self.fake.seed(n["waba_id"], seeded)
        self.assertEqual(self.sync(n).json(), {"created": 2, "updated": 0, "unchanged": 0})
        lst = self.call("GET", "/api/v1/templates?whatsapp_number_id=" + n["id"]).json()["items"]
        by_status = {t["status"]: t for t in lst}
        approved, rejected = by_status["APPROVED"], by_status["REJECTED"]
        new_body = [{"type": "BODY", "text": "Corrected promo text"}]
        r = self.call("PATCH", "/api/v1/templates/" + approved["id"], {"components": new_body})
        self.assert_error(r, 409, "invalid_state")
        self.assertEqual(self.get(approved["id"]), approved)
        r = self.call("PATCH", "/api/v1/templates/" + rejected["id"], {"components": new_body})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["components"], new_body)
        self.assertEqual(self.get(rejected["id"]), r.json())

    def test_sync_meta_error_is_502_and_stores_nothing(self):
        n = self.new_number(self.a)
        self.fake.seed(n["waba_id"], self.meta_templates(4, "fail"))
        self.fake.error(match={"method": "GET"}, code=190, http_status=401,
                        message="Invalid OAuth access token", count=10)
        r = self.sync(n)
        err = self.assert_error(r, 502, "meta_error")
        self.assertEqual(err["details"][0]["code"], 190)
        lst = self.call("GET", "/api/v1/templates?whatsapp_number_id=" + n["id"]).json()
        self.assertEqual(lst["items"], [])
        r = self.sync(n, tenant=self.b)
        self.assert_error(r, 422, "validation_error", ["whatsapp_number_id"])

    # ---- preview --------------------------------------------------------------

    def test_preview_renders_and_rejects_missing_or_extra(self):
        t = self.create()
        path = "/api/v1/templates/%s/preview" % t["id"]
        full = {"header": ["42"], "body": ["Ann", "42"], "buttons": [{"index": 1, "text": "42"}]}
        r = self.call("POST", path, {"parameters": full}, role="viewer")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {
            "header": "Order 42", "body": "Hi Ann, your order 42 has shipped.",
            "footer": "Thanks for shopping",
            "buttons": [{"type": "QUICK_REPLY", "text": "Stop updates"},
                        {"type": "URL", "text": "Track", "url": "https://shop.test/t/42"}]})
        missing = dict(full, body=["Ann"])
        err = self.assert_error(self.call("POST", path, {"parameters": missing}), 422,
                                "validation_error")
        self.assertTrue(any("body" in d["field"] or "[1]" in d["field"]
                            for d in err["details"]), err)
        extra = dict(full, body=["Ann", "42", "surplus"])
        err = self.assert_error(self.call("POST", path, {"parameters": extra}), 422,
                                "validation_error")
        self.assertTrue(any("extra" in d["message"] for d in err["details"]), err)
        self.assert_error(self.call("POST", path, {"parameters": 5}), 400, "invalid_request")
        # a template without variables previews without parameters
        plain = self.create(components=[{"type": "BODY", "text": "Plain text only"}])
        r = self.call("POST", "/api/v1/templates/%s/preview" % plain["id"], {})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"header": None, "body": "Plain text only", "footer": None,
                                    "buttons": []})
        self.assertEqual(self.fake.calls(), [])

    # ---- isolation and roles ----------------------------------------------

    def test_cross_tenant_ids_are_404(self):
        tenancy.check_cross_tenant(self, self.srv, self.a, self.b)
        tenancy.check_cross_tenant(self, self.srv, self.b, self.a)
        self.assertEqual(self.fake.calls(), [], "no cross-tenant request may reach Meta")

    def test_cross_tenant_submitted_template(self):
        """A's submitted template: B cannot submit, delete, patch or read it."""
        t = self.create()
        s = self.submit(t["id"]).json()
        before = len(self.fake.calls())
        for method, suffix, body in (("GET", "", None), ("DELETE", "", None),
                                     ("PATCH", "", {"category": "MARKETING"}),
                                     ("POST", "/submit", None),
                                     ("POST", "/preview", {"parameters": []})):
            with self.subTest(method=method, suffix=suffix):
                r = self.call(method, "/api/v1/templates/%s%s" % (t["id"], suffix), body,
                              tenant=self.b)
                self.assert_error(r, 404, "not_found")
        self.assertEqual(len(self.fake.calls()), before)
        self.assertEqual(self.get(t["id"]), s)

    def test_role_matrix(self):
        t = make_tenant(self.srv, self.su["token"], "matrix")
        victim = self.srv.request("POST", "/api/v1/users", {
            "email": "victim@matrix.test", "password": "password-123",
            "full_name": "Victim", "role": "agent"},
            headers=bearer(t["users"]["org_admin"]["token"]))
        self.assertEqual(victim.status, 201, victim)
        tenancy.check_role_matrix(self, self.srv, t, self.su["token"],
                                  {"user_id": t["users"]["agent"]["id"],
                                   "victim_id": victim.json()["id"]})
        # writes that would reach Meta are refused to agents and viewers first
        number = self.new_number(t)
        tpl = tenancy.make_template(self.srv, t, number["id"])
        for role in ("viewer", "agent"):
            for method, path, body in (
                    ("POST", "/api/v1/templates/%s/submit" % tpl["id"], None),
                    ("DELETE", "/api/v1/templates/" + tpl["id"], None),
                    ("POST", "/api/v1/templates/sync", {"whatsapp_number_id": number["id"]})):
                with self.subTest(role=role, path=path):
                    r = self.call(method, path, body, tenant=t, role=role)
                    self.assert_error(r, 403, "forbidden")
        self.assertEqual(self.fake.calls(), [])


if __name__ == "__main__":
    unittest.main()
