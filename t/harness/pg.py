"""A private PostgreSQL cluster for the tests, the soak and the bench.

Only PostgreSQL's own programs (initdb, pg_ctl) run as the postgres user, from /;
everything that reads the source tree (sql/imgstore-migrate and its .sql files) or
talks SQL (psql, pg_dump) runs as the caller (root) and logs in as the postgres
superuser over the cluster's Unix socket, which trusts local connections. So the
tree may live where postgres cannot enter (a clone under /root, mode 0700)."""
import os
import shutil
import subprocess

from . import procs
from .paths import MIGRATE, PGBIN

DB_PASSWORD = "imgstore-test-password"
NULL = "\\N"  # how query() asks psql to print NULL


def as_postgres(cmd, **kw):
    return subprocess.run(["runuser", "-u", "postgres", "--"] + cmd, check=True,
                          capture_output=True, text=True, cwd="/", **kw)


class Postgres:
    """A private cluster run by the postgres user; the module logs in as 'imgstore'."""

    def __init__(self, settings=("fsync = off", "synchronous_commit = off",
                                 "full_page_writes = off")):
        self.dir = procs.make_tmp("imgstore-pg-")
        os.chmod(self.dir, 0o755)
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = os.path.join(self.dir, "data")
        self.sock = self.dir
        self.port = procs.free_port()
        # dbname -> a copy of the expiry-key file of the first server that used it
        # (t/harness/httpd.py): servers sharing a database share one chain.
        self.expiry_files = {}
        as_postgres([PGBIN + "/initdb", "-D", self.data, "-A", "trust", "-U", "postgres"])
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("".join(s + "\n" for s in settings))
        self.start()
        procs.on_exit(self.stop)
        self.psql("CREATE ROLE imgstore LOGIN PASSWORD '%s'" % DB_PASSWORD, db="postgres")
        self.psql("CREATE DATABASE imgstore", db="postgres")
        self.migrate()

    def conn_args(self, db):
        return ["-h", self.sock, "-p", str(self.port), "-U", "postgres", "-d", db]

    def migrate(self, db="imgstore"):
        """sql/imgstore-migrate --grant imgstore, run as the caller (see the module doc)."""
        return subprocess.run([MIGRATE, "--grant", "imgstore"] + self.conn_args(db),
                              check=True, capture_output=True, text=True).stdout

    def create_db(self, prefix="t", migrate=True):
        """A fresh database of its own (unique name), owned by the runtime role when it
        is left without the schema, migrated (owner postgres, rights granted) otherwise."""
        name = "%s_%s" % (prefix, os.urandom(4).hex())
        if migrate:
            self.psql("CREATE DATABASE %s" % name, db="postgres")
            self.migrate(db=name)
        else:
            self.psql("CREATE DATABASE %s OWNER imgstore" % name, db="postgres")
        return name

    def dump(self, db="imgstore"):
        """pg_dump of a database (plain SQL) as bytes."""
        return subprocess.run(["pg_dump"] + self.conn_args(db), check=True,
                              capture_output=True).stdout

    def start(self):
        as_postgres([PGBIN + "/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"),
                     "-w", "-o", "-p %d -k %s -c listen_addresses=127.0.0.1" % (self.port, self.sock),
                     "start"])

    def stop(self):
        subprocess.run(["runuser", "-u", "postgres", "--", PGBIN + "/pg_ctl", "-D", self.data,
                        "-m", "fast", "-w", "stop"], capture_output=True, cwd="/")

    def restart(self):
        self.stop()
        self.start()

    def psql(self, sql, db="imgstore"):
        """Run SQL as the superuser; returns unaligned, tuples-only output."""
        return subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]
                              + self.conn_args(db) + ["-c", sql], check=True,
                              capture_output=True, text=True).stdout.strip()

    def query(self, sql, db="imgstore"):
        """Rows of one query as lists of str (None for NULL)."""
        out = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-F", "\x1f",
                              "-P", "null=" + NULL] + self.conn_args(db) + ["-c", sql],
                             check=True, capture_output=True, text=True).stdout
        return [[None if v == NULL else v for v in line.split("\x1f")]
                for line in out.splitlines()]

    @property
    def dbparams(self):
        return self.dbparams_for("imgstore")

    def dbparams_for(self, db):
        return ("host=127.0.0.1 port=%d dbname=%s user=imgstore password=%s "
                "connect_timeout=3" % (self.port, db, DB_PASSWORD))


def query(pg, sql, db="imgstore"):
    return pg.query(sql, db)


def rows(pg, db):
    """How many rows imgstore_images of database db holds."""
    return int(pg.query("SELECT count(*) FROM imgstore_images", db)[0][0])
