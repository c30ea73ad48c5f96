"""99x: the harness's own rules can fail: the error-log policy (harness/logpolicy.py) on
made-up log text; a start that returns before httpd logged it started, and a graceful
stop that hangs, on a real server."""
import pytest

import harness as H
from harness import httpd as httpd_mod
from harness.logpolicy import STARTED, LogPolicy

STAMP = "[Sat Dec 05 12:00:00.000000 2026]"


def line(module_level, text, pid=100):
    return "%s [%s] [pid %d:tid %d] %s\n" % (STAMP, module_level, pid, pid, text)


SEGV = "AH00052: child pid %d exit signal Segmentation fault (11)"


def test_990_notice_lines_fail_unless_the_harness_or_the_test_caused_them():
    p = LogPolicy()
    text = line("mpm_event:notice", "AH00489: configured -- resuming normal operations")
    text += line(":notice", "IMG00015: database reachable again")
    assert p.judge(text) == [text.splitlines()[0], text.splitlines()[1]]
    p = LogPolicy()
    p.harness(r"AH00489")
    p.expect(r"IMG00015")
    assert p.judge(text) == []


def test_991_an_allow_list_holds_for_one_test_and_an_entry_that_matched_nothing_fails():
    p = LogPolicy()
    p.expect(r"IMG00041", r"IMG00099")
    text = line(":error", "IMG00041: row failed authentication")
    assert p.judge(text) == ["expected error-log pattern 'IMG00099' matched no line"]
    # The next test: the same line is no longer allowed, tolerated ones need not match.
    text += line(":error", "IMG00041: row failed authentication")
    p.tolerate(r"IMG00011")
    assert p.judge(text) == [text.splitlines()[1]]


def test_992_a_crash_is_tolerated_only_for_a_child_the_harness_was_stopping():
    p = LogPolicy()
    before = line("core:notice", SEGV % 7)
    p.stopping_children(len(before), [7, 8])
    after = line("core:notice", SEGV % 8) + line("core:notice", SEGV % 9)
    after += line("core:notice", "AH00052: child pid 7 exit signal Aborted (6)")
    text = before + after
    assert p.judge(text) == [text.splitlines()[0], text.splitlines()[2], text.splitlines()[3]]


def test_993_sanitizer_reports_always_fail():
    p = LogPolicy()
    p.tolerate(r".*")
    text = "==12==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x1\n"
    assert p.judge(text) == [text.rstrip("\n")]


def test_994_a_graceful_stop_that_hangs_fails_its_caller(pg, monkeypatch):
    monkeypatch.setattr(httpd_mod, "GRACEFUL_STOP_TIMEOUT", 2.0)
    h = H.Httpd(pg).start()
    body, ctype = H.one_file(H.read("sample.png"))
    # Half a body: the child waits for the rest (RequestReadTimeout body=20) and so does
    # a graceful stop.
    with H.connect(h.port, timeout=30) as s:
        s.sendall(H.upload_head(ctype, length=len(body)) + body[:100])
        assert H.child_holding(h, s)
        pid = h.pid
        with pytest.raises(AssertionError, match="graceful stop hung"):
            h.stop()
    assert not H.pid_alive(pid), "the hung server was not stopped after all"
    httpd_mod.live.remove(h)  # judged above: its stop failed on purpose


def test_995_start_returns_once_the_startup_notices_are_logged(pg):
    """The parent listens, forks, and only then logs its startup notices: a start() that
    returned at the first accepted connection let a module-scoped server's notices fall
    into its second test's judgement (seen in CI, ASan pass, test_601)."""
    h = H.Httpd(pg)
    for _ in range(3):
        since = len(h.errors())
        h.start()
        assert h.logged_since(since, STARTED), h.errors()[since:]
        h.stop()
    assert h.finish() == []
