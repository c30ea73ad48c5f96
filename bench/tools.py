"""The tools the bench drives and measures with: PostgreSQL (psql, pgbench), image
making, wrk, openssl speed, and the module over HTTP."""
import concurrent.futures
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import requests

from settings import (CONVERT, PGBENCH, PGBENCH_DIR, PSQL, SEED, SIZES, VARIANTS, WRK_DIR,
                      _children, run_child)

# ---------------------------------------------------------------------------------
# PostgreSQL helpers
# ---------------------------------------------------------------------------------

class DB:
    """SQL as the superuser over loopback TCP (trust auth in the harness's cluster)."""

    def __init__(self, pg):
        self.pg = pg

    def conn_args(self):
        return ["-h", "127.0.0.1", "-p", str(self.pg.port), "-U", "postgres", "-d", "imgstore"]

    def sql(self, text, timeout=600):
        """Run SQL (read from stdin, so it may be long); returns tuples-only output."""
        p = subprocess.run([PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"] + self.conn_args(),
                           input=text, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError("psql failed: %s\n%s" % (p.stderr.strip(), text[:500]))
        return p.stdout.strip()

    def count(self):
        return int(self.sql("SELECT count(*) FROM imgstore_images"))


def pg_tune_for_bench(pg, db):
    """The harness's cluster has max_connections 100: pgbench at 64 clients plus the
    module's idle pools (up to 4 children x DBDMax 10) would not fit. Costs a restart,
    so only done when a profile runs more than 16 clients."""
    db.sql("ALTER SYSTEM SET max_connections = 200")
    pg.restart()


def pg_setup_bench_objects(db, images):
    """Tables used by the pgbench ceilings: a sequence for inserted ids, and random
    payloads of the module's exact ciphertext length per size (image + 16-byte tag)."""
    db.sql("""
        CREATE SEQUENCE IF NOT EXISTS bench_seq START 1000000000000000;
        CREATE TABLE IF NOT EXISTS bench_payload (size_class int, k int, data bytea,
                                                  PRIMARY KEY (size_class, k));
        ALTER TABLE bench_payload ALTER COLUMN data SET STORAGE EXTERNAL;
    """)
    rng = random.Random(SEED)
    for cls, label in enumerate(SIZES):
        if label not in images:
            continue
        rows = []
        for k, path in enumerate(images[label], start=1):
            n = os.path.getsize(path) + 16
            rows.append("(%d, %d, '\\x%s'::bytea)" % (cls, k, rng.randbytes(n).hex()))
        db.sql("INSERT INTO bench_payload VALUES %s;" % ",".join(rows))


def size_class(label):
    return list(SIZES).index(label)


def pg_postmaster_pid(pg):
    with open(os.path.join(pg.data, "postmaster.pid")) as f:
        return int(f.readline())


# ---------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------

def make_image(path, target, seed):
    """A noise JPEG near `target` bytes (the recipe of t/data/sample-100k.jpg):
    one try at a guessed area, then one corrected try."""
    def render(pixels):
        w = max(8, int((pixels * 4 / 3) ** 0.5))
        h = max(8, int(pixels / w))
        subprocess.run([CONVERT, "-size", "%dx%d" % (w, h), "-seed", str(seed), "xc:",
                        "+noise", "Random", "-strip", "-quality", "92", path],
                       check=True, capture_output=True, timeout=60)
        return os.path.getsize(path)

    guess = target / 1.8  # bytes per pixel of noise at quality 92, roughly
    got = render(guess)
    if abs(got - target) > target * 0.05:
        render(guess * target / got)
    return path


def make_images(tmp, labels):
    """VARIANTS distinct images per size, fixed seeds: same bytes on every run."""
    out = {}
    for label in labels:
        target = SIZES[label][0]
        out[label] = [make_image(os.path.join(tmp, "%s-%d.jpg" % (label, k)), target, 1000 + k)
                      for k in range(VARIANTS)]
    return out


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


# ---------------------------------------------------------------------------------
# Load generators
# ---------------------------------------------------------------------------------

def wrk(url, script, args, conns, duration, stop_when=None):
    """One wrk run; returns the parsed BENCH line (req/s, latencies in ms, errors).
    stop_when: an Event; when given, wrk is interrupted (SIGINT: it then reports what
    it measured so far) as soon as the event is set, duration being only the bound."""
    threads = min(conns, 2)  # two cores: more client threads only add context switches
    cmd = ["wrk", "-t", str(threads), "-c", str(conns), "-d", "%ds" % duration,
           "--timeout", "30s", "-s", os.path.join(WRK_DIR, script), url, "--"] + args
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _children.append(p)
    try:
        if stop_when is not None:
            while p.poll() is None and not stop_when.wait(0.05):
                pass
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=duration + 60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        _children.remove(p)
    m = re.search(r"^BENCH (\{.*\})$", out, re.M)
    if p.returncode != 0 or not m:
        raise RuntimeError("wrk failed (%s):\n%s\n%s" % (p.returncode, out, err))
    r = json.loads(m.group(1))
    secs = r["duration_us"] / 1e6
    errors = {k: r[k] for k in ("non2xx", "err_connect", "err_read", "err_write", "err_timeout")
              if r[k]}
    return {"rps": r["requests"] / secs if secs else 0.0, "requests": r["requests"],
            "seconds": round(secs, 2), "mb_per_s": r["bytes"] / secs / 1e6 if secs else 0.0,
            "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000,
            "max_ms": r["max_us"] / 1000, "errors": sum(errors.values()),
            "error_kinds": errors}


def pgbench(db, script, conns, duration, variables, tmp):
    """One pgbench run with the extended protocol (PQexecParams-like unnamed statements,
    as the module uses). pgbench opens fresh connections, one after the other, and its
    -T clock includes that (seconds at 64 clients on a busy 2-core machine): only the
    transactions completed once every client had completed one count, for req/s and
    latencies alike, and at most the last `duration` seconds of them. When that steady
    window is shorter than half of `duration`, pgbench runs again with more slack."""
    settle = 1 if conns <= 16 else 3
    for _ in range(3):
        done = pgbench_log(db, script, conns, duration + settle, variables, tmp)
        if done:
            started = max(min(t for t, _ in per_client) for per_client in done.values())
            end = max(t for per_client in done.values() for t, _ in per_client)
            start = max(started, end - duration)
            if end - start >= duration / 2:
                break
        settle *= 2
    else:
        raise RuntimeError("pgbench at %d clients never reached a steady state" % conns)
    lat = sorted(us for per_client in done.values() for t, us in per_client if t >= start)
    secs = end - start
    return {"rps": len(lat) / secs, "requests": len(lat), "seconds": round(secs, 2),
            "p50_ms": percentile(lat, 50) / 1000, "p99_ms": percentile(lat, 99) / 1000,
            "max_ms": lat[-1] / 1000, "errors": 0, "error_kinds": {},
            "settle_seconds": settle}


def pgbench_log(db, script, conns, seconds, variables, tmp):
    """Run pgbench; returns {client: [(completion time s, latency us)]} from its log,
    or None when some client completed no transaction at all. A failed transaction
    fails the run (pgbench then exits non-zero)."""
    logdir = tempfile.mkdtemp(prefix="pgbench-", dir=tmp)
    cmd = [PGBENCH, "-n", "-M", "extended", "-c", str(conns), "-j", str(min(conns, 2)),
           "-T", str(seconds), "-f", os.path.join(PGBENCH_DIR, script), "-l",
           "--log-prefix", os.path.join(logdir, "log")]
    for k, v in variables.items():
        cmd += ["-D", "%s=%s" % (k, v)]
    rc, out, err = run_child(cmd + db.conn_args(), timeout=seconds + 120)
    if rc != 0 or "number of transactions actually processed" not in out:
        raise RuntimeError("pgbench failed (%d):\n%s\n%s" % (rc, out, err[-2000:]))
    done = {}
    for name in os.listdir(logdir):
        with open(os.path.join(logdir, name)) as f:
            for line in f:
                v = line.split()  # client_id transaction_no time script_no epoch us
                if len(v) >= 6:
                    done.setdefault(v[0], []).append((int(v[4]) + int(v[5]) / 1e6, int(v[2])))
    shutil.rmtree(logdir)
    return done if len(done) == conns else None


def percentile(sorted_values, p):
    if not sorted_values:
        return 0
    i = min(len(sorted_values) - 1, max(0, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[i]


def openssl_speed(args):
    """AES-256-GCM bytes/s per block size (openssl speed's last table line)."""
    rc, out, err = run_child(["openssl", "speed", "-evp", "aes-256-gcm"] + args, timeout=120)
    if rc != 0:
        raise RuntimeError("openssl speed failed:\n" + err)
    head = re.search(r"^type\s+(.*)$", out, re.M).group(1)
    sizes = [int(x) for x in re.findall(r"(\d+) bytes", head)]
    line = [ln for ln in out.splitlines() if ln.lower().startswith("aes-256-gcm")][-1]
    vals = [float(x[:-1]) * 1000 for x in line.split()[1:]]  # "123456.78k" -> bytes/s
    return dict(zip(sizes, vals))


# ---------------------------------------------------------------------------------
# The module, over HTTP
# ---------------------------------------------------------------------------------

def upload_many(h, paths, count, workers=4):
    """Upload `count` images round-robin over paths; returns [(hash, path)]."""
    def one(i):
        path = paths[i % len(paths)]
        with open(path, "rb") as f:
            r = session().post(h.url("/upload"), files={"file": ("x.jpg", f, "image/jpeg")},
                               timeout=30)
        if r.status_code != 201:
            raise RuntimeError("upload failed: %d %s" % (r.status_code, r.text[:200]))
        return r.json()["hash"], path

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(count)))


_local = threading.local()


def session():
    if not hasattr(_local, "s"):
        _local.s = requests.Session()
    return _local.s


def verify_sample(h, stored, prefix, n=20):
    """Fetch a sample of the stored images and compare them byte for byte."""
    rng = random.Random(SEED)
    sample = rng.sample(stored, min(n, len(stored)))
    bad = 0
    for hash_, path in sample:
        r = session().get(h.url(prefix + hash_), timeout=30)
        if r.status_code != 200 or r.content != read_bytes(path):
            bad += 1
    return {"checked": len(sample), "mismatches": bad}


def cleanup_until_done(h, deadline_s):
    """GET /cleanup until a pass deletes nothing; returns (rows deleted, seconds until the
    last pass that deleted rows ended, passes). A call within 2 s of the last forced pass
    runs none ("forced": false): it is repeated, not taken for "nothing left"."""
    total, calls, t = 0, 0, time.monotonic()
    last = t
    while time.monotonic() - t < deadline_s:
        r = session().get(h.url("/cleanup"), timeout=60)
        if r.status_code != 200:
            raise RuntimeError("cleanup failed: %d %s" % (r.status_code, r.text[:200]))
        body = r.json()
        if body.get("forced") is False:
            time.sleep(0.2)
            continue
        calls += 1
        n = body["deleted"]
        total += n
        if n == 0:
            break
        last = time.monotonic()
    return total, last - t, calls




def cache_counters(h):
    """(CacheHits, CacheMisses) of an Apache's server-status (0, 0 without the module's)."""
    try:
        text = session().get(h.url("/server-status?auto"), timeout=10).text
    except Exception:
        return (0, 0)
    got = dict(re.findall(r"^ImgStore(CacheHits|CacheMisses): (\d+)$", text, re.M))
    return (int(got.get("CacheHits", 0)), int(got.get("CacheMisses", 0)))
