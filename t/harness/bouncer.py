"""Debian's PgBouncer (1.18) in transaction pooling mode in front of a harness cluster, on
a free loopback port, run by the postgres user (pgbouncer refuses root). It passes
dbparams_for() like a Postgres, so Httpd(bouncer, dbname=...) connects through it."""
import os
import shutil
import subprocess

from . import procs
from .pg import DB_PASSWORD


class PgBouncer:
    def __init__(self, pg, pool_size=10, mode="transaction"):
        self.pg = pg
        self.expiry_files = pg.expiry_files  # the chain file of each database (see Httpd)
        self.dir = procs.make_tmp("imgstore-bouncer-")
        os.chmod(self.dir, 0o755)
        self.port = procs.free_port()
        self.ini = os.path.join(self.dir, "pgbouncer.ini")
        self.log = os.path.join(self.dir, "pgbouncer.log")
        with open(os.path.join(self.dir, "users.txt"), "w") as f:
            f.write('"imgstore" "%s"\n' % DB_PASSWORD)
        with open(self.ini, "w") as f:
            f.write("[databases]\n* = host=127.0.0.1 port=%d\n\n[pgbouncer]\n"
                    "listen_addr = 127.0.0.1\nlisten_port = %d\nunix_socket_dir =\n"
                    "auth_type = plain\nauth_file = %s/users.txt\n"
                    "pool_mode = %s\ndefault_pool_size = %d\nmax_client_conn = 500\n"
                    "server_reset_query =\nignore_startup_parameters = extra_float_digits\n"
                    "logfile = %s\npidfile = %s/pgbouncer.pid\n"
                    % (pg.port, self.port, self.dir, mode, pool_size, self.log, self.dir))
        for name in os.listdir(self.dir):
            shutil.chown(os.path.join(self.dir, name), "postgres", "postgres")
        shutil.chown(self.dir, "postgres", "postgres")
        self.proc = None
        self.start()
        procs.on_exit(self.stop)

    def start(self):
        self.proc = subprocess.Popen(["runuser", "-u", "postgres", "--", "pgbouncer", self.ini],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     cwd="/")
        assert procs.wait_port(self.port), "pgbouncer did not listen:\n" + self.log_text()

    def stop(self):
        """SIGTERM: pgbouncer closes every client and server connection at once."""
        pidfile = os.path.join(self.dir, "pgbouncer.pid")
        if self.proc and self.proc.poll() is None:
            try:
                os.kill(int(open(pidfile).read().strip()), 15)
            except (OSError, ValueError):
                self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        procs.wait_port(self.port, timeout=10, up=False)

    def restart(self):
        self.stop()
        self.start()

    def log_text(self):
        try:
            return open(self.log, errors="replace").read()
        except FileNotFoundError:
            return ""

    def dbparams_for(self, db):
        return ("host=127.0.0.1 port=%d dbname=%s user=imgstore password=%s "
                "connect_timeout=3" % (self.port, db, DB_PASSWORD))
