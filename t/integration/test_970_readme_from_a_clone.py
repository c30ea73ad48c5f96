"""97x: the README's two commands from a fresh clone under /root (mode 0700), where the
postgres user cannot enter: `./dev run` serves an upload and its fetch (curl) and stops
on Ctrl-C leaving no process behind, and `./dev test` runs a small subset of the suite
(`./dev test <one integration test>`: plain build, no unit tests, guards or ASan pass).

The clone is a copy of the tracked files at HEAD (git archive); its build, its .state,
its /var/tmp cluster and every process it started are removed at the end."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from harness import ASAN, free_port, image, pid_alive, read
from harness.paths import ROOT

pytestmark = pytest.mark.skipif(
    ASAN, reason="the clone builds and runs the plain module: the ASan pass adds nothing")


def clean_env(**extra):
    """The environment of a user at a shell: none of this suite's own settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("IMGSTORE_", "PYTEST_", "MAKE", "MFLAGS"))
           and k not in ("PYTHONPATH", "PORT", "PGPORT")}
    env.update(extra)
    return env


def processes_under(*paths):
    """(pid, cmdline) of live processes whose command line names one of paths."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(p in cmd for p in paths) and pid_alive(int(d)):
            out.append((int(d), cmd))
    return out


def cluster_dir(state):
    """Where ./dev puts the cluster of a .state postgres cannot reach (see pg_dir in dev)."""
    ck = subprocess.run(["cksum"], input=state.encode(), capture_output=True,
                        check=True).stdout.split()[0].decode()
    return "/var/tmp/imgstore-pg-" + ck


@pytest.fixture
def clone():
    if not os.path.isdir(os.path.join(ROOT, ".git")) and not os.path.isfile(
            os.path.join(ROOT, ".git")):
        pytest.skip("not a git checkout: nothing to clone")
    base = tempfile.mkdtemp(prefix="imgstore-clone-", dir="/root")  # mode 0700
    assert os.stat(base).st_mode & 0o777 == 0o700
    path = os.path.join(base, "project")
    os.mkdir(path)
    archive = subprocess.run(["git", "-C", ROOT, "archive", "HEAD"], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", path], input=archive, check=True)
    pg_dir = cluster_dir(os.path.join(path, ".state"))
    try:
        yield path, pg_dir
    finally:
        for pid, _ in processes_under(path, pg_dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(pg_dir, ignore_errors=True)


def test_970_dev_run_and_dev_test_work_from_a_clone_under_a_0700_directory(clone, tmp_path):
    path, pg_dir = clone
    port, pgport = free_port(), free_port()
    log_path = os.path.join(path, "dev-run.log")
    with open(log_path, "wb") as log:
        run = subprocess.Popen([os.path.join(path, "dev"), "run"], cwd=path, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True,
                               env=clean_env(PORT=str(port), PGPORT=str(pgport)))
    try:
        url = "http://127.0.0.1:%d" % port
        deadline = time.time() + 600  # a fresh clone builds first
        up = None
        while time.time() < deadline and run.poll() is None:
            up = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                 url + "/health"], capture_output=True, text=True)
            if up.stdout == "200":
                break
            time.sleep(1)
        assert up is not None and up.stdout == "200", (
            "./dev run did not serve /health (exit %s):\n%s"
            % (run.poll(), open(log_path, errors="replace").read()[-3000:]))
        # The cluster lives where postgres can reach it, not in the clone.
        assert os.path.isfile(os.path.join(pg_dir, "data", "PG_VERSION")), os.listdir("/var/tmp")
        posted = subprocess.run(["curl", "-sS", "-F", "file=@%s" % image("sample.png"),
                                 url + "/upload"], capture_output=True, text=True, check=True)
        assert '"hash"' in posted.stdout, posted.stdout
        hash_ = posted.stdout.split('"hash"')[1].split('"')[1]
        fetched = tmp_path / "fetched"
        subprocess.run(["curl", "-sS", "-f", "-o", str(fetched), url + "/image/" + hash_],
                       check=True)
        assert fetched.read_bytes() == read("sample.png")
        # Ctrl-C: the terminal sends SIGINT to the foreground process group.
        os.killpg(run.pid, signal.SIGINT)
        rc = run.wait(60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(10)
    assert rc == 0, open(log_path, errors="replace").read()[-3000:]
    left = [(pid, cmd) for pid, cmd in processes_under(path, pg_dir) if pid_alive(pid)]
    deadline = time.time() + 15
    while left and time.time() < deadline:
        time.sleep(0.2)
        left = [(pid, cmd) for pid, cmd in left if pid_alive(pid)]
    assert not left, "processes left by ./dev run: %r" % left

    test = subprocess.run([os.path.join(path, "dev"), "test",
                           "t/integration/test_100_upload.py"], cwd=path,
                          capture_output=True, text=True, timeout=600,
                          env=clean_env(PGPORT=str(free_port())))
    out = test.stdout + test.stderr
    assert test.returncode == 0, out[-4000:]
    assert " passed" in out and "failed" not in out, out[-2000:]
    assert not processes_under(path, pg_dir), processes_under(path, pg_dir)
