#!/usr/bin/env python3
"""Per-line cost of `watcher replay` in CPU instructions, this tree against another: A/B figures
that do not move with the machine's load.

Wall-clock A/B runs on a shared 2-core machine swing by ±20 %, more than the changes they are
meant to judge. valgrind's callgrind counts the instructions a run executes: the same input on
the same code gives the same count (PYTHONHASHSEED=0) whatever else the machine is doing. The
per-line figure is (I(2N lines) - I(N lines)) / N, so interpreter start-up and imports (fixed
costs, larger in a tree with more modules) drop out.

    python bench/instructions.py --base /path/to/other/checkout --input logs.txt [--lines 20000]

The input's first 2N lines are used (bench/genlogs.py writes a suitable mix). Needs valgrind
(`apt-get install valgrind`); runs four callgrind processes, two at a time (2 to 5 minutes).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
_COLLECTED = re.compile(r"Collected : (\d+)")
# replay through the CLI entry point of whichever tree is first on sys.path
_RUNNER = (
    "import sys\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "from watcher.cli import main\n"
    "sys.argv = ['watcher', 'replay', sys.argv[2], '--emit', 'events', '-o', '/dev/null',"
    " '--no-progress']\n"
    "try:\n    main()\nexcept SystemExit:\n    pass\n"
)


def instructions(tree: Path, log: Path, workdir: Path) -> int:
    """Instructions callgrind counts for one replay of `log` by the code in `tree`."""
    out = workdir / f"cg.{os.getpid()}.{abs(hash((str(tree), str(log))))}"
    proc = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-c",
            _RUNNER,
            str(tree),
            str(log),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        check=False,
    )
    match = _COLLECTED.search(proc.stderr)
    if match is None:
        raise SystemExit(f"callgrind gave no count for {tree}:\n{proc.stderr[-2000:]}")
    return int(match.group(1))


def head(src: Path, n: int, dest: Path) -> Path:
    with src.open("rb") as fin, dest.open("wb") as fout:
        for i, line in enumerate(fin):
            if i >= n:
                break
            fout.write(line)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--base", type=Path, required=True, help="the other checkout (its repo root)")
    ap.add_argument("--input", type=Path, required=True, help="a log file of at least 2N lines")
    ap.add_argument("--lines", type=int, default=20000, help="N (default 20000)")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    this = HERE.parent
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        small = head(args.input, args.lines, work / "n.log")
        large = head(args.input, 2 * args.lines, work / "2n.log")
        runs = [(tree, log) for tree in (args.base, this) for log in (small, large)]
        with ThreadPoolExecutor(max_workers=2) as pool:
            counts = list(pool.map(lambda r: instructions(r[0], r[1], work), runs))
    per_line = {}
    for name, (n1, n2) in (("base", counts[0:2]), ("this", counts[2:4])):
        per_line[name] = (n2 - n1) / args.lines
        print(
            f"{name:5} start-up+N {n1 / 1e6:9.1f} M   per line {per_line[name]:9.0f} instructions"
        )
    ratio = per_line["this"] / per_line["base"]
    print(f"per-line cost, this / base: {ratio:.3f} ({(ratio - 1) * 100:+.1f} %)")


if __name__ == "__main__":
    main()
