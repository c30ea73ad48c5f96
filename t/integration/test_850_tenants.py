"""85x: many sites, one Apache. Each <VirtualHost> has its own mount, database, keys,
quota and limits; what concerns a database (outage, probe, schema check, cleanup claim,
quota total) is kept per database, so one tenant's database down, behind or full never
changes another tenant's answers. Also: configtest (httpd -t) fails for every key
problem in any virtual host, and `LogLevel imgstore:...` governs every glue file."""
import os
import re
import subprocess
import time

import pytest
import requests

import harness as H
from harness import image, read, wait_until, write_key
from harness.load import DB_DOWN_TAGS


@pytest.fixture(scope="module")
def pg2():
    """A second PostgreSQL cluster: tenant B's database lives there."""
    p = H.Postgres()
    yield p
    p.stop()


def tenant(name, dbparams, keyfile, port_conf="", mount="", server=""):
    """One <VirtualHost> with its own database, key and mount at /."""
    return """
<VirtualHost 127.0.0.1:${IMGSTORE_PORT}>
    ServerName %(name)s
    DBDriver pgsql
    DBDParams "%(dbparams)s"
    ImgStoreKeyFile %(keyfile)s
%(server)s
    <Location />
        SetHandler imgstore
%(mount)s
    </Location>
</VirtualHost>
""" % dict(name=name, dbparams=dbparams, keyfile=keyfile, server=server, mount=mount)


class Site:
    """Requests to one virtual host of an Httpd (by Host header)."""

    def __init__(self, h, name):
        self.h, self.name = h, name
        self.hdr = {"Host": name}

    def upload(self, name="sample.png", **kw):
        return self.h.upload(image(name), headers=self.hdr, **kw)

    def get(self, path):
        return self.h.get(path, headers=self.hdr)

    def round_trip(self, name="sample.png"):
        r = self.upload(name)
        assert r.status_code == 201, "%s upload: %d %s" % (self.name, r.status_code, r.text)
        g = self.get("/image/" + r.json()["hash"])
        assert g.status_code == 200 and g.content == read(name), (self.name, g.status_code)
        return r.json()["hash"]


def two_tenants(make_httpd, pg, dba, pgb, dbb, a_server="", b_server="", a_mount="",
                b_mount="", same_key=False, **kw):
    d = H.make_tmp("imgstore-tenants-")
    os.chmod(d, 0o755)
    ka = write_key(os.path.join(d, "a.key"))
    kb = ka if same_key else write_key(os.path.join(d, "b.key"))
    extra = (tenant("a.test", pg.dbparams_for(dba), ka, server=a_server, mount=a_mount)
             + tenant("b.test", pgb.dbparams_for(dbb), kb, server=b_server, mount=b_mount)
             + kw.pop("extra", ""))
    h = make_httpd(extra=extra, **kw)
    return h, Site(h, "a.test"), Site(h, "b.test")


def count(pg, db):
    return H.rows(pg, db)


def test_850_one_cluster_down_the_other_tenant_serves_and_is_cleaned_by_the_timer(
        pg, pg2, make_httpd):
    dba, dbb = pg.create_db("t850a"), pg2.create_db("t850b")
    h, a, b = two_tenants(make_httpd, pg, dba, pg2, dbb,
                          a_server="    ImgStoreCleanupInterval 1", a_mount="ImgStoreTTL 1",
                          b_server="    ImgStoreCleanupInterval 1", b_mount="ImgStoreTTL 1")
    h.tolerate(*DB_DOWN_TAGS)
    h.tolerate(r"IMG00015")
    a.round_trip()
    b.round_trip()
    pg2.stop()
    try:
        # Tenant B answers 503; tenant A is served throughout.
        for i in range(6):
            r = b.upload()
            assert r.status_code == 503, (i, r.status_code, r.text)
            hash_ = a.round_trip(["sample.png", "sample.gif", "sample.jpg"][i % 3])
        assert a.get("/health").status_code == 200
        assert b.get("/health").status_code == 503
        # With no traffic at all, the timer deletes tenant A's expired rows while B is down.
        assert count(pg, dba) > 0
        assert wait_until(lambda: count(pg, dba) == 0, 20, 0.25), \
            "tenant A's expired rows still stored 20 s later while B's database is down"
        assert hash_
    finally:
        pg2.start()
    # Tenant B comes back by itself.
    assert wait_until(lambda: b.upload().status_code == 201, 30, 0.5), h.errors()[-2000:]
    b.round_trip()
    a.round_trip()


def test_851_one_tenant_schema_behind_only_that_tenant_503s(pg, pg2, make_httpd):
    dba, dbb = pg.create_db("t851a"), pg2.create_db("t851b", migrate=False)
    h, a, b = two_tenants(make_httpd, pg, dba, pg2, dbb)
    h.allow(r"IMG00012")
    for _ in range(3):
        r = b.upload()
        assert r.status_code == 503, r.text
        assert b.get("/health").json()["database"] == "schema out of date"
        a.round_trip()
        assert a.get("/health").status_code == 200
    pg2.migrate(db=dbb)
    assert wait_until(lambda: b.upload().status_code == 201, 30, 0.5)


def test_852_quotas_are_independent(pg, make_httpd):
    dba, dbb = pg.create_db("t852a"), pg.create_db("t852b")
    h, a, b = two_tenants(make_httpd, pg, dba, pg, dbb, a_server="    ImgStoreMaxTotal 250K",
                          b_server="    ImgStoreMaxTotal 10M")
    codes = [a.upload("sample-100k.png").status_code for _ in range(4)]
    assert codes[:2] == [201, 201] and 507 in codes, codes
    # A is full; B (its own database and quota) takes as many.
    assert [b.upload("sample-100k.png").status_code for _ in range(4)] == [201] * 4
    assert int(H.query(pg, "SELECT total_bytes FROM imgstore_state", dba)[0][0]) <= 250 * 1024
    assert int(H.query(pg, "SELECT total_bytes FROM imgstore_state", dbb)[0][0]) > 250 * 1024


def test_853_keys_are_independent_a_row_of_one_tenant_does_not_open_with_the_others_key(
        pg, make_httpd):
    # Both tenants on ONE database, each with its own key file (both key id 1).
    db = pg.create_db("t853")
    h, a, b = two_tenants(make_httpd, pg, db, pg, db)
    h.allow(r"IMG00041")
    ha, hb = a.round_trip(), b.round_trip("sample.gif")
    for site, other in ((b, ha), (a, hb)):
        g = site.get("/image/" + other)
        assert g.status_code != 200 and g.content != read("sample.png"), g.status_code
        assert read("sample.gif") not in g.content
    assert a.get("/image/" + ha).content == read("sample.png")
    assert b.get("/image/" + hb).content == read("sample.gif")
    assert len(re.findall(r"IMG00041", h.errors())) == 2


def test_854_a_vhost_inherits_the_main_servers_database_and_keys(pg, make_httpd):
    db = pg.create_db("t854")
    extra = ("<VirtualHost 127.0.0.1:${IMGSTORE_PORT}>\n    ServerName c.test\n"
             "    <Location /c>\n        SetHandler imgstore\n        ImgStoreTTL 7\n"
             "    </Location>\n</VirtualHost>\n")
    h = make_httpd(dbname=db, extra=extra)
    c = Site(h, "c.test")
    r = c.h.upload(image("sample.png"), headers=c.hdr, prefix="/c")
    assert r.status_code == 201 and r.json()["expires_in"] == 7, r.text
    assert c.get("/c/image/" + r.json()["hash"]).content == read("sample.png")
    assert count(pg, db) == 1


KEY_PROBLEMS = ["missing", "31 raw bytes", "64 non-hex characters", "mode 0644",
                "owned by nobody", "active key not loaded", "two keys without an active key"]


def _vhost_key_problem(d, kind):
    """The ImgStore lines of a virtual host with key problem kind, and the expected text."""
    path = os.path.join(d, "v.key")
    if kind == "missing":
        return "ImgStoreKeyFile %s\n" % path, r"IMG00003.*" + re.escape(path)
    if kind == "31 raw bytes":
        write_key(path, os.urandom(31))
    elif kind == "64 non-hex characters":
        write_key(path, "z" * 64 + "\n")
    elif kind == "mode 0644":
        write_key(path, mode=0o644)
    elif kind == "owned by nobody":
        write_key(path)
        os.chown(path, 65534, -1)
    elif kind == "active key not loaded":
        write_key(path)
        return "ImgStoreKeyFile %s 1\nImgStoreActiveKey 5\n" % path, r"IMG00006.*5"
    elif kind == "two keys without an active key":
        write_key(path)
        k2 = write_key(os.path.join(d, "v2.key"))
        return ("ImgStoreKeyFile %s 1\nImgStoreKeyFile %s 2\n" % (path, k2),
                r"IMG00005.*ImgStoreActiveKey")
    return "ImgStoreKeyFile %s\n" % path, r"IMG00003.*" + re.escape(path)


@pytest.mark.parametrize("kind", KEY_PROBLEMS)
def test_855_configtest_fails_like_a_start_for_a_key_problem_in_a_vhost(pg, make_httpd, kind):
    d = H.make_tmp("imgstore-key-")
    lines, expect = _vhost_key_problem(d, kind)
    extra = ("<VirtualHost 127.0.0.1:${IMGSTORE_PORT}>\n    ServerName bad.test\n%s"
             "</VirtualHost>\n" % lines)
    h = make_httpd(extra=extra, start=False)
    t = subprocess.run(h.command() + ["-t"], env=h.env(), capture_output=True, text=True,
                       timeout=60)
    assert t.returncode != 0, "configtest passed with a vhost key %s:\n%s" % (kind, t.stderr)
    assert re.search(expect, t.stdout + t.stderr), t.stdout + t.stderr
    assert "Syntax OK" not in t.stdout + t.stderr
    # A start refuses with the same message.
    h.allow(expect.split(".*")[0])
    rc, text = h.start_refused()
    assert rc != 0 and not h.pid
    start_line = re.search(expect + ".*", text).group(0)
    test_line = re.search(expect + ".*", t.stdout + t.stderr).group(0)
    assert start_line.split("IMG")[1] == test_line.split("IMG")[1], (start_line, test_line)


def test_856_configtest_passes_with_good_keys_in_every_vhost(pg, make_httpd):
    db = pg.create_db("t856")
    h, a, b = two_tenants(make_httpd, pg, db, pg, db, start=False)
    t = subprocess.run(h.command() + ["-t"], env=h.env(), capture_output=True, text=True,
                       timeout=60)
    assert t.returncode == 0 and "Syntax OK" in t.stdout + t.stderr, t.stdout + t.stderr


GLUE_DEBUG = {"upload": r"IMG0003[01]", "cleanup": r"IMG00050"}


@pytest.mark.parametrize("level", ["debug", "trace1"])
def test_857_loglevel_imgstore_debug_reaches_the_glue_files(pg, make_httpd, level):
    db = pg.create_db("t857")
    h = make_httpd(dbname=db, extra="LogLevel warn imgstore:%s\nImgStoreTTL 1\n" % level)
    # upload: a refused type (debug); cleanup: a forced pass that deletes (debug).
    r = h.upload(data=b"not an image at all" * 10, filename="x.txt")
    assert r.status_code == 415, r.text
    body = h.upload(image("sample.png")).json()
    time.sleep(body["expires_in"] + 1.1)
    assert h.get("/cleanup").status_code == 200
    for area, tag in GLUE_DEBUG.items():
        assert wait_until(lambda: re.search(r"\[imgstore:(debug|trace1)\].*" + tag,
                                            h.errors()), 5), (area, h.errors()[-2000:])


def test_858_loglevel_imgstore_governs_every_glue_file(pg, make_httpd):
    """Everything at debug except imgstore, at crit: a line of a glue file without the
    module's log index would follow the global level and show up."""
    db = pg.create_db("t858", migrate=False)
    db2 = pg.create_db("t858b")
    d = H.make_tmp("imgstore-key-")
    other = write_key(os.path.join(d, "other.key"))
    extra = ("LogLevel debug imgstore:crit\n"
             "<VirtualHost 127.0.0.1:${IMGSTORE_PORT}>\n    ServerName nokey.test\n"
             "    DBDParams \"%s\"\n    ImgStoreKeyFile %s\n"
             "    <Location />\n        SetHandler imgstore\n    </Location>\n"
             "</VirtualHost>\n"
             "<VirtualHost 127.0.0.1:${IMGSTORE_PORT}>\n    ServerName main.test\n"
             "</VirtualHost>\n" % (pg.dbparams_for(db2), other))
    h = make_httpd(dbname=db, extra=extra)
    main = Site(h, "main.test")
    other_site = Site(h, "nokey.test")
    # db.c: schema behind (error); upload.c: refused type (debug); handler.c: bad route;
    # image.c: a row sealed with another key (error); cleanup.c: a pass (debug).
    assert main.upload().status_code == 503
    assert main.h.upload(data=b"x" * 100, filename="x.txt", headers=main.hdr).status_code \
        in (415, 503)
    assert main.get("/cleanup").status_code == 503
    hb = other_site.round_trip()
    pg.migrate(db=db)
    subprocess.run(
        "pg_dump -a -t imgstore_images %s | psql -X -q %s" % (
            " ".join(pg.conn_args(db2)), " ".join(pg.conn_args(db))),
        shell=True, check=True, capture_output=True)
    assert wait_until(lambda: main.get("/image/" + hb).status_code not in (200, 503), 15, 0.5)
    other_site.get("/cleanup")
    errors = h.errors()
    assert re.search(r"\[[a-z_]*:debug\]", errors), "the global debug level logged nothing"
    # (httpd logs notice whatever LogLevel says: not a level the module's index governs)
    leaked = [l for l in errors.splitlines() if re.search(r"IMG\d{5}", l)
              and not re.search(r"\[imgstore:notice\]", l)]
    assert not leaked, "imgstore lines below crit despite LogLevel imgstore:crit:\n" + \
        "\n".join(leaked)


def test_859_a_main_server_without_a_database_leaves_the_timer_serving_the_vhosts(
        pg, pg2, make_httpd):
    """No DBDriver at the main server: the timer's ticks serve the two tenants' databases
    (expired rows gone with no traffic) and log no failure (IMG00052 would fail the test)."""
    dba, dbb = pg.create_db("t859a"), pg2.create_db("t859b")
    h, a, b = two_tenants(make_httpd, pg, dba, pg2, dbb,
                          defines=["IMGSTORE_NO_MAIN_DB", "IMGSTORE_NO_ROOT_MOUNT"],
                          a_server="    ImgStoreCleanupInterval 1", a_mount="ImgStoreTTL 1",
                          b_server="    ImgStoreCleanupInterval 2", b_mount="ImgStoreTTL 1")
    assert a.upload().status_code == 201 and b.upload("sample.gif").status_code == 201
    assert count(pg, dba) == 1 and count(pg2, dbb) == 1
    assert wait_until(lambda: count(pg, dba) == 0 and count(pg2, dbb) == 0, 20, 0.25), \
        (count(pg, dba), count(pg2, dbb))
    # The tenants still serve.
    assert a.upload().status_code == 201 and b.upload().status_code == 201
