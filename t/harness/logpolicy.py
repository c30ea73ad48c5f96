"""The error-log policy: which lines of an httpd's error log fail a test. The one place
that says so.

Judged: every line at notice or above (notice is always logged by httpd 2.4, whatever
LogLevel says), every sanitizer report, every child that died of a signal.

Passed:
  - what the harness itself caused, for the test during which it caused it: the
    startup notices when it starts a server, the shutdown or restart notices when it
    stops or restarts one (LogPolicy.harness);
  - what the current test expects (LogPolicy.expect: each pattern must match at least
    one line of that test, or the test fails, so no entry outlives what it was for) or
    may provoke depending on timing (LogPolicy.tolerate). Both hold for one test only:
    judge() forgets them;
  - a child that died of SIGSEGV while the harness was stopping it with SIGTERM (an
    ungraceful stop or a hard restart), when its pid is one of the children the harness
    recorded right before sending the signal. httpd's own race: a child stopped that way
    can die in mpm_event's close_worker_sockets(), reading a worker's socket whose
    connection pool another thread has just destroyed (Debian's APR unmaps pool memory
    at once); it needs no module code (seen after a TRACE answered by core). Any other
    crash, and any crash of a child the harness was not stopping, fails the run;
  - mpm_event's AH03093 (a keep-alive socket meeting a child that is shutting down)
    within a second of a stop the harness sent: httpd's race again, never earlier.
"""
import re
import time

LEVEL_RE = re.compile(r"\[[a-z_0-9]*:(notice|warn|error|crit|alert|emerg)\]")
SANITIZER_RE = re.compile(r"AddressSanitizer|LeakSanitizer|runtime error:")
CRASH_RE = re.compile(r"AH00052: child pid (\d+) exit signal ([^,]*)|exit signal")
STAMP_RE = re.compile(r"\[(\w{3} \w{3} \d\d \d\d:\d\d:\d\d)\.(\d+) (\d{4})\]")

# What each harness action makes httpd log at notice.
# Each pattern names event's tag and prefork's (IMGSTORE_MPM=prefork).
STARTED = (r"AH00489|AH00163", r"AH00094")          # resuming normal operations, command line
GRACEFUL_STOP = (r"AH00492|AH00170",)               # SIGWINCH received
STOP = (r"AH00491|AH00169",)                        # caught SIGTERM, shutting down
GRACEFUL_RESTART = (r"AH00493|AH00171",) + STARTED  # SIGUSR1 received
HARD_RESTART = (r"AH00494|AH00172",) + STARTED      # SIGHUP received
EXPIRY_FILE_CREATED = (r"IMG00251",)      # a missing ImgStoreExpiryKeyFile created at start
REFUSED_START = (r"AH00016", r"AH00020")    # configuration failed / post-config failed


def _stamp(line):
    m = STAMP_RE.match(line)
    if not m:
        return None
    return time.mktime(time.strptime(m.group(1) + " " + m.group(3),
                                     "%a %b %d %H:%M:%S %Y")) + float("0." + m.group(2))


class LogPolicy:
    def __init__(self):
        self.offset = 0        # error-log bytes already judged
        self.expected = []     # patterns the current test expects (must match)
        self.tolerated = []    # patterns the current test may provoke
        self.caused = []       # patterns of what the harness did during the current test
        self.stopping = []     # (log offset, pids) of each SIGTERM the harness sent
        self.stop_sent = []    # times the harness sent a stop

    def expect(self, *patterns):
        self.expected.extend(patterns)

    def tolerate(self, *patterns):
        self.tolerated.extend(patterns)

    def harness(self, *patterns):
        self.caused.extend(patterns)

    def stopping_children(self, offset, pids):
        self.stopping.append((offset, set(pids)))

    def _tolerated_crash(self, start, line):
        m = re.search(r"AH00052: child pid (\d+) exit signal Segmentation fault \(11\)", line)
        if not m:
            return False
        pid = int(m.group(1))
        return any(start >= off and pid in pids for off, pids in self.stopping)

    def _shutdown_race(self, line):
        if "AH03093" not in line or "[mpm_event:error]" not in line:
            return False
        when = _stamp(line)
        return when is not None and any(when >= t - 1.0 for t in self.stop_sent)

    def judge(self, text):
        """The failures in text (the whole error log) since the last judge(): unexpected
        lines, then expected patterns that matched nothing. Forgets the test's lists."""
        bad, matched = [], set()
        offset = self.offset
        for line in text[self.offset:].splitlines(True):
            start = offset
            offset += len(line)
            line = line.rstrip("\n")
            if SANITIZER_RE.search(line):
                bad.append(line)
                continue
            if CRASH_RE.search(line):
                if not self._tolerated_crash(start, line):
                    bad.append(line)
                continue
            if not LEVEL_RE.search(line):
                continue
            hit = [p for p in self.expected if re.search(p, line)]
            if hit:
                matched.update(hit)
                continue
            if any(re.search(p, line) for p in self.tolerated + self.caused):
                continue
            if self._shutdown_race(line):
                continue
            bad.append(line)
        bad += ["expected error-log pattern %r matched no line" % p
                for p in dict.fromkeys(self.expected) if p not in matched]
        self.offset = len(text)
        self.expected, self.tolerated, self.caused = [], [], []
        return bad
