#!/usr/bin/env python3
"""`[watcher] workers`: `watcher replay` of mixed lines split across file sources, A/B in one run.

Each round runs, interleaved, `watcher replay` with workers = 1 (one process, as before), 2 and
"auto" over the same files (N mixed lines from bench/genlogs.py, ~5 % errors with multi-line
traces, split across --files file sources) and prints per run: lines/s (wall), CPU seconds of the
parent and of all its descendants (the workers; a fork server and resource tracker in trees
before 2026-12-07's issue 15 memory work), and the peak of their summed resident memory. The
machine is shared: read the CPU seconds and the ratios; the medians over rounds go in
bench/RESULTS.md. `--base TREE` adds a contender to every round: workers = 2 run from another
source tree (a `git archive` of the base commit), for an A/B in one run.

Memory mode: the 1M-distinct-templates attack (bench/pipeline.py's input, every line its own
template) split across the same number of files, replayed with workers = 1 and 2 (`--memory-workers`
picks): peak memory of the parent and the workers together (issue 15 target: <= 300 MB), as
summed RSS (which counts a page two processes share once per process) and summed PSS (shared
pages split between their processes: the physical memory the tree takes), and at the peak of
the summed RSS, the RSS (PSS) of each role: parent, workers, helpers (fork server, resource
tracker).

CPU and RSS come from /proc, sampled every --sample seconds over the whole process tree (a
process's last slice before it exits is missed: at most one sample period per process).

Usage: python bench/workers.py [--lines 1000000] [--files 2] [--rounds 3] [--distinct 1000000]
       [--only throughput|memory] [--keep DIR] [--base TREE] [--memory-workers 1 2 auto]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from genlogs import generate  # noqa: E402
from pipeline import watcher_cmd, write_distinct  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Tree:
    """What /proc showed of one process tree: CPU per process, peak summed RSS."""

    root: int
    pss: bool = False  # also the proportional set size (shared pages counted once)
    cpu: dict[int, float] = field(default_factory=dict)
    peak_rss: int = 0
    peak_pss: int = 0
    processes: set[int] = field(default_factory=set)
    # per role (parent, its helpers such as the fork server, the workers): the RSS and PSS
    # each process of that role had at the tree's peak summed RSS, added up
    at_peak: dict[str, tuple[int, int]] = field(default_factory=dict)

    def sample(self) -> None:
        total = shared = 0
        roles: dict[str, tuple[int, int]] = {}
        for pid, depth in _descendants(self.root):
            stat = _read(f"/proc/{pid}/stat")
            statm = _read(f"/proc/{pid}/statm")
            if not stat or not statm:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            self.cpu[pid] = (int(fields[11]) + int(fields[12])) / TICK
            rss = int(statm.split()[1]) * PAGE
            total += rss
            self.processes.add(pid)
            pss = _pss(pid) if self.pss else 0
            shared += pss
            role = "parent" if depth == 0 else "workers" if _is_worker(pid, depth) else "helpers"
            old = roles.get(role, (0, 0))
            roles[role] = (old[0] + rss, old[1] + pss)
        if total > self.peak_rss:
            self.at_peak = roles
        self.peak_rss = max(self.peak_rss, total)
        self.peak_pss = max(self.peak_pss, shared)

    def roles(self) -> str:
        """RSS (PSS) in MB of each role at the peak of the summed RSS."""
        return ", ".join(
            f"{role} {rss / 2**20:.0f} ({pss / 2**20:.0f})"
            for role, (rss, pss) in sorted(self.at_peak.items())
        )

    @property
    def parent_cpu(self) -> float:
        return self.cpu.get(self.root, 0.0)

    @property
    def total_cpu(self) -> float:
        return sum(self.cpu.values())


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as fh:
            return fh.read()
    except OSError:
        return ""


def _is_worker(pid: int, depth: int) -> bool:
    """A worker: forked by a fork server (depth 2), or an interpreter running the worker."""
    return depth >= 2 or "watcher.workers.child" in _read(f"/proc/{pid}/cmdline")


def _pss(pid: int) -> int:
    for line in _read(f"/proc/{pid}/smaps_rollup").splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def _descendants(root: int) -> list[tuple[int, int]]:
    """Every process of the tree with its depth (0: root; 1: its children such as the fork
    server and the resource tracker; 2: the workers the fork server forked)."""
    out, todo = [], [(root, 0)]
    while todo:
        pid, depth = todo.pop()
        out.append((pid, depth))
        for task in _tasks(pid):
            children = _read(f"/proc/{pid}/task/{task}/children").split()
            todo.extend((int(c), depth + 1) for c in children)
    return out


def _tasks(pid: int) -> list[str]:
    try:
        return os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []


def replay(
    files: list[Path], config: Path, period: float, *, pss: bool = False, tree: str | None = None
) -> tuple[float, Tree, int]:
    """Run `watcher replay` over `files` (the watcher of the source `tree` when given, first on
    PYTHONPATH); wall seconds, its process tree's figures, exit code."""
    argv = [*watcher_cmd(), "replay", "--config", str(config), *map(str, files)]
    argv += ["--no-progress", "--log-level", "warning"]
    env = None
    if tree is not None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([tree, os.environ.get("PYTHONPATH", "")]),
        }
        argv = [sys.executable, "-m", "watcher", *argv[len(watcher_cmd()) :]]
    t0 = time.perf_counter()
    # (in the tree: `python -m` puts the working directory first on sys.path)
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tree
    )
    tree = Tree(proc.pid, pss=pss)
    while proc.poll() is None:
        tree.sample()
        time.sleep(period)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.read().decode(errors="replace")[-2000:])
    return wall, tree, proc.returncode


def configs(tmp: Path) -> dict[str, Path]:
    out = {}
    for label, value in (("workers=1", "1"), ("workers=2", "2"), ("workers=auto", '"auto"')):
        path = tmp / f"{label.replace('=', '-')}.toml"
        path.write_text(f"[watcher]\nworkers = {value}\n")
        out[label] = path
    return out


def split_mixed(tmp: Path, n: int, files: int, seed: int) -> list[Path]:
    paths = [tmp / f"mixed-{i}.log" for i in range(files)]
    per = n // files
    for i, path in enumerate(paths):
        with path.open("w", encoding="utf-8") as fh:
            for line in generate(per, seed + i, 0.05):
                fh.write(line + "\n")
    return paths


def throughput(
    tmp: Path, n: int, files: int, rounds: int, seed: int, period: float, base: str | None = None
) -> None:
    t0 = time.perf_counter()
    paths = split_mixed(tmp, n, files, seed)
    lines = sum(1 for p in paths for _ in p.open("rb"))
    size = sum(p.stat().st_size for p in paths) / 1e6
    print(
        f"# {lines:,} mixed lines ({size:.1f} MB) in {files} file sources, generated in "
        f"{time.perf_counter() - t0:.1f}s; cores usable: {len(os.sched_getaffinity(0))}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    runs: dict[str, tuple[Path, str | None]] = {k: (v, None) for k, v in configs(tmp).items()}
    if base is not None:  # the base tree's workers = 2, as a contender of the same rounds
        runs["base workers=2"] = (runs["workers=2"][0], base)
    results: dict[str, list[tuple[float, Tree]]] = {label: [] for label in runs}
    head = f"{'round':>5} {'run':<14} {'wall_s':>7} {'lines/s':>9} {'cpu_parent':>10} "
    print(head + f"{'cpu_all':>8} {'procs':>5} {'peak_RSS_MB':>11}")
    for r in range(rounds):
        order = list(runs) if r % 2 == 0 else list(reversed(runs))  # interleaved both ways
        for label in order:
            config, tree_dir = runs[label]
            wall, tree, rc = replay(paths, config, period, tree=tree_dir)
            results[label].append((wall, tree))
            print(
                f"{r + 1:>5} {label:<14} {wall:>7.2f} {lines / wall:>9,.0f} "
                f"{tree.parent_cpu:>10.2f} {tree.total_cpu:>8.2f} {len(tree.processes):>5} "
                f"{tree.peak_rss / 2**20:>11.0f}" + ("" if rc == 0 else f"  exit {rc}")
            )
    print("# medians")
    base = statistics.median(w for w, _ in results["workers=1"])
    base_cpu = statistics.median(t.total_cpu for _, t in results["workers=1"])
    for label, runs_ in results.items():
        wall = statistics.median(w for w, _ in runs_)
        cpu = statistics.median(t.total_cpu for _, t in runs_)
        parent = statistics.median(t.parent_cpu for _, t in runs_)
        rss = statistics.median(t.peak_rss for _, t in runs_) / 2**20
        print(
            f"{label:<14} {lines / wall:>9,.0f} lines/s  wall x{base / wall:.2f}  "
            f"CPU {cpu:.2f}s (x{cpu / base_cpu:.2f} of workers=1; parent {parent:.2f}s = "
            f"{parent / wall:.0%} of a core)  peak RSS {rss:.0f} MB  "
            f"CPU-bound lines/s on {len(os.sched_getaffinity(0))} idle cores "
            f"<= {lines / max(parent, cpu / len(os.sched_getaffinity(0))):,.0f}"
        )


def memory(
    tmp: Path, n: int, files: int, seed: int, period: float, which: tuple[str, ...] = ("1", "2")
) -> None:
    whole = tmp / "distinct.log"
    write_distinct(whole, n, seed)
    paths = [tmp / f"distinct-{i}.log" for i in range(files)]
    handles = [p.open("w", encoding="utf-8") for p in paths]
    with whole.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            handles[i % files].write(line)
    for handle in handles:
        handle.close()
    whole.unlink()
    for label, config in configs(tmp).items():
        if label.removeprefix("workers=") not in which:
            continue
        wall, tree, rc = replay(paths, config, max(period, 0.05), pss=True)
        print(
            f"distinct templates, {label}: {n:,} error lines in {files} files, each its own "
            f"template: wall {wall:.1f}s, {n / wall:,.0f} lines/s, CPU {tree.total_cpu:.1f}s "
            f"(parent {tree.parent_cpu:.1f}s); {len(tree.processes)} processes together: peak "
            f"RSS {tree.peak_rss / 2**20:.0f} MB, peak PSS {tree.peak_pss / 2**20:.0f} MB "
            f"(exit {rc}); at the RSS peak, MB RSS (PSS): {tree.roles()}"
        )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--distinct", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sample", type=float, default=0.02, help="seconds between /proc samples")
    ap.add_argument(
        "--base",
        metavar="TREE",
        default=None,
        help="also run workers = 2 from this source tree (first on PYTHONPATH) in every round",
    )
    ap.add_argument("--only", choices=("throughput", "memory"), default=None)
    ap.add_argument("--keep", metavar="DIR", default=None, help="write the inputs here")
    ap.add_argument(
        "--memory-workers",
        nargs="+",
        default=["1", "2"],
        help="the workers settings the memory mode runs (1 2 auto)",
    )
    args = ap.parse_args()
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="watcher-workers-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        if args.only in (None, "throughput"):
            throughput(tmp, args.lines, args.files, args.rounds, args.seed, args.sample, args.base)
        if args.only in (None, "memory"):
            memory(
                tmp, args.distinct, args.files, args.seed, args.sample, tuple(args.memory_workers)
            )
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
