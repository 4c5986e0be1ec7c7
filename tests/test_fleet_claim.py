"""Claiming an instance name and keeping it, on both backends (SQLite and PostgreSQL): a live
holder refuses a second watcher, a dead, stale or cleanly stopped one does not, a holder on
another node is judged by whether its heartbeat moves, a run whose name was taken over learns it
at its next heartbeat, and two claims racing for one name cannot both win."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from watcher.fleet import Fleet, InstanceTaken
from watcher.fleet.board import fleet_object, state_of
from watcher.fleet.claim import FORGET_AFTER, claim, judge
from watcher.store.instances import Instance

TTL = 15.0


class Clock:
    """A settable wall clock."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def row(**fields: Any) -> Instance:
    """An instance row of "web" on node n1, seen at 1,000,000."""
    base = Instance("web", "run-1", "host-1", "n1", 4242, "0.1.0", 999_000.0, 1_000_000.0)
    return replace(base, **fields)


@pytest.fixture
def live_pid() -> Iterator[int]:
    """The pid of a process that is alive for the test."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_judge_frees_a_name_nobody_holds_or_whose_holder_stopped_or_went_silent() -> None:
    """No row, a row stopped cleanly, a heartbeat as old as the TTL: the name is free."""
    me = row(run_id="me", pid=1)
    now = 1_000_000.0
    assert judge(None, me, now, TTL) == "free"
    assert judge(row(stopped_at=now - 1), me, now, TTL) == "free"
    assert judge(row(last_seen=now - TTL), me, now, TTL) == "free"
    assert judge(row(last_seen=now - TTL + 1), me, now, TTL, alive=lambda pid: True) == "live"


def test_judge_asks_the_pid_only_on_the_same_node() -> None:
    """Same node: a live other pid holds the name, a dead one or our own pid (a restarted
    container's previous run) does not; another node's fresh row must be watched."""
    now = 1_000_000.0
    me = row(run_id="me", pid=7)
    assert judge(row(), me, now, TTL, alive=lambda pid: True) == "live"
    assert judge(row(), me, now, TTL, alive=lambda pid: False) == "free"
    assert judge(row(pid=7), me, now, TTL, alive=lambda pid: True) == "free"
    assert judge(row(node="n2"), me, now, TTL, alive=lambda pid: True) == "watch"


async def test_a_live_holder_on_this_node_refuses_a_second_claim(
    make_store: Any, live_pid: int
) -> None:
    """A fresh row whose pid is alive here: InstanceTaken names the instance, host and pid,
    and the row is untouched."""
    store = make_store()
    fleet = Fleet(store, name="web", ttl=TTL)
    holder = replace(fleet.me, run_id="other", pid=live_pid)
    assert store.claim_instance(holder, None, 0.0)
    with pytest.raises(InstanceTaken) as taken:
        await fleet.join()
    assert f"'web' is already running on {holder.host} (pid {live_pid}" in str(taken.value)
    assert store.get_instance("web").run_id == "other"


async def test_a_dead_or_stopped_holder_gives_the_name_up_at_once(make_store: Any) -> None:
    """A crashed predecessor (its pid gone) or one that stopped cleanly: the claim succeeds
    without waiting, and the row is this run's."""
    store = make_store()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    first = Fleet(store, name="web", ttl=TTL)
    crashed = replace(first.me, run_id="crashed", pid=int(dead.stdout))
    assert store.claim_instance(crashed, None, 0.0)
    await first.join()
    assert store.get_instance("web").run_id == first.me.run_id
    await first.leave()
    second = Fleet(store, name="web", ttl=TTL)
    await second.join()
    assert store.get_instance("web").run_id == second.me.run_id


async def test_a_holder_on_another_node_is_watched_before_its_name_is_taken(
    make_store: Any,
) -> None:
    """Another node's fresh row (a pod or container with the same name): if its heartbeat
    does not move for two periods the claim takes it; if it moves, InstanceTaken."""
    store = make_store()
    clock = Clock()
    me = Fleet(store, name="web", ttl=TTL, clock=clock).me
    elsewhere = replace(me, run_id="far", node="other-node", host="pod-b", last_seen=clock())
    assert store.claim_instance(elsewhere, None, 0.0)
    waited: list[float] = []

    async def silent(seconds: float) -> None:
        waited.append(seconds)
        clock.now += seconds

    got = await claim(store, me, TTL, clock=clock, sleep=silent)
    assert waited == [10.0] and store.get_instance("web").run_id == got.run_id

    async def renewing(seconds: float) -> None:
        clock.now += seconds
        store.beat("web", "far2", clock(), (), None)

    again = replace(elsewhere, run_id="far2", last_seen=clock())
    assert store.claim_instance(again, got.run_id, 0.0)
    with pytest.raises(InstanceTaken, match="pod-b"):
        await claim(store, replace(me, run_id="third"), TTL, clock=clock, sleep=renewing)


async def test_a_run_whose_name_was_taken_over_stops_at_its_next_heartbeat(
    make_store: Any,
) -> None:
    """A watcher silent past the TTL (paused, cut off) whose name another run took: its
    heartbeat fails and `run` calls on_displaced with the new holder, instead of going on."""
    store = make_store()
    clock = Clock()
    paused = Fleet(store, name="web", ttl=0.03, clock=clock)
    await paused.join()
    clock.now += 1.0
    newcomer = Fleet(store, name="web", ttl=0.03, clock=clock)
    await newcomer.join()
    assert await newcomer.beat()
    displaced: list[Any] = []
    await paused.run(displaced.append)
    assert [d.run_id for d in displaced] == [newcomer.me.run_id]


def test_two_claims_racing_for_a_free_name_cannot_both_win(make_store: Any) -> None:
    """Both read "free" and insert: one insert lands, the other is told it lost; a take-over
    of a run that was already replaced loses too."""
    store = make_store()
    assert store.claim_instance(row(run_id="a"), None, 0.0) is True
    assert store.claim_instance(row(run_id="b"), None, 0.0) is False
    assert store.claim_instance(row(run_id="c"), "a", 0.0) is True
    assert store.claim_instance(row(run_id="d"), "a", 0.0) is False
    assert store.get_instance("web").run_id == "c"


async def test_the_fleet_lists_every_instance_and_forgets_long_gone_ones(
    make_store: Any,
) -> None:
    """Rows of other names appear in the view with their state (up, lost, stopped); a row
    last seen more than a day before a claim is forgotten."""
    store = make_store()
    clock = Clock()
    now = clock()
    rows = (
        ("api", now - 1, None),
        ("batch", now - 60, None),
        ("cron", now - 5, now - 5),
        ("gone", now - FORGET_AFTER - 1, None),
    )
    for name, seen, stopped in rows:
        assert store.claim_instance(row(name=name, last_seen=seen, stopped_at=stopped), None, 0.0)
    fleet = Fleet(store, name="web", ttl=TTL, clock=clock)
    await fleet.join()
    listed = {i["name"]: i["state"] for i in fleet.snapshot()["instances"]}
    assert listed == {"api": "up", "batch": "lost", "cron": "stopped", "web": "up"}


def test_the_fleet_object_names_the_leader_and_the_leases_each_instance_holds() -> None:
    """With a leader flag and lease holders, the fleet says who leads and which shared source
    each instance reads; an instance whose heartbeat is older than the TTL is lost."""
    now = 1_000_000.0
    rows = [row(name="a", leader=True), row(name="b", leader=False, last_seen=now - TTL)]
    fleet = fleet_object("a", rows, now, TTL, shared=True, holders={"source:loki": "b"})
    assert fleet["leader"] == "a" and fleet["up"] == 1
    assert [(i["name"], i["leases"]) for i in fleet["instances"]] == [
        ("a", []),
        ("b", ["source:loki"]),
    ]
    assert state_of(rows[1], now, TTL) == "lost"


async def test_the_fleet_reads_the_leader_and_shared_source_leases_from_the_store(
    make_store: Any,
) -> None:
    """The leader lease and a shared source's lease held in the store: the fleet names the
    leader and lists the source lease on the instance that reads it; an expired lease is on
    nobody."""
    store = make_store()
    fleet = Fleet(store, name="web", ttl=TTL)
    await fleet.join()
    other = replace(fleet.me, name="api", run_id="r-api")
    assert store.claim_instance(other, None, 0.0)
    assert store.acquire_lease("leader", "api#1a2b3c4d", TTL) is not None
    assert store.acquire_lease("source:loki", "web", TTL) is not None
    assert store.acquire_lease("source:cloudwatch", "api", 0.001) is not None
    await asyncio.sleep(0.01)
    assert await fleet.beat()
    board = fleet.snapshot()
    assert board["leader"] == "api"
    listed = {i["name"]: (i["leader"], i["leases"]) for i in board["instances"]}
    assert listed == {"api": (True, []), "web": (False, ["source:loki"])}
