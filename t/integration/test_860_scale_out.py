"""86x: the connection paths of a shared host. Behind PgBouncer 1.18 in transaction pooling
mode (which keeps no prepared statements per client): uploads, retrievals, COPY uploads,
cleanup, and a PgBouncer restart under load with nothing lost. Two httpd instances on one
database: uploads on one fetched from the other, one cleanup pass per interval across both.
GET /cleanup: one forced pass per few seconds per host."""
import os
import re
import time

import pytest
import requests

import harness as H
from harness import image, read, wait_until, write_key
from harness.bouncer import PgBouncer
from harness.load import DB_DOWN_TAGS, Load, wait_accepting


def counters(h):
    text = requests.get(h.url("/server-status?auto"), timeout=30).text
    return {k: int(v) for k, v in re.findall(r"^ImgStore(\w+): (-?\d+)$", text, re.M)}


@pytest.fixture
def bouncer(pg):
    b = PgBouncer(pg)
    yield b
    b.stop()


def test_860_behind_pgbouncer_in_transaction_mode_everything_works(pg, bouncer, make_httpd):
    db = pg.create_db("t860")
    h = make_httpd(pg=bouncer, dbname=db, extra="ImgStoreTTL 2\n<Location /long>\n"
                   "    ImgStoreTTL 5m\n</Location>\n")
    hashes = [H.round_trip(h, n) for n in ("sample.png", "sample.jpg", "sample.gif")]
    # Over 255 KiB: the COPY path (a transaction of its own).
    big = H.png_of_size(600 * 1000)
    r = requests.post(h.url("/long/upload"), files={"file": ("b.png", big, "image/png")},
                      timeout=30)
    assert r.status_code == 201, r.text
    g = h.get("/long/image/" + r.json()["hash"])
    assert g.status_code == 200 and g.content == big
    # Many requests: the named statements meet backends that never prepared them.
    for _ in range(3):
        for x, n in zip(hashes, ("sample.png", "sample.jpg", "sample.gif")):
            assert h.get("/image/" + x).content == read(n)
    time.sleep(3.1)
    c = h.get("/cleanup")
    assert c.status_code == 200 and c.json()["deleted"] == 3, c.text
    assert H.rows(pg, db) == 1
    assert h.get("/health").json()["database"] == "ok"


def test_861_a_pgbouncer_restart_under_load_loses_nothing(pg, bouncer, make_httpd):
    db = pg.create_db("t861")
    h = make_httpd(pg=bouncer, dbname=db)
    h.tolerate(*DB_DOWN_TAGS)
    h.tolerate(r"IMG00015")
    with Load(h) as load:
        time.sleep(1.5)
        before = len(load.acked)
        bouncer.restart()
        assert wait_accepting(h), "uploads not taken again within 30 s:\n" + h.errors()[-2000:]
        time.sleep(1.5)
    assert not load.hangs, load.hangs[:5]
    assert not load.conn_errors, load.conn_errors[:5]
    assert not load.mismatches, load.mismatches
    assert load.codes() <= {200, 201, 503}, dict(load.statuses)
    load.assert_every_ack_retrievable()
    # Every acknowledged row is in the database. (An upload whose COMMIT went through just
    # as PgBouncer cut the client may have stored a row whose answer was a 503: no token
    # for it was ever given out, and it expires with its TTL.)
    assert len(set(x for x, _ in load.acked)) == len(load.acked)
    assert H.rows(pg, db) >= len(load.acked)
    assert before > 0 and len(load.acked) > before, (before, len(load.acked))


def test_862_two_httpd_instances_on_one_database(pg, make_httpd):
    db = pg.create_db("t862")
    d = H.make_tmp("imgstore-key-")
    key = write_key(os.path.join(d, "shared.key"))
    conf = "ImgStoreCleanupInterval 1h\nImgStoreTTL 2\n"
    h1 = make_httpd(dbname=db, keyfile=key, extra=conf)
    h2 = make_httpd(dbname=db, keyfile=key, extra=conf)
    # Uploads on one are served by the other.
    for a, b in ((h1, h2), (h2, h1)):
        for n in ("sample.png", "sample.webp"):
            r = a.upload(image(n))
            assert r.status_code == 201, r.text
            g = b.get("/image/" + r.json()["hash"])
            assert g.status_code == 200 and g.content == read(n)
    # Every child of both tried the claim after its requests (and the timers run):
    # with an interval of an hour, exactly one pass ran across both servers.
    for _ in range(20):
        for h in (h1, h2):
            assert h.get("/health").status_code == 200
    passes = counters(h1)["CleanupPasses"] + counters(h2)["CleanupPasses"]
    assert passes == 1, passes


def test_863_cleanup_passes_across_two_servers_follow_the_interval(pg, make_httpd):
    """Interval 1 s, TTL 1 s, no traffic after the uploads: the expired rows uploaded
    through both servers go."""
    db = pg.create_db("t863")
    d = H.make_tmp("imgstore-key-")
    key = write_key(os.path.join(d, "shared.key"))
    conf = "ImgStoreCleanupInterval 1\nImgStoreTTL 1\n"
    h1 = make_httpd(dbname=db, keyfile=key, extra=conf)
    h2 = make_httpd(dbname=db, keyfile=key, extra=conf)
    for h in (h1, h2):
        assert h.upload(image("sample.png")).status_code == 201
    assert wait_until(lambda: H.rows(pg, db) == 0, 20, 0.25), "expired rows stayed"


def test_864_get_cleanup_forces_at_most_one_pass_per_few_seconds(pg, make_httpd):
    db = pg.create_db("t864")
    h = make_httpd(dbname=db, extra="ImgStoreTTL 1\nImgStoreCleanupInterval 1h\n")
    for _ in range(3):
        assert h.upload(image("sample.gif")).status_code == 201
    time.sleep(2.1)
    answers = [h.get("/cleanup").json() for _ in range(6)]
    forced = [a for a in answers if a["forced"]]
    assert answers[0]["forced"] and answers[0]["deleted"] == 3, answers
    rest = [a for a in answers if not a["forced"]]
    assert rest, "six calls in a row each forced a pass: %r" % answers
    # The others answer from the last forced pass, deleting nothing themselves.
    assert all(a["deleted"] == 0 and a["last_forced_deleted"] == 3 for a in rest), answers
    assert sum(a["deleted"] for a in forced) == 3, answers


EVASIVE = "/usr/lib/apache2/modules/mod_evasive20.so"


@pytest.mark.skipif(not os.path.exists(EVASIVE), reason="libapache2-mod-evasive (./dev installs it)")
def test_865_the_readme_rate_limit_recipe_with_mod_evasive_blocks_a_flooding_client(
        pg, make_httpd):
    """README "Hosting many sites": mod_evasive in front of a tenant's mount. A client that
    asks for the same page more than DOSPageCount times within DOSPageInterval gets 403
    for DOSBlockingPeriod; the image store itself is never reached by those requests."""
    db = pg.create_db("t865")
    d = H.make_tmp("imgstore-evasive-")
    os.chmod(d, 0o777)
    h = make_httpd(dbname=db, extra=(
        "LoadModule evasive20_module %s\n"
        "<IfModule mod_evasive20.c>\n"
        "    DOSHashTableSize 3097\n    DOSPageCount 5\n    DOSPageInterval 10\n"
        "    DOSSiteCount 100\n    DOSSiteInterval 10\n    DOSBlockingPeriod 60\n"
        "    DOSLogDir %s\n"
        "</IfModule>\n" % (EVASIVE, d)))
    h.tolerate(r"evasive")
    x = H.round_trip(h)
    with requests.Session() as s:  # one keep-alive connection: one child, one hash table
        answers = [s.get(h.url("/image/" + x), timeout=30) for _ in range(20)]
    codes = [r.status_code for r in answers]
    assert codes[0] == 200 and codes[-1] == 403, codes
    assert codes.index(403) <= 6 and all(c == 403 for c in codes[codes.index(403):]), codes
    # The refusals are mod_evasive's (httpd's HTML page), not the module's JSON answers.
    assert all("json" not in r.headers.get("Content-Type", "") for r in answers if
               r.status_code == 403), [r.headers for r in answers[-1:]]
