"""Apache httpd with the module (Debian's apache2 and conf/dev-httpd.conf), on a free
loopback port in a temporary directory, and the error-log policy applied to it."""
import os
import re
import shutil
import signal
import subprocess
import time

import requests

from . import logpolicy, procs
from .images import image, read
from .paths import APACHE, ASAN, CONF, MODULE, MPM

# How long a graceful stop may take: children finish what they serve and exit. Longer
# than that is a hang, and fails the test that caused it.
GRACEFUL_STOP_TIMEOUT = 30.0

live = []  # servers whose error log is judged after every test (see judge)


def write_key(path, content=None, mode=0o400):
    if content is None:
        content = os.urandom(32).hex() + "\n"
    if isinstance(content, str):
        content = content.encode()
    with open(path, "wb") as f:
        f.write(content)
    os.chmod(path, mode)
    return path


class Httpd:
    def __init__(self, pg, extra="", defines=(), keyfile=None, args=(), module=MODULE,
                 dbname=None, port=None, expiry_file=None, mpm=None):
        self.pg = pg
        self.dbname = dbname or "imgstore"
        self.dir = procs.make_tmp("imgstore-httpd-")
        os.chmod(self.dir, 0o755)
        os.makedirs(os.path.join(self.dir, "run"))
        os.makedirs(os.path.join(self.dir, "htdocs"))
        self.port = port or procs.free_port()
        self.keyfile = keyfile or write_key(os.path.join(self.dir, "imgstore.key"))
        # The expiry-key state file (ImgStoreExpiryKeyFile in conf/dev-httpd.conf). Servers
        # sharing a database share one chain, as the README says: a copy of the file of the
        # first server that used this database, unless the test brings its own (a path to
        # copy, or "fresh": none, so the module creates a new chain).
        self.expiry_file = os.path.join(self.dir, "imgstore-expiry.key")
        src = expiry_file if expiry_file is not None else pg.expiry_files.get(self.dbname)
        if src not in (None, "fresh"):
            shutil.copyfile(src, self.expiry_file)
            os.chmod(self.expiry_file, 0o600)
        self.extra_path = os.path.join(self.dir, "extra.conf")
        with open(self.extra_path, "w") as f:
            f.write(extra)
        self.error_log = os.path.join(self.dir, "error.log")
        self.access_log = os.path.join(self.dir, "access.log")
        self.pidfile = os.path.join(self.dir, "httpd.pid")
        self.defines = list(defines)
        self.mpm = mpm or MPM
        if self.mpm == "prefork":
            self.defines.append("IMGSTORE_PREFORK")
        self.args = list(args)
        self.module = module
        self.log = logpolicy.LogPolicy()
        self.pid = None
        live.append(self)

    def env(self):
        env = dict(os.environ)
        env.update({
            "IMGSTORE_STATE": self.dir, "IMGSTORE_PORT": str(self.port),
            "IMGSTORE_MODULE": self.module, "IMGSTORE_KEYFILE": self.keyfile,
            "IMGSTORE_DBPARAMS": self.pg.dbparams_for(self.dbname),
            "IMGSTORE_EXTRA": self.extra_path,
            "IMGSTORE_ERRORLOG": self.error_log, "IMGSTORE_MODDIR": "/usr/lib/apache2/modules",
            "IMGSTORE_USER": "www-data", "IMGSTORE_GROUP": "www-data",
        })
        if ASAN:
            libasan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                                     text=True).stdout.strip()
            env["LD_PRELOAD"] = libasan
            env["ASAN_OPTIONS"] = "detect_leaks=0:use_sigaltstack=0:abort_on_error=1"
            env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
        return env

    def command(self):
        cmd = [APACHE, "-f", CONF]
        for d in self.defines:
            cmd += ["-D", d]
        return cmd + self.args

    def try_start(self):
        """Start httpd; returns (returncode, output) of the launcher."""
        self.log.harness(*logpolicy.STARTED)
        if not os.path.exists(self.expiry_file):
            self.log.harness(*logpolicy.EXPIRY_FILE_CREATED)
        p = subprocess.run(self.command(), env=self.env(), capture_output=True, text=True,
                           timeout=60)
        return p.returncode, p.stdout + p.stderr

    def _read_pid(self, deadline):
        pid = ""
        while not pid and time.time() < deadline:
            pid = open(self.pidfile).read().strip()
            time.sleep(0 if pid else 0.05)
        return int(pid) if pid else None

    def start(self):
        since = len(self.errors())
        rc, out = self.try_start()
        assert rc == 0, "httpd failed to start: %s\n%s" % (out, self.errors())
        deadline = time.time() + 15
        while not os.path.exists(self.pidfile) and time.time() < deadline:
            # Some checks run after httpd has detached from the launcher.
            if re.search(r"AH000(16|20)", self.errors()):
                break
            time.sleep(0.05)
        assert os.path.exists(self.pidfile), (
            "httpd exited %d but gave up after detaching:\n%s" % (rc, self.errors()))
        self.pid = self._read_pid(deadline)
        procs.on_exit(self._cleanup)
        assert procs.wait_port(self.port), "httpd did not listen:\n" + self.errors()
        # The parent logs its startup notices after it listens and forks the children:
        # one that has not yet done so when start() returns would log them into the next
        # test's judgement (a module-scoped server's first test is often that quick).
        assert procs.wait_until(lambda: self.logged_since(since, logpolicy.STARTED), 30, 0.02), (
            "httpd listens but never logged its startup notices:\n" + self.errors()[since:])
        if self.dbname not in self.pg.expiry_files and os.path.exists(self.expiry_file):
            self.pg.expiry_files[self.dbname] = shutil.copy(
                self.expiry_file, os.path.join(self.pg.dir, "expiry-%s.key" % self.dbname))
        return self

    def logged_since(self, since, patterns):
        """Whether every pattern matches the error log after character `since`."""
        text = self.errors()[since:]
        return all(re.search(p, text) for p in patterns)

    def children(self):
        return procs.children_of(self.pid) if self.pid else []

    def _sigterm(self):
        """SIGTERM the parent, which SIGTERMs its children: those recorded here are the
        ones whose SIGSEGV in httpd's shutdown race the log policy tolerates."""
        self.log.harness(*logpolicy.STOP)
        self.log.stopping_children(len(self.errors()), self.children())
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.time() + 20
        while procs.pid_alive(self.pid) and time.time() < deadline:
            time.sleep(0.05)
        if procs.pid_alive(self.pid):
            os.kill(self.pid, signal.SIGKILL)

    def stop(self, graceful=True):
        """graceful-stop: children finish what they serve and exit; one that has not
        within GRACEFUL_STOP_TIMEOUT fails the caller (the server is then killed, and
        whatever that kill logs is judged as usual). graceful=False: SIGTERM at once."""
        hung = None
        if self.pid and procs.pid_alive(self.pid):
            self.log.stop_sent.append(time.time())
            if graceful:
                self.log.harness(*logpolicy.GRACEFUL_STOP)
                os.kill(self.pid, signal.SIGWINCH)
                deadline = time.time() + GRACEFUL_STOP_TIMEOUT
                while procs.pid_alive(self.pid) and time.time() < deadline:
                    time.sleep(0.05)
                if procs.pid_alive(self.pid):
                    hung = self.children()
                    os.kill(self.pid, signal.SIGTERM)
                    deadline = time.time() + 20
                    while procs.pid_alive(self.pid) and time.time() < deadline:
                        time.sleep(0.05)
                    if procs.pid_alive(self.pid):
                        os.kill(self.pid, signal.SIGKILL)
            else:
                self._sigterm()
        self.pid = None
        assert hung is None, ("graceful stop hung for %d s (children %s still running):\n%s"
                              % (GRACEFUL_STOP_TIMEOUT, hung, self.errors()[-3000:]))

    def _cleanup(self):
        if self.pid and procs.pid_alive(self.pid):
            self._sigterm()
        self.pid = None

    def hard_restart(self):
        """apachectl -k restart: the parent SIGTERMs its children (see logpolicy)."""
        self.log.harness(*logpolicy.HARD_RESTART)
        self.log.stopping_children(len(self.errors()), self.children())
        self.log.stop_sent.append(time.time())
        os.kill(self.pid, signal.SIGHUP)

    def graceful(self):
        self.log.harness(*logpolicy.GRACEFUL_RESTART)
        os.kill(self.pid, signal.SIGUSR1)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def errors(self):
        try:
            return open(self.error_log, errors="replace").read()
        except FileNotFoundError:
            return ""

    def access(self):
        try:
            return open(self.access_log, errors="replace").read()
        except FileNotFoundError:
            return ""

    def allow(self, *patterns):
        """Error-log lines the current test provokes on purpose: each pattern must match
        at least one of them. For that test only."""
        self.log.expect(*patterns)

    def tolerate(self, *patterns):
        """Error-log lines the current test may provoke, depending on timing."""
        self.log.tolerate(*patterns)

    def judge(self):
        """The error-log failures since the last judge() (see logpolicy)."""
        return self.log.judge(self.errors())

    def finish(self):
        """Stop (gracefully) and judge for the last time; returns the failures."""
        try:
            self.stop()
        finally:
            if self in live:
                live.remove(self)
        return self.judge()

    def start_refused(self, timeout=15.0):
        """Start httpd expecting it to refuse; returns (returncode, launcher output + error
        log). Some checks run after httpd has detached from the launcher: wait until that
        process has either given up (AH00016/AH00020 logged) or come up (pid file); one
        that came up is stopped here, and the returned code is still the launcher's."""
        self.log.harness(*logpolicy.REFUSED_START)
        rc, out = self.try_start()
        deadline = time.time() + timeout
        while rc == 0 and time.time() < deadline:
            if os.path.exists(self.pidfile) or re.search(r"AH000(16|20)", self.errors()):
                break
            time.sleep(0.05)
        if os.path.exists(self.pidfile):
            self.pid = self._read_pid(deadline)
            if self.pid:
                procs.on_exit(self._cleanup)
                self.stop()
        return rc, out + self.errors()

    # -- requests through the one HTTP client library (requests) -----------------------
    def upload(self, path=None, data=None, filename="x.bin", field="file", prefix="",
               content_type="application/octet-stream", **kw):
        if data is None:
            data = open(path, "rb").read()
            filename = os.path.basename(path)
        return requests.post(self.url(prefix + "/upload"),
                             files={field: (filename, data, content_type)}, timeout=30, **kw)

    def get(self, path, **kw):
        return requests.get(self.url(path), timeout=30, **kw)


def round_trip(h, name="sample.png"):
    """Upload one real image and fetch it back; asserts byte identity; returns the hash."""
    data = read(name)
    r = h.upload(image(name))
    assert r.status_code == 201, "round trip upload: %d %s" % (r.status_code, r.text[:200])
    g = h.get("/image/" + r.json()["hash"])
    assert g.status_code == 200 and g.content == data, \
        "round trip fetch: %d, %d bytes" % (g.status_code, len(g.content))
    return r.json()["hash"]


def assert_healthy(h, name="sample.png"):
    """The server answers /health with 200 and takes and serves an image."""
    r = requests.get(h.url("/health"), timeout=15)
    assert r.status_code == 200, "health: %d %s" % (r.status_code, r.text[:200])
    return round_trip(h, name)


def children(h):
    """Pids of httpd's live children."""
    return h.children()


def _socket_inodes_for_peer(server_port, client_port):
    """Inodes of the server-side sockets of one loopback connection (/proc/net/tcp)."""
    inodes = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if (int(local.split(":")[1], 16) == server_port
                    and int(remote.split(":")[1], 16) == client_port):
                inodes.append(inode)
    return inodes


def child_holding(h, sock, timeout=10.0):
    """The httpd child whose descriptors hold the server side of the client socket sock."""
    client_port = sock.getsockname()[1]
    deadline = time.time() + timeout
    while time.time() < deadline:
        inodes = set("socket:[%s]" % i for i in _socket_inodes_for_peer(h.port, client_port)
                     if i != "0")
        for pid in h.children():
            try:
                fds = os.listdir("/proc/%d/fd" % pid)
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink("/proc/%d/fd/%s" % (pid, fd)) in inodes:
                        return pid
                except OSError:
                    continue
        time.sleep(0.05)
    return None


def own_server(pg, name, with_hash=False):
    """Generator for a module-scoped fixture: a default server on a database of its own
    (so row counts are that module's alone), its log judged after each test and at the end."""
    db = pg.create_db(name)
    h = Httpd(pg, dbname=db).start()
    h.db = db
    if with_hash:
        h.hash = round_trip(h)
    yield h
    bad = h.finish()
    assert not bad, "unexpected error-log lines:\n" + "\n".join(bad)


