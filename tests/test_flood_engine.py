"""Under a flood of new groups the engine commits every EVICTED_FLUSH evictions; the miner's
consolidation still runs on the clock, not at each of those commits (issue 15)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from watcher.engine import Engine, EngineOptions
from watcher.group.table import GroupTable
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
