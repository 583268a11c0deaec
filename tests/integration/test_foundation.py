"""Foundation: operations endpoints, request ids, errors, limits, access
log, shutdown, and the command line. Runs on both engines."""

import base64
import json
import os
import re
import unittest

from harness import Server, parse_raw_response

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
UUID_ANY = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
MAX_BODY = 2048


def assert_error_shape(tc, resp, status, code):
    tc.assertEqual(resp.status, status, resp.text)
    body = resp.json()
    tc.assertIsInstance(body, dict, resp.text)
    tc.assertIn("error", body, resp.text)
    err = body["error"]
    tc.assertEqual(err.get("code"), code, resp.text)
    tc.assertIsInstance(err.get("message"), str, resp.text)
    tc.assertTrue(err["message"].strip(), "empty error message")
    return err


class HttpFoundation(unittest.TestCase):
    """Read-only checks against one shared server (MAX_BODY_BYTES=2048)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(env={"MAX_BODY_BYTES": str(MAX_BODY)})
        try:
            cls.srv.start()
        except Exception:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_health_ok_with_request_id(self):
        r = self.srv.request("GET", "/health")
        self.assertEqual(r.status, 200, r.text)
        self.assertEqual(r.json(), {"status": "ok"})
        self.assertIn("application/json", r.headers.get("Content-Type", ""))
        rid = r.headers.get("X-Request-Id")
        self.assertIsNotNone(rid, "no X-Request-Id header")
        self.assertRegex(rid, UUID_RE)

    def test_request_ids_differ_between_requests(self):
        a = self.srv.request("GET", "/health").headers.get("X-Request-Id")
        b = self.srv.request("GET", "/health").headers.get("X-Request-Id")
        self.assertNotEqual(a, b)

    def test_client_request_id_echoed(self):
        r = self.srv.request("GET", "/health", headers={"X-Request-Id": "abc-123"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers.get("X-Request-Id"), "abc-123")

    def test_insane_request_id_replaced(self):
        for bad in ("bad id with spaces", "a" * 200, "quote\"inside", "semi;colon"):
            with self.subTest(request_id=bad[:30]):
                r = self.srv.request("GET", "/health", headers={"X-Request-Id": bad})
                self.assertEqual(r.status, 200)
                rid = r.headers.get("X-Request-Id")
                self.assertIsNotNone(rid)
                self.assertNotEqual(rid, bad)
                self.assertRegex(rid, UUID_RE)

    def test_ready_at_head(self):
        r = self.srv.request("GET", "/ready")
        self.assertEqual(r.status, 200, r.text)

    def test_unknown_path_404(self):
        r = self.srv.request("GET", "/nope")
        assert_error_shape(self, r, 404, "not_found")
        self.assertIsNotNone(r.headers.get("X-Request-Id"))

    def test_wrong_method_405_with_allow(self):
        r = self.srv.request("POST", "/health", body={})
        assert_error_shape(self, r, 405, "method_not_allowed")
        allow = r.headers.get("Allow")
        self.assertIsNotNone(allow, "no Allow header")
        methods = [m.strip() for m in allow.split(",")]
        self.assertIn("GET", methods)
        self.assertNotIn("POST", methods)

    def test_head_answers_like_get_without_a_body(self):
        got = self.srv.request("GET", "/health")
        r = self.srv.request("HEAD", "/health")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.headers.get("Content-Type"), got.headers.get("Content-Type"))
        self.assertEqual(r.headers.get("Content-Length"), str(len(got.body)))
        self.assertIsNotNone(r.headers.get("X-Request-Id"))
        # a HEAD is authenticated like its GET
        r = self.srv.request("HEAD", "/api/v1/auth/me")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.body, b"")
        r = self.srv.request("POST", "/health", body={})
        self.assertIn("HEAD", [m.strip() for m in r.headers.get("Allow", "").split(",")])

    def test_body_over_limit_413_without_waiting(self):
        declared = MAX_BODY * 50
        head = ("POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % declared)
        # Only the first part of the body: a server that waited for the
        # rest would time out here.
        raw = self.srv.http_raw(head.encode() + b"{" + b" " * 1000, timeout=5)
        self.assertTrue(raw, "no answer within 5 s to an oversized body")
        r = parse_raw_response(raw)
        assert_error_shape(self, r, 413, "payload_too_large")

    def test_body_over_limit_413_full_body(self):
        body = b'{"email":"' + b"x" * (MAX_BODY * 2) + b'"}'
        r = self.srv.request("POST", "/api/v1/auth/login", body=body,
                             headers={"Content-Type": "application/json"})
        assert_error_shape(self, r, 413, "payload_too_large")

    def test_dot_dot_path_400(self):
        raw = self.srv.http_raw(b"GET /api/v1/../health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                b"Connection: close\r\n\r\n", timeout=5)
        self.assertTrue(raw, "no answer")
        r = parse_raw_response(raw)
        assert_error_shape(self, r, 400, "invalid_path")

    def test_access_log_is_json_without_query(self):
        rid = "access-log-check-1"
        r = self.srv.request("GET", "/health?token=sekrit-query-value&x=1",
                             headers={"X-Request-Id": rid})
        self.assertEqual(r.status, 200)
        line = self.srv.wait_for_log(
            lambda o: o.get("request_id") == rid and "status" in o and "path" in o)
        self.assertIsNotNone(line, "no access log line for request id %s in:\n%s"
                             % (rid, self.srv.log_text()[-2000:]))
        self.assertEqual(line.get("method"), "GET")
        self.assertEqual(line.get("path"), "/health")
        self.assertEqual(line.get("status"), 200)
        self.assertIsInstance(line.get("duration_ms"), (int, float))
        self.assertGreaterEqual(line["duration_ms"], 0)
        self.assertNotIn("sekrit-query-value", self.srv.log_text())

    def test_access_log_for_404(self):
        rid = "access-log-check-404"
        self.srv.request("GET", "/nope?q=hidden-404-query", headers={"X-Request-Id": rid})
        line = self.srv.wait_for_log(lambda o: o.get("request_id") == rid and "status" in o)
        self.assertIsNotNone(line, "no access log line for the 404")
        self.assertEqual(line.get("status"), 404)
        self.assertEqual(line.get("path"), "/nope")
        self.assertNotIn("hidden-404-query", self.srv.log_text())

    def test_every_log_line_is_json(self):
        self.srv.request("GET", "/health")
        # Lines the sanitizer runtime itself prints under `make asan`
        # ("==PID==WARNING: ...") are not ours; real sanitizer *reports*
        # fail every test through the harness anyway.
        lines = [l for l in self.srv.log_text().splitlines()
                 if l.strip() and not l.startswith("==")]
        self.assertTrue(lines, "the server logged nothing")
        bad = []
        for l in lines:
            try:
                json.loads(l)
            except ValueError:
                bad.append(l)
        self.assertEqual(bad, [], "non-JSON log lines with LOG_FORMAT=json")


class Lifecycle(unittest.TestCase):
    """Checks that change the server's state: each has its own server."""

    def test_ready_503_when_database_lags(self):
        with Server() as srv:
            self.assertEqual(srv.request("GET", "/ready").status, 200)
            srv.sql("DELETE FROM schema_migrations WHERE version = "
                    "(SELECT MAX(version) FROM schema_migrations)")
            r = srv.request("GET", "/ready")
            self.assertEqual(r.status, 503, r.text)
            err = r.json().get("error")
            self.assertIsInstance(err, dict, r.text)
            self.assertIn("migration", err.get("message", "").lower(), r.text)
            # /health is about the process, not the database.
            self.assertEqual(srv.request("GET", "/health").status, 200)

    @unittest.skipUnless(os.environ.get("PYTAKE_TEST_ENGINE") == "postgresql",
                         "a PostgreSQL database can be made to refuse connections")
    def test_ready_503_when_database_does_not_answer(self):
        import time
        with Server() as srv:
            self.assertEqual(srv.request("GET", "/ready").status, 200)
            admin = os.environ["PYTAKE_TEST_PG_URL"]
            name = srv.pg_dbname
            Server._psql(admin, 'ALTER DATABASE "%s" ALLOW_CONNECTIONS false' % name)
            try:
                Server._psql(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = '%s' AND pid <> pg_backend_pid()" % name)
                r = srv.request("GET", "/ready")
                err = assert_error_shape(self, r, 503, "not_ready")
                self.assertIn("database", err["message"])
                self.assertTrue(r.headers.get("Retry-After"), r.headers)
                self.assertEqual(srv.request("GET", "/health").status, 200)
            finally:
                Server._psql(admin, 'ALTER DATABASE "%s" ALLOW_CONNECTIONS true' % name)
            deadline = time.monotonic() + 15
            while srv.request("GET", "/ready").status != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertEqual(srv.request("GET", "/ready").status, 200, "no recovery")

    def test_serve_migrates_a_database_behind_only_in_development(self):
        srv = Server(migrate=False)
        try:
            dev_env = dict(srv.env)
            srv.env.update({"ENVIRONMENT": "production", "JWT_SECRET_KEY": "j" * 40,
                            "ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()})
            rc, log = srv.serve_expect_exit(timeout=15)
            self.assertNotEqual(rc, 0, "production serve started on a database that is behind")
            self.assertIn("pytake migrate upgrade", log)
            rc, out, err = srv.cli("migrate", "current")
            self.assertEqual(rc, 0, err)
            self.assertIn("database is at 0,", out)
            srv.env = dev_env
            srv.start()
            self.assertEqual(srv.request("GET", "/ready").status, 200)
            rc, out, err = srv.cli("migrate", "check")
            self.assertEqual(rc, 0, out + err)
        finally:
            srv.close()

    def test_sigterm_stops_cleanly(self):
        srv = Server()
        try:
            srv.start()
            self.assertEqual(srv.request("GET", "/health").status, 200)
            rc = srv.stop()
            self.assertEqual(rc, 0, "exit code %r; log:\n%s" % (rc, srv.log_text()[-3000:]))
            msgs = [o.get("msg") for o in srv.log_lines()]
            self.assertIn("server stopped", msgs)
        finally:
            srv.close()


class Cli(unittest.TestCase):
    """The command line, on a migrated database, no server running."""

    def setUp(self):
        self.srv = Server()
        self.addCleanup(self.srv.close)
        self.srv.migrate()

    def test_version(self):
        rc, out, err = self.srv.cli("version")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.strip().splitlines()[0].strip(), "pytake 0.1.0")

    def test_config_prints_settings_and_masks_secret(self):
        secret = "supersecretvalue-xxxxxxxxxxxxxxxx"
        rc, out, err = self.srv.cli("config", env={"JWT_SECRET_KEY": secret})
        self.assertEqual(rc, 0, err)
        names = {}
        for line in out.splitlines():
            m = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
            if m:
                names[m.group(1)] = m.group(2)
        self.assertIn("PORT", names, out)
        self.assertTrue(names["PORT"].startswith(str(self.srv.port)), out)
        self.assertIn("JWT_SECRET_KEY", names, out)
        self.assertNotIn(secret, out + err)
        self.assertNotIn("supersecretvalue", out + err)

    def test_bad_port_stops_every_command(self):
        for args in (("config",), ("migrate", "check"), ("migrate", "current"), ("serve",)):
            with self.subTest(command=" ".join(args)):
                rc, out, err = self.srv.cli(*args, env={"PORT": "abc"}, timeout=15)
                self.assertNotEqual(rc, 0, out)
                lines = [l for l in err.splitlines() if l.strip()]
                self.assertEqual(len(lines), 1, "expected one stderr line, got:\n" + err)
                self.assertIn("PORT", lines[0])

    def test_migrate_check_at_head(self):
        rc, out, err = self.srv.cli("migrate", "check")
        self.assertEqual(rc, 0, out + err)

    def test_migrate_current_says_it_once(self):
        rc, out, err = self.srv.cli("migrate", "current")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out.strip(), r"^(sqlite|postgresql): database is at head \(\d+\)$")
        self.srv.sql("DELETE FROM schema_migrations WHERE version = "
                     "(SELECT MAX(version) FROM schema_migrations)")
        rc, out, err = self.srv.cli("migrate", "current")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out.strip(), r"^(sqlite|postgresql): database is at \d+, "
                         r"this binary knows up to \d+: 1 pending$")

    def test_migrate_history_lists_version_1(self):
        rc, out, err = self.srv.cli("migrate", "history")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, re.compile(r"^\s*0*1\b", re.M))

    def test_database_ahead_refused(self):
        # Copy row 1's columns so the types fit whatever the engine stores.
        self.srv.sql("INSERT INTO schema_migrations (version, name, checksum, applied_at) "
                     "SELECT 9999, 'from_the_future', checksum, applied_at "
                     "FROM schema_migrations WHERE version = 1")
        rc, out, err = self.srv.cli("migrate", "check")
        self.assertNotEqual(rc, 0)
        self.assertIn("database is at 9999, this binary knows up to", err)
        rc, log = self.srv.serve_expect_exit(timeout=15)
        self.assertNotEqual(rc, 0, "serve started on a database that is ahead")
        rc, out, err = self.srv.cli("migrate", "upgrade")
        self.assertNotEqual(rc, 0, "upgrade ran on a database that is ahead")

    def test_changed_checksum_refused(self):
        self.srv.sql("UPDATE schema_migrations SET checksum = 'deadbeef' WHERE version = 1")
        rc, out, err = self.srv.cli("migrate", "check")
        self.assertNotEqual(rc, 0)
        self.assertIn("checksum", err.lower())
        rc, log = self.srv.serve_expect_exit(timeout=15)
        self.assertNotEqual(rc, 0, "serve started with a changed migration")

    def test_migrate_check_behind(self):
        self.srv.sql("DELETE FROM schema_migrations WHERE version = "
                     "(SELECT MAX(version) FROM schema_migrations)")
        rc, out, err = self.srv.cli("migrate", "check")
        self.assertNotEqual(rc, 0)
        self.assertTrue(err.strip(), "no reason on stderr")

    def test_production_requires_jwt_secret(self):
        key = base64.b64encode(os.urandom(32)).decode()
        rc, out, err = self.srv.cli("serve", timeout=15, env={
            "ENVIRONMENT": "production", "JWT_SECRET_KEY": None, "ENCRYPTION_KEY": key})
        self.assertNotEqual(rc, 0)
        self.assertIn("JWT_SECRET_KEY", err)

    def test_production_requires_encryption_key(self):
        rc, out, err = self.srv.cli("serve", timeout=15, env={
            "ENVIRONMENT": "production", "JWT_SECRET_KEY": "p" * 40, "ENCRYPTION_KEY": None})
        self.assertNotEqual(rc, 0)
        lines = [l for l in err.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, err)
        self.assertIn("ENCRYPTION_KEY", lines[0])
        # production never generates keys into the data directory
        self.assertFalse(os.path.exists(os.path.join(self.srv.data_dir, "jwt_secret.key")))

    def test_development_generates_keys_once(self):
        def keys():
            out = {}
            for f in os.listdir(self.srv.data_dir):
                if f.endswith(".key"):
                    with open(os.path.join(self.srv.data_dir, f), "rb") as fh:
                        out[f] = fh.read()
            return out
        self.assertEqual(keys(), {})
        rc, out, err = self.srv.cli("org", "create", "--name", "Keys", "--slug", "keys")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.srv.cli("user", "create", "--email", "k@keys.test", "--password",
                                    "longpassword", "--org", "keys", "--role", "viewer")
        self.assertEqual(rc, 0, err)
        self.srv.start()
        first = keys()
        self.assertEqual(sorted(first), ["encryption.key", "jwt_secret.key"])
        r = self.srv.request("POST", "/api/v1/auth/login",
                             {"email": "k@keys.test", "password": "longpassword"})
        self.assertEqual(r.status, 200, r.text)
        token = r.json()["access_token"]
        self.assertEqual(self.srv.stop(), 0)
        self.srv.start()
        self.assertEqual(keys(), first, "the keys were generated again")
        # a token signed before the restart still verifies after it
        r = self.srv.request("GET", "/api/v1/auth/me", headers={"Authorization": "Bearer " + token})
        self.assertEqual(r.status, 200, r.text)

    def test_bootstrap_creates_the_demo_admin_once(self):
        rc, out, err = self.srv.cli("bootstrap")
        self.assertEqual(rc, 0, err)
        self.assertIn('organization "demo"', out)
        email = re.search(r"email:\s+(\S+)", out).group(1)
        password = re.search(r"password:\s+(\S+)", out).group(1)
        self.assertEqual(self.srv.sql("SELECT role FROM users WHERE email = '%s'" % email).strip(),
                         "org_admin")
        self.assertEqual(self.srv.sql("SELECT o.slug FROM organizations o JOIN users u "
                                      "ON u.organization_id = o.id WHERE u.email = '%s'"
                                      % email).strip(), "demo")
        rc, out2, err2 = self.srv.cli("bootstrap")
        self.assertEqual(rc, 0, err2)
        self.assertNotIn(password, out2 + err2, "the password was printed twice")
        self.assertEqual(self.srv.sql("SELECT COUNT(*) FROM organizations").strip(), "1")
        self.srv.start()
        r = self.srv.request("POST", "/api/v1/auth/login", {"email": email, "password": password})
        self.assertEqual(r.status, 200, r.text)

    def test_org_create_and_duplicate_slug(self):
        rc, out, err = self.srv.cli("org", "create", "--name", "Acme", "--slug", "acme")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, UUID_ANY)
        rc, out2, err2 = self.srv.cli("org", "create", "--name", "Acme 2", "--slug", "acme")
        self.assertNotEqual(rc, 0, out2)
        self.assertTrue(err2.strip(), "no error line on stderr")

    def test_user_create(self):
        rc, out, err = self.srv.cli("org", "create", "--name", "Acme", "--slug", "acme")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.srv.cli("user", "create", "--email", "a@b.c", "--password",
                                    "longpassword", "--org", "acme", "--role", "org_admin")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, UUID_ANY)
        self.assertNotIn("longpassword", out + err)

    def test_user_create_unknown_org_fails(self):
        rc, out, err = self.srv.cli("user", "create", "--email", "x@y.z", "--password",
                                    "longpassword", "--org", "no-such-org", "--role", "agent")
        self.assertNotEqual(rc, 0, out)
        self.assertTrue(err.strip())


if __name__ == "__main__":
    unittest.main()
