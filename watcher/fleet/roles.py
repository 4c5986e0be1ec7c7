"""What the leader alone does, wired onto the daemon's parts: the fix pipeline's writes fenced
(and the fixes an earlier leader left pending settled at each promotion), and alert delivery
through the outbox. Both only on a shared state: a watcher alone leads with no lease."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from watcher.fleet.leader import Leader
from watcher.store import StateStore

log = structlog.get_logger("watcher.fleet")

Spawn = Callable[[Coroutine[Any, Any, None], str], None]


def lead_fixes(leader: Leader, fixer: Any, spawn: Spawn) -> None:
    """Fence every write of `fixer` (a FixPipeline) with the leader's lease; settle what an
    earlier leader left pending now if this watcher leads, and at every later promotion."""
    if not leader.shared:
        return
    fixer.record.fence = leader.fence

    def promoted(leading: bool) -> None:
        if leading:
            spawn(_adopt(fixer, leader.epoch or 0), "adopt-fixes")

    leader.subscribe(promoted)
    promoted(leader.is_leader)


async def _adopt(fixer: Any, epoch: int) -> None:
    try:
        await asyncio.to_thread(fixer.adopt_pending, epoch)
    except Exception as exc:  # deposed again, or the store away: the next leader does it
        log.warning("Fixes left by an earlier leader not settled.", error=repr(exc))


def deliver_alerts(
    alerter: Any, store: StateStore, leader: Leader, redact: Callable[[str], str]
) -> None:
    """On a shared state, `alerter` (an Alerter) queues its alerts in the store's outbox and
    sends only what the leader claims from it."""
    if alerter is None or not store.shared:
        return
    from watcher.fleet.outbox import AlertOutbox  # the alerts package: only when alerting

    alerter.outbox = AlertOutbox(store, leader, alerter.destinations, redact=redact)
