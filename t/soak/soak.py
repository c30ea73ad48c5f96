#!/usr/bin/python3
"""Soak: N clients upload and retrieve mixed real images for M minutes.

    ./dev soak [--url http://127.0.0.1:8080] [--clients 64] [--minutes 10]
        [--request-timeout 60] [--stall 30]

Run it against `./dev run` (or any server with the module mounted at --url); it needs
the harness package (t/harness) on PYTHONPATH, which ./dev soak sets.
Every acknowledged image is fetched back and compared byte for byte, during the
run and once more at the end (those not yet expired). Prints totals and exits
non-zero (the verdict, see verdict()) on any lost or corrupted image, on no progress
(no 2xx answer at all, or none for --stall seconds), on a hang (a request without an
answer within --request-timeout, or a client that does not finish), and when the
non-2xx answers are not exactly the ones it provoked (its hostile requests, images
past their expiry): any other 4xx or 5xx, or a 2xx to a hostile request.
"""
import argparse
import collections
import random
import sys
import threading
import time

import requests

from harness.images import png_of_size, read

IMAGES = ["sample.jpg", "sample.png", "sample.gif", "sample.webp", "sample.avif", "sample.bmp",
          "sample-100k.jpg", "sample-100k.png", "large-600k.png"]
# Expiry is decided by the server's clock; leave a margin before calling an image lost.
CLOCK_MARGIN = 2.0


class Totals:
    def __init__(self):
        self.lock = threading.Lock()
        self.status = collections.Counter()
        self.requests = 0
        self.uploaded = 0
        self.verified = 0
        self.expired_ok = 0
        self.lost = []
        self.corrupted = []
        self.exceptions = collections.Counter()
        self.exception_samples = []
        self.hangs = 0
        self.provoked = 0          # requests meant to fail (hostile ones, expired images)
        self.provoked_2xx = 0      # ... that got a 2xx all the same
        self.unprovoked = collections.Counter()  # non-2xx answers to ordinary requests
        self.ok_times = []         # when each 2xx answer arrived

    def add(self, code, provoked=False):
        with self.lock:
            self.requests += 1
            self.status[code] += 1
            ok = 200 <= code < 300
            if ok:
                self.ok_times.append(time.time())
            if provoked:
                self.provoked += 1
                self.provoked_2xx += ok
            elif not ok:
                self.unprovoked[code] += 1


def client(url, deadline, blobs, totals, acked, seed, timeout):
    rnd = random.Random(seed)
    s = requests.Session()
    mine = []
    while time.time() < deadline:
        try:
            if not mine or rnd.random() < 0.5:
                name = rnd.choice(IMAGES)
                r = s.post(url + "/upload", files={"file": (name, blobs[name])},
                           timeout=timeout)
                totals.add(r.status_code)
                if r.status_code == 201:
                    j = r.json()
                    item = (j["hash"], name, time.time() + j["expires_in"])
                    mine.append(item)
                    with totals.lock:
                        totals.uploaded += 1
                        acked.append(item)
            else:
                h, name, expires = rnd.choice(mine)
                head = rnd.random() < 0.1
                r = (s.head if head else s.get)(url + "/image/" + h, timeout=timeout)
                check(r, h, name, expires, blobs, totals, head)
            if rnd.random() < 0.02:
                # A little hostile traffic in the mix: must be a 4xx, never a 5xx.
                r = s.post(url + "/upload", data=b"not multipart", timeout=timeout,
                           headers={"Content-Type": "text/plain"})
                totals.add(r.status_code, provoked=True)
        except requests.RequestException as e:
            with totals.lock:
                totals.exceptions[type(e).__name__] += 1
                if isinstance(e, requests.Timeout):
                    totals.hangs += 1
                if len(totals.exception_samples) < 3:
                    totals.exception_samples.append(str(e)[:200])
            time.sleep(0.05)  # a server that refuses connections is not hammered


def check(r, h, name, expires, blobs, totals, head=False):
    """Judge one retrieval of an acknowledged image (and count its answer)."""
    expired = r.status_code == 404 and time.time() > expires - CLOCK_MARGIN
    totals.add(r.status_code, provoked=expired)
    with totals.lock:
        if r.status_code == 200:
            if (head and int(r.headers.get("Content-Length", -1)) == len(blobs[name])) or \
                    (not head and r.content == blobs[name]):
                totals.verified += 1
            else:
                totals.corrupted.append(h[:8])
        elif r.status_code == 404 and time.time() > expires - CLOCK_MARGIN:
            totals.expired_ok += 1
        elif r.status_code == 404:
            totals.lost.append(h[:8])


def longest_stall(times, start, end):
    """The longest time without a 2xx answer between start and end (s)."""
    marks = [start] + sorted(times) + [end]
    return max(b - a for a, b in zip(marks, marks[1:]))


def verdict(totals, start, end, stuck_clients, stall_limit):
    """The reasons the soak failed (empty: it passed)."""
    bad = []
    if totals.lost or totals.corrupted:
        bad.append("%d lost and %d corrupted acknowledged images"
                   % (len(totals.lost), len(totals.corrupted)))
    if not totals.ok_times:
        bad.append("no progress: not one 2xx answer")
    else:
        stall = longest_stall(totals.ok_times, start, end)
        if stall > stall_limit:
            bad.append("no progress for %.1f s (limit %.0f s)" % (stall, stall_limit))
    if totals.hangs or stuck_clients:
        bad.append("hangs: %d requests without an answer in time, %d clients stuck"
                   % (totals.hangs, stuck_clients))
    non2xx = sum(n for c, n in totals.status.items() if not 200 <= c < 300)
    provoked_non2xx = totals.provoked - totals.provoked_2xx
    if non2xx != provoked_non2xx or totals.provoked_2xx:
        bad.append("non-2xx answers: %d (%.2f%% of %d), provoked: %d (%.2f%%); unprovoked by "
                   "status: %s, provoked but 2xx: %d"
                   % (non2xx, 100.0 * non2xx / max(1, totals.requests), totals.requests,
                      provoked_non2xx, 100.0 * provoked_non2xx / max(1, totals.requests),
                      dict(totals.unprovoked), totals.provoked_2xx))
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--request-timeout", type=float, default=60,
                    help="a request without an answer after this many seconds is a hang")
    ap.add_argument("--stall", type=float, default=30,
                    help="this many seconds without a 2xx answer is no progress")
    a = ap.parse_args()
    url = a.url.rstrip("/")
    blobs = {n: read(n) for n in IMAGES if n != "large-600k.png"}
    # Over 255 KiB an image takes the module's other path (COPY up, slices down).
    blobs["large-600k.png"] = png_of_size(600 * 1000, seed=7)
    totals, acked = Totals(), []
    start = time.time()
    deadline = start + a.minutes * 60
    threads = [threading.Thread(target=client, daemon=True,
                                args=(url, deadline, blobs, totals, acked, i, a.request_timeout))
               for i in range(a.clients)]
    for t in threads:
        t.start()
    join_until = deadline + a.request_timeout + 30
    for t in threads:
        t.join(timeout=max(0, join_until - time.time()))
    stuck = sum(t.is_alive() for t in threads)
    elapsed = time.time() - start

    # Final pass: every acknowledged image that has not expired must still be there.
    final = requests.Session()
    for h, name, expires in acked:
        if time.time() < expires - CLOCK_MARGIN:
            try:
                r = final.get(url + "/image/" + h, timeout=a.request_timeout)
            except requests.Timeout:
                totals.hangs += 1
                continue
            except requests.RequestException:
                totals.exceptions["final pass"] += 1
                continue
            check(r, h, name, expires, blobs, totals)
    end = time.time()

    fivexx = sum(n for code, n in totals.status.items() if code >= 500)
    print("soak: %d clients, %.1f min, %d requests (%.0f/s)" %
          (a.clients, elapsed / 60, totals.requests, totals.requests / elapsed))
    print("  uploads acknowledged: %d, retrievals verified byte for byte: %d, expired as expected: %d"
          % (totals.uploaded, totals.verified, totals.expired_ok))
    print("  answers by status: " + ", ".join("%d: %d" % kv for kv in sorted(totals.status.items())))
    print("  non-2xx: %d (5xx: %d), client exceptions: %s" %
          (sum(n for c, n in totals.status.items() if c >= 300), fivexx,
           dict(totals.exceptions) or "none"))
    for sample in totals.exception_samples:
        print("  exception: " + sample)
    print("  lost: %d %s, corrupted: %d %s" % (len(totals.lost), totals.lost[:5],
                                               len(totals.corrupted), totals.corrupted[:5]))
    # Connection errors other than timeouts are listed above, not judged by themselves:
    # under overload httpd's event MPM closes idle keep-alive connections, and a request
    # racing that close fails on the client without reaching the server. A server that
    # does not answer at all fails on progress; one that answers late, on hangs.
    bad = verdict(totals, start, end, stuck, a.stall)
    for reason in bad:
        print("  FAILED: " + reason)
    print("soak: " + ("FAILED" if bad else "ok"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
