"""Users API (org_admin): create/list/get/patch/deactivate, validation,
email uniqueness, the super_admin guard, deactivation ending tokens,
cross-tenant 404s and the role matrix, and tenancy.py's route lists held
to the binary's route table. Runs on both engines."""

import re
import unittest

from harness import Server, bearer, bootstrap_super_admin, cli_user, login, make_tenant
import tenancy

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
USER_FIELDS = {"id", "organization_id", "email", "full_name", "role", "is_active",
               "last_login_at", "created_at", "updated_at"}


class UsersTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
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

    def admin(self, tenant=None):
        return bearer((tenant or self.a)["users"]["org_admin"]["token"])

    def create(self, email, role="agent", password="password-123", tenant=None, **extra):
        body = {"email": email, "password": password, "full_name": "U " + email, "role": role}
        body.update(extra)
        return self.srv.request("POST", "/api/v1/users", body, headers=self.admin(tenant))

    # ---- create ---------------------------------------------------------

    def test_create_answers_201_with_location_and_no_secret(self):
        r = self.create("New.Person@Alpha.test", password="secret-pass-42")
        self.assertEqual(r.status, 201, r)
        u = r.json()
        self.assertEqual(set(u), USER_FIELDS)
        self.assertRegex(u["id"], UUID_RE)
        self.assertEqual(u["email"], "new.person@alpha.test")
        self.assertEqual(u["organization_id"], self.a["org_id"])
        self.assertEqual(u["role"], "agent")
        self.assertTrue(u["is_active"])
        self.assertIsNone(u["last_login_at"])
        self.assertTrue(u["created_at"].endswith("Z"))
        self.assertEqual(r.headers["Location"], "/api/v1/users/" + u["id"])
        self.assertNotIn("password", r.text)
        self.assertNotIn("argon2", r.text)
        g = self.srv.request("GET", r.headers["Location"], headers=self.admin())
        self.assertEqual(g.status, 200)
        self.assertEqual(g.json(), u)
        # the new user can log in (email case-insensitive)
        login(self.srv, "NEW.person@alpha.test", "secret-pass-42")

    def test_create_validation(self):
        cases = [
            ({"password": "password-1", "full_name": "x", "role": "agent"}, 422, "email"),
            ({"email": "no-at-sign", "password": "password-1", "full_name": "x", "role": "agent"}, 422, "email"),
            ({"email": "v1@alpha.test", "password": "short7!", "full_name": "x", "role": "agent"}, 422, "password"),
            ({"email": "v2@alpha.test", "full_name": "x", "role": "agent"}, 422, "password"),
            ({"email": "v3@alpha.test", "password": "password-1", "full_name": "x", "role": "boss"}, 422, "role"),
            ({"email": "v4@alpha.test", "password": "password-1", "full_name": "x"}, 422, "role"),
            ({"email": "v5@alpha.test", "password": "password-1", "role": "agent"}, 422, "full_name"),
            ({"email": 7, "password": "password-1", "full_name": "x", "role": "agent"}, 400, "email"),
            ({"email": "v6@alpha.test", "password": ["x"], "full_name": "x", "role": "agent"}, 400, "password"),
            ({"email": "v7@alpha.test", "password": "password-1", "full_name": "x", "role": 3}, 400, "role"),
        ]
        for body, status, field in cases:
            with self.subTest(body=body):
                r = self.srv.request("POST", "/api/v1/users", body, headers=self.admin())
                self.assertEqual(r.status, status, r)
                err = r.json()["error"]
                self.assertEqual(err["code"], "validation_error" if status == 422 else "invalid_request")
                self.assertIn(field, [d["field"] for d in err["details"]])
        r = self.srv.request("POST", "/api/v1/users", "{not json", headers=self.admin())
        self.assertEqual(r.status, 400)
        # nothing was created
        listed = self.srv.request("GET", "/api/v1/users?limit=200", headers=self.admin()).json()
        self.assertFalse([u for u in listed["items"] if re.match(r"v\d@", u["email"])])

    def test_email_unique_across_installation(self):
        self.assertEqual(self.create("dup@alpha.test").status, 201)
        for email, tenant in (("dup@alpha.test", self.a), ("DUP@alpha.test", self.a),
                              ("dup@alpha.test", self.b)):
            with self.subTest(email=email):
                r = self.create(email, tenant=tenant)
                self.assertEqual(r.status, 409, r)
                self.assertEqual(r.json()["error"]["code"], "conflict")

    def test_only_super_admin_makes_super_admins(self):
        r = self.create("wannabe@alpha.test", role="super_admin")
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.json()["error"]["code"], "forbidden")
        agent = self.a["users"]["agent"]["id"]
        r = self.srv.request("PATCH", "/api/v1/users/" + agent, {"role": "super_admin"},
                             headers=self.admin())
        self.assertEqual(r.status, 403, r)
        g = self.srv.request("GET", "/api/v1/users/" + agent, headers=self.admin()).json()
        self.assertEqual(g["role"], "agent")
        # a super_admin may (in its own organization)
        r = self.srv.request("POST", "/api/v1/users", {
            "email": "second-root@pytake.test", "password": "password-123",
            "full_name": "Root 2", "role": "super_admin"}, headers=bearer(self.su["token"]))
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["organization_id"], self.su["org_id"])

    # ---- list -----------------------------------------------------------

    def test_list_is_own_org_newest_first_and_paged(self):
        t = make_tenant(self.srv, self.su["token"], "listing", roles=())
        ids = [self.create("l%d@listing.test" % i, tenant=t).json()["id"] for i in range(5)]
        hdr = self.admin(t)
        full = self.srv.request("GET", "/api/v1/users", headers=hdr).json()
        self.assertIsNone(full["next_cursor"])
        got = [u["id"] for u in full["items"]]
        self.assertEqual(got, list(reversed(ids)) + [t["users"]["org_admin"]["id"]])
        self.assertTrue(all(u["organization_id"] == t["org_id"] for u in full["items"]))
        self.assertNotIn("password", self.srv.request("GET", "/api/v1/users", headers=hdr).text)
        walked, cursor = [], None
        while True:
            q = "/api/v1/users?limit=2" + ("&cursor=" + cursor if cursor else "")
            page = self.srv.request("GET", q, headers=hdr)
            self.assertEqual(page.status, 200, page)
            page = page.json()
            self.assertLessEqual(len(page["items"]), 2)
            walked += [u["id"] for u in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        self.assertEqual(walked, got)
        for bad in ("limit=0", "limit=201", "limit=x", "cursor=garbage!", "cursor=Zm9v"):
            with self.subTest(query=bad):
                r = self.srv.request("GET", "/api/v1/users?" + bad, headers=hdr)
                self.assertEqual(r.status, 422, r)
                self.assertEqual(r.json()["error"]["details"][0]["field"], bad.split("=")[0])

    def test_cli_created_user_appears_in_org(self):
        uid = cli_user(self.srv, "cli-made@beta.test", "password-123", "beta", "viewer")
        g = self.srv.request("GET", "/api/v1/users/" + uid, headers=self.admin(self.b))
        self.assertEqual(g.status, 200, g)
        self.assertEqual(g.json()["role"], "viewer")
        self.assertEqual(self.srv.request("GET", "/api/v1/users/" + uid,
                                          headers=self.admin()).status, 404)

    # ---- patch / deactivate -----------------------------------------------

    def test_patch_fields_and_role_takes_effect(self):
        uid = self.create("patchme@alpha.test", role="viewer").json()["id"]
        token = login(self.srv, "patchme@alpha.test", "password-123")
        self.assertEqual(self.srv.request("GET", "/api/v1/users", headers=bearer(token)).status, 403)
        r = self.srv.request("PATCH", "/api/v1/users/" + uid.upper(),
                             {"full_name": "Patched", "role": "org_admin"}, headers=self.admin())
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["full_name"], r.json()["role"]), ("Patched", "org_admin"))
        self.assertEqual(self.srv.request("GET", "/api/v1/users", headers=bearer(token)).status, 200)
        for body, status in (({"role": "boss"}, 422), ({"is_active": "no"}, 400),
                             ({"password": "short"}, 422), ({"full_name": 5}, 400)):
            with self.subTest(body=body):
                self.assertEqual(self.srv.request("PATCH", "/api/v1/users/" + uid, body,
                                                  headers=self.admin()).status, status)

    def test_password_change(self):
        uid = self.create("pw@alpha.test").json()["id"]
        r = self.srv.request("PATCH", "/api/v1/users/" + uid, {"password": "brand-new-pass"},
                             headers=self.admin())
        self.assertEqual(r.status, 200, r)
        self.assertNotIn("password", r.text)
        bad = self.srv.request("POST", "/api/v1/auth/login",
                               {"email": "pw@alpha.test", "password": "password-123"})
        self.assertEqual(bad.status, 401)
        login(self.srv, "pw@alpha.test", "brand-new-pass")

    def test_deactivate_ends_tokens_and_login(self):
        uid = self.create("leaver@alpha.test").json()["id"]
        token = login(self.srv, "leaver@alpha.test", "password-123")
        self.assertEqual(self.srv.request("GET", "/api/v1/auth/me", headers=bearer(token)).status, 200)
        r = self.srv.request("DELETE", "/api/v1/users/" + uid, headers=self.admin())
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        g = self.srv.request("GET", "/api/v1/users/" + uid, headers=self.admin()).json()
        self.assertFalse(g["is_active"])
        me = self.srv.request("GET", "/api/v1/auth/me", headers=bearer(token))
        self.assertEqual(me.status, 401, me)
        self.assertEqual(me.json()["error"]["code"], "invalid_token")
        r = self.srv.request("POST", "/api/v1/auth/login",
                             {"email": "leaver@alpha.test", "password": "password-123"})
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["error"]["code"], "invalid_credentials")
        # idempotent; reactivation through PATCH works
        self.assertEqual(self.srv.request("DELETE", "/api/v1/users/" + uid,
                                          headers=self.admin()).status, 204)
        r = self.srv.request("PATCH", "/api/v1/users/" + uid, {"is_active": True},
                             headers=self.admin())
        self.assertEqual(r.status, 200)
        login(self.srv, "leaver@alpha.test", "password-123")

    def test_cannot_deactivate_self_or_touch_super_admin(self):
        me = self.a["users"]["org_admin"]["id"]
        r = self.srv.request("DELETE", "/api/v1/users/" + me, headers=self.admin())
        self.assertEqual(r.status, 422, r)
        r = self.srv.request("PATCH", "/api/v1/users/" + me, {"is_active": False},
                             headers=self.admin())
        self.assertEqual(r.status, 422, r)
        # a super_admin living in an org cannot be changed by that org's admin
        t = make_tenant(self.srv, self.su["token"], "guarded", roles=())
        r = self.srv.request("POST", "/api/v1/users", {
            "email": "boss@guarded.test", "password": "password-123", "full_name": "B",
            "role": "super_admin"}, headers=bearer(self.su["token"]))
        self.assertEqual(r.status, 201)
        self.srv.sql("UPDATE users SET organization_id = '%s' WHERE email = 'boss@guarded.test'"
                     % t["org_id"])
        sid = r.json()["id"]
        for method, body in (("DELETE", None), ("PATCH", {"full_name": "x"})):
            with self.subTest(method=method):
                r = self.srv.request(method, "/api/v1/users/" + sid, body, headers=self.admin(t))
                self.assertEqual(r.status, 403, r)
        login(self.srv, "boss@guarded.test", "password-123")

    # ---- isolation and roles ----------------------------------------------

    def test_cross_tenant_ids_are_404(self):
        tenancy.check_cross_tenant(self, self.srv, self.a, self.b)
        tenancy.check_cross_tenant(self, self.srv, self.b, self.a)

    def test_lists_do_not_leak(self):
        a_ids = {u["id"] for u in self.a["users"].values()}
        r = self.srv.request("GET", "/api/v1/users?limit=200", headers=self.admin(self.b))
        self.assertFalse(a_ids & {u["id"] for u in r.json()["items"]})

    def test_role_matrix(self):
        t = make_tenant(self.srv, self.su["token"], "matrix")
        victim = self.create("victim@matrix.test", tenant=t).json()["id"]
        ids = {"user_id": t["users"]["agent"]["id"], "victim_id": victim}
        tenancy.check_role_matrix(self, self.srv, t, self.su["token"], ids)


class TenancyListsCoverTheRouteTable(unittest.TestCase):
    """tenancy.py's lists against the binary's route table (`pytake
    routes`): a new tenant-scoped route cannot skip the cross-tenant and
    role checks by being forgotten there."""

    @staticmethod
    def shape(path):
        return re.sub(r"\{[^}]*\}", "{}", path)

    def test_every_id_route_and_every_role_is_listed(self):
        srv = Server()
        try:
            rc, out, err = srv.cli("routes")
        finally:
            srv.close()
        self.assertEqual(rc, 0, err)
        table = [line.split("\t") for line in out.splitlines() if line.strip()]
        api = [(m, p, role) for m, p, role, _flags in table if p.startswith("/api/v1/")]
        self.assertGreater(len(api), 40, out)
        tenant = {(m, self.shape(p)) for m, p, _b in tenancy.TENANT_ROUTES}
        exempt = {(m, self.shape(p)) for m, p in tenancy.NOT_TENANT_SCOPED}
        roles = {(m, self.shape(p)): least for m, p, _b, least in tenancy.ROLE_ROUTES}
        no_roles = {(m, self.shape(p)) for m, p in tenancy.NOT_IN_ROLE_MATRIX}
        for method, path, role in api:
            key = (method, self.shape(path))
            with self.subTest(route="%s %s" % key):
                if "{" in path:
                    self.assertTrue(key in tenant or key in exempt,
                                    "not in tenancy.TENANT_ROUTES nor NOT_TENANT_SCOPED")
                if role != "none" and key not in no_roles:
                    self.assertIn(key, roles, "not in tenancy.ROLE_ROUTES nor NOT_IN_ROLE_MATRIX")
                    self.assertEqual(roles[key], role, "ROLE_ROUTES and the route table disagree")
        known = {(m, self.shape(p)) for m, p, _r in api}
        for key in tenant | exempt | set(roles) | no_roles:
            with self.subTest(listed="%s %s" % key):
                self.assertIn(key, known, "listed in tenancy.py but not served")


if __name__ == "__main__":
    unittest.main()
