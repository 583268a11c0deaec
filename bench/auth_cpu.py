#!/usr/bin/env python3
"""Server CPU time per request, GET /health against GET /api/v1/auth/me
(a valid token), on the engine of PYTAKE_TEST_ENGINE (sqlite|postgresql;
PostgreSQL needs PYTAKE_TEST_PG_URL) and the binary of PYTAKE_BUILD_DIR.

One keep-alive connection sends BENCH_REQUESTS (3000) requests per path
after 50 warm-up ones; the figure is the server process's utime+stime
(/proc/PID/stat) divided by the count, so it does not depend on what else
the machine runs the way requests/s does. Runs twice: rate limiting off
(as bench/run.sh) and on (the default in production).

    PYTAKE_BUILD_DIR=build-release PYTAKE_TEST_ENGINE=postgresql python3 bench/auth_cpu.py
"""
import http.client
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from harness import Server, bootstrap_super_admin  # noqa: E402

N = int(os.environ.get("BENCH_REQUESTS", "3000"))


def cpu_seconds(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_request_us(srv, path, headers):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port)
    try:
        for _ in range(50):
            conn.request("GET", path, headers=headers)
            conn.getresponse().read()
        before = cpu_seconds(srv.proc.pid)
        for _ in range(N):
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise SystemExit("%s answered %d" % (path, r.status))
        return (cpu_seconds(srv.proc.pid) - before) / N * 1e6
    finally:
        conn.close()


def main():
    for env in ({"RATE_LIMIT_ENABLED": "false"},
                {"RATE_LIMIT_ENABLED": "true", "RATE_LIMIT_REQUESTS_PER_MINUTE": "1000000"}):
        with Server(env=dict(env, LOG_LEVEL="warn")) as srv:
            su = bootstrap_super_admin(srv)
            health = cpu_per_request_us(srv, "/health", {})
            me = cpu_per_request_us(srv, "/api/v1/auth/me", {"Authorization": "Bearer " + su["token"]})
            print("SUMMARY engine=%s rate_limit=%s requests=%d health_cpu_us=%.0f auth_me_cpu_us=%.0f"
                  % (srv.engine, env["RATE_LIMIT_ENABLED"], N, health, me))


if __name__ == "__main__":
    main()
