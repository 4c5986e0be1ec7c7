#!/usr/bin/env python3
"""A/B of `watcher replay` on N mixed lines (issue 15, parse): this tree against a base tree, with
the bare read loop and syslog-ng's multi-line assembly on the same file in the same run.

On a machine shared with other work, absolute figures drift by tens of percent between minutes,
so every figure here comes from one run: each round runs every contender once on the same file
(the order rotated per round), rates are lines per CPU second of the whole process (user +
system, start-up included; wall rates beside them), and each ratio is the median of the rounds'
ratios with its range.

    git archive 8f40c9c | (mkdir -p /tmp/base && tar -x -C /tmp/base)
    pip install --target /tmp/orjson orjson            # the orjson contenders (or installed)
    apt-get install syslog-ng-core                      # optional: the syslog-ng contender
    python bench/ab_replay.py --base /tmp/base --orjson /tmp/orjson --lines 1000000

Contenders: `this tree` and `base` (`python -m watcher replay FILE`, the tree on PYTHONPATH,
run from the file's folder, orjson hidden), the same with orjson importable (installed, or
`--orjson DIR`), `read loop`
(read 1 MiB chunks, decode, split: bench/pipeline.py's baseline) and `syslog-ng` (the file
piped to `syslog-ng -F` with a stdin() source in multi-line-mode(indented) writing each
assembled message to a file: C's cost of the same line splitting and joining, nothing else).
The file is bench/genlogs.py's mix (JSON, logfmt, plain; 5 % error events, many multi-line).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
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
from pipeline import BASELINE  # noqa: E402

NEWLINE = b"\n"
SYSLOG_NG_CONF = """@version: 3.38
options {{ stats-freq(0); }};
source s {{ stdin(flags(no-parse) multi-line-mode(indented) log-msg-size(262144)
                  log-iw-size(100000) log-fetch-limit(10000)); }};
destination d {{ file("{out}" template("${{MSG}}\\n")); }};
log {{ source(s); destination(d); }};
"""


@dataclass
class Contender:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    shell: bool = False
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)

    def run(self, cwd: Path) -> None:
        env = {**os.environ, **self.env}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(
            self.argv if not self.shell else ["sh", "-c", self.argv[0]],
            env=env, cwd=cwd, check=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.wall.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu.append(
            after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        )


def contenders(args: argparse.Namespace, data: Path, tmp: Path) -> list[Contender]:
    tree = str(HERE.parent)
    replay = [sys.executable, "-m", "watcher", "replay", str(data), "--no-progress",
              "--log-level", "warning", "-o", os.devnull]  # fmt: skip
    # `this tree` and `base` run without orjson even where it is installed: a stub first on
    # PYTHONPATH makes `import orjson` fail as it does where it is not
    stub = tmp / "no-orjson"
    stub.mkdir()
    (stub / "orjson.py").write_text('raise ImportError("orjson hidden for the A/B")\n')
    out = [Contender("this tree", replay, {"PYTHONPATH": f"{stub}:{tree}"})]
    if args.base:
        out.append(Contender("base", replay, {"PYTHONPATH": f"{stub}:{args.base}"}))
    orjson = args.orjson or (Path() if importlib.util.find_spec("orjson") else None)
    if orjson is not None:
        out.append(Contender("tree+orjson", replay, {"PYTHONPATH": f"{tree}:{orjson}"}))
        if args.base:
            out.append(Contender("base+orjson", replay, {"PYTHONPATH": f"{args.base}:{orjson}"}))
    out.append(Contender("read loop", [sys.executable, "-c", BASELINE, str(data)]))
    syslog_ng = shutil.which("syslog-ng")
    if syslog_ng and not args.no_syslog_ng:
        conf = tmp / "syslog-ng.conf"
        conf.write_text(SYSLOG_NG_CONF.format(out=tmp / "syslog-ng.out"))
        cmd = (
            f"rm -f {tmp}/syslog-ng.out; cat {data} | {syslog_ng} -F -f {conf} --no-caps "
            f"-R {tmp}/persist -c {tmp}/ctl -p {tmp}/pid"
        )
        out.append(Contender("syslog-ng", [cmd], shell=True))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=Path, help="a tree of the base commit (PYTHONPATH overlay)")
    ap.add_argument("--orjson", type=Path, help="a folder holding orjson (pip install --target)")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--input", type=Path, help="replay this file instead of generating one")
    ap.add_argument("--no-syslog-ng", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        data = args.input
        if data is None:
            data = tmp / "mixed.log"
            with data.open("w", encoding="utf-8") as fh:
                for line in generate(args.lines, args.seed, 0.05):
                    fh.write(line + "\n")
        lines = sum(1 for _ in data.open("rb"))
        runners = contenders(args, data.resolve(), tmp)
        for r in range(args.rounds):
            for c in runners[r % len(runners) :] + runners[: r % len(runners)]:
                c.run(tmp)
            print(f"  round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        ref = next((c for c in runners if c.name == "base"), runners[0])
        print(f"## replay A/B: {lines:,} lines of {data.name}, {args.rounds} rounds")
        print(f"  {'contender':<12} {'lines/CPU-s':>12} {'lines/wall-s':>13}  ratio to {ref.name}"
              "  (rounds)   this tree's speed / its (rounds)")  # fmt: skip
        mine = runners[0]
        for c in runners:
            rate = lines / statistics.median(c.cpu)
            wall = lines / statistics.median(c.wall)
            ratios = sorted(b / s for s, b in zip(c.cpu, ref.cpu, strict=True))
            vs = sorted(s / m for s, m in zip(c.cpu, mine.cpu, strict=True))
            print(
                f"  {c.name:<12} {rate:>12,.0f} {wall:>13,.0f}  x{statistics.median(ratios):.2f} "
                f"({ratios[0]:.2f}-{ratios[-1]:.2f})   x{statistics.median(vs):.2f} "
                f"({vs[0]:.2f}-{vs[-1]:.2f})"
            )
        out = tmp / "syslog-ng.out"
        if out.exists():
            print(f"  syslog-ng wrote {out.read_bytes().count(NEWLINE):,} lines (last round)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
