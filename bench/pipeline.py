#!/usr/bin/env python3
"""Full-pipeline benchmark: `watcher replay` over generated logs; prints lines/s and peak RSS.

Modes (both by default):
  throughput  N mixed lines (JSON, logfmt, plain; ~5 % errors incl. multi-line traces) from
              bench/genlogs.py, replayed by `watcher replay --emit report` in a child process
              pinned to one core (taskset, when present). A baseline in the same run — a child
              that only reads and splits the same file — gives the ratio.
  memory      N error lines that are each a distinct template (random words), replayed with
              the default group cap: peak RSS shows that the cap and eviction bound memory.

Usage: python bench/pipeline.py [--lines 1000000] [--distinct 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from genlogs import generate  # noqa: E402

WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "amber",
    "basil",
    "cedar",
    "dune",
]


def write_mixed(path: Path, n: int, seed: int) -> int:
    with path.open("w", encoding="utf-8") as fh:
        count = 0
        for line in generate(n, seed, 0.05):
            fh.write(line + "\n")
            count += 1
    return count


def write_distinct(path: Path, n: int, seed: int) -> int:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            words = " ".join(rng.choice(WORDS) for _ in range(6))
            # the words differ per line, so every line is a template of its own
            fh.write(f"2026-11-21T10:00:{i % 60:02d}Z ERROR {words} {rng.choice(WORDS)}x{i}\n")
    return n


def child(argv: list[str]) -> tuple[float, int, int]:
    """Run argv; return wall seconds, peak RSS (KiB) of that child, exit code."""
    pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(pin + argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode(errors="replace")[-2000:])
    # ru_maxrss of children is the max over all children so far: run the biggest last
    return wall, max(rss, before), proc.returncode


def watcher_cmd() -> list[str]:
    exe = shutil.which("watcher")
    return [exe] if exe else [sys.executable, "-m", "watcher"]


BASELINE = (
    "import sys\n"
    "n = 0\n"
    "with open(sys.argv[1], 'rb') as fh:\n"
    "    for chunk in iter(lambda: fh.read(1 << 20), b''):\n"
    "        n += len(chunk.decode('utf-8', 'replace').split('\\n'))\n"
)


def throughput(tmp: Path, n: int, seed: int) -> None:
    path = tmp / "mixed.log"
    t0 = time.perf_counter()
    lines = write_mixed(path, n, seed)
    print(
        f"# generated {lines:,} lines ({path.stat().st_size / 1e6:.1f} MB) "
        f"in {time.perf_counter() - t0:.1f}s"
    )
    base_wall, _, _ = child([sys.executable, "-c", BASELINE, str(path)])
    wall, rss, rc = child(
        [*watcher_cmd(), "replay", str(path), "--no-progress", "--log-level", "warning"]
    )
    print(f"{'run':<28} {'lines':>10} {'wall_s':>8} {'lines/s':>10} {'peak_RSS_MB':>12}")
    print(
        f"{'baseline: read+split only':<28} {lines:>10,} {base_wall:>8.2f} "
        f"{lines / base_wall:>10,.0f} {'':>12}"
    )
    print(
        f"{'watcher replay (1 core)':<28} {lines:>10,} {wall:>8.2f} {lines / wall:>10,.0f} "
        f"{rss / 1024:>12.0f}"
    )
    print(f"# ratio watcher/baseline: {base_wall / wall:.3f}; exit code {rc}")


def memory(tmp: Path, n: int, seed: int) -> None:
    path = tmp / "distinct.log"
    write_distinct(path, n, seed)
    wall, rss, rc = child(
        [*watcher_cmd(), "replay", str(path), "--no-progress", "--log-level", "warning"]
    )
    print(
        f"distinct templates: {n:,} error lines, each its own template: wall {wall:.1f}s, "
        f"{n / wall:,.0f} lines/s, peak RSS {rss / 1024:.0f} MB (exit {rc})"
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--distinct", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", choices=("throughput", "memory"), default=None)
    ap.add_argument("--keep", metavar="DIR", default=None, help="write the inputs here")
    args = ap.parse_args()
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="watcher-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        if args.only in (None, "throughput"):
            throughput(tmp, args.lines, args.seed)
        if args.only in (None, "memory"):
            memory(tmp, args.distinct, args.seed)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
