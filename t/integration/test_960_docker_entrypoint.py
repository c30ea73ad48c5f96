"""960: the container entrypoint, run for real (Docker cannot run on our machines):
it makes a key, migrates a real database, and writes a site config that a
real Apache serves from."""
import os
import signal
import stat
import subprocess
import time

import requests

from harness import ROOT, free_port, image, make_tmp, pid_alive, read, wait_port


def run_entrypoint(env, *cmd):
    return subprocess.run([os.path.join(ROOT, "docker", "entrypoint.sh")] + list(cmd), env=env,
                          capture_output=True, text=True, timeout=120)


def test_960_entrypoint_prepares_key_schema_and_site_config_apache_serves(pg):
    pg.psql("DROP DATABASE IF EXISTS dockerdb", db="postgres")
    pg.psql("DROP ROLE IF EXISTS dockeruser", db="postgres")
    pg.psql("CREATE ROLE dockeruser LOGIN PASSWORD 'compose-secret'", db="postgres")
    pg.psql("CREATE DATABASE dockerdb OWNER dockeruser", db="postgres")
    work = make_tmp("imgstore-docker-")
    os.chmod(work, 0o755)
    confdir = os.path.join(work, "apache2")
    for d in ("conf-available", "conf-enabled", "run"):
        os.makedirs(os.path.join(confdir, d))
    keydir = os.path.join(work, "keys")
    port = free_port()
    env = dict(os.environ, POSTGRES_USER="dockeruser", POSTGRES_PASSWORD="compose-secret",
               POSTGRES_HOST="127.0.0.1", POSTGRES_PORT=str(pg.port), POSTGRES_DB="dockerdb",
               IMGSTORE_KEY_DIR=keydir, APACHE_CONFDIR=confdir,
               IMGSTORE_SQL_DIR=os.path.join(ROOT, "sql"),
               IMGSTORE_MIGRATE=os.path.join(ROOT, "sql", "imgstore-migrate"),
               IMGSTORE_PORT=str(port), IMGSTORE_TTL="7s")

    r = run_entrypoint(env, "true")
    assert r.returncode == 0, r.stdout + r.stderr
    key = os.path.join(keydir, "imgstore.key")
    st = os.stat(key)
    assert stat.S_IMODE(st.st_mode) == 0o400 and st.st_uid == 0
    first_key = open(key).read()
    assert len(first_key.strip()) == 64
    assert pg.psql("SELECT schema_version FROM imgstore_state", db="dockerdb") == "1"
    site = os.path.join(confdir, "conf-enabled", "imgstore-site.conf")
    assert os.path.islink(site)

    # A second start keeps the key (losing it would make every image unreadable).
    r = run_entrypoint(env, "true")
    assert r.returncode == 0, r.stdout + r.stderr
    assert open(key).read() == first_key

    # Missing credentials: refuses to start.
    bad = dict(env)
    del bad["POSTGRES_PASSWORD"]
    assert run_entrypoint(bad, "true").returncode != 0

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
        up = requests.post("http://127.0.0.1:%d/upload" % port,
                           files={"file": ("a.png", read("sample.png"), "image/png")}, timeout=30)
        assert up.status_code == 201, up.text
        assert up.json()["expires_in"] == 7
        got = requests.get("http://127.0.0.1:%d/image/%s" % (port, up.json()["hash"]), timeout=30)
        assert got.status_code == 200 and got.content == read("sample.png")
        assert pg.psql("SELECT count(*) FROM imgstore_images", db="dockerdb") == "1"
    finally:
        if pid is None and os.path.exists(os.path.join(work, "httpd.pid")):
            pid = int(open(os.path.join(work, "httpd.pid")).read())
        if pid:
            os.kill(pid, signal.SIGTERM)
            deadline = time.time() + 20
            while pid_alive(pid) and time.time() < deadline:
                time.sleep(0.05)
