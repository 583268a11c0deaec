"""Rate limiting (API.md "Rate limiting"): per-IP and per-user token buckets,
429 rate_limited with Retry-After and RateLimit-* headers, off with
RATE_LIMIT_ENABLED=false, unlimited /health, /ready and /webhooks/meta, one budget shared by
two server processes through Redis, fail-open when Redis is down.

Key space: the suite's Redis is shared and never flushed, and bucket keys
are "ip:<client address>" / "user:<uuid>". User ids are fresh per run; for
the IP buckets every test sends from its own random loopback source address
(127.x.y.z: Linux routes all of 127/8 to lo, the server binds 127.0.0.1 and
sees the client's source address), so no two tests, engines or runs share
an IP bucket. Nothing here goes through harness.request(), which always
sends from 127.0.0.1.
"""

import http.client
import json
import os
import random
import socket
import time
import unittest

from harness import Headers, Response, Server, cli_user, free_port, timeout_scale

REDIS_URL = os.environ.get("PYTAKE_TEST_REDIS_URL")
PASSWORD = "rate-limit-pass-1"
LIMITED = {"RATE_LIMIT_ENABLED": "true", "RATE_LIMIT_REQUESTS_PER_MINUTE": "5"}
RL_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")

_used_ips = set()


def fresh_ip():
    """A loopback address no other test of this run uses."""
    while True:
        ip = "127.%d.%d.%d" % (random.randint(1, 254), random.randint(0, 255),
                               random.randint(1, 254))
        if ip not in _used_ips:
            _used_ips.add(ip)
            return ip


def send(srv, method, path, ip, token=None, body=None):
    """One request from source address ip; returns a harness Response."""
    headers = {}
    data = None
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10 * timeout_scale(),
                                      source_address=(ip, 0))
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        return Response(resp.status, Headers(resp.getheaders()), payload, resp.reason)
    finally:
        conn.close()


def make_user(srv, slug, email):
    """A viewer created with the CLI (no HTTP request, no token taken)."""
    rc, out, err = srv.cli("org", "create", "--name", "Org " + slug, "--slug", slug)
    if rc != 0 and "exists" not in (out + err):
        raise AssertionError("org create: %s%s" % (out, err))
    return cli_user(srv, email, PASSWORD, slug, "viewer")


def login_from(srv, ip, email):
    r = send(srv, "POST", "/api/v1/auth/login", ip, body={"email": email, "password": PASSWORD})
    if r.status != 200:
        raise AssertionError("login %s: %r" % (email, r))
    return r.json()["access_token"]


def redis_command(url, *args):
    """Minimal RESP client for checks (integer / bulk / simple replies)."""
    rest = url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = rest.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        s.sendall(out)
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        line = data.split(b"\r\n", 1)[0]
        if line[:1] == b":":
            return int(line[1:])
        return line.decode()


class LimitAssertions:
    def assert_limited(self, r, limit):
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.json()["error"]["code"], "rate_limited")
        self.assertGreaterEqual(int(r.headers["Retry-After"]), 1)
        self.assertLessEqual(int(r.headers["Retry-After"]), 60)
        self.assertEqual(r.headers["RateLimit-Limit"], str(limit))
        self.assertEqual(r.headers["RateLimit-Remaining"], "0")
        self.assertGreaterEqual(int(r.headers["RateLimit-Reset"]), 1)
        self.assertLessEqual(int(r.headers["RateLimit-Reset"]), 60)

    def assert_allowed(self, r, limit, remaining):
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("RateLimit-Limit"), str(limit), r.headers)
        self.assertEqual(r.headers.get("RateLimit-Remaining"), str(remaining), r.headers)
        self.assertGreaterEqual(int(r.headers["RateLimit-Reset"]), 1)
        self.assertLessEqual(int(r.headers["RateLimit-Reset"]), 60)
        self.assertNotIn("Retry-After", r.headers)


class InProcessLimits(LimitAssertions, unittest.TestCase):
    """RATE_LIMIT_REQUESTS_PER_MINUTE=5, in process (no REDIS_URL)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(env=LIMITED).start()
        cls.alice = "alice@rl.test"
        cls.bob = "bob@rl.test"
        make_user(cls.srv, "rl", cls.alice)
        make_user(cls.srv, "rl", cls.bob)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_sixth_request_is_429_with_headers(self):
        token = login_from(self.srv, fresh_ip(), self.alice)
        ip = fresh_ip()
        for remaining in (4, 3, 2, 1, 0):
            r = send(self.srv, "GET", "/api/v1/auth/me", ip, token)
            self.assert_allowed(r, 5, remaining)
        r = send(self.srv, "GET", "/api/v1/auth/me", ip, token)
        self.assert_limited(r, 5)
        # The denied request took nothing: still 429, not a negative count.
        self.assert_limited(send(self.srv, "GET", "/api/v1/auth/me", ip, token), 5)

    def test_user_bucket_follows_the_user_across_ips(self):
        token = login_from(self.srv, fresh_ip(), self.bob)
        for i in range(5):
            r = send(self.srv, "GET", "/api/v1/auth/me", fresh_ip(), token)
            self.assert_allowed(r, 5, 4 - i)  # every IP is fresh: the user bucket rules
        self.assert_limited(send(self.srv, "GET", "/api/v1/auth/me", fresh_ip(), token), 5)

    def test_ip_bucket_is_shared_by_users_of_one_ip(self):
        carol = "carol@rl.test"
        make_user(self.srv, "rl", carol)
        t_carol = login_from(self.srv, fresh_ip(), carol)
        dave = "dave@rl.test"
        make_user(self.srv, "rl", dave)
        t_dave = login_from(self.srv, fresh_ip(), dave)
        ip = fresh_ip()
        for _ in range(5):
            self.assertEqual(send(self.srv, "GET", "/api/v1/auth/me", ip, t_carol).status, 200)
        # dave's own bucket is full, but the shared IP bucket is empty.
        self.assert_limited(send(self.srv, "GET", "/api/v1/auth/me", ip, t_dave), 5)
        # From another address dave goes through, his bucket untouched.
        self.assert_allowed(send(self.srv, "GET", "/api/v1/auth/me", fresh_ip(), t_dave), 5, 4)

    def test_headers_show_the_more_restrictive_bucket(self):
        erin = "erin@rl.test"
        make_user(self.srv, "rl", erin)
        token = login_from(self.srv, fresh_ip(), erin)
        ip = fresh_ip()
        for _ in range(3):  # IP bucket down to 2, unauthenticated
            self.assertEqual(send(self.srv, "GET", "/health", ip).status, 200)  # not counted
            self.assertEqual(send(self.srv, "GET", "/api/v1/auth/me", ip).status, 401)
        # IP: 1 left after this one; user: 4 left -> the IP numbers.
        self.assert_allowed(send(self.srv, "GET", "/api/v1/auth/me", ip, token), 5, 1)
        # From a fresh IP (4 left) the user's bucket (3 left) is tighter.
        self.assert_allowed(send(self.srv, "GET", "/api/v1/auth/me", fresh_ip(), token), 5, 3)

    def test_unauthenticated_floods_are_limited_per_ip(self):
        ip = fresh_ip()
        for remaining in (4, 3, 2, 1, 0):
            r = send(self.srv, "GET", "/api/v1/users", ip, "not-a-token")
            self.assertEqual(r.status, 401, r)
            self.assertEqual(r.headers.get("RateLimit-Remaining"), str(remaining))
        r = send(self.srv, "GET", "/api/v1/users", ip, "not-a-token")
        self.assert_limited(r, 5)
        # Public routes (login) share the IP budget.
        r = send(self.srv, "POST", "/api/v1/auth/login", ip,
                 body={"email": self.alice, "password": "wrong"})
        self.assert_limited(r, 5)

    def test_wrong_password_logins_take_ip_tokens(self):
        ip = fresh_ip()
        statuses = [send(self.srv, "POST", "/api/v1/auth/login", ip,
                         body={"email": "nobody@rl.test", "password": "wrong-password"}).status
                    for _ in range(6)]
        self.assertEqual(statuses, [401] * 5 + [429])

    def test_health_and_ready_are_never_limited(self):
        ip = fresh_ip()
        for path in ("/health", "/ready"):
            for _ in range(20):
                r = send(self.srv, "GET", path, ip)
                self.assertEqual(r.status, 200, r)
                for h in RL_HEADERS:
                    self.assertNotIn(h, r.headers)
        # ...and they took nothing from the IP bucket.
        r = send(self.srv, "GET", "/api/v1/auth/me", ip)
        self.assertEqual(r.status, 401)
        self.assertEqual(r.headers.get("RateLimit-Remaining"), "4")

    def test_not_found_is_not_counted(self):
        # Unmatched paths never reach the hooks (no route, no flags).
        ip = fresh_ip()
        for _ in range(10):
            self.assertEqual(send(self.srv, "GET", "/api/v1/nope", ip).status, 404)
        self.assertEqual(send(self.srv, "GET", "/api/v1/auth/me", ip).headers.get(
            "RateLimit-Remaining"), "4")


class MetaWebhooksUnlimited(unittest.TestCase):
    """API.md: /webhooks/meta is not limited per IP (Meta sends bursts from
    a few addresses); the address's budget for the API is untouched."""

    APP_SECRET = "rl-webhook-app-secret"

    def test_meta_webhooks_are_not_limited_per_ip(self):
        import hashlib
        import hmac
        with Server(env=dict(LIMITED, META_APP_SECRET=self.APP_SECRET,
                             WEBHOOK_VERIFY_TOKEN="rl-verify")) as srv:
            ip = fresh_ip()
            body = json.dumps({"object": "whatsapp_business_account", "entry": []}).encode()
            sig = "sha256=" + hmac.new(self.APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
            for i in range(12):  # well over the limit of 5
                conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10 * timeout_scale(),
                                                  source_address=(ip, 0))
                try:
                    conn.request("POST", "/webhooks/meta", body=body, headers={
                        "Content-Type": "application/json", "X-Hub-Signature-256": sig})
                    resp = conn.getresponse()
                    resp.read()
                    with self.subTest(post=i):
                        self.assertEqual(resp.status, 200)
                        self.assertIsNone(resp.getheader("RateLimit-Remaining"))
                finally:
                    conn.close()
                r = send(srv, "GET", "/webhooks/meta?hub.mode=subscribe&hub.verify_token=rl-verify"
                         "&hub.challenge=42", ip)
                self.assertEqual((r.status, r.body), (200, b"42"), r)
                self.assertNotIn("RateLimit-Remaining", r.headers)
            # The API budget of that address is still whole.
            r = send(srv, "GET", "/api/v1/auth/me", ip)
            self.assertEqual(r.status, 401, r)
            self.assertEqual(r.headers.get("RateLimit-Remaining"), "4")


class Disabled(unittest.TestCase):
    def test_disabled_limits_nothing_and_sends_no_headers(self):
        env = dict(LIMITED, RATE_LIMIT_ENABLED="false")
        with Server(env=env) as srv:
            make_user(srv, "off", "off@rl.test")
            ip = fresh_ip()
            token = login_from(srv, ip, "off@rl.test")
            for _ in range(50):
                r = send(srv, "GET", "/api/v1/auth/me", ip, token)
                self.assertEqual(r.status, 200, r)
                for h in RL_HEADERS + ("Retry-After",):
                    self.assertNotIn(h, r.headers)
            r = send(srv, "GET", "/api/v1/auth/me", ip, "bad")
            self.assertEqual(r.status, 401)
            self.assertNotIn("RateLimit-Remaining", r.headers)


@unittest.skipUnless(REDIS_URL, "PYTAKE_TEST_REDIS_URL is not set")
class SharedThroughRedis(LimitAssertions, unittest.TestCase):
    def test_two_processes_share_one_budget(self):
        secret = "rl-shared-secret-" + "x" * 40
        env = {"RATE_LIMIT_ENABLED": "true", "RATE_LIMIT_REQUESTS_PER_MINUTE": "6",
               "REDIS_URL": REDIS_URL, "JWT_SECRET_KEY": secret}
        with Server(env=env) as a:
            b_env = dict(env, DATABASE_URL=a.database_url)
            with Server(env=b_env, migrate=False) as b:
                make_user(a, "shared", "shared@rl.test")
                token = login_from(a, fresh_ip(), "shared@rl.test")
                ip = fresh_ip()
                seen = []
                for srv in (a, b, a, b, a, b):
                    r = send(srv, "GET", "/api/v1/auth/me", ip, token)
                    self.assertEqual(r.status, 200, r)
                    seen.append(int(r.headers["RateLimit-Remaining"]))
                self.assertEqual(seen, [5, 4, 3, 2, 1, 0])
                self.assert_limited(send(a, "GET", "/api/v1/auth/me", ip, token), 6)
                self.assert_limited(send(b, "GET", "/api/v1/auth/me", ip, token), 6)
                # The user's bucket is shared too: from a fresh IP the
                # user has no token left on either process.
                self.assert_limited(send(b, "GET", "/api/v1/auth/me", fresh_ip(), token), 6)
                # The state really lives in Redis, with an expiry.
                key = "pytake:rl:b:ip:" + ip
                self.assertEqual(redis_command(REDIS_URL, "EXISTS", key), 1)
                self.assertGreater(redis_command(REDIS_URL, "PTTL", key), 0)
                self.assertIsNone(a.wait_for_log(
                    lambda o: "rate limiter degraded" in str(o.get("msg")), timeout=0))


class RedisDown(unittest.TestCase):
    def test_fails_open_with_one_warning(self):
        env = dict(LIMITED, REDIS_URL="redis://127.0.0.1:%d" % free_port())
        with Server(env=env) as srv:
            make_user(srv, "down", "down@rl.test")
            ip = fresh_ip()
            token = login_from(srv, ip, "down@rl.test")
            started = time.monotonic()
            for _ in range(12):  # well over the limit of 5
                r = send(srv, "GET", "/api/v1/auth/me", ip, token)
                self.assertEqual(r.status, 200, r)
            self.assertIsNotNone(srv.wait_for_log(
                lambda o: o.get("level") == "warn" and "rate limiter degraded" in str(o.get("msg"))))
            warnings = [o for o in srv.log_lines()
                        if "rate limiter degraded" in str(o.get("msg"))]
            if time.monotonic() - started < 9:
                self.assertEqual(len(warnings), 1, warnings)
            self.assertFalse([o for o in srv.log_lines() if o.get("status") == 500])


if __name__ == "__main__":
    unittest.main()
