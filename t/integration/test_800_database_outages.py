"""80x: the database goes away: missing when httpd starts, stopped and restarted under
load, the error log during an outage, a database without the schema, the Retry-After
answer. Every database outage the suite provokes is here.

These tests stop the shared PostgreSQL cluster: each starts it again in a finally block,
and they use only servers of their own (no module-wide server sees the outage). Every
thread is bounded (a deadline and a per-request timeout of 10 s, which doubles as the
hang guard) and joined before the test ends."""
import collections
import re
import threading
import time

import requests

import harness as H
from harness import image, read, wait_until
from harness.load import (DB_DOWN_TAGS, NAMES, SLICED, Load, assert_503, served_again, up,
                          wait_accepting)

# The module's notice when a child finds the database again after an outage.
DB_BACK = r"IMG00015"


def allow_back(h):
    """The notice of a child finding the database again. Under prefork (many children of
    one thread) the requests after the outage may all reach children that never saw it."""
    (h.allow if H.MPM != "prefork" else h.tolerate)(DB_BACK)


def assert_delay_seconds(what, r):
    retry = r.headers.get("Retry-After")
    assert r.status_code == 503, (what, r.status_code)
    assert retry is not None and re.fullmatch(r"[0-9]+", retry), \
        "%s: Retry-After is not one delay-seconds value: %r" % (what, retry)


def serves_again(h, hash_, data):
    def ok():
        try:
            if h.get("/health").status_code != 200:
                return False
            g = h.get("/image/" + hash_)
            return g.status_code == 200 and g.content == data
        except requests.RequestException:
            return False
    return wait_until(ok, timeout=30, interval=0.5)



def test_800_database_down_when_apache_starts_is_503_then_served_once_it_is_up(pg, make_httpd):
    db = pg.create_db("t800")
    pg.stop()
    try:
        h = make_httpd(dbname=db)
        allow_back(h)
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
    allow_back(h)
    h.tolerate(*DB_DOWN_TAGS)
    # Images over 255 KiB too: COPY uploads and sliced retrievals meet the outage.
    with Load(h, names=NAMES + [SLICED]) as load:
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
    allow_back(h)
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


def test_803_database_down_is_503_with_retry_after_and_service_resumes(pg, make_httpd):
    h = make_httpd()
    allow_back(h)
    h.tolerate(*DB_DOWN_TAGS)
    before = h.upload(image("sample.png")).json()["hash"]
    pg.stop()
    try:
        assert_503(h.upload(image("sample.jpg")))
        assert_503(h.get("/image/" + before))
        health = h.get("/health")
        assert health.status_code == 503, health.text
        assert health.headers["Content-Type"].startswith("application/json")
        assert health.json().get("status") != "ok"
        assert health.headers.get("Retry-After"), health.headers
        c = h.get("/cleanup")
        assert c.status_code == 503, c.text
    finally:
        pg.start()
    assert serves_again(h, before, read("sample.png")), \
        "not served again within 30 s of the database coming back:\n" + h.errors()[-2000:]
    # Each child finds the database back on its own probe cycle (2 s): poll, as above.
    up = []
    assert wait_until(lambda: up.append(h.upload(image("sample.gif"))) or
                      up[-1].status_code == 201, 30), up[-1].text
    # Under prefork the fetch may meet another child still in its probe period: poll.
    assert serves_again(h, up[-1].json()["hash"], read("sample.gif"))


def test_804_an_outage_logs_a_line_per_child_per_period_not_per_request(pg, make_httpd):
    h = make_httpd()
    allow_back(h)
    h.tolerate(*DB_DOWN_TAGS)
    assert h.get("/health").status_code == 200
    pg.stop()
    try:
        t0 = time.time()
        codes = [h.get("/health").status_code for _ in range(60)]
        codes += [requests.get(h.url("/image/" + "A" * 43), timeout=30).status_code
                  for _ in range(60)]
        elapsed = time.time() - t0
    finally:
        pg.start()
    assert set(codes) <= {503, 404}, codes
    lines = [l for l in h.errors().splitlines() if "IMG00011" in l]
    # One line per child per outage, however many requests it answered.
    pids = [re.search(r"\[pid (\d+)", l).group(1) for l in lines]
    assert 1 <= len(lines) and len(pids) == len(set(pids)), \
        "%d IMG00011 lines for %d requests in %.1f s:\n%s" % (
            len(lines), len(codes), elapsed, "\n".join(lines))
    assert wait_until(lambda: h.get("/health").status_code == 200, 30)


def test_805_a_database_restart_is_survived(pg, make_httpd):
    h = make_httpd()
    h.tolerate(DB_BACK)  # only if a child met the restart
    h.tolerate(*DB_DOWN_TAGS)
    # Fill the pools with connections that the restart will break.
    hashes = [h.upload(image("sample.png")).json()["hash"] for _ in range(6)]
    pg.restart()
    assert serves_again(h, hashes[0], read("sample.png")), h.errors()[-2000:]
    for x in hashes:
        assert h.get("/image/" + x).content == read("sample.png")
    r = h.upload(image("sample.webp"))
    assert r.status_code == 201, r.text


def test_806_a_database_without_the_schema_is_503_until_migrated(pg, make_httpd):
    db = pg.create_db("nomig", migrate=False)
    h = make_httpd(dbname=db)
    h.allow(r"IMG00012")
    assert_503(h.upload(image("sample.png")))
    assert_503(h.get("/image/" + "A" * 43))
    health = h.get("/health")
    assert health.status_code == 503
    assert health.json().get("status") != "ok"
    assert wait_until(lambda: "IMG00012" in h.errors(), 5), h.errors()
    assert "imgstore-migrate" in h.errors()
    # Migrating while the server runs is enough: no restart.
    pg.migrate(db=db)

    def uploads():
        r = h.upload(image("sample.png"))
        return r if r.status_code == 201 else None
    r = wait_until(uploads, timeout=30, interval=0.5)
    assert r, "still not accepting uploads 30 s after the migration"
    # Each child looks at the schema again on its own retry period: every child serves soon.
    assert serves_again(h, r.json()["hash"], read("sample.png"))


def test_807_retry_after_is_a_single_delay_seconds_value(pg, make_httpd):
    # RFC 9110: Retry-After = HTTP-date / delay-seconds; one header, one value.
    db = pg.create_db("nomig", migrate=False)
    down = make_httpd()
    down.tolerate(*DB_DOWN_TAGS)
    down.tolerate(DB_BACK)
    behind = make_httpd(dbname=db)
    # Its cleanup attempt after an answer may still be running when the cluster stops.
    behind.allow(r"IMG00012")
    behind.tolerate(*DB_DOWN_TAGS)
    answers = [("schema behind: upload", behind.upload(image("sample.png"))),
               ("schema behind: image", behind.get("/image/" + "A" * 43)),
               ("schema behind: health", behind.get("/health"))]
    pg.stop()
    try:
        answers += [("database down: upload", down.upload(image("sample.png"))),
                    ("database down: image", down.get("/image/" + "A" * 43)),
                    ("database down: health", down.get("/health")),
                    ("database down: cleanup", down.get("/cleanup"))]
    finally:
        pg.start()
    bad = []
    for what, r in answers:
        try:
            assert_delay_seconds(what, r)
        except AssertionError as e:
            bad.append(str(e).splitlines()[0])
    assert not bad, "\n".join(bad)


# -- issue 9 item 12: no request fails once the database is back; a black-holed database ----

def test_808_once_the_database_is_back_no_request_fails_and_img00015_is_logged(pg, make_httpd):
    """Pools full of connections the restart breaks, requests during the outage (503 with
    Retry-After: 5, the README's value), then from the moment the cluster accepts again
    every request succeeds, the very first one included, and a child logs IMG00015."""
    h = make_httpd()
    h.tolerate(*DB_DOWN_TAGS)
    h.allow(DB_BACK)
    data = read("sample.png")
    hashes = [h.upload(image("sample.png")).json()["hash"] for _ in range(8)]
    pg.stop()
    try:
        down = [h.get("/health"), h.get("/image/" + hashes[0])]
    finally:
        pg.start()
    for r in down:
        assert r.status_code == 503 and r.headers.get("Retry-After") == "5", \
            (r.status_code, r.headers)
    failed = []
    for i in range(40):
        x = hashes[i % len(hashes)]
        for r in (h.get("/image/" + x), h.get("/health")):
            if r.status_code != 200:
                failed.append((i, r.request.url[-20:], r.status_code, r.text[:80]))
        if i % 10 == 0:
            u = h.upload(image("sample.gif"))
            if u.status_code != 201:
                failed.append((i, "upload", u.status_code, u.text[:80]))
    assert not failed, failed
    assert h.get("/image/" + hashes[0]).content == data
    assert wait_until(lambda: re.search(DB_BACK, h.errors()), 10), h.errors()[-2000:]


def test_809_a_database_that_accepts_and_never_answers_is_503_not_a_hung_worker(pg, make_httpd):
    """A firewall that drops packets, not a stopped server: a loopback listener that takes
    connections and never answers. With connect_timeout=2 in DBDParams, requests get 503 with
    Retry-After (the client's own timeout of 15 s is the hang guard), again and again."""
    import socket
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(512)
    port = hole.getsockname()[1]
    try:
        h = make_httpd(start=False)
        params = ("host=127.0.0.1 port=%d dbname=imgstore user=imgstore password=x "
                  "connect_timeout=2" % port)
        h.env = (lambda orig: lambda: dict(orig(), IMGSTORE_DBPARAMS=params))(h.env)
        h.tolerate(*DB_DOWN_TAGS)
        h.start()
        for path in ("/health", "/image/" + "A" * 43, "/health"):
            r = requests.get(h.url(path), timeout=15)
            assert r.status_code == 503 and r.headers.get("Retry-After") == "5", \
                (path, r.status_code, r.text[:200])
        r = h.upload(image("sample.png"))
        assert r.status_code == 503, r.text
    finally:
        hole.close()
