"""Under a flood of new groups the engine commits every EVICTED_FLUSH evictions; the miner's
consolidation still runs on the clock, not at each of those commits (issue 15)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from watcher.engine import Engine, EngineOptions
from watcher.group.table import GroupTable
from watcher.model import RawLine
from watcher.pipeline import Pipeline
from watcher.store import Store


def _engine(tmp_path: Path, interval: float) -> tuple[Engine, list[int]]:
    table = GroupTable()
    calls: list[int] = []
    table.maintain = lambda: calls.append(1) or 0  # type: ignore[method-assign]
    store = Store(tmp_path / "state.db")
    options = EngineOptions(follow=False, persist_interval=interval)
    return Engine(Pipeline(table), [], store=store, options=options), calls


def test_consolidation_runs_once_per_interval_however_often_the_engine_commits(
    tmp_path: Path,
) -> None:
    """Five commits back to back (as a flood's evictions force) consolidate once; the final
    commit at shutdown consolidates again."""
    engine, calls = _engine(tmp_path, interval=60.0)

    async def commits() -> int:
        for _ in range(5):
            await engine._persist()
        forced = len(calls)
        await engine._persist(final=True)
        return forced

    assert asyncio.run(commits()) == 1
    assert len(calls) == 2
    assert engine.store is not None
    engine.store.close()


def test_consolidation_follows_every_commit_when_the_interval_is_zero(tmp_path: Path) -> None:
    """persist_interval 0 (tests, tiny deployments): every commit consolidates, as before."""
    engine, calls = _engine(tmp_path, interval=0.0)

    async def commits() -> None:
        for _ in range(3):
            await engine._persist()

    asyncio.run(commits())
    assert len(calls) == 3
    assert engine.store is not None
    engine.store.close()


def test_without_a_store_evicted_groups_leave_without_their_buckets(tmp_path: Path) -> None:
    """replay/scan keep no evicted group: the table is told not to dump their windows; a
    daemon with a store writes them, so its table dumps them."""
    from watcher.config import Config
    from watcher.metrics import Metrics
    from watcher.wiring import build_engine, build_pipeline

    config, metrics = Config(), Metrics()
    bare = build_pipeline(config, metrics)
    build_engine(config, bare, [], metrics=metrics, store=None, follow=False)
    assert bare.table.dump_evicted is False
    stored = build_pipeline(config, metrics)
    with Store(tmp_path / "state.db") as store:
        build_engine(config, stored, [], metrics=metrics, store=store, follow=True)
        assert stored.table.dump_evicted is True


def _feed(pipeline: Pipeline, text: str) -> None:
    """One error line through the pipeline, its event closed at once (not on a timeout)."""
    pipeline.feed([RawLine(f"2026-01-01T10:00:00Z ERROR {text}", "app", "s", None, 1)])
    pipeline.flush(force=True)


async def _count(engine: Engine, text: str) -> None:
    """`_feed` the way the engine counts a batch: the groups it needs read from the store first."""
    line = RawLine(f"2026-01-01T10:00:00Z ERROR {text}", "app", "s", None, 1)
    await engine._apply(engine.pipeline.take([line]))
    await engine._apply(engine.pipeline.take_flushed(force=True))


def test_a_group_evicted_unchanged_since_its_commit_is_not_written_again(
    tmp_path: Path,
) -> None:
    """Evicted after its state was committed, a group is counted as evicted but not held for
    another write; when it comes back it is recalled from the store with its count."""
    store = Store(tmp_path / "state.db")
    table = GroupTable(max_groups=1)
    engine = Engine(Pipeline(table), [], store=store, options=EngineOptions(follow=False))
    table.on_evict, table.recall = engine.evicted, engine.recall  # as build_engine wires them
    offered: list[str] = []
    table.on_evict_clean = lambda g: offered.append(g.id) or engine.clean_evicted(g)

    async def flow() -> None:
        await _count(engine, "payment gateway timed out")
        await engine._persist()  # committed: count 1
        await _count(engine, "disk quota exceeded on volume")  # evicts it, unchanged
        assert len(offered) == 1 and engine._evicted == {}  # nothing held to write again
        await _count(engine, "payment gateway timed out")  # recalled from the store
        await engine._persist(final=True)

    asyncio.run(flow())
    counts = {g.template: g.count for g in store.list_groups()}
    assert counts == {"payment gateway timed out": 2, "disk quota exceeded on volume": 1}
    store.close()


def test_a_group_changed_since_its_commit_is_written_when_evicted(tmp_path: Path) -> None:
    """A group with events since its last commit is not clean: its eviction is held and
    written, as before."""
    evicted: list[str] = []
    table = GroupTable(max_groups=1, on_evict=lambda g, s: evicted.append(g.id))
    table.on_evict_clean = lambda g: True
    pipeline = Pipeline(table)
    _feed(pipeline, "payment gateway timed out")
    table.take_dirty()
    _feed(pipeline, "payment gateway timed out")  # changed after the take
    _feed(pipeline, "disk quota exceeded on volume")
    assert len(evicted) == 1


def test_while_the_store_fails_or_once_states_were_dropped_every_eviction_is_written(
    tmp_path: Path,
) -> None:
    """clean_evicted says "nothing to write" only while commits succeed and no held state
    was ever dropped: otherwise the store may not hold the group's last state."""
    engine, _ = _engine(tmp_path, interval=60.0)
    assert engine.clean_evicted(None) is True
    engine.store_error = "disk full"
    assert engine.clean_evicted(None) is False
    engine.store_error = None
    engine._spilled = True
    assert engine.clean_evicted(None) is False
    assert engine.store is not None
    engine.store.close()
    assert Engine(Pipeline(GroupTable()), []).clean_evicted(None) is False  # no store


def test_every_eviction_is_counted_in_the_metric(tmp_path: Path) -> None:
    """watcher_groups_evicted_total follows the table's evictions (counted once per batch),
    clean ones included."""
    from watcher.config import Config
    from watcher.metrics import Metrics
    from watcher.wiring import build_engine, build_pipeline

    config, metrics = Config(), Metrics()
    pipeline = build_pipeline(config, metrics)
    pipeline.table.max_groups = 1
    with Store(tmp_path / "state.db") as store:
        engine = build_engine(config, pipeline, [], metrics=metrics, store=store, follow=True)

        async def flow() -> None:
            _feed(pipeline, "payment gateway timed out")
            await engine._persist()
            for text in ("disk quota exceeded on volume", "cache node unreachable"):
                _feed(pipeline, text)  # the first eviction is clean, the second is not
            engine._emit([])

        asyncio.run(flow())
    value = metrics.registry.get_sample_value("watcher_groups_evicted_total")
    assert pipeline.table.evicted == 2 and value == 2.0
