"""Operations (issue 9): GET /metrics in Prometheus text format, and
`pytake backup` / `pytake restore` round trips. Runs on both engines."""

import os
import re
import shutil
import tempfile
import time
import unittest

from harness import Server, bootstrap_super_admin, cli_user, login

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"\s*(,|$)')
VALUE_RE = re.compile(r"^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)$")
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count", "")}


def unescape(v):
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], v)


def parse_labels(text):
    """'a="x",b="y"' -> {"a": "x", "b": "y"}; raises ValueError."""
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL_RE.match(text, pos)
        if not m:
            raise ValueError("bad labels at %r" % text[pos:])
        if m.group(1) in labels:
            raise ValueError("duplicate label %s" % m.group(1))
        labels[m.group(1)] = unescape(m.group(2))
        pos = m.end()
    return labels


def parse_prometheus(text):
    """Parse Prometheus text format 0.0.4 strictly enough for the tests.
    Returns (types {family: type}, samples [(name, labels, value)]).
    Every sample line is `name{labels} value` and belongs to a family
    with a TYPE line before it; raises ValueError otherwise."""
    types, samples = {}, []
    if text and not text.endswith("\n"):
        raise ValueError("text must end with a newline")
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                if parts[2] in types or len(parts) != 4:
                    raise ValueError("bad or repeated TYPE line: %r" % line)
                if parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    raise ValueError("unknown type: %r" % line)
                types[parts[2]] = parts[3]
            continue
        m = re.match(r"([^\s{]+)(?:\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?$", line)
        if not m:
            raise ValueError("not `name{labels} value`: %r" % line)
        name, labels, value = m.group(1), parse_labels(m.group(2) or ""), m.group(3)
        if not NAME_RE.match(name):
            raise ValueError("bad metric name %r" % name)
        if not VALUE_RE.match(value):
            raise ValueError("bad value in %r" % line)
        family = family_of(name, types)
        if family is None:
            raise ValueError("sample %r has no TYPE line before it" % name)
        samples.append((name, labels, float(value)))
    return types, samples


def family_of(name, types):
    if name in types:
        return name
    for fam, typ in types.items():
        for suf in SUFFIXES.get(typ, ()):
            if suf and name == fam + suf:
                return fam
    return None


def sample_value(samples, name, **labels):
    for n, l, v in samples:
        if n == name and all(l.get(k) == w for k, w in labels.items()):
            return v
    return None


class PrometheusParserSelfTest(unittest.TestCase):
    """The test's parser must reject what is not the format."""

    def test_rejects_bad_text(self):
        bad = [
            "x 1\n",                                  # no TYPE
            "# TYPE x counter\nx{a=\"b} 1\n",         # unterminated label
            "# TYPE x counter\nx{a=\"b\"} one\n",     # not a number
            "# TYPE x counter\nx 1",                  # no final newline
            "# TYPE x counter\n# TYPE x counter\nx 1\n",
        ]
        for text in bad:
            with self.assertRaises(ValueError, msg=text):
                parse_prometheus(text)
        types, samples = parse_prometheus(
            '# TYPE h histogram\nh_bucket{le="+Inf",v="a\\"b\\\\c\\nd"} 2\nh_sum 1.5\nh_count 2\n')
        self.assertEqual(types, {"h": "histogram"})
        self.assertEqual(samples[0][1]["v"], 'a"b\\c\nd')


class MetricsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        try:
            cls.srv.start()
        except Exception:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def scrape(self):
        r = self.srv.request("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("Content-Type"),
                         "text/plain; version=0.0.4; charset=utf-8")
        return parse_prometheus(r.text)

    def scrape_until(self, name, want, **labels):
        """A request is counted when its connection's completion callback
        runs, just after the answer left (slower under ASan): scrape until
        the sample reaches `want` or 5 s pass, then return the last scrape."""
        deadline = time.monotonic() + 5
        while True:
            types, samples = self.scrape()
            got = sample_value(samples, name, **labels) or 0
            if got >= want or time.monotonic() > deadline:
                return types, samples
            time.sleep(0.02)

    def test_metrics_parse_and_have_the_families(self):
        types, samples = self.scrape()
        want = {
            "pytake_http_requests_total": "counter",
            "pytake_http_request_duration_seconds": "histogram",
            "pytake_http_in_flight": "gauge",
            "pytake_http_open_connections": "gauge",
            "pytake_db_pool_connections": "gauge",
            "pytake_db_pool_timeouts_total": "counter",
            "pytake_db_tx_retries_total": "counter",
            "pytake_ratelimit_rejections_total": "counter",
            "pytake_ratelimit_fail_open_total": "counter",
            "process_resident_memory_bytes": "gauge",
            "process_start_time_seconds": "gauge",
            "pytake_build_info": "gauge",
        }
        for name, typ in want.items():
            self.assertEqual(types.get(name), typ, name)
        self.assertGreater(sample_value(samples, "process_resident_memory_bytes"), 1 << 20)
        self.assertIsNotNone(sample_value(samples, "pytake_db_pool_connections", state="idle"))
        self.assertIsNotNone(sample_value(samples, "pytake_db_pool_connections", state="in_use"))
        self.assertEqual(sample_value(samples, "pytake_build_info"), 1)
        # the scrape itself is in flight while it renders, on an open connection
        self.assertGreaterEqual(sample_value(samples, "pytake_http_in_flight"), 1)
        self.assertGreaterEqual(sample_value(samples, "pytake_http_open_connections"), 1)

    def test_requests_counter_moves_for_health(self):
        _, before = self.scrape()
        b = sample_value(before, "pytake_http_requests_total",
                         route="/health", method="GET", status="200") or 0
        cb = sample_value(before, "pytake_http_request_duration_seconds_count",
                          route="/health", method="GET") or 0
        for _ in range(3):
            self.assertEqual(self.srv.request("GET", "/health").status, 200)
        _, after = self.scrape_until("pytake_http_request_duration_seconds_count", cb + 3,
                                     route="/health", method="GET")
        self.assertEqual(sample_value(after, "pytake_http_requests_total",
                                      route="/health", method="GET", status="200"), b + 3)
        self.assertEqual(sample_value(after, "pytake_http_request_duration_seconds_count",
                                      route="/health", method="GET"), cb + 3)
        inf = sample_value(after, "pytake_http_request_duration_seconds_bucket",
                           route="/health", method="GET", le="+Inf")
        self.assertEqual(inf, cb + 3)

    def test_histogram_buckets_are_cumulative(self):
        _, before = self.scrape()
        cb = sample_value(before, "pytake_http_request_duration_seconds_count",
                          route="/health", method="GET") or 0
        self.assertEqual(self.srv.request("GET", "/health").status, 200)
        _, samples = self.scrape_until("pytake_http_request_duration_seconds_count", cb + 1,
                                       route="/health", method="GET")
        buckets = [(l["le"], v) for n, l, v in samples
                   if n == "pytake_http_request_duration_seconds_bucket"
                   and l.get("route") == "/health" and l.get("method") == "GET"]
        self.assertGreater(len(buckets), 3)
        self.assertEqual(buckets[-1][0], "+Inf")
        bounds = [float(le) for le, _ in buckets[:-1]]
        self.assertEqual(bounds, sorted(bounds))
        counts = [v for _, v in buckets]
        self.assertEqual(counts, sorted(counts))

    def test_unknown_paths_are_not_labels(self):
        for i in range(5):
            self.assertEqual(self.srv.request("GET", "/no/such/path-%d" % i).status, 404)
        _, samples = self.scrape_until("pytake_http_requests_total", 5,
                                       route="unmatched", method="GET", status="404")
        routes = {l.get("route") for n, l, _ in samples if n == "pytake_http_requests_total"}
        self.assertIn("unmatched", routes)
        self.assertFalse(any(r and "path-" in r for r in routes), routes)
        self.assertGreaterEqual(sample_value(samples, "pytake_http_requests_total",
                                             route="unmatched", method="GET", status="404"), 5)

    def test_parameterised_routes_are_labelled_by_pattern(self):
        # two different ids, one series: the router's pattern, not the path
        ids = ("0192f7a4-5b1e-7c3d-9e8f-0a1b2c3d4e5f", "0192f7a4-5b1e-7c3d-9e8f-0a1b2c3d4e60")
        _, before = self.scrape()
        b = sample_value(before, "pytake_http_requests_total",
                         route="/api/v1/templates/{id}", method="GET", status="401") or 0
        for i in ids:
            self.assertEqual(self.srv.request("GET", "/api/v1/templates/" + i).status, 401)
        _, samples = self.scrape_until("pytake_http_requests_total", b + 2,
                                       route="/api/v1/templates/{id}", method="GET",
                                       status="401")
        self.assertEqual(sample_value(samples, "pytake_http_requests_total",
                                      route="/api/v1/templates/{id}", method="GET",
                                      status="401"), b + 2)
        routes = {l.get("route") for n, l, _ in samples if n == "pytake_http_requests_total"}
        self.assertFalse(any(r and ids[0][:8] in r for r in routes), routes)

    def test_strange_method_folded(self):
        r = self.srv.http_raw(b"BREW /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertTrue(r.startswith(b"HTTP/1.1 "), r[:100])
        _, samples = self.scrape()
        methods = {l.get("method") for n, l, _ in samples if n == "pytake_http_requests_total"}
        self.assertNotIn("BREW", methods)


class RateLimitMetricsTest(unittest.TestCase):

    def test_rejections_are_counted(self):
        with Server(env={"RATE_LIMIT_ENABLED": "true",
                         "RATE_LIMIT_REQUESTS_PER_MINUTE": "2"}) as srv:
            statuses = [srv.request("POST", "/api/v1/auth/login",
                                    {"email": "x@y.test", "password": "nope-nope"}).status
                        for _ in range(5)]
            self.assertIn(429, statuses)
            # a request is counted when its connection's completion callback
            # runs, just after the answer left: poll briefly for the last one
            deadline = time.monotonic() + 5
            while True:
                r = srv.request("GET", "/metrics")
                self.assertEqual(r.status, 200)  # /metrics itself is never limited
                _, samples = parse_prometheus(r.text)
                got = sample_value(samples, "pytake_http_requests_total",
                                   route="/api/v1/auth/login", method="POST", status="429")
                if got == statuses.count(429) or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            self.assertEqual(sample_value(samples, "pytake_ratelimit_rejections_total"),
                             statuses.count(429))
            self.assertEqual(sample_value(samples, "pytake_http_requests_total",
                                          route="/api/v1/auth/login", method="POST",
                                          status="429"), statuses.count(429))


def org_slugs(srv):
    return sorted(x for x in srv.sql("SELECT slug FROM organizations").split() if x)


class BackupRestoreTest(unittest.TestCase):

    def setUp(self):
        self.servers = []
        self.dir = tempfile.mkdtemp(prefix="pytake-backup-")
        self.file = os.path.join(self.dir, "pytake.backup")

    def tearDown(self):
        for s in self.servers:
            s.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def server(self, migrate=True):
        s = Server(migrate=False)
        self.servers.append(s)
        if migrate:
            s.migrate()
        return s

    def org(self, srv, slug):
        rc, out, err = srv.cli("org", "create", "--name", "Org " + slug, "--slug", slug)
        self.assertEqual(rc, 0, err)
        return out.strip()

    def source(self):
        src = self.server()
        self.org(src, "alpha")
        self.org(src, "beta")
        cli_user(src, "admin@alpha.test", "alpha-pass-1", "alpha", "org_admin")
        rc, out, err = src.cli("backup", self.file)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"^backup written: %s \(\d+ bytes, migration [1-9]\d*\)\n$"
                         % re.escape(self.file))
        self.assertGreater(os.path.getsize(self.file), 0)
        return src

    def test_round_trip_into_fresh_database(self):
        self.source()
        dst = self.server(migrate=False)
        rc, out, err = dst.cli("restore", self.file)
        self.assertEqual(rc, 0, err)
        self.assertIn("restored: %s" % self.file, out)
        self.assertEqual(org_slugs(dst), ["alpha", "beta"])
        rc, out, err = dst.cli("migrate", "check")
        self.assertEqual(rc, 0, out + err)
        dst.start()
        self.assertTrue(login(dst, "admin@alpha.test", "alpha-pass-1"))

    def test_refuses_non_empty_target_without_force(self):
        self.source()
        dst = self.server()
        self.org(dst, "gamma")
        before = dst.sql("SELECT id, slug, name FROM organizations ORDER BY id")
        rc, out, err = dst.cli("restore", self.file)
        self.assertNotEqual(rc, 0)
        self.assertIn("--force", err)
        self.assertEqual(out, "")
        self.assertEqual(dst.sql("SELECT id, slug, name FROM organizations ORDER BY id"), before)
        rc, out, err = dst.cli("restore", self.file, "--force")
        self.assertEqual(rc, 0, err)
        self.assertEqual(org_slugs(dst), ["alpha", "beta"])

    def test_refuses_target_holding_only_installation_data(self):
        # no organization yet, but a rate card: still not empty
        self.source()
        dst = self.server()
        rc, out, err = dst.cli("pricing", "seed")
        self.assertEqual(rc, 0, err)
        cards = dst.sql("SELECT count(*) FROM rate_cards").strip()
        self.assertNotEqual(cards, "0")
        rc, out, err = dst.cli("restore", self.file)
        self.assertNotEqual(rc, 0)
        self.assertIn("not empty", err)
        self.assertIn("rate_cards", err)
        self.assertEqual(out, "")
        self.assertEqual(dst.sql("SELECT count(*) FROM rate_cards").strip(), cards)
        self.assertEqual(org_slugs(dst), [])
        rc, out, err = dst.cli("restore", self.file, "--force")
        self.assertEqual(rc, 0, err)
        self.assertEqual(org_slugs(dst), ["alpha", "beta"])

    def test_backup_refuses_to_overwrite_without_force(self):
        src = self.source()
        size = os.path.getsize(self.file)
        self.org(src, "delta")
        rc, out, err = src.cli("backup", self.file)
        self.assertNotEqual(rc, 0)
        self.assertIn("already exists", err)
        self.assertEqual(os.path.getsize(self.file), size)
        rc, out, err = src.cli("backup", self.file, "--force")
        self.assertEqual(rc, 0, err)
        dst = self.server(migrate=False)
        rc, out, err = dst.cli("restore", self.file)
        self.assertEqual(rc, 0, err)
        self.assertEqual(org_slugs(dst), ["alpha", "beta", "delta"])
        self.assertEqual([f for f in os.listdir(self.dir) if ".tmp-" in f], [])

    def test_backup_while_serving(self):
        src = self.server()
        self.org(src, "live")
        src.start()
        rc, out, err = src.cli("backup", self.file)
        self.assertEqual(rc, 0, err)
        self.assertEqual(src.request("GET", "/health").status, 200)
        dst = self.server(migrate=False)
        self.assertEqual(dst.cli("restore", self.file)[0], 0)
        self.assertEqual(org_slugs(dst), ["live"])

    def test_restore_rejects_garbage(self):
        with open(self.file, "wb") as f:
            f.write(b"this is not a database backup\n" * 100)
        dst = self.server()
        self.org(dst, "keep")
        for args in ((self.file,), (self.file, "--force")):
            rc, out, err = dst.cli("restore", *args)
            self.assertNotEqual(rc, 0)
            self.assertIn("pytake: ", err)
        rc, _, err = dst.cli("restore", os.path.join(self.dir, "missing"))
        self.assertNotEqual(rc, 0)
        self.assertEqual(org_slugs(dst), ["keep"])

    def test_restore_refuses_backup_ahead_of_binary(self):
        src = self.server()
        self.org(src, "future")
        src.sql("INSERT INTO schema_migrations (version, name, checksum, applied_at) "
                "VALUES (9999, 'from_the_future', 'x', 0)")
        rc, out, err = src.cli("backup", self.file)
        self.assertEqual(rc, 0, err)
        self.assertIn("migration 9999", out)
        dst = self.server(migrate=False)
        rc, out, err = dst.cli("restore", self.file, "--force")
        self.assertNotEqual(rc, 0)
        self.assertIn("9999", err)
        self.assertIn("newer pytake", err)

    def test_usage_errors(self):
        dst = self.server()
        for args in (("backup",), ("restore",), ("backup", "a", "b"), ("backup", "--bogus", "x")):
            rc, out, err = dst.cli(*args)
            self.assertEqual(rc, 2, args)
            self.assertTrue(err.startswith("pytake: "), err)

    @unittest.skipUnless(os.environ.get("PYTAKE_TEST_ENGINE") == "postgresql",
                         "pg_dump is used on PostgreSQL only")
    def test_missing_pg_dump_names_the_package(self):
        src = self.server()
        rc, out, err = src.cli("backup", self.file, env={"PATH": self.dir})
        self.assertNotEqual(rc, 0)
        self.assertIn("postgresql-client", err)
        self.assertFalse(os.path.exists(self.file))
        self.assertNotIn(src.database_url, err)


if __name__ == "__main__":
    unittest.main()
