"""Audit log: rows for user create/update/deactivate with {field: [old,
new]}, no secrets, the request id and ip; logins; the row and its change
commit together (a refused audit insert undoes the change); filters,
cursor paging, validation, tenant isolation. Runs on both engines."""

import time
import unittest

from harness import Server, bearer, bootstrap_super_admin, make_tenant

ITEM_FIELDS = {"id", "created_at", "user_id", "action", "table_name", "record_id",
               "changes", "ip", "request_id"}
SECRET = "Very-Secret-Pass-987"


class AuditTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        try:
            cls.srv.start()
            cls.su = bootstrap_super_admin(cls.srv)
            cls.a = make_tenant(cls.srv, cls.su["token"], "aud")
            cls.b = make_tenant(cls.srv, cls.su["token"], "other", roles=())
        except Exception:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def hdr(self, tenant=None):
        return bearer((tenant or self.a)["users"]["org_admin"]["token"])

    def logs(self, query="", tenant=None):
        r = self.srv.request("GET", "/api/v1/audit-logs" + query, headers=self.hdr(tenant))
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_user_lifecycle_rows(self):
        admin_id = self.a["users"]["org_admin"]["id"]
        c = self.srv.request("POST", "/api/v1/users", {
            "email": "audited@aud.test", "password": SECRET, "full_name": "Aud Ited",
            "role": "viewer"}, headers=self.hdr())
        self.assertEqual(c.status, 201, c)
        uid = c.json()["id"]
        p = self.srv.request("PATCH", "/api/v1/users/" + uid,
                             {"full_name": "Aud Two", "role": "agent", "password": SECRET + "x"},
                             headers=self.hdr())
        self.assertEqual(p.status, 200, p)
        d = self.srv.request("DELETE", "/api/v1/users/" + uid, headers=self.hdr())
        self.assertEqual(d.status, 204)

        rows = self.logs("?record_id=" + uid)["items"]
        self.assertEqual([x["action"] for x in rows],
                         ["delete", "password_change", "update", "create"])
        for x in rows:
            self.assertEqual(set(x), ITEM_FIELDS)
            self.assertEqual((x["user_id"], x["table_name"], x["record_id"]),
                             (admin_id, "users", uid))
            self.assertEqual(x["ip"], "127.0.0.1")
        by = {x["action"]: x for x in rows}
        self.assertEqual(by["create"]["changes"], {
            "email": [None, "audited@aud.test"], "full_name": [None, "Aud Ited"],
            "role": [None, "viewer"], "is_active": [None, True]})
        self.assertEqual(by["update"]["changes"], {
            "full_name": ["Aud Ited", "Aud Two"], "role": ["viewer", "agent"]})
        self.assertEqual(by["password_change"]["changes"], {})
        self.assertEqual(by["delete"]["changes"], {"is_active": [True, False]})
        self.assertEqual(by["create"]["request_id"], c.headers["X-Request-Id"])
        self.assertEqual(by["update"]["request_id"], p.headers["X-Request-Id"])
        self.assertEqual(by["delete"]["request_id"], d.headers["X-Request-Id"])
        # no secret anywhere: not in the answers, not in the table
        everything = self.logs("?limit=200")
        self.assertNotIn(SECRET, str(everything))
        self.assertNotIn("argon2", str(everything))
        dump = self.srv.sql("SELECT changes FROM audit_logs")
        self.assertNotIn(SECRET, dump)
        self.assertNotIn("password", dump)

    def test_client_request_id_is_recorded(self):
        r = self.srv.request("PATCH", "/api/v1/organizations/me", {"name": "Aud Org"},
                             headers=dict(self.hdr(), **{"X-Request-Id": "client-req-4711"}))
        self.assertEqual(r.status, 200, r)
        rid = r.headers["X-Request-Id"]
        row = self.logs("?table_name=organizations&action=update")["items"][0]
        self.assertEqual(row["request_id"], rid)
        self.assertEqual(row["changes"]["name"][1], "Aud Org")

    def test_failed_write_leaves_no_row(self):
        before = len(self.logs("?limit=200&table_name=users&action=create")["items"])
        r = self.srv.request("POST", "/api/v1/users", {
            "email": self.a["users"]["agent"]["email"], "password": "password-123",
            "full_name": "Dup", "role": "agent"}, headers=self.hdr())
        self.assertEqual(r.status, 409)
        after = len(self.logs("?limit=200&table_name=users&action=create")["items"])
        self.assertEqual(before, after)

    def refuse_audit_rows(self, org_id):
        """A trigger that makes every audit insert of org_id fail; returns
        the SQL that removes it again."""
        if self.srv.engine == "postgresql":
            self.srv.sql("CREATE OR REPLACE FUNCTION audit_refuse() RETURNS trigger "
                         "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$")
            self.srv.sql("CREATE TRIGGER audit_refuse BEFORE INSERT ON audit_logs FOR EACH ROW "
                         "WHEN (NEW.organization_id = '%s') EXECUTE FUNCTION audit_refuse()" % org_id)
            return "DROP TRIGGER audit_refuse ON audit_logs"
        self.srv.sql("CREATE TRIGGER audit_refuse BEFORE INSERT ON audit_logs "
                     "WHEN NEW.organization_id = '%s' "
                     "BEGIN SELECT RAISE(ABORT, 'audit refused'); END" % org_id)
        return "DROP TRIGGER audit_refuse"

    def test_change_and_audit_row_commit_together(self):
        """When the audit row cannot be written, the change it records is
        rolled back too (one transaction), for writes and for logins."""
        t = make_tenant(self.srv, self.su["token"], "atomic", roles=("agent",))
        hdr = self.hdr(t)
        agent = t["users"]["agent"]
        before_user = self.srv.request("GET", "/api/v1/users/" + agent["id"], headers=hdr).json()
        before_org = self.srv.request("GET", "/api/v1/organizations/me", headers=hdr).json()
        sessions = self.srv.sql("SELECT COUNT(*) FROM refresh_tokens WHERE user_id = '%s'"
                                % agent["id"]).strip()
        undo = self.refuse_audit_rows(t["org_id"])
        try:
            writes = [
                ("PATCH", "/api/v1/users/" + agent["id"], {"full_name": "Never Saved"}),
                ("DELETE", "/api/v1/users/" + agent["id"], None),
                ("POST", "/api/v1/users", {"email": "ghost@atomic.test", "password": "password-123",
                                           "full_name": "Ghost", "role": "viewer"}),
                ("PATCH", "/api/v1/organizations/me", {"name": "Never Renamed"}),
            ]
            for method, path, body in writes:
                with self.subTest(write="%s %s" % (method, path)):
                    r = self.srv.request(method, path, body, headers=hdr)
                    self.assertGreaterEqual(r.status, 500, r)
                    self.assertIn("error", r.json())
            r = self.srv.request("POST", "/api/v1/auth/login",
                                 {"email": agent["email"], "password": t["password"]})
            self.assertGreaterEqual(r.status, 500, r)
            self.assertNotIn("access_token", r.text)
        finally:
            self.srv.sql(undo)
        self.assertEqual(self.srv.request("GET", "/api/v1/users/" + agent["id"],
                                          headers=hdr).json(), before_user)
        self.assertEqual(self.srv.request("GET", "/api/v1/organizations/me",
                                          headers=hdr).json(), before_org)
        self.assertEqual(self.srv.sql("SELECT COUNT(*) FROM users WHERE email = 'ghost@atomic.test'")
                         .strip(), "0")
        self.assertEqual(self.srv.sql("SELECT COUNT(*) FROM refresh_tokens WHERE user_id = '%s'"
                                      % agent["id"]).strip(), sessions)
        # and with the audit log writable again, the same write goes through
        r = self.srv.request("PATCH", "/api/v1/users/" + agent["id"], {"full_name": "Saved"},
                             headers=hdr)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.logs("?record_id=%s&action=update" % agent["id"], tenant=t)
                         ["items"][0]["changes"]["full_name"][1], "Saved")

    def test_login_rows(self):
        rows = self.logs("?action=login&user_id=" + self.a["users"]["viewer"]["id"])["items"]
        self.assertGreaterEqual(len(rows), 1)
        self.assertEqual(rows[0]["table_name"], "users")
        self.assertEqual(rows[0]["record_id"], self.a["users"]["viewer"]["id"])

    def test_filters(self):
        t = make_tenant(self.srv, self.su["token"], "filt", roles=("agent",))
        agent = t["users"]["agent"]["id"]
        t0 = self.srv.request("GET", "/api/v1/audit-logs", headers=self.hdr(t)).json()["items"][0]["created_at"]
        time.sleep(0.01)
        self.srv.request("PATCH", "/api/v1/users/" + agent, {"full_name": "F1"}, headers=self.hdr(t))
        self.srv.request("PATCH", "/api/v1/organizations/me", {"name": "Filt 2"}, headers=self.hdr(t))
        all_rows = self.logs("?limit=200", tenant=t)["items"]
        for q, pred in (("table_name=organizations", lambda x: x["table_name"] == "organizations"),
                        ("action=update", lambda x: x["action"] == "update"),
                        ("record_id=" + agent, lambda x: x["record_id"] == agent),
                        ("user_id=" + agent, lambda x: x["user_id"] == agent),
                        ("user_id=" + agent.upper(), lambda x: x["user_id"] == agent),
                        ("from=" + t0, lambda x: x["created_at"] >= t0),
                        ("to=" + t0, lambda x: x["created_at"] <= t0),
                        ("action=update&table_name=users", lambda x: x["action"] == "update" and x["table_name"] == "users")):
            with self.subTest(q=q):
                got = self.logs("?limit=200&" + q, tenant=t)["items"]
                self.assertEqual(got, [x for x in all_rows if pred(x)])
                self.assertTrue(got, "filter %s matched nothing" % q)
        for q, field in (("from=yesterday", "from"), ("to=2026-13-01T00:00:00Z", "to"),
                         ("user_id=42", "user_id"), ("cursor=%%%", "cursor"),
                         ("cursor=MTIz", "cursor"), ("limit=0", "limit")):
            with self.subTest(q=q):
                r = self.srv.request("GET", "/api/v1/audit-logs?" + q, headers=self.hdr(t))
                self.assertEqual(r.status, 422, r)
                self.assertEqual(r.json()["error"]["code"], "validation_error")
                self.assertEqual(r.json()["error"]["details"][0]["field"], field)

    def test_paging_walks_everything_once(self):
        t = make_tenant(self.srv, self.su["token"], "pages", roles=("agent",))
        agent = t["users"]["agent"]["id"]
        for i in range(12):
            r = self.srv.request("PATCH", "/api/v1/users/" + agent, {"full_name": "N%d" % i},
                                 headers=self.hdr(t))
            self.assertEqual(r.status, 200)
        full = self.logs("?limit=200", tenant=t)
        self.assertIsNone(full["next_cursor"])
        ids = [x["id"] for x in full["items"]]
        self.assertGreater(len(ids), 12)
        keys = [(x["created_at"], x["id"]) for x in full["items"]]
        self.assertEqual(len(set(ids)), len(ids))
        walked, cursor, pages = [], None, 0
        while True:
            page = self.logs("?limit=5" + ("&cursor=" + cursor if cursor else ""), tenant=t)
            self.assertLessEqual(len(page["items"]), 5)
            walked += [x["id"] for x in page["items"]]
            cursor = page["next_cursor"]
            pages += 1
            if not cursor:
                break
        self.assertEqual(walked, ids)
        self.assertEqual(pages, (len(ids) + 4) // 5)
        self.assertEqual(len(keys), len(ids))
        # a filtered walk too
        upd = [x["id"] for x in full["items"] if x["action"] == "update"]
        walked, cursor = [], None
        while True:
            page = self.logs("?action=update&limit=4" + ("&cursor=" + cursor if cursor else ""), tenant=t)
            walked += [x["id"] for x in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        self.assertEqual(walked, upd)

    def test_tenant_isolation(self):
        a_ids = {x["id"] for x in self.logs("?limit=200")["items"]}
        b_rows = self.logs("?limit=200", tenant=self.b)["items"]
        self.assertTrue(b_rows)
        self.assertFalse(a_ids & {x["id"] for x in b_rows})
        for x in b_rows:
            self.assertNotIn(x["record_id"], {u["id"] for u in self.a["users"].values()})
        agent = self.a["users"]["agent"]["id"]
        self.assertEqual(self.logs("?record_id=" + agent, tenant=self.b)["items"], [])

    def test_roles(self):
        for role in ("viewer", "agent"):
            r = self.srv.request("GET", "/api/v1/audit-logs", headers=bearer(self.a["users"][role]["token"]))
            self.assertEqual(r.status, 403, r)
        self.assertEqual(self.srv.request("GET", "/api/v1/audit-logs").status, 401)


if __name__ == "__main__":
    unittest.main()
