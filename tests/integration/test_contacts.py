"""Contacts API: CRUD, phone normalisation through the API, 409 duplicates
(also two spellings of one number), 422 bad phones, tag / q / opted_out
filters, opt-out and opt-in with audit rows and roles, CSV import with
mixed lines (exact created/updated/rejected with line numbers), 415 for
other content types, cross-tenant 404 on every route and the role matrix.
Runs on both engines."""

import unittest

from harness import Server, bearer, bootstrap_super_admin, make_tenant
import tenancy


class ContactsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        try:
            cls.srv.start()
            cls.su = bootstrap_super_admin(cls.srv)
            cls.a = make_tenant(cls.srv, cls.su["token"], "calpha")
            cls.b = make_tenant(cls.srv, cls.su["token"], "cbeta")
        except Exception:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    # ---- helpers ----------------------------------------------------------

    def call(self, method, path, body=None, tenant=None, role="agent", headers=None):
        token = (tenant or self.a)["users"][role]["token"]
        h = bearer(token)
        h.update(headers or {})
        return self.srv.request(method, path, body, headers=h)

    def create(self, tenant=None, **fields):
        r = self.call("POST", "/api/v1/contacts", fields, tenant)
        self.assertEqual(r.status, 201, r)
        return r.json()

    def list(self, query="", tenant=None, role="viewer"):
        r = self.call("GET", "/api/v1/contacts" + query, None, tenant, role)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def assert_422(self, r, field):
        self.assertEqual(r.status, 422, r)
        err = r.json()["error"]
        self.assertEqual(err["code"], "validation_error")
        self.assertIn(field, [d["field"] for d in err["details"]], err)

    def audit(self, record_id, tenant=None):
        r = self.call("GET", "/api/v1/audit-logs?table_name=contacts&record_id=" + record_id,
                      tenant=tenant, role="org_admin")
        self.assertEqual(r.status, 200, r)
        return r.json()["items"]

    def import_csv(self, text, tenant=None, role="agent", ctype="text/csv"):
        return self.call("POST", "/api/v1/contacts/import", text.encode(), tenant, role,
                         headers={"Content-Type": ctype})

    # ---- CRUD -------------------------------------------------------------

    def test_create_normalises_and_reads_back(self):
        c = self.create(phone="+55 (11) 98765-4321", name="Maria Silva",
                        email="maria@example.com", tags=["vip", "sp", "vip"],
                        attributes={"plan": "gold", "visits": 3, "ok": True, "x": None})
        self.assertEqual(c["wa_id"], "5511987654321")
        self.assertEqual(c["phone"], "5511987654321")
        self.assertEqual(c["tags"], ["vip", "sp"])  # de-duplicated, order kept
        self.assertEqual(c["attributes"], {"plan": "gold", "visits": 3, "ok": True, "x": None})
        self.assertFalse(c["opted_out"])
        self.assertIsNone(c["opted_out_at"])
        r = self.call("GET", "/api/v1/contacts/" + c["id"], role="viewer")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), c)
        rows = self.audit(c["id"])
        self.assertEqual([x["action"] for x in rows], ["create"])
        self.assertEqual(rows[0]["changes"]["wa_id"], [None, "5511987654321"])

    def test_duplicates_409_including_other_spelling(self):
        self.create(phone="+44 20 7946 0958")
        for spelling in ("+44 20 7946 0958", "0044 (0)20 7946-0958", "442079460958"):
            r = self.call("POST", "/api/v1/contacts", {"phone": spelling})
            self.assertEqual(r.status, 409, r)
            self.assertEqual(r.json()["error"]["code"], "conflict")
        # the same number in another org is fine
        self.create(tenant=self.b, phone="+44 20 7946 0958")

    def test_bad_phones_422(self):
        for phone in ("", "call me", "+0 11 2345 6789", "(011) 98765-4321", "+1 555 012",
                      "+1 234 567 890 123 456", "+999 1234 5678", "+55 11 9876-ABCD"):
            with self.subTest(phone=phone):
                self.assert_422(self.call("POST", "/api/v1/contacts", {"phone": phone}),
                                "phone")
        self.assert_422(self.call("POST", "/api/v1/contacts", {"name": "x"}), "phone")
        r = self.call("POST", "/api/v1/contacts", {"phone": 5511987654321})
        self.assertEqual(r.status, 400, r)

    def test_bad_fields(self):
        ok = "+49 30 1234567"
        self.assert_422(self.call("POST", "/api/v1/contacts", {"phone": ok, "email": "nope"}),
                        "email")
        self.assert_422(self.call("POST", "/api/v1/contacts",
                                  {"phone": ok, "tags": ["a" * 65]}), "tags")
        self.assert_422(self.call("POST", "/api/v1/contacts",
                                  {"phone": ok, "tags": ["t%d" % i for i in range(51)]}),
                        "tags")
        self.assert_422(self.call("POST", "/api/v1/contacts",
                                  {"phone": ok, "attributes": {"nested": {"a": 1}}}),
                        "attributes")
        self.assertEqual(self.call("POST", "/api/v1/contacts",
                                   {"phone": ok, "tags": "vip"}).status, 400)
        self.assertEqual(self.call("POST", "/api/v1/contacts",
                                   {"phone": ok, "attributes": [1]}).status, 400)
        # 50 distinct tags (with repeats) are fine
        c = self.create(phone=ok, tags=["t%d" % (i % 50) for i in range(120)])
        self.assertEqual(len(c["tags"]), 50)

    def test_patch_and_delete(self):
        c = self.create(phone="+91 98765 43210", name="Ravi", email="ravi@example.com")
        r = self.call("PATCH", "/api/v1/contacts/" + c["id"],
                      {"name": "Ravi K", "email": None, "tags": ["b2b"],
                       "phone": "+91 98765 43211"})
        self.assertEqual(r.status, 200, r)
        got = r.json()
        self.assertEqual((got["name"], got["email"], got["tags"], got["wa_id"]),
                         ("Ravi K", None, ["b2b"], "919876543211"))
        self.assertGreater(got["updated_at"], c["updated_at"])
        other = self.create(phone="+91 98765 43219")
        r = self.call("PATCH", "/api/v1/contacts/" + other["id"], {"phone": "919876543211"})
        self.assertEqual(r.status, 409, r)
        self.assert_422(self.call("PATCH", "/api/v1/contacts/" + other["id"], {"phone": "12"}),
                        "phone")
        rows = self.audit(c["id"])
        self.assertEqual(rows[0]["action"], "update")
        self.assertEqual(rows[0]["changes"]["name"], ["Ravi", "Ravi K"])
        self.assertEqual(rows[0]["changes"]["email"], ["ravi@example.com", None])
        r = self.call("DELETE", "/api/v1/contacts/" + c["id"])
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.call("GET", "/api/v1/contacts/" + c["id"]).status, 404)
        self.assertEqual(self.call("DELETE", "/api/v1/contacts/" + c["id"]).status, 404)
        self.assertEqual(self.audit(c["id"])[0]["action"], "delete")

    # ---- list and filters -------------------------------------------------

    def test_filters_and_paging(self):
        t = make_tenant(self.srv, self.su["token"], "cfilter")
        ana = self.create(t, phone="+55 21 99999-0001", name="Ana 100%_Real", tags=["vip", "rio"])
        bob = self.create(t, phone="+1 212 555 0102", name="Bob Stone", tags=["ny"])
        cid = self.create(t, phone="+86 138 0013 8000", name="Li Wei", tags=["vip"],
                          opted_in=False)
        ids = lambda page: [x["id"] for x in page["items"]]
        self.assertEqual(ids(self.list(tenant=t)), [cid["id"], bob["id"], ana["id"]])
        self.assertEqual(ids(self.list("?tag=vip", t)), [cid["id"], ana["id"]])
        self.assertEqual(ids(self.list("?tag=ny", t)), [bob["id"]])
        self.assertEqual(ids(self.list("?tag=vi", t)), [])
        self.assertEqual(ids(self.list("?q=STONE", t)), [bob["id"]])
        self.assertEqual(ids(self.list("?q=ana%20100%25_", t)), [ana["id"]])
        self.assertEqual(ids(self.list("?q=%25", t)), [ana["id"]])  # % is literal
        self.assertEqual(ids(self.list("?q=_", t)), [ana["id"]])    # _ is literal
        self.assertEqual(ids(self.list("?q=5521", t)), [ana["id"]])
        self.assertEqual(ids(self.list("?q=%2B1%20212", t)), [bob["id"]])
        self.assertEqual(ids(self.list("?q=0013", t)), [cid["id"]])
        self.assertEqual(ids(self.list("?opted_out=true", t)), [cid["id"]])
        self.assertEqual(ids(self.list("?opted_out=false&tag=vip", t)), [ana["id"]])
        r = self.call("GET", "/api/v1/contacts?opted_out=maybe", tenant=t)
        self.assert_422(r, "opted_out")
        p1 = self.list("?limit=2", t)
        self.assertEqual(len(p1["items"]), 2)
        p2 = self.list("?limit=2&cursor=" + p1["next_cursor"], t)
        self.assertEqual(ids(p2), [ana["id"]])
        self.assertIsNone(p2["next_cursor"])
        # B sees none of them
        self.assertEqual(self.list("?q=Stone", self.b)["items"], [])

    # ---- opt-out / opt-in -------------------------------------------------

    def test_opt_out_in_roles_and_audit(self):
        c = self.create(phone="+234 803 123 4567")
        path = "/api/v1/contacts/" + c["id"]
        r = self.call("POST", path + "/opt-out", role="viewer")
        self.assertEqual(r.status, 403, r)
        r = self.call("POST", path + "/opt-out", role="agent")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json()["opted_out"])
        self.assertIsNotNone(r.json()["opted_out_at"])
        again = self.call("POST", path + "/opt-out", role="agent")
        self.assertEqual(again.status, 200)
        self.assertEqual(again.json()["opted_out_at"], r.json()["opted_out_at"])
        r = self.call("POST", path + "/opt-in", role="viewer")
        self.assertEqual(r.status, 403, r)
        r = self.call("POST", path + "/opt-in", role="agent")
        self.assertEqual(r.status, 200, r)
        self.assertFalse(r.json()["opted_out"])
        self.assertIsNone(r.json()["opted_out_at"])
        rows = self.audit(c["id"])
        self.assertEqual([x["action"] for x in rows], ["opt_in", "opt_out", "create"])
        self.assertEqual(rows[0]["user_id"], self.a["users"]["agent"]["id"])
        self.assertEqual(rows[0]["changes"]["opted_out"], [True, False])
        r = self.call("POST", path + "/opt-in", role="org_admin")
        self.assertEqual(r.status, 200, r)

    def test_viewer_refused_writes(self):
        c = self.create(phone="+62 812-3456-7890")
        for method, path, body in (("POST", "/api/v1/contacts", {"phone": "+62 812 0000 0001"}),
                                   ("PATCH", "/api/v1/contacts/" + c["id"], {"name": "x"}),
                                   ("DELETE", "/api/v1/contacts/" + c["id"], None)):
            r = self.call(method, path, body, role="viewer")
            self.assertEqual(r.status, 403, r)
            self.assertEqual(r.json()["error"]["code"], "forbidden")
        r = self.import_csv("phone\n+62 812 0000 0002\n", role="viewer")
        self.assertEqual(r.status, 403, r)
        self.assertEqual(self.call("GET", "/api/v1/contacts/" + c["id"], role="viewer").json(),
                         c)

    # ---- CSV import -------------------------------------------------------

    def test_import_mixed_lines(self):
        t = make_tenant(self.srv, self.su["token"], "cimport")
        pre = self.create(t, phone="+1 415 555 2671", name="Before", tags=["old"])
        csv = ("\ufeffphone,name,email,tags\r\n"                         # 1 header (BOM)
               "+55 (11) 98765-4321,\"Silva, Maria\",maria@example.com,vip;sp\r\n"  # 2 created
               "not a phone,Bad,,\r\n"                                   # 3 bad phone
               "+1 (415) 555-2671,,,new;vip\r\n"                          # 4 updates pre
               "\r\n"                                                     # 5 blank: skipped
               "5511987654321,\"Maria \"\"M\"\" Silva\",,\r\n"           # 6 dup in file: update
               "+44 20 7946 0958,Li,not-an-email,\r\n"                   # 7 bad email
               "+49 30 123456,\"Multi\nLine\",,a;;b; a\r\n"             # 8-9 created
               "+91 98765 43210,Extra,,x,surplus\r\n"                    # 10 too many fields
               "+86 138 0013 8000,Wei\r\n"                               # 11 created (short line)
               "+234 803 123 4567,\"Bad\"quote,,\r\n")                   # 12 bad quoting
        r = self.import_csv(csv, t, ctype="text/csv; charset=utf-8")
        self.assertEqual(r.status, 200, r)
        got = r.json()
        self.assertEqual(got["created"], 3, got)
        self.assertEqual(got["updated"], 2, got)
        self.assertEqual([x["line"] for x in got["rejected"]], [3, 7, 10, 12], got)
        self.assertIn("phone", got["rejected"][0]["error"])
        self.assertIn("email", got["rejected"][1]["error"])
        items = {c["wa_id"]: c for c in self.list("?limit=200", t)["items"]}
        self.assertEqual(set(items), {"5511987654321", "14155552671", "4930123456",
                                      "8613800138000"})
        maria = items["5511987654321"]
        self.assertEqual(maria["name"], 'Maria "M" Silva')          # line 6 updated it
        self.assertEqual(maria["email"], "maria@example.com")        # empty cell kept
        self.assertEqual(maria["tags"], ["vip", "sp"])
        self.assertEqual(items["14155552671"]["name"], "Before")
        self.assertEqual(items["14155552671"]["tags"], ["new", "vip"])
        self.assertEqual(items["14155552671"]["id"], pre["id"])
        self.assertEqual(items["4930123456"]["name"], "Multi\nLine")
        self.assertEqual(items["4930123456"]["tags"], ["a", "b"])
        self.assertEqual(items["8613800138000"]["name"], "Wei")
        actions = [x["action"] for x in self.audit(maria["id"], t)]
        self.assertEqual(actions, ["update", "create"])

    def test_import_header_and_type(self):
        t = make_tenant(self.srv, self.su["token"], "cimport2")
        r = self.import_csv("phone,name\n+55 11 98765 4321,x\n", t, ctype="application/json")
        self.assertEqual(r.status, 415, r)
        self.assertEqual(r.json()["error"]["code"], "unsupported_media_type")
        r = self.call("POST", "/api/v1/contacts/import", {"phone": "x"}, t)
        self.assertEqual(r.status, 415, r)
        # the media type is matched whole, in any case, parameters allowed
        for ctype in ("text/csvx", "text/cs", "text/plain; x=text/csv"):
            with self.subTest(ctype=ctype):
                r = self.import_csv("phone\n+55 11 98765 4321\n", t, ctype=ctype)
                self.assertEqual(r.status, 415, r)
        r = self.import_csv("phone\n+81 3 1234 5678\n", t, ctype="Text/CSV ; charset=utf-8")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"created": 1, "updated": 0, "rejected": []})
        r = self.import_csv("name,email\nx,y@example.com\n", t)
        self.assert_422(r, "header")
        r = self.import_csv("", t)
        self.assert_422(r, "header")
        # column order and case are free; unknown columns ignored
        r = self.import_csv("Name, PHONE ,city\nZed,+27 82 123 4567,Durban\n", t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"created": 1, "updated": 0, "rejected": []})
        # an open quote at the end: earlier lines are written, the rest reported
        r = self.import_csv("phone,name\n+33 1 23 45 67 89,A\n+34 612 34 56 78,\"open\n", t)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["created"], 1)
        self.assertEqual([x["line"] for x in r.json()["rejected"]], [3])
        self.assertEqual(len(self.list(tenant=t)["items"]), 3)

    def test_import_row_cap(self):
        t = make_tenant(self.srv, self.su["token"], "cimport3")
        body = "phone\n" + "\n".join("x" for _ in range(100001)) + "\n"
        r = self.import_csv(body, t)
        self.assertEqual(r.status, 413, r)
        self.assertEqual(self.list(tenant=t)["items"], [])

    # ---- tenancy ----------------------------------------------------------

    def test_cross_tenant_404(self):
        tenancy.check_cross_tenant(self, self.srv, self.a, self.b)
        tenancy.check_cross_tenant(self, self.srv, self.b, self.a)

    def test_role_matrix(self):
        t = make_tenant(self.srv, self.su["token"], "croles")
        routes = [r for r in tenancy.ROLE_ROUTES if "/contacts" in r[1]]
        tenancy.check_role_matrix(self, self.srv, t, self.su["token"], {}, routes=routes)


if __name__ == "__main__":
    unittest.main()
