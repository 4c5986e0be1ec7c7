"""Returning patterns are read from the store off the event loop, many in one call (issue 16):
a slow store never stalls the loop, a flood of returning patterns is a few reads, not one per
pattern, and the counts and windows are those of a run that never evicted anything."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.netcut import NetCut
from watcher.engine import Engine, EngineOptions
from watcher.group.table import FINGERPRINT_VERSION, GroupTable, trace_fingerprint
from watcher.model import ErrorGroup, RawLine
from watcher.pipeline import Pipeline
from watcher.store import open_store


def pattern(n: int, second: int = 0) -> str:
    """The n-th of many error patterns (a different word count each: never one template)."""
    return f"2026-12-07T06:{n % 60:02d}:{second:02d}Z ERROR {'stage ' * (n + 1)}failed"


class _Batches:
    name = "app"
    delivery = "at_least_once"

    def __init__(self, batches: list[list[str]]) -> None:
        self.batches = batches

    async def window(self, start: float | None, end: float | None) -> AsyncIterator[list[RawLine]]:
        n = 0
        for texts in self.batches:
            lines = []
            for text in texts:
                for part in text.splitlines():  # a trace's lines, one record
                    n += 1
                    lines.append(RawLine(part, "app", "s", None, n))
            yield lines

    def lines(self) -> AsyncIterator[list[RawLine]]:
        return self.window(None, None)


@dataclass(frozen=True)
class _BatchesConfig:
    batches: tuple[tuple[str, ...], ...]
    type: str = "lines"
    name: str = "app"

    def build(self, ctx: Any) -> _Batches:
        return _Batches([list(b) for b in self.batches])


class _Reads:
    """A store counting its group reads; with `hold`, each read waits for it to be set."""

    def __init__(
        self,
        store: Any,
        hold: threading.Event | None = None,
        on_read: Callable[[], object] | None = None,
    ) -> None:
        self._store, self.hold, self.on_read = store, hold, on_read
        self.single = 0
        self.batched: list[int] = []
        self.entered = threading.Event()
        self.released: list[bool] = []  # per read: whether `hold` was set before the timeout

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def get_group(self, group_id: str) -> ErrorGroup | None:
        self.single += 1
        self._wait()
        return self._store.get_group(group_id)  # type: ignore[no-any-return]

    def get_groups(self, group_ids: Collection[str]) -> dict[str, ErrorGroup]:
        self.batched.append(len(group_ids))
        self._wait()
        return self._store.get_groups(group_ids)  # type: ignore[no-any-return]

    def _wait(self) -> None:
        if self.on_read is not None:
            self.on_read()
            self.entered.set()
        if self.hold is not None:
            self.entered.set()
            # set by a task on the event loop: never, when the read blocks that loop itself
            self.released.append(self.hold.wait(timeout=10))


def _engine(store: Any, batches: list[list[str]], max_groups: int, **options: Any) -> Engine:
    engine = Engine(
        Pipeline(GroupTable(max_groups=max_groups)),
        [_BatchesConfig(tuple(tuple(b) for b in batches))],
        store=store,
        options=EngineOptions(follow=False, **options),
    )
    engine.pipeline.table.on_evict = engine.evicted  # as wiring.build_engine does
    engine.pipeline.table.recall = engine.recall
    return engine


def _run(store: Any, batches: list[list[str]], max_groups: int, **options: Any) -> None:
    asyncio.run(_engine(store, batches, max_groups, **options).run(asyncio.Event()))


def _stored(store: Any) -> dict[str, tuple[Any, ...]]:
    return {
        g.template: (g.count, g.first_seen, g.last_seen, g.sources, g.buckets)
        for g in store.list_groups(limit=1000)
    }


def test_a_flood_of_returning_patterns_is_read_in_one_call_not_one_per_pattern(
    make_store: Any,
) -> None:
    """40 stored patterns, 5 of them loaded back at a restart, all return in one batch: the 35
    not in memory are read in at most two calls (none one by one), and each counts on from
    its stored count (both backends)."""
    store = make_store()
    _run(store, [[pattern(n) for n in range(40)]], max_groups=1000)
    reads = _Reads(store)
    _run(reads, [[pattern(n, 1) for n in range(40)]], max_groups=5)
    assert reads.single == 0
    assert 1 <= len(reads.batched) <= 2 and sum(reads.batched) >= 35
    assert sorted(count for count, *_ in _stored(store).values()) == [2] * 40


def test_a_store_read_that_hangs_does_not_stall_the_event_loop(make_store: Any) -> None:
    """While the store takes its time to answer for a returning pattern (a PostgreSQL server
    paused, a slow network), other tasks on the event loop still run: here the very task that
    lets the read go on. The pattern still counts on from its stored count."""
    store = make_store()
    _run(store, [[pattern(n) for n in range(3)]], max_groups=1000)
    reads = _Reads(store, hold=threading.Event())
    engine = _engine(reads, [[pattern(n, 1) for n in range(3)]], max_groups=1)

    async def main() -> None:
        run = asyncio.create_task(engine.run(asyncio.Event()))
        while not reads.entered.is_set() and not run.done():
            await asyncio.sleep(0.01)
        assert reads.hold is not None
        reads.hold.set()
        await run

    asyncio.run(main())
    assert reads.released and all(reads.released) and reads.single == 0
    assert sorted(count for count, *_ in _stored(store).values()) == [2, 2, 2]


def test_a_postgresql_gone_silent_holds_back_the_batch_not_the_event_loop(
    pg_cluster: Any, pg_url: str
) -> None:
    """The watcher reaches PostgreSQL through a relay that is cut just as returning patterns
    are read (no byte passes, nothing fails): a task on the event loop still runs meanwhile,
    here the one that heals the relay, so the read is answered instead of giving up after
    `state_timeout`, and the patterns count on from their stored counts."""
    database = pg_url.split("?")[0].rsplit("/", 1)[1]
    relay = NetCut(str(pg_cluster.root / f".s.PGSQL.{pg_cluster.port}"))
    store = open_store(f"postgresql://postgres@127.0.0.1:{relay.port}/{database}", timeout=5.0)
    try:
        _run(store, [[pattern(n) for n in range(3)]], max_groups=1000)
        cuts: list[int] = []

        def cut_once() -> None:  # the first read only: the relay is healed once
            if not cuts:
                cuts.append(1)
                relay.cut()

        reads = _Reads(store, on_read=cut_once)
        engine = _engine(reads, [[pattern(n, 1) for n in range(3)]], max_groups=1)

        async def main() -> None:
            run = asyncio.create_task(engine.run(asyncio.Event()))
            while not reads.entered.is_set() and not run.done():
                await asyncio.sleep(0.01)
            relay.heal()
            await run

        asyncio.run(main())
        failed = engine.metrics.registry.get_sample_value(
            "watcher_state_errors_total", {"kind": "read"}
        )
        assert not failed and reads.single == 0
        assert sorted(count for count, *_ in _stored(store).values()) == [2, 2, 2]
    finally:
        store.close()
        relay.close()


def test_a_read_cut_short_by_the_shutdown_timeout_still_counts_the_batch(
    make_store: Any,
) -> None:
    """Stopped while the store has not answered for a batch's returning patterns (past the
    shutdown timeout), the daemon counts the batch anyway, its patterns afresh, and its last
    commit adds those counts to the stored ones: its lines are not lost."""
    store = make_store()
    _run(store, [[pattern(n) for n in range(3)]], max_groups=1000)
    reads = _Reads(store, hold=threading.Event())
    engine = _engine(reads, [[pattern(n, 1) for n in range(3)]], max_groups=1)
    engine.options.follow, engine.options.shutdown_timeout = True, 0.2
    shutdown = asyncio.Event()

    async def main() -> None:
        run = asyncio.create_task(engine.run(shutdown))
        while not reads.entered.is_set() and not run.done():
            await asyncio.sleep(0.01)
        shutdown.set()
        try:
            await run
        finally:
            assert reads.hold is not None
            reads.hold.set()  # the worker thread ends: asyncio.run waits for it

    asyncio.run(main())
    assert sorted(count for count, *_ in _stored(store).values()) == [2, 2, 2]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_counts_and_windows_with_eviction_are_those_without(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A replay of 600 events of 12 patterns in random order, committed after every batch:
    with room for 3 groups (evicted, written, read back again and again) every pattern's
    count, seen times, sources and window buckets are those of a run that kept all 12."""
    rng = random.Random(16)
    events = [pattern(rng.randrange(12), second=i // 10) for i in range(600)]
    batches = [events[i : i + 25] for i in range(0, 600, 25)]
    results = []
    for name, max_groups in (("all", 1000), ("few", 3)):
        if backend == "sqlite":
            url = f"sqlite://{tmp_path}/{name}.db"
        else:
            url = request.getfixturevalue("pg_cluster").create()
        store = open_store(url)
        try:
            _run(store, batches, max_groups=max_groups, persist_interval=0.0)
            results.append(_stored(store))
        finally:
            store.close()
    assert len(results[0]) == 12
    assert results[1] == results[0]


TRACE = """2026-12-07T06:00:0{second}Z ERROR payment failed
Traceback (most recent call last):
  File "/app/pay.py", line 10, in charge
    settle(card)
  File "/app/pay.py", line 20, in settle
    raise KeyError(card)
KeyError: 'card'"""


def test_a_trace_keyed_by_an_older_fingerprint_version_is_found_by_the_batched_read(
    make_store: Any,
) -> None:
    """A pattern stored under its v1 fingerprint, not in memory at a restart, returns: the
    batch's read finds it by that older fingerprint and the event counts there (no new group),
    with no read one by one."""
    pipeline = Pipeline(GroupTable())
    lines = TRACE.format(second=0).splitlines()
    (update,) = pipeline.feed(
        [RawLine(text, "app", "s", None, i + 1) for i, text in enumerate(lines)]
    ) + pipeline.flush(force=True)
    old_id = trace_fingerprint(update.event, version=1)
    assert old_id != update.group.id and FINGERPRINT_VERSION == 2
    store = make_store()
    newer = pattern(1, second=30)  # stored later: the one group loaded back at the restart
    _run(store, [[newer]], max_groups=1000)
    old = ErrorGroup(old_id, "trace", "KeyError: <*>", "internal_error", "medium", False,
                     count=5, first_seen=1.0, last_seen=2.0)  # fmt: skip
    store.commit([old], fingerprints=[(old_id, old_id, 1)])
    reads = _Reads(store)
    _run(reads, [[TRACE.format(second=1)]], max_groups=1)
    assert reads.single == 0 and reads.batched
    stored = {g.id: g.count for g in store.list_groups()}
    assert stored == {old_id: 6, **{g.id: 1 for g in store.list_groups() if g.id != old_id}}
    assert len(stored) == 2


def test_a_group_the_batch_did_not_foresee_is_read_when_asked_and_counting_resumes(
    make_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were the groups a batch needs never foreseen, each is read (off the loop) when the
    table asks for it, and the batch's counting resumes at that event: every event counted
    once, none twice (both backends)."""
    store = make_store()
    _run(store, [[pattern(n) for n in range(12)]], max_groups=1000)
    monkeypatch.setattr(GroupTable, "unknown", lambda self, keyed: set())
    reads = _Reads(store)
    _run(reads, [[pattern(n, s) for s in (1, 2) for n in range(12)]], max_groups=3)
    assert reads.single == 0 and len(reads.batched) >= 9
    assert sorted(count for count, *_ in _stored(store).values()) == [3] * 12


def test_apply_resumes_at_the_event_whose_group_could_not_be_recalled() -> None:
    """A recall hook that raises Unrecalled stops Pipeline.apply before that event changes
    anything; the same call later goes on from it: each event counted and seen once."""
    from watcher.group.table import Unrecalled

    seen: list[int] = []  # the count of each event's group when the event was counted
    table = GroupTable()
    pipeline = Pipeline(table, on_event=lambda event, update: seen.append(update.group.count))
    answers: dict[str, ErrorGroup | None] = {}

    def recall(group_id: str) -> ErrorGroup | None:
        if group_id not in answers:
            raise Unrecalled(group_id)
        return answers[group_id]

    table.recall = recall
    texts = [pattern(n % 3, second=n) for n in range(6)] + ["2026-12-07T07:00:00Z INFO done"]
    keyed = pipeline.take([RawLine(t, "app", "s", None, i + 1) for i, t in enumerate(texts)])
    for _ in range(3):  # one new group per call
        with pytest.raises(Unrecalled) as miss:
            pipeline.apply(keyed)
        answers[miss.value.group_id] = None
    updates = pipeline.apply(keyed)
    assert seen == [1, 1, 1, 2, 2, 2] and len(updates) == 6
    assert pipeline.apply(keyed) == updates and len(seen) == 6  # nothing left to count
