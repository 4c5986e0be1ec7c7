"""Shared sources: a `shared = true` source is read by one watcher of a fleet at a time.

Every watcher on a shared (PostgreSQL) state runs a holder loop per shared source. It tries to
take the source's lease (`source:<name>`) every ttl/3; the watcher that gets it reads the source
from the fleet-wide checkpoint (stored under the lease's name, not `<instance>/<source>`) and
renews the lease every ttl/3. A watcher whose renewal is refused (or that could not renew for a
whole ttl) stops reading at once. When the holder dies, its lease expires and another watcher
takes it over and resumes from the checkpoint.

Why no line is lost or counted twice across a hand-over:

- the engine commits a checkpoint in the same transaction as the counts it covers, and that
  transaction carries the lease's epoch as a fence (`Fence`): it fails (`LeaseLost`) once the
  lease moved on, so a deposed holder can never move the checkpoint, nor add counts, after the
  next holder read it;
- what a holder counted from the source since its last commit is taken back when it loses the
  lease (the next holder reads those lines again from the checkpoint), and so are the batches
  still queued from that tenure: each batch carries the epoch it was read under (`Epoched`).

On a store no other watcher shares (SQLite), `shared = true` changes nothing: there is no fleet
to share the source with, and the engine reads it as any other source.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from watcher.logs import Throttled
from watcher.metrics import Metrics
from watcher.model import ErrorGroup, GroupUpdate, RawLine
from watcher.store import Fence, Lease, StateStore

LEASE_PREFIX = "source:"
# seconds a stopping reader may take before it is cancelled (a source blocked in a read)
STOP_TIMEOUT = 5.0

# reads the source until the event is set, tagging its batches with the epoch it is given
Reader = Callable[[asyncio.Event, int], Awaitable[None]]


def lease_name(source: str) -> str:
    """The lease (and fleet-wide checkpoint key) of a shared source."""
    return LEASE_PREFIX + source


def holders(store: StateStore) -> dict[str, Lease]:
    """Shared source name -> its lease (who reads it, at which epoch, until when), for the fleet
    view; a lease whose `held` is False has no reader right now. Blocking: call in a thread."""
    return {lease.name[len(LEASE_PREFIX) :]: lease for lease in store.lease_holders(LEASE_PREFIX)}


class Epoched(list[RawLine]):
    """A batch of a shared source, read under one tenure (epoch) of its lease."""

    __slots__ = ("epoch",)

    def __init__(self, batch: Iterable[RawLine], epoch: int) -> None:
        super().__init__(batch)
        self.epoch = epoch


@dataclass
class Tenure:
    """One shared source as this watcher sees it."""

    name: str
    epoch: int | None = None  # the tenure this watcher reads under now; None: not reading
    fed: int | None = None  # the tenure of what was counted since the last commit
    counted: dict[str, int] = field(default_factory=dict)  # group id -> events since then
    revoked: bool = False  # the lease was lost: what `counted` holds must be taken back
    lost: asyncio.Event = field(default_factory=asyncio.Event)  # a commit found it gone


def uncount(group: ErrorGroup, source: str, events: int) -> None:
    """Take back `events` a source added to a group since the last commit."""
    group.count = max(0, group.count - events)
    left = group.sources.get(source, 0) - events
    if left > 0:
        group.sources[source] = left
    else:
        group.sources.pop(source, None)


class SharedSources:
    """The shared sources of one watcher on a shared store: which of them it reads (holds the
    lease of), what it counted from each since its last commit, and the fences a commit needs.

    The holder loops (`hold`) run in the sources' tasks; `admit`, `observe`, `fences`,
    `committed`, `lost` and `take_revoked` are called by the engine's consumer, between batches
    and commits, so taking counts back never races a commit in flight.
    """

    def __init__(
        self,
        store: StateStore,
        holder: str,
        ttl: float,
        *,
        metrics: Metrics | None = None,
        log: Any = None,
    ) -> None:
        self.store, self.holder, self.ttl = store, holder, ttl
        self.metrics = metrics or Metrics()
        self.log = log or structlog.get_logger("watcher.fleet")
        self.tenures: dict[str, Tenure] = {}
        self._say = Throttled(self.log, 60.0)

    @staticmethod
    def covers(cfg: Any) -> bool:
        """Whether a source config asks to be shared."""
        return bool(getattr(cfg, "shared", False))

    # --- the holder loop (a source's task) --------------------------------------------------

    async def hold(self, name: str, stop: asyncio.Event, read: Reader) -> None:
        """Until `stop`: take the lease when it is free and read while it is held; otherwise
        stand by, trying again every ttl/3."""
        tenure = self.tenures.setdefault(name, Tenure(name))
        self.metrics.source_held.labels(name).set(0)
        while not stop.is_set():
            started = time.monotonic()
            lease = lease_name(name)
            epoch = await self._call(self.store.acquire_lease, lease, self.holder, self.ttl)
            if epoch is None:
                await _sleep(stop, self.ttl / 3)
                continue
            await self._read_held(tenure, epoch, started, stop, read)

    async def _read_held(
        self, tenure: Tenure, epoch: int, started: float, stop: asyncio.Event, read: Reader
    ) -> None:
        if tenure.fed is not None and tenure.fed != epoch:  # counted under a tenure now over
            tenure.revoked = True
        tenure.epoch = epoch
        tenure.lost.clear()
        self.metrics.source_held.labels(tenure.name).set(1)
        self.log.info("Reading the shared source: this watcher holds its lease.",
                      source=tenure.name, epoch=epoch)  # fmt: skip
        held = asyncio.Event()  # set: the reader stops
        reader = asyncio.create_task(read(held, epoch), name=f"shared:{tenure.name}")
        watchers = {
            asyncio.create_task(self._keep(tenure.name, epoch, started)),
            asyncio.create_task(tenure.lost.wait()),
            asyncio.create_task(stop.wait()),
        }
        try:
            done, _ = await asyncio.wait({reader, *watchers}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            held.set()
            for task in watchers:
                task.cancel()
            if not reader.done():
                await _finish(reader)
        if not stop.is_set() and (done & watchers):  # the lease was lost: stop at once
            self._revoke(tenure)
        if reader in done:  # the source ended or failed: let another watcher try it
            await self._release(tenure)
            reader.result()  # its exception, if any, is the engine's to report
            await stop.wait()

    async def _keep(self, name: str, epoch: int, started: float) -> None:
        """Renew every ttl/3; return once the lease is lost: a renewal refused, or none made
        for a whole ttl by this watcher's own clock (the state server unreachable)."""
        deadline = started + self.ttl
        while True:
            await asyncio.sleep(max(0.0, min(self.ttl / 3, deadline - time.monotonic())))
            attempt = time.monotonic()
            if attempt >= deadline:
                return
            lease = lease_name(name)
            renewed = await self._call(self.store.renew_lease, lease, self.holder, epoch, self.ttl)
            if renewed is False:
                return
            if renewed:
                deadline = attempt + self.ttl

    def _revoke(self, tenure: Tenure) -> None:
        if tenure.epoch is None:
            return
        self.log.warning(
            "Shared source lease lost: stopped reading it; another watcher resumes from the "
            "checkpoint, and what this one counted since its last commit is taken back.",
            source=tenure.name,
            epoch=tenure.epoch,
        )
        tenure.epoch, tenure.revoked = None, True
        self.metrics.source_held.labels(tenure.name).set(0)

    async def _release(self, tenure: Tenure) -> None:
        epoch, tenure.epoch = tenure.epoch, None
        self.metrics.source_held.labels(tenure.name).set(0)
        if epoch is not None:
            lease = lease_name(tenure.name)
            await self._call(self.store.release_lease, lease, self.holder, epoch)

    async def release_all(self) -> None:
        """At shutdown, after the final commit: give every held lease up, so another watcher
        takes the source over at once instead of after the ttl."""
        for tenure in self.tenures.values():
            await self._release(tenure)

    async def _call(self, method: Callable[..., Any], *args: Any) -> Any:
        """A lease call in a worker thread; None when the store failed (said once a minute)."""
        try:
            return await asyncio.to_thread(method, *args)
        except self.store.errors as exc:
            self._say("warning", "Source lease call failed; retrying.", key="lease",
                      error=str(exc))  # fmt: skip
            return None

    # --- the engine's consumer ----------------------------------------------------------------

    def admit(self, batch: list[RawLine]) -> bool:
        """Whether a queued batch is still to be counted: not when it was read under a tenure
        that has ended since (the next holder reads those lines again)."""
        epoch = getattr(batch, "epoch", None)
        if epoch is None:
            return True
        tenure = self.tenures.get(batch[0].source)
        if tenure is None or tenure.epoch != epoch:
            return False
        tenure.fed = epoch
        return True

    def observe(self, updates: list[GroupUpdate]) -> None:
        """Count, per shared source and group, the events since the last commit."""
        tenures = self.tenures
        for update in updates:
            tenure = tenures.get(update.event.source)
            if tenure is not None:
                counted, gid = tenure.counted, update.group.id
                counted[gid] = counted.get(gid, 0) + 1

    def fences(self, cursors: Iterable[str]) -> dict[str, Fence]:
        """Source -> the fence a commit carrying its counts or `cursors` must pass."""
        names = set(cursors) | {t.name for t in self.tenures.values() if t.counted}
        out = {}
        for name in names:
            tenure = self.tenures.get(name)
            if tenure is not None and tenure.fed is not None:
                out[name] = Fence(lease_name(name), self.holder, tenure.fed)
        return out

    def committed(self) -> None:
        """A commit landed: what was counted is the store's now."""
        for tenure in self.tenures.values():
            tenure.counted = {}

    async def refused(self, fences: dict[str, Fence]) -> list[str]:
        """After a commit failed on a fence: the sources whose lease is no longer in force."""
        leases = await asyncio.to_thread(self.store.lease_holders, LEASE_PREFIX)
        in_force = {(x.name, x.holder, x.epoch) for x in leases if x.held}
        gone = [s for s, f in fences.items() if (f.name, f.holder, f.epoch) not in in_force]
        return gone or list(fences)

    def lost(self, sources: Iterable[str]) -> None:
        """A commit found these sources' leases gone: stop reading them at once."""
        for name in sources:
            tenure = self.tenures[name]
            tenure.revoked = True
            if tenure.epoch is not None and tenure.epoch == tenure.fed:  # still reading it
                self._revoke(tenure)
                tenure.lost.set()

    def take_revoked(self) -> dict[str, dict[str, int]]:
        """Source -> group id -> events to take back, for every tenure lost since the last
        call; its batches still queued are refused from now on (see admit)."""
        out = {}
        for tenure in self.tenures.values():
            if tenure.revoked:
                out[tenure.name], tenure.counted = tenure.counted, {}
                tenure.revoked, tenure.fed = False, None
        return out

    def status(self) -> dict[str, str]:
        """Shared source -> "reading" (this watcher holds its lease) or "standby"."""
        return {n: "reading" if t.epoch is not None else "standby" for n, t in self.tenures.items()}


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def _finish(task: asyncio.Task[None]) -> None:
    """Let a reader told to stop end by itself; cancel it when it takes too long."""
    _, pending = await asyncio.wait({task}, timeout=STOP_TIMEOUT)
    for late in pending:
        late.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait({task})
