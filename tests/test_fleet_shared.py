"""Two `watcher run` processes on one PostgreSQL database, one shared Loki source: exactly one
reads it at a time; SIGKILL the reader and the other takes the source over from the fleet's
checkpoint. Every line pushed to Loki is counted once across the fleet: none lost, none twice.
(Two processes, not three: each costs seconds of start-up; tests/test_shared_sources.py holds
the lease moving on while its holder is alive.)"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.fakes.loki import FakeLoki, serve_in_thread
from tests.helpers import free_port, wait_for
from tests.watcher_proc import WatcherProcess
from watcher.fleet.board import holder_instance

LABELS = {"app": "api"}
PATTERNS = (
    "ERROR Payment provider timeout for order {n} after 3 retries",
    "ERROR Database connection refused on shard {n}",
    "ERROR Cache miss storm on key user:{n}",
)
TTL = 1.5  # [watcher] lease_ttl: short, so a hand-over takes about two seconds


def fleet_config(home: Path, url: str, instance: str, loki: str, port: int) -> Path:
    """Watcher `instance` on the shared state: one shared loki source on the fake."""
    cfg = home / "watcher.toml"
    cfg.write_text(
        f'[watcher]\nstate = "{url}"\ninstance = "{instance}"\ninterval = 1\n'
        f"persist_interval = 0.3\nlease_ttl = {TTL}\n"
        f'[http]\nlisten = "127.0.0.1:{port}"\n[parse]\nmultiline_timeout = 0.2\n'
        f'[[sources]]\ntype = "loki"\nname = "loki"\nurl = "{loki}"\nshared = true\n'
        "query = '{app=\"api\"}'\nmax_backoff = 0.5\n"
    )
    return cfg


@dataclass
class Member:
    """One watcher process of the fleet and its HTTP port."""

    proc: WatcherProcess
    port: int


class Feeder:
    """Pushes distinct error lines of three patterns (numbers differ, so they group)."""

    def __init__(self, fake: FakeLoki) -> None:
        self.fake, self.sent = fake, 0

    def feed(self, count: int) -> None:
        for _ in range(count):
            self.fake.push(LABELS, PATTERNS[self.sent % 3].format(n=1000 + self.sent))
            self.sent += 1


def counted(url: str) -> int:
    """Events counted across the fleet: the sum of the stored groups' counts."""
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT COALESCE(SUM(count), 0) FROM groups").fetchone()[0])


def reader(url: str) -> tuple[str, int] | None:
    """The instance holding the source lease of "loki" and its epoch (None when free); the
    lease's holder is "<instance>#<process token>"."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT holder, epoch FROM leases WHERE name = 'source:loki'"
            " AND expires_at > extract(epoch FROM clock_timestamp())"
        ).fetchone()
    return None if row is None else (holder_instance(row[0]), int(row[1]))


def ready(port: int) -> dict[str, object]:
    """GET /health/ready of one watcher (its body, ready or not)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=5) as r:
            return dict(json.load(r))
    except urllib.error.HTTPError as exc:
        return dict(json.load(exc))


def shared_status(port: int) -> object:
    """What /health/ready says this watcher does with each shared source (None before its
    engine runs), and what its sources API says (`watcher status` shows it)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/error-monitor/sources", timeout=5) as r:
        listed = {s["name"]: s["shared"] for s in json.load(r)["sources"]}
    health = ready(port).get("shared_sources")
    return health if health == listed else ("health and API disagree", health, listed)


@pytest.fixture
def loki() -> Iterator[FakeLoki]:
    with serve_in_thread() as fake:
        yield fake


@pytest.fixture
def fleet(tmp_path: Path, pg_url: str, loki: FakeLoki) -> Iterator[dict[str, Member]]:
    """Watchers "a" and "b" (each its own directory and HTTP port), not started yet."""
    members = {}
    for name in ("a", "b"):
        home = tmp_path / name
        home.mkdir()
        port = free_port()
        cfg = fleet_config(home, pg_url, name, loki.url, port)
        members[name] = Member(WatcherProcess(cfg, home / "log"), port)
    yield members
    for member in members.values():
        member.proc.close()


def test_killing_the_reader_of_a_shared_source_hands_it_over_with_no_line_lost_or_twice(
    pg_url: str, loki: FakeLoki, fleet: dict[str, Member]
) -> None:
    """One of two watchers reads the shared Loki source (one tail open, health says which);
    SIGKILL it mid-stream: the other takes the lease (a higher epoch) and resumes from the
    fleet's checkpoint. Lines pushed = events counted across the fleet, exactly."""
    feeder = Feeder(loki)
    for member in fleet.values():
        member.proc.start()
    for member in fleet.values():
        member.proc.wait_started()
    first = wait_for(lambda: reader(pg_url), timeout=20)
    assert isinstance(first, tuple)
    wait_for(lambda: loki.open_tails == 1, timeout=20)
    want = {n: {"loki": "reading" if n == first[0] else "standby"} for n in fleet}
    # each watcher's health names what it does with the shared source (once its engine runs)
    wait_for(lambda: {n: shared_status(m.port) for n, m in fleet.items()} == want, timeout=20)
    feeder.feed(60)
    wait_for(lambda: counted(pg_url) >= feeder.sent - 20, timeout=20)
    feeder.feed(30)  # some of these are read but not committed when the reader dies
    fleet[first[0]].proc.kill()
    feeder.feed(30)  # while nobody reads
    after = wait_for(lambda: (r := reader(pg_url)) is not None and r != first and r, timeout=20)
    assert isinstance(after, tuple)
    assert after[0] != first[0] and after[1] > first[1]
    feeder.feed(30)
    wait_for(lambda: counted(pg_url) >= feeder.sent, timeout=20)
    survivor = fleet[after[0]].proc
    assert survivor.stop() == 0, survivor.tail()
    assert counted(pg_url) == feeder.sent == 150
    with psycopg.connect(pg_url) as conn:
        sources = {r[0] for r in conn.execute("SELECT source FROM checkpoints")}
        groups = conn.execute("SELECT count(*) FROM groups WHERE count > 0").fetchone()[0]
    assert "source:loki" in sources and not any(s.endswith("/loki") for s in sources)
    assert groups == 3
