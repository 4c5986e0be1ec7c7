"""The Leader (watcher/fleet/leader.py) on real stores, and the fix pipeline under its fence:
one leader at a time, a hand-over at release or expiry, a deposed leader that writes nothing
and opens no PR, and a new leader that picks up the fix its predecessor left pending."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.test_fix_pipeline import FakeAnalyzer, analysis, group, make_rig
from tests.test_fix_pipeline import checkout as checkout  # a fixture
from watcher.fleet.leader import Leader
from watcher.metrics import Metrics
from watcher.model import Fix
from watcher.store import Fence, LeaseLost, StateStore, open_store


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gauge(metrics: Metrics, name: str) -> float:
    """A gauge's value."""
    return metrics.registry.get_sample_value(name) or 0.0


async def test_on_sqlite_the_one_watcher_leads_and_no_lease_is_written(tmp_path: Path) -> None:
    """A store nobody else writes: the watcher leads from the start, fences nothing, and its
    lease loop reads and writes no lease."""
    store = open_store(f"sqlite://{tmp_path}/state.db")
    metrics = Metrics()
    leader = Leader(store, "solo#1", ttl=0.3, metrics=metrics)
    stop = asyncio.Event()
    await leader.step()  # as the daemon does at start
    task = asyncio.create_task(leader.run(stop))
    await asyncio.sleep(0.2)
    stop.set()
    await task
    assert leader.is_leader and leader.fence() is None
    assert gauge(metrics, "watcher_leader") == 1
    assert store.lease_holders() == []
    store.close()


async def test_one_of_two_leads_and_the_other_takes_over_at_release(pg_url: str) -> None:
    """Two watchers on one PostgreSQL database: the first to try leads (epoch 1), the other
    follows and knows who leads; a shutdown releases the lease and the follower leads at
    its next try (epoch 2), while the old leader's fence is refused."""
    stores = [open_store(pg_url), open_store(pg_url)]
    metrics = Metrics()
    a = Leader(stores[0], "a#1", ttl=5.0)
    b = Leader(stores[1], "b#1", ttl=5.0, metrics=metrics)
    await a.step()
    await b.step()
    assert a.is_leader and a.epoch == 1
    assert not b.is_leader and b.current == "a#1" and b.health()["current"] == "a#1"
    old = a.fence()
    stop = asyncio.Event()
    stop.set()
    await a.run(stop)  # stopping at once: releases the lease
    assert not a.is_leader
    await b.step()
    assert b.is_leader and b.epoch == 2
    assert gauge(metrics, "watcher_leader") == 1 and gauge(metrics, "watcher_leader_epoch") == 2
    assert old is not None
    with pytest.raises(LeaseLost):
        stores[0].save_fix(Fix("f", "g", "pending", 1.0), fence=old)
    for store in stores:
        store.close()


async def test_a_leader_that_cannot_renew_stops_leading_within_its_ttl(pg_url: str) -> None:
    """The server refuses this watcher's connections (a network cut): by its own clock the
    leader stops leading `ttl` after its last renewal (so before its lease can expire in the
    database), its fence is refused, the metric drops to 0; another watcher takes the lease
    once it expired."""
    clock, metrics = Clock(), Metrics()
    store = open_store(pg_url)
    leader = Leader(store, "a#1", ttl=1.0, metrics=metrics, clock=clock)
    await leader.step()
    assert leader.is_leader
    database = psycopg.conninfo.conninfo_to_dict(pg_url)["dbname"]
    with psycopg.connect(pg_url, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (database,),
        )
        clock.now += 0.5
        await leader.step()  # the renewal fails; still inside the ttl
        assert leader.is_leader and leader.error is not None
        clock.now += 0.6
        assert not leader.is_leader and leader.fence() == Fence("leader", "a#1", 0)
        await leader.step()
        assert leader.epoch is None and gauge(metrics, "watcher_leader") == 0
        admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')
    await asyncio.sleep(1.1)  # the lease expires in the database too
    other = open_store(pg_url)
    assert other.acquire_lease("leader", "b#1", 5.0) == 2
    other.close()
    store.close()


class Deposing(FakeAnalyzer):
    """Answers once the leader's lease ended and another watcher took it meanwhile."""

    def __init__(self, store: StateStore, answer: Any) -> None:
        super().__init__(answer)
        self.store = store

    async def analyze(self, ctx: Any, group: Any) -> Any:
        answer = await super().analyze(ctx, group)
        assert self.store.release_lease("leader", "a#1", 1)  # as if it expired
        assert self.store.acquire_lease("leader", "b#1", 30.0) == 2
        return answer


async def test_a_deposed_leader_pushes_nothing_and_the_new_leader_opens_the_one_pr(
    make_store: Callable[..., StateStore], checkout: Path
) -> None:
    """The leader (epoch 1) is deposed while the model answers: its fix stops before the push
    (its fenced write fails), no PR is opened and its "pending" record stays. The new leader
    (epoch 2) settles that record at once and opens the one PR for the group."""
    store = make_store()
    fence = Fence("leader", "a#1", store.acquire_lease("leader", "a#1", 30.0) or 0)
    old = make_rig(checkout, store, analysis())  # type: ignore[arg-type]
    old.pipeline.analyzer = Deposing(store, analysis())
    old.pipeline.record.fence = lambda: fence
    fix = await old.pipeline.run_one(group())
    assert fix.status == "skipped" and fix.details["skip"] == "leader"
    assert old.github.opened == [] and "push" not in old.events
    [left] = store.list_fixes()
    assert left.status == "pending" and left.details["leader_epoch"] == 1

    elsewhere = checkout.parent / "b" / "repo"  # the new leader's host: its own worktrees
    shutil.copytree(checkout, elsewhere)
    new = make_rig(elsewhere, store, analysis())  # type: ignore[arg-type]
    new.pipeline.record.fence = lambda: Fence("leader", "b#1", 2)
    assert [f.id for f in await asyncio.to_thread(new.pipeline.adopt_pending, 2)] == [left.id]
    fix = await new.pipeline.run_one(group())
    assert fix.status == "pr_open", fix.error
    assert len(new.github.opened) == 1
    statuses = sorted(f.status for f in store.list_fixes())
    assert statuses == ["pr_open", "skipped"]
