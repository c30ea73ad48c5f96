"""The report: the table, the ratios to the ceilings and the targets."""
import os
import re

from settings import MAX_SIZE

# ---------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------

def mb(n):
    return "%.1f MB" % (n / 1e6)


FEW_REQUESTS = 200  # below this, a p99 is one or two requests: marked with "*"


def fmt_p99(r):
    return "%.2f%s" % (r["p99_ms"], "*" if r["requests"] < FEW_REQUESTS else "")


def fmt_errors(r):
    """"0", or the count with its kinds: "7 (read 5, timeout 2)"."""
    if not r["errors"]:
        return "0"
    return "%d (%s)" % (r["errors"], ", ".join(
        "%s %d" % (k.replace("err_", ""), v) for k, v in r["error_kinds"].items()))


def fmt_table(headers, rows):
    """Plain text, columns aligned; numbers right-aligned."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]

    def line(cells, header=False):
        out = []
        for i, c in enumerate(cells):
            numeric = not header and re.match(r"^[-+]?[\d.]+[x%*]?$", c or "")
            out.append(c.rjust(widths[i]) if numeric else c.ljust(widths[i]))
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers, True), sep] + [line(r) for r in rows])


def find(runs, kind, size, conns, **kw):
    for r in runs:
        if r["kind"] == kind and r["size"] == size and r["conns"] == conns and \
                all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


# (module kind, ceiling kind, label) pairs reported as ratios.
PAIRS = [("module_get_hot", "static_get", "hot retrieval / static"),
         ("module_get_hot", "static_sendfile_get", "hot retrieval / static sendfile"),
         ("module_get_hot", "pgbench_select", "hot retrieval / pgbench select"),
         ("module_get_mixed", "static_sendfile_get", "mixed retrieval / static sendfile"),
         ("module_get_mixed", "pgbench_select", "mixed retrieval / pgbench select"),
         ("module_get", "static_get", "retrieval / static"),
         ("module_get", "static_sendfile_get", "retrieval / static sendfile"),
         ("module_get", "pgbench_select", "retrieval / pgbench select"),
         ("module_post", "pgbench_insert", "upload / pgbench insert")]


def per_cpu_second(r):
    """Requests per CPU-second spent by this bench's processes (client, httpd, postgres):
    what a run would do with the whole machine to itself. On a shared machine it moves
    far less with other people's load than req/s does."""
    cores = r["cpu_cores"]["client"] + r["cpu_cores"]["httpd"] + r["cpu_cores"]["postgres"]
    return r["rps"] / cores if cores else 0.0


def ratios(runs, profile):
    out = []
    for size in profile["sizes"]:
        for c in profile["conns"]:
            for mod, ceil, label in PAIRS:
                m = find(runs, mod, size, c, phase=None)
                k = find(runs, ceil, size, c)
                if m and k and k["rps"] and k["p99_ms"]:
                    out.append({"size": size, "conns": c, "what": label,
                                "throughput_ratio": m["rps"] / k["rps"],
                                "per_cpu_ratio": per_cpu_second(m) / per_cpu_second(k)
                                if per_cpu_second(k) else 0.0,
                                "p99_ratio": m["p99_ms"] / k["p99_ms"],
                                "module_rps": m["rps"], "ceiling_rps": k["rps"],
                                "module_p99_ms": m["p99_ms"], "ceiling_p99_ms": k["p99_ms"]})
    return out


def ratio_of(rs, size, conns, what):
    for r in rs:
        if r["size"] == size and r["conns"] == conns and r["what"] == what:
            return r
    return None


def targets(result):
    """The CEO's targets, each met / missed / n/a with the figure that decides it."""
    rs, ex = result["ratios"], result["extra"]
    t = []

    def add(name, value, goal, ok, shown):
        t.append({"target": name, "value": value, "goal": goal,
                  "status": "n/a" if ok is None else ("met" if ok else "MISSED"), "shown": shown})

    # Throughput ratios and p99 ratios at 100 KB, 16 connections, against each ceiling.
    for what, goal in (("retrieval / static", 0.30), ("retrieval / static sendfile", 0.30),
                       ("retrieval / pgbench select", 1.50), ("upload / pgbench insert", 0.70)):
        r = ratio_of(rs, "100k", 16, what)
        v = r and r["throughput_ratio"]
        add("%s, 100KB@16: req/s ratio" % what, v, ">= %.2fx" % goal, r and v >= goal,
            r and "%.2fx (per CPU-s %.2fx)" % (v, r["per_cpu_ratio"]))
    for what in ("retrieval / static", "retrieval / static sendfile",
                 "retrieval / pgbench select", "upload / pgbench insert"):
        r = ratio_of(rs, "100k", 16, what)
        v = r and r["p99_ratio"]
        add("%s, 100KB@16: p99 ratio" % what, v, "<= 3.00x", r and v <= 3.0,
            r and "%.2fx" % v)
    # Issue 15: hot (cache hit) retrieval against static sendfile; cold against pgbench.
    r = ratio_of(rs, "100k", 16, "hot retrieval / static sendfile")
    add("hot retrieval / static sendfile, 100KB@16: req/s ratio", r and r["throughput_ratio"],
        ">= 0.50x", r and r["throughput_ratio"] >= 0.5, r and "%.2fx" % r["throughput_ratio"])
    add("hot retrieval / static sendfile, 100KB@16: p99 ratio", r and r["p99_ratio"],
        "<= 3.00x", r and r["p99_ratio"] <= 3.0, r and "%.2fx" % r["p99_ratio"])
    for size, goal in (("100k", 2.0), ("10k", 1.0)):
        r = ratio_of(rs, size, 16, "retrieval / pgbench select")
        add("cold retrieval / pgbench select, %s@16: req/s ratio" % size,
            r and r["throughput_ratio"], ">= %.2fx" % goal, r and r["throughput_ratio"] >= goal,
            r and "%.2fx" % r["throughput_ratio"])
    for size in ("100k", "1m"):
        r = ratio_of(rs, size, 16, "upload / pgbench insert")
        add("upload / pgbench insert, %s@16: req/s ratio" % size, r and r["throughput_ratio"],
            ">= 2.00x", r and r["throughput_ratio"] >= 2.0, r and "%.2fx" % r["throughput_ratio"])
    # 64 connections: no socket error in any module run, and each p99 within 3x the p99 of
    # the matching ceiling, the same work done without the module: uploads the database's
    # INSERT, cold retrieval its SELECT, hot retrieval Apache serving the file (httpd's
    # defaults). The other pairs are shown, not judged (n/a): mixed is half of each, and
    # sendfile does no work per byte at all.
    at64 = [r for r in result["runs"] if r["conns"] == 64 and r["kind"].startswith("module")]
    if at64:
        sock = sum(r["errors"] - r["error_kinds"].get("non2xx", 0) for r in at64)
        add("64 connections: socket errors in all module runs", sock, "= 0", sock == 0,
            "%d in %d runs" % (sock, len(at64)))
        for what, judged in (("upload / pgbench insert", True),
                             ("retrieval / pgbench select", True),
                             ("retrieval / static", False),
                             ("hot retrieval / static", True),
                             ("hot retrieval / static sendfile", False),
                             ("mixed retrieval / pgbench select", False)):
            for size in ("10k", "100k", "1m"):
                r = ratio_of(rs, size, 64, what)
                if r:
                    add("%s, %s@64: p99 ratio" % (what, size), r["p99_ratio"], "<= 3.00x",
                        r["p99_ratio"] <= 3.0 if judged else None,
                        "%.2fx (%.0f / %.0f ms)" % (
                            r["p99_ratio"], r["module_p99_ms"], r["ceiling_p99_ms"]))
    gr = {x["rows"]: x for x in ex.get("growth", [])}
    if 1000 in gr and 1_000_000 in gr:
        v = gr[1_000_000]["p50_ms"] / gr[1000]["p50_ms"]
        add("p50 at 1M rows within 20% of 1k rows", v, "<= 1.20x", v <= 1.2, "%.2fx" % v)
    else:
        add("p50 at 1M rows within 20% of 1k rows", None, "<= 1.20x", None, "not run (--full)")
    c = ex.get("cleanup")
    if c and c["expired_rows"] >= 100_000:
        v = c["p99_during_ms"] / c["p99_before_ms"]
        add("100k-row cleanup raises retrieval p99 < 2x", v, "< 2.0x", v < 2.0, "%.2fx" % v)
    elif c:
        v = c["p99_during_ms"] / c["p99_before_ms"]
        add("100k-row cleanup raises retrieval p99 < 2x", v, "< 2.0x", None,
            "%.2fx (%d rows only)" % (v, c["expired_rows"]))
    idle = ex["httpd_child_idle_rss"]
    mem = [r for r in result["runs"] if "memory" in r]
    # Without shared memory: the hot cache's segment is the machine's once, bounded by its
    # configured size, and shows in the RSS of every child that touched it.
    def own(r):
        m = r["memory"]["httpd_child"]
        return m.get("peak_rss_private") or m["peak_rss"]
    top = max(mem, key=own)
    peak = own(top)
    limit = idle + 3 * MAX_SIZE
    add("Apache child peak RSS (less shared memory) < idle + 3 x ImgStoreMaxSize", peak,
        "< %s" % mb(limit),
        peak < limit, "%s at %s@%d (idle %s)" % (mb(peak), top["size"], top["conns"], mb(idle)))
    return t


def report(result):
    runs = result["runs"]
    lines = []
    names = {"static_get": "static GET (ceiling)", "module_get": "module GET cold (database)",
             "module_get_hot": "module GET hot (cache)",
             "module_get_mixed": "module GET mixed (half cached)",
             "static_sendfile_get": "static GET sendfile (ceiling)",
             "pgbench_select": "pgbench SELECT (ceiling)", "module_post": "module POST /upload",
             "pgbench_insert": "pgbench INSERT (ceiling)"}
    rows = []
    for r in runs:
        if r.get("phase"):
            continue
        cpu = r["cpu_cores"]
        hits = ""
        if r.get("cache_hits") or r.get("cache_misses"):
            hits = " [hits %d%%]" % (100 * r["cache_hits"] / (r["cache_hits"] + r["cache_misses"]))
        rows.append([r["size"], r["conns"], names[r["kind"]] + hits, "%.0f" % r["rps"],
                     "%.2f" % r["p50_ms"], fmt_p99(r), fmt_errors(r),
                     "%.2f" % cpu["client"], "%.2f" % cpu["httpd"], "%.2f" % cpu["postgres"],
                     "%.2f" % cpu["other"], "%.2f" % cpu["machine"], "%.0f" % per_cpu_second(r)])
    lines.append("Throughput and latency. CPU columns: cores used during the run (of %d); "
                 "client = wrk or pgbench, other = anything outside this bench"
                 % os.cpu_count())
    lines.append(fmt_table(["size", "conns", "measure", "req/s", "p50 ms", "p99 ms", "errors",
                            "cpu client", "cpu httpd", "cpu pg", "cpu other", "cpu all",
                            "req/CPU-s"], rows))
    if any(r["requests"] < FEW_REQUESTS for r in runs):
        lines.append("  * fewer than %d requests in the run: that p99 is a handful of requests"
                     % FEW_REQUESTS)
    other = [r["cpu_cores"]["other"] for r in runs]
    if other and sum(other) / len(other) > 0.2:
        lines.append("  NOTE: other work used %.2f cores on average during the runs: absolute "
                     "figures are depressed and noisier; ratios are same-run but not immune."
                     % (sum(other) / len(other)))

    lines.append("")
    lines.append("Ratios to the ceilings (module / ceiling). per CPU-s: the same ratio in "
                 "requests per CPU-second of client+httpd+postgres, less sensitive to "
                 "other load on the machine")
    lines.append(fmt_table(
        ["size", "conns", "ratio", "module req/s", "ceiling req/s", "throughput",
         "per CPU-s", "p99 ms", "ceiling p99 ms", "p99 ratio"],
        [[r["size"], r["conns"], r["what"], "%.0f" % r["module_rps"], "%.0f" % r["ceiling_rps"],
          "%.2fx" % r["throughput_ratio"], "%.2fx" % r["per_cpu_ratio"],
          "%.2f" % r["module_p99_ms"],
          "%.2f" % r["ceiling_p99_ms"], "%.2fx" % r["p99_ratio"]] for r in result["ratios"]]))

    ex = result["extra"]
    ssl = ex["openssl_aes_256_gcm"]
    lines.append("")
    lines.append("Crypto ceiling: openssl speed -evp aes-256-gcm, 16 KiB blocks: %.0f MB/s "
                 "(one core)" % (ssl.get(16384, 0) / 1e6))
    mg = [r for r in runs if r["kind"] == "module_get" and not r.get("phase")]
    if mg and ssl.get(16384):
        lines.append("  module GET bytes/s as a share of it (how much of one core decrypting "
                     "would take): " + ", ".join(
                         "%s@%d %.1f%%" % (r["size"], r["conns"],
                                           100 * r["mb_per_s"] * 1e6 / ssl[16384]) for r in mg))

    lines.append("")
    lines.append("Peak memory during module runs (largest single process)")
    mrows = []
    for r in runs:
        if "memory" not in r:
            continue
        m = r["memory"]
        mrows.append([r["size"], r["conns"], names[r["kind"]] + (
            " [%s]" % r["phase"] if r.get("phase") else ""),
            mb(m["httpd_child"]["peak_rss"]),
            mb(m["httpd_child"].get("peak_rss_private", m["httpd_child"]["peak_rss"])),
            mb(m["httpd_child"]["peak_pss"]),
            m["httpd_child"]["processes"], mb(m["pg_backend"]["peak_rss"]),
            mb(m["pg_backend"]["peak_pss"]), m["pg_backend"]["processes"]])
    lines.append(fmt_table(["size", "conns", "run", "httpd RSS", "less shm", "httpd PSS",
                            "children",
                            "pg RSS", "pg PSS", "backends"], mrows))
    lines.append("  idle Apache child RSS: %s; ImgStoreMaxSize %s" % (
        mb(ex["httpd_child_idle_rss"]), mb(MAX_SIZE)))

    lines.append("")
    lines.append("Cost growth: module GET 100 KB images, 16 connections")
    base = ex["growth"][0]["p50_ms"] if ex.get("growth") else None
    lines.append(fmt_table(["stored rows", "req/s", "p50 ms", "p99 ms", "p50 vs 1k"],
                           [[x["rows"], "%.0f" % x["rps"], "%.2f" % x["p50_ms"],
                             "%.2f" % x["p99_ms"], "%.2fx" % (x["p50_ms"] / base)]
                            for x in ex.get("growth", [])]))
    c = ex.get("cleanup")
    if c:
        lines.append("")
        lines.append("Cleanup: %d expired rows (+%d live) deleted by GET /cleanup" % (
            c["expired_rows"], c["live_rows"]))
        lines.append(fmt_table(
            ["", "seconds", "calls", "rows deleted", "GET req/s", "GET p50 ms", "GET p99 ms"],
            [["without pass", "", "", "", "%.0f" % c["rps_before"], "%.2f" % c["p50_before_ms"],
              "%.2f" % c["p99_before_ms"]],
             ["pass under load", "%.2f" % c["seconds_under_load"], c["calls_under_load"],
              c["deleted_under_load"], "%.0f" % c["rps_during"], "%.2f" % c["p50_during_ms"],
              "%.2f" % c["p99_during_ms"]],
             ["pass, no load", "%.2f" % c["seconds_idle"], c["calls_idle"], c["deleted_idle"],
              "", "", ""]]))
        lines.append("  p99 during pass / without: %.2fx" % (
            c["p99_during_ms"] / c["p99_before_ms"]))

    v = ex.get("verify", {})
    lines.append("")
    lines.append("Byte-for-byte checks after the runs: " + ", ".join(
        "%s module %d/%d static %d/%d" % (k, x["module"]["checked"] - x["module"]["mismatches"],
                                          x["module"]["checked"],
                                          x["static"]["checked"] - x["static"]["mismatches"],
                                          x["static"]["checked"]) for k, x in v.items()))
    bad = ex.get("httpd_unexpected_log_lines")
    if bad:
        lines.append("Unexpected error-log lines (%d), first: %s" % (len(bad), bad[0]))

    lines.append("")
    lines.append("Targets%s" % ("" if result["profile"] == "full"
                                else " (quick profile: indicative only; judge on --full)"))
    lines.append(fmt_table(["target", "value", "goal", "status"],
                           [[t["target"], t["shown"] or "-", t["goal"], t["status"]]
                            for t in result["targets"]]))
    return "\n".join(lines)




CHART_SERIES = [("static_sendfile_get", "static sendfile (ceiling)"),
                ("static_get", "static (ceiling)"),
                ("module_get_hot", "module GET hot (cache)"),
                ("module_get_mixed", "module GET mixed (half cached)"),
                ("module_get", "module GET cold (database)"),
                ("pgbench_select", "pgbench SELECT (ceiling)"),
                ("module_post", "module POST /upload"),
                ("pgbench_insert", "pgbench INSERT (ceiling)")]


def chart(result, path):
    """The table's throughput and p99 as a PNG (python3-matplotlib): one panel per
    connection count, bars by size and measure; False when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    runs = [r for r in result["runs"] if not r.get("phase")]
    sizes = [s for s in ("10k", "100k", "1m") if any(r["size"] == s for r in runs)]
    conns = sorted({r["conns"] for r in runs})
    series = [(k, n) for k, n in CHART_SERIES if any(r["kind"] == k for r in runs)]
    fig, axes = plt.subplots(2, len(conns), figsize=(5 * len(conns), 8), squeeze=False)
    width = 0.8 / max(1, len(series))
    for col, c in enumerate(conns):
        for row, (field, label) in enumerate((("rps", "req/s"), ("p99_ms", "p99 ms"))):
            ax = axes[row][col]
            for i, (kind, name) in enumerate(series):
                ys = []
                for s in sizes:
                    r = find(runs, kind, s, c)
                    ys.append(r[field] if r else 0)
                ax.bar([x + i * width for x in range(len(sizes))], ys, width, label=name)
            ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(sizes))])
            ax.set_xticklabels(sizes)
            ax.set_yscale("log")
            ax.set_title("%s, %d connection%s" % (label, c, "" if c == 1 else "s"))
            ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.suptitle("mod_imgstore vs its ceilings, one %s run (%s)" % (
        result["profile"], result["started"]), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True
