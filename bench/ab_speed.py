"""A/B speed of new text and floods (issue 15): this tree against a base tree and Drain3.

On a machine shared with other work, absolute figures drift by tens of percent between minutes,
so every figure here is a ratio measured in one run: the contenders take turns, each round runs
each of them once on the same input, and the median of the rounds is printed with its spread.

  templates  `watcher templates` on Loghub-2k text seen once (x1), and a renamed xN corpus
             in which no template repeats (each copy's letters rotated), against Drain3
             (`drain3_grouper.py`) and the base tree; also checks the base and this tree print
             the same bytes.
  flood      `watcher replay` of N unique error lines (bench/loadgen.py --unique: the first
             word differs, so every message has a bucket of its own) and of N unique lines that
             share their first words (one bucket per service: the index's case).

    PY=.venv/bin/python
    git archive 02d1272 | (mkdir -p /tmp/base && tar -x -C /tmp/base)
    $PY bench/ab_speed.py templates --base /tmp/base --drain3-python /tmp/venv-drain3/bin/python
    $PY bench/ab_speed.py flood --base /tmp/base --lines 200000

`watcher run` with the store and the memory cap are measured by bench/reliability.py
(`--only cardinality`), run once with PYTHONPATH=<base> and once without.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOGHUB = Path("/work/shared/data/loghub-2k")
DRAIN3_GROUPER = Path("/work/shared/bench/drain3_grouper.py")


@dataclass
class Contender:
    """A command that reads the input file on stdin; `env` overlays the environment."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)


def run_once(c: Contender, data: Path, out: Path | None = None) -> float:
    """Wall seconds of one whole process (start-up included), its stdout kept in `out`."""
    env = {**os.environ, **c.env}
    with data.open("rb") as stdin, (out or Path(os.devnull)).open("wb") as stdout:
        t0 = time.perf_counter()
        subprocess.run(c.argv, stdin=stdin, stdout=stdout, env=env, check=True, cwd=HERE.parent)
        return time.perf_counter() - t0


def rounds(contenders: Sequence[Contender], data: Path, n: int) -> None:
    """Each round runs every contender once, in an order rotated per round."""
    for r in range(n):
        for c in contenders[r % len(contenders) :] + contenders[: r % len(contenders)]:
            c.seconds.append(run_once(c, data))


def report(title: str, lines: int, contenders: Sequence[Contender], ref: str) -> None:
    """Median lines/s of each contender, and its ratio to `ref` with the spread over rounds."""
    print(f"\n## {title} ({lines:,} lines, {len(contenders[0].seconds)} rounds)")
    base = next(c for c in contenders if c.name == ref)
    for c in contenders:
        rate = lines / statistics.median(c.seconds)
        ratios = sorted(b / s for s, b in zip(c.seconds, base.seconds, strict=True))
        print(
            f"  {c.name:<16} {rate / 1000:8.1f}k lines/s   x{statistics.median(ratios):.2f} "
            f"{ref} (rounds {ratios[0]:.2f}-{ratios[-1]:.2f})"
        )


def loghub_lines(root: Path) -> list[str]:
    """The Content column of every system's corrected ground truth, in system order."""
    lines = []
    for path in sorted(root.glob("*/*_2k.log_structured_corrected.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            lines += [row["Content"] for row in csv.DictReader(fh)]
    return lines


def rotated(text: str, k: int) -> str:
    """`text` with its ASCII letters rotated by k: new words, same shapes."""
    lo, up = string.ascii_lowercase, string.ascii_uppercase
    table = str.maketrans(lo + up, lo[k:] + lo[:k] + up[k:] + up[:k])
    return text.translate(table)


def write(path: Path, lines: Sequence[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def templates(args: argparse.Namespace, tmp: Path) -> None:
    lines = loghub_lines(args.loghub)
    once = write(tmp / "loghub.txt", lines)
    renamed = write(
        tmp / "renamed.txt",
        [rotated(line, k) for k in range(1, args.copies + 1) for line in lines],
    )
    watcher = [sys.executable, "-m", "watcher", "templates"]
    for data, title in (
        (once, "templates, Loghub-2k x1 (text seen once)"),
        (renamed, f"templates, renamed x{args.copies} (no template repeats)"),
    ):
        same = identical(watcher, args.base, data, tmp)
        contenders = [Contender("this tree", watcher)]
        if args.base:
            contenders.append(Contender("base", watcher, {"PYTHONPATH": str(args.base)}))
        if args.drain3_python:
            contenders.append(Contender("drain3", [args.drain3_python, str(DRAIN3_GROUPER)]))
        rounds(contenders, data, args.rounds)
        ref = "drain3" if args.drain3_python else "base"
        report(title, data.read_text(encoding="utf-8").count("\n"), contenders, ref)
        if args.base:
            report(title, data.read_text(encoding="utf-8").count("\n"), contenders, "base")
        print(f"  output of this tree and base byte-identical: {same}")


def identical(watcher: list[str], base: Path | None, data: Path, tmp: Path) -> bool | None:
    if base is None:
        return None
    new, old = tmp / "new.out", tmp / "old.out"
    run_once(Contender("this tree", watcher), data, new)
    run_once(Contender("base", watcher, {"PYTHONPATH": str(base)}), data, old)
    return new.read_bytes() == old.read_bytes()


def flood_lines(n: int, seed: int) -> list[str]:
    """Unique error lines that share their first words: one bucket per service."""
    rng = random.Random(seed)
    syllable: Callable[[], str] = lambda: rng.choice("bdfgklmnprstvz") + rng.choice("aeiou")  # noqa: E731
    out = []
    for i in range(n):
        svc = ("api", "worker", "billing", "ingest")[i % 4]
        words = " ".join("".join(syllable() for _ in range(4)) for _ in range(5))
        out.append(
            f"2026-12-07T03:00:00.000Z ERROR [{svc}] charge failed for {words} "
            f"ref={rng.getrandbits(32):08x}"
        )
    return out


def flood(args: argparse.Namespace, tmp: Path) -> None:
    gen = tmp / "unique.log"
    subprocess.run(
        [sys.executable, str(HERE / "loadgen.py"), "--rate", "0", "--lines", str(args.lines),
         "-o", str(gen), "--seed", "5", "--unique", "--error-rate", "1", "--trace-rate", "0"],
        check=True, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    shared = write(tmp / "shared.log", flood_lines(args.lines, seed=7))
    replay = [sys.executable, "-m", "watcher", "replay", "--no-progress", "-o", os.devnull, "-"]
    for data, title in (
        (gen, "flood: replay of unique errors (loadgen --unique)"),
        (shared, "flood: replay of unique errors sharing their first words"),
    ):
        contenders = [Contender("this tree", replay)]
        if args.base:
            contenders.append(Contender("base", replay, {"PYTHONPATH": str(args.base)}))
        rounds(contenders, data, args.rounds)
        report(
            title, data.read_text().count("\n"), contenders, "base" if args.base else "this tree"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["templates", "flood"])
    ap.add_argument("--base", type=Path, help="a tree of the base commit (PYTHONPATH overlay)")
    ap.add_argument("--drain3-python", help="a Python with drain3 installed (pip install drain3)")
    ap.add_argument("--loghub", type=Path, default=LOGHUB, help="the loghub-2k folder")
    ap.add_argument("--copies", type=int, default=10, help="templates: renamed copies")
    ap.add_argument("--lines", type=int, default=200_000, help="flood: lines per file")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        (templates if args.what == "templates" else flood)(args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
