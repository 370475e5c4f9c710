#!/usr/bin/env python3
"""scripts/bench_report.py RESULTS.TSV OUTDIR: the report of scripts/bench.

Reads every figure of every run (run, target, metric, value), takes the
median per target and metric, and writes OUTDIR/report.md (the figures, their
spread between runs, keyfs's ratio to each peer, the goals of issue 4) and
the plots OUTDIR/*.png (with gnuplot). Standard library only.
"""

import functools
import os
import statistics
import subprocess
import sys
from collections import defaultdict

PEERS = ["tmpfs", "mergerfs-cached", "mergerfs-off", "bindfs"]
OPTIONAL = ["keyfs-writeback", "keyfs-baseline"]  # shown when measured

# metric -> (what it is, unit, higher is better)
FS_METRICS = {
    "seq_write": ("sequential write 1 MiB writes + fsync", "MiB/s", True),
    "seq_read_uncached": ("sequential read, uncached", "MiB/s", True),
    "seq_read_cached": ("sequential read, cached", "MiB/s", True),
    "rand_read_cached": ("4 KiB random read, cached", "reads/s", True),
    "rand_read_uncached": ("4 KiB random read, uncached", "reads/s", True),
    "create": ("create + write 4 KiB + close", "files/s", True),
    "stat_warm": ("stat, warm", "stats/s", True),
    "read": ("open + read 4 KiB + close", "files/s", True),
    "readdir": ("readdir", "entries/s", True),
    "stat_idle": ("stat, after 2 s idle", "stats/s", True),
    "stat_cold": ("stat, cold (first after mount)", "stats/s", True),
    "unlink": ("unlink", "files/s", True),
    "remount_s": ("mount time with the small files", "s", False),
}

# (goal text, metric, peer, minimum ratio keyfs/peer)
GOALS = [
    ("cached sequential read >= 0.9x mergerfs-cached", "seq_read_cached", "mergerfs-cached", 0.9),
    ("4 KiB cached random read >= 0.9x mergerfs-cached", "rand_read_cached", "mergerfs-cached", 0.9),
    ("create+write+close >= 2x bindfs", "create", "bindfs", 2.0),
    ("open+read+close >= 2x bindfs", "read", "bindfs", 2.0),
    ("cold stat >= 1.5x bindfs", "stat_cold", "bindfs", 1.5),
    ("unlink >= 1.5x bindfs", "unlink", "bindfs", 1.5),
    ("sequential write (journal, everysec) >= 1.0x mergerfs-cached", "seq_write", "mergerfs-cached", 1.0),
]


def load(path):
    runs = defaultdict(list)  # (target, metric) -> [values]
    with open(path) as f:
        next(f)
        for line in f:
            run, target, metric, value = line.rstrip("\n").split("\t")
            runs[(target, metric)].append(float(value))
    return runs


def fmt(v):
    if v is None:
        return "—"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


class Figures:
    def __init__(self, runs):
        self.runs = runs
        # The columns: keyfs, then every other target this run measured
        # (keyfs variants first, then the peers), in a fixed order.
        measured = {t for (t, _) in runs}
        variants = sorted(t for t in measured if t.startswith("keyfs:"))
        self.peers = [t for t in OPTIONAL + variants + PEERS if t in measured]
        self.targets = ["keyfs"] + self.peers

    def median(self, target, metric):
        values = self.runs.get((target, metric))
        return statistics.median(values) if values else None

    def spread(self, target, metric):
        """(max - min) / median, in percent."""
        values = self.runs.get((target, metric))
        if not values or len(values) < 2:
            return None
        m = statistics.median(values)
        return 100.0 * (max(values) - min(values)) / m if m else None

    def ratio(self, metric, peer, higher_better=True):
        """keyfs's advantage over peer: > 1 means keyfs is better."""
        k, p = self.median("keyfs", metric), self.median(peer, metric)
        if not k or not p:
            return None
        return k / p if higher_better else p / k


def fs_table(fig):
    head = ["workload", "unit"] + fig.targets + ["keyfs spread"] + [f"keyfs ÷ {p}" for p in fig.peers]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for metric, (what, unit, higher) in FS_METRICS.items():
        cells = [what, unit]
        cells += [fmt(fig.median(t, metric)) for t in fig.targets]
        s = fig.spread("keyfs", metric)
        cells.append("—" if s is None else f"{s:.0f}%")
        for p in fig.peers:
            r = fig.ratio(metric, p, higher)
            cells.append("—" if r is None else f"{r:.2f}")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def spread_summary(fig):
    spreads = [(fig.spread(t, m), t, m) for (t, m) in fig.runs if fig.spread(t, m) is not None]
    if not spreads:
        return "One run: no spread."
    spreads.sort()
    mid = statistics.median(s for s, _, _ in spreads)
    worst = spreads[-3:][::-1]
    listed = ", ".join(f"{t} {m} {s:.0f}%" for s, t, m in worst)
    return (f"Spread between runs ((max − min) / median) over all {len(spreads)} figures: "
            f"median {mid:.0f}%; largest {listed}.")


def memory_table(fig):
    k_rss = fig.median("keyfs", "mem_rss_per_file")
    k_acc = fig.median("keyfs", "mem_accounted_per_file")
    r_used = fig.median("redis", "mem_used_per_key")
    r_rss = fig.median("redis", "mem_rss_per_key")
    k_rep = fig.median("keyfs", "replay_files_per_s")
    r_rep = fig.median("redis", "replay_files_per_s")

    def ratio(a, b):
        return "—" if not a or not b else f"{a / b:.2f}"

    return "\n".join([
        "| figure | keyfs | redis | keyfs ÷ redis |",
        "|---|---|---|---|",
        f"| resident bytes per file / key (RSS growth) | {fmt(k_rss)} | {fmt(r_rss)} | {ratio(k_rss, r_rss)} |",
        f"| keyfs accounted bytes per file / Redis used_memory per key | {fmt(k_acc)} | {fmt(r_used)} | {ratio(k_acc, r_used)} |",
        f"| keyfs RSS per file / Redis used_memory per key (the goal's pair) | {fmt(k_rss)} | {fmt(r_used)} | {ratio(k_rss, r_used)} |",
        f"| replay at start, files (keys) per second | {fmt(k_rep)} | {fmt(r_rep)} | {ratio(k_rep, r_rep)} |",
    ])


def goals_table(fig):
    rows = ["| goal | keyfs | peer | ratio | met |", "|---|---|---|---|---|"]
    for text, metric, peer, minimum in GOALS:
        r = fig.ratio(metric, peer)
        rows.append(f"| {text} | {fmt(fig.median('keyfs', metric))} | {fmt(fig.median(peer, metric))} | "
                    f"{'—' if r is None else f'{r:.2f}'} | {'yes' if r and r >= minimum else 'no'} |")
    k = fig.median("keyfs", "mem_rss_per_file")
    r = fig.median("redis", "mem_used_per_key")
    if k and r:
        rows.append(f"| memory per small file <= Redis used_memory per key | {fmt(k)} B | {fmt(r)} B | "
                    f"{k / r:.2f} | {'yes' if k <= r else 'no'} |")
    return "\n".join(rows)


def plot(fig, out):
    """Grouped bar charts with gnuplot; returns the PNG names written."""
    groups = [
        ("bandwidth.png", "Sequential IO (MiB/s, median)", ["seq_write", "seq_read_uncached", "seq_read_cached"], False),
        ("operations.png", "Operations per second (median, log scale)",
         ["create", "stat_warm", "stat_idle", "stat_cold", "read", "unlink", "readdir", "rand_read_cached", "rand_read_uncached"], True),
    ]
    written = []
    for name, title, metrics, log in groups:
        data = os.path.join(out, name.replace(".png", ".dat"))
        with open(data, "w") as f:
            f.write("metric " + " ".join(fig.targets) + "\n")
            for m in metrics:
                f.write(m + " " + " ".join(fmt_plain(fig.median(t, m)) for t in fig.targets) + "\n")
        script = "\n".join([
            "set terminal pngcairo size 1100,500 noenhanced" if has_cairo() else "set terminal png size 1100,500 noenhanced",
            f"set output '{os.path.join(out, name)}'",
            f"set title '{title}'",
            "set style data histograms", "set style histogram clustered gap 1",
            "set style fill solid 0.9 border -1", "set key outside right top",
            "set xtics rotate by -20", "set grid ytics",
            "set logscale y" if log else "set yrange [0:*]",
            f"plot for [i=2:{len(fig.targets) + 1}] '{data}' using i:xtic(1) title columnheader(i)",
        ])
        if run_gnuplot(script):
            written.append(name)
    mem = os.path.join(out, "memory.dat")
    with open(mem, "w") as f:
        f.write("figure bytes\n")
        for label, target, metric in [("keyfs_RSS/file", "keyfs", "mem_rss_per_file"),
                                      ("keyfs_accounted/file", "keyfs", "mem_accounted_per_file"),
                                      ("redis_used_memory/key", "redis", "mem_used_per_key"),
                                      ("redis_RSS/key", "redis", "mem_rss_per_key")]:
            f.write(f"{label} {fmt_plain(fig.median(target, metric))}\n")
    script = "\n".join([
        "set terminal pngcairo size 800,450 noenhanced" if has_cairo() else "set terminal png size 800,450 noenhanced",
        f"set output '{os.path.join(out, 'memory.png')}'",
        "set title 'Memory per 100-byte file / key (bytes, median)'",
        "set style data histograms", "set style fill solid 0.9 border -1", "set boxwidth 0.7",
        "set yrange [0:*]", "set grid ytics", "unset key",
        f"plot '{mem}' using 2:xtic(1)",
    ])
    if run_gnuplot(script):
        written.append("memory.png")
    return written


def fmt_plain(v):
    return "NaN" if v is None else f"{v:.6g}"


@functools.lru_cache(maxsize=None)
def has_cairo():
    try:
        terms = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True).stderr
    except OSError:
        return False
    return "pngcairo" in terms


def run_gnuplot(script):
    try:
        result = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
    except OSError:
        print("bench_report: gnuplot not found: no plots", file=sys.stderr)
        return False
    if result.returncode != 0:
        print("bench_report: gnuplot failed:\n" + result.stderr, file=sys.stderr)
        return False
    return True


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: bench_report.py RESULTS.TSV OUTDIR")
    tsv, out = sys.argv[1], sys.argv[2]
    fig = Figures(load(tsv))
    machine = ""
    path = os.path.join(out, "machine.txt")
    if os.path.exists(path):
        machine = open(path).read().strip()
    pngs = plot(fig, out)
    report = "\n\n".join([
        "# keyfs benchmark report",
        "\n".join("    " + line for line in machine.splitlines()),
        "## Filesystem workloads (median of runs; ratios: > 1 means keyfs is better)",
        fs_table(fig),
        spread_summary(fig),
        "## Memory and replay (100-byte files)",
        memory_table(fig),
        "## Goals (issue 4)",
        goals_table(fig),
        "\n".join(f"![{p}]({p})" for p in pngs),
    ]) + "\n"
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(report)
    print(report)


if __name__ == "__main__":
    main()
