#!/usr/bin/env python3
"""Per-line cost of `watcher replay` in CPU instructions, this tree against another: A/B figures
that do not move with the machine's load.

Wall-clock A/B runs on a shared 2-core machine swing by ±20 %, more than the changes they are
meant to judge. valgrind's callgrind counts the instructions a run executes: the same input on
the same code gives the same count (PYTHONHASHSEED=0) whatever else the machine is doing. The
per-line figure is (I(2N lines) - I(N lines)) / N, so interpreter start-up and imports (fixed
costs, larger in a tree with more modules) drop out.

    python bench/instructions.py --base /path/to/other/checkout --input logs.txt [--lines 20000]
        [--config cfg.toml] [--workers 2]

The input's first 2N lines are used (bench/genlogs.py writes a suitable mix). Needs valgrind
(`apt-get install valgrind`); runs four callgrind processes, two at a time (2 to 5 minutes).

`--emit report` replays as bench/ab_speed.py's flood does (no event printed, the report at the
end): the JSON and redaction of `--emit events` are a third of a unique error's cost.
`--config` is passed as `watcher -c`: a flood of unique errors needs `persist_interval = 3600`
there, since the default 5-s consolidation is paced by the wall clock and callgrind runs ~50x
slower, so the count would depend on how slow the run was. `--workers N` cuts each head into N
files (contiguous parts, one source each) replayed with `[watcher] workers = N` added to the
config: the workers are interpreters of their own (`python -c`, see watcher/workers/launch.py),
which callgrind does not follow (--trace-children=no), so the count is the parent's alone (its
mining, group table and metrics per event). The parent sees the two workers' shipments in the
order they arrive, so its count moves a little from run to run (check with two runs).
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
# (argv: the tree, the config or "", what to emit, then the log files)
_RUNNER = (
    "import sys\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "from watcher.cli import main\n"
    "config = ['-c', sys.argv[2]] if sys.argv[2] else []\n"
    "emit = ['--emit', sys.argv[3]] if sys.argv[3] != 'report' else []\n"
    "sys.argv = ['watcher', *config, 'replay', *sys.argv[4:], *emit, '-o',"
    " '/dev/null', '--no-progress']\n"
    "try:\n    main()\nexcept SystemExit:\n    pass\n"
)


def instructions(
    tree: Path, logs: list[Path], workdir: Path, config: Path | None = None, emit: str = "events"
) -> int:
    """Instructions callgrind counts for one replay of `logs` by the code in `tree` (the
    parent process only: workers are not traced)."""
    out = workdir / f"cg.{os.getpid()}.{abs(hash((str(tree), *map(str, logs))))}"
    proc = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--trace-children=no",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-c",
            _RUNNER,
            str(tree),
            str(config) if config is not None else "",
            emit,
            *map(str, logs),
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


def cut(log: Path, parts: int, stem: Path) -> list[Path]:
    """`log` as `parts` files of contiguous lines (each keeps its lines' order)."""
    lines = log.read_bytes().splitlines(keepends=True)
    size = -(-len(lines) // parts)
    out = []
    for i in range(parts):
        part = stem.with_name(f"{stem.name}.part{i}.log")
        part.write_bytes(b"".join(lines[i * size : (i + 1) * size]))
        out.append(part)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--base", type=Path, required=True, help="the other checkout (its repo root)")
    ap.add_argument("--input", type=Path, required=True, help="a log file of at least 2N lines")
    ap.add_argument("--lines", type=int, default=20000, help="N (default 20000)")
    ap.add_argument("--config", type=Path, help="a config file, passed as `watcher -c`")
    ap.add_argument(
        "--emit",
        choices=("events", "report"),
        default="events",
        help="replay's output: every event as JSON (default) or the report (the flood bench's)",
    )
    ap.add_argument(
        "--workers", type=int, default=1, help="N > 1: the heads cut in N files, workers = N"
    )
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    this = HERE.parent
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        small = head(args.input, args.lines, work / "n.log")
        large = head(args.input, 2 * args.lines, work / "2n.log")
        config = args.config
        inputs = [[small], [large]]
        if args.workers > 1:
            inputs = [cut(log, args.workers, log) for log in (small, large)]
            config = work / "workers.toml"
            text = args.config.read_text() if args.config is not None else ""
            config.write_text(_with_workers(text, args.workers))
        runs = [(tree, logs) for tree in (args.base, this) for logs in inputs]
        with ThreadPoolExecutor(max_workers=2) as pool:
            counts = list(
                pool.map(lambda r: instructions(r[0], r[1], work, config, args.emit), runs)
            )
    per_line = {}
    for name, (n1, n2) in (("base", counts[0:2]), ("this", counts[2:4])):
        per_line[name] = (n2 - n1) / args.lines
        print(
            f"{name:5} start-up+N {n1 / 1e6:9.1f} M   per line {per_line[name]:9.0f} instructions"
        )
    ratio = per_line["this"] / per_line["base"]
    print(f"per-line cost, this / base: {ratio:.3f} ({(ratio - 1) * 100:+.1f} %)")


def _with_workers(config: str, workers: int) -> str:
    """The config's text with `workers = N` in its [watcher] table (added when it has none)."""
    if re.search(r"^\s*workers\s*=", config, re.M):
        raise SystemExit("--workers: the config sets workers already")
    if re.search(r"^\[watcher\]\s*$", config, re.M):
        return re.sub(
            r"^\[watcher\]\s*$", f"[watcher]\nworkers = {workers}", config, count=1, flags=re.M
        )
    return f"[watcher]\nworkers = {workers}\n\n{config}"


if __name__ == "__main__":
    main()
