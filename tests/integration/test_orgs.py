"""Organizations: /organizations/me for every role, PATCH name/timezone by
org_admin, and the super_admin's list/create (org + first org_admin in one
transaction, audited). Runs on both engines."""

import unittest

from harness import Server, bearer, bootstrap_super_admin, login, make_tenant

ORG_FIELDS = {"id", "name", "slug", "timezone", "created_at", "updated_at"}


class OrgsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        try:
            cls.srv.start()
            cls.su = bootstrap_super_admin(cls.srv)
            cls.a = make_tenant(cls.srv, cls.su["token"], "acme")
        except Exception:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def su_hdr(self):
        return bearer(self.su["token"])

    def new_org(self, slug, email=None, **extra):
        body = {"name": "Org " + slug, "slug": slug,
                "admin": {"email": email or "admin@%s.test" % slug,
                          "password": "admin-pass-1", "full_name": "Admin"}}
        body.update(extra)
        return self.srv.request("POST", "/api/v1/organizations", body, headers=self.su_hdr())

    def test_me_for_every_role(self):
        for role, u in self.a["users"].items():
            with self.subTest(role=role):
                r = self.srv.request("GET", "/api/v1/organizations/me", headers=bearer(u["token"]))
                self.assertEqual(r.status, 200, r)
                o = r.json()
                self.assertEqual(set(o), ORG_FIELDS)
                self.assertEqual((o["id"], o["slug"], o["timezone"]),
                                 (self.a["org_id"], "acme", "UTC"))
        r = self.srv.request("GET", "/api/v1/organizations/me")
        self.assertEqual(r.status, 401)

    def test_patch_me(self):
        t = make_tenant(self.srv, self.su["token"], "patchy", roles=("agent",))
        hdr = bearer(t["users"]["org_admin"]["token"])
        r = self.srv.request("PATCH", "/api/v1/organizations/me",
                             {"name": "Patchy Ltd", "timezone": "America/Sao_Paulo"}, headers=hdr)
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["name"], r.json()["timezone"], r.json()["slug"]),
                         ("Patchy Ltd", "America/Sao_Paulo", "patchy"))
        for tz in ("America/Argentina/Buenos_Aires", "Etc/GMT+3", "UTC", "Europe/Paris"):
            with self.subTest(tz=tz):
                r = self.srv.request("PATCH", "/api/v1/organizations/me", {"timezone": tz}, headers=hdr)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["timezone"], tz)
        for body, status, field in (({"timezone": "Mars/Olympus"}, 422, "timezone"),
                                    ({"timezone": "EST"}, 422, "timezone"),
                                    ({"timezone": "Europe/"}, 422, "timezone"),
                                    ({"timezone": "Europe/../etc"}, 422, "timezone"),
                                    ({"timezone": "America/Sao Paulo"}, 422, "timezone"),
                                    ({"name": ""}, 422, "name"),
                                    ({"name": "x" * 201}, 422, "name"),
                                    ({"name": 5}, 400, "name")):
            with self.subTest(body=body):
                r = self.srv.request("PATCH", "/api/v1/organizations/me", body, headers=hdr)
                self.assertEqual(r.status, status, r)
                self.assertEqual(r.json()["error"]["details"][0]["field"], field)
        me = self.srv.request("GET", "/api/v1/organizations/me", headers=hdr).json()
        self.assertEqual((me["name"], me["timezone"]), ("Patchy Ltd", "Europe/Paris"))
        r = self.srv.request("PATCH", "/api/v1/organizations/me", {"name": "Agent's"},
                             headers=bearer(t["users"]["agent"]["token"]))
        self.assertEqual(r.status, 403)

    def test_create_org_with_admin(self):
        r = self.new_org("globex", email="Boss@Globex.test", timezone="Asia/Tokyo")
        self.assertEqual(r.status, 201, r)
        o = r.json()
        self.assertEqual((o["slug"], o["timezone"]), ("globex", "Asia/Tokyo"))
        self.assertEqual(o["admin"]["role"], "org_admin")
        self.assertEqual(o["admin"]["email"], "boss@globex.test")
        self.assertEqual(o["admin"]["organization_id"], o["id"])
        self.assertNotIn("admin-pass-1", r.text)
        self.assertNotIn("password", r.text)
        self.assertEqual(r.headers["Location"], "/api/v1/organizations/" + o["id"])
        g = self.srv.request("GET", r.headers["Location"], headers=self.su_hdr())
        self.assertEqual(g.status, 200, g)
        self.assertEqual(g.json()["slug"], "globex")
        tok = login(self.srv, "boss@globex.test", "admin-pass-1")
        me = self.srv.request("GET", "/api/v1/organizations/me", headers=bearer(tok)).json()
        self.assertEqual(me["id"], o["id"])
        # its audit log holds the org and the admin creation, by the super_admin
        logs = self.srv.request("GET", "/api/v1/audit-logs?action=create",
                                headers=bearer(tok)).json()["items"]
        got = {(x["table_name"], x["record_id"]) for x in logs}
        self.assertEqual(got, {("organizations", o["id"]), ("users", o["admin"]["id"])})
        self.assertTrue(all(x["user_id"] == self.su["user_id"] for x in logs))
        self.assertTrue(all(x["request_id"] == r.headers["X-Request-Id"] for x in logs))

    def test_create_conflicts_roll_back(self):
        self.assertEqual(self.new_org("initech").status, 201)
        r = self.new_org("initech", email="other@initech2.test")
        self.assertEqual(r.status, 409, r)
        self.assertEqual(r.json()["error"]["code"], "conflict")
        # taken admin email: 409 and the organization was not created
        r = self.new_org("initech2", email="admin@initech.test")
        self.assertEqual(r.status, 409, r)
        slugs = [o["slug"] for o in self.srv.request(
            "GET", "/api/v1/organizations?limit=200", headers=self.su_hdr()).json()["items"]]
        self.assertNotIn("initech2", slugs)
        self.assertEqual(self.srv.sql("SELECT COUNT(*) FROM organizations WHERE slug = 'initech2'").strip(), "0")
        self.assertEqual(self.new_org("initech2", email="fresh@initech2.test").status, 201)

    def test_create_validation(self):
        good_admin = {"email": "v@v.test", "password": "admin-pass-1", "full_name": "A"}
        cases = [
            ({"slug": "okslug", "admin": good_admin}, 422, "name"),
            ({"name": "N", "admin": good_admin}, 422, "slug"),
            ({"name": "N", "slug": "Bad_Slug", "admin": good_admin}, 422, "slug"),
            ({"name": "N", "slug": "-x", "admin": good_admin}, 422, "slug"),
            ({"name": "N", "slug": "okslug"}, 422, "admin"),
            ({"name": "N", "slug": "okslug", "admin": "x"}, 400, "admin"),
            ({"name": "N", "slug": "okslug", "admin": dict(good_admin, password="short")}, 422, "admin.password"),
            ({"name": "N", "slug": "okslug", "admin": dict(good_admin, email="nope")}, 422, "admin.email"),
            ({"name": "N", "slug": "okslug", "admin": dict(good_admin, email=1)}, 400, "admin.email"),
            ({"name": "N", "slug": "okslug", "timezone": "Moon/Base", "admin": good_admin}, 422, "timezone"),
        ]
        for body, status, field in cases:
            with self.subTest(body=body):
                r = self.srv.request("POST", "/api/v1/organizations", body, headers=self.su_hdr())
                self.assertEqual(r.status, status, r)
                self.assertIn(field, [d["field"] for d in r.json()["error"]["details"]])
        self.assertEqual(self.srv.sql("SELECT COUNT(*) FROM organizations WHERE slug = 'okslug'").strip(), "0")

    def test_list_all_orgs_paged(self):
        for i in range(3):
            self.assertEqual(self.new_org("pg%d" % i).status, 201)
        full = self.srv.request("GET", "/api/v1/organizations?limit=200", headers=self.su_hdr()).json()
        ids = [o["id"] for o in full["items"]]
        self.assertIn(self.a["org_id"], ids)
        self.assertIn(self.su["org_id"], ids)
        created = [o["created_at"] for o in full["items"]]
        self.assertEqual(created, sorted(created, reverse=True))
        walked, cursor = [], None
        while True:
            page = self.srv.request("GET", "/api/v1/organizations?limit=2" +
                                    ("&cursor=" + cursor if cursor else ""), headers=self.su_hdr()).json()
            walked += [o["id"] for o in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        self.assertEqual(walked, ids)

    def test_super_admin_only(self):
        for role, u in self.a["users"].items():
            for method, path, body in (("GET", "/api/v1/organizations", None),
                                       ("POST", "/api/v1/organizations", {}),
                                       ("GET", "/api/v1/organizations/" + self.a["org_id"], None)):
                with self.subTest(role=role, method=method, path=path):
                    r = self.srv.request(method, path, body, headers=bearer(u["token"]))
                    self.assertEqual(r.status, 403, r)
                    self.assertEqual(r.json()["error"]["code"], "forbidden")

    def test_cli_org_create_is_listed(self):
        rc, out, err = self.srv.cli("org", "create", "--name", "From CLI", "--slug", "from-cli")
        self.assertEqual(rc, 0, err)
        g = self.srv.request("GET", "/api/v1/organizations/" + out.strip(), headers=self.su_hdr())
        self.assertEqual(g.status, 200)
        self.assertEqual(g.json()["name"], "From CLI")
        for bad in ("not-a-uuid", "00000000-0000-7000-8000-000000000000"):
            self.assertEqual(self.srv.request("GET", "/api/v1/organizations/" + bad,
                                              headers=self.su_hdr()).status, 404)


if __name__ == "__main__":
    unittest.main()
