"""250: the hot image cache (ImgStoreCache shmcb): hits, misses, expiry, deletes and
images too large for it, on one host and across two hosts sharing a database; the cache
holds sealed rows only (the shared memory is scanned for the image and the token).
A hit shows in server-status as CacheHits, a miss as CacheMisses."""
import base64
import os
import re
import subprocess
import time

import pytest
import requests

from harness import free_port, png_of_size, row_id, sql_id, token_of, wait_port

SHMCB = "/usr/lib/apache2/modules/mod_socache_shmcb.so"


def cache_conf(size=8 * 1024 * 1024, extra=""):
    return ("LoadModule socache_shmcb_module %s\nImgStoreCache shmcb:cache(%d)\n%s"
            % (SHMCB, size, extra))


def counters(h):
    text = requests.get(h.url("/server-status?auto"), timeout=30).text
    return {k: int(v) for k, v in re.findall(r"^ImgStore(\w+): (-?\d+)$", text, re.M)}


def upload(h, size=20000, seed=0):
    """A PNG of size bytes: filled with random bytes (seed 0: fresh ones), or zeros (None)."""
    data = png_of_size(size, seed=os.urandom(8) if seed == 0 else seed)
    r = h.upload(data=data, filename="x.png")
    assert r.status_code == 201, r.text
    return r.json()["hash"], data


def fetch(h, hash_):
    return h.get("/image/" + hash_)


def test_250_upload_fills_the_cache_and_a_get_is_a_hit(make_httpd):
    h = make_httpd(extra=cache_conf())
    hash_, data = upload(h)
    for _ in range(3):
        g = fetch(h, hash_)
        assert g.status_code == 200 and g.content == data
    c = counters(h)
    assert c["CacheHits"] == 3 and c["CacheMisses"] == 0
    assert c["Retrievals"] == 3


def test_251_no_cache_by_default(make_httpd):
    h = make_httpd()
    hash_, data = upload(h)
    assert fetch(h, hash_).content == data
    c = counters(h)
    assert c["CacheHits"] == 0 and c["CacheMisses"] == 0


def test_252_a_miss_fills_the_cache_on_another_host(pg, make_httpd):
    db = pg.create_db("cache")
    a = make_httpd(extra=cache_conf(), dbname=db)
    b = make_httpd(extra=cache_conf(), dbname=db, keyfile=a.keyfile)
    hash_, data = upload(a)
    first, second = fetch(b, hash_), fetch(b, hash_)
    assert first.content == data and second.content == data
    c = counters(b)
    assert c["CacheMisses"] == 1 and c["CacheHits"] == 1


def test_253_a_row_deleted_in_the_database_is_not_served_from_any_cache(pg, make_httpd):
    """Host A deletes (here: the row goes, as a delete or cleanup on any host does it);
    host B's cached copy must not be served: its hit is confirmed by the database."""
    db = pg.create_db("cache")
    a = make_httpd(extra=cache_conf(), dbname=db)
    b = make_httpd(extra=cache_conf(), dbname=db, keyfile=a.keyfile)
    hash_, data = upload(a)
    assert fetch(b, hash_).content == data      # miss: B caches it
    assert fetch(b, hash_).content == data      # hit
    assert fetch(a, hash_).content == data      # hit on A (filled at upload)
    pg.psql("DELETE FROM imgstore_images WHERE id = %s" % sql_id(hash_), db=db)
    for h in (a, b):
        before = counters(h)
        assert fetch(h, hash_).status_code == 404
        after = counters(h)
        assert after["CacheHits"] == before["CacheHits"]
    # The refused copy was dropped locally: the next lookup is a plain miss.
    before = counters(b)
    assert fetch(b, hash_).status_code == 404
    assert counters(b)["CacheMisses"] == before["CacheMisses"] + 1


def test_254_an_expired_image_is_not_served_from_the_cache(make_httpd):
    h = make_httpd(extra=cache_conf(extra="ImgStoreTTL 2\n"))
    hash_, data = upload(h)
    assert fetch(h, hash_).content == data
    assert counters(h)["CacheHits"] == 1
    up = h.get("/image/" + hash_)
    assert up.status_code == 200
    deadline = time.time() + 10
    while time.time() < deadline and fetch(h, hash_).status_code == 200:
        time.sleep(0.5)
    assert fetch(h, hash_).status_code == 404
    # The row is still in the database (no cleanup ran): the database said "not live".
    assert fetch(h, hash_).status_code == 404


def test_255_images_too_large_for_the_cache_are_not_cached(make_httpd):
    # 256 KiB of shmcb: a 2 KiB hint, four subcaches: its share for one object is 32 KiB.
    h = make_httpd(extra=cache_conf(size=256 * 1024))
    big, big_data = upload(h, size=200 * 1024)
    small, small_data = upload(h, size=20 * 1024)
    for _ in range(2):
        assert fetch(h, big).content == big_data
        assert fetch(h, small).content == small_data
    c = counters(h)
    assert c["CacheMisses"] == 2 and c["CacheHits"] == 2


def test_257_the_shipped_cache_keeps_1_mb_images_and_skips_5_mb_ones(make_httpd):
    """conf/dev-httpd.conf's cache (-D IMGSTORE_CACHE, as ./dev run): 128 MB of shmcb in 16
    subcaches, images up to 4 MB."""
    h = make_httpd(defines=["IMGSTORE_CACHE"])
    one = upload(h, size=1_000_000, seed=1)
    five = upload(h, size=5_000_000, seed=None)
    for hash_, data in (one, five, one, five):
        assert fetch(h, hash_).content == data
    c = counters(h)
    assert c["CacheHits"] == 2 and c["CacheMisses"] == 2


def shared_memory(pid):
    """The bytes of every shared writable mapping of a process (the shmcb segment is one)."""
    out = []
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            f = line.split()
            if len(f) < 2 or not f[1].startswith("rw") or f[1][3] != "s":
                continue
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            try:
                mem.seek(lo)
                out.append(mem.read(hi - lo))
            except OSError:
                continue
    return b"".join(out)


def test_256_the_cache_holds_no_plaintext_and_no_token(pg, make_httpd):
    db = pg.create_db("cache")
    a = make_httpd(extra=cache_conf(), dbname=db)
    b = make_httpd(extra=cache_conf(), dbname=db, keyfile=a.keyfile)
    images = [upload(a, size=30000) for _ in range(3)]
    for hash_, data in images:
        assert fetch(b, hash_).content == data   # miss on B: filled from the database
        assert fetch(a, hash_).content == data   # hit on A: filled at upload
    assert counters(a)["CacheHits"] == 3 and counters(b)["CacheMisses"] == 3
    for h in (a, b):
        mem = shared_memory(h.pid)
        for hash_, data in images:
            ciphertext = bytes.fromhex(pg.query(
                "SELECT encode(ciphertext, 'hex') FROM imgstore_images WHERE id = %s"
                % sql_id(hash_), db=db)[0][0])
            # The cache is where we look: the sealed row is there ...
            assert ciphertext in mem and row_id(hash_) in mem
            # ... and neither the image (whole, a slice, base64) nor its token is.
            for needle in (data, data[1000:1064], data[-64:], base64.b64encode(data[:3000]),
                           token_of(hash_), hash_.encode(), hash_[:20].encode()):
                assert needle not in mem


# -- view limits and deletes (issue 10's user controls) through the cache ---------------

def upload_with(h, fields, size=20000):
    data = png_of_size(size, seed=os.urandom(8))
    r = requests.post(h.url("/upload"), data=fields, timeout=30,
                      files={"file": ("x.png", data, "image/png")})
    assert r.status_code == 201, r.text
    return r.json(), data


def two_hosts(pg, make_httpd):
    db = pg.create_db("cache")
    a = make_httpd(extra=cache_conf(), dbname=db)
    b = make_httpd(extra=cache_conf(), dbname=db, keyfile=a.keyfile)
    return db, a, b


def test_258_view_limits_hold_across_two_hosts_caches(pg, make_httpd):
    db, a, b = two_hosts(pg, make_httpd)
    body, data = upload_with(a, {"max_views": "3"})
    hash_ = body["hash"]
    assert fetch(a, hash_).content == data          # hit on A (cached at upload): 2 left
    assert fetch(b, hash_).content == data          # miss on B, now cached there: 1 left
    assert fetch(a, hash_).content == data          # hit on A: the last view, row gone
    assert pg.query("SELECT count(*) FROM imgstore_images WHERE id = %s" % sql_id(hash_),
                    db=db) == [["0"]]
    assert fetch(b, hash_).status_code == 404       # B's copy is refused by the database
    assert fetch(a, hash_).status_code == 404       # A dropped its copy with the last view
    ca, cb = counters(a), counters(b)
    assert ca["CacheHits"] == 2 and ca["CacheMisses"] == 1
    assert cb["CacheHits"] == 0 and cb["CacheMisses"] == 1


def test_259_head_through_the_cache_spends_no_view(make_httpd):
    h = make_httpd(extra=cache_conf())
    body, data = upload_with(h, {"max_views": "1"})
    for _ in range(2):
        assert requests.head(h.url("/image/" + body["hash"]), timeout=30).status_code == 200
    assert fetch(h, body["hash"]).content == data
    assert fetch(h, body["hash"]).status_code == 404
    assert counters(h)["CacheHits"] == 3


def test_260_a_delete_on_one_host_is_not_served_from_the_others_cache(pg, make_httpd):
    db, a, b = two_hosts(pg, make_httpd)
    body, data = upload_with(a, {})
    hash_ = body["hash"]
    assert fetch(b, hash_).content == data and fetch(b, hash_).content == data
    r = requests.delete(a.url("/image/" + hash_), timeout=30,
                        headers={"X-Delete-Token": body["delete_token"]})
    assert r.status_code == 204
    hits_b = counters(b)["CacheHits"]
    assert fetch(b, hash_).status_code == 404
    assert counters(b)["CacheHits"] == hits_b
    misses_a = counters(a)["CacheMisses"]
    assert fetch(a, hash_).status_code == 404        # A removed its copy when it deleted
    assert counters(a)["CacheMisses"] == misses_a + 1


def test_261_the_cache_holds_no_delete_token(make_httpd):
    h = make_httpd(extra=cache_conf())
    body, data = upload_with(h, {"max_views": "5"})
    assert fetch(h, body["hash"]).content == data
    mem = shared_memory(h.pid)
    token = body["delete_token"]
    assert row_id(body["hash"]) in mem
    for needle in (token.encode(), base64.urlsafe_b64decode(token + "="), data[-64:]):
        assert needle not in mem


# -- memcache and redis: one cache shared by several hosts ---------------------------------

SERVERS = {
    "memcache": ("/usr/bin/memcached", lambda port: ["/usr/bin/memcached", "-u", "nobody",
                                                     "-l", "127.0.0.1", "-p", str(port)]),
    "redis": ("/usr/bin/redis-server", lambda port: ["/usr/bin/redis-server", "--port", str(port),
                                                     "--bind", "127.0.0.1", "--save", "",
                                                     "--appendonly", "no"]),
}


@pytest.mark.parametrize("provider", sorted(SERVERS))
def test_262_hosts_sharing_a_network_cache(pg, make_httpd, provider):
    """Two hosts, one memcached/redis: an upload on A is a hit on B; a delete on A is
    refused from the shared cache on B, because B's hit asks the database."""
    binary, argv = SERVERS[provider]
    if not os.path.exists(binary):
        pytest.skip("%s is not installed" % binary)
    port = free_port()
    server = subprocess.Popen(argv(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_port(port), "%s did not listen" % binary
        conf = ("LoadModule socache_%s_module /usr/lib/apache2/modules/mod_socache_%s.so\n"
                "ImgStoreCache %s:127.0.0.1:%d\n" % (provider, provider, provider, port))
        db = pg.create_db("cache")
        a = make_httpd(extra=conf, dbname=db)
        b = make_httpd(extra=conf, dbname=db, keyfile=a.keyfile)
        body, data = upload_with(a, {})
        assert fetch(b, body["hash"]).content == data
        assert counters(b)["CacheHits"] == 1 and counters(b)["CacheMisses"] == 0
        r = requests.delete(a.url("/image/" + body["hash"]), timeout=30,
                            headers={"X-Delete-Token": body["delete_token"]})
        assert r.status_code == 204
        assert fetch(b, body["hash"]).status_code == 404
        # Larger than the provider takes (1 MB): served from the database, not cached.
        big, big_data = upload_with(a, {}, size=1_200_000)
        assert fetch(b, big["hash"]).content == big_data
        assert counters(b)["CacheMisses"] == 2
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_263_cleanup_drops_the_rows_it_deletes_from_the_shmcb_cache(pg, make_httpd):
    """Cleanup removes each row it deletes from the host's shmcb cache, as delete and last
    view do. Seen through a row put back after the pass: the cache entry (still within its
    own expiry) would be a hit had cleanup left it there; it is a miss."""
    db = pg.create_db("cache")
    h = make_httpd(extra=cache_conf(extra="ImgStoreCleanupInterval 1h\n"), dbname=db)
    hash_, data = upload(h)
    assert fetch(h, hash_).content == data
    assert counters(h)["CacheHits"] == 1                # cached at upload
    # Expired in the database only: the cache entry keeps the image's real expiry.
    where = "WHERE id = %s" % sql_id(hash_)
    pg.psql("CREATE TABLE saved AS SELECT * FROM imgstore_images " + where, db=db)
    pg.psql("UPDATE imgstore_images SET created_at = created_at - 86400,"
            " expires_at = extract(epoch FROM now())::bigint - 60 " + where, db=db)
    c = h.get("/cleanup")
    assert c.status_code == 200 and c.json()["deleted"] == 1, c.text
    assert pg.psql("SELECT count(*) FROM imgstore_images " + where, db=db) == "0"
    # The row is back, live as before: only the cache can tell whether cleanup touched it.
    pg.psql("INSERT INTO imgstore_images SELECT * FROM saved", db=db)
    before = counters(h)
    g = fetch(h, hash_)
    assert g.status_code == 200 and g.content == data
    after = counters(h)
    assert after["CacheHits"] == before["CacheHits"], "cleanup left the row in the cache"
    assert after["CacheMisses"] == before["CacheMisses"] + 1
    # The miss filled the cache again.
    assert fetch(h, hash_).content == data
    assert counters(h)["CacheHits"] == after["CacheHits"] + 1


def _mutex_files(pid):
    """What the process's open files that hold the cache's mutex point at."""
    out = []
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if "imgstore-cache" in target:
            out.append(target)
    return out


@pytest.mark.parametrize("mutex", ["default", "pthread"])
def test_264_the_cache_mutex_is_fcntl_unless_the_mutex_directive_says_otherwise(make_httpd, mutex):
    """fcntl by default (APR's default, a priority-inheriting pthread mutex, queued the
    hot path: README, "64 connections"): each child holds the lock file, created in
    DefaultRuntimeDir and unlinked at once; with Mutex pthread there is no file at all."""
    extra = "" if mutex == "default" else "Mutex pthread imgstore-cache\n"
    h = make_httpd(extra=cache_conf(extra=extra))
    hash_, data = upload(h)
    assert fetch(h, hash_).content == data
    kids = h.children()
    assert kids
    for pid in kids:
        files = _mutex_files(pid)
        if mutex == "default":
            run_dir = os.path.join(h.dir, "run")
            assert files and all(f.startswith(run_dir) and f.endswith("(deleted)")
                                 for f in files), (pid, files)
        else:
            assert files == [], (pid, files)


# The backend that runs the UPDATE spending a view terminates itself, the first time only
# (a sequence: its value survives the aborted transaction).
KILL_THE_FIRST_SPEND = """
CREATE SEQUENCE spend_kills;
CREATE FUNCTION kill_the_first_spend() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    IF nextval('spend_kills') = 1 THEN
        PERFORM pg_terminate_backend(pg_backend_pid());
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER kill_the_first_spend BEFORE UPDATE ON imgstore_images
    FOR EACH ROW EXECUTE FUNCTION kill_the_first_spend();
"""


@pytest.mark.parametrize("cached", [True, False], ids=["hit", "no-cache"])
def test_265_a_connection_lost_while_spending_a_view_is_retried_with_the_same_image(
        pg, make_httpd, cached):
    """The connection dies in the middle of spending a view: the module asks again on a
    fresh one and answers the image, one view spent. Before, a cache hit freed the image
    when the first try failed and the retry answered from the freed buffer."""
    db = pg.create_db("spend")
    h = make_httpd(extra=cache_conf() if cached else "", dbname=db)
    body, data = upload_with(h, {"max_views": "3"})
    pg.psql(KILL_THE_FIRST_SPEND, db=db)
    g = fetch(h, body["hash"])
    assert g.status_code == 200 and g.content == data
    # Two tries, the first killed (its UPDATE rolled back), one view spent.
    assert pg.query("SELECT last_value FROM spend_kills", db=db) == [["2"]]
    assert pg.query("SELECT views_left FROM imgstore_images WHERE id = %s" % sql_id(body["hash"]),
                    db=db) == [["2"]]
    if cached:
        assert counters(h)["CacheHits"] == 1
    assert fetch(h, body["hash"]).content == data
    assert fetch(h, body["hash"]).content == data
    assert fetch(h, body["hash"]).status_code == 404
