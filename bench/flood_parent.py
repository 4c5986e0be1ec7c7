#!/usr/bin/env python3
"""The parent's half of a replay with worker processes, on its own and in one process: what
bounds a flood of unique errors with `[watcher] workers = 2` (issue 15).

`make` runs the workers' half (a worker's `Front` pipeline: parse, classify, mask) over a log
cut in N contiguous parts, batch by batch as a file source reads them (MAX_BATCH lines), and
pickles the Shipments each part gives, interleaved one from each part in turn. `run` feeds the
pickles to a parent pipeline as the engine does with a worker's shipment: unpickle (the pump
thread's recv), `WorkerPool.apply` (counters, unpacking, keying: the miner learns), then
`Pipeline.apply` (the group table counts) and the engine's per-batch metrics. Nothing else runs,
so callgrind counts the parent's work per event without the engine's loop, the threads or the
order in which two real workers' shipments happen to arrive (the count of a real parent moves a
little with that order):

    python bench/flood_parent.py make /tmp/unique.log /tmp/shipments.pkl --lines 20000
    valgrind --tool=callgrind python bench/flood_parent.py run /tmp/shipments.pkl
    python bench/flood_parent.py count --base /tmp/base-main /tmp/unique.log --lines 10000

`count` makes the shipments of the first N and 2N lines with this tree and counts the run of
each under callgrind with this tree and with `--base` (PYTHONHASHSEED=0): per event, (I(2N) -
I(N)) / N drops the start-up. `--profile` on `run` prints cProfile's top functions instead.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
_COLLECTED = re.compile(r"Collected : (\d+)")


def make(log: Path, out: Path, lines: int, parts: int, config: Path | None) -> int:
    """Pickle the shipments `parts` workers make of the first `lines` lines of `log`."""
    from watcher.config import load_config
    from watcher.metrics import Metrics
    from watcher.model import RawLine
    from watcher.sources.lines import MAX_BATCH
    from watcher.wiring import build_pipeline
    from watcher.workers.child import Front
    from watcher.workers.wire import STAT_FIELDS, Shipment

    text = log.read_text(errors="replace").splitlines()[:lines]
    size = -(-len(text) // parts)
    config_obj = load_config(str(config) if config else None)
    per_part: list[list[bytes]] = []
    for index in range(parts):
        chunk = text[index * size : (index + 1) * size]
        source = f"part{index}.log"
        front = build_pipeline(config_obj, Metrics(process=False), kind=Front)
        assert isinstance(front, Front)
        shipped = dict.fromkeys(STAT_FIELDS, 0)
        out_part = []
        for start in range(0, len(chunk), MAX_BATCH):
            batch = [
                RawLine(line, source, stream=source, cursor={"offset": start + i})
                for i, line in enumerate(chunk[start : start + MAX_BATCH])
            ]
            front.feed(batch)
            if start + MAX_BATCH >= len(chunk):
                front.flush(force=True, source=source)
            deltas = {}
            for name in STAT_FIELDS:
                value = getattr(front.stats, name)
                if value != shipped[name]:
                    deltas[name], shipped[name] = value - shipped[name], value
            shipment = Shipment(index, source, stats=deltas)
            if deltas.get("lines"):
                shipment.lines[source] = deltas["lines"]
            if deltas.get("events"):
                shipment.events[source] = deltas["events"]
            shipment.errors, front.out = front.out, []
            shipment.masked, front.masked = front.masked, {}
            if hasattr(front, "ids"):  # the ids of the texts masked (a tree before: none)
                shipment.ids, front.ids = front.ids, {}
            out_part.append(pickle.dumps(shipment, protocol=pickle.HIGHEST_PROTOCOL))
        per_part.append(out_part)
    interleaved = [s for row in zip(*per_part, strict=False) for s in row]
    for row in per_part:  # (parts of unequal length: the rest in order)
        interleaved.extend(row[len(per_part[-1]) :])
    out.write_bytes(pickle.dumps(interleaved))
    return len(text)


def run(shipments: Path, config: Path | None, profile: bool) -> None:
    """The parent's work on the pickled shipments (see the module's docstring)."""
    from watcher import gctune
    from watcher.config import load_config
    from watcher.metrics import Metrics
    from watcher.wiring import build_pipeline
    from watcher.workers.pool import WorkerPool

    config_obj = load_config(str(config) if config else None)
    gctune.tune()  # the CLI's cyclic-GC thresholds, and start-up's objects frozen
    metrics = Metrics(process=False)
    pipeline = build_pipeline(config_obj, metrics)
    pool = WorkerPool(2, config_obj, follow=False, metrics=metrics)
    pool.install(pipeline)
    table = pipeline.table
    table.dump_evicted = False  # as a replay's engine sets it (no store)
    evicted = [0]
    blobs: list[bytes] = pickle.loads(shipments.read_bytes())

    def work() -> None:
        for blob in blobs:
            shipment = pickle.loads(blob)
            pool.workers[shipment.worker].in_flight.acquire()
            updates = pipeline.apply(pool.apply(pipeline, shipment))
            metrics.active_groups.set(len(table))  # the engine's _emit, per batch
            if table.evicted != evicted[0]:
                metrics.groups_evicted.inc(table.evicted - evicted[0])
                evicted[0] = table.evicted
            del updates

    if not profile:
        work()
        return
    import cProfile
    import pstats

    prof = cProfile.Profile(time.process_time)  # CPU time: the machine is shared
    prof.runcall(work)
    pstats.Stats(prof).sort_stats("tottime").print_stats(30)


def _instructions(tree: Path, shipments: Path, config: Path | None, work: Path) -> int:
    out = work / f"cg.{abs(hash((str(tree), str(shipments))))}"
    argv = [sys.executable, str(HERE / "flood_parent.py"), "run", str(shipments)]
    if config is not None:
        argv += ["--config", str(config)]
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(tree)},
        check=False,
    )
    match = _COLLECTED.search(proc.stderr)
    if match is None:
        raise SystemExit(f"callgrind gave no count for {tree}:\n{proc.stderr[-2000:]}")
    return int(match.group(1))


def count(args: argparse.Namespace) -> None:
    from concurrent.futures import ThreadPoolExecutor

    this = HERE.parent
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        small, large = work / "n.pkl", work / "2n.pkl"
        make(args.input, small, args.lines, args.parts, args.config)
        make(args.input, large, 2 * args.lines, args.parts, args.config)
        trees = ([args.base] if args.base else []) + [this]
        runs = [(tree, pkl) for tree in trees for pkl in (small, large)]
        with ThreadPoolExecutor(max_workers=2) as ex:
            counts = list(ex.map(lambda r: _instructions(r[0], r[1], args.config, work), runs))
    per = {}
    for i, tree in enumerate(trees):
        n1, n2 = counts[2 * i : 2 * i + 2]
        name = "this" if tree == this else "base"
        per[name] = (n2 - n1) / args.lines
        print(f"{name:5} start-up+N {n1 / 1e6:9.1f} M   per event {per[name]:9.0f} instructions")
    if "base" in per:
        ratio = per["this"] / per["base"]
        print(f"parent's cost per event, this / base: {ratio:.3f} ({(ratio - 1) * 100:+.1f} %)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    mk = sub.add_parser("make", help="pickle the workers' shipments of a log's first lines")
    mk.add_argument("input", type=Path)
    mk.add_argument("output", type=Path)
    mk.add_argument("--lines", type=int, default=20000)
    mk.add_argument("--parts", type=int, default=2, help="workers (the log cut in parts)")
    mk.add_argument("--config", type=Path)
    rn = sub.add_parser("run", help="the parent's work on pickled shipments")
    rn.add_argument("shipments", type=Path)
    rn.add_argument("--config", type=Path)
    rn.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    ct = sub.add_parser("count", help="callgrind per event, this tree (and --base)")
    ct.add_argument("input", type=Path)
    ct.add_argument("--base", type=Path, help="the other checkout (its repo root)")
    ct.add_argument("--lines", type=int, default=10000, help="N (default 10000)")
    ct.add_argument("--parts", type=int, default=2)
    ct.add_argument("--config", type=Path)
    args = ap.parse_args()
    if args.command == "make":
        print(f"{make(args.input, args.output, args.lines, args.parts, args.config)} lines")
    elif args.command == "run":
        run(args.shipments, args.config, args.profile)
    else:
        count(args)


if __name__ == "__main__":
    main()
