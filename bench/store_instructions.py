#!/usr/bin/env python3
"""Per-line cost of `watcher run`'s flood with the store (bench/store_flood.py) in CPU
instructions, this tree against another: figures that do not move with the machine's load.

Like bench/instructions.py: (I(2N lines) - I(N lines)) / N under callgrind (PYTHONHASHSEED=0), so
start-up drops out; `--max-groups` small enough that both runs are past the table's fill-up (every
new group then evicts one, and a commit every 2000 evictions writes them: the flood's steady
state). Also splits the count: instructions in libsqlite3 (which runs without the GIL) and the
rest (the Python side: what holds the GIL), and with `--no-store` the engine alone, to tell the
store's share.

    python bench/store_instructions.py --base /tmp/base-main --input /tmp/unique.log \\
        --lines 4000 --max-groups 1000
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
_LINE = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+(.*)$")


def counts(tree: Path, args: argparse.Namespace, lines: int, workdir: Path) -> tuple[int, int]:
    """(all instructions, those in libsqlite3) of one bench run by the code in `tree`."""
    out = workdir / f"cg.{abs(hash((str(tree), lines, args.no_store)))}"
    argv = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
        str(HERE / "store_flood.py"), str(args.input), "--lines", str(lines),
        "--max-groups", str(args.max_groups), "--refresh-every", str(args.refresh_every),
    ] + (["--no-store"] if args.no_store else [])  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(tree)}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench failed for {tree}:\n{proc.stderr[-2000:]}")
    annotated = subprocess.run(
        ["callgrind_annotate", "--threshold=100", str(out)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    total = sqlite = 0
    for line in annotated.splitlines():
        if "PROGRAM TOTALS" in line:
            total = int(line.split()[0].replace(",", ""))
        match = _LINE.match(line)
        if match and "libsqlite3" in match.group(2):
            sqlite += int(match.group(1).replace(",", ""))
    out.unlink()
    return total, sqlite


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--base", type=Path, required=True, help="the other checkout (its repo root)")
    ap.add_argument("--input", type=Path, required=True, help="unique error lines, >= 2N")
    ap.add_argument("--lines", type=int, default=4000, help="N (default 4000)")
    ap.add_argument("--max-groups", type=int, default=1000)
    ap.add_argument("--refresh-every", type=int, default=0, help="see store_flood.py")
    ap.add_argument("--no-store", action="store_true")
    ap.add_argument("--only-this", action="store_true", help="skip the base")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    trees = [("this", HERE.parent)] + ([] if args.only_this else [("base", args.base)])
    runs = [(tree, n) for _, tree in trees for n in (args.lines, 2 * args.lines)]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=2) as pool:
        got = list(pool.map(lambda r: counts(r[0], args, r[1], Path(tmp)), runs))
    per = {}
    for i, (name, _) in enumerate(trees):
        (t1, s1), (t2, s2) = got[2 * i], got[2 * i + 1]
        per[name] = ((t2 - t1) / args.lines, (s2 - s1) / args.lines)
        print(
            f"{name:5} per line {per[name][0]:9.0f} instructions"
            f" (libsqlite3 {per[name][1]:7.0f}, the rest {per[name][0] - per[name][1]:9.0f})"
        )
    if "base" in per:
        for what, k in (("all", 0), ("outside libsqlite3", None)):
            this = per["this"][0] - (per["this"][1] if k is None else 0)
            base = per["base"][0] - (per["base"][1] if k is None else 0)
            print(f"{what}: this / base {this / base:.3f} ({this - base:+,.0f} per line)")


if __name__ == "__main__":
    main()
