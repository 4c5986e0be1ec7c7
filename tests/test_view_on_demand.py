"""The API view reads the store on demand, not on a clock (issue 15): a daemon nobody asks
reads nothing, and an API answer shows stored state at most MAX_AGE old."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer

from watcher.config import Config
from watcher.daemon_view import MAX_AGE, DaemonView
from watcher.http.app import AppState, make_app
from watcher.http.security import SecurityConfig
from watcher.http.view import InMemoryView
from watcher.metrics import Metrics
from watcher.model import RawLine
from watcher.store.store import Store
from watcher.wiring import build_engine, build_pipeline

from .test_daemon import fed_daemon, get, metric, until


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingStore(Store):
    """The SQLite store, counting the reads the view's caches make; `fail` makes them raise."""

    lists = 0
    fail = False

    def list_groups(self, *args: Any, **kwargs: Any) -> Any:
        type(self).lists += 1
        if self.fail:
            raise OSError("disk I/O error")
        return super().list_groups(*args, **kwargs)


def _view(store: Store, ticks: Ticks) -> DaemonView:
    config, metrics = Config(), Metrics()
    pipeline = build_pipeline(config, metrics)
    engine = build_engine(config, pipeline, [], metrics=metrics, store=store, follow=True)
    return DaemonView(engine, store, metrics, interval=60, max_age=5.0, ages=ticks)


def _stored_group(store: Store) -> str:
    """A group written to the store by another pipeline (as another watcher or an earlier run
    would): only a read of the store shows it to the view."""
    config, metrics = Config(), Metrics()
    pipeline = build_pipeline(config, metrics)
    pipeline.feed([RawLine("2026-01-01T10:00:00Z ERROR disk full on /var/lib/db", "app", "s")])
    pipeline.flush(force=True)
    groups, samples = pipeline.table.take_dirty()
    store.commit(groups, samples)
    return groups[0].id


async def test_current_reads_the_store_when_old_and_only_then(tmp_path: Path) -> None:
    ticks = Ticks()
    with CountingStore(tmp_path / "state.db") as store:
        view = _view(store, ticks)
        assert view.reads == 0  # made: nothing read yet
        await view.current()
        assert view.reads == 1 and view.groups() == []
        gid = _stored_group(store)
        ticks.now += 4.9
        await view.current()
        assert view.reads == 1 and view.group(gid) is None  # younger than max_age: as it was
        ticks.now += 0.1
        await view.current()
        assert view.reads == 2 and view.group(gid) is not None  # max_age old: read again


async def test_requests_that_find_the_caches_old_share_one_read(tmp_path: Path) -> None:
    ticks = Ticks()
    with CountingStore(tmp_path / "state.db") as store:
        view = _view(store, ticks)
        await asyncio.gather(*(view.current() for _ in range(8)))
        assert view.reads == 1


async def test_a_failing_read_answers_from_the_caches_and_waits_max_age(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ticks = Ticks()
    with CountingStore(tmp_path / "state.db") as store:
        view = _view(store, ticks)
        gid = _stored_group(store)
        await view.current()
        assert view.group(gid) is not None
        CountingStore.fail = True
        try:
            ticks.now += 5
            before = CountingStore.lists
            with structlog.testing.capture_logs() as logs:
                await view.current()  # does not raise
            assert CountingStore.lists == before + 1
            assert view.group(gid) is not None  # the last good read still answers
            assert any("Could not refresh the API view" in e["event"] for e in logs)
            await view.current()
            assert CountingStore.lists == before + 1  # not retried at every request
            ticks.now += 5
            await view.current()
            assert CountingStore.lists == before + 2
        finally:
            CountingStore.fail = False


class SpyView(InMemoryView):
    """An in-memory view that counts the times the app brought it up to date."""

    currents: int = 0

    async def current(self) -> None:
        self.currents += 1


async def test_the_app_brings_the_view_current_before_api_requests_only() -> None:
    view = SpyView()
    app = make_app(AppState(Metrics()), view=view, security=SecurityConfig(token="t0ken"))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        for path in ("/health/live", "/health/ready", "/metrics"):
            assert (await client.get(path)).status == 200
        assert view.currents == 0
        assert (await client.post("/error-monitor/monitor/start")).status == 401  # no token
        assert view.currents == 0  # refused by the guard: costs the store nothing
        assert (await client.get("/error-monitor/errors/patterns")).status == 200
        assert view.currents == 1
        headers = {"Authorization": "Bearer t0ken"}
        assert (await client.post("/error-monitor/monitor/start", headers=headers)).status == 200
        assert view.currents == 2
    finally:
        await client.close()


async def test_a_running_daemon_reads_its_store_for_the_api_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the daemon re-read the 2,000 newest groups every 5 s, asked or not."""
    lists: list[float] = []
    real = Store.list_groups

    def counted(self: Store, *args: Any, **kwargs: Any) -> Any:
        lists.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Store, "list_groups", counted)
    daemon, task, port = await fed_daemon(tmp_path)

    async def counted_all() -> bool:
        return metric((await get(port, "/metrics"))[1], "watcher_errors_total") >= 7

    await until(counted_all)
    lists.clear()  # start-up's reads (the engine's restore, re-classification) are not the view's
    await asyncio.sleep(MAX_AGE + 0.5)
    assert lists == []  # lines read, groups committed, health and metrics asked: no view read
    status, body = await get(port, "/error-monitor/errors/patterns")
    assert status == 200 and json.loads(body)["total_patterns"] == 4
    assert len(lists) == 1
    await get(port, "/error-monitor/errors/recent")
    assert len(lists) == 1  # fresh enough: the same read answers
    daemon.shutdown.set()
    assert await asyncio.wait_for(task, 15) == 0
