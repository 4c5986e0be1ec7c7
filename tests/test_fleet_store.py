"""Two `watcher run` processes on one PostgreSQL database, each following its own file: the
same errors are one group each, and the counts add up across the fleet exactly, also across a
restart of one of them (its checkpoint is its own; it resumes without counting anything twice)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.helpers import wait_for
from tests.watcher_proc import WatcherProcess, statement_line

STATEMENTS = (1, 2, 3)


def fleet_config(home: Path, url: str, instance: str) -> Path:
    """A watcher named `instance` on the shared state, one file source named "app" (the same
    name on every instance, as identical sidecars have)."""
    cfg = home / "watcher.toml"
    cfg.write_text(
        f'[watcher]\nstate = "{url}"\ninstance = "{instance}"\ninterval = 1\n'
        "persist_interval = 0.3\n"
        "[http]\nenabled = false\n[parse]\nmultiline_timeout = 0.2\n"
        f'[[sources]]\ntype = "file"\nname = "app"\npath = "{home / "app.log"}"\n'
        'read_from = "beginning"\npoll_interval = 0.05\n'
    )
    return cfg


def append(log: Path, lines: int, first_seq: int) -> None:
    """`lines` error lines, the statements in turn, sequence numbers from `first_seq`."""
    with log.open("a") as fh:
        for i in range(lines):
            fh.write(statement_line(STATEMENTS[i % len(STATEMENTS)], first_seq + i) + "\n")


def groups(url: str) -> dict[str, int]:
    """The stored groups of these statements: template -> count."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT template, count FROM groups WHERE template LIKE '%%mbt%%'")
        return {template: int(count) for template, count in rows}


@pytest.fixture
def fleet(tmp_path: Path, pg_url: str) -> Iterator[dict[str, WatcherProcess]]:
    """Watchers "a" and "b", each with its own directory and file, not started yet."""
    procs = {}
    for name in ("a", "b"):
        home = tmp_path / name
        home.mkdir()
        (home / "app.log").write_text("")
        procs[name] = WatcherProcess(fleet_config(home, pg_url, name), home / "daemon.log")
    yield procs
    for proc in procs.values():
        proc.close()


def test_two_watchers_on_one_database_count_every_line_once_in_one_group_per_error(
    tmp_path: Path, pg_url: str, fleet: dict[str, WatcherProcess]
) -> None:
    """600 + 900 lines of 3 statements on two watchers: 3 groups whose counts sum to 1,500;
    one watcher restarted and fed 300 more: 1,800, still 3 groups, each checkpoint its own."""
    append(tmp_path / "a" / "app.log", 600, 0)
    append(tmp_path / "b" / "app.log", 900, 100000)
    for proc in fleet.values():
        proc.start()
    for proc in fleet.values():
        proc.wait_started()
    wait_for(lambda: sum(groups(pg_url).values()) >= 1500, timeout=30)
    assert fleet["a"].stop() == 0
    append(tmp_path / "a" / "app.log", 300, 600)
    fleet["a"].start()
    fleet["a"].wait_started()
    wait_for(lambda: sum(groups(pg_url).values()) >= 1800, timeout=30)
    for proc in fleet.values():
        assert proc.stop() == 0, proc.tail()
    counted = groups(pg_url)
    assert len(counted) == 3, counted
    assert sorted(counted.values()) == [600, 600, 600], counted
    with psycopg.connect(pg_url) as conn:
        sources = [r[0] for r in conn.execute("SELECT DISTINCT source FROM checkpoints")]
    assert sorted(sources) == ["a/app", "b/app"]
