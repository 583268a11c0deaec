#!/usr/bin/env python3
"""fake_graph.py - a fake Meta Graph API (WhatsApp Cloud API) for tests and
benchmarks. Python 3 standard library only.

    python3 tests/fakes/fake_graph.py --port 0 --port-file F

Binds 127.0.0.1, prints the chosen port on stdout and writes it to F
(atomically). HTTP/1.1 with keep-alive; every answer has Content-Length.

Graph endpoints (with or without a version prefix such as /v24.0):
  POST   /{phone_number_id}/messages        -> {"messaging_product", "contacts",
                                                "messages": [{"id": "wamid..."}]}
  POST   /{waba_id}/message_templates       -> {"id", "status": "PENDING", "category"}
  GET    /{waba_id}/message_templates       -> pages of the template store
         ?limit=N&after=CURSOR                 (paging.cursors, paging.next)
  DELETE /{waba_id}/message_templates?name=N[&hsm_id=I] -> {"success": true}
A request without "Authorization: Bearer <token>" gets Meta's error 190.

Control API (not recorded in the call log):
  POST /_fake/errors     {"match": {"path_regex"?, "method"?}, "code"?,
                          "subcode"?, "http_status"?, "message"?, "type"?,
                          "fbtrace_id"?, "details"?, "count"? (default 1,
                          <= 0 = forever), "latency_ms"?, "raw_body"?,
                          "raw_body_repeat"?}
         A rule with "code" answers Meta's error object; with "raw_body"
         answers those bytes (repeated raw_body_repeat times) verbatim;
         with neither it only adds latency_ms before the normal answer.
  POST /_fake/latency    {"ms": N}     latency added to every Graph request
  GET  /_fake/calls      [{method, path, query, headers, body, ts, status,
                          wamid, peer_port}] (body is the parsed JSON, or the
                         raw text when not JSON; ts = wall-clock seconds
                         (float) when the request arrived; peer_port = the
                         client's TCP source port, one per connection, so
                         tests can see connection reuse; status = the HTTP status
                         answered, wamid = the message id a 200 to
                         /messages returned; both null until answered)
         ?fields=ts,status   only those keys of each call (big logs, benches)
         ?path_contains=S    only calls whose path contains S
  POST /_fake/reset      clears rules, latency, call log and templates
  POST /_fake/templates  {"waba_id", "templates": [...], "page_size"?,
                          "next_base"?}  seeds what list returns (replaces);
         page_size defaults to half the store (so a seeded store of two or
         more templates lists in two pages); next_base overrides the
         scheme://host:port of paging.next (to test SSRF defences).
"""

import argparse
import base64
import collections
import gc
import itertools
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 16 * 1024 * 1024
GC_FREEZE_EVERY = 2000
MAX_CALLS = 100000
VERSION_RE = re.compile(r"^/v\d+(\.\d+)?(?=/)")

DEFAULT_MESSAGES = {
    100: "Invalid parameter",
    190: "Invalid OAuth access token - Cannot parse access token",
    130429: "Rate limit hit",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    131026: "Message undeliverable",
    132001: "Template name does not exist in the translation",
    131000: "Something went wrong",
    80007: "Rate limit issues",
}


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.reset()

    def reset(self):
        with self.lock:
            self.rules = []
            self.latency_ms = 0
            self.calls = collections.deque(maxlen=MAX_CALLS)
            self.templates = {}   # waba_id -> list of template dicts
            self.page_size = {}   # waba_id -> int
            self.next_base = {}   # waba_id -> "scheme://host:port"
            self.template_ids = itertools.count(1689556908129000)

    def next_id(self):
        return next(self.ids)

    def take_rule(self, method, path):
        """The first matching error rule, with its count consumed."""
        with self.lock:
            for rule in self.rules:
                m = rule.get("match") or {}
                if m.get("method") and m["method"].upper() != method:
                    continue
                if m.get("path_regex") and not re.search(m["path_regex"], path):
                    continue
                count = rule.get("count", 1)
                if count is not None and count > 0:
                    rule["count"] = count - 1
                    if rule["count"] == 0:
                        self.rules.remove(rule)
                return rule
        return None


STATE = State()


def meta_error(code, message=None, http_status=400, subcode=None, etype="OAuthException",
               fbtrace_id=None, details=None):
    if message is None:
        message = "(#%d) %s" % (code, DEFAULT_MESSAGES.get(code, "Error"))
    err = {"message": message, "type": etype, "code": code}
    if subcode is not None:
        err["error_subcode"] = subcode
    err["error_data"] = {"messaging_product": "whatsapp",
                         "details": details if details is not None else message}
    err["fbtrace_id"] = fbtrace_id or ("AFake%08d" % STATE.next_id())
    return http_status, {"error": err}


def encode_cursor(n):
    return base64.urlsafe_b64encode(str(n).encode()).decode().rstrip("=")


def decode_cursor(c):
    try:
        return int(base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body must not wait 40 ms for an ACK
    server_version = "FakeGraph/1.0"
    sys_version = ""

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):  # quiet: benchmarks hit this hard
        pass

    # ------------------------------------------------------------ plumbing
    def send_bytes(self, status, data, ctype="application/json; charset=UTF-8"):
        """One write per answer: status line, headers and body together."""
        try:
            self.send_response_only(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers_only()
            self.wfile.write(b"".join(self._headers_buffer) + data)
            self._headers_buffer = []
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def end_headers_only(self):
        self._headers_buffer.append(b"\r\n")

    def send_json(self, status, obj):
        self.send_bytes(status, json.dumps(obj, separators=(",", ":")).encode())

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PUT(self):
        self.dispatch("PUT")

    def dispatch(self, method):
        try:
            raw = self.read_body()
        except ValueError:
            self.close_connection = True
            self.send_json(413, {"error": "body too large"})
            return
        parts = urlsplit(self.path)
        if parts.path.startswith("/_fake/"):
            self.control(method, parts.path, raw, parts.query)
        else:
            self.graph(method, parts.path, parts.query, raw)

    # ------------------------------------------------------- control API
    def control(self, method, path, raw, query=""):
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            self.send_json(400, {"error": "control body is not JSON"})
            return
        st = STATE
        if method == "GET" and path == "/_fake/calls":
            q = parse_qs(query)
            fields = [f for f in q.get("fields", [""])[0].split(",") if f]
            sub = q.get("path_contains", [""])[0]
            with st.lock:
                calls = [c for c in st.calls if sub in c["path"]]
                if fields:
                    calls = [{f: c.get(f) for f in fields} for c in calls]
            self.send_json(200, calls)
        elif method == "POST" and path == "/_fake/reset":
            st.reset()
            self.send_json(200, {"ok": True})
        elif method == "POST" and path == "/_fake/errors":
            rules = body if isinstance(body, list) else [body]
            with st.lock:
                st.rules.extend(rules)
            self.send_json(200, {"ok": True, "rules": len(st.rules)})
        elif method == "POST" and path == "/_fake/latency":
            with st.lock:
                st.latency_ms = int(body.get("ms", 0))
            self.send_json(200, {"ok": True})
        elif method == "POST" and path == "/_fake/templates":
            waba = str(body.get("waba_id", ""))
            with st.lock:
                items = []
                for t in body.get("templates", []):
                    t = dict(t)
                    t.setdefault("id", str(next(st.template_ids)))
                    t.setdefault("status", "APPROVED")
                    items.append(t)
                st.templates[waba] = items
                if body.get("page_size"):
                    st.page_size[waba] = int(body["page_size"])
                else:
                    st.page_size.pop(waba, None)
                if body.get("next_base"):
                    st.next_base[waba] = body["next_base"].rstrip("/")
                else:
                    st.next_base.pop(waba, None)
            self.send_json(200, {"ok": True, "count": len(items)})
        else:
            self.send_json(404, {"error": "unknown control endpoint"})

    # --------------------------------------------------------- Graph API
    def record(self, method, path, query, raw):
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        # Every key exists from the start: the answer only assigns values,
        # so /_fake/calls can serialise the dict while it is answered.
        call = {"method": method, "path": path, "query": query,
                "headers": dict(self.headers.items()), "body": body,
                "ts": time.time(), "status": None, "wamid": None,
                "peer_port": self.client_address[1]}
        with STATE.lock:
            STATE.calls.append(call)
            n = len(STATE.calls)
        if n % GC_FREEZE_EVERY == 0:
            # The call log is the only long-lived growth (~10 objects per
            # call): park it in the permanent generation so the cyclic
            # collector's full passes, which walked every logged call and
            # stalled every request thread for a long time once a
            # benchmark had logged 10^5 calls, no longer see it.
            gc.freeze()
        return call

    @staticmethod
    def answered(call, status, obj=None):
        """Note the answer in the call log entry."""
        wamid = None
        if status == 200 and isinstance(obj, dict):
            msgs = obj.get("messages")
            if isinstance(msgs, list) and msgs and isinstance(msgs[0], dict):
                wamid = msgs[0].get("id")
        with STATE.lock:
            call["wamid"] = wamid
            call["status"] = status

    def graph(self, method, path, query, raw):
        call = self.record(method, path, query, raw)
        delay = STATE.latency_ms
        rule = STATE.take_rule(method, path)
        if rule is not None:
            delay += int(rule.get("latency_ms") or 0)
        if delay > 0:
            time.sleep(delay / 1000.0)
        if rule is not None and "raw_body" in rule:
            data = str(rule["raw_body"]).encode() * int(rule.get("raw_body_repeat") or 1)
            self.answered(call, int(rule.get("http_status") or 500))
            self.send_bytes(int(rule.get("http_status") or 500), data,
                            rule.get("content_type", "text/html; charset=UTF-8"))
            return
        if rule is not None and rule.get("code") is not None:
            status, obj = meta_error(int(rule["code"]), rule.get("message"),
                                     int(rule.get("http_status") or 400), rule.get("subcode"),
                                     rule.get("type", "OAuthException"),
                                     rule.get("fbtrace_id"), rule.get("details"))
            self.answered(call, status)
            self.send_json(status, obj)
            return
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or len(auth) <= len("Bearer "):
            self.answered(call, 401)
            self.send_json(*meta_error(190, http_status=401))
            return
        status, obj = self.route(method, VERSION_RE.sub("", path), query, raw)
        self.answered(call, status, obj)
        self.send_json(status, obj)

    def route(self, method, path, query, raw):
        segs = [s for s in path.split("/") if s]
        if len(segs) == 2 and segs[1] == "messages" and method == "POST":
            return self.send_message(segs[0], raw)
        if len(segs) == 2 and segs[1] == "message_templates":
            q = parse_qs(query)
            if method == "POST":
                return self.create_template(segs[0], raw)
            if method == "GET":
                return self.list_templates(segs[0], q, path)
            if method == "DELETE":
                return self.delete_template(segs[0], q)
        return meta_error(100, "Unsupported %s request. Object with ID '%s' does not exist"
                          % (method.lower(), segs[0] if segs else ""), subcode=33)

    @staticmethod
    def parse_json(raw):
        try:
            obj = json.loads(raw)
        except ValueError:
            return None
        return obj if isinstance(obj, dict) else None

    def send_message(self, phone_number_id, raw):
        body = self.parse_json(raw)
        if body is None or body.get("messaging_product") != "whatsapp":
            return meta_error(100, "(#100) The parameter messaging_product is required.")
        to = body.get("to")
        if not isinstance(to, str) or not to:
            return meta_error(100, "(#100) The parameter to is required.")
        n = STATE.next_id()
        wamid = "wamid." + base64.b64encode(
            ("%s.%s.%012d" % (phone_number_id, to, n)).encode()).decode()
        return 200, {"messaging_product": "whatsapp",
                     "contacts": [{"input": to, "wa_id": to}],
                     "messages": [{"id": wamid}]}

    def create_template(self, waba, raw):
        body = self.parse_json(raw)
        if body is None or not body.get("name") or not body.get("language"):
            return meta_error(100, "(#100) Invalid parameter")
        st = STATE
        with st.lock:
            store = st.templates.setdefault(waba, [])
            for t in store:
                if t.get("name") == body["name"] and t.get("language") == body["language"]:
                    return meta_error(100, "Invalid parameter", subcode=2388024,
                                      details="Content in this language already exists")
            tid = str(next(st.template_ids))
            t = dict(body)
            t.update({"id": tid, "status": "PENDING"})
            store.append(t)
        return 200, {"id": tid, "status": "PENDING", "category": body.get("category")}

    def list_templates(self, waba, q, path):
        st = STATE
        with st.lock:
            store = list(st.templates.get(waba, []))
            size = st.page_size.get(waba) or max(1, (len(store) + 1) // 2)
            base = st.next_base.get(waba)
        try:
            limit = int(q.get("limit", ["0"])[0])
        except ValueError:
            limit = 0
        if limit > 0:
            size = min(size, limit)
        start = 0
        if "after" in q:
            start = decode_cursor(q["after"][0])
            if start is None:
                return meta_error(100, "(#100) Invalid cursor")
        page = store[start:start + size]
        end = start + len(page)
        paging = {"cursors": {"before": encode_cursor(start), "after": encode_cursor(end)}}
        if end < len(store):
            if base is None:
                host = self.headers.get("Host") or "127.0.0.1:%d" % self.server.server_port
                base = "http://" + host
            ver = VERSION_RE.match(self.path)
            prefix = ver.group(0) if ver else ""
            qs = "limit=%d&after=%s" % (limit, encode_cursor(end)) if limit > 0 \
                else "after=%s" % encode_cursor(end)
            paging["next"] = "%s%s%s?%s" % (base, prefix, path, qs)
        return 200, {"data": page, "paging": paging}

    def delete_template(self, waba, q):
        name = q.get("name", [None])[0]
        hsm_id = q.get("hsm_id", [None])[0]
        if not name:
            return meta_error(100, "(#100) The parameter name is required.")
        st = STATE
        with st.lock:
            store = st.templates.get(waba, [])
            keep = [t for t in store
                    if not (t.get("name") == name and (hsm_id is None or t.get("id") == hsm_id))]
            if len(keep) == len(store):
                return meta_error(100, "Invalid parameter", subcode=2593002,
                                  details="Message template not found")
            st.templates[waba] = keep
        return 200, {"success": True}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description="fake Meta Graph API")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), Handler)
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print(port, flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
