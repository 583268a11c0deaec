#!/usr/bin/env python3
"""Run the black-box suite: every tests/integration/test_*.py (unittest).

Prints one line per test ("ok", "FAIL", "ERROR", "skip") as it finishes,
the details of failures after that, and ends with
"N passed, M failed" (errors count as failed; ", K skipped" follows when
tests were skipped). Exit status 1 on any failure or error, else 0.

Usage: PYTAKE_TEST_ENGINE=sqlite|postgresql python3 tests/integration/run.py [-k PATTERN]
"""
import argparse
import os
import _thread
import signal
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


class LineResult(unittest.TestResult):
    """Prints a line per finished test and counts outcomes."""

    def __init__(self, stream):
        super().__init__()
        self.stream = stream
        self.passed = 0
        self._started = 0.0

    def _line(self, tag, test, extra=""):
        took = time.monotonic() - self._started
        self.stream.write("%-5s %s (%.2fs)%s\n" % (tag, test.id(), took, extra))
        self.stream.flush()

    def startTest(self, test):
        super().startTest(test)
        self._started = time.monotonic()

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1
        self._line("ok", test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line("FAIL", test)

    def addError(self, test, err):
        super().addError(test, err)
        self._line("ERROR", test)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._line("skip", test, ": " + reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.passed += 1
        self._line("ok", test, " (expected failure)")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._line("FAIL", test, " (unexpected success)")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            tag = "FAIL" if issubclass(err[0], test.failureException) else "ERROR"
            self._line(tag, subtest)


def watch_parent(pid):
    """Interrupt the suite (like Ctrl-C) when process pid is gone: run_all.sh
    sets PYTAKE_TEST_PARENT_PID so a killed run leaves no suite running."""
    def loop():
        while True:
            time.sleep(1)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                _thread.interrupt_main()
                return
            except PermissionError:
                pass
    threading.Thread(target=loop, name="parent-watch", daemon=True).start()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", dest="pattern", action="append",
                    help="only tests whose id contains this substring (repeatable)")
    args = ap.parse_args()

    engine = os.environ.setdefault("PYTAKE_TEST_ENGINE", "sqlite")
    sys.path.insert(0, HERE)
    loader = unittest.TestLoader()
    if args.pattern:
        loader.testNamePatterns = ["*%s*" % p for p in args.pattern]
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)

    # SIGTERM (run_all.sh interrupted) unwinds like Ctrl-C: unittest lets
    # KeyboardInterrupt through, and harness closes live servers at exit.
    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    parent = os.environ.get("PYTAKE_TEST_PARENT_PID", "")
    if parent.isdigit():
        watch_parent(int(parent))

    out = sys.stdout
    out.write("black-box suite, engine %s, %d test(s)\n" % (engine, suite.countTestCases()))
    out.flush()
    result = LineResult(out)
    started = time.monotonic()
    try:
        suite.run(result)
    except KeyboardInterrupt:
        out.write("\ninterrupted\n")
        out.flush()
        return 130

    for kind, items in (("FAIL", result.failures), ("ERROR", result.errors)):
        for test, trace in items:
            out.write("\n==== %s: %s\n%s" % (kind, test.id(), trace))
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    out.write("\n(%.1fs)\n" % (time.monotonic() - started))
    line = "%d passed, %d failed" % (result.passed, failed)
    if result.skipped:
        line += ", %d skipped" % len(result.skipped)
    out.write(line + "\n")
    out.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
