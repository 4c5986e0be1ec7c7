"""The Leader: which one of several watchers on a shared state runs the fixes, delivers the
alerts and does the periodic jobs.

It holds the "leader" lease of the store (watcher/store/leases.py): acquired, then renewed every
ttl/3; a watcher that cannot renew stops leading `ttl` after the start of its last successful
renewal by its own monotonic clock, which is never later than the lease's expiry in the
database, so two watchers never both believe they lead. Writes that must come from the leader
alone (a fix, an alert claimed for sending) carry `fence()`, which the store checks in the
write's own transaction: a deposed leader's write fails instead of landing.

On a store nobody else writes (SQLite, `store.shared` False) this watcher leads, always, and
no lease is ever read or written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog

from watcher.metrics import Metrics
from watcher.store import Fence, StateStore

log = structlog.get_logger("watcher.fleet")

LEADER_LEASE = "leader"
DEFAULT_TTL = 15.0
SHUTDOWN = "shutting down"  # a reason to stop leading that is no news
RETRY_MARGIN_S = 0.05  # a follower's next try, after the lease it saw expires
NOT_LEADER = "this watcher is not the leader: fixes run on the leader"


def holder_id(instance: str) -> str:
    """This process's name as a lease holder: the instance name and a per-process token, so a
    restarted watcher (or two given one name by mistake) is never taken for another."""
    return f"{instance}#{uuid.uuid4().hex[:8]}"


class Leader:
    """Holds (or waits for) the leader lease; `is_leader` and `fence()` for the gated work."""

    def __init__(
        self,
        store: StateStore,
        holder: str,
        *,
        ttl: float = DEFAULT_TTL,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        name: str = LEADER_LEASE,
    ) -> None:
        if ttl <= 0:
            raise ValueError("lease ttl must be > 0")
        self.store, self.holder, self.ttl, self.name = store, holder, ttl, name
        self.metrics, self.clock = metrics, clock
        self.shared = store.shared
        # one writer: leader for good, epoch 0 (no fence needed)
        self.epoch: int | None = None if self.shared else 0
        self._until = -math.inf if self.shared else math.inf  # our monotonic deadline
        self.current: str | None = None if self.shared else holder  # who leads, as last seen
        self.error: str | None = None  # the last lease call's failure, while it lasts
        self._listeners: list[Callable[[bool], None]] = []
        self._pause = ttl / 3  # until the next round: a renewal, or a try when the lease expires
        if metrics is not None:
            metrics.leader.set(0 if self.shared else 1)

    @property
    def is_leader(self) -> bool:
        """Whether this watcher leads now (its lease is in force by its own clock)."""
        return self.epoch is not None and self.clock() < self._until

    def fence(self) -> Fence | None:
        """The fence for a leader-only write (None on an unshared store: nothing to fence);
        when this watcher does not lead, a fence no store accepts."""
        if not self.shared:
            return None
        return Fence(self.name, self.holder, (self.epoch or 0) if self.is_leader else 0)

    def subscribe(self, listener: Callable[[bool], None]) -> None:
        """Call `listener(True)` when this watcher starts leading, `listener(False)` when it
        stops (on the event loop; it must not block)."""
        self._listeners.append(listener)

    def health(self) -> dict[str, Any]:
        """The health detail: whether this watcher leads, who does, the epoch and the ttl."""
        detail: dict[str, Any] = {
            "leader": self.is_leader,
            "holder": self.holder,
            "current": self.holder if self.is_leader else self.current,
            "epoch": self.epoch if self.is_leader else None,
            "lease_ttl": self.ttl,
            "shared": self.shared,
        }
        if self.error is not None:
            detail["error"] = self.error
        return detail

    # --- the lease loop ---------------------------------------------------------------------

    async def run(self, shutdown: asyncio.Event) -> None:
        """Acquire and renew the lease every ttl/3 until `shutdown`; then release it, so
        another watcher takes over at once instead of after the ttl."""
        if not self.shared:
            await shutdown.wait()
            return
        try:
            while not shutdown.is_set():
                await self.step()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(shutdown.wait(), self._pause)
        finally:
            await self._release()

    async def step(self) -> None:
        """One round: renew the lease held (or try to take it), then judge the deadline."""
        if not self.shared:  # the only writer leads for good, with no lease
            return
        started, self._pause = self.clock(), self.ttl / 3
        try:
            if self.epoch is None:
                await self._try_acquire(started)
            else:
                await self._renew(started)
            self.error = None
        except (TimeoutError, *self.store.errors) as exc:
            self._failed(exc)
        if self.epoch is not None and self.clock() >= self._until:
            self._lose("the lease could not be renewed within its ttl")

    async def _try_acquire(self, started: float) -> None:
        epoch = await self._call(
            self.ttl, self.store.acquire_lease, self.name, self.holder, self.ttl
        )
        if epoch is None:
            holders = await self._call(self.ttl, self.store.lease_holders, self.name)
            held = [h for h in holders if h.name == self.name and h.held]
            self.current = held[0].holder if held else None
            if held:  # try again just as it expires: a dead leader is replaced within the ttl
                self._pause = min(self._pause, held[0].expires_in + RETRY_MARGIN_S)
            return
        self._until = started + self.ttl
        self._gain(epoch)

    async def _renew(self, started: float) -> None:
        assert self.epoch is not None
        left = max(self._until - started, 0.001)  # a renewal answering later is no use
        renew = self.store.renew_lease
        if await self._call(left, renew, self.name, self.holder, self.epoch, self.ttl):
            self._until = started + self.ttl
        else:
            self._lose("another watcher took the lease over, or it expired")

    async def _call(self, timeout: float, call: Callable[..., Any], *args: Any) -> Any:
        # the store call blocks (a network round trip): a thread, bounded by the time we have
        return await asyncio.wait_for(asyncio.to_thread(call, *args), timeout)

    async def _release(self) -> None:
        if self.epoch is None:
            return
        epoch = self.epoch
        self._lose(SHUTDOWN)
        try:
            await self._call(self.ttl, self.store.release_lease, self.name, self.holder, epoch)
        except (TimeoutError, *self.store.errors) as exc:  # it expires within the ttl anyway
            log.warning("Leader lease not released; it expires on its own.", error=str(exc))

    # --- transitions ------------------------------------------------------------------------

    def _gain(self, epoch: int) -> None:
        self.epoch, self.current = epoch, self.holder
        log.warning(
            "This watcher is now the leader: it runs fixes, alert delivery and periodic jobs.",
            holder=self.holder,
            epoch=epoch,
            lease_ttl=self.ttl,
        )
        self._publish(True)

    def _lose(self, reason: str) -> None:
        epoch, self.epoch, self._until = self.epoch, None, -math.inf
        self.current = None
        log.log(
            logging.INFO if reason == SHUTDOWN else logging.WARNING,
            "This watcher is no longer the leader: fixes, alert delivery and periodic jobs "
            "stop here.",
            holder=self.holder,
            epoch=epoch,
            reason=reason,
        )
        self._publish(False)

    def _publish(self, leading: bool) -> None:
        if self.metrics is not None:
            self.metrics.leader.set(1 if leading else 0)
            self.metrics.leader_changes.labels("gained" if leading else "lost").inc()
            if leading:
                self.metrics.leader_epoch.set(self.epoch or 0)
        for listener in self._listeners:
            try:
                listener(leading)
            except Exception:  # one listener's bug must not stop the lease loop
                log.exception("A leadership listener failed.")

    def _failed(self, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
        if error != self.error:
            log.warning("Leader lease call failed; retrying.", error=error, leader=self.is_leader)
        self.error = error
