"""Faults (issue 10): the world around the server breaks and the server
degrades cleanly instead of lying, hanging or dying.

- PostgreSQL restarted under load (PYTAKE_TEST_ENGINE=postgresql only): a
  private PostgreSQL (tests/lib/pg.sh) is restarted with `pg_ctl restart`
  while a thread sends signed webhooks; during the outage answers are 503
  (never 200 for an event that was not stored), afterwards 200 again
  without restarting pytake, and every event answered 200 is in
  webhook_events.
- Redis down (REDIS_URL pointing at a port where nothing listens): rate
  limits fail open (requests answered 200) and revocation falls back to
  the database (a logged-out access token is still refused).
- Graph API answering garbage or timing out (tests/fakes/fake_graph.py):
  POST /api/v1/messages answers within a bounded time with status failed
  and the server stays healthy.
- Disk full under SQLite (a 3 MiB tmpfs, root only): writes answer a clear
  5xx error, nothing is corrupted (PRAGMA integrity_check), and writes work
  again once space is back.
"""

import hashlib
import hmac
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (ROOT, HarnessError, Server, bearer, bootstrap_super_admin, engine_name,
                     free_port, login, make_tenant, timeout_scale)
import tenancy
from test_messages import InboxCase

APP_SECRET = "faults-test-app-secret"
_seq = itertools.count(1)


def sign(body):
    return "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(marker):
    """A signed-able webhook for an unknown number (stored unrouted) whose
    message id carries marker, so the stored row can be found again."""
    return json.dumps({"object": "whatsapp_business_account", "entry": [
        {"id": "990000000001", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000",
                         "phone_number_id": "990000000002"},
            "messages": [{"from": "5511999990000", "id": marker,
                          "timestamp": str(int(time.time())), "type": "text",
                          "text": {"body": "fault"}}]}}]}]}).encode()


def post_webhook(srv, marker, timeout=10):
    body = webhook_body(marker)
    return srv.request("POST", "/webhooks/meta", body, timeout=timeout, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": sign(body)})


# ---------------------------------------------------------------------------
# A private PostgreSQL, started and stopped with tests/lib/pg.sh's functions.
# ---------------------------------------------------------------------------

class PrivatePostgres:
    """pg_start from tests/lib/pg.sh in a bash child; the cluster outlives
    that shell (pg_ctl daemonizes), so we keep its dir and PID and stop it
    ourselves with pg_ctl (then by PID)."""

    def __init__(self):
        script = ('source "%s/tests/lib/pg.sh" && pg_start >&2 && '
                  'printf "%%s\\n" "$PG_TMPDIR" "$PG_DATADIR" "$PG_PORT" "$PG_PID" "$PG_BINDIR"'
                  % ROOT)
        p = subprocess.run(["bash", "-c", script], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=120)
        lines = p.stdout.split("\n")
        if p.returncode != 0 or len(lines) < 5:
            raise HarnessError("pg_start failed: %s" % p.stderr[-2000:])
        self.tmpdir, self.datadir, port, pid, self.bindir = lines[:5]
        self.port, self.pid = int(port), int(pid)
        self.admin_url = "postgresql://postgres@127.0.0.1:%d/postgres" % self.port
        self.runas = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def pg_ctl(self, *args, timeout=60):
        return subprocess.run(self.runas + [os.path.join(self.bindir, "pg_ctl"), "-D",
                                            self.datadir] + list(args),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)

    def restart(self, pause=0.0):
        """Stop (fast), wait pause seconds, start again on the same port."""
        p = self.pg_ctl("-m", "fast", "-w", "-t", "30", "stop")
        if p.returncode != 0:
            raise HarnessError("pg_ctl stop: %s" % p.stderr)
        time.sleep(pause)
        p = self.pg_ctl("-w", "-t", "60", "-l", os.path.join(self.tmpdir, "server.log"),
                        "-o", "-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off "
                        "-c max_connections=300" % (self.port, self.tmpdir), "start")
        if p.returncode != 0:
            raise HarnessError("pg_ctl start: %s" % p.stderr)
        with open(os.path.join(self.datadir, "postmaster.pid")) as f:
            self.pid = int(f.readline())

    def stop(self):
        if os.path.exists(os.path.join(self.datadir, "postmaster.pid")):
            self.pg_ctl("-m", "fast", "-w", "-t", "30", "stop")
        try:
            os.kill(self.pid, 0)
            os.kill(self.pid, 9)
        except ProcessLookupError:
            pass
        shutil.rmtree(self.tmpdir, ignore_errors=True)


@unittest.skipUnless(engine_name() == "postgresql", "needs PYTAKE_TEST_ENGINE=postgresql")
class PostgresRestartTest(unittest.TestCase):

    def setUp(self):
        self.pg = PrivatePostgres()
        saved = os.environ.get("PYTAKE_TEST_PG_URL")
        os.environ["PYTAKE_TEST_PG_URL"] = self.pg.admin_url
        try:
            self.srv = Server(env={"META_APP_SECRET": APP_SECRET}, engine="postgresql")
        finally:
            if saved is None:
                os.environ.pop("PYTAKE_TEST_PG_URL", None)
            else:
                os.environ["PYTAKE_TEST_PG_URL"] = saved
        self.srv.start()

    def tearDown(self):
        try:
            self.srv.pg_dbname = None  # the whole private cluster goes away
            self.srv.close()
        finally:
            self.pg.stop()

    def test_restart_under_webhook_load(self):
        acked, refused, other = [], [], []
        stop = threading.Event()

        def sender():
            while not stop.is_set():
                marker = "wamid.FAULT.%d.%d" % (os.getpid(), next(_seq))
                try:
                    r = post_webhook(self.srv, marker, timeout=20)
                except OSError as exc:
                    other.append((marker, repr(exc)))
                    continue
                if r.status == 200:
                    acked.append(marker)
                elif r.status == 503:
                    self.assertIn("Retry-After", r.headers)
                    refused.append(marker)
                else:
                    other.append((marker, r.status, r.text[:200]))
                time.sleep(0.005)

        threads = [threading.Thread(target=sender) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            time.sleep(1.0)
            before = len(acked)
            self.pg.restart(pause=2.0)
            # pytake must reconnect by itself: wait for fresh 200s
            deadline = time.monotonic() + 30 * timeout_scale()
            n = len(acked)
            while len(acked) < n + 20 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertGreater(before, 0, "no webhook was acknowledged before the restart")
        self.assertGreaterEqual(len(acked), n + 20,
                                "pytake did not recover after the restart (%d refused, %r)"
                                % (len(refused), other[:3]))
        self.assertGreater(len(refused), 0, "no 503 during a 2 s outage?")
        self.assertEqual(other, [], "answers other than 200/503 during the outage")
        # every acknowledged event is stored
        bodies = self.srv.sql("SELECT body FROM webhook_events")
        missing = [m for m in acked if m not in bodies]
        self.assertEqual(missing, [], "%d acknowledged events lost" % len(missing))
        self.assertEqual(self.srv.request("GET", "/health").status, 200)
        self.assertEqual(self.srv.request("GET", "/ready").status, 200)


# ---------------------------------------------------------------------------
# Redis down.
# ---------------------------------------------------------------------------

class RedisDownTest(unittest.TestCase):

    def test_rate_limits_fail_open_and_revocation_uses_the_database(self):
        dead = free_port()  # nothing listens there
        srv = Server(env={"REDIS_URL": "redis://127.0.0.1:%d" % dead,
                          "RATE_LIMIT_ENABLED": "true",
                          "RATE_LIMIT_REQUESTS_PER_MINUTE": "600"})
        with srv:
            su = bootstrap_super_admin(srv)
            tenant = make_tenant(srv, su["token"], "redisdown", roles=("agent",))
            token = tenant["users"]["agent"]["token"]
            started = time.monotonic()
            for _ in range(30):
                r = srv.request("GET", "/api/v1/auth/me", headers=bearer(token))
                self.assertEqual(r.status, 200, r)
            self.assertLess(time.monotonic() - started, 15 * timeout_scale(),
                            "every request waited for Redis")
            # logout revokes; with Redis gone the refusal must come from the DB
            r = srv.request("POST", "/api/v1/auth/logout", headers=bearer(token))
            self.assertEqual(r.status, 204, r)
            r = srv.request("GET", "/api/v1/auth/me", headers=bearer(token))
            self.assertEqual(r.status, 401, r)
            self.assertEqual(r.json()["error"]["code"], "invalid_token")
            # a fresh login still works
            fresh = login(srv, tenant["users"]["agent"]["email"], tenant["password"])
            r = srv.request("GET", "/api/v1/auth/me", headers=bearer(fresh))
            self.assertEqual(r.status, 200, r)
            self.assertEqual(srv.request("GET", "/health").status, 200)


# ---------------------------------------------------------------------------
# Graph API answering garbage or timing out.
# ---------------------------------------------------------------------------

class GraphFaultTest(InboxCase):

    def send_and_time(self, phone):
        started = time.monotonic()
        r = self.srv.request("POST", "/api/v1/messages", {
            "whatsapp_number_id": self.number["id"], "to": phone, "type": "text",
            "text": {"body": "Hi there"}}, timeout=90,
            headers=bearer(self.a["users"]["agent"]["token"]))
        return r, time.monotonic() - started

    def assert_failed(self, r):
        self.assertIn(r.status, (202, 502, 503, 504), r)
        if r.status == 202:
            self.assertEqual(r.json()["status"], "failed", r)
            got = self.call("GET", "/api/v1/messages/" + r.json()["id"], role="viewer")
            self.assertEqual(got.status, 200, got)
            self.assertEqual(got.json()["status"], "failed")

    def test_garbage_answers(self):
        garbage = [
            {"raw_body": "<html><body>502 Bad Gateway</body></html>", "http_status": 200},
            {"raw_body": "{\"messages\": [", "http_status": 200},
            {"raw_body": "\u0000\u00ff\u00fe binary", "http_status": 200},
            {"raw_body": "[1,2,3]", "http_status": 200},
            {"raw_body": "{\"messages\": [{\"id\": 12345}]}", "http_status": 200},
            {"raw_body": "x" * 1024, "raw_body_repeat": 20000, "http_status": 200},
            {"raw_body": "not json", "http_status": 500},
        ]
        for i, rule in enumerate(garbage):
            with self.subTest(i=i, rule=str(rule)[:60]):
                self.fake.reset()
                phone = "5511977%03d%04d" % (os.getpid() % 1000, i)
                self.open_window(phone)
                rule = dict(rule, match={"path_regex": "/messages$", "method": "POST"}, count=0)
                self.fake.error(**rule)
                r, took = self.send_and_time(phone)
                self.assertLess(took, 15 * timeout_scale(), "send took %.1fs" % took)
                self.assert_failed(r)
                self.assertEqual(self.srv.request("GET", "/health").status, 200)

    def test_timeout(self):
        phone = "5511966%03d0001" % (os.getpid() % 1000)
        self.open_window(phone)
        # beyond the client's 10 s timeout, on every attempt
        self.fake.error(match={"path_regex": "/messages$", "method": "POST"},
                        latency_ms=12000, count=0)
        health = []
        stop = threading.Event()

        def probe():
            # its own connection: the harness's client is not shared across threads
            import http.client
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=10)
                    conn.request("GET", "/health")
                    status = conn.getresponse().status
                    conn.close()
                except OSError as e:
                    status = "error: %s" % e
                health.append((status, time.monotonic() - t0))
                time.sleep(0.5)

        t = threading.Thread(target=probe)
        t.start()
        try:
            r, took = self.send_and_time(phone)
        finally:
            stop.set()
            t.join()
        # 3 attempts x 10 s + backoff: bounded, not stuck
        self.assertLess(took, 45 * timeout_scale(), "send took %.1fs" % took)
        self.assert_failed(r)
        self.assertTrue(health and all(s == 200 for s, _ in health), health)
        # A /health stuck behind the hanging send would wait for its 10 s
        # attempts, probe after probe; one slow probe alone is the test
        # machine's scheduling (seen at load 5 per core), so the
        # second-slowest holds the 2 s bound and the slowest a looser one.
        took_health = sorted(d for _, d in health)
        self.assertGreaterEqual(len(took_health), 2, health)
        self.assertLess(took_health[-2], 2 * timeout_scale(),
                        "other clients were stuck behind the hanging send: %r" % took_health[-5:])
        self.assertLess(took_health[-1], 8 * timeout_scale(),
                        "other clients were stuck behind the hanging send: %r" % took_health[-5:])


# ---------------------------------------------------------------------------
# Disk full under SQLite.
# ---------------------------------------------------------------------------

def _try_mount_tmpfs(path, size):
    if os.geteuid() != 0:
        return "not root: cannot mount a small tmpfs"
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", path],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return "mount -t tmpfs failed: %s" % p.stderr.strip()
    return None


@unittest.skipUnless(engine_name() == "sqlite", "SQLite only")
class DiskFullTest(unittest.TestCase):

    def setUp(self):
        self.mnt = tempfile.mkdtemp(prefix="pytake-diskfull-",
                                    dir=os.environ.get("PYTAKE_TEST_TMPDIR") or None)
        why = _try_mount_tmpfs(self.mnt, "3m")
        if why:
            os.rmdir(self.mnt)
            self.skipTest(why)
        self.srv = None

    def tearDown(self):
        try:
            if self.srv is not None:
                self.srv.close()
        finally:
            subprocess.run(["umount", self.mnt], capture_output=True)
            shutil.rmtree(self.mnt, ignore_errors=True)

    def fill(self):
        """Fill the tmpfs to the last byte with a filler file."""
        path = os.path.join(self.mnt, "filler")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for size in (65536, 4096, 512, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError:
                    pass
        finally:
            os.close(fd)
        return path

    def test_disk_full_is_a_clear_error_without_corruption(self):
        db = os.path.join(self.mnt, "pytake.db")
        self.srv = Server(env={"DATABASE_URL": "sqlite:" + db, "META_APP_SECRET": APP_SECRET},
                          engine="sqlite")
        self.srv.db_path = db
        self.srv.start()
        su = bootstrap_super_admin(self.srv)
        tenant = make_tenant(self.srv, su["token"], "diskfull", roles=("agent",))
        token = tenant["users"]["agent"]["token"]
        filler = self.fill()
        statuses = {}
        name = "n" * 200
        pad = {"k%d" % k: "p" * 1000 for k in range(8)}
        for i in range(200):
            r = self.srv.request("POST", "/api/v1/contacts", {
                "phone": "+1 415 555 %04d" % i, "name": name,
                "attributes": pad}, headers=bearer(token))
            statuses[r.status] = statuses.get(r.status, 0) + 1
            self.assertIn(r.status, (201, 500, 503, 507), r)
            if r.status != 201:
                self.assertIn("error", r.json(), r)
            w = post_webhook(self.srv, "wamid.FULL.%d" % i)
            statuses["wh%d" % w.status] = statuses.get("wh%d" % w.status, 0) + 1
            self.assertIn(w.status, (200, 503), w)
            self.assertEqual(self.srv.request("GET", "/health").status, 200)
        self.assertTrue(any(k in statuses for k in (500, 503, 507)),
                        "a full disk never produced an error: %r" % statuses)
        self.assertIsNone(self.srv.proc.poll(), "server died on a full disk")
        # space comes back: writes work again without a restart
        os.unlink(filler)
        deadline = time.monotonic() + 10 * timeout_scale()
        while True:
            r = self.srv.request("POST", "/api/v1/contacts", {
                "phone": "+1 415 555 9999", "name": "after"}, headers=bearer(token))
            if r.status == 201 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(r.status, 201, r)
        self.srv.stop()
        self.assertEqual(self.srv.sql("PRAGMA integrity_check").strip(), "ok")
        self.assertEqual(self.srv.sql("PRAGMA foreign_key_check").strip(), "")


if __name__ == "__main__":
    unittest.main()
