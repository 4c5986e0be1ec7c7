"""Two watchers on one PostgreSQL database count the same pattern: each one's API shows the
fleet's count and 1m/5m/1h windows (its own plus the other's stored buckets), and each keeps
its own bucket row, so neither overwrites the other's windows; samples keep the newest N
across watchers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import free_port, wait_for
from tests.test_fleet_outage import get, outage_config
from tests.test_fleet_store import append
from tests.watcher_proc import WatcherProcess
from watcher.model import ErrorGroup, Sample
from watcher.store import open_store


def patterns(port: int) -> list[dict[str, Any]]:
    """The patterns a watcher's API lists ([] while it does not answer)."""
    try:
        status, body = get(port, "/error-monitor/errors/patterns?limit=50")
    except OSError:
        return []
    return list(json.loads(body)["patterns"]) if status == 200 else []


def fleet_view(port: int) -> list[tuple[int, int, int, int]]:
    """(count, 1m, 5m, 1h) of each pattern of the test's statements, sorted."""
    shown = [p for p in patterns(port) if "mbt" in p["template"]]
    windows = [(p["count"], *(p["window_counts"].get(k, 0) for k in ("1m", "5m", "1h")))
               for p in shown]  # fmt: skip
    return sorted(windows)


@pytest.fixture
def pair(tmp_path: Path, pg_url: str) -> Iterator[tuple[dict[str, WatcherProcess], dict[str, int]]]:
    """Watchers "a" and "b" on one database, each with its API on a port of its own."""
    procs, ports = {}, {}
    for name in ("a", "b"):
        home = tmp_path / name
        home.mkdir()
        (home / "app.log").write_text("")
        ports[name] = free_port()
        procs[name] = WatcherProcess(
            outage_config(home, pg_url, name, ports[name]), home / "daemon.log"
        )
    yield procs, ports
    for proc in procs.values():
        proc.close()


def test_each_watcher_shows_the_fleets_count_and_windows(
    pg_url: str, pair: tuple[dict[str, WatcherProcess], dict[str, int]]
) -> None:
    """90 events of 3 statements on "a", 150 on "b", all within the last minute: both APIs
    show each pattern at the fleet's 80 (30 + 50) in its count and in each of 1m, 5m and 1h;
    the database holds one bucket row per watcher per pattern."""
    procs, ports = pair
    append(procs["a"].cfg.parent / "app.log", 90, 0)
    append(procs["b"].cfg.parent / "app.log", 150, 100000)
    for proc in procs.values():
        proc.start()
    want = [(80, 80, 80, 80)] * 3
    for port in ports.values():
        wait_for(lambda p=port: fleet_view(p) == want, timeout=30)
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT instance, count(*) FROM group_buckets GROUP BY instance")
        assert sorted(rows) == [("a", 3), ("b", 3)]
    for proc in procs.values():
        assert proc.stop() == 0, proc.tail()


def test_samples_keep_the_newest_across_watchers(pg_url: str) -> None:
    """Two watchers add samples to one group: the store keeps the newest 3 of both, by time,
    whichever watcher wrote last."""
    stores = [open_store(pg_url, instance=name, samples_per_group=3) for name in ("a", "b")]
    try:
        group = ErrorGroup("g1", "template", "boom <*>", "internal_error", "high", False, "")
        for store, times in zip(stores, ((10.0, 30.0, 50.0), (20.0, 40.0, 5.0)), strict=True):
            store.commit([group], {"g1": [Sample(t, "app", f"boom {t:g}", 1) for t in times]})
        found = stores[0].get_group("g1")
    finally:
        for store in stores:
            store.close()
    assert found is not None
    assert [s.timestamp for s in found.samples] == [50.0, 40.0, 30.0]
