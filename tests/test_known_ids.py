"""A new group is looked up in the store only when the store may hold it (issue 15): the Bloom
filter of stored ids never says "not there" for a group the store holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.engine import Engine, EngineOptions
from watcher.group.table import GroupTable
from watcher.model import RawLine
from watcher.pipeline import Pipeline
from watcher.store import Store
from watcher.store.known import KnownIds


@settings(max_examples=100, deadline=None)
@given(st.sets(st.text(max_size=20), max_size=200))
def test_every_added_id_is_known(ids: set[str]) -> None:
    """An id once added always reads as possibly stored, even in a filter crowded past use."""
    known = KnownIds(bits=1024)
    for key in ids:
        known.add(key)
    assert all(key in known for key in ids)


def test_ids_never_added_are_mostly_unknown() -> None:
    """With 10,000 ids held, ids never added read as "not stored" nearly always (each false
    "maybe" costs one store read)."""
    known = KnownIds()
    for i in range(10_000):
        known.add(f"{i:012x}")
    maybe = sum(f"other-{i}" in known for i in range(10_000))
    assert maybe < 100


class _Lines:
    name = "app"
    delivery = "at_least_once"

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts

    async def lines(self) -> AsyncIterator[list[RawLine]]:
        yield [RawLine(t, "app", "s", None, i + 1) for i, t in enumerate(self.texts)]

    def window(self, start: float | None, end: float | None) -> AsyncIterator[list[RawLine]]:
        return self.lines()


@dataclass(frozen=True)
class _LinesConfig:
    texts: tuple[str, ...]
    type: str = "lines"
    name: str = "app"

    def build(self, ctx: Any) -> _Lines:
        return _Lines(list(self.texts))


def _run(state: Path, texts: list[str], max_groups: int) -> None:
    store = Store(state)
    engine = Engine(
        Pipeline(GroupTable(max_groups=max_groups)),
        [_LinesConfig(tuple(texts))],
        store=store,
        options=EngineOptions(follow=False),
    )
    engine.pipeline.table.on_evict = engine.evicted  # as wiring.build_engine does
    engine.pipeline.table.recall = engine.recall
    asyncio.run(engine.run(asyncio.Event()))
    store.close()


def test_a_stored_group_not_loaded_at_start_keeps_its_count(tmp_path: Path) -> None:
    """A group an earlier run stored, but too old to be loaded back at start (max_groups), is
    found in the store when its error comes back: its count goes on from the stored one."""
    state = tmp_path / "state.db"
    old = "2026-01-01T10:00:00Z ERROR payment gateway timed out after 30s"
    newer = "2026-01-01T11:00:00Z ERROR disk quota exceeded on volume 7"
    _run(state, [old] * 3 + [newer] * 2, max_groups=10)
    # the second run loads only the newer group; the old one's line comes after another group
    _run(state, ["2026-01-01T12:00:00Z ERROR cache node 3 unreachable", old], max_groups=1)
    with Store(state) as store:
        counts = {g.template: g.count for g in store.list_groups()}
    assert counts["payment gateway timed out after <*>"] == 4


def test_on_a_shared_store_a_group_another_watcher_stored_later_is_found(pg_url: str) -> None:
    """On PostgreSQL other watchers store groups after this one started: the filter of ids it
    knew at start must not hide them, or a pattern another instance resolved would start afresh
    here (its state and history overwritten by this watcher's next write)."""
    from watcher.store import open_store

    mine = open_store(pg_url)
    engine = Engine(Pipeline(GroupTable()), [], store=mine, options=EngineOptions(follow=False))
    asyncio.run(engine._restore())  # this watcher starts on an empty database
    other = open_store(pg_url)
    try:
        other_engine = Engine(
            Pipeline(GroupTable()),
            [_LinesConfig(("2026-01-01T10:00:00Z ERROR payment gateway timed out after 30s",))],
            store=other,
            options=EngineOptions(follow=False),
        )
        asyncio.run(other_engine.run(asyncio.Event()))  # another watcher stores the pattern
        (stored,) = other.list_groups()
        asyncio.run(engine._recall_many({stored.id}))  # as a batch's counting reads it
        found = engine.recall(stored.id)
        assert found is not None and found.count == 1
    finally:
        other.close()
        mine.close()
