#!/usr/bin/python3
"""mod_imgstore benchmark: figures, never pass/fail (see DESIGN.md, "Performance").

Run through bench/run (which installs the tools) as root:  bench/run [--quick|--full]

One invocation starts a private PostgreSQL cluster and Apache with the module
(the integration harness's Postgres and Httpd classes, t/integration/conftest.py),
then measures on the same machine, in the same run:
  - the module: upload (POST /upload) and retrieval (GET /image/<hash>) with wrk,
    req/s and latency p50/p99, per image size and connection count;
  - the ceilings: the same Apache serving the same bytes as static files, pgbench
    running the module's INSERT and SELECT on the same table, openssl speed for
    AES-256-GCM;
  - peak RSS/PSS of the Apache children and PostgreSQL backends during module runs;
  - cost growth: retrieval latency with 1k/100k/1M stored rows, and one cleanup
    pass over expired rows with and without concurrent retrieval.
It prints an aligned table with every figure and its ratio to its ceiling, the
CEO's targets as met/missed, and writes bench/results/<timestamp>.json.
Every process it starts is stopped at exit; it talks to 127.0.0.1 only.
"""
import argparse
import atexit
import concurrent.futures
import hashlib
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "t", "integration"))
import conftest  # noqa: E402  (Postgres, Httpd, row_id: the integration harness)

PGBENCH = os.path.join(conftest.PGBIN, "pgbench")
PSQL = os.path.join(conftest.PGBIN, "psql")
# /usr/local/bin/convert may be a stand-in that only renders PNGs: use ImageMagick's.
CONVERT = "/usr/bin/convert"
WRK_DIR = os.path.join(HERE, "wrk")
PGBENCH_DIR = os.path.join(HERE, "pgbench")
RESULTS_DIR = os.path.join(HERE, "results")

MAX_SIZE = 10 * 1024 * 1024          # ImgStoreMaxSize: the module's default, not overridden here
BENCH_KEY_ID = 32000                 # key_id of rows written by pgbench / SQL fills, never decrypted
FAR_FUTURE = 4102444800              # 2100-01-01: filler rows never expire during a run
SEED = 20240601                      # images and payloads are the same bytes on every run
SAMPLE_INTERVAL = 0.1                # memory/CPU sampling period (s)
RESCAN_EVERY = 10                    # samples between scans of /proc for new processes
PSS_BACKENDS_PER_TICK = 4            # PostgreSQL backends whose PSS is read per sample
RUN_DEADLINE = 15 * 60               # hard bound on the whole run (s), whatever the profile

# Image sizes: label -> target bytes, and how many distinct stored images GETs spread over.
SIZES = {"10k": (10_000, 400), "100k": (100_000, 200), "1m": (1_000_000, 60)}
VARIANTS = 8  # distinct images per size (fixed seeds), uploaded round-robin

PROFILES = {
    # Under a minute: one size, one concurrency, short runs, the 1k-row table only.
    "quick": dict(sizes=["100k"], conns=[16], duration=3, warmup=1, growth=[1000],
                  cleanup_rows=10_000, openssl=["-seconds", "1", "-bytes", "16384"]),
    # Under ten minutes: every size and concurrency, 1k/100k/1M rows, 100k expired rows.
    "full": dict(sizes=["10k", "100k", "1m"], conns=[1, 16, 64], duration=5, warmup=1,
                 growth=[1000, 100_000, 1_000_000], cleanup_rows=100_000,
                 openssl=["-seconds", "3"]),
}

# The module is mounted at "/" by conf/dev-httpd.conf; these lines are added at the end.
EXTRA_CONF = """\
# Images must outlive the whole run (default TTL 5 min < a full run).
ImgStoreTTL 2h
# Only the bench's explicit GET /cleanup deletes rows: no timer- or request-triggered
# pass may land inside a measurement (the default interval is 60 s).
ImgStoreCleanupInterval 24h
# Static ceilings: the same Apache serves the same bytes from DocumentRoot/static,
# once with httpd's defaults (EnableMMAP on, EnableSendfile off: what dev-httpd.conf
# and Debian's apache2.conf give), once zero-copy (static-sendfile is a symlink to
# static). On VMs where munmap's TLB shootdowns are dear the two differ a lot.
<Location /static>
    SetHandler none
</Location>
<Location /static-sendfile>
    SetHandler none
    EnableMMAP off
    EnableSendfile on
</Location>
"""

T0 = time.monotonic()


def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - T0, msg), file=sys.stderr, flush=True)


def time_left():
    return RUN_DEADLINE - (time.monotonic() - T0)


def check_deadline():
    if time_left() <= 0:
        raise SystemExit("bench: the run exceeded its %d s bound, giving up" % RUN_DEADLINE)


# ---------------------------------------------------------------------------------
# Processes: everything started here is stopped at exit (conftest also registers
# its own atexit stop; ours runs first and also removes the temporary directories).
# ---------------------------------------------------------------------------------

_children = []      # Popen objects of wrk/pgbench still running
_cleanups = []      # callables run at exit, last registered first


def _at_exit():
    for p in list(_children):
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
    for fn in reversed(_cleanups):
        try:
            fn()
        except Exception as e:  # keep stopping the rest
            print("bench: cleanup failed: %s" % e, file=sys.stderr)


atexit.register(_at_exit)
# SIGTERM/SIGHUP would otherwise end Python without running atexit.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))


def run_child(cmd, timeout, **kw):
    """Popen tracked for the atexit kill; returns (returncode, stdout, stderr)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    _children.append(p)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise RuntimeError("%s timed out after %ss" % (cmd[0], timeout))
    finally:
        _children.remove(p)
    return p.returncode, out, err


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
# Sampling: CPU time per process group (all runs), RSS/PSS (module runs)
# ---------------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_stat(pid):
    """(ppid, utime+stime ticks) of a process, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def statm_rss(pid):
    """RSS in bytes from /proc/<pid>/statm (kernel counters: cheap), or None."""
    try:
        with open("/proc/%d/statm" % pid) as f:
            return int(f.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


def smaps_rollup(pid):
    """(RSS, PSS) in bytes, or None if the process is gone."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            text = f.read()
    except OSError:
        return None
    rss = re.search(r"^Rss:\s+(\d+) kB", text, re.M)
    pss = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
    if not rss or not pss:
        return None
    return int(rss.group(1)) * 1024, int(pss.group(1)) * 1024


def machine_busy_ticks():
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def all_procs():
    """{pid: (ppid, ticks)} for every process."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st:
                out[int(name)] = st
    return out


class Sampler(threading.Thread):
    """Every SAMPLE_INTERVAL: CPU ticks of the httpd tree and the postgres tree and,
    when memory=True, the memory of each Apache child and PostgreSQL client backend.
    Client (wrk/pgbench) CPU is measured exactly with RUSAGE_CHILDREN.

    Memory: RSS from statm (cheap) of every such process at every sample; PSS from
    smaps_rollup, which walks the page tables (milliseconds for a backend mapping
    shared_buffers; forty of them would take longer than a sample period), of every
    Apache child at every sample and of PSS_BACKENDS_PER_TICK backends in turn."""

    def __init__(self, httpd_pid, postmaster_pid, memory):
        super().__init__(daemon=True)
        self.roots = {"httpd": httpd_pid, "postgres": postmaster_pid}
        self.memory = memory
        self.stop_event = threading.Event()
        self.first = {}   # pid -> ticks when first seen (0 when born during the run)
        self.last = {}    # pid -> ticks at last sight
        self.group = {}   # pid -> group name
        self.peak = {"httpd_child": {}, "pg_backend": {}}  # kind -> pid -> [rss, pss]
        self.kids = set()  # direct children of either root (memory is sampled for those)
        self.kind = {}     # pid -> "httpd_child" / "pg_backend" / None
        self.turn = 0      # rotation over backends for PSS
        self.samples = 0
        self._sample(initial=True)
        self.busy0 = machine_busy_ticks()
        self.ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.self0 = resource.getrusage(resource.RUSAGE_SELF)
        self.t0 = time.monotonic()

    def _sample(self, initial=False, rescan=False):
        # Scanning all of /proc costs more than the sampled processes themselves: look for
        # new processes only now and then (a process born between scans still counts all
        # its CPU, from 0, once seen).
        if initial or rescan or self.samples % RESCAN_EVERY == 0:
            for pid, (ppid, ticks) in all_procs().items():
                for group, root in self.roots.items():
                    if pid == root or ppid == root:
                        self.group[pid] = group
                        self.first.setdefault(pid, ticks if initial else 0)
                        if ppid == root:
                            self.kids.add(pid)
        for pid in self.group:
            st = proc_stat(pid)
            if st is not None:    # a process gone keeps its last sighting
                self.last[pid] = st[1]
        if self.memory:
            self._sample_memory()
        self.samples += 1

    def _kind(self, pid):
        if pid not in self.kind:
            if self.group[pid] == "httpd":
                self.kind[pid] = "httpd_child"
            elif re.match(r"postgres: \S+ \S+ \d", proc_cmdline(pid)):
                self.kind[pid] = "pg_backend"  # a client backend: "postgres: user db host(port)"
            else:
                self.kind[pid] = None          # checkpointer, walwriter, autovacuum ...
        return self.kind[pid]

    def _sample_memory(self):
        by_kind = {"httpd_child": [], "pg_backend": []}
        for pid in sorted(self.kids):
            kind = self._kind(pid)
            rss = statm_rss(pid) if kind else None
            if rss is not None:
                by_kind[kind].append(pid)
                p = self.peak[kind].setdefault(pid, [0, 0])
                p[0] = max(p[0], rss)
        backends = by_kind["pg_backend"]
        pss_now = list(by_kind["httpd_child"])
        for i in range(min(PSS_BACKENDS_PER_TICK, len(backends))):
            pss_now.append(backends[(self.turn + i) % len(backends)])
        self.turn += PSS_BACKENDS_PER_TICK
        for pid in pss_now:
            m = smaps_rollup(pid)
            if m:
                p = self.peak[self._kind(pid)][pid]
                p[0], p[1] = max(p[0], m[0]), max(p[1], m[1])

    def run(self):
        # A fixed cadence: the time a sample takes is deducted from the wait.
        due = time.monotonic()
        while True:
            due += SAMPLE_INTERVAL
            if self.stop_event.wait(max(0.0, due - time.monotonic())):
                break
            self._sample()

    def finish(self):
        self.stop_event.set()
        self.join(timeout=5)
        self._sample(rescan=True)
        wall = time.monotonic() - self.t0
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        busy1 = machine_busy_ticks()
        cpu = {"client": (ru.ru_utime - self.ru0.ru_utime) + (ru.ru_stime - self.ru0.ru_stime)}
        for group in self.roots:
            ticks = sum(self.last.get(p, self.first[p]) - self.first[p]
                        for p in self.group if self.group[p] == group)
            cpu[group] = ticks / CLK_TCK
        me = resource.getrusage(resource.RUSAGE_SELF)
        cpu["bench"] = (me.ru_utime - self.self0.ru_utime) + (me.ru_stime - self.self0.ru_stime)
        cpu["machine"] = (busy1[0] - self.busy0[0]) / CLK_TCK
        # Whatever else ran on the machine meanwhile (other users' jobs, kernel threads).
        cpu["other"] = max(0.0, cpu["machine"] - cpu["client"] - cpu["httpd"]
                           - cpu["postgres"] - cpu["bench"])
        result = {"cpu_cores": {k: round(v / wall, 2) for k, v in cpu.items()},
                  "sample_period_ms": round(wall / max(1, self.samples - 1) * 1000, 1)}
        if self.memory:
            result["memory"] = {kind: peak_summary(per_pid) for kind, per_pid in self.peak.items()}
        return result


def peak_summary(per_pid):
    """Peak RSS and PSS of the largest single process, and how many processes were seen."""
    if not per_pid:
        return {"processes": 0, "peak_rss": 0, "peak_pss": 0}
    return {"processes": len(per_pid),
            "peak_rss": max(v[0] for v in per_pid.values()),
            "peak_pss": max(v[1] for v in per_pid.values())}


def httpd_children_rss(httpd_pid):
    """RSS of each current Apache child (bytes)."""
    out = []
    for pid, (ppid, _) in all_procs().items():
        if ppid == httpd_pid:
            m = smaps_rollup(pid)
            if m:
                out.append(m[0])
    return out


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
    """GET /cleanup until it deletes nothing; returns (rows deleted, seconds, calls)."""
    total, calls, t = 0, 0, time.monotonic()
    while time.monotonic() - t < deadline_s:
        r = session().get(h.url("/cleanup"), timeout=60)
        if r.status_code != 200:
            raise RuntimeError("cleanup failed: %d %s" % (r.status_code, r.text[:200]))
        calls += 1
        n = r.json()["deleted"]
        total += n
        if n == 0:
            break
    return total, time.monotonic() - t, calls


# ---------------------------------------------------------------------------------
# Measurement phases
# ---------------------------------------------------------------------------------

class Bench:
    """One run of a profile: the servers, the measurements in order, the extras."""

    def __init__(self, profile, tmp):
        self.p = PROFILES[profile]
        self.profile = profile
        self.tmp = tmp
        self.runs = []       # every measurement, in order
        self.extra = {}      # growth, cleanup, openssl, memory idle ...

    # -- environment ----------------------------------------------------------------
    def start(self):
        log("starting PostgreSQL (harness cluster under /tmp/imgstore-pg-*)")
        self.pg = conftest.Postgres()
        _cleanups.append(lambda: (self.pg.stop(), shutil.rmtree(self.pg.dir, True)))
        self.db = DB(self.pg)
        if max(self.p["conns"]) > 16:
            pg_tune_for_bench(self.pg, self.db)
        log("starting Apache (%s)" % conftest.MODULE)
        self.h = conftest.Httpd(self.pg, extra=EXTRA_CONF)
        _cleanups.append(lambda: (self.h.stop(), shutil.rmtree(self.h.dir, True)))
        self.h.start()
        log("PostgreSQL %s port %d, Apache %s port %d (pid %d)" % (
            self.pg.dir, self.pg.port, self.h.dir, self.h.port, self.h.pid))
        self.static_dir = os.path.join(self.h.dir, "htdocs", "static")
        os.makedirs(self.static_dir)
        os.symlink(self.static_dir, os.path.join(self.h.dir, "htdocs", "static-sendfile"))
        r = session().get(self.h.url("/health"), timeout=10)
        if r.status_code != 200:
            raise RuntimeError("module not healthy: %d %s" % (r.status_code, r.text))
        self.postmaster = pg_postmaster_pid(self.pg)

    def measure_idle_memory(self):
        # Touch each child a few times (DB connection, libpq, thread stacks) before "idle".
        for _ in range(20):
            session().get(self.h.url("/health"), timeout=10)
        rss = httpd_children_rss(self.h.pid)
        self.extra["httpd_child_idle_rss"] = max(rss) if rss else 0
        log("idle Apache child RSS: %s" % mb(self.extra["httpd_child_idle_rss"]))

    # -- one measurement ------------------------------------------------------------
    def record(self, kind, size, conns, fn, memory=False, **info):
        check_deadline()
        sampler = Sampler(self.h.pid, self.postmaster, memory)
        sampler.start()
        try:
            r = fn()
        finally:
            s = sampler.finish()
        r.update(s)
        r.update(kind=kind, size=size, conns=conns, **info)
        self.runs.append(r)
        log("%-19s %-4s c=%-3d %8.1f req/s  p50 %7.2f ms  p99 %7.2f ms  err %s  cpu %s" % (
            kind, size, conns, r["rps"], r["p50_ms"], r["p99_ms"], fmt_errors(r),
            " ".join("%s=%.2f" % kv for kv in r["cpu_cores"].items())))
        return r

    # A "load" is a function of a duration that runs wrk and returns its figures.
    def get_load(self, prefix, hashfile, conns, stop_when=None):
        return lambda d: wrk(self.h.url(""), "get.lua", [hashfile, prefix], conns, d, stop_when)

    def post_load(self, image, conns):
        return lambda d: wrk(self.h.url("/upload"), "post.lua", [image], conns, d)

    def warm_and_record(self, kind, label, c, load, memory=False, before=None, warm=True,
                        **info):
        """A short unrecorded run at the same concurrency first (the module's DB pools
        grow to it, the MPM spawns its children, the page cache holds the files), then
        before() (e.g. empty the table), then the measured run."""
        if warm and self.p["warmup"]:
            load(self.p["warmup"])
        if before:
            before()
        return self.record(kind, label, c, lambda: load(self.p["duration"]), memory=memory,
                           **info)

    # -- per size: retrieval, upload, and their ceilings ------------------------------
    def store_images(self, label, images, count):
        """Empty table, upload `count` images through the module, copy the same bytes
        under DocumentRoot/static/<hash> for the static ceiling; returns the stored
        images [(hash, file)] and a file of their hashes, one a line, for get.lua."""
        self.db.sql("TRUNCATE imgstore_images")
        shutil.rmtree(self.static_dir)
        os.makedirs(self.static_dir)
        stored = upload_many(self.h, images, count)
        for hash_, path in stored:
            shutil.copyfile(path, os.path.join(self.static_dir, hash_))
            os.chmod(os.path.join(self.static_dir, hash_), 0o644)
        hashfile = os.path.join(self.tmp, "hashes-%s.txt" % label)
        with open(hashfile, "w") as f:
            f.write("".join(hash_ + "\n" for hash_, _ in stored))
        return stored, hashfile

    def insert_select_rows(self, label, count):
        """`count` rows of this size for the pgbench SELECT ceiling, ids sha256(n)."""
        first = size_class(label) * 10_000_000 + 1
        last = first + count - 1
        self.db.sql("""
            INSERT INTO imgstore_images
                (id, key_id, nonce, ciphertext, content_type, size, created_at, expires_at)
            SELECT sha256(int8send(g)), %d, substr(p.data, 1, 12), p.data, 'image/jpeg',
                   octet_length(p.data) - 16, 1700000000, %d
              FROM generate_series(%d, %d) g
              JOIN bench_payload p ON p.size_class = %d AND p.k = 1 + g %% %d;
            ANALYZE imgstore_images;
        """ % (BENCH_KEY_ID, FAR_FUTURE, first, last, size_class(label), VARIANTS))
        return first, last

    def size_phase(self, label, images):
        """Upload and retrieval of one image size at each connection count, with the
        ceilings; returns the stored images [(hash, file)] and the file of their hashes."""
        log("size %s" % label)
        # Upload first: each run starts from an empty table, module and pgbench alike.
        ins_vars = {"size_class": size_class(label), "variants": VARIANTS}
        truncate = lambda: self.db.sql("TRUNCATE imgstore_images")  # noqa: E731
        for c in self.p["conns"]:
            self.warm_and_record("module_post", label, c, self.post_load(images[0], c),
                                 memory=True, before=truncate)
            truncate()
            self.record("pgbench_insert", label, c, lambda c=c: pgbench(
                self.db, "insert.sql", c, self.p["duration"], ins_vars, self.tmp))

        # Retrieval: the same images through the module and as static files, each
        # connection count in turn so that any drift of the machine touches all alike.
        count = SIZES[label][1]
        log("size %s: storing %d images through the module" % (label, count))
        stored, hashfile = self.store_images(label, images, count)
        first, last = self.insert_select_rows(label, count)
        # The sendfile run needs no warm-up of its own: it follows the other two at the
        # same concurrency, on the same files.
        for c in self.p["conns"]:
            for kind, prefix, memory, warm in (
                    ("static_get", "/static/", False, True),
                    ("module_get", "/image/", True, True),
                    ("static_sendfile_get", "/static-sendfile/", False, False)):
                self.warm_and_record(kind, label, c, self.get_load(prefix, hashfile, c),
                                     memory=memory, warm=warm)
        self.extra.setdefault("verify", {})[label] = {
            "module": verify_sample(self.h, stored, "/image/"),
            "static": verify_sample(self.h, stored, "/static/")}
        sel_vars = {"first": first, "last": last}
        for c in self.p["conns"]:
            self.record("pgbench_select", label, c, lambda c=c: pgbench(
                self.db, "select.sql", c, self.p["duration"], sel_vars, self.tmp))
        return stored, hashfile

    # -- cost growth ------------------------------------------------------------------
    def fill(self, n, expires_at, tag):
        """n filler rows straight in SQL: random-looking 32-byte ids, a 16-byte dummy
        ciphertext (never decrypted), the given expiry."""
        if n <= 0:
            return
        t = time.monotonic()
        self.db.sql("""
            INSERT INTO imgstore_images
                (id, key_id, nonce, ciphertext, content_type, size, created_at, expires_at)
            SELECT sha256(int8send(g) || '\\x%s'::bytea), %d, '\\x000000000000000000000000',
                   '\\x00000000000000000000000000000000', 'image/jpeg', 0, 1, %d
              FROM generate_series(1, %d) g;
            -- Vacuumed now: left to autovacuum, a pass over the new rows lands inside the
            -- next measurement and is counted as the cost of the table's size.
            VACUUM (ANALYZE) imgstore_images;
        """ % (os.urandom(8).hex(), BENCH_KEY_ID, expires_at, n), timeout=600)
        log("filled %d %s rows in %.1f s" % (n, tag, time.monotonic() - t))

    def growth_phase(self, hashfile):
        """Retrieval of the 100 KB images stored by size_phase("100k") at 16 connections
        as filler rows bring the table to each row count of the profile."""
        growth = []
        get = self.get_load("/image/", hashfile, 16)
        for rows in self.p["growth"]:
            self.fill(rows - self.db.count(), FAR_FUTURE, "live filler")
            self.db.sql("CHECKPOINT")  # so the fill's writes do not land in the run
            r = self.warm_and_record("module_get", "100k", 16, get, memory=True, rows=rows,
                                     phase="growth")
            growth.append({"rows": rows, "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"],
                           "rps": r["rps"]})
        self.extra["growth"] = growth
        self.cleanup_phase(hashfile)

    def cleanup_phase(self, hashfile):
        """Expired rows deleted by GET /cleanup (batches under a 5 s budget per call),
        timed, while wrk retrieves 100 KB images at 16 connections; compared with the
        same retrieval just before, with the same expired rows present."""
        n = self.p["cleanup_rows"]
        live = self.db.count()
        self.fill(n, 2, "expired")
        self.db.sql("CHECKPOINT")
        d = self.p["duration"]
        get = self.get_load("/image/", hashfile, 16)
        before = self.record("module_get", "100k", 16, lambda: get(d), memory=True,
                             phase="before_cleanup", rows=live + n)
        # wrk runs during the pass only: started first, interrupted when the pass ends.
        done = threading.Event()
        result = {}

        def pass_():
            time.sleep(0.3)  # let wrk open its connections
            try:
                result["deleted"], result["seconds"], result["calls"] = \
                    cleanup_until_done(self.h, deadline_s=300)
            finally:
                done.set()

        t = threading.Thread(target=pass_, daemon=True)
        t.start()
        during_load = self.get_load("/image/", hashfile, 16, stop_when=done)
        during = self.record("module_get", "100k", 16, lambda: during_load(330),
                             memory=True, phase="during_cleanup", rows=live + n)
        t.join(timeout=30)
        if "deleted" not in result:
            raise RuntimeError("cleanup pass did not finish")
        # The same pass with no load: the cost of the pass alone.
        self.fill(n, 2, "expired")
        self.db.sql("CHECKPOINT")
        idle_deleted, idle_secs, idle_calls = cleanup_until_done(self.h, deadline_s=300)
        self.extra["cleanup"] = {
            "expired_rows": n, "live_rows": live,
            "deleted_under_load": result["deleted"], "seconds_under_load": result["seconds"],
            "calls_under_load": result["calls"],
            "deleted_idle": idle_deleted, "seconds_idle": idle_secs, "calls_idle": idle_calls,
            "p50_before_ms": before["p50_ms"], "p99_before_ms": before["p99_ms"],
            "p50_during_ms": during["p50_ms"], "p99_during_ms": during["p99_ms"],
            "rps_before": before["rps"], "rps_during": during["rps"]}
        log("cleanup: %d rows in %.2f s under load (%d calls), %d in %.2f s idle" % (
            result["deleted"], result["seconds"], result["calls"], idle_deleted, idle_secs))

    # -- whole run ----------------------------------------------------------------------
    def run(self):
        log("profile %s; generating images" % self.profile)
        assert "100k" in self.p["sizes"], "growth and cleanup use the 100 KB images"
        images = make_images(self.tmp, self.p["sizes"])
        self.extra["images"] = {lb: [os.path.getsize(p) for p in ps] for lb, ps in images.items()}
        self.start()
        pg_setup_bench_objects(self.db, images)
        self.measure_idle_memory()
        log("openssl speed")
        self.extra["openssl_aes_256_gcm"] = openssl_speed(self.p["openssl"])
        for label in self.p["sizes"]:
            stored, hashfile = self.size_phase(label, images[label])
            if label == "100k":
                # Growth and cleanup reuse the 100 KB images just stored.
                self.growth_phase(hashfile)
        self.extra["httpd_unexpected_log_lines"] = self.h.unexpected_log_lines()


# ---------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------

def mb(n):
    return "%.1f MB" % (n / 1e6)


FEW_REQUESTS = 200  # below this, a p99 is one or two requests: marked with "*"


def fmt_p99(r):
    return "%.2f%s" % (r["p99_ms"], "*" if r["requests"] < FEW_REQUESTS else "")


def fmt_errors(r):
    """"0", or the count with its kinds: "7 (read 5, timeout 2)"."""
    if not r["errors"]:
        return "0"
    return "%d (%s)" % (r["errors"], ", ".join(
        "%s %d" % (k.replace("err_", ""), v) for k, v in r["error_kinds"].items()))


def fmt_table(headers, rows):
    """Plain text, columns aligned; numbers right-aligned."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]

    def line(cells, header=False):
        out = []
        for i, c in enumerate(cells):
            numeric = not header and re.match(r"^[-+]?[\d.]+[x%*]?$", c or "")
            out.append(c.rjust(widths[i]) if numeric else c.ljust(widths[i]))
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers, True), sep] + [line(r) for r in rows])


def find(runs, kind, size, conns, **kw):
    for r in runs:
        if r["kind"] == kind and r["size"] == size and r["conns"] == conns and \
                all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


# (module kind, ceiling kind, label) pairs reported as ratios.
PAIRS = [("module_get", "static_get", "retrieval / static"),
         ("module_get", "static_sendfile_get", "retrieval / static sendfile"),
         ("module_get", "pgbench_select", "retrieval / pgbench select"),
         ("module_post", "pgbench_insert", "upload / pgbench insert")]


def per_cpu_second(r):
    """Requests per CPU-second spent by this bench's processes (client, httpd, postgres):
    what a run would do with the whole machine to itself. On a shared machine it moves
    far less with other people's load than req/s does."""
    cores = r["cpu_cores"]["client"] + r["cpu_cores"]["httpd"] + r["cpu_cores"]["postgres"]
    return r["rps"] / cores if cores else 0.0


def ratios(runs, profile):
    out = []
    for size in profile["sizes"]:
        for c in profile["conns"]:
            for mod, ceil, label in PAIRS:
                m = find(runs, mod, size, c, phase=None)
                k = find(runs, ceil, size, c)
                if m and k and k["rps"] and k["p99_ms"]:
                    out.append({"size": size, "conns": c, "what": label,
                                "throughput_ratio": m["rps"] / k["rps"],
                                "per_cpu_ratio": per_cpu_second(m) / per_cpu_second(k)
                                if per_cpu_second(k) else 0.0,
                                "p99_ratio": m["p99_ms"] / k["p99_ms"],
                                "module_rps": m["rps"], "ceiling_rps": k["rps"],
                                "module_p99_ms": m["p99_ms"], "ceiling_p99_ms": k["p99_ms"]})
    return out


def ratio_of(rs, size, conns, what):
    for r in rs:
        if r["size"] == size and r["conns"] == conns and r["what"] == what:
            return r
    return None


def targets(result):
    """The CEO's targets, each met / missed / n/a with the figure that decides it."""
    rs, ex = result["ratios"], result["extra"]
    t = []

    def add(name, value, goal, ok, shown):
        t.append({"target": name, "value": value, "goal": goal,
                  "status": "n/a" if ok is None else ("met" if ok else "MISSED"), "shown": shown})

    # Throughput ratios and p99 ratios at 100 KB, 16 connections, against each ceiling.
    for what, goal in (("retrieval / static", 0.30), ("retrieval / static sendfile", 0.30),
                       ("retrieval / pgbench select", 1.50), ("upload / pgbench insert", 0.70)):
        r = ratio_of(rs, "100k", 16, what)
        v = r and r["throughput_ratio"]
        add("%s, 100KB@16: req/s ratio" % what, v, ">= %.2fx" % goal, r and v >= goal,
            r and "%.2fx (per CPU-s %.2fx)" % (v, r["per_cpu_ratio"]))
    for what in ("retrieval / static", "retrieval / static sendfile",
                 "retrieval / pgbench select", "upload / pgbench insert"):
        r = ratio_of(rs, "100k", 16, what)
        v = r and r["p99_ratio"]
        add("%s, 100KB@16: p99 ratio" % what, v, "<= 3.00x", r and v <= 3.0,
            r and "%.2fx" % v)
    gr = {x["rows"]: x for x in ex.get("growth", [])}
    if 1000 in gr and 1_000_000 in gr:
        v = gr[1_000_000]["p50_ms"] / gr[1000]["p50_ms"]
        add("p50 at 1M rows within 20% of 1k rows", v, "<= 1.20x", v <= 1.2, "%.2fx" % v)
    else:
        add("p50 at 1M rows within 20% of 1k rows", None, "<= 1.20x", None, "not run (--full)")
    c = ex.get("cleanup")
    if c and c["expired_rows"] >= 100_000:
        v = c["p99_during_ms"] / c["p99_before_ms"]
        add("100k-row cleanup raises retrieval p99 < 2x", v, "< 2.0x", v < 2.0, "%.2fx" % v)
    elif c:
        v = c["p99_during_ms"] / c["p99_before_ms"]
        add("100k-row cleanup raises retrieval p99 < 2x", v, "< 2.0x", None,
            "%.2fx (%d rows only)" % (v, c["expired_rows"]))
    idle = ex["httpd_child_idle_rss"]
    mem = [r for r in result["runs"] if "memory" in r]
    top = max(mem, key=lambda r: r["memory"]["httpd_child"]["peak_rss"])
    peak = top["memory"]["httpd_child"]["peak_rss"]
    limit = idle + 3 * MAX_SIZE
    add("Apache child peak RSS < idle + 3 x ImgStoreMaxSize", peak, "< %s" % mb(limit),
        peak < limit, "%s at %s@%d (idle %s)" % (mb(peak), top["size"], top["conns"], mb(idle)))
    return t


def report(result):
    runs = result["runs"]
    lines = []
    names = {"static_get": "static GET (ceiling)", "module_get": "module GET",
             "static_sendfile_get": "static GET sendfile (ceiling)",
             "pgbench_select": "pgbench SELECT (ceiling)", "module_post": "module POST /upload",
             "pgbench_insert": "pgbench INSERT (ceiling)"}
    rows = []
    for r in runs:
        if r.get("phase"):
            continue
        cpu = r["cpu_cores"]
        rows.append([r["size"], r["conns"], names[r["kind"]], "%.0f" % r["rps"],
                     "%.2f" % r["p50_ms"], fmt_p99(r), fmt_errors(r),
                     "%.2f" % cpu["client"], "%.2f" % cpu["httpd"], "%.2f" % cpu["postgres"],
                     "%.2f" % cpu["other"], "%.2f" % cpu["machine"], "%.0f" % per_cpu_second(r)])
    lines.append("Throughput and latency. CPU columns: cores used during the run (of %d); "
                 "client = wrk or pgbench, other = anything outside this bench"
                 % os.cpu_count())
    lines.append(fmt_table(["size", "conns", "measure", "req/s", "p50 ms", "p99 ms", "errors",
                            "cpu client", "cpu httpd", "cpu pg", "cpu other", "cpu all",
                            "req/CPU-s"], rows))
    if any(r["requests"] < FEW_REQUESTS for r in runs):
        lines.append("  * fewer than %d requests in the run: that p99 is a handful of requests"
                     % FEW_REQUESTS)
    other = [r["cpu_cores"]["other"] for r in runs]
    if other and sum(other) / len(other) > 0.2:
        lines.append("  NOTE: other work used %.2f cores on average during the runs: absolute "
                     "figures are depressed and noisier; ratios are same-run but not immune."
                     % (sum(other) / len(other)))

    lines.append("")
    lines.append("Ratios to the ceilings (module / ceiling). per CPU-s: the same ratio in "
                 "requests per CPU-second of client+httpd+postgres, less sensitive to "
                 "other load on the machine")
    lines.append(fmt_table(
        ["size", "conns", "ratio", "module req/s", "ceiling req/s", "throughput",
         "per CPU-s", "p99 ms", "ceiling p99 ms", "p99 ratio"],
        [[r["size"], r["conns"], r["what"], "%.0f" % r["module_rps"], "%.0f" % r["ceiling_rps"],
          "%.2fx" % r["throughput_ratio"], "%.2fx" % r["per_cpu_ratio"],
          "%.2f" % r["module_p99_ms"],
          "%.2f" % r["ceiling_p99_ms"], "%.2fx" % r["p99_ratio"]] for r in result["ratios"]]))

    ex = result["extra"]
    ssl = ex["openssl_aes_256_gcm"]
    lines.append("")
    lines.append("Crypto ceiling: openssl speed -evp aes-256-gcm, 16 KiB blocks: %.0f MB/s "
                 "(one core)" % (ssl.get(16384, 0) / 1e6))
    mg = [r for r in runs if r["kind"] == "module_get" and not r.get("phase")]
    if mg and ssl.get(16384):
        lines.append("  module GET bytes/s as a share of it (how much of one core decrypting "
                     "would take): " + ", ".join(
                         "%s@%d %.1f%%" % (r["size"], r["conns"],
                                           100 * r["mb_per_s"] * 1e6 / ssl[16384]) for r in mg))

    lines.append("")
    lines.append("Peak memory during module runs (largest single process)")
    mrows = []
    for r in runs:
        if "memory" not in r:
            continue
        m = r["memory"]
        mrows.append([r["size"], r["conns"], names[r["kind"]] + (
            " [%s]" % r["phase"] if r.get("phase") else ""),
            mb(m["httpd_child"]["peak_rss"]), mb(m["httpd_child"]["peak_pss"]),
            m["httpd_child"]["processes"], mb(m["pg_backend"]["peak_rss"]),
            mb(m["pg_backend"]["peak_pss"]), m["pg_backend"]["processes"]])
    lines.append(fmt_table(["size", "conns", "run", "httpd RSS", "httpd PSS", "children",
                            "pg RSS", "pg PSS", "backends"], mrows))
    lines.append("  idle Apache child RSS: %s; ImgStoreMaxSize %s" % (
        mb(ex["httpd_child_idle_rss"]), mb(MAX_SIZE)))

    lines.append("")
    lines.append("Cost growth: module GET 100 KB images, 16 connections")
    base = ex["growth"][0]["p50_ms"] if ex.get("growth") else None
    lines.append(fmt_table(["stored rows", "req/s", "p50 ms", "p99 ms", "p50 vs 1k"],
                           [[x["rows"], "%.0f" % x["rps"], "%.2f" % x["p50_ms"],
                             "%.2f" % x["p99_ms"], "%.2fx" % (x["p50_ms"] / base)]
                            for x in ex.get("growth", [])]))
    c = ex.get("cleanup")
    if c:
        lines.append("")
        lines.append("Cleanup: %d expired rows (+%d live) deleted by GET /cleanup" % (
            c["expired_rows"], c["live_rows"]))
        lines.append(fmt_table(
            ["", "seconds", "calls", "rows deleted", "GET req/s", "GET p50 ms", "GET p99 ms"],
            [["without pass", "", "", "", "%.0f" % c["rps_before"], "%.2f" % c["p50_before_ms"],
              "%.2f" % c["p99_before_ms"]],
             ["pass under load", "%.2f" % c["seconds_under_load"], c["calls_under_load"],
              c["deleted_under_load"], "%.0f" % c["rps_during"], "%.2f" % c["p50_during_ms"],
              "%.2f" % c["p99_during_ms"]],
             ["pass, no load", "%.2f" % c["seconds_idle"], c["calls_idle"], c["deleted_idle"],
              "", "", ""]]))
        lines.append("  p99 during pass / without: %.2fx" % (
            c["p99_during_ms"] / c["p99_before_ms"]))

    v = ex.get("verify", {})
    lines.append("")
    lines.append("Byte-for-byte checks after the runs: " + ", ".join(
        "%s module %d/%d static %d/%d" % (k, x["module"]["checked"] - x["module"]["mismatches"],
                                          x["module"]["checked"],
                                          x["static"]["checked"] - x["static"]["mismatches"],
                                          x["static"]["checked"]) for k, x in v.items()))
    bad = ex.get("httpd_unexpected_log_lines")
    if bad:
        lines.append("Unexpected error-log lines (%d), first: %s" % (len(bad), bad[0]))

    lines.append("")
    lines.append("Targets%s" % ("" if result["profile"] == "full"
                                else " (quick profile: indicative only; judge on --full)"))
    lines.append(fmt_table(["target", "value", "goal", "status"],
                           [[t["target"], t["shown"] or "-", t["goal"], t["status"]]
                            for t in result["targets"]]))
    return "\n".join(lines)


def machine_info():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
    except (OSError, AttributeError):
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "kernel": os.uname().release,
            "httpd": subprocess.run([conftest.APACHE, "-v"], capture_output=True,
                                    text=True).stdout.splitlines()[0],
            "openssl": subprocess.run(["openssl", "version"], capture_output=True,
                                      text=True).stdout.strip()}


def build_info():
    """Which module was measured: the tree's commit (and whether it had local changes)
    and the .so's own fingerprint, since the tree may move while a run goes on."""

    def git(*args):
        return subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True,
                              text=True).stdout.strip()

    with open(conftest.MODULE, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {"commit": git("rev-parse", "HEAD"),
            "dirty_files": len(git("status", "--porcelain", "--untracked-files=no").splitlines()),
            "module_sha256": digest,
            "module_mtime": time.strftime("%Y-%m-%dT%H:%M:%S",
                                          time.localtime(os.path.getmtime(conftest.MODULE)))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="profile", action="store_const", const="quick",
                   help="100 KB, 16 connections, short runs, 1k rows (default, < 1 min)")
    g.add_argument("--full", dest="profile", action="store_const", const="full",
                   help="10 KB/100 KB/1 MB at 1/16/64 connections, up to 1M rows (< 10 min)")
    ap.set_defaults(profile="quick")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench: run me as root (PostgreSQL runs as the postgres user)")
    if not os.path.exists(conftest.MODULE):
        raise SystemExit("bench: %s is missing: build first (./dev build)" % conftest.MODULE)

    started = time.strftime("%Y%m%dT%H%M%S")
    tmp = tempfile.mkdtemp(prefix="imgstore-bench-", dir="/tmp")
    os.chmod(tmp, 0o755)
    _cleanups.insert(0, lambda: shutil.rmtree(tmp, True))
    b = Bench(args.profile, tmp)
    b.run()
    result = {"profile": args.profile, "started": started,
              "wall_seconds": round(time.monotonic() - T0, 1), "machine": machine_info(),
              "build": build_info(),
              "config": {"conf": conftest.CONF, "module": conftest.MODULE,
                         "extra_conf": EXTRA_CONF, "max_size": MAX_SIZE,
                         "pg": "fsync/synchronous_commit/full_page_writes off (harness), "
                               "max_connections 200, other settings default"},
              "runs": b.runs, "extra": b.extra}
    result["ratios"] = ratios(b.runs, b.p)
    result["targets"] = targets(result)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, "%s-%s.json" % (started, args.profile))
    with open(path, "w") as f:
        json.dump(result, f, indent=1, default=str)
    print(report(result))
    print("\nresults: %s  (%.0f s)" % (path, time.monotonic() - T0))


if __name__ == "__main__":
    main()
