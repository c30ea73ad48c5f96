"""3xx: expiry is exact whether or not cleanup ran; cleanup deletes expired rows, and only those.

Each test runs against a database of its own, so that no other server's cleanup pass, and
no other test's rows, can change what it observes.
"""
import calendar
import threading
import time

import requests

from harness import assert_json_error, image, read, sql_id


def expires_epoch(body):
    return calendar.timegm(time.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%SZ"))


def sleep_past(epoch, margin=1.1):
    delay = epoch + margin - time.time()
    if delay > 0:
        time.sleep(delay)


def row_count(pg, db, hash_):
    return int(pg.psql("SELECT count(*) FROM imgstore_images WHERE id = %s" % sql_id(hash_),
                       db=db))


def test_301_expired_image_is_404_before_any_cleanup_and_its_row_stays_until_cleanup(
        pg, make_httpd):
    db = pg.create_db("exp")
    h = make_httpd(dbname=db, extra="ImgStoreTTL 2\nImgStoreCleanupInterval 1h\n")
    r = h.upload(image("sample.png"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["expires_in"] == 2
    g = h.get("/image/" + body["hash"])
    assert g.status_code == 200 and g.content == read("sample.png")

    sleep_past(expires_epoch(body))
    assert_json_error(h.get("/image/" + body["hash"]), 404)
    # HEAD too.
    assert requests.head(h.url("/image/" + body["hash"]), timeout=30).status_code == 404
    # No cleanup pass is due for an hour: the expired row is still stored...
    assert row_count(pg, db, body["hash"]) == 1
    # ...until GET /cleanup runs one now.
    c = h.get("/cleanup")
    assert c.status_code == 200, c.text
    assert c.json()["deleted"] == 1
    assert row_count(pg, db, body["hash"]) == 0
    assert_json_error(h.get("/image/" + body["hash"]), 404)


def test_302_cleanup_deletes_expired_rows_only(pg, make_httpd):
    db = pg.create_db("exp")
    h = make_httpd(dbname=db, extra="ImgStoreTTL 2\nImgStoreCleanupInterval 1h\n"
                   "<Location /long>\n    ImgStoreTTL 5m\n</Location>\n")
    short = h.upload(image("sample.gif")).json()
    long_ = h.upload(image("sample.jpg"), prefix="/long").json()
    assert short["expires_in"] == 2 and long_["expires_in"] == 300
    sleep_past(expires_epoch(short))
    c = h.get("/cleanup")
    assert c.status_code == 200 and c.json()["deleted"] == 1, c.text
    assert row_count(pg, db, short["hash"]) == 0
    assert row_count(pg, db, long_["hash"]) == 1
    g = h.get("/long/image/" + long_["hash"])
    assert g.status_code == 200 and g.content == read("sample.jpg")
    # Nothing left to delete.
    assert h.get("/cleanup").json()["deleted"] == 0


def test_303_an_expired_row_disappears_by_itself_with_no_traffic(pg, make_httpd):
    db = pg.create_db("exp")
    h = make_httpd(dbname=db, extra="ImgStoreTTL 1\nImgStoreCleanupInterval 2\n")
    body = h.upload(image("sample.png")).json()
    assert row_count(pg, db, body["hash"]) == 1
    # From here on no HTTP request at all: only the database is watched.
    deadline = time.time() + 12
    while time.time() < deadline and row_count(pg, db, body["hash"]):
        time.sleep(0.25)
    assert row_count(pg, db, body["hash"]) == 0, \
        "the expired row was still stored 12 s after upload with no traffic"


def test_304_expiry_is_exact_when_a_row_outlives_its_ttl_in_the_database(pg, make_httpd):
    # A cleanup pass cannot run on this server during the test (interval 1h, claimed at
    # its first request): the only thing that can make the row unservable is its expiry.
    db = pg.create_db("exp")
    h = make_httpd(dbname=db, extra="ImgStoreTTL 3\nImgStoreCleanupInterval 1h\n")
    body = h.upload(image("sample.webp")).json()
    statuses = []
    while time.time() < expires_epoch(body) + 1.5:
        statuses.append((time.time(), h.get("/image/" + body["hash"]).status_code))
        time.sleep(0.1)
    # Served up to some point, 404 from then on: never served again after a 404.
    codes = [s for _, s in statuses]
    assert codes[0] == 200 and codes[-1] == 404, codes
    first_404 = codes.index(404)
    assert all(c == 404 for c in codes[first_404:]), codes
    # And never served once its expiry second had passed.
    assert all(s == 404 for t, s in statuses if t >= expires_epoch(body) + 1), statuses
    assert row_count(pg, db, body["hash"]) == 1


def test_305_concurrent_cleanups_delete_each_expired_row_exactly_once(pg, make_httpd):
    db = pg.create_db("exp")
    h = make_httpd(dbname=db, extra="ImgStoreTTL 1\nImgStoreCleanupInterval 1h\n")
    bodies = [h.upload(image("sample.gif")).json() for _ in range(24)]
    sleep_past(max(expires_epoch(b) for b in bodies))
    results = []

    def clean():
        r = requests.get(h.url("/cleanup"), timeout=30)
        results.append((r.status_code, r.json().get("deleted") if r.status_code == 200 else r.text))

    threads = [threading.Thread(target=clean) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(code == 200 for code, _ in results) and len(results) == 8, results
    assert sum(n for _, n in results) == len(bodies), results
    assert int(pg.psql("SELECT count(*) FROM imgstore_images", db=db)) == 0


SLOW_DELETE = """
CREATE FUNCTION slow_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(CASE OLD.content_type WHEN 'test/stuck' THEN 4 ELSE 0.2 END);
    RETURN OLD;
END $$;
CREATE TRIGGER slow_delete BEFORE DELETE ON imgstore_images FOR EACH ROW
    WHEN (OLD.content_type IN ('test/slow', 'test/stuck')) EXECUTE FUNCTION slow_delete();
"""


def _expired_rows(pg, db, n, ctype, expires_at):
    pg.psql("INSERT INTO imgstore_images (id, key_id, nonce, ciphertext, content_type, size,"
            " created_at, expires_at) SELECT sha256(convert_to('%s' || i || random(), 'UTF8')),"
            " 1, decode(repeat('00', 12), 'hex'), decode(repeat('00', 16 + 100), 'hex'), '%s', 100,"
            " %d, %d FROM generate_series(1, %d) i" % (ctype, ctype, expires_at - 10, expires_at, n),
            db=db)


def test_306_cleanup_always_progresses_when_a_batch_cannot_finish_in_time(pg, make_httpd):
    """Expired rows whose deletion is slow (a trigger stands in for rows too big to delete in
    one batch's time): one that cannot be deleted even alone, then 40 slow ones, then small
    ones behind them. Every GET /cleanup pass deletes something (batches shrink after a
    timeout, the stuck row is stepped over with IMG00150), the small rows go, the live image
    stays, and once the row is no longer stuck a later pass deletes it too."""
    db = pg.create_db("exp")
    h = make_httpd(dbname=db, extra="ImgStoreCleanupInterval 1h\n")
    live = h.upload(image("sample.png"))
    assert live.status_code == 201, live.text
    pg.psql(SLOW_DELETE, db=db)
    now = int(time.time())
    _expired_rows(pg, db, 1, "test/stuck", now - 3000)
    _expired_rows(pg, db, 40, "test/slow", now - 2000)
    _expired_rows(pg, db, 30, "test/small", now - 1000)
    h.allow(r"IMG00150")

    def left(ctype):
        return int(pg.psql("SELECT count(*) FROM imgstore_images WHERE content_type = '%s'"
                           % ctype, db=db))

    passes = 0
    while left("test/slow") + left("test/small") > 0:
        passes += 1
        assert passes <= 40, "cleanup did not get through 70 rows in 40 passes"
        c = requests.get(h.url("/cleanup"), timeout=60)
        assert c.status_code == 200, c.text
        assert c.json()["deleted"] > 0, "a cleanup pass made no progress"
    assert left("test/stuck") == 1
    assert row_count(pg, db, live.json()["hash"]) == 1
    # The stuck row is tried again by a later pass.
    pg.psql("DROP TRIGGER slow_delete ON imgstore_images", db=db)
    assert h.get("/cleanup").json()["deleted"] == 1
    assert left("test/stuck") == 0 and row_count(pg, db, live.json()["hash"]) == 1


CLAIM_LOG = """
CREATE TABLE claim_log (seq serial, at bigint, prev bigint);
CREATE FUNCTION log_claim() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    INSERT INTO claim_log (at, prev) VALUES (NEW.last_cleanup, OLD.last_cleanup);
    RETURN NEW;
END $$;
CREATE TRIGGER log_claim AFTER UPDATE ON imgstore_state FOR EACH ROW
    WHEN (NEW.last_cleanup IS DISTINCT FROM OLD.last_cleanup) EXECUTE FUNCTION log_claim();
"""


def test_307_two_hosts_sharing_a_database_run_one_cleanup_pass_per_interval(pg, make_httpd):
    """Two servers (hosts) on one database, each with its timer and its requests trying the
    claim: the claims recorded in the database (a trigger logs each) are at least the
    interval apart, less the documented slack of 2 s for a timer firing early."""
    db = pg.create_db("hosts")
    pg.psql(CLAIM_LOG, db=db)
    interval = 5
    hosts = [make_httpd(dbname=db, extra="ImgStoreCleanupInterval %ds\n" % interval)
             for _ in range(2)]
    start = time.time()
    while time.time() - start < 3 * interval + 1:
        for h in hosts:
            assert h.get("/health").status_code == 200
        time.sleep(0.1)
    claims = [int(x) for x in pg.psql("SELECT at FROM claim_log ORDER BY seq", db=db).split()]
    assert len(claims) >= 2, claims
    gaps = [b - a for a, b in zip(claims, claims[1:])]
    assert min(gaps) >= interval - 2, claims
