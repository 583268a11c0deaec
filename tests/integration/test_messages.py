"""Sending messages (POST /api/v1/messages, GET /api/v1/messages/{id})
against the fake Graph server, with real signed inbound webhooks opening
the customer-service window. Runs on both engines.

Covers: the exact body and Authorization header Meta receives; 422
outside_service_window with no Graph call and no message row (no inbound,
window expired); templates (not approved -> 422 template_not_approved;
approved -> exact components; bad parameters -> 422); retry on 130429,
131000 (500) and 131016 (503) then success (2 calls), growing waits, and a
transient error that never stops given up after 3 calls (failed); the row
queued without a wamid while Meta answers; concurrent sends to a new
contact (one contact, one conversation, no 500); permanent 131026 ->
failed with error_code; status webhooks moving the message forward;
validation; viewers refused; cross-tenant 404s (and another org's
template -> 422). The helpers (InboxCase) are shared with
test_conversations.py."""

import hashlib
import hmac
import itertools
import json
import os
import threading
import time
import unittest

from harness import Server, bearer, bootstrap_super_admin, make_tenant, timeout_scale
import tenancy
from test_templates import FakeGraph

APP_SECRET = "inbox-test-app-secret"
_seq = itertools.count(1)


def fresh_phone():
    """A Brazilian mobile number unique in this process (digits, E.164)."""
    return "55119%04d%04d" % (os.getpid() % 10000, next(_seq))


def sign(body):
    return "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


class InboxCase(unittest.TestCase):
    """One server + fake Graph per class; tenants alpha and beta."""

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeGraph()
        cls.srv = None
        try:
            # inside the try: a Server that cannot even be made (no
            # PYTAKE_TEST_PG_URL) must not leave the fake running
            cls.srv = Server(env={"GRAPH_API_BASE_URL": cls.fake.base_url,
                                  "META_APP_SECRET": APP_SECRET})
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
    def new_number(cls, tenant):
        token = "EAAG-inbox-token-%d-%d" % (os.getpid(), next(_seq))
        n = tenancy.make_number(cls.srv, tenant, access_token=token)
        n["_token"] = token
        return n

    def call(self, method, path, body=None, tenant=None, role="agent"):
        token = (tenant or self.a)["users"][role]["token"]
        return self.srv.request(method, path, body, headers=bearer(token))

    def webhook(self, value):
        """POST one signed `messages` webhook for value (the change value)."""
        body = json.dumps({"object": "whatsapp_business_account", "entry": [
            {"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]}
        ).encode()
        r = self.srv.request("POST", "/webhooks/meta", body, headers={
            "Content-Type": "application/json", "X-Hub-Signature-256": sign(body)})
        self.assertEqual(r.status, 200, r)

    def inbound(self, wa_id, text="hello", number=None, ts=None, name="Maria Souza"):
        """A signed inbound text from wa_id to number; returns its wamid."""
        number = number or self.number
        wamid = "wamid.IN%d.%d" % (os.getpid(), next(_seq))
        self.webhook({
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881",
                         "phone_number_id": number["phone_number_id"]},
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [{"from": wa_id, "id": wamid,
                          "timestamp": str(int(ts if ts is not None else time.time())),
                          "type": "text", "text": {"body": text}}]})
        return wamid

    def status(self, wamid, status, ts, wa_id, number=None):
        number = number or self.number
        self.webhook({
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881",
                         "phone_number_id": number["phone_number_id"]},
            "statuses": [{"id": wamid, "status": status, "timestamp": str(ts),
                          "recipient_id": wa_id}]})

    def wait_for(self, fn, what, timeout=10):
        deadline = time.monotonic() + timeout * timeout_scale()
        while True:
            v = fn()
            if v:
                return v
            if time.monotonic() > deadline:
                self.fail("timed out waiting for " + what)
            time.sleep(0.05)

    def conversations(self, tenant=None, **query):
        qs = "&".join("%s=%s" % kv for kv in query.items())
        r = self.call("GET", "/api/v1/conversations" + ("?" + qs if qs else ""),
                      tenant=tenant, role="viewer")
        self.assertEqual(r.status, 200, r)
        return r.json()["items"]

    def conversation_of(self, wa_id, number=None, status="open"):
        number = number or self.number
        for cv in self.conversations(whatsapp_number_id=number["id"], status=status,
                                     limit=200):
            if cv["contact"]["phone"] == wa_id:
                return cv
        return None

    def open_window(self, wa_id, number=None, text="hello"):
        """An inbound message from wa_id, waited for; returns the conversation."""
        wamid = self.inbound(wa_id, text=text, number=number)
        self.wait_for(lambda: self.sql_scalar(
            "SELECT COUNT(*) FROM messages WHERE wamid = '%s'" % wamid) == "1",
            "inbound message %s" % wamid)
        return self.conversation_of(wa_id, number)

    def sql_scalar(self, query):
        return self.srv.sql(query).strip()

    def send_text(self, to, body="Hi there", number=None, role="agent", tenant=None):
        number = number or self.number
        return self.call("POST", "/api/v1/messages", {
            "whatsapp_number_id": number["id"], "to": to, "type": "text",
            "text": {"body": body}}, tenant=tenant, role=role)

    def sends(self):
        return self.fake.calls("POST", "/messages")


class MessagesTest(InboxCase):

    def approved_template(self, **fields):
        tpl = tenancy.make_template(self.srv, self.a, self.number["id"], **fields)
        self.srv.sql("UPDATE templates SET status = 'APPROVED' WHERE id = '%s'" % tpl["id"])
        return tpl

    def test_text_inside_window_exact_body_and_token(self):
        wa = fresh_phone()
        cv = self.open_window(wa)
        self.assertIsNotNone(cv)
        spelled = "+%s %s %s-%s" % (wa[:2], wa[2:4], wa[4:9], wa[9:])
        r = self.send_text(spelled, "Olá! Seu pedido saiu 🚚")
        self.assertEqual(r.status, 202, r)
        m = r.json()
        self.assertEqual(m["status"], "sent")
        self.assertEqual(m["direction"], "outbound")
        self.assertEqual(m["type"], "text")
        self.assertEqual(m["conversation_id"], cv["id"])
        self.assertTrue(m["wamid"].startswith("wamid."))
        self.assertIsNotNone(m["sent_at"])
        self.assertEqual(r.headers["Location"], "/api/v1/messages/" + m["id"])
        calls = self.sends()
        self.assertEqual(len(calls), 1)
        self.assertEqual(calls[0]["path"],
                         "/v24.0/%s/messages" % self.number["phone_number_id"])
        self.assertEqual(calls[0]["headers"]["Authorization"], "Bearer " + self.number["_token"])
        self.assertEqual(calls[0]["body"], {
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": wa,
            "type": "text", "text": {"preview_url": False, "body": "Olá! Seu pedido saiu 🚚"}})
        got = self.call("GET", "/api/v1/messages/" + m["id"], role="viewer")
        self.assertEqual(got.status, 200, got)
        self.assertEqual(got.json(), m)
        self.assertEqual(set(m), {
            "id", "conversation_id", "direction", "type", "text", "content", "status",
            "wamid", "error_code", "error_message", "created_at", "sent_at",
            "delivered_at", "read_at", "failed_at", "cost", "currency", "pricing_category"})
        self.assertEqual(m["text"], "Olá! Seu pedido saiu 🚚")
        # the audit row of the send
        r = self.call("GET", "/api/v1/audit-logs?table_name=messages&record_id=" + m["id"],
                      role="org_admin")
        items = r.json()["items"]
        self.assertEqual([i["action"] for i in items], ["send"])
        self.assertEqual(items[0]["user_id"], self.a["users"]["agent"]["id"])

    def test_text_without_inbound_is_refused_before_anything(self):
        wa = fresh_phone()
        r = self.send_text(wa, "unsolicited-%s" % wa)
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json()["error"]["code"], "outside_service_window")
        self.assertEqual(self.sends(), [])
        self.assertEqual(self.sql_scalar(
            "SELECT COUNT(*) FROM messages WHERE text = 'unsolicited-%s'" % wa), "0")
        self.assertEqual(self.sql_scalar(
            "SELECT COUNT(*) FROM contacts WHERE wa_id = '%s'" % wa), "0")

    def test_text_after_window_expired_is_refused(self):
        wa = fresh_phone()
        cv = self.open_window(wa)
        self.srv.sql("UPDATE conversations SET window_expires_at = %d WHERE id = '%s'"
                     % (int((time.time() - 60) * 1e6), cv["id"]))
        before = self.sql_scalar("SELECT COUNT(*) FROM messages WHERE conversation_id = '%s'"
                                 % cv["id"])
        r = self.send_text(wa)
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json()["error"]["code"], "outside_service_window")
        self.assertEqual(self.sends(), [])
        self.assertEqual(self.sql_scalar(
            "SELECT COUNT(*) FROM messages WHERE conversation_id = '%s'" % cv["id"]), before)
        # a new inbound message opens the window again
        self.open_window(wa, text="again")
        self.assertEqual(self.send_text(wa).status, 202)

    def test_template_not_approved(self):
        tpl = tenancy.make_template(self.srv, self.a, self.number["id"])  # DRAFT
        r = self.call("POST", "/api/v1/messages", {
            "whatsapp_number_id": self.number["id"], "to": fresh_phone(), "type": "template",
            "template": {"template_id": tpl["id"], "parameters": []}})
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json()["error"]["code"], "template_not_approved")
        self.assertEqual(self.sends(), [])

    def test_approved_template_exact_components(self):
        tpl = self.approved_template(components=[
            {"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped.",
             "example": {"body_text": [["Ann", "42"]]}}])
        wa = fresh_phone()  # no inbound needed for a template: contact created
        r = self.call("POST", "/api/v1/messages", {
            "whatsapp_number_id": self.number["id"], "to": "+" + wa, "type": "template",
            "template": {"template_id": tpl["id"], "parameters": ["Ann", "42"]}})
        self.assertEqual(r.status, 202, r)
        m = r.json()
        self.assertEqual((m["status"], m["type"]), ("sent", "template"))
        self.assertEqual(m["text"], "Hi Ann, order 42 has shipped.")
        calls = self.sends()
        self.assertEqual(len(calls), 1)
        self.assertEqual(calls[0]["body"], {
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": wa,
            "type": "template",
            "template": {"name": tpl["name"], "language": {"code": "en_US"},
                         "components": [{"type": "body", "parameters": [
                             {"type": "text", "text": "Ann"},
                             {"type": "text", "text": "42"}]}]}})
        self.assertEqual(m["content"], calls[0]["body"]["template"])
        self.assertEqual(self.sql_scalar(
            "SELECT COUNT(*) FROM contacts WHERE wa_id = '%s'" % wa), "1")
        cv = self.conversation_of(wa)
        self.assertEqual(cv["id"], m["conversation_id"])
        self.assertIsNone(cv["window_expires_at"])

    def test_concurrent_sends_to_a_new_contact(self):
        """Template sends racing to a phone the org does not know yet: each
        is sent; one contact and one open conversation hold them all (the
        loser of the race to create them finds the winner's rows instead of
        failing on the unique index)."""
        tpl = self.approved_template()
        wa = fresh_phone()
        results = []

        def send():
            results.append(self.call("POST", "/api/v1/messages", {
                "whatsapp_number_id": self.number["id"], "to": wa, "type": "template",
                "template": {"template_id": tpl["id"], "parameters": []}}))
        threads = [threading.Thread(target=send) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(sorted(r.status for r in results), [202] * 8, results)
        self.assertEqual([r.json()["status"] for r in results], ["sent"] * 8)
        self.assertEqual(len({r.json()["conversation_id"] for r in results}), 1)
        self.assertEqual(self.sql_scalar(
            "SELECT COUNT(*) FROM contacts WHERE wa_id = '%s'" % wa), "1")
        self.assertEqual(self.sql_scalar(
            "SELECT COUNT(*) FROM messages m JOIN contacts c ON c.id = m.contact_id "
            "WHERE c.wa_id = '%s'" % wa), "8")
        self.assertEqual(len(self.sends()), 8)

    def test_template_bad_parameters(self):
        tpl = self.approved_template(components=[
            {"type": "BODY", "text": "Hi {{1}}, order {{2}}.",
             "example": {"body_text": [["Ann", "42"]]}}])
        for params in (["Ann"], ["Ann", "42", "extra"], ["Ann", ""]):
            with self.subTest(params=params):
                r = self.call("POST", "/api/v1/messages", {
                    "whatsapp_number_id": self.number["id"], "to": fresh_phone(),
                    "type": "template",
                    "template": {"template_id": tpl["id"], "parameters": params}})
                self.assertEqual(r.status, 422, r)
                self.assertEqual(r.json()["error"]["code"], "validation_error")
                self.assertTrue(r.json()["error"]["details"])
        self.assertEqual(self.sends(), [])

    def test_transient_error_retried_then_sent(self):
        wa = fresh_phone()
        self.open_window(wa)
        self.fake.error(match={"path_regex": "/messages$"}, code=130429, http_status=400,
                        count=1)
        r = self.send_text(wa)
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json()["status"], "sent")
        self.assertEqual(len(self.sends()), 2)

    def test_permanent_error_fails_with_meta_code(self):
        wa = fresh_phone()
        self.open_window(wa)
        self.fake.error(match={"path_regex": "/messages$"}, code=131026, count=1)
        r = self.send_text(wa)
        self.assertEqual(r.status, 202, r)
        m = r.json()
        self.assertEqual(m["status"], "failed")
        self.assertEqual(m["error_code"], 131026)
        self.assertIn("undeliverable", m["error_message"])
        self.assertIsNotNone(m["failed_at"])
        self.assertIsNone(m["wamid"])
        self.assertEqual(len(self.sends()), 1)  # not retried
        got = self.call("GET", "/api/v1/messages/" + m["id"]).json()
        self.assertEqual((got["status"], got["error_code"]), ("failed", 131026))

    def test_transient_errors_retried_with_backoff_then_bounded(self):
        """131000 (HTTP 500) and 131016 (HTTP 503) are retried like 130429;
        the waits grow (backoff: SEND_BACKOFF_BASE_MS 200 doubling, jitter
        in [d/2, d]); a transient error that does not stop is given up
        after SEND_RETRIES (2) retries: 3 calls, then failed with Meta's
        code."""
        for code, http_status in ((131000, 500), (131016, 503)):
            with self.subTest(code=code):
                self.fake.reset()
                wa = fresh_phone()
                self.open_window(wa)
                self.fake.error(match={"path_regex": "/messages$"}, code=code,
                                http_status=http_status, count=1)
                r = self.send_text(wa)
                self.assertEqual(r.status, 202, r)
                self.assertEqual(r.json()["status"], "sent")
                self.assertEqual(len(self.sends()), 2)
        self.fake.reset()
        wa = fresh_phone()
        self.open_window(wa)
        self.fake.error(match={"path_regex": "/messages$"}, code=130429, http_status=400,
                        count=0)  # forever
        r = self.send_text(wa, "never-through-%s" % wa)
        self.assertEqual(r.status, 202, r)
        m = r.json()
        self.assertEqual((m["status"], m["error_code"]), ("failed", 130429))
        self.assertIsNone(m["wamid"])
        calls = self.sends()
        self.assertEqual(len(calls), 3)
        gaps = [b["ts"] - a["ts"] for a, b in zip(calls, calls[1:])]
        self.assertGreaterEqual(gaps[0], 0.09, gaps)   # >= 200 ms / 2
        self.assertGreaterEqual(gaps[1], 0.19, gaps)   # >= 400 ms / 2

    def test_row_is_queued_before_the_graph_call(self):
        """The message row exists, queued and without a wamid, while Meta
        is still answering; it gets the wamid Meta returned afterwards."""
        wa = fresh_phone()
        self.open_window(wa)
        self.fake.control("POST", "/_fake/latency", {"ms": 1500})
        text = "queued-first-%s" % wa
        seen, result = [], {}

        def send():
            result["r"] = self.send_text(wa, text)
        t = threading.Thread(target=send)
        t.start()
        try:
            self.wait_for(lambda: len(self.sends()) == 1, "the Graph call")
            seen.append(self.sql_scalar(
                "SELECT status || '|' || COALESCE(wamid, 'null') FROM messages "
                "WHERE text = '%s'" % text))
        finally:
            t.join(30)
        self.assertEqual(seen, ["queued|null"])
        r = result["r"]
        self.assertEqual(r.status, 202, r)
        m = r.json()
        self.assertEqual(m["status"], "sent")
        self.assertEqual(m["wamid"], self.sends()[0]["wamid"])
        self.assertEqual(self.sql_scalar(
            "SELECT status || '|' || wamid FROM messages WHERE id = '%s'" % m["id"]),
            "sent|" + m["wamid"])

    def test_status_webhooks_move_it_forward(self):
        wa = fresh_phone()
        self.open_window(wa)
        m = self.send_text(wa).json()
        now = int(time.time())
        # out of order on purpose: read, then sent, then delivered
        self.status(m["wamid"], "read", now + 3, wa)
        self.status(m["wamid"], "sent", now + 1, wa)
        self.status(m["wamid"], "delivered", now + 2, wa)

        def done():
            g = self.call("GET", "/api/v1/messages/" + m["id"]).json()
            return g if g["delivered_at"] and g["read_at"] else None
        g = self.wait_for(done, "status webhooks applied")
        self.assertEqual(g["status"], "read")
        self.assertIsNotNone(g["sent_at"])

    def test_validation(self):
        n = self.number["id"]
        cases = [
            ({}, 422, "validation_error"),
            ({"whatsapp_number_id": n, "to": fresh_phone(), "type": "video"}, 422,
             "validation_error"),
            ({"whatsapp_number_id": n, "to": fresh_phone(), "type": "text"}, 422,
             "validation_error"),
            ({"whatsapp_number_id": n, "to": fresh_phone(), "type": "text",
              "text": {"body": ""}}, 422, "validation_error"),
            ({"whatsapp_number_id": n, "to": fresh_phone(), "type": "text",
              "text": {"body": "x" * 4097}}, 422, "validation_error"),
            ({"whatsapp_number_id": n, "to": 5511, "type": "text", "text": {"body": "x"}},
             400, "invalid_request"),
            ({"whatsapp_number_id": n, "to": fresh_phone(), "type": "text", "text": "x"},
             400, "invalid_request"),
            ({"whatsapp_number_id": n, "to": "not a phone", "type": "text",
              "text": {"body": "x"}}, 422, "validation_error"),
            ({"whatsapp_number_id": n, "to": "+999 1234 5678", "type": "text",
              "text": {"body": "x"}}, 422, "validation_error"),
            ({"whatsapp_number_id": "00000000-0000-7000-8000-000000000000",
              "to": fresh_phone(), "type": "text", "text": {"body": "x"}}, 422,
             "validation_error"),
            ({"whatsapp_number_id": n, "to": fresh_phone(), "type": "template",
              "template": {"template_id": "00000000-0000-7000-8000-000000000000"}}, 422,
             "validation_error"),
        ]
        for body, status, code in cases:
            with self.subTest(body=json.dumps(body)[:80]):
                r = self.call("POST", "/api/v1/messages", body)
                self.assertEqual(r.status, status, r)
                self.assertEqual(r.json()["error"]["code"], code)
        self.assertEqual(self.sends(), [])

    def test_viewer_refused_and_roles(self):
        wa = fresh_phone()
        self.open_window(wa)
        r = self.send_text(wa, role="viewer")
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.json()["error"]["code"], "forbidden")
        self.assertEqual(self.sends(), [])
        self.assertEqual(self.send_text(wa, role="org_admin").status, 202)

    def test_other_tenant(self):
        wa = fresh_phone()
        self.open_window(wa)
        m = self.send_text(wa).json()
        r = self.call("GET", "/api/v1/messages/" + m["id"], tenant=self.b)
        self.assertEqual(r.status, 404, r)
        # B cannot send from A's number (body field -> 422, nothing sent)
        self.fake.reset()
        r = self.send_text(wa, tenant=self.b)
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json()["error"]["details"][0]["field"], "whatsapp_number_id")
        self.assertEqual(self.sends(), [])
        # B's own number with A's contact: no window in B's org
        nb = self.new_number(self.b)
        r = self.send_text(wa, number=nb, tenant=self.b)
        self.assertEqual(r.json()["error"]["code"], "outside_service_window")
        # B's own number with A's approved template: as if it did not exist
        tpl = self.approved_template()
        r = self.call("POST", "/api/v1/messages", {
            "whatsapp_number_id": nb["id"], "to": wa, "type": "template",
            "template": {"template_id": tpl["id"], "parameters": []}}, tenant=self.b)
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json()["error"]["details"][0]["field"], "template.template_id")
        self.assertNotIn(tpl["name"], r.text)
        self.assertEqual(self.sends(), [])

    def test_cross_tenant_routes(self):
        tenancy.check_cross_tenant(self, self.srv, self.a, self.b,
                                   routes=[r for r in tenancy.TENANT_ROUTES
                                           if "conversation" in r[1] or "message" in r[1]])

    def test_role_matrix(self):
        tenancy.check_role_matrix(self, self.srv, self.a, self.su["token"], {},
                                  routes=[r for r in tenancy.ROLE_ROUTES
                                          if "conversation" in r[1] or "messages" in r[1]])


if __name__ == "__main__":
    unittest.main()
