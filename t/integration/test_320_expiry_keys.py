"""32x: expiry keys (README "Security model"): an image sealed under the secret of the
period its expiry falls in cannot be opened once that period plus the grace is over, by
the server or by anyone holding a database dump, the master key, the state file and the
URL. Short periods (a few seconds); each test has a database of its own.

The grace is IMGSTORE_EXPIRY_SKEW_SECONDS (2) + ImgStoreCleanupInterval; the parent
advances the state file from httpd's monitor hook (about every ten seconds)."""
import calendar
import importlib.machinery
import importlib.util
import os
import re
import shutil
import struct
import subprocess
import time

from harness import BUILD, ROOT, image, procs, read

DECRYPT = os.path.join(ROOT, "t", "tools", "imgstore-decrypt")
SKEW = 2
SHORT = "ImgStoreExpiryKeyPeriod 2s\nImgStoreTTL 2\nImgStoreCleanupInterval 1\n"
GRACE = SKEW + 1
PERIOD = 2


def _decryptor():
    """The independent decryptor's own code (not the module's) for the chain."""
    loader = importlib.machinery.SourceFileLoader("imgstore_decrypt", DECRYPT)
    spec = importlib.util.spec_from_loader("imgstore_decrypt", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


dec = _decryptor()


def state(path):
    """(period, e, secret, lineage) of a state file, read as documented (120 bytes)."""
    raw = open(path, "rb").read()
    assert len(raw) == 120 and raw[:8] == b"IMGSXKEY"
    period, e = struct.unpack(">IQ", raw[12:24])
    return period, e, raw[24:56], raw[56:88]


def secret_at(snapshot, e):
    """S_e from an earlier copy of the state file, ratcheted forward by the decryptor."""
    _, e0, s, _ = state(snapshot)
    assert e >= e0
    for _ in range(e - e0):
        s = dec.ratchet(s)
    return s


def expires_epoch(body):
    return calendar.timegm(time.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%SZ"))


def processes(h):
    return [h.pid] + h.children()


def memory_holds(pid, needle):
    """Whether any readable mapping of pid holds needle (read through /proc/PID/mem, in
    pieces that overlap by len(needle) - 1). Mappings over 4 GiB are skipped: under ASan
    those are its shadow memory (terabytes reserved), which holds no program data."""
    step, keep = 8 << 20, len(needle) - 1
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            lo, hi, perms = int(m.group(1), 16), int(m.group(2), 16), m.group(3)
            if perms[0] != "r" or "[vvar]" in line or "[vsyscall]" in line or hi - lo > 4 << 30:
                continue
            tail = b""
            for at in range(lo, hi, step):
                try:
                    mem.seek(at)
                    chunk = mem.read(min(step, hi - at))
                except (OSError, ValueError, OverflowError):
                    break
                if needle in tail + chunk:
                    return True
                tail = chunk[-keep:]
    return False


def run_decrypt(h, snapshot_state, token, dump, out):
    if os.path.exists(out):
        os.unlink(out)
    return subprocess.run(["python3", DECRYPT, "--key-file", h.keyfile, "--state-file",
                           snapshot_state, "--token=" + token, "--dump", dump, "-o", out],
                          capture_output=True, text=True)


def test_321_expired_means_unrecoverable_by_server_dump_and_memory(pg, make_httpd, tmp_path):
    db = pg.create_db("xk")
    h = make_httpd(dbname=db, extra=SHORT)
    start_copy = str(tmp_path / "state-at-start")
    shutil.copyfile(h.expiry_file, start_copy)
    r = h.upload(image("sample.png"))
    assert r.status_code == 201, r.text
    body = r.json()
    g = h.get("/image/" + body["hash"])
    assert g.status_code == 200 and g.content == read("sample.png")
    # Sealed in format v2 under the period of its expiry.
    (e_row,), = [(int(v),) for (v,) in pg.query("SELECT expiry_period FROM imgstore_images",
                                                  db=db)]
    assert e_row == expires_epoch(body) // PERIOD

    # The independent decryptor, BEFORE expiry: real pg_dump + key file + state file + token.
    dump = str(tmp_path / "before.sql")
    open(dump, "wb").write(pg.dump(db))
    state_before = str(tmp_path / "state-before")
    shutil.copyfile(h.expiry_file, state_before)
    out = str(tmp_path / "recovered.png")
    d = run_decrypt(h, state_before, body["hash"], dump, out)
    assert d.returncode == 0, d.stderr
    assert open(out, "rb").read() == read("sample.png")
    print("decryptor before expiry: exit 0, %d bytes recovered" % os.path.getsize(out))

    # Past expiry + the period + the grace, and until the parent has advanced the file.
    end = (e_row + 1) * PERIOD + GRACE
    assert procs.wait_until(lambda: state(h.expiry_file)[1] > e_row and time.time() > end + 1,
                            timeout=60), "the state file did not advance: %r" % (
                                state(h.expiry_file)[:2],)
    assert h.get("/image/" + body["hash"]).status_code == 404

    # AFTER: the same dump (taken before expiry), the state file as it is now: nothing.
    state_after = str(tmp_path / "state-after")
    shutil.copyfile(h.expiry_file, state_after)
    d = run_decrypt(h, state_after, body["hash"], dump, out)
    assert d.returncode == 3, (d.returncode, d.stderr)
    assert not os.path.exists(out)
    print("decryptor after period + grace: exit %d, %s" % (d.returncode, d.stderr.strip()))

    # No process of the server holds the erased secret; the scan does find a live one.
    gone = secret_at(start_copy, e_row)
    assert dec.hmac256 and len(gone) == 32
    live = state(state_after)[2]
    time.sleep(1.5)  # one tick of the children's timer after the boundary
    pids = processes(h)
    assert len(pids) >= 2
    holders = [pid for pid in pids if memory_holds(pid, gone)]
    assert holders == [], "processes still holding an erased secret: %r" % holders
    assert memory_holds(h.pid, live), "the scan cannot see the parent's current secret"


def test_322_restart_after_a_long_stop_fast_forwards_and_graceful_never_resets(
        pg, make_httpd):
    db = pg.create_db("xk")
    h = make_httpd(dbname=db, extra="ImgStoreExpiryKeyPeriod 1s\nImgStoreCleanupInterval 1\n")
    period, e0, s0, lineage = state(h.expiry_file)
    assert period == 1
    h.graceful()
    time.sleep(2)
    _, e1, _, lineage1 = state(h.expiry_file)
    assert lineage1 == lineage and e1 >= e0
    h.stop()
    time.sleep(4)
    h.start()
    _, e2, s2, lineage2 = state(h.expiry_file)
    assert lineage2 == lineage
    # Advanced to the period of (now - grace) at startup, along the same chain.
    assert e2 >= int(time.time()) - (SKEW + 1) - 2 and e2 > e1
    s = s0
    for _ in range(e2 - e0):
        s = dec.ratchet(s)
    assert s == s2
    r = h.upload(image("sample.png"))
    assert r.status_code == 201
    assert h.get("/image/" + r.json()["hash"]).status_code == 200


def test_323_hosts_sharing_a_database_and_a_copied_file_serve_each_others_images(
        pg, make_httpd):
    db = pg.create_db("xk")
    a = make_httpd(dbname=db)
    b = make_httpd(dbname=db, keyfile=a.keyfile, expiry_file=a.expiry_file)
    assert state(a.expiry_file)[3] == state(b.expiry_file)[3]
    ra = a.upload(image("sample.png"))
    rb = b.upload(image("sample.jpg"))
    assert ra.status_code == 201 and rb.status_code == 201
    assert b.get("/image/" + ra.json()["hash"]).content == read("sample.png")
    assert a.get("/image/" + rb.json()["hash"]).content == read("sample.jpg")


def test_323a_the_first_uploads_at_once_all_record_the_same_chain(pg, make_httpd):
    """On a fresh database the first contact of every thread records the chain: the losers of
    that race must read the winner's row, never answer 500 (seen once: eight concurrent first
    uploads, one 500 "imgstore_expiry_chain holds an unexpected row")."""
    import concurrent.futures
    for n in range(3):
        db = pg.create_db("xkrace%d" % n)
        h = make_httpd(dbname=db)
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            codes = list(ex.map(lambda _: h.upload(image("sample.png")).status_code, range(16)))
        assert codes == [201] * 16, codes


def test_324_a_file_of_another_chain_is_refused_with_what_to_do(pg, make_httpd):
    db = pg.create_db("xk")
    a = make_httpd(dbname=db)
    assert a.upload(image("sample.png")).status_code == 201
    b = make_httpd(dbname=db, expiry_file="fresh")
    b.allow(r"IMG00258: ImgStoreExpiryKeyFile \S+ belongs to another chain .* copy the file "
            r"of a host already using this database over it")
    r = b.upload(image("sample.png"))
    assert r.status_code == 503
    assert "another chain" in r.json()["error"]
    assert r.headers.get("Retry-After")


def test_325_rows_sealed_before_expiry_keys_still_open(pg, make_httpd, tmp_path):
    db = pg.create_db("xk")
    h = make_httpd(dbname=db)
    tool = os.path.join(BUILD, "t", "unit", "expkey-tool")
    tokfile = str(tmp_path / "token")
    copy = subprocess.run([tool, "seal1", h.keyfile, "1", str(int(time.time())), "300",
                           "image/png", image("sample.png"), tokfile],
                          capture_output=True, check=True).stdout
    sql = str(tmp_path / "v1.sql")
    open(sql, "wb").write(copy)
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"] + pg.conn_args(db)
                   + ["-f", sql], check=True, capture_output=True)
    assert pg.query("SELECT expiry_period IS NULL FROM imgstore_images", db=db) == [["t"]]
    g = h.get("/image/" + open(tokfile).read().strip())
    assert g.status_code == 200 and g.content == read("sample.png")


def test_326_a_bad_state_file_stops_the_start_and_fails_configtest(pg, make_httpd):
    db = pg.create_db("xk")
    h = make_httpd(dbname=db, start=False)
    with open(h.expiry_file, "wb") as f:
        f.write(b"not a state file")
    os.chmod(h.expiry_file, 0o600)
    t = subprocess.run(h.command() + ["-t"], env=h.env(), capture_output=True, text=True)
    assert t.returncode != 0
    assert "ImgStoreExpiryKeyFile " + h.expiry_file in t.stdout + t.stderr
    rc, text = h.start_refused()
    assert rc != 0 or "IMG00250" in text
    assert re.search(r"IMG00250: ImgStoreExpiryKeyFile %s" % re.escape(h.expiry_file), text)
    h.tolerate(r"IMG00250")
    # Mode 0644: refused too, naming the problem.
    good = make_httpd(dbname=pg.create_db("xk"))
    os.chmod(good.expiry_file, 0o644)
    t = subprocess.run(good.command() + ["-t"], env=good.env(), capture_output=True, text=True)
    assert t.returncode != 0 and good.expiry_file in t.stdout + t.stderr, t.stdout + t.stderr
    assert "mode" in t.stderr, t.stderr
    os.chmod(good.expiry_file, 0o600)
