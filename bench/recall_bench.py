"""Returning patterns on PostgreSQL (issue 16): what reading them from the store costs the
engine, and what it costs the event loop.

    .venv/bin/python bench/recall_bench.py [--base /tmp/base] [--patterns 3000]
        [--events 20000] [--max-groups 50] [--batch 100] [--rtt-ms 1.0]

A throwaway PostgreSQL cluster of its own (as tests/postgres.py makes one); per contender (this
tree, and with --base a tree of the base commit, e.g. `git archive 8f40c9c | tar -x -C
/tmp/base`, put first on PYTHONPATH) a fresh database and a child process that:

1. seeds it: `--patterns` trace patterns (a function each), one event each, all stored;
2. restarts the engine with room for `--max-groups` groups (the rest stay in the store) and
   replays `--events` events of those patterns in random order, `--batch` events per batch:
   nearly every event's pattern is not in memory and must be read from the store;
3. meanwhile a task sleeps 10 ms in a loop on the same event loop: how late it wakes is the
   event loop's lag (a stalled loop delays every source, the HTTP API and the health checks).

`--rtt-ms` adds that much to every statement sent to the server (a server across a network;
the local socket answers in microseconds). Prints per contender: events/s, CPU-seconds of the
child for the replay (the machine is shared: CPU time drifts less than wall time), the loop's
lag (max, p99), the number of store reads (get_group calls, get_groups calls), and whether
the stored total is exact (seeded + replayed). Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

EVENT = """2026-12-07T06:{minute:02d}:{second:02d}Z ERROR request failed
Traceback (most recent call last):
  File "/app/handlers.py", line 10, in handler_{n}
    run()
KeyError: 'card'"""


def event_lines(n: int, i: int) -> list[str]:
    """The lines of one event of pattern `n` (its i-th event: the timestamps move on)."""
    return EVENT.format(minute=(i // 60) % 60, second=i % 60, n=n).splitlines()


@dataclass(frozen=True)
class _Config:
    batches: tuple[tuple[str, ...], ...]
    type: str = "bench"
    name: str = "app"

    def build(self, ctx: Any) -> _Source:
        return _Source(self.batches)


class _Source:
    name = "app"
    delivery = "at_least_once"

    def __init__(self, batches: tuple[tuple[str, ...], ...]) -> None:
        self.batches = batches

    async def window(self, start: float | None, end: float | None) -> AsyncIterator[list[Any]]:
        from watcher.model import RawLine

        n = 0
        for texts in self.batches:
            batch = []
            for text in texts:
                n += 1
                batch.append(RawLine(text, "app", "s", None, n))
            yield batch


def _batches(events: list[tuple[int, int]], per_batch: int) -> tuple[tuple[str, ...], ...]:
    out = []
    for start in range(0, len(events), per_batch):
        lines: list[str] = []
        for n, i in events[start : start + per_batch]:
            lines.extend(event_lines(n, i))
        out.append(tuple(lines))
    return tuple(out)


def _engine(store: Any, batches: tuple[tuple[str, ...], ...], max_groups: int) -> Any:
    from watcher.engine import Engine, EngineOptions
    from watcher.group.table import GroupTable
    from watcher.pipeline import Pipeline

    engine = Engine(
        Pipeline(GroupTable(max_groups=max_groups)),
        [_Config(batches)],
        store=store,
        options=EngineOptions(follow=False),
    )
    engine.pipeline.table.on_evict = engine.evicted  # as wiring.build_engine does
    engine.pipeline.table.recall = engine.recall
    return engine


async def _replay(engine: Any) -> list[float]:
    """Run the engine; the lags of a 10 ms ticker on the same loop meanwhile (seconds)."""
    lags: list[float] = []
    done = False

    async def tick() -> None:
        while not done:
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - start - 0.01)

    ticker = asyncio.create_task(tick())
    try:
        await engine.run(asyncio.Event())
    finally:
        done = True
        await ticker
    return lags


def child(args: argparse.Namespace) -> None:
    """One contender's run (the `watcher` on PYTHONPATH): prints one JSON line."""
    from watcher.store import open_store
    from watcher.store.postgres import PgConnection

    store = open_store(args.child)
    seed = [(n, 0) for n in range(args.patterns)]
    asyncio.run(_engine(store, _batches(seed, args.batch), 100_000).run(asyncio.Event()))

    rtt = args.rtt_ms / 1000
    for name in ("execute", "executemany"):  # every statement a round trip to a far server
        real = getattr(PgConnection, name)

        def slow(self: Any, *a: Any, _real: Any = real, **kw: Any) -> Any:
            time.sleep(rtt)
            return _real(self, *a, **kw)

        setattr(PgConnection, name, slow)
    reads = {"get_group": 0, "get_groups": 0}
    for name in reads:
        real = getattr(type(store), name, None)
        if real is None:
            continue

        def counted(self: Any, *a: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            reads[_name] += 1
            return _real(self, *a, **kw)

        setattr(type(store), name, counted)

    rng = random.Random(16)
    events = [(rng.randrange(args.patterns), 1 + i) for i in range(args.events)]
    engine = _engine(store, _batches(events, args.batch), args.max_groups)
    cpu, wall = time.process_time(), time.perf_counter()
    lags = asyncio.run(_replay(engine))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    total = sum(g.count for g in store.list_groups(limit=args.patterns + 10))
    store.close()
    lags.sort()
    print(json.dumps({
        "events_s": args.events / wall,
        "cpu_s": cpu,
        "lag_max_ms": 1000 * lags[-1] if lags else 0.0,
        "lag_p99_ms": 1000 * lags[int(len(lags) * 0.99)] if lags else 0.0,
        "ticks": len(lags),
        **reads,
        "exact": total == args.patterns + args.events,
    }))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", type=Path, help="a tree of the base commit (PYTHONPATH overlay)")
    ap.add_argument("--patterns", type=int, default=3000)
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--max-groups", type=int, default=50)
    ap.add_argument("--batch", type=int, default=100, help="events per batch")
    ap.add_argument("--rtt-ms", type=float, default=1.0)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    sys.path.insert(0, str(HERE.parent))
    from tests.postgres import running_cluster

    contenders = [("this tree", HERE.parent)]
    if args.base is not None:
        contenders.insert(0, ("base", args.base.resolve()))
    print(
        f"{args.patterns} patterns stored, {args.events} events replayed in batches of "
        f"{args.batch}, max_groups {args.max_groups}, +{args.rtt_ms} ms per statement"
    )
    print(f"{'contender':<10} {'events/s':>9} {'CPU s':>7} {'lag max ms':>11} {'lag p99 ms':>11}"
          f" {'get_group':>10} {'get_groups':>11} exact")  # fmt: skip
    with running_cluster() as cluster:
        for label, tree in contenders:
            argv = [sys.executable, str(HERE / "recall_bench.py"), "--child", cluster.create()]
            for key in ("patterns", "events", "max_groups", "batch", "rtt_ms"):
                argv += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
            env = {**os.environ, "PYTHONPATH": str(tree)}
            out = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                print(f"{label}: failed\n{out.stderr[-3000:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{label:<10} {r['events_s']:>9,.0f} {r['cpu_s']:>7.2f} {r['lag_max_ms']:>11.1f}"
                  f" {r['lag_p99_ms']:>11.1f} {r['get_group']:>10} {r['get_groups']:>11}"
                  f" {r['exact']}")  # fmt: skip


if __name__ == "__main__":
    main()
