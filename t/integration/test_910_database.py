"""9xx: the database goes away, comes back, restarts, or lacks the schema.

These tests stop the shared PostgreSQL cluster: each starts it again in a finally block,
and they use only servers of their own (no module-wide server sees the outage).
"""
import re
import time

import requests

from harness import assert_json_error, image, read, wait_until

# mod_dbd's own lines when its pool cannot connect, and the module's one line per period.
DB_DOWN_TAGS = (r"AH00629", r"AH02655", r"AH00639", r"AH00633", r"IMG00011", r"IMG00014")


def assert_503(r):
    """503 JSON with a Retry-After (its exact syntax is test_914's business)."""
    assert_json_error(r, 503)
    retry = r.headers.get("Retry-After")
    assert retry is not None, r.headers
    assert int(retry.split(",")[0]) > 0, retry


def assert_delay_seconds(what, r):
    retry = r.headers.get("Retry-After")
    assert r.status_code == 503, (what, r.status_code)
    assert retry is not None and re.fullmatch(r"[0-9]+", retry), \
        "%s: Retry-After is not one delay-seconds value: %r" % (what, retry)


def served_again(h, hash_, data):
    def ok():
        try:
            if h.get("/health").status_code != 200:
                return False
            g = h.get("/image/" + hash_)
            return g.status_code == 200 and g.content == data
        except requests.RequestException:
            return False
    return wait_until(ok, timeout=30, interval=0.5)


def test_910_database_down_is_503_with_retry_after_and_service_resumes(pg, make_httpd):
    h = make_httpd()
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
    assert served_again(h, before, read("sample.png")), \
        "not served again within 30 s of the database coming back:\n" + h.errors()[-2000:]
    # Each child finds the database back on its own probe cycle (2 s): poll, as above.
    up = []
    assert wait_until(lambda: up.append(h.upload(image("sample.gif"))) or
                      up[-1].status_code == 201, 30), up[-1].text
    assert h.get("/image/" + up[-1].json()["hash"]).content == read("sample.gif")


def test_911_an_outage_logs_a_line_per_child_per_period_not_per_request(pg, make_httpd):
    h = make_httpd()
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


def test_912_a_database_restart_is_survived(pg, make_httpd):
    h = make_httpd()
    h.tolerate(*DB_DOWN_TAGS)
    # Fill the pools with connections that the restart will break.
    hashes = [h.upload(image("sample.png")).json()["hash"] for _ in range(6)]
    pg.restart()
    assert served_again(h, hashes[0], read("sample.png")), h.errors()[-2000:]
    for x in hashes:
        assert h.get("/image/" + x).content == read("sample.png")
    r = h.upload(image("sample.webp"))
    assert r.status_code == 201, r.text


def test_913_a_database_without_the_schema_is_503_until_migrated(pg, make_httpd):
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
    assert served_again(h, r.json()["hash"], read("sample.png"))


def test_914_retry_after_is_a_single_delay_seconds_value(pg, make_httpd):
    # RFC 9110: Retry-After = HTTP-date / delay-seconds; one header, one value.
    db = pg.create_db("nomig", migrate=False)
    down = make_httpd()
    down.tolerate(*DB_DOWN_TAGS)
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
