"""API documentation (issue 9): GET /openapi.json, the /docs page and its
assets, the OpenAPI document against the router's table (`pytake routes`)
in both directions, and the page in headless Chromium: it loads, lists the
operations, and "Try it out" -> "Execute" on GET /health really calls the
server and shows its answer.

The browser tests need Debian's `chromium` (scripts/deps.sh test installs
it); without it they are skipped. They run on the sqlite engine only: the
page does not touch the database."""

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import unittest
import urllib.request

from harness import Server, bearer, bootstrap_super_admin, timeout_scale

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC_PATH = os.path.join(ROOT, "docs", "openapi.json")
VENDOR = os.path.join(ROOT, "docs", "vendor", "swagger-ui")
METHODS = ("get", "put", "post", "delete", "patch")


def router_table(srv):
    """{(METHOD, pattern): (min_role, flags)} from `pytake routes`."""
    rc, out, err = srv.cli("routes")
    if rc != 0:
        raise AssertionError("pytake routes failed (%d): %s" % (rc, err))
    table = {}
    for line in out.splitlines():
        method, pattern, role, flags = line.split("\t")
        key = (method, pattern)
        if key in table:
            raise AssertionError("route %s %s twice in the table" % key)
        table[key] = (role, flags)
    return table


def operations(doc):
    """{(METHOD, path): operation} of the document."""
    ops = {}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                ops[(method.upper(), path)] = op
    return ops


class OpenApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        cls.srv.start()
        with open(DOC_PATH, encoding="utf-8") as f:
            cls.source = json.load(f)
        cls.routes = router_table(cls.srv)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def served(self):
        r = self.srv.request("GET", "/openapi.json")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("application/json"))
        return r.json()

    def test_served_document_is_the_repository_document(self):
        doc = self.served()
        self.assertTrue(doc["openapi"].startswith("3.1"))
        # a stale build (document edited, binary not rebuilt) fails here
        self.assertEqual(doc, self.source)

    def test_every_router_route_is_documented(self):
        ops = operations(self.served())
        missing = sorted("%s %s" % k for k in self.routes if k not in ops)
        self.assertEqual(missing, [], "routes without an OpenAPI operation")

    def test_every_documented_operation_is_routed_unless_marked(self):
        ops = operations(self.served())
        unrouted = sorted("%s %s" % k for k, op in ops.items()
                          if k not in self.routes and op.get("x-pytake-implemented", True))
        self.assertEqual(unrouted, [], "documented as implemented but not routed "
                         "(route them or mark x-pytake-implemented: false)")
        stale = sorted("%s %s" % k for k, op in ops.items()
                       if k in self.routes and op.get("x-pytake-implemented", True) is not True)
        self.assertEqual(stale, [], "marked x-pytake-implemented: false but routed: remove the mark")

    def test_least_roles_and_security_match_the_router(self):
        ops = operations(self.served())
        for key, (role, _flags) in self.routes.items():
            op = ops.get(key)
            if op is None:
                continue  # reported by test_every_router_route_is_documented
            with self.subTest(route="%s %s" % key):
                self.assertEqual(op.get("x-pytake-min-role"), role)
                if role == "none":
                    self.assertEqual(op.get("security"), [], "public route needs security: []")
                else:
                    self.assertNotEqual(op.get("security"), [], "route needs a token")
                    self.assertIn("401", op["responses"])

    def test_unimplemented_operations_answer_404(self):
        for (method, path), op in operations(self.source).items():
            if op.get("x-pytake-implemented", True):
                continue
            url = path.replace("{id}", "0192f7a4-5b1e-7c3d-9e8f-0a1b2c3d4e5f")
            with self.subTest(op="%s %s" % (method, path)):
                r = self.srv.request(method, url, body={} if method in ("POST", "PUT", "PATCH") else None)
                self.assertIn(r.status, (404, 405))
                self.assertIn(r.json()["error"]["code"], ("not_found", "method_not_allowed"))

    def test_paged_collections_document_and_answer_422(self):
        # a bad limit or cursor is 422 validation_error (api/paging.c) on every
        # collection; the document must say so, and the server must do it
        su = bootstrap_super_admin(self.srv, slug="docs-paging", email="root@docs.test")
        paged = [(m, p) for (m, p), op in operations(self.source).items()
                 if any(x.get("$ref", "").endswith("/Limit") for x in op.get("parameters", []))]
        self.assertGreater(len(paged), 5)
        for method, path in paged:
            with self.subTest(op="%s %s" % (method, path)):
                self.assertIn("422", operations(self.source)[(method, path)]["responses"])
                if "{" in path:
                    continue
                for q in ("limit=0", "limit=201", "cursor=garbage"):
                    r = self.srv.request(method, path + "?" + q, headers=bearer(su["token"]))
                    self.assertEqual(r.status, 422, (q, r))
                    self.assertEqual(r.json()["error"]["code"], "validation_error")

    def test_meta_calling_template_operations_document_502(self):
        # submit, sync and delete (of a submitted template) call Meta; its
        # refusal is 502 meta_error (tests/integration/test_templates.py)
        ops = operations(self.source)
        for key in (("POST", "/api/v1/templates/{id}/submit"), ("POST", "/api/v1/templates/sync"),
                    ("DELETE", "/api/v1/templates/{id}")):
            with self.subTest(op="%s %s" % key):
                resp = ops[key]["responses"]
                self.assertIn("502", resp)
                self.assertEqual(resp["502"]["content"]["application/json"]["example"]
                                 ["error"]["code"], "meta_error")

    def test_document_is_consistent(self):
        doc = self.source
        ids = [op["operationId"] for op in operations(doc).values()]
        self.assertEqual(len(ids), len(set(ids)), "duplicate operationId")

        def refs(node):
            if isinstance(node, dict):
                for k, v in node.items():
                    if k == "$ref":
                        yield v
                    else:
                        yield from refs(v)
            elif isinstance(node, list):
                for v in node:
                    yield from refs(v)
        for ref in set(refs(doc)):
            node = doc
            for part in ref[2:].split("/"):
                self.assertIn(part, node, "dangling $ref " + ref)
                node = node[part]
        self.assertEqual(doc["components"]["securitySchemes"]["bearerAuth"],
                         {**doc["components"]["securitySchemes"]["bearerAuth"],
                          "type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
        # the error shape of API.md
        err = doc["components"]["schemas"]["Error"]
        self.assertEqual(err["required"], ["error"])
        self.assertEqual(err["properties"]["error"]["required"], ["code", "message"])
        # money is a string, never a number
        self.assertEqual(doc["components"]["schemas"]["Money"]["type"], "string")

    def test_documented_examples_of_public_routes_hold(self):
        # the examples shown for /health and a validation error are what the server says
        doc = self.source
        ex = doc["paths"]["/health"]["get"]["responses"]["200"]["content"]["application/json"]["example"]
        self.assertEqual(self.srv.request("GET", "/health").json(), ex)
        r = self.srv.request("POST", "/api/v1/auth/login", body={"email": "nobody@x.test", "password": "wrong-pass"})
        ex = doc["paths"]["/api/v1/auth/login"]["post"]["responses"]["401"]["content"]["application/json"]["example"]
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["error"]["code"], ex["error"]["code"])


class DocsPageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server()
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_page_uses_only_local_assets(self):
        r = self.srv.request("GET", "/docs")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["Content-Type"].startswith("text/html"))
        html = r.body.decode()
        self.assertIn('src="/docs/assets/swagger-ui-bundle.js"', html)
        self.assertIn('href="/docs/assets/swagger-ui.css"', html)
        self.assertNotIn("http://", html.replace('http-equiv', ''))
        self.assertNotIn("https://", html)
        csp = r.headers["Content-Security-Policy"]
        self.assertIn("script-src 'self'", csp)
        self.assertIn("connect-src 'self'", csp)

    def test_assets_are_the_vendored_files(self):
        for name, ctype in (("swagger-ui.css", "text/css"), ("swagger-ui-bundle.js", "text/javascript"),
                            ("LICENSE", "text/plain")):
            with self.subTest(asset=name):
                r = self.srv.request("GET", "/docs/assets/" + name)
                self.assertEqual(r.status, 200)
                self.assertTrue(r.headers["Content-Type"].startswith(ctype))
                with open(os.path.join(VENDOR, name), "rb") as f:
                    self.assertEqual(r.body, f.read())
        r = self.srv.request("GET", "/docs/assets/docs.js")
        self.assertEqual(r.status, 200)
        self.assertIn(b"/openapi.json", r.body)

    def test_unknown_asset_is_404(self):
        for name in ("nope.js", "swagger-ui.css.map", "docs.JS", "..%2F..%2Fetc%2Fpasswd"):
            with self.subTest(name=name):
                r = self.srv.request("GET", "/docs/assets/" + name)
                # a decoded ".." is refused by the server before routing (400)
                self.assertIn(r.status, (404,) if ".." not in name else (400, 404))
                self.assertIn(r.json()["error"]["code"], ("not_found", "invalid_path"))

    def test_docs_routes_are_not_rate_limited(self):
        srv = Server(env={"RATE_LIMIT_ENABLED": "true", "RATE_LIMIT_REQUESTS_PER_MINUTE": "2"})
        with srv:
            for _ in range(5):
                self.assertEqual(srv.request("GET", "/openapi.json").status, 200)
                self.assertEqual(srv.request("GET", "/docs/assets/docs.js").status, 200)


# ---- headless Chromium -------------------------------------------------------

def chromium_binary():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--disable-dev-shm-usage", "--mute-audio"]


class WebSocket:
    """The smallest RFC 6455 client the DevTools protocol needs: one
    connection, masked text frames out, (possibly fragmented) text frames in."""

    def __init__(self, url, timeout):
        assert url.startswith("ws://")
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n" % (path, hostport, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("websocket handshake: connection closed")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError("websocket handshake refused: %r" % head[:200])

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("websocket closed")
            buf += chunk
        return buf

    def send(self, text):
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        if n < 126:
            head = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._recv_exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._recv_exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._recv_exact(8))[0]
            mask = self._recv_exact(4) if b1 & 0x80 else None
            payload = self._recv_exact(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise ConnectionError("websocket closed by peer")
            if opcode in (0x9, 0xA):
                continue  # ping/pong: Chrome does not expect answers here
            message += payload
            if b0 & 0x80:
                return message.decode()

    def close(self):
        self.sock.close()


class DevTools:
    """Chromium driven over --remote-debugging-port (DevTools protocol)."""

    def __init__(self, binary, url, timeout):
        self.profile = tempfile.mkdtemp(prefix="pytake-chromium-")
        self.proc = subprocess.Popen([binary] + CHROME_FLAGS + [
            "--user-data-dir=" + self.profile, "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1", url],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ws = None
        self.next_id = 0
        try:
            port = self._port(timeout)
            page = self._page(port, url, timeout)
            self.ws = WebSocket(page["webSocketDebuggerUrl"], timeout)
        except BaseException:
            self.close()
            raise

    def _port(self, timeout):
        path = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("chromium exited with %d" % self.proc.returncode)
            try:
                with open(path) as f:
                    first = f.readline().strip()
                if first.isdigit():
                    return int(first)
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("chromium did not open its DevTools port")

    def _page(self, port, url, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=5) as r:
                targets = json.load(r)
            for t in targets:
                if t.get("type") == "page" and t.get("url", "").startswith(url.split("#")[0]):
                    return t
            time.sleep(0.2)
        raise RuntimeError("no page target for %s" % url)

    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg["result"]

    def wait_loaded(self, path, timeout):
        """Wait until the page shows path and finished loading (the first
        navigation replaces the start-up context)."""
        deadline = time.monotonic() + timeout
        js = "location.pathname === %s && document.readyState === 'complete'" % json.dumps(path)
        while time.monotonic() < deadline:
            try:
                res = self.call("Runtime.evaluate", expression=js, returnByValue=True)
                if res["result"].get("value") is True:
                    return
            except RuntimeError:
                pass  # context destroyed by the navigation: ask again
            time.sleep(0.1)
        raise RuntimeError("page %s did not load" % path)

    def evaluate(self, expression, timeout_ms):
        """Run an async JS expression in the page; its JSON-able value."""
        self.ws.sock.settimeout(timeout_ms / 1000.0 + 10)
        res = self.call("Runtime.evaluate", expression=expression, awaitPromise=True,
                        returnByValue=True, timeout=timeout_ms)
        if "exceptionDetails" in res:
            raise AssertionError("page script failed: %s" % json.dumps(res["exceptionDetails"])[:2000])
        return res["result"].get("value")

    def close(self):
        if self.ws:
            self.ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


# Waits for Swagger UI to render, then on GET /health: expand, "Try it out",
# "Execute", and read the live response's status and body from the DOM.
TRY_HEALTH_JS = r"""
(async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const until = async (what, fn, ms) => {
    const end = Date.now() + ms;
    for (;;) {
      const v = fn();
      if (v) return v;
      if (Date.now() > end) throw new Error('timed out waiting for ' + what);
      await sleep(100);
    }
  };
  const LIMIT = %d;
  const op = await until('GET /health', () => document.getElementById('operations-operations-health'), LIMIT);
  const count = document.querySelectorAll('.opblock').length;
  if (!op.classList.contains('is-open')) op.querySelector('button.opblock-summary-control').click();
  const tryBtn = await until('Try it out', () => op.querySelector('.try-out__btn'), LIMIT);
  tryBtn.click();
  const exec = await until('Execute', () => op.querySelector('.btn.execute'), LIMIT);
  exec.click();
  const status = await until('a live response', () => {
    const el = op.querySelector('.live-responses-table .response .response-col_status');
    return el && el.textContent.trim();
  }, LIMIT);
  const body = await until('its body', () => {
    const el = op.querySelector('.live-responses-table .response-col_description .microlight, ' +
                                '.live-responses-table .response-col_description pre');
    return el && el.textContent;
  }, LIMIT);
  return {count: count, status: status, body: body};
})()
"""


@unittest.skipUnless(chromium_binary(), "chromium not installed (scripts/deps.sh test installs it)")
class DocsBrowserTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.environ.get("PYTAKE_TEST_ENGINE", "sqlite") != "sqlite":
            raise unittest.SkipTest("browser tests run on the sqlite engine only")
        cls.srv = Server()
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_page_loads_and_lists_operations(self):
        profile = tempfile.mkdtemp(prefix="pytake-chromium-")
        try:
            p = subprocess.run([chromium_binary()] + CHROME_FLAGS + [
                "--user-data-dir=" + profile, "--virtual-time-budget=15000", "--dump-dom",
                self.srv.base_url + "/docs"], stdin=subprocess.DEVNULL, capture_output=True,
                text=True, timeout=120 * timeout_scale())
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        dom = p.stdout
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        self.assertIn("PyTake API", dom)
        doc = json.load(open(DOC_PATH, encoding="utf-8"))
        # every documented path and operationId is on the rendered page
        for (method, path), op in operations(doc).items():
            with self.subTest(op="%s %s" % (method, path)):
                self.assertIn('data-path="%s"' % path, dom)
                self.assertIn(op["operationId"], dom)

    def test_try_it_out_on_health(self):
        before = sum(1 for line in self.srv.log_lines() if line.get("route") == "/health")
        limit_ms = int(30000 * timeout_scale())
        dt = DevTools(chromium_binary(), self.srv.base_url + "/docs", 30 * timeout_scale())
        try:
            dt.wait_loaded("/docs", 30 * timeout_scale())
            got = dt.evaluate(TRY_HEALTH_JS % limit_ms, limit_ms + 5000)
        finally:
            dt.close()
        self.assertGreater(got["count"], 40, "operations listed on the page")
        self.assertEqual(got["status"], "200")
        self.assertEqual(json.loads(got["body"]), {"status": "ok"})
        # the click really reached the server (the access log has the request)
        deadline = time.monotonic() + 5 * timeout_scale()
        while True:
            after = sum(1 for line in self.srv.log_lines() if line.get("route") == "/health")
            if after > before or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertGreater(after, before, "no GET /health in the server's access log")


if __name__ == "__main__":
    unittest.main()
