"""Sampling: CPU time per process group (all runs), RSS/PSS (module runs)."""
import os
import re
import resource
import threading
import time

from settings import PSS_BACKENDS_PER_TICK, RESCAN_EVERY, SAMPLE_INTERVAL

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


def rss_shmem(pid):
    """Resident shared memory of a process (bytes; RssShmem of /proc/<pid>/status): for an
    Apache child, mostly the ImgStoreCache shmcb segment, which is the machine's once."""
    try:
        with open("/proc/%d/status" % pid) as f:
            m = re.search(r"^RssShmem:\s+(\d+) kB", f.read(), re.M)
    except OSError:
        return 0
    return int(m.group(1)) * 1024 if m else 0


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
                p = self.peak[kind].setdefault(pid, [0, 0, 0])
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
                if self._kind(pid) == "httpd_child":
                    p[2] = max(p[2], m[0] - rss_shmem(pid))

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
        return {"processes": 0, "peak_rss": 0, "peak_pss": 0, "peak_rss_private": 0}
    return {"processes": len(per_pid),
            "peak_rss": max(v[0] for v in per_pid.values()),
            "peak_pss": max(v[1] for v in per_pid.values()),
            # RSS without shared memory (the cache, the scoreboard): what the child owns.
            "peak_rss_private": max(v[2] for v in per_pid.values())}


def httpd_children_rss(httpd_pid):
    """RSS of each current Apache child (bytes)."""
    out = []
    for pid, (ppid, _) in all_procs().items():
        if ppid == httpd_pid:
            m = smaps_rollup(pid)
            if m:
                out.append(m[0])
    return out


