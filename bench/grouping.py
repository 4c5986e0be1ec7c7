"""Benchmark the template miner: accuracy and throughput on Loghub-2k, and memory under churn.

    python bench/grouping.py [--yardstick PATH] [--data DIR] [--drain3-python PATH] [--repeat N]
    python bench/grouping.py --memory [--lines N]

The accuracy and throughput figures come from the shared yardstick (grouping_accuracy.py), run
as a subprocess for watcher and, given --drain3-python, for the Drain3 baseline; the lines/s
include process start-up. --memory feeds N synthetic lines, each a new template, to a
TemplateMiner with the default cap and prints the peak RSS and the live cluster count.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
# the console script, as users run it; the same call through python -c when it is missing
_SCRIPT = Path(sys.executable).parent / "watcher"
_DIRECT = (
    "import sys; from watcher.group import template as t; "
    "{setup}sys.exit(t.run_stream(sys.stdin.buffer, sys.stdout.buffer))"
)
WATCHER_CMD = (
    f"{_SCRIPT} templates"
    if _SCRIPT.exists()
    else f"{sys.executable} -c '{_DIRECT.format(setup='')}'"
)
NO_CACHE_CMD = f"{sys.executable} -c '{_DIRECT.format(setup='t.CACHE_LIMIT = 0; ')}'"


def _yardstick(yardstick: Path, data: Path, args: list[str]) -> dict:
    """Run the yardstick with `args` and return its JSON result."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [sys.executable, str(yardstick), "--data", str(data), "--json", out.name, *args]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return json.loads(Path(out.name).read_text())


def _accuracy(yardstick: Path, data: Path, cmd: str) -> dict:
    return _yardstick(yardstick, data, ["--all", "--cmd", cmd])


def _throughput(yardstick: Path, data: Path, cmd: str, repeat: int) -> float:
    result = _yardstick(yardstick, data, ["--throughput", "--repeat", str(repeat), "--cmd", cmd])
    return float(result["results"][0]["lines_per_s"])


def _print_accuracy(results: dict[str, dict]) -> None:
    names = list(results)
    print(f"{'system':<12}" + "".join(f" {n + ' GA':>14} {n + ' FGA':>14}" for n in names))
    rows = {name: {r["system"]: r for r in res["rows"]} for name, res in results.items()}
    for system in rows[names[0]]:
        cells = "".join(
            f" {rows[n][system]['GA']:>14.4f} {rows[n][system]['FGA']:>14.4f}" for n in names
        )
        print(f"{system:<12}{cells}")
    avg = "".join(
        f" {results[n]['summary']['avg_GA']:>14.4f} {results[n]['summary']['avg_FGA']:>14.4f}"
        for n in names
    )
    print(f"{'AVERAGE':<12}{avg}")


def run_benchmark(args: argparse.Namespace) -> None:
    """Accuracy for each grouper, then throughput and the watcher/Drain3 ratio."""
    groupers = {"watcher": WATCHER_CMD}
    if args.drain3_python:
        groupers["drain3"] = f"{args.drain3_python} {args.yardstick.parent / 'drain3_grouper.py'}"
    _print_accuracy({n: _accuracy(args.yardstick, args.data, c) for n, c in groupers.items()})
    speeds = {
        n: _throughput(args.yardstick, args.data, c, args.repeat) for n, c in groupers.items()
    }
    speeds["watcher (caches off)"] = _throughput(
        args.yardstick, args.data, NO_CACHE_CMD, args.repeat
    )
    for name, lines_per_s in speeds.items():
        print(f"throughput {name:<22} {lines_per_s:>10.0f} lines/s (repeat {args.repeat})")
    if "drain3" in speeds:
        for name in ("watcher", "watcher (caches off)"):
            print(f"ratio {name} / drain3: {speeds[name] / speeds['drain3']:.2f}x")


def run_memory(lines: int) -> None:
    """Feed `lines` distinct templates to a default miner and print peak RSS and live clusters."""
    from watcher.group.template import TemplateMiner

    rng = random.Random(42)
    vocab = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 9))) for _ in range(5000)
    ]
    miner = TemplateMiner()
    evicted = 0

    def count(_cluster: object) -> None:
        nonlocal evicted
        evicted += 1

    miner.on_evict = count
    started = time.perf_counter()
    for _ in range(lines):
        miner.add(" ".join(rng.choices(vocab, k=8)))
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    print(f"lines {lines}  live clusters {len(miner)}  evicted {evicted}")
    print(f"peak RSS {peak_mb:.1f} MB  ({lines / elapsed:.0f} lines/s)")


def main() -> None:
    """Parse arguments and run the chosen benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--yardstick", type=Path, default=SHARED / "bench" / "grouping_accuracy.py")
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "loghub-2k")
    parser.add_argument("--drain3-python", help="python of a venv with drain3 installed")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.memory:
        run_memory(args.lines)
    else:
        run_benchmark(args)


if __name__ == "__main__":
    main()
