"""Taking an instance name at start: free, or held by a live watcher (then refuse).

A row held by another run is free when it was stopped cleanly, when its heartbeat is older than
the TTL, or when its pid is dead on this very node. A fresh row from another node (another
host, container or pod with the same name) cannot be judged from a pid: it is watched for two
heartbeat periods — a live holder renews it, a crashed one does not — before it is taken.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Literal

from watcher.store import StateStore
from watcher.store.instances import Instance

from .identity import pid_alive

FORGET_AFTER = 86400.0  # rows of watchers gone this long leave the fleet view
CLAIM_TRIES = 3
Verdict = Literal["free", "live", "watch"]


class InstanceTaken(Exception):
    """Another live watcher runs under this instance name."""

    def __init__(self, holder: Instance, now: float) -> None:
        self.holder = holder
        age = max(0.0, now - holder.last_seen)
        super().__init__(
            f"instance {holder.name!r} is already running on {holder.host} (pid {holder.pid}, "
            f"watcher {holder.version}, last seen {age:.0f}s ago); give each watcher its own "
            "[watcher] instance (WATCHER_INSTANCE), or stop the other one first"
        )


def beat_interval(ttl: float) -> float:
    """Seconds between heartbeats: three chances to renew within one TTL."""
    return ttl / 3


def judge(
    row: Instance | None, me: Instance, now: float, ttl: float,
    alive: Callable[[int], bool] = pid_alive,
) -> Verdict:  # fmt: skip
    """Whether `me` may take the name that `row` holds (see the module docstring)."""
    if row is None or row.stopped_at is not None or now - row.last_seen >= ttl:
        return "free"
    if row.node != me.node:
        return "watch"
    if row.pid == me.pid:  # our pid, before us: a restarted container's previous run
        return "free"
    return "live" if alive(row.pid) else "free"


async def claim(
    store: StateStore,
    me: Instance,
    ttl: float,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    alive: Callable[[int], bool] = pid_alive,
) -> Instance:
    """Claim `me.name` (the row as written) or raise InstanceTaken naming the live holder."""
    for _ in range(CLAIM_TRIES):
        row = await asyncio.to_thread(store.get_instance, me.name)
        verdict = judge(row, me, clock(), ttl, alive)
        if verdict == "watch":
            row, verdict = await _watch(store, row, sleep, 2 * beat_interval(ttl))
        if verdict == "live" and row is not None:
            raise InstanceTaken(row, clock())
        now = clock()
        mine = replace(me, started_at=now, last_seen=now)
        replaces = None if row is None else row.run_id
        if await asyncio.to_thread(store.claim_instance, mine, replaces, now - FORGET_AFTER):
            return mine
    # three races lost in a row: someone keeps taking it; name them
    row = await asyncio.to_thread(store.get_instance, me.name)
    raise InstanceTaken(row or me, clock())


async def _watch(
    store: StateStore, row: Instance | None, sleep: Callable[[float], Awaitable[None]],
    period: float,
) -> tuple[Instance | None, Verdict]:  # fmt: skip
    """Wait `period`; a row renewed (or taken by another run) meanwhile has a live holder."""
    await sleep(period)
    later = await asyncio.to_thread(store.get_instance, row.name) if row else None
    if later is None or later.stopped_at is not None:
        return later, "free"
    assert row is not None
    same = (later.run_id, later.last_seen) == (row.run_id, row.last_seen)
    return later, "free" if same else "live"
