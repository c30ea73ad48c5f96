#!/usr/bin/python3
"""mod_imgstore benchmark: figures, never pass/fail (see DESIGN.md, "Performance").

Run through bench/run (which installs the tools) as root:  bench/run [--quick|--full]

One invocation starts a private PostgreSQL cluster and Apache with the module
(the harness package's Postgres and Httpd, t/harness),
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

Modules: settings (profiles, log, deadline, started processes), tools (psql, pgbench,
wrk, openssl, images, the module over HTTP), sampling (CPU and memory of the process
trees), phases (the measurements, class Bench), report (table, ratios, targets).
bench/run puts t/ on PYTHONPATH for the harness package.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import harness

from phases import Bench
from report import chart, ratios, report, targets
from settings import EXTRA_CONF, MAX_SIZE, RESULTS_DIR, ROOT, T0, _cleanups


def machine_info():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
    except (OSError, AttributeError):
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "kernel": os.uname().release,
            "httpd": subprocess.run([harness.APACHE, "-v"], capture_output=True,
                                    text=True).stdout.splitlines()[0],
            "openssl": subprocess.run(["openssl", "version"], capture_output=True,
                                      text=True).stdout.strip()}


def build_info():
    """Which module was measured: the tree's commit (and whether it had local changes)
    and the .so's own fingerprint, since the tree may move while a run goes on."""

    def git(*args):
        return subprocess.run(["git", "-C", ROOT] + list(args), capture_output=True,
                              text=True).stdout.strip()

    with open(harness.MODULE, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return {"commit": git("rev-parse", "HEAD"),
            "dirty_files": len(git("status", "--porcelain", "--untracked-files=no").splitlines()),
            "module_sha256": digest,
            "module_mtime": time.strftime("%Y-%m-%dT%H:%M:%S",
                                          time.localtime(os.path.getmtime(harness.MODULE)))}


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
    if not os.path.exists(harness.MODULE):
        raise SystemExit("bench: %s is missing: build first (./dev build)" % harness.MODULE)

    started = time.strftime("%Y%m%dT%H%M%S")
    tmp = tempfile.mkdtemp(prefix="imgstore-bench-", dir="/tmp")
    os.chmod(tmp, 0o755)
    _cleanups.insert(0, lambda: shutil.rmtree(tmp, True))
    b = Bench(args.profile, tmp)
    b.run()
    result = {"profile": args.profile, "started": started,
              "wall_seconds": round(time.monotonic() - T0, 1), "machine": machine_info(),
              "build": build_info(),
              "config": {"conf": harness.CONF, "module": harness.MODULE,
                         "extra_conf": EXTRA_CONF, "max_size": MAX_SIZE,
                         "pg": "fsync/synchronous_commit/full_page_writes off (harness), "
                               "max_connections 200, backends MALLOC_TRIM_THRESHOLD_=16M "
                               "MALLOC_MMAP_THRESHOLD_=4M, other settings default"},
              "runs": b.runs, "extra": b.extra}
    result["ratios"] = ratios(b.runs, b.p)
    result["targets"] = targets(result)
    os.makedirs(RESULTS_DIR, exist_ok=True)
    path = os.path.join(RESULTS_DIR, "%s-%s.json" % (started, args.profile))
    with open(path, "w") as f:
        json.dump(result, f, indent=1, default=str)
    print(report(result))
    png = path[:-len(".json")] + ".png"
    if chart(result, png):
        print("chart: %s" % png)
    print("\nresults: %s  (%.0f s)" % (path, time.monotonic() - T0))


if __name__ == "__main__":
    main()
