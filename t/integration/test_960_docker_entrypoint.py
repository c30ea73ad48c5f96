"""960: the container entrypoint, run for real (Docker cannot run on our machines):
it makes a key, migrates a real database as the owner, gives the module a role
that can only read and write rows, and writes a site config from the environment
that a real Apache serves from. (t/package runs the Dockerfile's runtime stage.)"""
import os
import re
import signal
import stat
import subprocess
import time

import requests

from harness import ROOT, free_port, image, make_tmp, pid_alive, read, wait_port


def run_entrypoint(env, *cmd):
    return subprocess.run([os.path.join(ROOT, "docker", "entrypoint.sh")] + list(cmd), env=env,
                          capture_output=True, text=True, timeout=120)


def psql_as(pg, role, sql, db="dockerdb"):
    """psql as ROLE over TCP (the test cluster trusts logins; rights are what is tested)."""
    return subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                           "-p", str(pg.port), "-U", role, "-d", db, "-c", sql],
                          capture_output=True, text=True, timeout=60)


def fresh_db(pg):
    pg.psql("DROP DATABASE IF EXISTS dockerdb", db="postgres")
    pg.psql("DROP ROLE IF EXISTS dockerweb", db="postgres")
    pg.psql("DROP ROLE IF EXISTS dockerowner", db="postgres")
    # The owner is not a superuser: CREATEROLE is all the entrypoint needs.
    pg.psql("CREATE ROLE dockerowner LOGIN CREATEROLE PASSWORD 'compose-secret'", db="postgres")
    pg.psql("CREATE DATABASE dockerdb OWNER dockerowner", db="postgres")


def entrypoint_env(pg, work, **extra):
    confdir = os.path.join(work, "apache2")
    for d in ("conf-available", "conf-enabled", "run"):
        os.makedirs(os.path.join(confdir, d), exist_ok=True)
    env = dict(os.environ, POSTGRES_USER="dockerowner", POSTGRES_PASSWORD="compose-secret",
               POSTGRES_HOST="127.0.0.1", POSTGRES_PORT=str(pg.port), POSTGRES_DB="dockerdb",
               IMGSTORE_DB_USER="dockerweb", IMGSTORE_KEY_DIR=os.path.join(work, "keys"),
               APACHE_CONFDIR=confdir, IMGSTORE_SQL_DIR=os.path.join(ROOT, "sql"),
               IMGSTORE_MIGRATE=os.path.join(ROOT, "sql", "imgstore-migrate"),
               IMGSTORE_EXPIRY_KEY_FILE=os.path.join(work, "run", "expiry.key"))
    env.update(extra)
    return env


def test_960_entrypoint_prepares_key_schema_role_and_site_config_apache_serves(pg):
    fresh_db(pg)
    work = make_tmp("imgstore-docker-")
    os.chmod(work, 0o755)
    port = free_port()
    env = entrypoint_env(pg, work, IMGSTORE_PORT=str(port), IMGSTORE_TTL="7s",
                         IMGSTORE_MAX_SIZE="50K", IMGSTORE_ALLOW_TYPES="png gif",
                         IMGSTORE_BASE_URL="https://img.example.com/store",
                         IMGSTORE_MAX_TOTAL="1G", IMGSTORE_CLEANUP_INTERVAL="30s",
                         IMGSTORE_DBD_MAX="5")
    confdir = env["APACHE_CONFDIR"]
    keydir = env["IMGSTORE_KEY_DIR"]

    r = run_entrypoint(env, "true")
    assert r.returncode == 0, r.stdout + r.stderr
    key = os.path.join(keydir, "imgstore.key")
    st = os.stat(key)
    assert stat.S_IMODE(st.st_mode) == 0o400 and st.st_uid == 0
    first_key = open(key).read()
    assert re.fullmatch(r"[0-9a-f]{64}", first_key)
    assert pg.psql("SELECT schema_version FROM imgstore_state", db="dockerdb") == str(max(
        int(f[:3]) for f in os.listdir(os.path.join(ROOT, "sql")) if f.endswith(".sql")))
    assert pg.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'imgstore_images'",
                   db="dockerdb") == "dockerowner"

    # The site config holds the module's password: root only. It names the
    # module's role, never the owner, and every directive from the environment.
    site = os.path.join(confdir, "conf-enabled", "imgstore-site.conf")
    assert os.path.islink(site)
    st = os.stat(site)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0
    conf = open(site).read()
    assert "user=dockerweb " in conf and "dockerowner" not in conf and "compose-secret" not in conf
    for line in ("ImgStoreTTL 7s", "ImgStoreMaxSize 50K", "ImgStoreAllowTypes png gif",
                 "ImgStoreBaseURL https://img.example.com/store", "ImgStoreMaxTotal 1G",
                 "ImgStoreCleanupInterval 30s", "DBDMax 5", "Listen %d" % port,
                 "ImgStoreExpiryKeyFile " + env["IMGSTORE_EXPIRY_KEY_FILE"]):
        assert re.search("^%s$" % re.escape(line), conf, re.M), line

    # The module's role reads and writes rows, and nothing more.
    assert pg.psql("SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles "
                   "WHERE rolname = 'dockerweb'", db="postgres") == "f"
    for priv, want in (("SELECT", "t"), ("INSERT", "t"), ("UPDATE", "f"), ("DELETE", "t"),
                       ("TRUNCATE", "f"), ("REFERENCES", "f"), ("TRIGGER", "f")):
        assert pg.psql("SELECT has_table_privilege('dockerweb', 'imgstore_images', '%s')" % priv,
                       db="dockerdb") == want, priv
    assert psql_as(pg, "dockerweb", "SELECT count(*) FROM imgstore_images").stdout.strip() == "0"
    for sql in ("DROP TABLE imgstore_images", "CREATE TABLE t (i int)",
                "ALTER TABLE imgstore_state ADD COLUMN x int"):
        p = psql_as(pg, "dockerweb", sql)
        assert p.returncode != 0 and ("must be owner" in p.stderr or "permission denied" in p.stderr), \
            (sql, p.stderr)

    # A second start keeps the key and the role's password (losing the key
    # would make every image unreadable).
    pw_file = os.path.join(keydir, "db-password")
    first_pw = open(pw_file).read()
    r = run_entrypoint(env, "true")
    assert r.returncode == 0, r.stdout + r.stderr
    assert open(key).read() == first_key
    assert open(pw_file).read() == first_pw

    moddir = "/usr/lib/apache2/modules"
    conf = os.path.join(work, "httpd.conf")
    with open(conf, "w") as f:
        f.write("""
LoadModule mpm_event_module {m}/mod_mpm_event.so
LoadModule authz_core_module {m}/mod_authz_core.so
LoadModule dbd_module {m}/mod_dbd.so
LoadModule imgstore_module {so}
ServerName 127.0.0.1
User www-data
Group www-data
PidFile {w}/httpd.pid
DefaultRuntimeDir {w}/apache2/run
ErrorLog {w}/error.log
Include {site}
""".format(m=moddir, so=os.path.join(ROOT, ".libs", "mod_imgstore.so"), w=work, site=site))
    p = subprocess.run(["/usr/sbin/apache2", "-f", conf], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr + open(os.path.join(work, "error.log")).read()
    pid = None
    try:
        assert wait_port(port)
        deadline = time.time() + 10
        while not os.path.exists(os.path.join(work, "httpd.pid")) and time.time() < deadline:
            time.sleep(0.05)
        pid = int(open(os.path.join(work, "httpd.pid")).read())
        base = "http://127.0.0.1:%d" % port
        up = requests.post(base + "/upload",
                           files={"file": ("a.png", read("sample.png"), "image/png")}, timeout=30)
        assert up.status_code == 201, up.text
        assert up.json()["expires_in"] == 7
        assert up.json()["url"] == "https://img.example.com/store/image/" + up.json()["hash"]
        got = requests.get(base + "/image/%s" % up.json()["hash"], timeout=30)
        assert got.status_code == 200 and got.content == read("sample.png")
        # IMGSTORE_MAX_SIZE and IMGSTORE_ALLOW_TYPES reach the module.
        big = requests.post(base + "/upload", timeout=30,
                            files={"file": ("b.png", read("sample-100k.png"), "image/png")})
        assert big.status_code == 413, big.text
        jpeg = requests.post(base + "/upload", timeout=30,
                             files={"file": ("c.jpg", read("sample.jpg"), "image/jpeg")})
        assert jpeg.status_code == 415, jpeg.text
        assert pg.psql("SELECT count(*) FROM imgstore_images", db="dockerdb") == "1"
        # The expiry-key file the entrypoint pointed Apache at: created, root only, and used.
        exp = os.stat(env["IMGSTORE_EXPIRY_KEY_FILE"])
        assert stat.S_IMODE(exp.st_mode) == 0o600 and exp.st_uid == 0 and exp.st_size == 120
        assert pg.psql("SELECT expiry_period IS NOT NULL FROM imgstore_images",
                       db="dockerdb") == "t"
    finally:
        if pid is None and os.path.exists(os.path.join(work, "httpd.pid")):
            pid = int(open(os.path.join(work, "httpd.pid")).read())
        if pid:
            os.kill(pid, signal.SIGTERM)
            deadline = time.time() + 20
            while pid_alive(pid) and time.time() < deadline:
                time.sleep(0.05)


def test_960_entrypoint_refuses_bad_environment(pg):
    fresh_db(pg)
    work = make_tmp("imgstore-docker-")
    env = entrypoint_env(pg, work, IMGSTORE_PORT=str(free_port()))
    site = os.path.join(env["APACHE_CONFDIR"], "conf-available", "imgstore-site.conf")
    bad_envs = [
        {"POSTGRES_PASSWORD": None},
        {"POSTGRES_USER": None},
        # A line break would add directives of the caller's choosing.
        {"IMGSTORE_TTL": "5m\nLoadModule evil_module /tmp/evil.so"},
        {"IMGSTORE_BASE_URL": "https://x.example/ a"},
        {"IMGSTORE_DB_PASSWORD": "a'b"},
        {"IMGSTORE_ALLOW_TYPES": "png\n<Location />"},
        # The module must not log in as the owner.
        {"IMGSTORE_DB_USER": "dockerowner"},
    ]
    for change in bad_envs:
        e = dict(env)
        for k, v in change.items():
            if v is None:
                del e[k]
            else:
                e[k] = v
        r = run_entrypoint(e, "true")
        assert r.returncode != 0, change
        assert r.stderr.strip(), change
        assert not os.path.exists(site), change
