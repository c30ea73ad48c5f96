"""Load and outage helpers shared by the fault tests: a load generator that records every
outcome (Load), a hang-guarded upload, and the polls that tell a server is back."""
import collections
import random
import threading
import time

import requests

from .http import assert_json_error
from .httpd import assert_healthy
from .images import image, png_of_size, read
from .procs import wait_until

# mod_dbd's lines when its pool cannot connect, the module's once-per-child outage line,
# and its info-level note on a broken pooled connection: which of them a test sees
# depends on timing, so tests tolerate (not expect) them.
DB_DOWN_TAGS = (r"AH00629", r"AH02655", r"AH00639", r"AH00633", r"IMG00011", r"IMG00014")
NAMES = ["sample.png", "sample.gif", "sample.jpg", "sample.webp"]
DATA = {n: read(n) for n in NAMES + ["sample-100k.png"]}
# Over 255 KiB: stored by COPY and read back in slices.
SLICED = "sliced-300k.png"
DATA[SLICED] = png_of_size(300 * 1024)


def assert_503(r):
    assert_json_error(r, 503)
    # One delay-seconds value is test_807's business; here: a positive delay is given.
    retry = r.headers.get("Retry-After", "").split(",")[0].strip()
    assert retry.isdigit() and int(retry) > 0, r.headers


def up(h, name, timeout=10):
    """POST /upload of a sample image with a 10 s hang guard."""
    return requests.post(h.url("/upload"), files={"file": (name, read(name), "image/x")},
                         timeout=timeout)


def served_again(h, timeout=30.0):
    """Poll until a whole round trip works: health 200, an upload taken and fetched back.
    Each child finds the database again on its own probe (every 2 s, on a request), so
    one success does not mean every child has recovered yet."""
    def attempt():
        try:
            assert_healthy(h)
        except (AssertionError, requests.RequestException):
            return False
        return True
    return wait_until(attempt, timeout=timeout, interval=0.5)


def wait_accepting(h, timeout=30.0):
    """Poll until an upload is taken again (the database answered); returns the 201."""
    def attempt():
        try:
            r = h.upload(image("sample.png"))
        except requests.RequestException:
            return None
        return r if r.status_code == 201 else None
    return wait_until(attempt, timeout=timeout, interval=0.5)


def fetch_past_503(url, timeout=10.0):
    """GET url; a 503 is asked again every 0.5 s for up to timeout seconds."""
    deadline = time.time() + timeout
    while True:
        g = requests.get(url, timeout=30)
        if g.status_code != 503 or time.time() > deadline:
            return g
        time.sleep(0.5)


class Load:
    """Threads that upload a rotating set of images (a fresh connection per request) and
    fetch back ones acknowledged earlier, until stopped. Every outcome is recorded."""

    def __init__(self, h, threads=4, pause=0.02, names=NAMES):
        self.h = h
        self.names = list(names)
        self.pause = pause
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.acked = []                       # (hash, name) of every 201
        self.statuses = collections.Counter()  # (kind, status)
        self.conn_errors = []
        self.hangs = []
        self.mismatches = []
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True)
                        for n in range(threads)]

    def _run(self, n):
        rnd = random.Random(n)
        for i in range(5000):
            if self.stop_event.is_set():
                return
            name = self.names[(n + i) % len(self.names)]
            self._one("upload", lambda: requests.post(
                self.h.url("/upload"), files={"file": (name, DATA[name], "image/x")},
                timeout=10), name)
            with self.lock:
                pick = rnd.choice(self.acked) if self.acked else None
            if pick:
                self._one("image", lambda: requests.get(self.h.url("/image/" + pick[0]),
                                                        timeout=10), pick[1])
            time.sleep(self.pause)

    def _one(self, kind, call, name):
        try:
            r = call()
        except requests.Timeout as e:
            with self.lock:
                self.hangs.append("%s: %r" % (kind, e))
            return
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as e:
            with self.lock:
                self.conn_errors.append("%s: %r" % (kind, e))
            return
        with self.lock:
            self.statuses[(kind, r.status_code)] += 1
            if kind == "upload" and r.status_code == 201:
                self.acked.append((r.json()["hash"], name))
            if kind == "image" and r.status_code == 200 and r.content != DATA[name]:
                self.mismatches.append(name)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        for t in self.threads:
            t.join(30)
        assert not any(t.is_alive() for t in self.threads), "a load thread is stuck"

    def codes(self):
        return set(code for _, code in self.statuses)

    def assert_every_ack_retrievable(self):
        assert self.acked, "no upload was acknowledged at all"
        lost = []
        for hash_, name in self.acked:
            # A child may answer 503 while another request of it probes the database
            # that came back: that is not a lost image.
            g = fetch_past_503(self.h.url("/image/" + hash_))
            if g.status_code != 200 or g.content != DATA[name]:
                lost.append((name, g.status_code))
        assert not lost, "%d of %d acknowledged images not served back: %r" % (
            len(lost), len(self.acked), lost[:10])
