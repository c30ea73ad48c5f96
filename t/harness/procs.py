"""Processes, ports and temporary directories: everything the harness starts is
registered here and stopped at exit; directories go when the session passed."""
import atexit
import os
import re
import shutil
import socket
import tempfile
import time

_started = []  # stop functions, called in reverse order at exit, whatever happens
_made_dirs = []  # temporary directories of this session's servers


def stop_all():
    while _started:
        stop = _started.pop()
        try:
            stop()
        except Exception:
            pass


atexit.register(stop_all)


def on_exit(stop):
    """Register stop() to be called at exit (or by stop_all)."""
    _started.append(stop)


def make_tmp(prefix):
    """A directory under /tmp removed with the servers' (see remove_tmp)."""
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    _made_dirs.append(d)
    return d


def remove_tmp():
    for d in _made_dirs:
        shutil.rmtree(d, ignore_errors=True)
    del _made_dirs[:]


def tmp_count():
    return len(_made_dirs)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15.0, up=True):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return True
        except OSError:
            if not up:
                return True
        time.sleep(0.05)
    return False


def pid_alive(pid):
    """True while pid runs; a zombie (exited, not yet reaped by init) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def children_of(ppid):
    """Pids of the live (not zombie) processes whose parent is ppid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/status" % d) as f:
                status = f.read()
        except OSError:
            continue
        m = re.search(r"^PPid:\s+(\d+)", status, re.M)
        state = re.search(r"^State:\s+(\S)", status, re.M)
        if m and int(m.group(1)) == ppid and not (state and state.group(1) == "Z"):
            out.append(int(d))
    return sorted(out)


def wait_gone(pids, timeout=30.0):
    """The pids among pids still running after up to timeout seconds."""
    deadline = time.time() + timeout
    alive = [p for p in pids if pid_alive(p)]
    while alive and time.time() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if pid_alive(p)]
    return alive


def proc_status_kb(pid, field):
    """A /proc/<pid>/status field in kB (VmRSS, VmHWM...), None once the process is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            m = re.search(r"^%s:\s+(\d+) kB" % field, f.read(), re.M)
    except OSError:
        return None
    return int(m.group(1)) if m else None


def wait_until(predicate, timeout=30.0, interval=0.2):
    """Poll predicate() until it returns something true; returns the last value."""
    deadline = time.time() + timeout
    value = predicate()
    while not value and time.time() < deadline:
        time.sleep(interval)
        value = predicate()
    return value
