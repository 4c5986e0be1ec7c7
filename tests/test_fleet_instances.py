"""Instances on one shared state, as real `watcher run` processes on one PostgreSQL database:
a second live watcher with a name already running is refused (exit 2, one line naming the
instance and where it runs) instead of sharing — and corrupting — the first one's checkpoints
and commit numbers; every instance shows the whole fleet (API, `watcher status`, /metrics)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import clean_env, free_port, wait_for
from tests.test_fleet_store import append, groups
from tests.watcher_proc import WatcherProcess
from watcher.cli import main


def config(
    home: Path, url: str, instance: str, *, port: int | None = None, extra: str = ""
) -> Path:
    """A watcher named `instance` on the shared state with its own file; HTTP on `port`."""
    http = f'listen = "127.0.0.1:{port}"\n' if port else "enabled = false\n"
    cfg = home / "watcher.toml"
    cfg.write_text(
        f'[watcher]\nstate = "{url}"\ninstance = "{instance}"\ninterval = 1\n{extra}'
        f"persist_interval = 0.3\n[http]\n{http}[parse]\nmultiline_timeout = 0.2\n"
        f'[[sources]]\ntype = "file"\nname = "app"\npath = "{home / "app.log"}"\n'
        'read_from = "beginning"\npoll_interval = 0.05\n'
    )
    return cfg


@pytest.fixture
def homes(tmp_path: Path) -> Iterator[list[Path]]:
    """Three watcher directories, each with an empty app.log."""
    dirs = []
    for name in ("one", "two", "three"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "app.log").write_text("")
        dirs.append(tmp_path / name)
    yield dirs


def test_a_second_live_watcher_with_the_same_instance_name_is_refused(
    pg_url: str, homes: list[Path]
) -> None:
    """Two watchers named "web" on one database (a copied config, two processes on a host):
    the second exits 2 with one line naming "web", the host and the pid it runs as; the
    first keeps counting every line of its file exactly once."""
    first = WatcherProcess(config(homes[0], pg_url, "web"), homes[0] / "daemon.log")
    first.start()
    try:
        first.wait_started()
        append(homes[0] / "app.log", 60, 0)
        wait_for(lambda: sum(groups(pg_url).values()) >= 60, timeout=20)
        append(homes[1] / "app.log", 90, 100000)
        second = subprocess.run(
            [sys.executable, "-m", "watcher", "run", "-c", str(config(homes[1], pg_url, "web"))],
            capture_output=True,
            text=True,
            timeout=20,
            env=clean_env(),
        )
        assert second.returncode == 2, second.stderr[-2000:]
        refusal = [line for line in second.stderr.splitlines() if "Refusing to start" in line]
        assert len(refusal) == 1, second.stderr[-2000:]
        record = json.loads(refusal[0])
        assert f"'web' is already running on {socket.gethostname()}" in record["error"]
        assert f"pid {first.proc.pid}" in record["error"]  # type: ignore[union-attr]
        append(homes[0] / "app.log", 60, 60)
        wait_for(lambda: sum(groups(pg_url).values()) >= 120, timeout=20)
        assert first.stop() == 0, first.tail()
    finally:
        first.close()
    assert sorted(groups(pg_url).values()) == [40, 40, 40]  # none of the second's 90


def get(port: int, path: str) -> object:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        body = resp.read()
    return body.decode() if path == "/metrics" else json.loads(body)


def test_every_instance_shows_the_whole_fleet(
    pg_url: str, homes: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Watchers "a" and "b" on one database: each one's /error-monitor/fleet lists both (host,
    pid, version, the sources each reads, up) and the one leader; /metrics counts 2 instances
    up and `watcher status --once` prints both; after "b" stops cleanly, "a" shows it stopped."""
    ports = [free_port(), free_port()]
    procs = [
        WatcherProcess(
            config(homes[i], pg_url, name, port=ports[i], extra="lease_ttl = 3\n"),
            homes[i] / "daemon.log",
        )
        for i, name in enumerate(("a", "b"))
    ]
    try:
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.wait_started()

        def both_up(port: int) -> list[dict]:  # type: ignore[type-arg]
            """Both up, and one of them seen leading (the lease is taken after the name)."""
            fleet = get(port, "/error-monitor/fleet")["instances"]  # type: ignore[index]
            up = [i["state"] for i in fleet] == ["up", "up"]
            return fleet if up and any(i["leader"] for i in fleet) else []

        for port in ports:
            fleet = wait_for(lambda port=port: both_up(port), timeout=15)
            assert [i["name"] for i in fleet] == ["a", "b"]
            pids = {i["name"]: i["pid"] for i in fleet}
            assert pids == {"a": procs[0].proc.pid, "b": procs[1].proc.pid}  # type: ignore[union-attr]
            assert all(i["sources"] == ["app"] and i["version"] for i in fleet)
            leaders = [i["name"] for i in fleet if i["leader"]]
            assert len(leaders) == 1, fleet  # the holder of the leader lease, seen from both
        metrics = get(ports[0], "/metrics")
        assert 'watcher_fleet_instances{state="up"} 2.0' in metrics  # type: ignore[operator]
        assert 'watcher_fleet_instance_last_seen_age_seconds{watcher_instance="b"}' in metrics  # type: ignore[operator]
        assert main(["status", "--once", "--url", f"http://127.0.0.1:{ports[1]}"]) == 0
        rows = [line.split() for line in capsys.readouterr().out.splitlines()]
        assert ["a", "up"] in [r[:2] for r in rows] and ["b", "up"] in [r[:2] for r in rows]
        assert procs[1].stop() == 0
        wait_for(
            lambda: (
                [i["state"] for i in get(ports[0], "/error-monitor/fleet")["instances"]]  # type: ignore[index]
                == ["up", "stopped"]
            ),
            timeout=15,
        )
    finally:
        for proc in procs:
            proc.close()
