"""WhatsApp numbers API: CRUD, paging, validation, installation-wide
uniqueness of phone_number_id, write-only credentials (absent from every
answer, the server log, the audit log and the database bytes; sealed with a
fresh nonce per value), soft delete, audit rows, cross-tenant 404s and the
role matrix. Runs on both engines."""

import base64
import os
import re
import secrets
import unittest

from harness import Server, bearer, bootstrap_super_admin, make_tenant
import tenancy

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NUMBER_FIELDS = {"id", "phone_number_id", "waba_id", "display_phone_number",
                 "throughput_mps", "quality_rating", "messaging_limit_tier",
                 "webhook_path", "created_at", "updated_at", "has_app_secret",
                 "has_verify_token"}


def secret(label):
    """A recognisable secret value that appears nowhere by chance."""
    return "%s-%s" % (label, secrets.token_hex(20))


class NumbersTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        cls.answers = []       # every response body this class saw
        cls.secrets = []       # every credential it sent
        cls.seq = 0
        try:
            cls.srv.start()
            cls.su = bootstrap_super_admin(cls.srv)
            cls.a = make_tenant(cls.srv, cls.su["token"], "alpha")
            cls.b = make_tenant(cls.srv, cls.su["token"], "beta")
        except Exception:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    # ---- helpers ----------------------------------------------------------

    def call(self, method, path, body=None, tenant=None, role="org_admin"):
        token = (tenant or self.a)["users"][role]["token"]
        r = self.srv.request(method, path, body, headers=bearer(token))
        type(self).answers.append(r.text)
        return r

    def new_pnid(self):
        type(self).seq += 1
        return "10%d%05d" % (os.getpid() % 100000, self.seq)

    def body(self, **fields):
        tok, app, ver = secret("TOKEN"), secret("APPSECRET"), secret("VERIFY")
        type(self).secrets.extend([tok, app, ver])
        b = {"phone_number_id": self.new_pnid(), "waba_id": "220011",
             "display_phone_number": "+1 555-010-%04d" % self.seq,
             "access_token": tok, "app_secret": app, "verify_token": ver}
        b.update(fields)
        return b

    def create(self, tenant=None, **fields):
        r = self.call("POST", "/api/v1/whatsapp-numbers", self.body(**fields), tenant)
        self.assertEqual(r.status, 201, r)
        return r.json()

    def assert_422(self, r, field):
        self.assertEqual(r.status, 422, r)
        err = r.json()["error"]
        self.assertEqual(err["code"], "validation_error")
        self.assertIn(field, [d["field"] for d in err["details"]], err)

    def db_bytes(self):
        """Everything the database holds, as bytes."""
        if self.srv.engine == "sqlite":
            out = b""
            for suffix in ("", "-wal", "-journal"):
                p = self.srv.db_path + suffix
                if os.path.exists(p):
                    with open(p, "rb") as f:
                        out += f.read()
            self.assertGreater(len(out), 0)
            return out
        # PostgreSQL: every row of every table of this server's database
        tables = self.srv.sql("SELECT table_name FROM information_schema.tables "
                              "WHERE table_schema = current_schema() "
                              "AND table_type = 'BASE TABLE'").split()
        self.assertIn("whatsapp_numbers", tables)
        self.assertIn("audit_logs", tables)
        text = ""
        for table in tables:
            text += self.srv.sql('COPY (SELECT * FROM "%s") TO STDOUT' % table)
        return text.encode()

    # ---- create / read ----------------------------------------------------

    def test_create_answers_201_with_location_and_no_secret(self):
        b = self.body(throughput_mps=250)
        r = self.call("POST", "/api/v1/whatsapp-numbers", b)
        self.assertEqual(r.status, 201, r)
        n = r.json()
        self.assertEqual(set(n), NUMBER_FIELDS)
        self.assertRegex(n["id"], UUID_RE)
        self.assertEqual(n["phone_number_id"], b["phone_number_id"])
        self.assertEqual(n["waba_id"], "220011")
        self.assertEqual(n["display_phone_number"], b["display_phone_number"])
        self.assertEqual(n["throughput_mps"], 250)
        self.assertIsNone(n["quality_rating"])
        self.assertIsNone(n["messaging_limit_tier"])
        self.assertTrue(n["has_app_secret"])
        self.assertTrue(n["has_verify_token"])
        self.assertTrue(n["created_at"].endswith("Z"))
        # webhook_path: URL-safe, >= 128 bits of randomness
        self.assertRegex(n["webhook_path"], r"^[A-Za-z0-9_-]{22,}$")
        self.assertEqual(r.headers["Location"], "/api/v1/whatsapp-numbers/" + n["id"])
        for s in (b["access_token"], b["app_secret"], b["verify_token"]):
            self.assertNotIn(s, r.text)
        self.assertNotIn("access_token", r.text)
        g = self.call("GET", r.headers["Location"], role="viewer")
        self.assertEqual(g.status, 200, g)
        self.assertEqual(g.json(), n)
        g = self.call("GET", "/api/v1/whatsapp-numbers/" + n["id"].upper())
        self.assertEqual(g.status, 200, g)

    def test_defaults_and_optional_secrets(self):
        b = self.body()
        del b["app_secret"], b["verify_token"]
        r = self.call("POST", "/api/v1/whatsapp-numbers", b)
        self.assertEqual(r.status, 201, r)
        n = r.json()
        self.assertEqual(n["throughput_mps"], 80)
        self.assertFalse(n["has_app_secret"])
        self.assertFalse(n["has_verify_token"])

    def test_webhook_paths_are_unique_and_random(self):
        paths = {self.create()["webhook_path"] for _ in range(5)}
        self.assertEqual(len(paths), 5)
        for p in paths:
            raw = base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))
            self.assertGreaterEqual(len(raw) * 8, 128)

    def test_validation(self):
        ok = self.body()
        long_tok = "x" * 4097
        cases = [
            ({k: v for k, v in ok.items() if k != "phone_number_id"}, 422, "phone_number_id"),
            (dict(ok, phone_number_id="12a4"), 422, "phone_number_id"),
            (dict(ok, phone_number_id=""), 422, "phone_number_id"),
            (dict(ok, phone_number_id="1" * 33), 422, "phone_number_id"),
            (dict(ok, phone_number_id=12345), 400, "phone_number_id"),
            ({k: v for k, v in ok.items() if k != "waba_id"}, 422, "waba_id"),
            (dict(ok, waba_id="-1"), 422, "waba_id"),
            ({k: v for k, v in ok.items() if k != "display_phone_number"}, 422, "display_phone_number"),
            (dict(ok, display_phone_number="call me"), 422, "display_phone_number"),
            (dict(ok, display_phone_number="+1"), 422, "display_phone_number"),
            (dict(ok, display_phone_number="1" * 40), 422, "display_phone_number"),
            ({k: v for k, v in ok.items() if k != "access_token"}, 422, "access_token"),
            (dict(ok, access_token=""), 422, "access_token"),
            (dict(ok, access_token="has space"), 422, "access_token"),
            (dict(ok, access_token=long_tok), 422, "access_token"),
            (dict(ok, access_token=["x"]), 400, "access_token"),
            (dict(ok, app_secret="a b"), 422, "app_secret"),
            (dict(ok, app_secret=5), 400, "app_secret"),
            (dict(ok, verify_token="tab\there"), 422, "verify_token"),
            (dict(ok, throughput_mps=0), 422, "throughput_mps"),
            (dict(ok, throughput_mps=1001), 422, "throughput_mps"),
            (dict(ok, throughput_mps="80"), 400, "throughput_mps"),
            (dict(ok, throughput_mps=1.5), 400, "throughput_mps"),
        ]
        for body, status, field in cases:
            with self.subTest(field=field, status=status):
                r = self.call("POST", "/api/v1/whatsapp-numbers", body)
                self.assertEqual(r.status, status, r)
                self.assertIn(field, [d["field"] for d in r.json()["error"]["details"]])
                for s in (ok["access_token"], ok["app_secret"], ok["verify_token"]):
                    self.assertNotIn(s, r.text)
        r = self.call("POST", "/api/v1/whatsapp-numbers", None)
        self.assertEqual(r.status, 400, r)
        # nothing was created by the failed attempts
        r = self.call("GET", "/api/v1/whatsapp-numbers?limit=200")
        self.assertNotIn(ok["phone_number_id"], r.text)

    def test_duplicate_phone_number_id_is_409_across_orgs(self):
        n = self.create()
        for tenant in (self.a, self.b):
            with self.subTest(tenant=tenant["slug"]):
                r = self.call("POST", "/api/v1/whatsapp-numbers",
                              self.body(phone_number_id=n["phone_number_id"]), tenant)
                self.assertEqual(r.status, 409, r)
                self.assertEqual(r.json()["error"]["code"], "conflict")
                self.assertNotIn(n["id"], r.text)
        # after a delete the number may be connected again (by another org)
        self.assertEqual(self.call("DELETE", "/api/v1/whatsapp-numbers/" + n["id"]).status, 204)
        again = self.create(self.b, phone_number_id=n["phone_number_id"])
        self.assertNotEqual(again["id"], n["id"])
        self.assertNotEqual(again["webhook_path"], n["webhook_path"])

    # ---- list -------------------------------------------------------------

    def test_list_pages_newest_first(self):
        t = make_tenant(self.srv, self.su["token"], "pager", roles=("viewer",))
        made = [self.create(t)["id"] for _ in range(5)]
        seen, cursor, pages = [], None, 0
        while True:
            path = "/api/v1/whatsapp-numbers?limit=2" + ("&cursor=" + cursor if cursor else "")
            r = self.call("GET", path, tenant=t, role="viewer")
            self.assertEqual(r.status, 200, r)
            page = r.json()
            self.assertLessEqual(len(page["items"]), 2)
            for item in page["items"]:
                self.assertEqual(set(item), NUMBER_FIELDS)
            seen += [i["id"] for i in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        self.assertEqual(seen, list(reversed(made)))
        self.assertEqual(pages, 3)
        r = self.call("GET", "/api/v1/whatsapp-numbers?limit=0", tenant=t)
        self.assert_422(r, "limit")
        r = self.call("GET", "/api/v1/whatsapp-numbers?cursor=garbage", tenant=t)
        self.assert_422(r, "cursor")

    def test_lists_do_not_leak(self):
        mine = self.create(self.a)["id"]
        r = self.call("GET", "/api/v1/whatsapp-numbers?limit=200", tenant=self.b)
        self.assertEqual(r.status, 200)
        self.assertNotIn(mine, r.text)

    # ---- patch ------------------------------------------------------------

    def test_patch_changes_display_mps_and_rotates_secrets(self):
        n = self.create()
        path = "/api/v1/whatsapp-numbers/" + n["id"]
        new_tok, new_app = secret("ROTATED"), secret("ROTATEDAPP")
        type(self).secrets.extend([new_tok, new_app])
        r = self.call("PATCH", path, {"display_phone_number": "+44 20 7946 0000",
                                      "throughput_mps": 1000, "access_token": new_tok,
                                      "app_secret": new_app, "verify_token": None})
        self.assertEqual(r.status, 200, r)
        p = r.json()
        self.assertEqual(p["display_phone_number"], "+44 20 7946 0000")
        self.assertEqual(p["throughput_mps"], 1000)
        self.assertTrue(p["has_app_secret"])
        self.assertFalse(p["has_verify_token"])
        self.assertEqual(p["phone_number_id"], n["phone_number_id"])
        self.assertEqual(p["webhook_path"], n["webhook_path"])
        self.assertNotIn(new_tok, r.text)
        self.assertEqual(self.call("GET", path).json(), p)
        # the sealed access token changed in the store
        r = self.call("PATCH", path, {"app_secret": None})
        self.assertFalse(r.json()["has_app_secret"])
        # empty patch: 200, nothing changes
        r = self.call("PATCH", path, {})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["display_phone_number"], "+44 20 7946 0000")

    def test_patch_validation(self):
        n = self.create()
        path = "/api/v1/whatsapp-numbers/" + n["id"]
        cases = [
            ({"access_token": None}, 422, "access_token"),
            ({"access_token": "two words"}, 422, "access_token"),
            ({"throughput_mps": 0}, 422, "throughput_mps"),
            ({"throughput_mps": "fast"}, 400, "throughput_mps"),
            ({"display_phone_number": "abc"}, 422, "display_phone_number"),
            ({"app_secret": ""}, 422, "app_secret"),
            ({"phone_number_id": "999"}, 422, "phone_number_id"),
            ({"waba_id": "999"}, 422, "phone_number_id"),
        ]
        for body, status, field in cases:
            with self.subTest(body=body):
                r = self.call("PATCH", path, body)
                self.assertEqual(r.status, status, r)
                self.assertIn(field, [d["field"] for d in r.json()["error"]["details"]])
        self.assertEqual(self.call("GET", path).json(), n)
        # sending the current immutable values back is fine
        r = self.call("PATCH", path, {"phone_number_id": n["phone_number_id"],
                                      "waba_id": n["waba_id"]})
        self.assertEqual(r.status, 200, r)

    # ---- delete -----------------------------------------------------------

    def test_delete_is_soft_and_scrubs_credentials(self):
        n = self.create()
        path = "/api/v1/whatsapp-numbers/" + n["id"]
        r = self.call("DELETE", path)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.text, "")
        for method, body in (("GET", None), ("PATCH", {}), ("DELETE", None)):
            with self.subTest(method=method):
                r = self.call(method, path, body)
                self.assertEqual(r.status, 404, r)
                self.assertEqual(r.json()["error"]["code"], "not_found")
        self.assertNotIn(n["id"], self.call("GET", "/api/v1/whatsapp-numbers?limit=200").text)
        row = self.srv.sql("SELECT access_token_enc, COALESCE(app_secret_enc, 'NULL'), "
                           "COALESCE(verify_token_enc, 'NULL'), deleted_at IS NOT NULL "
                           "FROM whatsapp_numbers WHERE id = '%s'" % n["id"]).strip()
        cols = row.split("|")
        self.assertEqual(cols[:3], ["", "NULL", "NULL"], row)
        self.assertIn(cols[3], ("1", "t"))

    # ---- secrets at rest ----------------------------------------------------

    def test_credentials_sealed_with_fresh_nonce(self):
        same = secret("SAMETOKEN")
        type(self).secrets.append(same)
        n1 = self.create(access_token=same)
        n2 = self.create(access_token=same)
        rows = self.srv.sql("SELECT id, access_token_enc FROM whatsapp_numbers "
                            "WHERE id IN ('%s', '%s')" % (n1["id"], n2["id"])).split()
        sealed = dict(line.split("|", 1) for line in rows)
        self.assertEqual(len(sealed), 2)
        self.assertNotEqual(sealed[n1["id"]], sealed[n2["id"]])
        for v in sealed.values():
            raw = base64.b64decode(v, validate=True)
            # version byte, 12-byte nonce, ciphertext, 16-byte tag
            self.assertEqual(raw[0], 1)
            self.assertEqual(len(raw), 1 + 12 + len(same) + 16)
            self.assertNotIn(same.encode(), raw)

    def test_secrets_absent_from_answers_logs_audit_and_database(self):
        # run a full life cycle so every path has touched the secrets
        n = self.create()
        path = "/api/v1/whatsapp-numbers/" + n["id"]
        rot = secret("LIFECYCLE")
        type(self).secrets.append(rot)
        self.assertEqual(self.call("PATCH", path, {"access_token": rot,
                                                   "verify_token": rot + "v"}).status, 200)
        type(self).secrets.append(rot + "v")
        self.call("GET", "/api/v1/whatsapp-numbers?limit=200")
        audit = self.call("GET", "/api/v1/audit-logs?table_name=whatsapp_numbers&limit=200")
        self.assertEqual(audit.status, 200, audit)
        self.assertGreater(len(self.secrets), 5)
        data = self.db_bytes()
        log = self.srv.log_text()
        # positive controls: the scans do see what the server stored / logged
        self.assertIn(n["phone_number_id"].encode(), data)
        self.assertIn(n["id"], log)
        for s in self.secrets:
            with self.subTest(secret=s[:12]):
                for text in self.answers:
                    self.assertNotIn(s, text)
                self.assertNotIn(s, log)
                self.assertNotIn(s.encode(), data)
                self.assertNotIn(base64.b64encode(s.encode()), data)

    # ---- audit ------------------------------------------------------------

    def test_audit_rows_record_changes_without_secrets(self):
        n = self.create()
        path = "/api/v1/whatsapp-numbers/" + n["id"]
        tok = secret("AUDITTOKEN")
        type(self).secrets.append(tok)
        self.call("PATCH", path, {"throughput_mps": 5, "access_token": tok, "app_secret": None})
        self.call("DELETE", path)
        r = self.call("GET", "/api/v1/audit-logs?table_name=whatsapp_numbers"
                      "&record_id=%s&limit=200" % n["id"])
        self.assertEqual(r.status, 200, r)
        rows = {e["action"]: e for e in r.json()["items"]}
        self.assertEqual(set(rows), {"create", "update", "delete"})
        create = rows["create"]["changes"]
        self.assertEqual(create["phone_number_id"], [None, n["phone_number_id"]])
        self.assertEqual(create["throughput_mps"], [None, 80])
        self.assertEqual(create["credentials"],
                         [None, {"access_token": "set", "app_secret": "set",
                                 "verify_token": "set"}])
        update = rows["update"]["changes"]
        self.assertEqual(update["throughput_mps"], [80, 5])
        self.assertEqual(update["credentials"],
                         [None, {"access_token": "rotated", "app_secret": "removed"}])
        delete = rows["delete"]["changes"]
        self.assertEqual(delete["phone_number_id"], [n["phone_number_id"], None])
        self.assertEqual(rows["update"]["user_id"], self.a["users"]["org_admin"]["id"])
        self.assertNotIn(tok, r.text)

    # ---- isolation and roles ----------------------------------------------

    def test_cross_tenant_ids_are_404(self):
        tenancy.check_cross_tenant(self, self.srv, self.a, self.b)
        tenancy.check_cross_tenant(self, self.srv, self.b, self.a)

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


class NumbersWithGraphTest(unittest.TestCase):
    """The sealed access token end to end, through template submit against
    the fake Graph server: it decrypts to exactly what was sent, a tampered
    ciphertext is a clear 500 (no crash, nothing sent to Meta), and a
    rotation through PATCH takes effect at once."""

    @classmethod
    def setUpClass(cls):
        import test_templates  # module import: its TestCase is not re-collected
        cls.tt = test_templates
        cls.fake = test_templates.FakeGraph()
        cls.srv = None
        try:
            cls.srv = Server(env={"GRAPH_API_BASE_URL": cls.fake.base_url})
            cls.srv.start()
            cls.su = bootstrap_super_admin(cls.srv)
            cls.a = make_tenant(cls.srv, cls.su["token"], "alpha", roles=())
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

    def call(self, method, path, body=None):
        return self.srv.request(method, path, body,
                                headers=bearer(self.a["users"]["org_admin"]["token"]))

    def submit_new_template(self, number_id, name):
        r = self.call("POST", "/api/v1/templates", {
            "whatsapp_number_id": number_id, "name": name, "language": "en_US",
            "category": "UTILITY", "components": self.tt.COMPONENTS})
        self.assertEqual(r.status, 201, r)
        return self.call("POST", "/api/v1/templates/%s/submit" % r.json()["id"])

    def test_token_decrypts_tamper_is_clear_error_and_rotation_works(self):
        token = secret("EAAGgraph")
        r = self.call("POST", "/api/v1/whatsapp-numbers", {
            "phone_number_id": "4400%d" % os.getpid(), "waba_id": "4401%d" % os.getpid(),
            "display_phone_number": "+1 555 0199", "access_token": token})
        self.assertEqual(r.status, 201, r)
        n = r.json()
        self.fake.reset()
        r = self.submit_new_template(n["id"], "first_one")
        self.assertEqual(r.status, 200, r)
        calls = self.fake.calls("POST")
        self.assertEqual(len(calls), 1, calls)
        self.assertEqual(calls[0]["headers"].get("Authorization"), "Bearer " + token)

        # flip one character of the sealed token in the database
        sealed = self.srv.sql("SELECT access_token_enc FROM whatsapp_numbers WHERE id = '%s'"
                              % n["id"]).strip()
        pos = len(sealed) // 2
        bad = sealed[:pos] + ("A" if sealed[pos] != "A" else "B") + sealed[pos + 1:]
        self.srv.sql("UPDATE whatsapp_numbers SET access_token_enc = '%s' WHERE id = '%s'"
                     % (bad, n["id"]))
        self.fake.reset()
        r = self.submit_new_template(n["id"], "second_one")
        self.assertEqual(r.status, 500, r)
        self.assertEqual(r.json()["error"]["code"], "internal_error")
        self.assertIn("decrypt", r.json()["error"]["message"])
        self.assertEqual(self.fake.calls(), [])
        self.assertTrue(self.srv.running())
        self.assertEqual(self.srv.request("GET", "/health").status, 200)
        self.assertEqual(self.call("GET", "/api/v1/whatsapp-numbers/" + n["id"]).status, 200)

        # a rotation repairs it and the new token is what Meta sees
        new_token = secret("EAAGrotated")
        r = self.call("PATCH", "/api/v1/whatsapp-numbers/" + n["id"], {"access_token": new_token})
        self.assertEqual(r.status, 200, r)
        r = self.submit_new_template(n["id"], "third_one")
        self.assertEqual(r.status, 200, r)
        calls = self.fake.calls("POST")
        self.assertEqual(calls[-1]["headers"].get("Authorization"), "Bearer " + new_token)
        for s_ in (token, new_token):
            self.assertNotIn(s_, self.srv.log_text())


if __name__ == "__main__":
    unittest.main()
