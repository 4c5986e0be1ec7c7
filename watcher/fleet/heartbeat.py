"""`Fleet`: this watcher's place in the fleet — its name claimed at start, its heartbeat every
TTL/3 seconds (one short transaction, in a worker thread), the fleet's rows read back with it
for the API and /metrics, and the name released on a clean exit.

A heartbeat that finds its row taken over (this watcher was judged gone: paused or cut off
longer than the TTL, and another started with its name) calls `on_displaced`: the daemon stops
(its drain's final commit included) rather than go on writing checkpoints another run owns.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog

from watcher import __version__
from watcher.store import StateStore
from watcher.store.instances import Instance

from .board import fleet_object, holder_instance
from .claim import beat_interval, claim
from .identity import instance_name, node_id

log = structlog.get_logger("watcher.fleet")


def unknown() -> bool | None:
    """The leader hook's default: no leader election on this state."""
    return None


class Fleet:
    """One watcher's instance row and its view of the others."""

    def __init__(
        self,
        store: StateStore,
        *,
        name: str,
        ttl: float,
        sources: Callable[[], tuple[str, ...]] = tuple,
        leader: Callable[[], bool | None] = unknown,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.ttl, self.clock = store, ttl, clock
        self.sources, self.leader = sources, leader
        now = clock()
        self.me = Instance(
            name=instance_name(name), run_id=uuid.uuid4().hex, host=socket.gethostname(),
            node=node_id(), pid=os.getpid(), version=__version__, started_at=now,
            last_seen=now, sources=sources(),
        )  # fmt: skip
        self.instances: list[Instance] = []  # the rows as last read (replaced, never mutated)
        self.holders: dict[str, str] = {}  # held lease name -> holding instance
        self.errors = 0  # heartbeats that failed
        self._failing = False

    async def join(self) -> None:
        """Claim the name (raises InstanceTaken when a live watcher holds it), read the fleet."""
        self.me = await claim(self.store, self.me, self.ttl, clock=self.clock)
        self.instances, self.holders = await asyncio.to_thread(self._read)
        log.info("Joined the fleet.", instance=self.me.name, instances=len(self.instances))

    async def run(self, on_displaced: Callable[[Instance | None], None]) -> None:
        """Beat every TTL/3 until cancelled, or until the row is found taken over."""
        while True:
            await asyncio.sleep(beat_interval(self.ttl))
            if not await self.beat():
                holder = next((i for i in self.instances if i.name == self.me.name), None)
                log.error(
                    "Another watcher took over this instance name; stopping.",
                    instance=self.me.name,
                    host=getattr(holder, "host", None),
                    pid=getattr(holder, "pid", None),
                )
                on_displaced(holder)
                return

    async def beat(self) -> bool:
        """One heartbeat and a fresh read of the fleet; False when the row is no longer ours
        (a failing store is counted and logged once, and is not a reason to stop)."""
        try:
            ours, rows, holders = await asyncio.to_thread(self._beat)
        except self.store.errors as exc:
            self.errors += 1
            if not self._failing:
                log.warning("Heartbeat not written; retrying.", error=str(exc).strip()[:200])
            self._failing = True
            return True
        if self._failing:
            log.info("Heartbeat written again.")
        self._failing = False
        self.instances, self.holders = rows, holders
        return ours

    def _beat(self) -> tuple[bool, list[Instance], dict[str, str]]:
        me, now = self.me, self.clock()
        ours = self.store.beat(me.name, me.run_id, now, self.sources(), self.leader())
        return ours, *self._read()

    def _read(self) -> tuple[list[Instance], dict[str, str]]:
        return self.store.list_instances(), self._lease_holders()

    def _lease_holders(self) -> dict[str, str]:
        """Lease name -> the instance holding it now (the leader, shared sources' readers)."""
        return {
            lease.name: holder_instance(lease.holder)
            for lease in self.store.lease_holders()
            if lease.held
        }

    async def leave(self) -> None:
        """A clean exit: mark the row stopped so the name is free at once."""
        me = self.me
        try:
            await asyncio.to_thread(self.store.instance_stopped, me.name, me.run_id, self.clock())
        except self.store.errors as exc:  # the TTL frees the name anyway
            log.warning("Could not mark this instance stopped.", error=str(exc).strip()[:200])

    def snapshot(self) -> dict[str, Any]:
        """The fleet for the API (no I/O: the rows the last heartbeat read)."""
        return fleet_object(
            self.me.name, self.instances, self.clock(), self.ttl,
            shared=self.store.shared, holders=self.holders,
        )  # fmt: skip
