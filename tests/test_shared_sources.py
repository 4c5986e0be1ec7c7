"""Shared sources in one process, on real PostgreSQL and the fake Loki read by the real client:
the source lease changes hands when its holder stops renewing; a holder whose lease moved on
stops reading at once, commits nothing of that tenure (the epoch fences its checkpoint), and
takes back what it counted, so the next holder's re-read counts every line exactly once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fakes.loki import FakeLoki, fake_loki  # noqa: F401  (the fixture)
from watcher.config import Config, ParseConfig, WatcherConfig
from watcher.fleet.shared_sources import SharedSources, holders, lease_name
from watcher.metrics import Metrics
from watcher.sources.loki import LokiSourceConfig
from watcher.store import Fence, LeaseLost, StateStore, open_store
from watcher.wiring import build_engine, build_pipeline

LABELS = {"app": "api"}
PATTERNS = (
    "ERROR Payment provider timeout for order {n} after 3 retries",
    "ERROR Database connection refused on shard {n}",
)


async def until(cond: Callable[[], object], timeout: float = 15.0) -> None:
    """Poll `cond` on the loop until it is truthy; AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.05)


class Member:
    """One watcher of a fleet, in this process: its own store connection, engine and metrics."""

    def __init__(self, state: str, instance: str, loki: str, *, ttl: float, persist: float):
        self.config = Config(
            watcher=WatcherConfig(
                state=state, instance=instance, lease_ttl=ttl, persist_interval=persist
            ),
            parse=ParseConfig(multiline_timeout=0.2),
            sources=(
                LokiSourceConfig(url=loki, query='{app="api"}', shared=True, max_backoff=0.3),
            ),
        )
        self.store: StateStore = open_store(state, instance=instance)
        self.metrics = Metrics(process=False)
        pipeline = build_pipeline(self.config, self.metrics, clock=time.time)
        self.engine = build_engine(self.config, pipeline, list(self.config.sources),
                                   metrics=self.metrics, store=self.store, follow=True)  # fmt: skip
        self.shutdown = asyncio.Event()
        self.task: asyncio.Task[Any] | None = None

    def start(self) -> Member:
        self.task = asyncio.create_task(self.engine.run(self.shutdown))
        return self

    async def stop(self) -> None:
        self.shutdown.set()
        assert self.task is not None
        await self.task
        self.store.close()

    def held(self) -> float:
        """watcher_source_held{source="loki"}."""
        return float(self.metrics.source_held.labels("loki")._value.get())

    def events(self) -> int:
        """Error events this member counted (in memory, committed or not)."""
        return sum(g.count for g in self.engine.pipeline.table.snapshot())


def push(fake: FakeLoki, count: int, first: int) -> None:
    for n in range(first, first + count):
        fake.push(LABELS, PATTERNS[n % 2].format(n=n))


def counted(url: str) -> int:
    """Events counted across the fleet (the stored groups' counts)."""
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT COALESCE(SUM(count), 0) FROM groups").fetchone()[0])


def checkpoint(url: str) -> dict[str, str]:
    """The fleet's checkpoint of the shared source (stream -> cursor JSON)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT stream, cursor FROM checkpoints WHERE source = %s", (lease_name("loki"),)
        )
        return {stream: cursor for stream, cursor in rows}


def steal(url: str, holder: str = "b") -> int:
    """Another watcher takes the lease over (as its acquire would after an expiry): its epoch."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "UPDATE leases SET holder = %s, epoch = epoch + 1,"
            " expires_at = extract(epoch FROM clock_timestamp()) + 60 WHERE name = %s"
            " RETURNING epoch",
            (holder, lease_name("loki")),
        ).fetchone()
    return int(row[0])


def expire(url: str) -> None:
    """The watcher that took the lease over dies: its lease runs out now."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE leases SET expires_at = extract(epoch FROM clock_timestamp()) WHERE name = %s",
            (lease_name("loki"),),
        )


@pytest.fixture
async def stores(pg_url: str) -> AsyncIterator[Callable[[str], StateStore]]:
    """Stores on one PostgreSQL database, one per instance name; closed at the end."""
    opened: list[StateStore] = []

    def make(instance: str) -> StateStore:
        opened.append(open_store(pg_url, instance=instance))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


async def test_the_source_lease_moves_to_a_standby_when_its_holder_stops_renewing(
    stores: Callable[[str], StateStore],
) -> None:
    """Two watchers hold-loop one shared source: one reads, the other stands by; the reader
    dies (no release, no renewal) and the standby takes over within the ttl (+ a third), at a
    higher epoch. The fleet view's `holders` names the reader."""
    ttl = 0.6
    read: list[tuple[str, int]] = []

    def reader(name: str) -> Any:
        async def reading(held: asyncio.Event, epoch: int) -> None:
            read.append((name, epoch))
            await held.wait()

        return reading

    a, b = stores("a"), stores("b")
    fleet = {n: SharedSources(s, n, ttl, metrics=Metrics(process=False)) for n, s in
             (("a", a), ("b", b))}  # fmt: skip
    stop = asyncio.Event()
    task_a = asyncio.create_task(fleet["a"].hold("loki", stop, reader("a")))
    await until(lambda: read == [("a", 1)])
    task_b = asyncio.create_task(fleet["b"].hold("loki", stop, reader("b")))
    await asyncio.sleep(ttl)  # two acquire attempts by b, refused
    assert read == [("a", 1)]
    assert fleet["a"].status() == {"loki": "reading"} and fleet["b"].status() == {"loki": "standby"}
    assert (holders(b)["loki"].holder, holders(b)["loki"].held) == ("a", True)
    task_a.cancel()  # a dies: no renewal, no release
    died = time.monotonic()
    await until(lambda: len(read) == 2, timeout=5)
    assert read[1] == ("b", 2)
    assert time.monotonic() - died < ttl + ttl / 3 + 0.5  # loose: the loop on a busy machine
    assert holders(a)["loki"].holder == "b"
    stop.set()
    await task_b
    await fleet["b"].release_all()
    assert not holders(a)["loki"].held  # released at shutdown: free for the next at once


async def test_counts_of_an_ended_tenure_are_taken_back_when_a_new_one_begins(
    stores: Callable[[str], StateStore], pg_url: str
) -> None:
    """A source restarted by a reload under a new epoch (its lease expired meanwhile): what it
    counted under the old epoch and never committed is taken back before the new tenure's
    batches are admitted; an old-epoch batch is refused, a new-epoch one admitted."""
    from watcher.fleet.shared_sources import Epoched
    from watcher.model import RawLine

    shared = SharedSources(stores("a"), "a", 30, metrics=Metrics(process=False))
    stop, started = asyncio.Event(), asyncio.Event()

    async def reading(held: asyncio.Event, epoch: int) -> None:
        started.set()
        await held.wait()

    first = asyncio.create_task(shared.hold("loki", stop, reading))
    await until(started.is_set)
    tenure = shared.tenures["loki"]
    assert shared.admit(Epoched([RawLine("x", source="loki")], 1))
    tenure.counted = {"g1": 4}
    stop.set()  # the reload stops the source (no commit, no release) …
    await first
    with psycopg.connect(pg_url) as conn:  # … and its lease expires meanwhile
        conn.execute("UPDATE leases SET expires_at = 0")
    stop, started = asyncio.Event(), asyncio.Event()
    second = asyncio.create_task(shared.hold("loki", stop, reading))
    await until(started.is_set)
    assert shared.take_revoked() == {"loki": {"g1": 4}}
    assert not shared.admit(Epoched([RawLine("x", source="loki")], 1))
    assert shared.admit(Epoched([RawLine("x", source="loki")], 2))
    stop.set()
    await second


async def test_a_commit_under_a_lease_that_moved_on_writes_nothing(
    stores: Callable[[str], StateStore], pg_url: str
) -> None:
    """The fence: a commit carrying a shared source's cursors under an epoch that is no longer
    the lease's raises LeaseLost and writes neither counts nor the checkpoint; under the
    current epoch it lands, under the lease's name (not `<instance>/<source>`)."""
    from watcher.model import ErrorGroup

    store = stores("a")
    epoch = store.acquire_lease(lease_name("loki"), "a", 30)
    assert epoch is not None
    group = ErrorGroup("g1", "template", "ERROR x <*>", "internal_error", "high", False, count=5)
    fence = {"loki": Fence(lease_name("loki"), "a", epoch)}
    cursors = {"loki": {"stream": {"ns": 1}}}
    store.commit([group], cursors=cursors, fences=fence)
    assert counted(pg_url) == 5 and list(checkpoint(pg_url)) == ["stream"]
    assert store.get_checkpoint(lease_name("loki"), fleet=True) == {"stream": {"ns": 1}}
    assert store.get_checkpoint("loki") == {}  # this instance's own key holds nothing
    steal(pg_url)
    group.count = 9
    with pytest.raises(LeaseLost):
        store.commit([group], cursors={"loki": {"stream": {"ns": 2}}}, fences=fence)
    assert counted(pg_url) == 5
    assert store.get_checkpoint(lease_name("loki"), fleet=True) == {"stream": {"ns": 1}}


async def test_a_holder_deposed_between_renewals_stops_at_its_next_commit_and_counts_nothing_twice(
    fake_loki: FakeLoki,  # noqa: F811
    pg_url: str,
) -> None:
    """Watcher a reads and commits 30 lines; the lease moves to b behind a's back (a renews
    only every 10 s). a reads 20 more, and its next commit is refused: a stops reading at once,
    stores none of the 20 nor its checkpoint. b then resumes from the fleet's checkpoint and
    counts the 20: 50 lines, 50 events, none lost, none twice."""
    a = Member(pg_url, "a", fake_loki.url, ttl=30, persist=0.2).start()
    await until(lambda: fake_loki.open_tails == 1)
    push(fake_loki, 30, 0)
    await until(lambda: counted(pg_url) == 30)
    await until(lambda: bool(checkpoint(pg_url)))
    before = checkpoint(pg_url)
    steal(pg_url)
    push(fake_loki, 20, 30)
    await until(lambda: fake_loki.open_tails == 0)  # a stopped reading at once
    assert a.held() == 0
    await asyncio.sleep(0.5)  # a few more persists: none of them lands
    assert counted(pg_url) == 30 and checkpoint(pg_url) == before
    await a.stop()
    assert counted(pg_url) == 30
    expire(pg_url)
    b = Member(pg_url, "b", fake_loki.url, ttl=30, persist=0.2).start()
    await until(lambda: counted(pg_url) >= 50)
    await asyncio.sleep(0.5)
    await b.stop()
    assert counted(pg_url) == 50
    assert b.held() == 0  # released at shutdown


async def test_a_holder_whose_renewal_is_refused_takes_back_what_it_had_not_committed(
    fake_loki: FakeLoki,  # noqa: F811
    pg_url: str,
) -> None:
    """Watcher a counts 30 lines but has not committed them (persist every 60 s) when its
    lease moves on: its renewal is refused, it stops reading and takes the 30 back, so its
    final commit adds none; b reads them again from the checkpoint: 30, exactly."""
    a = Member(pg_url, "a", fake_loki.url, ttl=0.9, persist=60).start()
    await until(lambda: fake_loki.open_tails == 1)
    assert a.held() == 1
    push(fake_loki, 30, 0)
    await until(lambda: a.events() == 30)
    steal(pg_url)
    await until(lambda: fake_loki.open_tails == 0)
    await until(lambda: a.events() == 0)  # taken back
    await a.stop()
    assert counted(pg_url) == 0 and checkpoint(pg_url) == {}
    expire(pg_url)
    b = Member(pg_url, "b", fake_loki.url, ttl=0.9, persist=0.2).start()
    await until(lambda: counted(pg_url) >= 30)
    await asyncio.sleep(0.5)
    await b.stop()
    assert counted(pg_url) == 30


async def test_two_watchers_given_one_instance_name_never_both_read_a_shared_source(
    fake_loki: FakeLoki,  # noqa: F811
    pg_url: str,
) -> None:
    """Two watchers with one `[watcher] instance` name (a pod restarted while the old one is
    paused, or a duplicate the fleet guard has not caught yet) hold-loop one shared source:
    the lease holder is per process, so only one of them reads and every line counts once."""
    a = Member(pg_url, "web", fake_loki.url, ttl=0.9, persist=0.2).start()
    await until(lambda: fake_loki.open_tails == 1)
    b = Member(pg_url, "web", fake_loki.url, ttl=0.9, persist=0.2).start()
    await asyncio.sleep(1.2)  # b's acquire attempts, every ttl/3
    assert fake_loki.open_tails == 1 and (a.held(), b.held()) == (1, 0)
    push(fake_loki, 20, 0)
    await until(lambda: counted(pg_url) >= 20)
    await asyncio.sleep(0.5)
    await b.stop()
    await a.stop()
    assert counted(pg_url) == 20


async def test_on_sqlite_a_shared_source_is_read_as_any_other(
    fake_loki: FakeLoki,  # noqa: F811
    tmp_path: Path,
) -> None:
    """One watcher on SQLite (a store nobody shares): `shared = true` takes no lease and keeps
    its checkpoint under the source's own name; every line is counted."""
    db = tmp_path / "state.db"
    a = Member(f"sqlite:///{db}", "a", fake_loki.url, ttl=0.9, persist=0.2)
    assert a.engine.options.shared is None
    a.start()
    await until(lambda: fake_loki.open_tails == 1)
    push(fake_loki, 10, 0)
    await until(lambda: a.events() == 10)
    await a.stop()
    store = open_store(f"sqlite:///{db}")
    try:
        assert sum(g.count for g in store.list_groups()) == 10
        assert store.get_checkpoint("loki") != {}
        assert store.lease_holders() == []
    finally:
        store.close()


def test_status_shows_a_shared_source_on_standby_as_standby_not_down() -> None:
    """`watcher status`: a shared source another watcher reads is "standby"; one that failed
    is still "down" with its error, and the reader's is "up"."""
    from watcher.status import Sample, render

    def source(name: str, up: bool, shared: str | None, error: str | None = None) -> dict[str, Any]:
        return {"name": name, "up": up, "shared": shared, "error": error, "lines": 0}

    screen = render(
        Sample(0.0, [source("loki", False, "standby"), source("cw", False, "standby", "boom"),
                     source("rw", True, "reading")], []),
        {},
    )  # fmt: skip
    rows = [line.split() for line in screen.splitlines()[1:] if line and line[0] != " "]
    states = {row[0]: row[1] for row in rows[:3]}
    assert states == {"loki": "standby", "cw": "down", "rw": "up"}
