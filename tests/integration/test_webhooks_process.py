"""Meta webhook processing (issue 5): the background processor applies
stored events. Signed samples from ../shared/meta go through POST
/webhooks/meta, then the tables are checked: inbound text -> contact + open
conversation + message (window = ts + 24 h); duplicates x10 -> one
message; statuses out of order; a status before its message; failed with
the error; batched entries; unknown number (unrouted, visible); template
status/quality/category; phone number quality; opt-out keyword and
user_preferences stop (with audit rows); processing metrics. Both engines."""

import hashlib
import hmac
import json
import os
import time
import unittest
import uuid

from harness import Server, bearer, bootstrap_super_admin, make_tenant
import tenancy

APP_SECRET = "test-app-secret"
SAMPLES_DIR = os.environ.get("PYTAKE_META_SAMPLES") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "meta")
PNID = "106540352242922"
WABA = "102290129340398"
DAY_US = 24 * 3600 * 1000000
WAMID_OUT = "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjk5QzFGRTlCNzZFNjE4RDFBRgA="


def sample(name):
    with open(os.path.join(SAMPLES_DIR, name), "rb") as f:
        return f.read()


def sign(body):
    return "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


def wrap(value, field="messages", pnid=PNID):
    """A compact webhook body with one change."""
    if field == "messages" or field == "user_preferences":
        value = dict(value, messaging_product="whatsapp",
                     metadata={"display_phone_number": "15550783881", "phone_number_id": pnid})
    return json.dumps({"object": "whatsapp_business_account", "entry": [
        {"id": WABA, "changes": [{"field": field, "value": value}]}]},
        separators=(",", ":")).encode()


def inbound(wamid, text, wa_id, ts=1764410000, name="Test"):
    return wrap({"contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
                 "messages": [{"from": wa_id, "id": wamid, "timestamp": str(ts),
                               "type": "text", "text": {"body": text}}]})


def status(wamid, st, ts, **extra):
    s = {"id": wamid, "status": st, "timestamp": str(ts), "recipient_id": "5511987654321"}
    s.update(extra)
    return wrap({"statuses": [s]})


class WebhookProcessTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(env={"META_APP_SECRET": APP_SECRET,
                              "WEBHOOK_VERIFY_TOKEN": "verify-token-123456789"})
        try:
            cls.srv.start()
            cls.su = bootstrap_super_admin(cls.srv)
            cls.a = make_tenant(cls.srv, cls.su["token"], "proca")
            cls.number = tenancy.make_number(cls.srv, cls.a, phone_number_id=PNID,
                                             waba_id=WABA,
                                             display_phone_number="+1 555 078 3881")
            cls.org = cls.a["org_id"]
        except Exception:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    # ---- helpers ------------------------------------------------------------

    def post(self, body):
        r = self.srv.request("POST", "/webhooks/meta", body,
                             headers={"Content-Type": "application/json",
                                      "X-Hub-Signature-256": sign(body)})
        self.assertEqual(r.status, 200, r)

    def q(self, sql):
        """Rows of a query as lists of strings ('' for NULL)."""
        out = self.srv.sql(sql).strip()
        return [line.split("|") for line in out.splitlines()] if out else []

    def one(self, sql):
        rows = self.q(sql)
        self.assertEqual(len(rows), 1, "%s -> %r" % (sql, rows))
        return rows[0]

    def wait_processed(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.q("SELECT COUNT(*) FROM webhook_events WHERE processed_at IS NULL") == [["0"]]:
                return
            time.sleep(0.05)
        self.fail("webhook events still pending after %ss" % timeout)

    def wait_for(self, sql, want, timeout=10):
        deadline = time.time() + timeout
        rows = None
        while time.time() < deadline:
            rows = self.q(sql)
            if rows == want:
                return
            time.sleep(0.05)
        self.assertEqual(rows, want, sql)

    def outbound(self, wamid, st="sent", wa_id="5511987654321"):
        """An outbound message row as the sending code will leave it."""
        self.post(inbound("wamid.seed-" + uuid.uuid4().hex, "seed", wa_id))
        self.wait_processed()
        contact, conv = self.one(
            "SELECT c.id, v.id FROM contacts c JOIN conversations v ON v.contact_id = c.id"
            " WHERE c.organization_id = '%s' AND c.wa_id = '%s' AND v.status = 'open'"
            % (self.org, wa_id))
        self.srv.sql(
            "INSERT INTO messages (id, organization_id, conversation_id, whatsapp_number_id,"
            " contact_id, direction, type, status, wamid, created_at)"
            " VALUES ('%s', '%s', '%s', '%s', '%s', 'outbound', 'template', '%s', '%s', 1)"
            % (uuid.uuid4(), self.org, conv, self.number["id"], contact, st, wamid))

    # ---- inbound --------------------------------------------------------------

    def test_inbound_text_creates_contact_conversation_message(self):
        self.post(sample("inbound_text.json"))
        self.wait_processed()
        wamid = "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFjNFQjBDNzE2QTg0RDFGNjRGQTVFAA=="
        cid, name, opted = self.one(
            "SELECT id, name, opted_out FROM contacts WHERE organization_id = '%s'"
            " AND wa_id = '5511987654321'" % self.org)
        self.assertEqual(name, "Maria Souza")
        self.assertIn(opted, ("0", "f"))
        conv, st, inbound_at, window, num = self.one(
            "SELECT id, status, last_inbound_at, window_expires_at, whatsapp_number_id"
            " FROM conversations WHERE contact_id = '%s'" % cid)
        self.assertEqual(st, "open")
        self.assertEqual(num, self.number["id"])
        self.assertGreaterEqual(int(inbound_at), 1764410000 * 1000000)
        self.assertEqual(int(window), int(inbound_at) + DAY_US)
        row = self.one("SELECT direction, type, text, status, conversation_id, created_at,"
                       " organization_id FROM messages WHERE wamid = '%s'" % wamid)
        self.assertEqual(row[:5], ["inbound", "text",
                                   "Ol\u00e1! Quero saber do meu pedido \U0001f642",
                                   "received", conv])
        self.assertEqual(int(row[5]), 1764410000 * 1000000)
        self.assertEqual(row[6], self.org)
        ev = self.one("SELECT organization_id, whatsapp_number_id, field, error FROM"
                      " webhook_events WHERE body LIKE '%%%s%%'" % wamid[:40])
        self.assertEqual(ev, [self.org, self.number["id"], "messages", ""])

    def test_same_wamid_ten_times_is_one_message(self):
        body = sample("inbound_image.json")
        for _ in range(10):
            self.post(body)
        self.wait_processed()
        wamid = "wamid.HBgNNTUyMTk5OTk5MDAwMBUCABIYFjNFQjBBQkNERUYwMTIzNDU2Nzg5AA=="
        rows = self.q("SELECT type, text, content FROM messages WHERE wamid = '%s'" % wamid)
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0][:2], ["image", "comprovante"])
        content = json.loads(rows[0][2])
        self.assertEqual(content["id"], "1479537139650973")
        self.assertEqual(content["mime_type"], "image/jpeg")
        self.assertEqual(self.one("SELECT v.unread_count FROM conversations v JOIN contacts c"
                                  " ON c.id = v.contact_id WHERE c.wa_id = '5521999990000'"),
                         ["1"])
        self.assertEqual(self.one("SELECT name FROM contacts WHERE wa_id = '5521999990000'"),
                         ["Jo\u00e3o"])

    def test_button_reply_keeps_reply(self):
        self.post(sample("inbound_button_reply.json"))
        self.wait_processed()
        typ, text, content = self.one(
            "SELECT type, text, content FROM messages WHERE wamid ="
            " 'wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFDNBMDFGRkE2MkY1QzE3MjY4NUQ0AA=='")
        self.assertEqual((typ, text), ("interactive", "Sim, confirmar"))
        self.assertEqual(json.loads(content)["button_reply"]["id"], "confirm_yes")

    # ---- statuses -------------------------------------------------------------

    def test_statuses_out_of_order_end_read_with_all_times(self):
        w = "wamid.ooo-" + uuid.uuid4().hex
        self.outbound(w, "queued")
        for st, ts in (("read", 1764410360), ("delivered", 1764410302), ("sent", 1764410300)):
            self.post(status(w, st, ts))
        self.wait_processed()
        row = self.one("SELECT status, sent_at, delivered_at, read_at FROM messages"
                       " WHERE wamid = '%s'" % w)
        self.assertEqual(row, ["read", "1764410300000000", "1764410302000000",
                               "1764410360000000"])

    def test_samples_sent_delivered_read_then_failed_is_kept_read(self):
        self.outbound(WAMID_OUT, "queued")
        for name in ("status_sent.json", "status_delivered.json", "status_read.json",
                     "status_sent.json", "status_failed.json"):
            self.post(sample(name))
        self.wait_processed()
        row = self.one("SELECT status, pricing_type, pricing_category, pricing_model,"
                       " cost, read_at FROM messages WHERE wamid = '%s'" % WAMID_OUT)
        self.assertEqual(row, ["read", "regular", "marketing", "PMP", "", "1764410360000000"])

    def test_failed_records_error(self):
        w = "wamid.fail-" + uuid.uuid4().hex
        self.outbound(w, "sent")
        self.post(status(w, "failed", 1764410305, errors=[{
            "code": 131026, "title": "Message undeliverable", "message": "Message undeliverable",
            "error_data": {"details": "Message Undeliverable."}}]))
        self.post(status(w, "delivered", 1764410306))  # failed is terminal
        self.wait_processed()
        row = self.one("SELECT status, error_code, error_message, failed_at FROM messages"
                       " WHERE wamid = '%s'" % w)
        self.assertEqual(row, ["failed", "131026", "Message Undeliverable.",
                               "1764410305000000"])

    def test_many_statuses_of_one_post_known_and_unknown(self):
        # One POST, so one processor batch: the statuses' wamids are looked
        # up together (webhook_apply.h, wh_known_fetch) and the updates
        # queued; known and unknown wamids, repeats and an inbound message
        # (whose wamid takes no status) mixed, applied in order.
        known = "wamid.mix-known-" + uuid.uuid4().hex
        unknown = "wamid.mix-unknown-" + uuid.uuid4().hex
        inbound_w = "wamid.mix-in-" + uuid.uuid4().hex
        self.outbound(known, "queued")
        self.post(inbound(inbound_w, "hello", "5511987654321"))
        self.wait_processed()

        def st(w, s, ts):
            return {"id": w, "status": s, "timestamp": str(ts),
                    "recipient_id": "5511987654321"}
        self.post(wrap({"statuses": [
            st(known, "sent", 1764410300), st(unknown, "sent", 1764410301),
            st(known, "read", 1764410310), st(unknown, "delivered", 1764410302),
            st(known, "delivered", 1764410305), st(unknown, "delivered", 1764410302),
            st(inbound_w, "read", 1764410320)]}))
        self.wait_processed()
        self.assertEqual(self.one("SELECT status, sent_at, delivered_at, read_at FROM messages"
                                  " WHERE wamid = '%s'" % known),
                         ["read", "1764410300000000", "1764410305000000", "1764410310000000"])
        self.assertEqual(self.q("SELECT status, status_at FROM pending_statuses"
                                " WHERE wamid = '%s' ORDER BY status" % unknown),
                         [["delivered", "1764410302000000"], ["sent", "1764410301000000"]])
        self.assertEqual(self.q("SELECT COUNT(*) FROM pending_statuses WHERE wamid = '%s'"
                                % known), [["0"]])
        # an inbound message keeps its status
        self.assertEqual(self.one("SELECT status FROM messages WHERE wamid = '%s'" % inbound_w),
                         ["received"])

    def test_status_before_message_is_applied_when_it_appears(self):
        w = "wamid.early-" + uuid.uuid4().hex
        self.post(status(w, "delivered", 1764410302))
        self.post(status(w, "delivered", 1764410302))  # a repeat keeps one row
        self.wait_processed()
        self.assertEqual(self.q("SELECT status, status_at FROM pending_statuses"
                                " WHERE wamid = '%s'" % w), [["delivered", "1764410302000000"]])
        self.outbound(w, "sent")
        self.wait_for("SELECT status, delivered_at FROM messages WHERE wamid = '%s'" % w,
                      [["delivered", "1764410302000000"]])
        self.wait_for("SELECT COUNT(*) FROM pending_statuses WHERE wamid = '%s'" % w, [["0"]])

    def test_pending_statuses_expire_after_seven_days(self):
        """A status kept for a wamid that never appears is deleted by the
        processor's sweep once it is 7 days old; a younger one stays."""
        now_us = int(time.time() * 1e6)
        day = 24 * 3600 * 10**6
        stale, young = ("wamid.stale-" + uuid.uuid4().hex, "wamid.young-" + uuid.uuid4().hex)
        for w, age in ((stale, 8 * day), (young, 6 * day)):
            self.srv.sql("INSERT INTO pending_statuses (wamid, status, organization_id,"
                         " status_at, payload, received_at) VALUES ('%s', 'delivered', NULL,"
                         " 1764410302000000, '{}', %d)" % (w, now_us - age))
        self.wait_for("SELECT COUNT(*) FROM pending_statuses WHERE wamid = '%s'" % stale,
                      [["0"]])
        self.assertEqual(self.q("SELECT COUNT(*) FROM pending_statuses WHERE wamid = '%s'"
                                % young), [["1"]])

    def test_batched_entries_all_applied(self):
        self.post(sample("batched_entries.json"))
        self.wait_processed()
        self.assertEqual(self.one("SELECT text FROM messages WHERE wamid = 'wamid.BATCH3'"),
                         ["oi"])
        self.assertEqual(self.q("SELECT wamid FROM pending_statuses WHERE wamid LIKE"
                                " 'wamid.BATCH%' ORDER BY wamid"),
                         [["wamid.BATCH1"], ["wamid.BATCH2"]])
        self.outbound("wamid.BATCH1", "queued", wa_id="5511911112222")
        self.wait_for("SELECT status, sent_at FROM messages WHERE wamid = 'wamid.BATCH1'",
                      [["sent", "1764410300000000"]])

    # ---- routing --------------------------------------------------------------

    def test_unknown_number_stays_unrouted_and_visible(self):
        body = inbound("wamid.nobody-" + uuid.uuid4().hex, "hi", "5511900000000")
        body = body.replace(PNID.encode(), b"999999999")
        self.post(body)
        self.wait_processed()
        org, err, processed = self.one(
            "SELECT organization_id, error, processed_at FROM webhook_events"
            " WHERE body LIKE '%%999999999%%'")
        self.assertEqual(org, "")
        self.assertEqual(err, "unknown phone_number_id 999999999")
        self.assertNotEqual(processed, "")
        self.assertEqual(self.q("SELECT id FROM contacts WHERE wa_id = '5511900000000'"), [])

    def test_unknown_field_is_stored_not_failed(self):
        self.post(wrap({"entity_type": "WABA"}, field="account_alerts"))
        self.wait_processed()
        field, err = self.one("SELECT field, error FROM webhook_events"
                              " WHERE field = 'account_alerts'")
        self.assertEqual(err, "")

    def test_bad_body_is_marked_and_skipped(self):
        bad = b'{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"statuses":[{"id":"w"}]}}]}]}'
        self.post(bad)
        after = "wamid.after-bad-" + uuid.uuid4().hex
        self.post(inbound(after, "still here", "5511977776666"))
        self.wait_processed()
        err = self.one("SELECT error FROM webhook_events WHERE body = '%s'" % bad.decode())[0]
        self.assertIn("statuses[0]", err)
        self.assertEqual(len(self.q("SELECT id FROM messages WHERE wamid = '%s'" % after)), 1)

    def test_processor_thread_priority(self):
        """The processor thread runs below the HTTP threads: PostgreSQL at
        nice 10; SQLite at nice 19 while it reads and parses (it raises
        itself to 0 for each write transaction, which needs CAP_SYS_NICE:
        without it, nice 0 throughout). Read from /proc while idle."""
        task_dir = "/proc/%d/task" % self.srv.proc.pid

        def processor_nice():
            for tid in os.listdir(task_dir):
                try:
                    with open("%s/%s/comm" % (task_dir, tid)) as f:
                        if f.read().strip() != "pt-wh-process":
                            continue
                    with open("%s/%s/stat" % (task_dir, tid)) as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    return int(fields[16])  # field 19 of stat(5)
                except FileNotFoundError:
                    continue
            return None

        # a few readings: the idle thread's once-a-second sweep is a write
        # transaction (nice 0 for its few milliseconds)
        seen = set()
        for _ in range(10):
            seen.add(processor_nice())
            time.sleep(0.03)
        self.assertNotIn(None, seen, "no pt-wh-process thread")
        if self.srv.engine == "postgresql":
            self.assertEqual(seen, {10})
        elif os.geteuid() == 0:
            self.assertIn(19, seen)
        else:
            self.assertTrue(seen <= {0, 19}, seen)  # 19 only with RLIMIT_NICE granted

    def test_events_past_a_megabyte_wait_for_the_next_batch(self):
        """The processor parses at most 1 MiB of bodies per batch: events
        stored together beyond that are left for the next batch, and every
        one is applied once. (Stored with one INSERT, as a burst of big
        bodies would be, so a single batch reads them all.)"""
        tag = uuid.uuid4().hex
        wamids = ["wamid.big-%s-%d" % (tag, i) for i in range(4)]
        pad_sql = ("repeat('x', 700000)" if self.srv.engine == "postgresql"
                   else "replace(hex(zeroblob(350000)), '0', 'x')")
        rows = []
        for i, w in enumerate(wamids):
            body = inbound(w, "big %d" % i, "55119888800%02d" % i).decode()
            # an unknown field holds the padding (Meta adds fields freely)
            head, tail = body.split('"messaging_product"', 1)
            pad = pad_sql if i < 3 else "''"
            rows.append("(%d, 'app', '%s\"x_padding\":\"' || %s || '\",\"messaging_product\"%s')"
                        % (int(time.time() * 1e6), head.replace("'", "''"), pad,
                           tail.replace("'", "''")))
        self.srv.sql("INSERT INTO webhook_events (received_at, source, body) VALUES "
                     + ", ".join(rows))
        self.wait_processed()
        got = self.q("SELECT wamid FROM messages WHERE wamid LIKE 'wamid.big-%s-%%'"
                     " ORDER BY wamid" % tag)
        self.assertEqual([r[0] for r in got], wamids)
        errors = self.q("SELECT COALESCE(error, 'none') FROM webhook_events"
                        " WHERE body LIKE '%%big-%s-%%'" % tag)
        self.assertEqual(errors, [["none"]] * 4)

    # ---- templates and numbers -----------------------------------------------

    def test_template_events_update_rows(self):
        t1 = tenancy.make_template(self.srv, self.a, self.number["id"], name="order_update",
                                   language="pt_BR")
        t2 = tenancy.make_template(self.srv, self.a, self.number["id"],
                                   name="promo_black_friday", language="pt_BR")
        self.post(sample("template_status_approved.json"))
        self.post(sample("template_status_rejected.json"))
        self.wait_processed()
        self.assertEqual(self.one("SELECT status, meta_template_id, rejected_reason FROM"
                                  " templates WHERE id = '%s'" % t1["id"]),
                         ["APPROVED", "1689556908129832", ""])
        self.assertEqual(self.one("SELECT status, meta_template_id, rejected_reason FROM"
                                  " templates WHERE id = '%s'" % t2["id"]),
                         ["REJECTED", "1689556908129833", "INVALID_FORMAT"])
        self.post(sample("template_quality_update.json"))
        self.post(sample("template_category_update.json"))
        self.wait_processed()
        self.assertEqual(self.one("SELECT quality_score, category FROM templates"
                                  " WHERE id = '%s'" % t1["id"]), ["YELLOW", "MARKETING"])
        r = self.srv.request("GET", "/api/v1/templates/" + t1["id"],
                             headers=bearer(self.a["users"]["org_admin"]["token"]))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "APPROVED")
        ev = self.q("SELECT organization_id FROM webhook_events"
                    " WHERE field = 'message_template_status_update'")
        self.assertTrue(ev and all(e == [self.org] for e in ev), ev)

    def test_phone_number_quality_update(self):
        self.post(sample("phone_number_quality_update.json"))
        self.wait_processed()
        self.assertEqual(self.one("SELECT throughput_mps, messaging_limit_tier FROM"
                                  " whatsapp_numbers WHERE id = '%s'" % self.number["id"]),
                         ["1000", "TIER_UNLIMITED"])
        self.post(wrap({"display_phone_number": "15550783881", "event": "FLAGGED",
                        "current_limit": "TIER_1K"}, field="phone_number_quality_update"))
        self.wait_processed()
        r = self.srv.request("GET", "/api/v1/whatsapp-numbers/" + self.number["id"],
                             headers=bearer(self.a["users"]["org_admin"]["token"]))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["quality_rating"], "FLAGGED")
        self.assertEqual(r.json()["messaging_limit_tier"], "TIER_1K")
        self.assertEqual(r.json()["throughput_mps"], 1000)

    # ---- opt-out --------------------------------------------------------------

    def test_opt_out_keyword_and_user_preferences(self):
        self.post(inbound("wamid.stop-" + uuid.uuid4().hex, "  sTOp \n", "5511955554444"))
        self.post(inbound("wamid.nostop-" + uuid.uuid4().hex, "stop please", "5511955553333"))
        self.wait_processed()
        cid, opted, at = self.one("SELECT id, opted_out, opted_out_at FROM contacts"
                                  " WHERE wa_id = '5511955554444'")
        self.assertIn(opted, ("1", "t"))
        self.assertNotEqual(at, "")
        self.assertIn(self.one("SELECT opted_out FROM contacts WHERE wa_id = '5511955553333'")[0],
                      ("0", "f"))
        user, action = self.one("SELECT user_id, action FROM audit_logs WHERE record_id = '%s'"
                                % cid)
        self.assertEqual((user, action), ("", "opt_out"))
        self.post(wrap({"contacts": [{"profile": {"name": "Pref"}, "wa_id": "5511955552222"}],
                        "user_preferences": [{"wa_id": "5511955552222", "category":
                                              "marketing_messages", "value": "stop",
                                              "timestamp": 1764410700}]},
                       field="user_preferences"))
        self.wait_processed()
        cid2, opted2 = self.one("SELECT id, opted_out FROM contacts"
                                " WHERE wa_id = '5511955552222'")
        self.assertIn(opted2, ("1", "t"))
        self.assertEqual(self.one("SELECT action FROM audit_logs WHERE record_id = '%s'" % cid2),
                         ["opt_out"])

    # ---- metrics --------------------------------------------------------------

    def metric_value(self, text, name):
        """The value of an unlabelled sample, 0 when absent."""
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0

    def test_processing_metrics(self):
        before = self.srv.request("GET", "/metrics").body.decode()
        self.post(status("wamid.metric-" + uuid.uuid4().hex, "sent", 1764410300))
        self.wait_processed()
        time.sleep(1.2)  # the queue-depth gauge refreshes every second
        r = self.srv.request("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        text = r.body.decode()
        # the event moved the counter and the lag histogram
        for name in ("pytake_webhook_events_processed_total",
                     "pytake_webhook_processing_lag_seconds_count"):
            self.assertGreaterEqual(self.metric_value(text, name),
                                    self.metric_value(before, name) + 1, name)
        for name in ("pytake_webhook_events_processed_total",
                     "pytake_webhook_events_failed_total",
                     "pytake_webhook_processing_lag_seconds_count",
                     "pytake_webhook_processing_lag_milliseconds",
                     "pytake_webhook_queue_depth"):
            self.assertIn(name, text)
        processed = [l for l in text.splitlines()
                     if l.startswith("pytake_webhook_events_processed_total ")]
        self.assertTrue(processed and int(processed[0].split()[1]) >= 1, processed)


if __name__ == "__main__":
    unittest.main()


class WebhookCrashProcessTest(unittest.TestCase):
    """kill -9 during a burst of inbound messages, restart: every event
    acknowledged with 200 is processed exactly once — one message per
    wamid, and each conversation's unread_count equals its number of
    inbound messages (a second application would bump it again)."""

    THREADS = 4

    def _burst(self, port, tid, acked, stop):
        import http.client
        conn = None
        i = 0
        while not stop.is_set():
            wamid = "wamid.KILL-%d-%d" % (tid, i)
            # a handful of customers, so conversations see many messages
            wa_id = "55119876543%02d" % (i % 5 + tid * 5)
            i += 1
            body = inbound(wamid, "hello %d" % i, wa_id, ts=1764410000 + i)
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", "/webhooks/meta", body=body,
                             headers={"X-Hub-Signature-256": sign(body),
                                      "Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    acked.append(wamid)
            except (OSError, http.client.HTTPException):
                conn = None
                if stop.is_set():
                    break
                time.sleep(0.01)
        if conn is not None:
            conn.close()

    def test_kill_minus_nine_then_processed_exactly_once(self):
        import signal
        import threading
        srv = Server(env={"META_APP_SECRET": APP_SECRET})
        try:
            srv.start()
            su = bootstrap_super_admin(srv)
            a = make_tenant(srv, su["token"], "killa")
            tenancy.make_number(srv, a, phone_number_id=PNID, waba_id=WABA,
                                display_phone_number="+1 555 078 3881")
            acked, stop = [], threading.Event()
            threads = [threading.Thread(target=self._burst, args=(srv.port, t, acked, stop))
                       for t in range(self.THREADS)]
            for t in threads:
                t.start()
            deadline = time.monotonic() + 15
            while len(acked) < 400 and time.monotonic() < deadline:
                time.sleep(0.02)
            srv.proc.send_signal(signal.SIGKILL)
            srv.proc.wait()
            stop.set()
            for t in threads:
                t.join()
            srv.proc = None
            self.assertGreater(len(acked), 100, "the burst did not get going")
            srv.start()
            deadline = time.time() + 60
            while time.time() < deadline:
                left = srv.sql("SELECT COUNT(*) FROM webhook_events"
                               " WHERE processed_at IS NULL").strip()
                if left == "0":
                    break
                time.sleep(0.1)
            self.assertEqual(left, "0", "events still unprocessed after restart")
            rows = srv.sql("SELECT wamid, COUNT(*) FROM messages"
                           " WHERE wamid LIKE 'wamid.KILL-%' GROUP BY wamid").split()
            counts = dict(r.split("|") for r in rows)
            missing = [w for w in acked if w not in counts]
            self.assertEqual(missing, [], "%d acknowledged messages never applied"
                             % len(missing))
            self.assertEqual([w for w, n in counts.items() if n != "1"], [])
            bad = srv.sql(
                "SELECT v.id, v.unread_count, COUNT(m.id) FROM conversations v"
                " JOIN messages m ON m.conversation_id = v.id AND m.direction = 'inbound'"
                " GROUP BY v.id, v.unread_count HAVING v.unread_count <> COUNT(m.id)").strip()
            self.assertEqual(bad, "", "a conversation counted a message twice")
        finally:
            srv.close()
