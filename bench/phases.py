"""The measurement phases of one run (class Bench)."""
import os
import shutil
import threading
import time


import harness
from report import fmt_errors, mb
from sampling import Sampler, httpd_children_rss
from settings import (BENCH_KEY_ID, PG_MALLOC_ENV, EXTRA_CONF, FAR_FUTURE, MIXED_CONF, PROFILES,
                      SIZES, VARIANTS, _cleanups, check_deadline, log)
from tools import (DB, cache_counters, cleanup_until_done, make_images, openssl_speed, pg_postmaster_pid,
                   pg_setup_bench_objects, pg_tune_for_bench, pgbench, session, size_class,
                   upload_many, verify_sample, wrk)

# ---------------------------------------------------------------------------------
# Measurement phases
# ---------------------------------------------------------------------------------

class Bench:
    """One run of a profile: the servers, the measurements in order, the extras."""

    def __init__(self, profile, tmp):
        self.p = dict(PROFILES[profile])
        # For one's own loop: BENCH_SIZES=100k,1m BENCH_CONNS=64 bench/run --quick
        for key, env in (("sizes", "BENCH_SIZES"), ("conns", "BENCH_CONNS")):
            if os.environ.get(env):
                self.p[key] = [v if key == "sizes" else int(v)
                               for v in os.environ[env].split(",")]
        self.profile = profile
        self.tmp = tmp
        self.runs = []       # every measurement, in order
        self.extra = {}      # growth, cleanup, openssl, memory idle ...

    # -- environment ----------------------------------------------------------------
    def start(self):
        log("starting PostgreSQL (harness cluster under /tmp/imgstore-pg-*)")
        # The backends' glibc settings ./dev run and the compose file give them
        # (README, "Tuning PostgreSQL"); inherited through runuser and pg_ctl.
        os.environ.update(PG_MALLOC_ENV)
        self.pg = harness.Postgres()
        _cleanups.append(lambda: (self.pg.stop(), shutil.rmtree(self.pg.dir, True)))
        self.db = DB(self.pg)
        if max(self.p["conns"]) > 16:
            pg_tune_for_bench(self.pg, self.db)
        log("starting Apache (%s)" % harness.MODULE)
        # -D IMGSTORE_RUN: the MPM settings ./dev run ships (conf/dev-httpd.conf).
        self.h = harness.Httpd(self.pg, extra=EXTRA_CONF, defines=["IMGSTORE_RUN"])
        _cleanups.append(lambda: (self.h.stop(), shutil.rmtree(self.h.dir, True)))
        self.h.start()
        log("PostgreSQL %s port %d, Apache %s port %d (pid %d)" % (
            self.pg.dir, self.pg.port, self.h.dir, self.h.port, self.h.pid))
        # A second Apache on the same database and key, with the hot image cache as
        # ./dev run has it (-D IMGSTORE_CACHE: 128 MB shmcb): hot retrieval is measured
        # there, cold (every GET reads the database) on the first.
        self.hot = harness.Httpd(self.pg, extra=EXTRA_CONF,
                                 defines=["IMGSTORE_RUN", "IMGSTORE_CACHE"],
                                 keyfile=self.h.keyfile)
        _cleanups.append(lambda: (self.hot.stop(), shutil.rmtree(self.hot.dir, True)))
        self.hot.start()
        log("Apache with ImgStoreCache %s port %d (pid %d)" % (
            self.hot.dir, self.hot.port, self.hot.pid))
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
    def record(self, kind, size, conns, fn, memory=False, server=None, **info):
        check_deadline()
        server = server or self.h
        cache_before = cache_counters(server)
        sampler = Sampler(server.pid, self.postmaster, memory)
        sampler.start()
        try:
            r = fn()
        finally:
            s = sampler.finish()
        r.update(s)
        # How many GETs the cache answered (hits) or sent to the database (misses).
        cache_after = cache_counters(server)
        r["cache_hits"] = cache_after[0] - cache_before[0]
        r["cache_misses"] = cache_after[1] - cache_before[1]
        r.update(kind=kind, size=size, conns=conns, **info)
        self.runs.append(r)
        log("%-19s %-4s c=%-3d %8.1f req/s  p50 %7.2f ms  p99 %7.2f ms  err %s  cpu %s" % (
            kind, size, conns, r["rps"], r["p50_ms"], r["p99_ms"], fmt_errors(r),
            " ".join("%s=%.2f" % kv for kv in r["cpu_cores"].items())))
        return r

    # A "load" is a function of a duration that runs wrk and returns its figures.
    def get_load(self, prefix, hashfile, conns, stop_when=None, server=None, random=False):
        server = server or self.h
        args = [hashfile, prefix] + (["random"] if random else [])
        return lambda d: wrk(server.url(""), "get.lua", args, conns, d, stop_when)

    def post_load(self, image, conns):
        return lambda d: wrk(self.h.url("/upload"), "post.lua", [image], conns, d)

    def warm_and_record(self, kind, label, c, load, memory=False, before=None, warm=True,
                        server=None, **info):
        """A short unrecorded run at the same concurrency first (the module's DB pools
        grow to it, the MPM spawns its children, the page cache holds the files), then
        before() (e.g. empty the table), then the measured run."""
        if warm and self.p["warmup"]:
            load(self.p["warmup"])
        if before:
            before()
        return self.record(kind, label, c, lambda: load(self.p["duration"]), memory=memory,
                           server=server, **info)

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

    def start_mixed(self, label, stored):
        """A third Apache on the same database and key whose shmcb holds about half of
        this size's stored images: GETs picked at random then hit the cache about half
        the time and read the database otherwise (each miss refills the cache, evicting
        another image), a steady mix that the hit ratio of the run shows. shmcb's room is
        bounded twice: by bytes, and by index slots (one per 64 KiB of its size, as the
        module hints it for images), so small images need the larger size."""
        count = len(stored)
        image = max(os.path.getsize(path) for _, path in stored)
        size = max(count * (image + 256) // 2, count // 2 * (64 * 1024 + 64))
        conf = EXTRA_CONF + MIXED_CONF % size
        mixed = harness.Httpd(self.pg, extra=conf, defines=["IMGSTORE_RUN"],
                              keyfile=self.h.keyfile)
        _cleanups.append(lambda: (mixed.stop(), shutil.rmtree(mixed.dir, True)))
        mixed.start()
        log("size %s: Apache with a %s shmcb (half the images) port %d" % (
            label, mb(size), mixed.port))
        self.extra.setdefault("mixed_cache_bytes", {})[label] = size
        return mixed

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
        # The cache of the second Apache holds every stored image before its runs.
        for hash_, _ in stored:
            session().get(self.hot.url("/image/" + hash_), timeout=30)
        mixed = self.start_mixed(label, stored)
        # The sendfile run needs no warm-up of its own: it follows the other two at the
        # same concurrency, on the same files. The mixed run's warm-up brings its cache
        # to the steady state of random picks.
        for c in self.p["conns"]:
            for kind, prefix, memory, warm, server, random in (
                    ("static_get", "/static/", False, True, self.h, False),
                    ("module_get", "/image/", True, True, self.h, False),
                    ("module_get_hot", "/image/", True, True, self.hot, False),
                    ("module_get_mixed", "/image/", True, True, mixed, True),
                    ("static_sendfile_get", "/static-sendfile/", False, False, self.h, False)):
                self.warm_and_record(kind, label, c,
                                     self.get_load(prefix, hashfile, c, server=server,
                                                   random=random),
                                     memory=memory, warm=warm, server=server)
        self.extra.setdefault("httpd_unexpected_log_lines", []).extend(mixed.finish())
        shutil.rmtree(mixed.dir, True)
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
        self.extra.setdefault("httpd_unexpected_log_lines", []).extend(
            self.h.judge() + self.hot.judge())


