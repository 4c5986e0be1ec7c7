#!/usr/bin/env python3
"""`watcher run`'s store side under a flood of unique errors, in one process and repeatable.

The real Engine (follow mode: cursors, evictions, commits in a worker thread) with a real SQLite
Store and the daemon's redactor, fed the first N lines of a file in fixed batches by a source
made here (no file reader thread, no timers: commits are forced by evictions alone, as in a
flood, plus the final one). The daemon's per-update hook (DaemonView.observe) runs too, and
`--refresh-every K` calls DaemonView.refresh every K batches (the daemon does it every 5 s).

    PYTHONPATH=$PWD python bench/store_flood.py /tmp/unique.log --lines 20000 [--profile]
    PYTHONPATH=$PWD python bench/store_flood.py /tmp/unique.log --lines 20000 --dump out.txt

--dump writes the state DB's rows (groups, samples, checkpoints, fingerprints, state; the
wall-clock columns left out) so two trees' stores can be compared byte for byte. For counts
that do not move with the machine's load, run it under callgrind with N and 2N lines and take
(I(2N) - I(N)) / N: bench/store_instructions.py does that for two trees.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import pstats
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import watcher.engine as engine_module
import watcher.fix.redact as redact_module
from watcher.config import Config
from watcher.daemon_view import DaemonView
from watcher.fix.redact import Redactor
from watcher.metrics import Metrics
from watcher.model import RawLine
from watcher.store import Store
from watcher.wiring import build_engine, build_pipeline

BATCH = 512  # lines per batch (the file source reads up to 1 MiB: a few thousand lines)
# the wall-clock columns, left out of a dump (they differ between any two runs)
_DUMPS = {
    "groups": "SELECT * FROM groups ORDER BY id",
    "samples": "SELECT group_id, timestamp, source, text, line FROM samples ORDER BY id",
    "checkpoints": "SELECT source, stream, cursor FROM checkpoints ORDER BY source, stream",
    "fingerprints": "SELECT fingerprint, group_id, version FROM fingerprints ORDER BY fingerprint",
    "state": "SELECT key, value FROM state ORDER BY key",
    "activity": "SELECT group_id, action, actor, old_state, new_state, detail FROM activity"
    " ORDER BY id",
}


class _Source:
    name = "file"
    delivery = "at_least_once"

    def __init__(self, batches: list[list[RawLine]]) -> None:
        self._batches = batches

    async def lines(self) -> AsyncIterator[list[RawLine]]:
        for batch in self._batches:
            yield batch
            await asyncio.sleep(0)  # let the consumer take it, as a reader's await would

    window = lines


@dataclass(frozen=True)
class FixedSource:
    """A source config whose source yields prepared batches, then ends."""

    name: str
    batches: Any
    type: str = "bench"

    def build(self, ctx: Any) -> _Source:
        return _Source(self.batches)


def batches_of(path: Path, lines: int) -> list[list[RawLine]]:
    out: list[list[RawLine]] = []
    with path.open(encoding="utf-8") as f:
        for i, text in enumerate(f):
            if i >= lines:
                break
            if i % BATCH == 0:
                out.append([])
            out[-1].append(RawLine(text.rstrip("\n"), "file", str(path), {"offset": i + 1}, i + 1))
    return out


def run(
    path: Path, lines: int, db: Path, refresh_every: int, max_groups: int, with_store: bool = True
) -> dict[str, float]:
    config = Config()
    config = dataclasses.replace(
        config, grouping=dataclasses.replace(config.grouping, max_groups=max_groups)
    )
    metrics = Metrics()
    redactor = Redactor(key=b"k" * 32)  # a fixed key: placeholders the same in every run
    # the daemon's redact (a base tree without Redacting: one text at a time)
    redacting = getattr(redact_module, "Redacting", None)
    redact = redactor.redact if redacting is None else redacting(lambda: redactor)
    store = Store(db, metrics=metrics, samples_per_group=5, redact=redact) if with_store else None
    pipeline = build_pipeline(config, metrics, clock=lambda: 1_800_000_000.0)
    pipeline.table.clock = lambda: 1_800_000_000.0
    batches = batches_of(path, lines)
    engine = build_engine(
        config, pipeline, [FixedSource("file", batches)], metrics=metrics, store=store,  # type: ignore[list-item]
        follow=True,
    )  # fmt: skip
    engine.options.persist_interval = 3600.0  # commits forced by evictions, as in a flood
    view = DaemonView(engine, store or Store(":memory:"), metrics, interval=60.0)
    refreshes = 0

    def observe(updates: list[Any]) -> None:
        nonlocal refreshes
        view.observe(updates)

    engine.on_updates = observe

    async def main() -> None:
        shutdown = asyncio.Event()
        if refresh_every:

            async def refresher() -> None:  # every K batches' worth of lines
                nonlocal refreshes
                while not shutdown.is_set():
                    seen = pipeline.stats.lines
                    while pipeline.stats.lines - seen < refresh_every * BATCH:
                        if shutdown.is_set():
                            return
                        await asyncio.sleep(0.001)
                    await view.refresh()
                    refreshes += 1

            task = asyncio.create_task(refresher())
        await engine.run(shutdown)
        shutdown.set()
        if refresh_every:
            await task

    commit_cpu = 0.0
    write = engine_module._write

    def timed(*a: Any) -> None:  # the commit thread's CPU time (GIL-held and not)
        nonlocal commit_cpu
        started = time.thread_time()
        try:
            write(*a)
        finally:
            commit_cpu += time.thread_time() - started

    engine_module._write = timed
    cpu, wall = time.process_time(), time.perf_counter()
    asyncio.run(main())
    engine_module._write = write
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if store is not None:
        store.close()
    return {
        "cpu": cpu, "wall": wall, "lines": pipeline.stats.lines, "refreshes": refreshes,
        "commit_cpu": commit_cpu,
    }  # fmt: skip


def dump(db: Path, out: Path) -> None:
    conn = sqlite3.connect(db)
    with out.open("w", encoding="utf-8") as f:
        for table, sql in _DUMPS.items():
            f.write(f"## {table}\n")
            for row in conn.execute(sql):
                f.write(repr(tuple(row)) + "\n")
    conn.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", type=Path)
    ap.add_argument("--lines", type=int, default=20_000)
    ap.add_argument("--refresh-every", type=int, default=0, help="batches between view refreshes")
    ap.add_argument("--max-groups", type=int, default=10_000, help="[grouping] max_groups")
    ap.add_argument("--no-store", action="store_true", help="the engine without a store")
    ap.add_argument("--profile", action="store_true", help="cProfile (main thread), top 40")
    ap.add_argument("--dump", type=Path, help="write the state DB's rows here")
    ap.add_argument("--profile-dump", type=Path, help="--profile: the main thread's stats file")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "state.db"
        if args.profile:
            prof, commits = cProfile.Profile(time.thread_time), cProfile.Profile(time.thread_time)
            write = engine_module._write

            def profiled(*a: Any) -> None:  # the commit thread: a profile of its own
                commits.enable()
                try:
                    write(*a)
                finally:
                    commits.disable()

            engine_module._write = profiled
            prof.enable()
        figures = run(
            args.input, args.lines, db, args.refresh_every, args.max_groups, not args.no_store
        )
        if args.profile:
            prof.disable()
            pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(40)
            if args.profile_dump:
                prof.dump_stats(str(args.profile_dump))
            print("== the commit thread", file=sys.stderr)
            pstats.Stats(commits, stream=sys.stderr).sort_stats("tottime").print_stats(30)
        if args.dump and not args.no_store:
            dump(db, args.dump)
    print(
        f"{figures['lines']:,} lines: {figures['cpu']:.2f} CPU-s, {figures['wall']:.2f} wall-s,"
        f" {figures['lines'] / figures['cpu']:,.0f} lines/CPU-s,"
        f" {figures['refreshes']} view refreshes; commits {figures['commit_cpu']:.2f} CPU-s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
