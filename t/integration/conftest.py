"""pytest fixtures of the integration suite; the harness itself is the `harness` package
(t/harness). Every server's error log is judged after each test by harness.logpolicy:
a test that provokes a line on purpose says so with h.allow() (must match) or
h.tolerate() (may match), for that test only."""
import os

import pytest

from harness import Httpd, Postgres, procs
from harness import httpd as httpd_mod


def pytest_sessionfinish(session, exitstatus):
    """Servers' directories go once the session has passed; a failed session keeps them
    (logs, configs) for inspection, as does IMGSTORE_KEEP_TMP=1."""
    procs.stop_all()
    if exitstatus == 0 and os.environ.get("IMGSTORE_KEEP_TMP") != "1":
        procs.remove_tmp()
    elif procs.tmp_count():
        print("\nkept %d server directories under /tmp (imgstore-pg-*, imgstore-httpd-*)"
              % procs.tmp_count())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    rep = getattr(request.node, "rep_call", None)
    return rep is not None and rep.failed


@pytest.fixture(autouse=True)
def judge_error_logs(request):
    """After each test, the error-log lines of every server still running (module-scoped
    ones included) are judged with that test's allow-lists, which then lapse."""
    yield
    bad = []
    for h in list(httpd_mod.live):
        bad += h.judge()
    if bad and not _failed(request):
        pytest.fail("unexpected error-log lines:\n" + "\n".join(bad), pytrace=False)


@pytest.fixture(scope="session")
def pg():
    p = Postgres()
    yield p
    p.stop()


@pytest.fixture
def make_httpd(pg, request):
    """Factory for a server with its own config; stopped and judged after the test."""
    servers = []

    def make(**kw):
        start = kw.pop("start", True)
        h = Httpd(kw.pop("pg", pg), **kw)  # pg=: another cluster or a PgBouncer
        servers.append(h)
        return h.start() if start else h

    yield make
    bad = []
    for h in servers:
        bad += h.finish()
    if bad and not _failed(request):
        pytest.fail("unexpected error-log lines:\n" + "\n".join(bad), pytrace=False)


@pytest.fixture(scope="module")
def httpd(pg):
    """A default server (mount at /) shared by a test module."""
    h = Httpd(pg).start()
    yield h
    bad = h.finish()
    assert not bad, "unexpected error-log lines:\n" + "\n".join(bad)
