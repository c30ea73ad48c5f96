"""Settings of a bench run (sizes, profiles, the module's extra config), its log and
deadline, and the processes it starts (all stopped at exit)."""
import atexit
import os
import signal
import subprocess
import sys
import time


import harness

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

PGBENCH = os.path.join(harness.PGBIN, "pgbench")
PSQL = os.path.join(harness.PGBIN, "psql")
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

# PostgreSQL backends' glibc malloc, as ./dev run and docker/compose.yaml set it.
PG_MALLOC_ENV = {"MALLOC_TRIM_THRESHOLD_": "16777216", "MALLOC_MMAP_THRESHOLD_": "4194304"}

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

# The mixed-retrieval Apache (phases.start_mixed): a cache of %d bytes.
MIXED_CONF = """
LoadModule socache_shmcb_module ${IMGSTORE_MODDIR}/mod_socache_shmcb.so
ImgStoreCache shmcb:${IMGSTORE_STATE}/run/imgstore-mixed-cache(%d)
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
# Processes: everything started here is stopped at exit (the harness also registers
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


