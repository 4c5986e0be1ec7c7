"""A/B speed of new text and floods (issue 15): this tree against a base tree and Drain3.

On a machine shared with other work, absolute figures drift by tens of percent between minutes,
so every figure here is a ratio measured in one run: the contenders take turns, each round runs
each of them once on the same input, and the median of the rounds is printed with its spread.
Rates are per CPU second of the whole process (start-up included); wall-clock rates are shown
beside them.

  templates  `watcher templates` on Loghub-2k text seen once (x1), and a renamed xN corpus
             in which no template repeats (each copy's letters rotated), against Drain3
             (`drain3_grouper.py`) and the base tree; also checks the base and this tree print
             the same bytes. With --base, also `base mask`: this tree's miner with the base
             tree's mask.py, so a change to masking alone is A/B'd in one process.
  flood      `watcher replay` of N unique error lines (bench/loadgen.py --unique: the first
             word differs, so every message has a bucket of its own) and of N unique lines that
             share their first words (one bucket per service: the index's case); with
             --workers N (default 2) also the same lines cut into N files replayed with
             `[watcher] workers = N`, by this tree and the base (read their wall-clock rates).

    PY=.venv/bin/python
    git archive 02d1272 | (mkdir -p /tmp/base && tar -x -C /tmp/base)
    $PY bench/ab_speed.py templates --base /tmp/base --drain3-python /tmp/venv-drain3/bin/python
    $PY bench/ab_speed.py flood --base /tmp/base --lines 200000

  run        `watcher run` with the store on N unique errors (bench/reliability.py's cardinality
             scenario, which checks nothing is lost and RSS stays under 300 MB), per tree.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import logging
import os
import random
import resource
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    wall: list[float] = field(default_factory=list)


def run_once(c: Contender, data: Path, out: Path | None = None) -> float:
    """CPU seconds (user + system) of one whole process, start-up included, its stdout kept in
    `out`. CPU time, not wall time: on a machine other work shares, a process waiting for a core
    is not slower code (wall time is kept in `Contender.wall`)."""
    env = {**os.environ, **c.env}
    with data.open("rb") as stdin, (out or Path(os.devnull)).open("wb") as stdout:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        # run from the data's folder: `-m watcher` imports the working directory's copy first
        subprocess.run(c.argv, stdin=stdin, stdout=stdout, env=env, check=True, cwd=data.parent)
        c.wall.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def rounds(contenders: Sequence[Contender], data: Path, n: int) -> None:
    """Each round runs every contender once, in an order rotated per round."""
    for r in range(n):
        for c in contenders[r % len(contenders) :] + contenders[: r % len(contenders)]:
            c.seconds.append(run_once(c, data))


def report(
    title: str, lines: int, contenders: Sequence[Any], ref: str, *, wall: bool = True
) -> None:
    """Median lines/s of each contender, and its ratio to `ref` with the spread over rounds."""
    print(f"\n## {title} ({lines:,} lines, {len(contenders[0].seconds)} rounds)")
    base = next(c for c in contenders if c.name == ref)
    for c in contenders:
        rate = lines / statistics.median(c.seconds)
        walls = f"({lines / statistics.median(c.wall) / 1000:.1f}k/wall-s)" if wall else ""
        ratios = sorted(b / s for s, b in zip(c.seconds, base.seconds, strict=True))
        print(
            f"  {c.name:<10} {rate / 1000:7.1f}k lines/CPU-s {walls}  "
            f"x{statistics.median(ratios):.2f} {ref} (rounds {ratios[0]:.2f}-{ratios[-1]:.2f})"
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
        text = data.read_bytes()
        contenders = in_process_contenders(args.drain3_python, args.base)
        for r in range(args.rounds):
            for c in contenders[r % len(contenders) :] + contenders[: r % len(contenders)]:
                c.seconds.append(c.run(text))
        n = text.count(b"\n")
        refs = ("drain3", "before") if args.drain3_python else ("before",)
        for ref in refs + (("base mask",) if args.base else ()):
            report(f"{title}, in one process", n, contenders, ref, wall=False)
        print(f"  output of this tree and the base tree byte-identical: {same}")


@dataclass
class InProcess:
    """A grouper run on the input in this process, timed in CPU seconds, caches cold."""

    name: str
    run_cold: Callable[[bytes], None]
    seconds: list[float] = field(default_factory=list)

    def run(self, text: bytes) -> float:
        t0 = time.process_time()
        self.run_cold(text)
        return time.process_time() - t0


def in_process_contenders(drain3_python: str | None, base: Path | None) -> list[InProcess]:
    """This tree's `watcher templates`, the one before issue 15 (the masker kept in
    tests/reference_mask.py and the linear-scan miner of tests/test_miner_index.py: the tests
    prove they print the same bytes as the base tree) and Drain3's grouper, all in this process
    so that a busy machine slows them alike. With `base`, also this tree's miner with the base
    tree's masker (watcher/group/mask.py of `base`, loaded under another name): the A/B of a
    change to masking alone."""
    sys.path.insert(0, str(HERE.parent))
    from tests import reference_mask
    from tests.test_miner_index import ReferenceMiner
    from watcher.group import mask
    from watcher.group.template import run_stream

    print(f"  this tree's mask: {mask.__file__}", file=sys.stderr)

    def this_tree(text: bytes) -> None:
        clear_mask_caches(mask)
        run_stream(io.BytesIO(text), io.BytesIO())

    def before(text: bytes) -> None:
        reference_mask._constants.clear()
        run_stream(io.BytesIO(text), io.BytesIO(), ReferenceMiner())

    out = [InProcess("this tree", this_tree), InProcess("before", before)]
    if base is not None:
        out.append(InProcess("base mask", base_masker(base)))
    if drain3_python:
        out.append(InProcess("drain3", drain3_grouper(drain3_python)))
    return out


MASK_CACHES = (
    "_constants",  # the vocabulary
    "_BY_NEEDS",  # the alternation's variants
    "_asked",
    "_line_masked_by_shape",  # results per digit shape (a base may predate them)
    "_line_tokens_by_shape",
    "_masked_by_shape",
    "_part_kind_by_shape",
    "_kept_bytes",
    "_keys",  # the keys of key=value parts
)


def clear_mask_caches(module: Any) -> None:
    """Empty every cache a mask module has, as a new process starts: a table left filled by the
    previous round makes the next rounds run warm (the base's shape tables were missed, so its
    masker ran cold once and warm after)."""
    for name in MASK_CACHES:
        table = getattr(module, name, None)
        if table is not None:
            table.clear()


def base_masker(base: Path) -> Callable[[bytes], None]:
    """`watcher templates` with this tree's miner and `base`'s masker, its caches cold."""
    from watcher.group.template import TemplateMiner, run_stream

    path = base / "watcher" / "group" / "mask.py"
    spec = importlib.util.spec_from_file_location("base_mask", path)
    assert spec is not None and spec.loader is not None
    base_mask = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(base_mask)
    print(f"  base mask: {base_mask.__file__}", file=sys.stderr)

    # both seams: the miner keys on the joined text (a base without mask_joined joins its tokens)
    joined = getattr(base_mask, "mask_joined", None) or (
        lambda message: " ".join(base_mask.mask_tokens(message))
    )

    class BaseMiner(TemplateMiner):
        tokens_of = staticmethod(base_mask.mask_tokens)
        joined_of = staticmethod(joined)

    def run(text: bytes) -> None:
        clear_mask_caches(base_mask)
        run_stream(io.BytesIO(text), io.BytesIO(), BaseMiner())

    return run


def drain3_grouper(python: str) -> Callable[[bytes], None]:
    """Drain3 with its defaults, as ../shared/bench/drain3_grouper.py runs it, imported from the
    site-packages of `python`'s environment."""
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    sys.path.append(site)
    logging.disable(logging.INFO)
    spec = importlib.util.spec_from_file_location("drain3_grouper", DRAIN3_GROUPER)
    assert spec is not None and spec.loader is not None
    grouper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grouper)

    def run(text: bytes) -> None:
        miner = grouper.build_miner("default", None)
        ids = [
            miner.add_log_message(raw.decode("utf-8", "surrogateescape"))["cluster_id"]
            for raw in text.split(b"\n")[:-1]
        ]
        assert ids

    return run


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


def miner_flood(args: argparse.Namespace) -> None:
    """The miner alone (masking included) on unique messages sharing their first words, with the
    bucket index against the linear scan before it (tests/test_miner_index.py), in this process."""
    sys.path.insert(0, str(HERE.parent))
    from tests.test_miner_index import ScanMiner
    from watcher.group.template import TemplateMiner

    messages = [line.split("] ", 1)[1] for line in flood_lines(min(args.lines, 50_000), seed=7)]
    contenders = [
        InProcess(name, lambda _t, cls=cls: _feed(cls(), messages))
        for name, cls in (("index", TemplateMiner), ("scan", ScanMiner))
    ]
    for r in range(args.rounds):
        for c in contenders[r % 2 :] + contenders[: r % 2]:
            c.seconds.append(c.run(b""))
    report("flood: the miner alone, unique messages sharing their first words", len(messages),
           contenders, "scan", wall=False)  # fmt: skip


def _feed(miner: Any, messages: list[str]) -> None:
    for message in messages:
        miner.add(message)


def flood(args: argparse.Namespace, tmp: Path) -> None:
    miner_flood(args)
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
        if args.workers > 1:
            # workers place whole sources: the same lines as N files, one source each (the
            # rate that counts here is per wall second: the point is to use every core)
            sharded = _with_workers(data, args.workers, tmp)
            contenders.append(Contender(f"w={args.workers}", sharded))
            if args.base and (args.base / "watcher" / "workers").is_dir():
                # (a base from before `[watcher] workers` runs in one process only)
                env = {"PYTHONPATH": str(args.base)}
                contenders.append(Contender(f"base w={args.workers}", sharded, env))
        rounds(contenders, data, args.rounds)
        report(
            title, data.read_text().count("\n"), contenders, "base" if args.base else "this tree"
        )


def _with_workers(data: Path, workers: int, tmp: Path) -> list[str]:
    """`watcher replay` of `data` cut into `workers` files (contiguous parts, so each keeps its
    lines' order), with `[watcher] workers` set: its stdin is not read."""
    lines = data.read_text().splitlines()
    size = -(-len(lines) // workers)
    parts = [
        str(write(tmp / f"{data.stem}.part{i}.log", lines[i * size : (i + 1) * size]))
        for i in range(workers)
    ]
    config = tmp / f"workers{workers}.toml"
    config.write_text(f"[watcher]\nworkers = {workers}\n")
    return [sys.executable, "-m", "watcher", "-c", str(config), "replay", "--no-progress", "-o",
            os.devnull, *parts]  # fmt: skip


def run_store(args: argparse.Namespace, tmp: Path) -> None:
    """`watcher run` with the store on N unique errors (bench/reliability.py's cardinality
    scenario), once per tree: lines per wall second and per daemon CPU second, peak RSS."""
    sys.path.insert(0, str(HERE))
    import reliability  # bench/ is on sys.path: the scenario's daemon driver

    settle = reliability.settle

    def patient(port: int, expected: dict[str, int], **kw: Any) -> Any:
        # a machine at load 15 starves the daemon: /metrics times out or the counts stand still
        # for 10 s, which the scenario reads as "done"; ask again until counted or the timeout
        deadline = time.monotonic() + kw.get("timeout", 180.0)
        while True:
            samples = settle(port, expected, **{**kw, "quiet_for": 60.0})
            done = samples is not None and all(
                reliability.value(samples, "watcher_lines_total", source=name) >= n
                for name, n in expected.items()
            )
            if done or time.monotonic() >= deadline:
                return samples
            time.sleep(1.0)

    reliability.settle = patient
    trees = [("this tree", None)] + ([("base", str(args.base))] if args.base else [])
    print(f"\n## flood: `watcher run` with the store, {args.lines:,} unique errors")
    for r in range(args.rounds):
        for name, path in trees if r % 2 == 0 else trees[::-1]:
            os.environ.pop("PYTHONPATH", None)
            if path:
                os.environ["PYTHONPATH"] = path
            sub = tmp / f"{name.replace(' ', '-')}-{r}"
            sub.mkdir()
            sizes = reliability.Sizes(cardinality=args.lines)
            row = reliability._cardinality(sizes, sub, "cardinality", args.lines, 5)
            reliability.stop_children()
            d = row.details
            print(
                f"  {name:<10} {row.lines_in / d['seconds'] / 1000:6.1f}k lines/wall-s "
                f"{row.lines_in / d['daemon_cpu_s'] / 1000:6.1f}k lines/CPU-s  "
                f"peak RSS {row.peak_rss_mb:.0f} MB  lost {row.lost}  {row.verdict}",
                flush=True,
            )
    os.environ.pop("PYTHONPATH", None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["templates", "flood", "run"])
    ap.add_argument("--base", type=Path, help="a tree of the base commit (PYTHONPATH overlay)")
    ap.add_argument("--drain3-python", help="a Python with drain3 installed (pip install drain3)")
    ap.add_argument("--loghub", type=Path, default=LOGHUB, help="the loghub-2k folder")
    ap.add_argument("--copies", type=int, default=10, help="templates: renamed copies")
    ap.add_argument("--lines", type=int, default=200_000, help="flood: lines per file")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument(
        "--workers", type=int, default=2, help="flood: also replay with this many workers (0: not)"
    )
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        {"templates": templates, "flood": flood, "run": run_store}[args.what](args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
