"""PostgreSQL stopped under two running watchers: they keep tailing and counting in memory,
say the store is degraded on `/health/ready` and `/metrics`, and, once the server is back,
write what they held, so the fleet's totals are exact (every line counted once, none lost).

The stopped cluster is the test's own (stopping the session's would fail every other test);
the cut one is the session's, reached through a relay of the test's own."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.helpers import free_port, wait_for
from tests.netcut import NetCut
from tests.postgres import Cluster, running_cluster
from tests.test_fleet_store import append, groups
from tests.watcher_proc import WatcherProcess, statement_line


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A PostgreSQL server of this test's own, which it may stop and start."""
    with running_cluster() as cluster:
        yield cluster


def outage_config(home: Path, url: str, instance: str, port: int, extra: str = "") -> Path:
    """A watcher named `instance` on the shared state, its API on `port`, one file source."""
    cfg = home / "watcher.toml"
    cfg.write_text(
        f'[watcher]\nstate = "{url}"\ninstance = "{instance}"\ninterval = 1\n'
        f"persist_interval = 0.3\n{extra}[grouping]\nmax_groups = 10\n"
        f'[http]\nlisten = "127.0.0.1:{port}"\n[parse]\nmultiline_timeout = 0.2\n'
        f'[[sources]]\ntype = "file"\nname = "app"\npath = "{home / "app.log"}"\n'
        'read_from = "beginning"\npoll_interval = 0.05\n'
    )
    return cfg


def append_many(log: Path, lines: int, first_seq: int) -> None:
    """`lines` error lines of 14 statements in turn: more groups than `max_groups` (10), so
    groups are evicted and recalled while the store is away."""
    with log.open("a") as fh:
        for i in range(lines):
            fh.write(statement_line(1 + i % 14, first_seq + i) + "\n")


def get(port: int, path: str) -> tuple[int, str]:
    """(status, body) of a GET on a watcher's HTTP port."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def metric(port: int, name: str) -> float:
    """The sum of a metric's samples on a watcher's /metrics (0 when absent or not served)."""
    try:
        _, body = get(port, "/metrics")
    except OSError:
        return 0.0
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", re.M)
    return sum(float(v) for v in pattern.findall(body))


def store_status(port: int) -> tuple[int, str]:
    """(HTTP status of /health/ready, its store status)."""
    status, body = get(port, "/health/ready")
    return status, json.loads(body)["store"]["status"]


def test_postgresql_stopped_under_two_watchers_they_keep_counting_and_catch_up_exactly(
    tmp_path: Path, own_cluster: Cluster
) -> None:
    """300 lines of 3 statements per watcher stored; PostgreSQL stopped; 300 more per watcher,
    of 14 statements (more than max_groups: groups evicted and recalled meanwhile), are still
    read (`watcher_lines_total` reaches 600 each) while readiness says ready with the store
    "degraded", `watcher_state_errors_total` rises and `watcher_state_unsaved_groups` shows
    the held groups; PostgreSQL started again: the 14 groups sum to exactly 1,200 (nothing
    lost, nothing twice), readiness says "ok" and nothing is held."""
    url = own_cluster.create()
    homes, ports, fleet = {}, {}, {}
    for name in ("a", "b"):
        homes[name] = tmp_path / name
        homes[name].mkdir()
        (homes[name] / "app.log").write_text("")
        ports[name] = free_port()
        cfg = outage_config(homes[name], url, name, ports[name])
        fleet[name] = WatcherProcess(cfg, homes[name] / "daemon.log")
    try:
        for seq, proc in enumerate(fleet.values()):
            append(proc.cfg.parent / "app.log", 300, seq * 100000)
            proc.start()
        for proc in fleet.values():
            proc.wait_started()
        wait_for(lambda: sum(groups(url).values()) == 600, timeout=30)

        own_cluster.pause()
        for seq, proc in enumerate(fleet.values()):
            append_many(proc.cfg.parent / "app.log", 300, seq * 100000 + 300)
        for name, port in ports.items():
            wait_for(lambda p=port: metric(p, "watcher_lines_total") >= 600, timeout=30)
            wait_for(lambda p=port: store_status(p) == (200, "degraded"), timeout=30)
            assert metric(port, "watcher_state_errors_total") > 0
            wait_for(lambda p=port: metric(p, "watcher_state_unsaved_groups") > 0, timeout=30)
            assert metric(port, "watcher_state_unsaved_groups") <= 14
            assert fleet[name].running, fleet[name].tail()

        own_cluster.resume()
        wait_for(lambda: sum(groups(url).values()) >= 1200, timeout=60)
        for port in ports.values():
            wait_for(lambda p=port: store_status(p) == (200, "ok"), timeout=30)
            assert metric(port, "watcher_state_unsaved_groups") == 0
        for proc in fleet.values():
            assert proc.stop() == 0, proc.tail()
    finally:
        for proc in fleet.values():
            proc.close()
    counted = groups(url)
    assert sum(counted.values()) == 1200, counted
    assert len(counted) == 14, counted
    with psycopg.connect(url) as conn:
        sources = [r[0] for r in conn.execute("SELECT DISTINCT source FROM checkpoints")]
    assert sorted(sources) == ["a/app", "b/app"]


def test_a_network_cut_to_postgresql_does_not_stop_the_reading(
    tmp_path: Path, pg_cluster: Cluster, pg_url: str
) -> None:
    """The watcher reaches PostgreSQL over TCP through a relay that is cut (no byte passes,
    nothing fails): 300 more lines are still read while the store says "degraded" (its calls
    give up after `state_timeout`, 1 s here, instead of waiting on TCP for minutes); once the
    relay heals, the 3 groups sum to exactly 600."""
    database = pg_url.split("?")[0].rsplit("/", 1)[1]
    relay = NetCut(str(pg_cluster.root / f".s.PGSQL.{pg_cluster.port}"))
    url = f"postgresql://postgres@127.0.0.1:{relay.port}/{database}"
    home, port = tmp_path / "a", free_port()
    home.mkdir()
    cfg = outage_config(home, url, "a", port, "state_timeout = 1\n")
    proc = WatcherProcess(cfg, home / "daemon.log")
    try:
        append(home / "app.log", 300, 0)
        proc.start()
        proc.wait_started()
        wait_for(lambda: sum(groups(pg_url).values()) == 300, timeout=30)
        relay.cut()
        append(home / "app.log", 300, 300)
        wait_for(lambda: metric(port, "watcher_lines_total") >= 600, timeout=30)
        wait_for(lambda: store_status(port) == (200, "degraded"), timeout=30)
        relay.heal()
        wait_for(lambda: sum(groups(pg_url).values()) >= 600, timeout=60)
        wait_for(lambda: store_status(port) == (200, "ok"), timeout=30)
        assert proc.stop() == 0, proc.tail()
    finally:
        proc.close()
        relay.close()
    assert sorted(groups(pg_url).values()) == [200, 200, 200]
