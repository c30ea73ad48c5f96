"""80x: faults under load: the database missing at startup, stopped and restarted under
load, the error log during an outage, graceful and hard restarts of httpd under load, a
child killed mid-upload, slow clients, a full storage quota.

Tests that stop the shared PostgreSQL cluster start it again in a finally block and use
servers of their own. Every thread is bounded (a deadline and a per-request timeout of
10 s, which doubles as the hang guard) and joined before the test ends."""
import calendar
import collections
import json
import os
import random
import signal
import threading
import time

import requests

import harness as H
from harness import assert_json_error, image, read, wait_until

# mod_dbd's lines when its pool cannot connect, the module's once-per-child outage line,
# and its info-level note on a broken pooled connection.
DB_DOWN_TAGS = (r"AH00629", r"AH02655", r"AH00639", r"AH00633", r"IMG00011", r"IMG00014")
SERVER_LIMIT = 4  # conf/dev-httpd.conf
NAMES = ["sample.png", "sample.gif", "sample.jpg", "sample.webp"]
DATA = {n: read(n) for n in NAMES + ["sample-100k.png"]}


def assert_503(r):
    assert_json_error(r, 503)
    # One delay-seconds value is test_914's business; here: a positive delay is given.
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
            H.assert_healthy(h)
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

    def __init__(self, h, threads=4, pause=0.02):
        self.h = h
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
            name = NAMES[(n + i) % len(NAMES)]
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
            # A child that has not yet probed the database since it came back still
            # answers 503 for up to its 2 s retry period: that is not a lost image.
            g = fetch_past_503(self.h.url("/image/" + hash_))
            if g.status_code != 200 or g.content != DATA[name]:
                lost.append((name, g.status_code))
        assert not lost, "%d of %d acknowledged images not served back: %r" % (
            len(lost), len(self.acked), lost[:10])


# -- the database -----------------------------------------------------------------------------

def test_800_database_down_when_apache_starts_is_503_then_served_once_it_is_up(pg, make_httpd):
    db = pg.create_db("t800")
    pg.stop()
    try:
        h = make_httpd(dbname=db)
        h.tolerate(*DB_DOWN_TAGS)
        calls = [("upload", lambda: up(h, "sample.png")),
                 ("image", lambda: requests.get(h.url("/image/" + "A" * 43), timeout=10)),
                 ("cleanup", lambda: requests.get(h.url("/cleanup"), timeout=10)),
                 ("health", lambda: requests.get(h.url("/health"), timeout=10))]
        for _ in range(3):
            for what, call in calls:
                t0 = time.time()
                try:
                    r = call()
                except requests.RequestException as e:
                    raise AssertionError("%s while the database is down: %r after %.1f s"
                                         % (what, e, time.time() - t0))
                if what == "health":
                    assert r.status_code == 503 and r.headers.get("Retry-After"), r.text
                else:
                    assert_503(r)
    finally:
        pg.start()
    assert served_again(h), "not served again within 30 s of the database starting:\n" + \
        h.errors()[-2000:]


def test_801_a_database_restart_under_load_loses_no_acknowledged_image_and_never_500s(
        pg, make_httpd):
    db = pg.create_db("t801")
    h = make_httpd(dbname=db)
    h.tolerate(*DB_DOWN_TAGS)
    with Load(h) as load:
        time.sleep(1.5)
        pg.stop()
        try:
            time.sleep(3)
        finally:
            pg.start()
        assert wait_accepting(h), "uploads not taken again within 30 s:\n" + h.errors()[-2000:]
        time.sleep(1.5)
    assert not load.hangs, "requests that hung over 10 s: %r" % load.hangs[:5]
    assert not load.conn_errors, "connection errors: %r" % load.conn_errors[:5]
    assert not load.mismatches, load.mismatches
    assert load.codes() <= {200, 201, 503}, dict(load.statuses)
    assert load.statuses[("upload", 503)] > 0, \
        "no upload met the outage: the test proved nothing %r" % dict(load.statuses)
    load.assert_every_ack_retrievable()


def test_802_an_outage_under_300_requests_logs_at_most_a_few_lines_per_child(pg, make_httpd):
    db = pg.create_db("t802")
    h = make_httpd(dbname=db)
    h.tolerate(*DB_DOWN_TAGS)
    stored = H.round_trip(h)
    start = len(h.errors().splitlines())
    seen_children = set(H.children(h))
    codes = collections.Counter()
    errors = []
    pg.stop()
    try:
        def client(n):
            for i in range(100):
                t0 = time.time()
                try:
                    if i % 3 == 0:
                        r = up(h, "sample.gif")
                    elif i % 3 == 1:
                        r = requests.get(h.url("/image/" + stored), timeout=10)
                    else:
                        r = requests.get(h.url("/health"), timeout=10)
                    codes[r.status_code] += 1
                except requests.RequestException as e:
                    errors.append(repr(e))
                time.sleep(max(0, 0.06 - (time.time() - t0)))
        threads = [threading.Thread(target=client, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        seen_children |= set(H.children(h))
        new = h.errors().splitlines()[start:]
    finally:
        pg.start()
    assert not errors, errors[:5]
    assert sum(codes.values()) == 300 and set(codes) == {503}, dict(codes)
    # The module logs once per child per outage; mod_dbd adds its own two lines when a
    # child's pool first fails to connect. Never a line per request.
    bound = 4 * len(seen_children)
    assert 1 <= len(new) <= bound, "%d new error-log lines for 300 requests, %d children:\n%s" % (
        len(new), len(seen_children), "\n".join(l[:200] for l in new[:40]))
    assert served_again(h), h.errors()[-2000:]


# -- httpd restarts -----------------------------------------------------------------------------

def test_803_a_graceful_restart_under_load_drops_no_request_and_retires_the_old_children(
        make_httpd):
    h = make_httpd()
    H.round_trip(h)
    old = H.children(h)
    assert old
    with Load(h) as load:
        time.sleep(1.5)
        h.graceful()
        # New children take over; the old ones finish what they hold and exit.
        assert wait_until(lambda: set(H.children(h)) - set(old), 30), "no new child"
        time.sleep(2)
    assert not load.hangs, load.hangs[:5]
    assert not load.conn_errors, "graceful restart dropped requests: %r" % load.conn_errors[:5]
    assert not load.mismatches, load.mismatches
    assert load.codes() <= {200, 201}, dict(load.statuses)
    load.assert_every_ack_retrievable()
    still = H.wait_gone(old, 30)
    assert not still, "children from before the graceful restart still alive after 30 s: %r" % (
        still,)
    assert 1 <= len(H.children(h)) <= SERVER_LIMIT, H.children(h)
    H.assert_healthy(h)


def test_804_a_hard_restart_under_load_costs_only_connections_never_an_acknowledged_image(
        make_httpd):
    h = make_httpd()
    H.round_trip(h)
    old = H.children(h)
    with Load(h) as load:
        time.sleep(1.5)
        h.hard_restart()
        assert wait_until(lambda: set(H.children(h)) - set(old), 30), "no new child"
        time.sleep(2)
    assert not load.hangs, load.hangs[:5]
    assert not load.mismatches, load.mismatches
    # Requests in flight when the children were stopped may fail as connections; any
    # answer that did arrive is a success.
    assert load.codes() <= {200, 201}, dict(load.statuses)
    load.assert_every_ack_retrievable()
    assert not H.wait_gone(old, 30), "children from before the restart still alive"
    H.assert_healthy(h)


# -- a child dies -------------------------------------------------------------------------------

def test_805_a_child_killed_mid_upload_stores_nothing_and_the_others_keep_answering(
        pg, make_httpd):
    db = pg.create_db("t805")
    h = make_httpd(dbname=db)
    H.round_trip(h)
    before = H.rows(pg, db)
    body, ctype = H.one_file(DATA["sample-100k.png"])
    with H.connect(h.port, timeout=20) as s:
        s.sendall(H.upload_head(ctype, length=len(body)) + body[:len(body) // 2])
        pid = H.child_holding(h, s)
        assert pid, "no httpd child holds the upload's connection"
        os.kill(pid, signal.SIGKILL)
        assert not H.wait_gone([pid], 10), "the killed child is still there"
        try:
            s.sendall(body[len(body) // 2:])
        except OSError:
            pass
        answer = H.read_answer(s, timeout=10)
        assert not answer.timed_out, "the connection of a killed child stayed open"
        assert answer.status == 0, "an answer came from a killed child: %r" % answer
    # Everyone else is served, and the half upload left nothing behind.
    for _ in range(5):
        H.assert_healthy(h)
    assert H.rows(pg, db) == before + 5
    assert wait_until(lambda: len(H.children(h)) >= 1, 10)


# -- slow clients --------------------------------------------------------------------------------

def test_806_slow_senders_and_slow_readers_do_not_keep_a_normal_client_from_being_served(
        make_httpd):
    """40 clients reading a 10 MB image at 10 KB/s and 40 uploading at 1 KB/s, while a
    normal client uploads and retrieves 20 images. The readers read for a bounded window
    (a 10 MB image at 10 KB/s takes 17 minutes) and check every byte they got."""
    h = make_httpd()
    big = H.png_of_size(10 * 1000 * 1000)
    r = requests.post(h.url("/upload"), files={"file": ("big.png", big, "image/png")},
                      timeout=60)
    assert r.status_code == 201, r.text
    big_hash = r.json()["hash"]
    read_window = 30
    deadline = time.time() + 90
    stop = threading.Event()
    results = collections.defaultdict(list)
    lock = threading.Lock()

    def record(kind, value):
        with lock:
            results[kind].append(value)

    def slow_sender(n):
        # sample.png (6.4 KB) in 100-byte writes every 0.1 s: about 1 KB/s, above the
        # configured MinRate of 500 bytes/s, so it must be taken.
        body, ctype = H.one_file(DATA["sample.png"])
        try:
            with H.connect(h.port, timeout=30) as s:
                s.sendall(H.upload_head(ctype, length=len(body)))
                for i in range(0, len(body), 100):
                    if stop.is_set() or time.time() > deadline:
                        record("sender", "gave up")
                        return
                    s.sendall(body[i:i + 100])
                    time.sleep(0.1)
                a = H.read_answer(s, timeout=30)
            if a.status != 201:
                record("sender", "status %d" % a.status)
                return
            g = requests.get(h.url("/image/" + json.loads(a.body)["hash"]), timeout=30)
            record("sender", "ok" if g.content == DATA["sample.png"] else "bytes differ")
        except (OSError, ValueError) as e:
            record("sender", repr(e))

    def slow_reader(n):
        # A 4 KiB receive buffer, then 1 KiB every 0.1 s: about 10 KB/s, for read_window s.
        try:
            with H.connect(h.port, timeout=30, rcvbuf=4096) as s:
                s.sendall(H.head_bytes("GET /image/%s HTTP/1.1" % big_hash,
                                       [("Host", "x"), ("Connection", "close")]))
                got = b""
                until = time.time() + read_window
                while not stop.is_set() and time.time() < until:
                    c = s.recv(1024)
                    if not c:
                        break
                    got += c
                    time.sleep(0.1)
            head, _, payload = got.partition(b"\r\n\r\n")
            ok = (head.startswith(b"HTTP/1.1 200 ")
                  and b"\r\ncontent-length: %d\r\n" % len(big) in head.lower()
                  and len(payload) >= 50 * 1024 and big.startswith(payload))
            record("reader", "ok" if ok else "wrong: %r, %d bytes" % (head[:40], len(payload)))
        except OSError as e:
            record("reader", repr(e))

    def normal():
        s = requests.Session()
        for i in range(20):
            name = NAMES[i % len(NAMES)]
            try:
                r = s.post(h.url("/upload"), files={"file": (name, DATA[name], "image/x")},
                           timeout=30)
                ok = r.status_code == 201 and s.get(h.url("/image/" + r.json()["hash"]),
                                                    timeout=30).content == DATA[name]
                record("normal", "ok" if ok else "failed: %d" % r.status_code)
            except requests.RequestException as e:
                record("normal", repr(e))

    threads = ([threading.Thread(target=slow_sender, args=(n,)) for n in range(40)]
               + [threading.Thread(target=slow_reader, args=(n,)) for n in range(40)])
    for t in threads:
        t.start()
    time.sleep(2)  # the slow ones are connected and holding their workers
    normal_thread = threading.Thread(target=normal)
    normal_thread.start()
    # The normal client's 40 requests are done while the slow ones are still at it.
    normal_thread.join(read_window)
    assert not normal_thread.is_alive(), \
        "the normal client did not finish while the slow clients were connected"
    for t in threads:
        t.join(max(1, deadline - time.time()))
    stop.set()
    for t in threads:
        t.join(10)
    assert results["normal"] == ["ok"] * 20, results["normal"]
    assert results["sender"] == ["ok"] * 40, collections.Counter(results["sender"])
    assert results["reader"] == ["ok"] * 40, collections.Counter(results["reader"])


# -- the storage quota -------------------------------------------------------------------------

def test_807_a_full_quota_is_507_json_stored_images_stay_served_and_space_returns_after_expiry(
        pg, make_httpd):
    db = pg.create_db("t807")
    h = make_httpd(dbname=db, extra="ImgStoreMaxTotal 300K\nImgStoreTTL 2\n"
                                    "ImgStoreCleanupInterval 1\n")
    data = DATA["sample-100k.png"]
    stored, full = [], None
    for _ in range(10):
        r = h.upload(image("sample-100k.png"))
        if r.status_code == 507:
            full = r
            break
        assert r.status_code == 201, r.text
        b = r.json()
        b["expires"] = calendar.timegm(time.strptime(b["expires_at"], "%Y-%m-%dT%H:%M:%SZ"))
        stored.append(b)
    assert full is not None, "ImgStoreMaxTotal 300K took 10 images of %d bytes" % len(data)
    assert_json_error(full, 507)
    # One upload at a time never takes the running total over the quota.
    total = int(H.query(pg, "SELECT total_bytes FROM imgstore_state", db)[0][0])
    assert total <= 300 * 1024, total
    # While full, the stored images are served (those not yet past their expiry).
    served = 0
    for b in stored:
        g = h.get("/image/" + b["hash"])
        if g.status_code == 200:
            assert g.content == data
            served += 1
        else:
            assert g.status_code == 404 and time.time() >= b["expires"], (
                "an unexpired image is not served while the quota is full: %d" % g.status_code)
    assert served >= 1, "no stored image was checked while the quota was full"
    # Once they expire and a cleanup pass ran, there is room again.
    time.sleep(max(0, max(b["expires"] for b in stored) + 1.1 - time.time()))
    c = h.get("/cleanup")
    assert c.status_code == 200, c.text
    again = wait_until(lambda: h.upload(image("sample-100k.png")).status_code == 201, 10, 0.5)
    assert again, "still refusing uploads after expiry and cleanup"
    H.assert_healthy(h)


def test_808_the_quota_holds_for_images_streamed_in_several_pieces(pg, make_httpd):
    """Images over 255 KiB take the COPY path (quota taken in the same transaction): the
    quota is kept to the byte, a refused upload stores nothing, and concurrent uploads
    never take the total over it."""
    db = pg.create_db("t808")
    h = make_httpd(dbname=db, extra="ImgStoreMaxTotal 2M\n")
    png = H.png_of_size(600 * 1000)
    codes = collections.Counter()
    lock = threading.Lock()

    def one():
        r = requests.post(h.url("/upload"), files={"file": ("x.png", png, "image/png")},
                          timeout=30)
        with lock:
            codes[r.status_code] += 1
            if r.status_code == 201:
                hashes.append(r.json()["hash"])
    hashes = []
    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert codes == {201: 3, 507: 5}, codes
    total = int(H.query(pg, "SELECT total_bytes FROM imgstore_state", db)[0][0])
    assert total == 3 * len(png), total
    assert H.rows(pg, db) == 3
    for x in hashes:
        g = h.get("/image/" + x)
        assert g.status_code == 200 and g.content == png
