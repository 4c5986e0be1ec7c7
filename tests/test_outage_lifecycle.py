"""A pattern that returns while the state store cannot be read starts afresh in memory; when the
store is back, that fresh copy adds its count to the stored pattern and leaves the rest of it
(its lifecycle state, an ignore, a resolution) as the store holds it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from watcher.engine import Engine, EngineOptions
from watcher.group.table import GroupTable
from watcher.model import ErrorGroup, RawLine
from watcher.pipeline import Pipeline
from watcher.store import open_store

# timestamped: the store orders groups by when they were last seen
PATTERN = "2026-12-07T06:00:{:02d}Z ERROR payment gateway refused card"
OTHERS = [f"2026-12-07T06:01:{{:02d}}Z ERROR {'other ' * n}failure" for n in range(1, 11)]


class _Lines:
    name = "app"
    delivery = "at_least_once"

    def __init__(self, texts: list[str], before: Callable[[], Any], after: Callable[[], Any]):
        self.texts, self.before, self.after = texts, before, after

    async def window(self, start: float | None, end: float | None) -> AsyncIterator[list[RawLine]]:
        await self.before()
        yield [RawLine(t, "app", "s", None, i + 1) for i, t in enumerate(self.texts)]
        await self.after()


@dataclass(frozen=True)
class _LinesConfig:
    texts: tuple[str, ...]
    before: Any
    after: Any
    type: str = "lines"
    name: str = "app"

    def build(self, ctx: Any) -> _Lines:
        return _Lines(list(self.texts), self.before, self.after)


async def _nothing() -> None:
    return None


def _run(store: Any, texts: list[str], before: Any = _nothing, after: Any = _nothing) -> None:
    engine = Engine(
        Pipeline(GroupTable(max_groups=10)),
        [_LinesConfig(tuple(texts), before, after)],
        store=store,
        options=EngineOptions(follow=False),
    )
    engine.pipeline.table.on_evict = engine.evicted  # as wiring.build_engine does
    engine.pipeline.table.recall = engine.recall
    asyncio.run(engine.run(asyncio.Event()))


def _admin(url: str, *statements: str) -> None:
    name = url.split("?")[0].rsplit("/", 1)[1]
    with psycopg.connect(url.replace(f"/{name}?", "/postgres?"), autocommit=True) as admin:
        for sql in statements:
            admin.execute(sql.format(db=name))


def _stored(url: str) -> tuple[int, str]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count, state FROM groups WHERE template LIKE '%%payment%%'")
        count, state = row.fetchone()
        return int(count), str(state)


def test_a_pattern_ignored_in_the_store_stays_ignored_when_it_returns_during_an_outage(
    pg_url: str,
) -> None:
    """An ignored pattern (3 events), out of memory behind 10 newer ones, returns with 5 events
    while PostgreSQL refuses connections: once the server is back the pattern counts 8 and is
    still ignored (the fresh copy made during the outage did not overwrite it as "open")."""
    store = open_store(pg_url, instance="a")
    try:
        _run(store, [PATTERN.format(i) for i in range(3)])
        _run(store, [t.format(i) for i, t in enumerate(OTHERS)])
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("UPDATE groups SET state = 'ignored' WHERE template LIKE '%%payment%%'")

        async def cut() -> None:
            await asyncio.to_thread(
                _admin, pg_url, "ALTER DATABASE {db} ALLOW_CONNECTIONS false",
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'",
            )  # fmt: skip

        async def back() -> None:
            await asyncio.to_thread(_admin, pg_url, "ALTER DATABASE {db} ALLOW_CONNECTIONS true")
            while True:  # until the store's own connection is up again (its backoff)
                try:
                    await asyncio.to_thread(store.get_state, "probe")
                    return
                except psycopg.Error:
                    await asyncio.sleep(0.1)

        _run(store, [PATTERN.format(i) for i in range(3, 8)], cut, back)
    finally:
        store.close()
    assert _stored(pg_url) == (8, "ignored")


def test_a_blind_group_adds_its_count_and_keeps_the_stored_rest(make_store: Any) -> None:
    """commit(blind=...) of a fresh copy of a stored group (made while the store could not be
    read): its count is added and the seen times widen; state, status and tags stay as stored
    (both backends)."""
    store = make_store()
    stored = ErrorGroup("g1", "template", "boom <*>", "internal_error", "high", False,
                        count=10, first_seen=5.0, last_seen=9.0, state="ignored",
                        status="alerting", tags={"host": {"web-1": 10}})  # fmt: skip
    store.commit([stored])
    fresh = ErrorGroup("g1", "template", "boom <*>", "internal_error", "high", False,
                       count=3, first_seen=4.0, last_seen=20.0)  # fmt: skip
    store.commit([fresh], blind={"g1"})
    found = store.get_group("g1")
    assert found is not None
    assert (found.count, found.first_seen, found.last_seen) == (13, 4.0, 20.0)
    tags = {"host": {"web-1": 10}}
    assert (found.state, found.status, found.tags) == ("ignored", "alerting", tags)
