#!/usr/bin/env python3
"""Retrieval rate at 100 KB, 16 connections: the module talking to PostgreSQL directly,
and through PgBouncer 1.18 in transaction pooling mode (figures, never pass/fail).
    PYTHONPATH=t:bench python3 bench/pgbouncer.py [seconds]     (as root, after a build)
One cluster, one PgBouncer, one httpd per path (./dev run's configuration), 200 stored
100 KB images fetched round-robin by wrk (bench/wrk/get.lua)."""
import os
import sys

sys.path[:0] = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "t"),
                os.path.dirname(os.path.abspath(__file__))]

import harness as H  # noqa: E402
from harness.bouncer import PgBouncer  # noqa: E402
from tools import upload_many, wrk  # noqa: E402


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    pg = H.Postgres()
    bouncer = PgBouncer(pg, pool_size=20)
    db = pg.create_db("bench")
    tmp = H.make_tmp("imgstore-bench-")
    image = os.path.join(tmp, "100k.png")
    with open(image, "wb") as f:
        f.write(H.png_of_size(100 * 1000))
    key = H.write_key(os.path.join(tmp, "bench.key"))
    results = {}
    for name, via in (("direct", pg), ("pgbouncer", bouncer)):
        h = H.Httpd(via, dbname=db, keyfile=key, extra="ImgStoreTTL 1h\n").start()
        stored = upload_many(h, [image], 200)
        hashfile = os.path.join(tmp, "hashes-" + name)
        with open(hashfile, "w") as f:
            f.write("".join(x + "\n" for x, _ in stored))
        wrk(h.url(""), "get.lua", [hashfile, "/image/"], 16, 3)  # warm-up
        results[name] = wrk(h.url(""), "get.lua", [hashfile, "/image/"], 16, seconds)
        h.stop()
    for name, r in results.items():
        print("%-10s GET /image 100 KB, 16 connections: %7.0f req/s  p50 %5.1f ms  p99 %6.1f ms"
              "  errors %d" % (name, r["rps"], r["p50_ms"], r["p99_ms"], r["errors"]))
    bouncer.stop()
    pg.stop()
    H.procs.stop_all()


if __name__ == "__main__":
    main()
