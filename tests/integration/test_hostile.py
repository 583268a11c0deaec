"""Hostile input (issue 10): the server answers every one of these with a
4xx (or drops the connection where HTTP leaves no other choice), never
crashes, never hangs other clients, and GET /health is 200 after each case.

Covers: slowloris (headers one byte a second, REQUEST_TIMEOUT=2) while
other clients are served; oversized header lines and header blocks; deeply
nested JSON; invalid UTF-8 in JSON strings; huge numbers; path traversal in
routes (raw, %-encoded, double-encoded, encoded slashes); SQL injection
strings in every text field and filter of the implemented routes (answered
4xx or stored and read back byte-identical, tables intact); a flood of 50
concurrent wrong-password logins (answered 401/429/503 in bounded time,
bounded RSS). Runs on both engines.
"""

import concurrent.futures
import json
import os
import socket
import threading
import time
import unittest
import urllib.parse

from harness import (Server, bearer, bootstrap_super_admin, make_tenant, skip_under_valgrind,
                     timeout_scale)
import tenancy

REQUEST_TIMEOUT = 2

SQL_INJECTIONS = [
    "' OR 1=1 --",
    "\"; DROP TABLE users; --",
    "'); DELETE FROM organizations; --",
    "x' UNION SELECT password_hash FROM users --",
    "\u2019 OR \u20181\u2019=\u20181",          # unicode quotes
    "\u02bc; DROP TABLE contacts; --",         # modifier letter apostrophe
    "%' OR name LIKE '%",
    "\\'; SELECT pg_sleep(5); --",
    "Robert'); DROP TABLE students;--",
]


def rss_kib(pid):
    """VmRSS of pid in KiB (from /proc/PID/status)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def q(value):
    return urllib.parse.quote(value, safe="")


class HostileCase(unittest.TestCase):
    """One server per class (REQUEST_TIMEOUT=2), a super admin, two tenants."""

    ENV = {"REQUEST_TIMEOUT": str(REQUEST_TIMEOUT)}

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(env=cls.ENV)
        try:
            cls.srv.start()
            cls.su = bootstrap_super_admin(cls.srv)
            cls.a = make_tenant(cls.srv, cls.su["token"], "hostile-a")
        except Exception:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def tearDown(self):
        # After every hostile case the server must still serve.
        self.assert_healthy()

    def assert_healthy(self):
        self.assertIsNone(self.srv.proc.poll(), "server died")
        r = self.srv.request("GET", "/health", timeout=5)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"status": "ok"})

    def call(self, method, path, body=None, role="org_admin", headers=None, timeout=10):
        h = dict(bearer(self.a["users"][role]["token"]))
        h.update(headers or {})
        return self.srv.request(method, path, body, headers=h, timeout=timeout)

    def assert_error(self, r, statuses):
        self.assertIn(r.status, statuses, r)
        if r.headers.get("X-Request-Id"):  # our own answer (not MHD's): JSON error shape
            self.assertIn("error", r.json(), r)


class SlowClientTest(HostileCase):

    def test_slowloris_dropped_while_others_are_served(self):
        """Headers trickled one byte per second: the connection is closed
        within about REQUEST_TIMEOUT (bounded, not kept forever) and other
        clients keep being served meanwhile."""
        result = {}
        give_up = REQUEST_TIMEOUT * 3 + 6  # seconds of trickling before we call it kept

        def slow_client():
            s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=2)
            started = time.monotonic()
            try:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                while time.monotonic() - started < give_up * timeout_scale():
                    try:
                        s.sendall(b"a")
                    except OSError:
                        result["closed_after"] = time.monotonic() - started
                        return
                    s.settimeout(1.0)
                    try:
                        s.recv(4096)  # EOF, or an error answer before the close
                        result["closed_after"] = time.monotonic() - started
                        return
                    except socket.timeout:
                        pass
                    except OSError:
                        result["closed_after"] = time.monotonic() - started
                        return
                result["closed_after"] = None  # never dropped
            finally:
                s.close()

        t = threading.Thread(target=slow_client)
        t.start()
        waits = []
        # Several slow-loris connections at once must not starve anyone.
        extra = [socket.create_connection(("127.0.0.1", self.srv.port)) for _ in range(20)]
        try:
            for s in extra:
                s.sendall(b"GET /health HTTP/1.1\r\nHo")
            while t.is_alive():
                started = time.monotonic()
                r = self.srv.request("GET", "/health", timeout=5)
                self.assertEqual(r.status, 200, r)
                waits.append(time.monotonic() - started)
                time.sleep(0.2)
        finally:
            for s in extra:
                s.close()
            t.join()
        self.assertGreater(len(waits), 3)
        # Starved clients would wait probe after probe; one slow probe
        # alone is the test machine's scheduling (seen at load 5 per core).
        waits.sort()
        self.assertLess(waits[-2], 1.5 * timeout_scale(),
                        "normal clients waited behind slow ones: %r" % waits[-5:])
        closed = result.get("closed_after")
        self.assertIsNotNone(closed, "a client trickling headers was never dropped "
                                     "(still open after %d s of one byte a second; "
                                     "REQUEST_TIMEOUT=%d)" % (give_up, REQUEST_TIMEOUT))
        self.assertLess(closed, (REQUEST_TIMEOUT + 4) * timeout_scale(),
                        "slow client kept for %.1f s" % closed)

    def test_idle_connection_after_request_line_dropped(self):
        """A client that sends a partial request and then nothing."""
        started = time.monotonic()
        got = self.srv.http_raw(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n",
                                timeout=REQUEST_TIMEOUT + 6)
        took = time.monotonic() - started
        self.assertLess(took, (REQUEST_TIMEOUT + 5) * timeout_scale(),
                        "idle half-request kept %.1f s (%r)" % (took, got[:100]))

    def test_body_trickled_slowly_is_bounded(self):
        """Declared Content-Length, body never completes."""
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=1)
        started = time.monotonic()
        closed = None
        try:
            s.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
            for _ in range(int((REQUEST_TIMEOUT + 8) * timeout_scale())):
                try:
                    got = s.recv(4096)
                    if got == b"" or got:
                        closed = time.monotonic() - started
                        break
                except socket.timeout:
                    pass
                except OSError:
                    closed = time.monotonic() - started
                    break
        finally:
            s.close()
        self.assertIsNotNone(closed, "a stalled body was never dropped")
        self.assertLess(closed, (REQUEST_TIMEOUT + 4) * timeout_scale())


class MalformedInputTest(HostileCase):

    def test_oversized_headers(self):
        cases = {
            "one huge header": b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: "
                               + b"A" * (256 * 1024) + b"\r\n\r\n",
            "many headers": b"GET /health HTTP/1.1\r\nHost: x\r\n"
                            + b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 200) for i in range(2000))
                            + b"\r\n",
            "huge request line": b"GET /health?" + b"q" * (256 * 1024) + b" HTTP/1.1\r\n"
                                 b"Host: x\r\n\r\n",
            "huge cookie": b"GET /api/v1/auth/me HTTP/1.1\r\nHost: x\r\nCookie: "
                           + b"c=" * (100 * 1024) + b"\r\n\r\n",
            "huge authorization": b"GET /api/v1/auth/me HTTP/1.1\r\nHost: x\r\n"
                                  b"Authorization: Bearer " + b"e" * (200 * 1024)
                                  + b"\r\n\r\n",
        }
        for name, raw in cases.items():
            with self.subTest(name):
                try:
                    got = self.srv.http_raw(raw, timeout=10)
                except (BrokenPipeError, ConnectionResetError):
                    got = b""  # closed while we were still sending: allowed
                if got:
                    status = int(got.split(b" ", 2)[1])
                    self.assertIn(status, (400, 413, 414, 431), got[:300])
                self.assert_healthy()

    def test_deep_json(self):
        bodies = {
            "arrays": b"[" * 10000 + b"]" * 10000,
            "objects": b'{"a":' * 10000 + b"1" + b"}" * 10000,
            "unclosed": b"[" * 200000,
            "mixed": b'{"email":' + b'[{"x":' * 5000 + b"1" + b"}]" * 5000 + b"}",
        }
        for name, body in bodies.items():
            for method, path, role in (("POST", "/api/v1/auth/login", None),
                                       ("POST", "/api/v1/contacts", "agent"),
                                       ("PATCH", "/api/v1/organizations/me", "org_admin")):
                with self.subTest(name, path=path):
                    started = time.monotonic()
                    hdrs = {"Content-Type": "application/json"}
                    if role:
                        hdrs.update(bearer(self.a["users"][role]["token"]))
                    r = self.srv.request(method, path, body, headers=hdrs)
                    took = time.monotonic() - started
                    self.assertEqual(r.status, 400, r)
                    self.assertEqual(r.json()["error"]["code"] in
                                     ("invalid_json", "bad_request", "invalid_body"), True, r)
                    self.assertLess(took, 2.0 * timeout_scale(), "deep JSON took %.2fs" % took)
        self.assert_healthy()

    def test_invalid_utf8_in_json_strings(self):
        bad = [b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf8\x88\x80\x80\x80",
               b"ok\x80ok"]
        for raw in bad:
            with self.subTest(raw=raw):
                r = self.srv.request("POST", "/api/v1/auth/login",
                                     b'{"email":"a' + raw + b'@x.test","password":"pw-12345678"}',
                                     headers={"Content-Type": "application/json"})
                self.assertEqual(r.status, 400, r)
                r = self.call("POST", "/api/v1/contacts",
                              b'{"phone":"+5511999990001","name":"' + raw + b'"}',
                              headers={"Content-Type": "application/json"})
                self.assertEqual(r.status, 400, r)
                r = self.call("PATCH", "/api/v1/organizations/me",
                              b'{"name":"' + raw + b'"}',
                              headers={"Content-Type": "application/json"})
                self.assertEqual(r.status, 400, r)
        # a lone surrogate escape is not a Unicode scalar value either
        r = self.call("PATCH", "/api/v1/organizations/me", b'{"name":"\\ud800x"}',
                      headers={"Content-Type": "application/json"})
        self.assertIn(r.status, (400, 422), r)
        # and a NUL inside a string must not truncate anything silently
        r = self.call("PATCH", "/api/v1/organizations/me", b'{"name":"abc\\u0000def"}',
                      headers={"Content-Type": "application/json"})
        self.assertIn(r.status, (400, 422), r)
        me = self.call("GET", "/api/v1/organizations/me")
        self.assertEqual(me.status, 200, me)
        self.assertNotIn("\x00", me.json()["name"])

    def test_invalid_utf8_in_query_and_path(self):
        for path in ("/api/v1/contacts?q=%ff%fe", "/api/v1/contacts?tag=%c0%af",
                     "/api/v1/templates?name=%ed%a0%80", "/api/v1/templates?language=%ff",
                     "/api/v1/audit-logs?table_name=%ff", "/api/v1/audit-logs?action=%c0%af",
                     "/api/v1/audit-logs?record_id=%ff", "/api/v1/webhooks/events?field=%ff",
                     "/api/v1/users?cursor=%ff", "/api/v1/conversations?status=%ff",
                     "/api/v1/users/%ff"):
            with self.subTest(path):
                r = self.call("GET", path)
                if "?" in path:
                    # every query value is checked once, by the server
                    self.assertEqual(r.status, 400, r)
                    self.assertEqual(r.json()["error"]["code"], "invalid_query")
                else:
                    self.assertIn(r.status, (400, 404), r)

    def test_huge_numbers(self):
        number = tenancy.make_number(self.srv, self.a)
        for literal in (b"1e400", b"-1e400", b"99999999999999999999999",
                        b"-99999999999999999999999", b"9223372036854775808",
                        b"1.5", b"1e3", b"NaN", b"Infinity", b"-0"):
            with self.subTest(literal=literal):
                body = b'{"throughput_mps": ' + literal + b"}"
                r = self.call("PATCH", "/api/v1/whatsapp-numbers/" + number["id"], body,
                              headers={"Content-Type": "application/json"})
                if literal == b"1e3":
                    # a real where an integer is expected: wrong type or accepted
                    self.assertIn(r.status, (200, 400, 422), r)
                else:
                    self.assertIn(r.status, (400, 422), r)
                self.assert_healthy()
        got = self.call("GET", "/api/v1/whatsapp-numbers/" + number["id"])
        self.assertEqual(got.status, 200, got)
        self.assertIsInstance(got.json()["throughput_mps"], int)
        for value in ("99999999999999999999999", "1e400", "-1", "0", "abc", "9223372036854775808"):
            with self.subTest(limit=value):
                r = self.call("GET", "/api/v1/contacts?limit=" + value)
                self.assertIn(r.status, (400, 422), r)
        r = self.call("POST", "/api/v1/contacts",
                      b'{"phone": 99999999999999999999999}',
                      headers={"Content-Type": "application/json"})
        self.assertIn(r.status, (400, 422), r)

    def test_path_traversal(self):
        paths = [
            "/api/v1/users/../../etc/passwd",
            "/api/v1/users/%2e%2e/%2e%2e/etc/passwd",
            "/api/v1/users/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
            "/api/v1/users/..%2f..%2f..%2fetc%2fpasswd",
            "/api/v1/users/%252e%252e%252fetc%252fpasswd",
            "/api/v1/users/..%5c..%5cetc%5cpasswd",
            "/api/v1/users/%c0%ae%c0%ae/etc/passwd",
            "/api/v1/./users",
            "/api/v1//users",
            "/../../../../etc/passwd",
            "/docs/../../../../etc/passwd",
            "/openapi.json/../../etc/passwd",
            "/api/v1/contacts/%00",
            "/api/v1/contacts/..;/..;/etc/passwd",
            "/webhooks/meta/..%2f..%2fetc%2fpasswd",
        ]
        token = self.a["users"]["org_admin"]["token"]
        for path in paths:
            with self.subTest(path):
                raw = ("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                       "Connection: close\r\n\r\n" % (path, token)).encode()
                got = self.srv.http_raw(raw, timeout=5)
                self.assertTrue(got, "no answer for %s" % path)
                status = int(got.split(b" ", 2)[1])
                self.assertIn(status, (400, 404), got[:300])
                self.assertNotIn(b"root:x:0", got)
                self.assertNotIn(b"/bin/", got)

    def test_control_bytes_and_bad_request_lines(self):
        raws = [
            b"GET /health\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /he\x7flth HTTP/1.1\r\nHost: x\r\n\r\n",
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 200,  # TLS hello
            b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n",
            b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"fffffffffffffffff\r\nabc\r\n0\r\n\r\n",
            b"GET /health HTTP/1.1\r\nHost: x\r\nX-Bad\r\n\r\n",
        ]
        for raw in raws:
            with self.subTest(raw=raw[:40]):
                try:
                    got = self.srv.http_raw(raw, timeout=5, shutdown_write=True)
                except (BrokenPipeError, ConnectionResetError):
                    got = b""
                if got.startswith(b"HTTP/"):
                    status = int(got.split(b" ", 2)[1])
                    # only the HTTP/9.9 and bare-header cases may still be served
                    self.assertTrue(status >= 400 or b"/health" in raw, got[:300])
                self.assert_healthy()


class SqlInjectionTest(HostileCase):
    """Every text field and filter: answered 4xx, or stored literally."""

    def table_counts(self):
        out = {}
        for table in ("users", "organizations", "contacts", "audit_logs"):
            out[table] = int(self.srv.sql("SELECT COUNT(*) FROM %s" % table).strip())
        return out

    def assert_tables_intact(self, before):
        after = self.table_counts()
        for table, n in before.items():
            self.assertGreaterEqual(after[table], n, "%s lost rows" % table)
        # the data that was there is still usable
        # (the viewer is never a target of failed logins here, so no lockout)
        r = self.srv.request("POST", "/api/v1/auth/login",
                             {"email": self.a["users"]["viewer"]["email"],
                              "password": self.a["password"]})
        self.assertEqual(r.status, 200, r)

    def test_login_email_and_password(self):
        before = self.table_counts()
        for s in SQL_INJECTIONS:
            for body in ({"email": s, "password": s},
                         {"email": self.su["email"] + s, "password": "x"},
                         {"email": self.su["email"], "password": s}):
                with self.subTest(body=body):
                    r = self.srv.request("POST", "/api/v1/auth/login", body)
                    self.assertIn(r.status, (400, 401, 422, 429), r)
                    self.assertNotIn("access_token", r.text)
        self.assert_tables_intact(before)

    def test_user_full_name_and_email(self):
        before = self.table_counts()
        for i, s in enumerate(SQL_INJECTIONS):
            with self.subTest(s=s):
                email = "sqli%d@hostile.test" % i
                r = self.call("POST", "/api/v1/users", {
                    "email": email, "password": "password-123", "full_name": s,
                    "role": "viewer"})
                self.assertEqual(r.status, 201, r)
                uid = r.json()["id"]
                got = self.call("GET", "/api/v1/users/" + uid)
                self.assertEqual(got.status, 200, got)
                self.assertEqual(got.json()["full_name"], s)
                r = self.call("PATCH", "/api/v1/users/" + uid, {"full_name": s + s})
                self.assertEqual(r.status, 200, r)
                self.assertEqual(self.call("GET", "/api/v1/users/" + uid).json()["full_name"],
                                 s + s)
                # an injection string as the email itself: refused or literal
                r = self.call("POST", "/api/v1/users", {
                    "email": s, "password": "password-123", "full_name": "x", "role": "viewer"})
                self.assertIn(r.status, (400, 409, 422), r)
                r = self.call("POST", "/api/v1/users", {
                    "email": "a%d'--@hostile.test" % i, "password": "password-123",
                    "full_name": "x", "role": "viewer"})
                self.assertIn(r.status, (201, 400, 422), r)
                if r.status == 201:
                    self.assertEqual(r.json()["email"], "a%d'--@hostile.test" % i)
                # the injection as a path id
                r = self.call("GET", "/api/v1/users/" + q(s))
                self.assertIn(r.status, (400, 404), r)
        after = self.table_counts()
        self.assertGreaterEqual(after["users"], before["users"] + len(SQL_INJECTIONS))
        self.assert_tables_intact(before)

    def test_org_name(self):
        before = self.table_counts()
        for i, s in enumerate(SQL_INJECTIONS):
            with self.subTest(s=s):
                r = self.call("PATCH", "/api/v1/organizations/me", {"name": s})
                self.assertEqual(r.status, 200, r)
                self.assertEqual(self.call("GET", "/api/v1/organizations/me").json()["name"], s)
                r = self.srv.request("POST", "/api/v1/organizations", {
                    "name": s, "slug": "sqli-%d" % i,
                    "admin": {"email": "adm%d@sqli.test" % i, "password": "password-123",
                              "full_name": s}}, headers=bearer(self.su["token"]))
                self.assertEqual(r.status, 201, r)
                self.assertEqual(r.json()["name"], s)
                # an injection as the slug is refused
                r = self.srv.request("POST", "/api/v1/organizations", {
                    "name": "x", "slug": s,
                    "admin": {"email": "slug%d@sqli.test" % i, "password": "password-123",
                              "full_name": "x"}}, headers=bearer(self.su["token"]))
                self.assertIn(r.status, (400, 422), r)
        r = self.srv.request("GET", "/api/v1/organizations?limit=200",
                             headers=bearer(self.su["token"]))
        self.assertEqual(r.status, 200, r)
        names = [o["name"] for o in r.json()["items"]]
        for s in SQL_INJECTIONS:
            self.assertIn(s, names)
        self.assert_tables_intact(before)

    def test_contact_fields_and_filters(self):
        before = self.table_counts()
        for i, s in enumerate(SQL_INJECTIONS):
            with self.subTest(s=s):
                phone = "+55 11 9%04d-%04d" % (os.getpid() % 10000, 7000 + i)
                r = self.call("POST", "/api/v1/contacts", {
                    "phone": phone, "name": s, "tags": [s[:30]],
                    "attributes": {"note": s}}, role="agent")
                self.assertIn(r.status, (201, 422), r)
                if r.status == 422:  # a tag may be refused by the tag rules
                    r = self.call("POST", "/api/v1/contacts", {
                        "phone": phone, "name": s, "attributes": {"note": s}}, role="agent")
                    self.assertEqual(r.status, 201, r)
                cid = r.json()["id"]
                got = self.call("GET", "/api/v1/contacts/" + cid, role="viewer").json()
                self.assertEqual(got["name"], s)
                self.assertEqual(got["attributes"]["note"], s)
                # filters: a 4xx, or an answer that only holds matching contacts
                r = self.call("GET", "/api/v1/contacts?q=" + q(s), role="viewer")
                self.assertEqual(r.status, 200, r)
                ids = [c["id"] for c in r.json()["items"]]
                self.assertIn(cid, ids)
                for c in r.json()["items"]:
                    hay = json.dumps(c, ensure_ascii=False).lower()
                    self.assertIn(s.lower(), hay)
                r = self.call("GET", "/api/v1/contacts?tag=" + q(s), role="viewer")
                self.assertIn(r.status, (200, 400, 422), r)
                if r.status == 200:
                    for c in r.json()["items"]:
                        self.assertIn(s, c.get("tags", []))
                r = self.call("GET", "/api/v1/contacts?opted_out=" + q(s), role="viewer")
                self.assertIn(r.status, (400, 422), r)
                r = self.call("GET", "/api/v1/contacts?cursor=" + q(s), role="viewer")
                self.assertIn(r.status, (400, 422), r)
        # the filter that would match everything if concatenated matches nothing
        r = self.call("GET", "/api/v1/contacts?q=" + q("' OR '1'='1"), role="viewer")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["items"], [])
        self.assert_tables_intact(before)

    def test_template_name_and_filters(self):
        number = tenancy.make_number(self.srv, self.a)
        before = self.table_counts()
        for s in SQL_INJECTIONS:
            with self.subTest(s=s):
                r = self.call("POST", "/api/v1/templates", {
                    "whatsapp_number_id": number["id"], "name": s, "language": "en_US",
                    "category": "UTILITY",
                    "components": [{"type": "BODY", "text": s}]})
                self.assertIn(r.status, (400, 422), r)  # Meta's name rule: [a-z0-9_]
                for field in ("name", "language", "status", "category", "whatsapp_number_id"):
                    r = self.call("GET", "/api/v1/templates?%s=%s" % (field, q(s)))
                    self.assertIn(r.status, (200, 400, 422), r)
                    if r.status == 200:
                        self.assertEqual(r.json()["items"], [], (field, r))
        # a valid template whose body text carries the string is stored literally
        s = SQL_INJECTIONS[1]
        r = self.call("POST", "/api/v1/templates", {
            "whatsapp_number_id": number["id"], "name": "sqli_body", "language": "en_US",
            "category": "UTILITY", "components": [{"type": "BODY", "text": "Hi " + s}]})
        self.assertEqual(r.status, 201, r)
        got = self.call("GET", "/api/v1/templates/" + r.json()["id"]).json()
        self.assertEqual(got["components"][0]["text"], "Hi " + s)
        self.assert_tables_intact(before)

    def test_audit_filters(self):
        before = self.table_counts()
        for s in SQL_INJECTIONS:
            for field in ("table_name", "action", "record_id", "user_id", "from", "to",
                          "cursor"):
                with self.subTest(s=s, field=field):
                    r = self.call("GET", "/api/v1/audit-logs?%s=%s" % (field, q(s)))
                    self.assertIn(r.status, (200, 400, 422), r)
                    if r.status == 200:
                        self.assertEqual(r.json()["items"], [], (field, r.text[:300]))
        self.assert_tables_intact(before)

    def test_webhook_event_filters(self):
        before = self.table_counts()
        for s in SQL_INJECTIONS:
            for field in ("field", "processed", "unrouted", "cursor", "limit"):
                with self.subTest(s=s, field=field):
                    r = self.call("GET", "/api/v1/webhooks/events?%s=%s" % (field, q(s)))
                    self.assertIn(r.status, (200, 400, 422), r)
                    if r.status == 200:
                        self.assertEqual(r.json()["items"], [], (field, r.text[:300]))
        self.assert_tables_intact(before)

    def test_other_filters(self):
        for s in SQL_INJECTIONS:
            for path in ("/api/v1/users?cursor=%s",
                         "/api/v1/conversations?status=%s",
                         "/api/v1/conversations?assigned_to=%s",
                         "/api/v1/conversations?whatsapp_number_id=%s",
                         "/api/v1/whatsapp-numbers?cursor=%s"):
                with self.subTest(s=s, path=path):
                    r = self.call("GET", path % q(s))
                    self.assertIn(r.status, (200, 400, 422), r)
                    if r.status == 200:
                        self.assertEqual(r.json()["items"], [], (path, r.text[:300]))


class LoginFloodTest(HostileCase):
    # Default REQUEST_TIMEOUT (30 s). (Before logins moved to the password
    # pool, api/offload.h, a connection queued behind an HTTP thread busy
    # hashing could be dropped by a 2 s inactivity timeout.)
    ENV = {}

    def test_login_flood_bounded(self):
        """50 concurrent wrong-password logins (several accounts, unknown
        emails too): every one answered 401/429/503 within bounds, RSS
        bounded, and a right password still works afterwards."""
        pid = self.srv.proc.pid
        # warm up: one real login so allocator arenas exist
        r = self.srv.request("POST", "/api/v1/auth/login",
                             {"email": self.a["users"]["viewer"]["email"],
                              "password": self.a["password"]})
        self.assertEqual(r.status, 200, r)
        rss_before = rss_kib(pid)
        peak = [rss_before]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    peak[0] = max(peak[0], rss_kib(pid))
                except (OSError, AssertionError):
                    return
                time.sleep(0.02)

        emails = [self.a["users"]["agent"]["email"], self.su["email"],
                  "nobody-%d@flood.test"]

        def attempt(i):
            email = emails[i % 3] % i if "%d" in emails[i % 3] else emails[i % 3]
            started = time.monotonic()
            r = self.srv.request("POST", "/api/v1/auth/login",
                                 {"email": email, "password": "wrong-password-%d" % i},
                                 timeout=60)
            return r, time.monotonic() - started

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.monotonic()
        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=50) as ex:
                results = list(ex.map(attempt, range(50)))
        finally:
            stop.set()
            sampler.join()
        total = time.monotonic() - started
        statuses = {}
        for r, took in results:
            statuses[r.status] = statuses.get(r.status, 0) + 1
            self.assertIn(r.status, (401, 429, 503), r)
            self.assertLess(took, 30 * timeout_scale(), "a login took %.1fs" % took)
            if r.status == 503:
                self.assertIn("Retry-After", r.headers)
        self.assertLess(total, 40 * timeout_scale(), statuses)
        rss_after = rss_kib(pid)
        # argon2id needs 64 MiB per hash; hashes are capped (2 x cores), so
        # the peak stays far below 50 x 64 MiB.
        cap_kib = (2 * (os.cpu_count() or 1) + 2) * 64 * 1024 + 128 * 1024
        self.assertLess(peak[0] - rss_before, cap_kib,
                        "RSS grew %d KiB during the flood (%r)" % (peak[0] - rss_before, statuses))
        self.assertLess(rss_after - rss_before, cap_kib,
                        "RSS after the flood %d KiB above before" % (rss_after - rss_before))
        # the accounts under attack are locked (429) but others still log in
        r = self.srv.request("POST", "/api/v1/auth/login",
                             {"email": self.a["users"]["viewer"]["email"],
                              "password": self.a["password"]})
        self.assertEqual(r.status, 200, r)


class LoginFloodHealthTest(HostileCase):
    # A fixed, small number of HTTP threads so the flood outnumbers them.
    ENV = {"HTTP_THREADS": "4"}
    LOGINS = 40
    HEALTH_MAX_S = 0.2

    @skip_under_valgrind("GET /health latency bound of 200 ms")
    def test_health_stays_fast_during_login_flood(self):
        """40 concurrent logins (wrong passwords, unknown emails, right
        passwords): argon2 runs on the password pool, not on the HTTP
        threads, so GET /health on other connections answers within 200 ms
        all along (more on an overloaded machine, see below). (When login hashed on the connection's HTTP thread, every
        thread was busy hashing or waiting for a password slot and /health
        queued behind them for seconds.)"""
        right = self.a["users"]["viewer"]["email"]
        emails = [right, "nobody-%d@flood.test", self.a["users"]["agent"]["email"]]
        flooding = threading.Event()

        def attempt(i):
            flooding.wait()
            pick = emails[i % 3]
            email = pick % i if "%d" in pick else pick
            password = self.a["password"] if pick == right else "wrong-password-%d" % i
            r = self.srv.request("POST", "/api/v1/auth/login",
                                 {"email": email, "password": password}, timeout=60)
            return r.status

        probes = []

        def probe_until(futures):
            flooding.wait()
            time.sleep(0.05)  # let the logins reach the server first
            while not all(f.done() for f in futures) or len(probes) < 3:
                started = time.monotonic()
                r = self.srv.request("GET", "/health", timeout=30)
                probes.append((time.monotonic() - started, r.status))
                time.sleep(0.01)

        with concurrent.futures.ThreadPoolExecutor(max_workers=self.LOGINS) as ex:
            futures = [ex.submit(attempt, i) for i in range(self.LOGINS)]
            prober = threading.Thread(target=probe_until, args=(futures,))
            prober.start()
            flooding.set()
            statuses = [f.result() for f in futures]
            prober.join()
        for st in statuses:
            self.assertIn(st, (200, 401, 429, 503), statuses)
        self.assertIn(200, statuses)  # the right password got in during the flood
        self.assertGreaterEqual(len(probes), 3, probes)
        times = sorted(took for took, _ in probes)
        self.assertTrue(all(st == 200 for _, st in probes), probes)
        # 200 ms on a machine with a free core; on one overloaded by other
        # work (shared CI runners) every process waits for a CPU, so the
        # bound grows with the 1-minute load per core. (The old code took
        # seconds here, at any load: a probe queued behind argon2 hashes.)
        # One probe in the run may meet a scheduling hiccup of the test
        # machine (the prober shares a Python process with 40 client
        # threads): the second-slowest probe holds the bound, the slowest
        # five times it -- both far below the seconds of the old code.
        load = os.getloadavg()[0] / (os.cpu_count() or 1)
        bound = self.HEALTH_MAX_S * timeout_scale() * max(1.0, load)
        why = ("GET /health took %.0f ms (slowest) and %.0f ms (second slowest) during the "
               "login flood (bound %.0f ms at load %.1f per core; %d probes, p50 %.0f ms; "
               "logins: %r)" % (times[-1] * 1000, times[-2] * 1000, bound * 1000, load,
                                len(times), times[len(times) // 2] * 1000,
                                {s: statuses.count(s) for s in set(statuses)}))
        self.assertLess(times[-2], bound, why)
        self.assertLess(times[-1], 5 * bound, why)


if __name__ == "__main__":
    unittest.main()
