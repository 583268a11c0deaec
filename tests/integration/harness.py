"""Black-box test harness: runs the real `pytake` binary and talks HTTP to it.

Python standard library only. The engine comes from PYTAKE_TEST_ENGINE
(sqlite | postgresql); the binary is $PYTAKE_BUILD_DIR/pytake (default
build/pytake, relative to the repository root).

    with Server(env={"MAX_BODY_BYTES": "2048"}) as srv:
        r = srv.request("GET", "/health")
        assert r.status == 200 and r.json() == {"status": "ok"}

A Server owns a temp DATA_DIR and, for PostgreSQL, a fresh database
t_<random> created in the throwaway cluster of PYTAKE_TEST_PG_URL (dropped
again by close()). Every command (migrate, serve, cli) runs with the same
environment, with the temp dir as working directory so no stray .env is read.
"""

import atexit
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import weakref

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Settings a developer's shell might carry that must not leak into tests.
CONFIG_VARS = (
    "PORT", "BIND_ADDRESS", "DATABASE_URL", "REDIS_URL", "DATA_DIR",
    "JWT_SECRET_KEY", "ACCESS_TOKEN_EXPIRE_MINUTES", "REFRESH_TOKEN_EXPIRE_DAYS",
    "RATE_LIMIT_ENABLED", "RATE_LIMIT_REQUESTS_PER_MINUTE", "REQUEST_TIMEOUT",
    "SLOW_REQUEST_MS", "LOG_LEVEL", "LOG_FORMAT", "ENVIRONMENT",
    "META_APP_SECRET", "WEBHOOK_VERIFY_TOKEN", "GRAPH_API_BASE_URL",
    "ENCRYPTION_KEY", "MAX_BODY_BYTES", "MAX_HEADER_BYTES", "MAX_CONNECTIONS",
    "HTTP_THREADS", "DB_POOL_SIZE", "CAMPAIGN_MAX_ATTEMPTS", "OPT_OUT_KEYWORDS",
)


# Servers not closed yet: closed at interpreter exit (e.g. after SIGTERM in
# run.py) so no pytake process or test database outlives the suite.
_LIVE = weakref.WeakSet()


@atexit.register
def close_all_servers():
    for srv in list(_LIVE):
        try:
            srv.close()
        except Exception:  # best effort at exit
            pass


# Reports of AddressSanitizer, LeakSanitizer and UBSan (make asan).
SANITIZER_RE = re.compile(
    r"==\d+==ERROR: (AddressSanitizer|LeakSanitizer)|\S+:\d+:\d+: runtime error: ")


def sanitizer_report(text):
    """The part of text from the first sanitizer report on, or None."""
    m = SANITIZER_RE.search(text or "")
    return text[max(0, m.start() - 200):m.start() + 4000] if m else None


def valgrind_enabled():
    return os.environ.get("PYTAKE_VALGRIND", "") not in ("", "0")


def valgrind_command(tmpdir):
    """The valgrind prefix for `pytake serve` when PYTAKE_VALGRIND=1 (make
    valgrind), else []. One log per process in tmpdir/valgrind.PID.log."""
    if not valgrind_enabled():
        return []
    return ["valgrind", "--tool=memcheck", "--leak-check=full", "--error-exitcode=99",
            "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
            "--num-callers=30", "--track-fds=no",
            "--log-file=" + os.path.join(tmpdir, "valgrind.%p.log")]


def skip_under_valgrind(reason):
    """Decorator for a test (or class) that measures time or throughput:
    skipped with `reason` when the server runs under valgrind (make
    valgrind, PYTAKE_VALGRIND=1), where everything is 20-50x slower."""
    return unittest.skipIf(valgrind_enabled(), "timing test, skipped under valgrind: " + reason)


# "ERROR SUMMARY: N errors" with N > 0, or definite leaks, in a memcheck log.
VALGRIND_BAD_RE = re.compile(r"ERROR SUMMARY: [1-9]\d* errors|definitely lost: [1-9]")


def valgrind_report(tmpdir):
    """The text of every valgrind log in tmpdir that reports errors or
    definite leaks (also copied under PYTAKE_VALGRIND_KEEP when set), or None."""
    if not valgrind_enabled() or not tmpdir or not os.path.isdir(tmpdir):
        return None
    bad = []
    for name in sorted(os.listdir(tmpdir)):
        if not (name.startswith("valgrind.") and name.endswith(".log")):
            continue
        with open(os.path.join(tmpdir, name), "r", encoding="utf-8", errors="replace") as f:
            text = f.read()
        keep = os.environ.get("PYTAKE_VALGRIND_KEEP")
        if keep:
            os.makedirs(keep, exist_ok=True)
            shutil.copy(os.path.join(tmpdir, name),
                        os.path.join(keep, os.path.basename(tmpdir) + "-" + name))
        if VALGRIND_BAD_RE.search(text):
            bad.append("==== %s\n%s" % (name, text[-12000:]))
    return "valgrind:\n" + "\n".join(bad) if bad else None


def timeout_scale():
    """Multiplier for every wait (PYTAKE_TEST_TIMEOUT_SCALE, e.g. 3 under ASan)."""
    try:
        return max(1.0, float(os.environ.get("PYTAKE_TEST_TIMEOUT_SCALE", "1")))
    except ValueError:
        return 1.0


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary_path():
    build = os.environ.get("PYTAKE_BUILD_DIR", "build")
    if not os.path.isabs(build):
        build = os.path.join(ROOT, build)
    return os.path.join(build, "pytake")


def engine_name():
    engine = os.environ.get("PYTAKE_TEST_ENGINE", "sqlite")
    if engine not in ("sqlite", "postgresql"):
        raise HarnessError("PYTAKE_TEST_ENGINE must be sqlite or postgresql, got %r" % engine)
    return engine


class HarnessError(Exception):
    """The harness could not do what it was asked (server did not start...)."""


class Headers:
    """Case-insensitive response headers; repeated names keep every value."""

    def __init__(self, pairs):
        self._pairs = list(pairs)

    def get(self, name, default=None):
        low = name.lower()
        for k, v in self._pairs:
            if k.lower() == low:
                return v
        return default

    def get_all(self, name):
        low = name.lower()
        return [v for k, v in self._pairs if k.lower() == low]

    def __getitem__(self, name):
        v = self.get(name)
        if v is None:
            raise KeyError(name)
        return v

    def __contains__(self, name):
        return self.get(name) is not None

    def items(self):
        return list(self._pairs)

    def __repr__(self):
        return "Headers(%r)" % (self._pairs,)


class Response:
    """One HTTP answer: status, headers (case-insensitive), raw body, text."""

    def __init__(self, status, headers, body, reason=""):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.text = body.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.text)

    def __repr__(self):
        return "Response(%d, %r)" % (self.status, self.text[:300])


def parse_raw_response(data):
    """Parse raw HTTP/1.1 response bytes into a Response (first response only)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        raise HarnessError("incomplete HTTP response: %r" % data[:300])
    lines = head.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise HarnessError("bad status line: %r" % lines[0])
    pairs = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        pairs.append((k.strip(), v.strip()))
    headers = Headers(pairs)
    length = headers.get("Content-Length")
    body = rest[: int(length)] if length is not None else rest
    return Response(int(parts[1]), headers, body, parts[2] if len(parts) > 2 else "")


def _response_complete(data):
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            try:
                return len(rest) >= int(v.strip())
            except ValueError:
                return False
    return False


class Server:
    """The pytake binary under test, on one engine, with its own database.

    env: overrides added to the defaults (PORT, BIND_ADDRESS=127.0.0.1,
    ENVIRONMENT=development, LOG_FORMAT=json, DATA_DIR, DATABASE_URL,
    RATE_LIMIT_ENABLED=false). A value of None removes the variable.
    migrate: run `pytake migrate upgrade` before serving.
    """

    def __init__(self, env=None, migrate=True, engine=None):
        self.engine = engine or engine_name()
        self.binary = binary_path()
        if not os.access(self.binary, os.X_OK):
            raise HarnessError("%s not found or not executable: build first (make build)" % self.binary)
        self.migrate_first = migrate
        self._closed = False
        self.proc = None
        self.returncode = None
        self.pg_dbname = None
        self.tmpdir = None
        _LIVE.add(self)
        # Under run_all.sh's own temp dir when it set one (removed at its end).
        self.tmpdir = tempfile.mkdtemp(prefix="pytake-it-",
                                       dir=os.environ.get("PYTAKE_TEST_TMPDIR") or None)
        self.data_dir = os.path.join(self.tmpdir, "data")
        os.mkdir(self.data_dir)
        self.port = free_port()
        self.log_path = os.path.join(self.tmpdir, "server.log")
        self.stdout_path = os.path.join(self.tmpdir, "server.stdout")
        self.db_path = None
        self.env = self._base_env()
        try:
            self.database_url = self._make_database()
        except Exception:
            self.close()
            raise
        self.env["DATABASE_URL"] = self.database_url
        for k, v in (env or {}).items():
            if v is None:
                self.env.pop(k, None)
            else:
                self.env[k] = str(v)
        self.base_url = "http://127.0.0.1:%d" % self.port

    # ---- set-up -----------------------------------------------------------

    def _base_env(self):
        env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
        env.update({
            "PORT": str(self.port),
            "BIND_ADDRESS": "127.0.0.1",
            "ENVIRONMENT": "development",
            "LOG_FORMAT": "json",
            "DATA_DIR": self.data_dir,
            "RATE_LIMIT_ENABLED": "false",
        })
        return env

    def _make_database(self):
        if self.engine == "sqlite":
            self.db_path = os.path.join(self.tmpdir, "pytake.db")
            return "sqlite:" + self.db_path
        admin = os.environ.get("PYTAKE_TEST_PG_URL")
        if not admin:
            raise HarnessError("PYTAKE_TEST_PG_URL is not set (tests/run_all.sh starts PostgreSQL)")
        name = "t_" + secrets.token_hex(6)
        self._psql(admin, 'CREATE DATABASE "%s"' % name)
        self.pg_dbname = name
        u = urllib.parse.urlsplit(admin)
        return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))

    @staticmethod
    def _psql_bin():
        bindir = os.environ.get("PYTAKE_PG_BINDIR")
        if bindir and os.access(os.path.join(bindir, "psql"), os.X_OK):
            return os.path.join(bindir, "psql")
        return "psql"

    @classmethod
    def _psql(cls, url, query):
        p = subprocess.run(
            [cls._psql_bin(), url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", query],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise HarnessError("psql failed (%d): %s" % (p.returncode, p.stderr.strip()))
        return p.stdout

    # ---- running ----------------------------------------------------------

    def cli(self, *args, env=None, timeout=60):
        """Run `pytake ARGS` with the server's environment (plus env
        overrides; None removes a variable). Returns (rc, stdout, stderr)."""
        e = dict(self.env)
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = str(v)
        p = subprocess.run([self.binary] + [str(a) for a in args], env=e, cwd=self.tmpdir,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout * timeout_scale())
        report = sanitizer_report(p.stderr)
        if report:
            raise HarnessError("sanitizer report from `pytake %s`:\n%s"
                               % (" ".join(str(a) for a in args), report))
        return p.returncode, p.stdout, p.stderr

    def migrate(self):
        """Run `pytake migrate upgrade`; start() will not run it again."""
        self.migrate_first = False
        rc, out, err = self.cli("migrate", "upgrade")
        if rc != 0:
            raise HarnessError("pytake migrate upgrade failed (%d): %s%s" % (rc, out, err))

    def spawn(self):
        """Start `pytake serve` without waiting for it (stderr to log_path).
        With PYTAKE_VALGRIND=1 it runs under valgrind memcheck (see
        valgrind_command()); close() then fails on definite leaks or errors."""
        if self.proc is not None and self.proc.poll() is None:
            raise HarnessError("server already running")
        self.returncode = None
        with open(self.log_path, "ab") as log, open(self.stdout_path, "ab") as out:
            self.proc = subprocess.Popen(valgrind_command(self.tmpdir) + [self.binary, "serve"],
                                         env=self.env, cwd=self.tmpdir,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=log)
        return self.proc

    def start(self, wait_seconds=10):
        """Migrate (unless told not to), serve, wait for GET /health == 200."""
        if self.migrate_first:
            self.migrate()
        self.spawn()
        deadline = time.monotonic() + wait_seconds * timeout_scale()
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                raise HarnessError("server exited with %d before it was ready; log:\n%s"
                                   % (rc, self.log_text()[-4000:]))
            try:
                r = self.request("GET", "/health", timeout=2)
                if r.status == 200:
                    return self
                last = "status %d" % r.status
            except (OSError, http.client.HTTPException) as exc:
                last = repr(exc)
            time.sleep(0.05)
        self.stop()
        raise HarnessError("server not ready after %ss (%s); log:\n%s"
                           % (wait_seconds, last, self.log_text()[-4000:]))

    def serve_expect_exit(self, timeout=10):
        """Run `pytake serve` expecting it to refuse to start. Returns
        (rc, stderr_text); raises if it is still running after timeout."""
        if self.migrate_first:
            self.migrate()
        start = len(self.log_text())
        self.spawn()
        try:
            rc = self.proc.wait(timeout=timeout * timeout_scale())
        except subprocess.TimeoutExpired:
            self.stop()
            raise HarnessError("serve did not exit within %ss" % timeout)
        self.returncode = rc
        self.proc = None
        return rc, self.log_text()[start:]

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10):
        """SIGTERM the server, wait (then SIGKILL); return its exit code
        (negative: killed by that signal). None when it was not started."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout * timeout_scale())
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        self.proc = None
        return self.returncode

    def check_sanitizers(self):
        """Raise HarnessError when the server's log holds a sanitizer report."""
        report = sanitizer_report(self.log_text())
        if report:
            raise HarnessError("sanitizer report in the server log:\n" + report)

    def close(self):
        """Stop the server, drop its PostgreSQL database, remove temp files.
        Raises HarnessError afterwards when the server's log holds a
        sanitizer report (so leaks and UB fail the test that ran it)."""
        if self._closed:
            return
        self._closed = True
        _LIVE.discard(self)
        report = None
        try:
            self.stop()
            report = sanitizer_report(self.log_text()) or valgrind_report(self.tmpdir)
        finally:
            if self.pg_dbname:
                try:
                    self._psql(os.environ["PYTAKE_TEST_PG_URL"],
                               'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.pg_dbname)
                except (HarnessError, subprocess.SubprocessError, KeyError):
                    pass
            if self.tmpdir and not os.environ.get("PYTAKE_TEST_KEEP_TMP"):
                shutil.rmtree(self.tmpdir, ignore_errors=True)
        if report:
            raise HarnessError("sanitizer report in the server log:\n" + report)

    def __enter__(self):
        try:
            return self.start()
        except Exception:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- HTTP -------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, timeout=10):
        """One HTTP request on a new connection. body: dict/list (sent as
        JSON), str or bytes (sent as is), or None. Returns a Response."""
        hdrs = dict(headers or {})
        data = None
        if body is not None:
            if isinstance(body, (dict, list)):
                data = json.dumps(body).encode()
                if not any(k.lower() == "content-type" for k in hdrs):
                    hdrs["Content-Type"] = "application/json"
            elif isinstance(body, str):
                data = body.encode()
            else:
                data = bytes(body)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout * timeout_scale())
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
            return Response(resp.status, Headers(resp.getheaders()), payload, resp.reason)
        finally:
            conn.close()

    def http_raw(self, data, timeout=5, shutdown_write=False):
        """Send raw bytes on a new connection and return what came back
        (bytes) once one full response arrived, the server closed, or the
        timeout passed. Use parse_raw_response() on the result."""
        got = b""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout * timeout_scale()) as s:
            s.sendall(data)
            if shutdown_write:
                s.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + timeout * timeout_scale()
            while time.monotonic() < deadline and not _response_complete(got):
                s.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    break
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                got += chunk
        return got

    # ---- logs and database -------------------------------------------------

    def log_text(self):
        try:
            with open(self.log_path, "r", encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_lines(self):
        """The server's stderr lines that parse as JSON objects, in order."""
        out = []
        for line in self.log_text().splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out

    def wait_for_log(self, predicate, timeout=5):
        """Wait until some parsed log line satisfies predicate; return it or None."""
        deadline = time.monotonic() + timeout * timeout_scale()
        while True:
            for obj in self.log_lines():
                if predicate(obj):
                    return obj
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def sql(self, query):
        """Run SQL on this server's database (sqlite3 CLI or psql); return
        its output text ('|'-separated columns, one row per line)."""
        if self.engine == "sqlite":
            p = subprocess.run(["sqlite3", "-batch", "-bail", "-cmd", ".timeout 5000", self.db_path, query],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=60)
            if p.returncode != 0:
                raise HarnessError("sqlite3 failed (%d): %s" % (p.returncode, p.stderr.strip()))
            return p.stdout
        return self._psql(self.database_url, query)


# ---------------------------------------------------------------------------
# Identity helpers (issue 3: organizations, users, tokens). Small and generic:
# make organizations and users, log in, send authenticated requests.
# ---------------------------------------------------------------------------

ROLES = ("viewer", "agent", "org_admin", "super_admin")


def bearer(token):
    """Authorization header for an access token."""
    return {"Authorization": "Bearer " + token}


def login(srv, email, password):
    """POST /api/v1/auth/login; returns the access token (raises otherwise)."""
    r = srv.request("POST", "/api/v1/auth/login", {"email": email, "password": password})
    if r.status != 200:
        raise HarnessError("login %s failed: %r" % (email, r))
    return r.json()["access_token"]


def cli_user(srv, email, password, org_slug, role, full_name="Test User"):
    """`pytake user create` (the CLI path); returns the new user's id."""
    rc, out, err = srv.cli("user", "create", "--email", email, "--password", password,
                           "--org", org_slug, "--role", role, "--full-name", full_name)
    if rc != 0:
        raise HarnessError("pytake user create failed (%d): %s%s" % (rc, out, err))
    return out.strip()


def bootstrap_super_admin(srv, slug="root", email="root@pytake.test",
                          password="root-password-1"):
    """Create an organization and a super_admin with the CLI, log in.
    Returns {"org_id", "user_id", "email", "password", "token"}."""
    rc, out, err = srv.cli("org", "create", "--name", "Root " + slug, "--slug", slug)
    if rc != 0:
        raise HarnessError("pytake org create failed (%d): %s%s" % (rc, out, err))
    org_id = out.strip()
    user_id = cli_user(srv, email, password, slug, "super_admin", "Root")
    return {"org_id": org_id, "user_id": user_id, "email": email,
            "password": password, "token": login(srv, email, password)}


def make_tenant(srv, su_token, slug, roles=("agent", "viewer"), password="tenant-pass-1"):
    """A new organization through POST /api/v1/organizations (as super_admin)
    with its org_admin, plus one user per role in roles created by that
    org_admin through POST /api/v1/users. Every user is logged in.
    Returns {"org_id", "slug", "password", "users": {role: {"id", "email", "token"}}}."""
    admin_email = "admin@%s.test" % slug
    r = srv.request("POST", "/api/v1/organizations", {
        "name": "Org " + slug, "slug": slug,
        "admin": {"email": admin_email, "password": password, "full_name": "Admin " + slug}},
        headers=bearer(su_token))
    if r.status != 201:
        raise HarnessError("create organization %s: %r" % (slug, r))
    org = r.json()
    admin = {"id": org["admin"]["id"], "email": admin_email,
             "token": login(srv, admin_email, password)}
    users = {"org_admin": admin}
    for role in roles:
        email = "%s@%s.test" % (role.replace("_", "-"), slug)
        r = srv.request("POST", "/api/v1/users", {
            "email": email, "password": password, "full_name": role.title(), "role": role},
            headers=bearer(admin["token"]))
        if r.status != 201:
            raise HarnessError("create user %s: %r" % (email, r))
        users[role] = {"id": r.json()["id"], "email": email,
                       "token": login(srv, email, password)}
    return {"org_id": org["id"], "slug": slug, "password": password, "users": users}
