"""Three `watcher run` processes on one PostgreSQL database, one shared Loki source: exactly one
reads it at a time; SIGKILL the reader and another takes the source over from the fleet's
checkpoint. Every line pushed to Loki is counted once across the fleet: none lost, none twice."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.fakes.loki import FakeLoki, serve_in_thread
from tests.helpers import free_port, wait_for
from tests.watcher_proc import WatcherProcess

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
    """The instance holding the source lease of "loki" and its epoch (None when free)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT holder, epoch FROM leases WHERE name = 'source:loki'"
            " AND expires_at > extract(epoch FROM clock_timestamp())"
        ).fetchone()
    return None if row is None else (row[0], int(row[1]))


def ready(port: int) -> dict[str, object]:
    """GET /health/ready of one watcher (its body, ready or not)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=5) as r:
            return dict(json.load(r))
    except urllib.error.HTTPError as exc:
        return dict(json.load(exc))


@pytest.fixture
def loki() -> Iterator[FakeLoki]:
    with serve_in_thread() as fake:
        yield fake


@pytest.fixture
def fleet(tmp_path: Path, pg_url: str, loki: FakeLoki) -> Iterator[dict[str, WatcherProcess]]:
    """Watchers "a", "b" and "c" (each its own directory and HTTP port), not started yet."""
    procs = {}
    for name in ("a", "b", "c"):
        home = tmp_path / name
        home.mkdir()
        port = free_port()
        proc = WatcherProcess(fleet_config(home, pg_url, name, loki.url, port), home / "log")
        proc.port = port  # type: ignore[attr-defined]
        procs[name] = proc
    yield procs
    for proc in procs.values():
        proc.close()


def test_killing_the_reader_of_a_shared_source_hands_it_over_with_no_line_lost_or_twice(
    pg_url: str, loki: FakeLoki, fleet: dict[str, WatcherProcess]
) -> None:
    """One of three watchers reads the shared Loki source (one tail open, health says which);
    SIGKILL it mid-stream: another takes the lease (a higher epoch) and resumes from the
    fleet's checkpoint; then SIGKILL that one too. Lines pushed = events counted, exactly."""
    feeder = Feeder(loki)
    for proc in fleet.values():
        proc.start()
    for proc in fleet.values():
        proc.wait_started()
    first = wait_for(lambda: reader(pg_url), timeout=20)
    assert isinstance(first, tuple)
    wait_for(lambda: loki.open_tails == 1, timeout=20)
    statuses = {n: ready(p.port)["shared_sources"] for n, p in fleet.items()}  # type: ignore[attr-defined]
    assert statuses == {n: {"loki": "reading" if n == first[0] else "standby"} for n in fleet}
    seen = [first]
    for _ in range(2):  # kill the reader twice: a, b or c, then one of the two left
        feeder.feed(60)
        wait_for(lambda: counted(pg_url) >= feeder.sent - 20, timeout=20)
        feeder.feed(30)  # some of these are read but not committed when the reader dies
        fleet[seen[-1][0]].kill()
        feeder.feed(30)  # while nobody reads
        after = wait_for(lambda: (r := reader(pg_url)) is not None and r != seen[-1] and r,
                         timeout=20)  # fmt: skip
        assert isinstance(after, tuple)
        assert after[0] != seen[-1][0] and after[1] > seen[-1][1]
        seen.append(after)
    feeder.feed(30)
    wait_for(lambda: counted(pg_url) >= feeder.sent, timeout=20)
    survivor = fleet[seen[-1][0]]
    assert survivor.stop() == 0, survivor.tail()
    assert counted(pg_url) == feeder.sent == 270
    with psycopg.connect(pg_url) as conn:
        sources = {r[0] for r in conn.execute("SELECT source FROM checkpoints")}
        groups = conn.execute("SELECT count(*) FROM groups WHERE count > 0").fetchone()[0]
    assert "source:loki" in sources and not any(s.endswith("/loki") for s in sources)
    assert groups == 3
