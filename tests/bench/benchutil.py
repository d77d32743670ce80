#!/usr/bin/python3
"""benchutil.py: helpers of tests/bench/bench.sh.

  cpu PIDFILE [PID...]   CPU seconds (user + system) used so far by the
                         server: the postmaster, every live child of it,
                         and the children it has already reaped (its
                         cutime + cstime), so backends that exit during a
                         run are counted too; plus the processes PID.
  timed OUT CMD...       run CMD; write "wall_s cpu_s rc" to OUT (wall from
                         spawn to exit, CPU of CMD and its descendants).
  busy                   CPU seconds the whole machine has been busy (all
                         CPUs, /proc/stat: all but idle and iowait).
  rss PID...             "avg_rss_mb max_rss_mb avg_anon_mb" of the
                         processes (VmRSS, RssAnon from /proc/PID/status).
  report TSV OUTDIR MODE the results table (stdout), OUTDIR/bench.csv and
                         OUTDIR/bench.png from the raw results in TSV
                         (lines: key TAB side TAB value).
"""
import csv
import os
import statistics
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def proc_stat(pid):
    """(ppid, utime+stime, cutime+cstime) in ticks, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state) of proc(5)
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return ppid, utime + stime, cutime + cstime


def cmd_cpu(pidfile, extra=()):
    with open(pidfile) as f:
        pm = int(f.readline())
    own = proc_stat(pm)
    if own is None:
        sys.exit(f"postmaster {pm} is not running")
    total = own[1] + own[2]
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == pm:
            continue
        st = proc_stat(int(name))
        if st is not None and st[0] == pm:
            total += st[1]
    for pid in extra:
        st = proc_stat(int(pid))
        if st is not None:
            total += st[1] + st[2]
    print(f"{total / TICK:.2f}")


def cmd_timed(out, argv):
    t0 = time.monotonic()
    p = subprocess.Popen(argv)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    rc = os.waitstatus_to_exitcode(status)
    with open(out, "w") as f:
        f.write(f"{wall:.4f} {ru.ru_utime + ru.ru_stime:.3f} {rc}\n")
    sys.exit(0)


def cmd_busy():
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice;
    # guest time is already counted in user
    busy = sum(vals[:8]) - vals[3] - vals[4]
    print(f"{busy / TICK:.2f}")


def cmd_rss(pids):
    rss, anon = [], []
    for pid in pids:
        vals = {}
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in ("VmRSS", "RssAnon"):
                        vals[k] = int(v.split()[0]) / 1024
        except OSError:
            continue
        if "VmRSS" in vals:
            rss.append(vals["VmRSS"])
            anon.append(vals.get("RssAnon", 0))
    if not rss:
        print("0 0 0")
    else:
        print(f"{statistics.mean(rss):.1f} {max(rss):.1f} {statistics.mean(anon):.1f}")


# --- report ------------------------------------------------------------------

SIDES = [("ours", "ours"), ("node_default", "Node default"),
         ("node_batch", "Node batching")]


def rows_for(meta):
    """(key, label, unit) in table order."""
    jobs = int(meta.get("jobs", 50000))
    lat_n = int(meta.get("lat_samples", 2000))
    late_n = int(meta.get("late_jobs", 500))
    rows = []
    for c in (1, 2, 4, 8, 24):
        extra = " (Node: the docs' perf preset)" if c == 24 else ""
        rows.append((f"tput_noop_c{c}",
                     f"no-op jobs, {jobs:,} pre-queued, concurrency {c}{extra}",
                     "jobs/s"))
    rows.append(("tput_insert_c4",
                 f"INSERT-handler jobs, {jobs:,} pre-queued, concurrency 4",
                 "jobs/s"))
    for h in ("off", "failures", "all"):
        rows.append((f"tput_hist_{h}_c4",
                     f"no-op jobs, {jobs:,} pre-queued, concurrency 4, graphile_worker.history = {h}",
                     "jobs/s"))
    for m in range(1, 6):
        rows.append((f"hist_size_m{m}",
                     f"job history size (all partitions, with indexes) at minute {m} of add_job at 500/s,"
                     " history = all, history_retention shortened to 1 min", "MB"))
    for m in range(1, 6):
        rows.append((f"hist_rows_m{m}", f"job history rows at minute {m} of that run", "rows"))
    qs_n = int(meta.get("qs_jobs", 1000000))
    rows += [
        ("look_queue_stats", f"one SELECT of the queue_stats view, {qs_n:,} queued jobs", "ms"),
        ("look_metrics", f"one graphile_worker.metrics() call, {qs_n:,} queued jobs", "ms"),
        ("look_unhandled", f"one SELECT of the unhandled_tasks view, {qs_n:,} queued jobs", "ms"),
    ]
    for c in (1, 2, 4, 8, 24):
        rows.append((f"cpu_noop_c{c}",
                     f"server+worker CPU per 1,000 no-op jobs, concurrency {c}",
                     "CPU s"))
    rows.append(("cpu_insert_c4",
                 "server+worker CPU per 1,000 INSERT jobs, concurrency 4",
                 "CPU s"))
    rows.append(("others", "other processes on the machine during the throughput runs"
                 " (not the server, not Node): their CPU use", "% of CPUs"))
    for p in ("p50", "p95", "p99"):
        rows.append((f"lat_{p}",
                     f"add->start latency {p}, {lat_n:,} single adds 5 ms apart, idle worker, concurrency 1",
                     "ms"))
    for p in ("p50", "p99"):
        rows.append((f"late_{p}",
                     f"scheduled-job lateness {p} (start - run_at), {late_n} jobs over 10 s, concurrency 1",
                     "ms"))
    rows += [
        ("enq_add_job_c1", "enqueue: add_job, 1 job per transaction, 1 client (pgbench -T 10)*", "tx/s"),
        ("enq_add_job_c4", "enqueue: add_job, 1 job per transaction, 4 clients (pgbench -T 10)*", "tx/s"),
        ("enq_quiet_c1", "enqueue: add_job as above with graphile_worker.notify_on_add = off, 1 client", "tx/s"),
        ("enq_quiet_c4", "enqueue: add_job as above with graphile_worker.notify_on_add = off, 4 clients", "tx/s"),
        ("enq_add_jobs_10k", "enqueue: one add_jobs call with 10,000 specs, incl. commit*", "jobs/s"),
        ("ref_insert_c1", "reference: plain single-row INSERT transactions, 1 client (pgbench -T 10)", "tx/s"),
        ("ref_insert_c4", "reference: plain single-row INSERT transactions, 4 clients (pgbench -T 10)", "tx/s"),
        ("ref_skip_tx", "reference ceiling: DELETE 100 due rows ... FOR UPDATE SKIP LOCKED per tx, 4 clients", "tx/s"),
        ("ref_skip_rows", "reference ceiling: rows deleted by the SKIP LOCKED transactions, 4 clients", "rows/s"),
    ]
    rate = meta.get("sus_rate")
    rows += [
        ("sus_cap_prequeued", "sustained, calibration: capacity with pre-queued jobs (no-op, concurrency 4, above)", "jobs/s"),
        ("sus_cap_mixed", "sustained, calibration: jobs processed while unthrottled add_job clients enqueue", "jobs/s"),
    ]
    for m in range(1, 6):
        rows.append((f"sus_enq_m{m}",
                     f"sustained, concurrency 4, add_job target {rate}/s (80% of the lower capacity): enqueued in minute {m}",
                     "jobs/s"))
    for m in range(1, 6):
        rows.append((f"sus_tput_m{m}", f"sustained: processed in minute {m}", "jobs/s"))
    for m in range(1, 6):
        rows.append((f"sus_backlog_m{m}", f"sustained: jobs queued at the end of minute {m}", "jobs"))
    for m in range(1, 6):
        rows.append((f"sus_dead_m{m}",
                     f"sustained: n_dead_tup of _private_jobs at the end of minute {m}", "rows"))
    rows += [
        ("sus_size_start", "sustained: _private_jobs with its indexes, at start", "MB"),
        ("sus_size_end", "sustained: _private_jobs with its indexes, at end", "MB"),
        ("sus_autovacuum", "sustained: autovacuum runs on _private_jobs during the run", "runs"),
        ("sus_others", "sustained: other processes' CPU use (not server, not pgbench), per minute", "% of CPUs"),
        ("sus_rss_start", "sustained: job worker RSS at start (mean of the workers)", "MB"),
        ("sus_rss_end", "sustained: job worker RSS at end (mean of the workers)", "MB"),
        ("sus_anon_start", "sustained: job worker private memory (RssAnon) at start, mean", "MB"),
        ("sus_anon_end", "sustained: job worker private memory (RssAnon) at end, mean", "MB"),
    ]
    return rows


def fmt(v, unit):
    if unit in ("ms",):
        return f"{v:.3f}" if v < 10 else f"{v:.1f}"
    if unit == "CPU s":
        return f"{v:.3f}"
    if unit == "% of CPUs":
        return f"{v:.0f}"
    if unit == "MB":
        return f"{v:.1f}"
    return f"{v:,.0f}"


def cell(vals, unit):
    if not vals:
        return "-"
    med = statistics.median(vals)
    if len(vals) == 1:
        return fmt(med, unit)
    return f"{fmt(med, unit)} ({fmt(min(vals), unit)}-{fmt(max(vals), unit)})"


def cmd_report(tsv, outdir, mode):
    data, meta = {}, {}
    with open(tsv) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                continue
            key, side, val = parts
            if key == "meta":
                meta[side] = val
                continue
            try:
                data.setdefault((key, side), []).append(float(val))
            except ValueError:
                pass
    rows = [r for r in rows_for(meta)
            if any((r[0], s) in data for s, _ in SIDES)]
    header = ["workload", "ours", "Node default", "Node batching", "unit",
              "runs"]
    table = [header]
    for key, label, unit in rows:
        runs = "/".join(str(len(data.get((key, s), []))) for s, _ in SIDES)
        if key in ("others", "sus_others"):
            runs = "all"
        table.append([label] + [cell(data.get((key, s), []), unit) for s, _ in SIDES]
                     + [unit, runs])
    notes = []
    if any(r[0].startswith("enq_") for r in rows):
        notes.append("* enqueue rows are SQL calls, not worker code: 'ours' is the extension's"
                     " add_job/add_jobs, 'Node default' the same call against the schema that"
                     " graphile-worker's own migrations create")
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    sep = "-+-".join("-" * w for w in widths)
    for i, r in enumerate(table):
        print(" | ".join(c.ljust(widths[j]) if j == 0 else c.rjust(widths[j])
                         for j, c in enumerate(r)))
        if i == 0:
            print(sep)
    for n in notes:
        print(n)

    with open(os.path.join(outdir, "bench.csv"), "w", newline="") as f:
        w = csv.writer(f)
        hdr = ["key", "workload", "unit"]
        for s, _ in SIDES:
            hdr += [f"{s}_median", f"{s}_min", f"{s}_max", f"{s}_runs"]
        w.writerow(hdr)
        for key, label, unit in rows:
            out = [key, label, unit]
            for s, _ in SIDES:
                vals = data.get((key, s), [])
                if vals:
                    out += [f"{statistics.median(vals):.4f}", f"{min(vals):.4f}",
                            f"{max(vals):.4f}", len(vals)]
                else:
                    out += ["", "", "", 0]
            w.writerow(out)

    plot(rows, data, meta, os.path.join(outdir, "bench.png"), mode)


def plot(rows, data, meta, path, mode):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no PNG: python3-matplotlib is not installed)", file=sys.stderr)
        return
    trows = [r for r in rows if r[0].startswith("tput_noop") or r[0] == "tput_insert_c4"]
    if not trows:
        return
    short = []
    for key, label, unit in trows:
        if key == "tput_insert_c4":
            short.append("INSERT handler\nconcurrency 4")
        else:
            c = key.split("_c")[-1]
            short.append(f"no-op\nconcurrency {c}" + ("\n(Node perf preset)" if c == "24" else ""))
    colors = {"ours": "#1f77b4", "node_default": "#ff7f0e", "node_batch": "#2ca02c"}
    present = [(s, n) for s, n in SIDES if any((r[0], s) in data for r in trows)]
    allvals = [statistics.median(v) for (k, s), v in data.items()
               if any(k == r[0] for r in trows) and v]
    logscale = min(allvals) > 0 and max(allvals) / min(allvals) > 20
    fig, ax = plt.subplots(figsize=(max(7, 1.8 * len(trows) + 2.5), 6), dpi=110)
    width = 0.8 / len(present)
    for i, (side, name) in enumerate(present):
        xs, ys, lo, hi = [], [], [], []
        for j, (key, _, _) in enumerate(trows):
            vals = data.get((key, side), [])
            if not vals:
                continue
            med = statistics.median(vals)
            xs.append(j + (i - (len(present) - 1) / 2) * width)
            ys.append(med)
            lo.append(med - min(vals))
            hi.append(max(vals) - med)
        bars = ax.bar(xs, ys, width, label=name, color=colors[side],
                      yerr=[lo, hi], capsize=3, ecolor="#444444")
        for b, y, h in zip(bars, ys, hi):
            ax.annotate(f"{y:,.0f}", (b.get_x() + b.get_width() / 2, y + h),
                        ha="center", va="bottom", fontsize=8,
                        xytext=(0, 3), textcoords="offset points")
    ax.set_xticks(range(len(trows)))
    ax.set_xticklabels(short, fontsize=9)
    if logscale:
        ax.set_yscale("log")
        ax.set_ylabel("jobs per second, log scale (higher is better)")
        import math
        ax.set_ylim(10 ** math.floor(math.log10(min(allvals) * 0.5)),
                    10 ** math.ceil(math.log10(max(allvals) * 3)))
    else:
        ax.set_ylabel("jobs per second (higher is better)")
        ax.set_ylim(0, ax.get_ylim()[1] * 1.12)
    jobs = int(meta.get("jobs", 50000))
    ax.set_title("graphile_worker extension (ours) vs Node graphile-worker 0.18.0\n"
                 f"throughput over {jobs:,} pre-queued jobs ({meta.get('machine', '')})\n"
                 "bars: median, whiskers: min-max of the runs",
                 fontsize=10)
    ax.legend(loc="upper left", fontsize=9)
    ax.grid(axis="y", alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "cpu":
        cmd_cpu(args[0], args[1:])
    elif cmd == "timed":
        cmd_timed(args[0], args[1:])
    elif cmd == "busy":
        cmd_busy()
    elif cmd == "rss":
        cmd_rss(args)
    elif cmd == "report":
        cmd_report(args[0], args[1], args[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
