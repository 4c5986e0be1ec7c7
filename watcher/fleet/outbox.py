"""Alert delivery across a fleet: every watcher decides its alerts, the leader alone sends.

Each watcher's Alerter still routes what its own lines show (its gates, cooldowns and rate
cap), but on a shared store a batch is not posted: it is queued in the store's alert outbox
under a dedupe key, so the same alert decided by three watchers is one row. The leader then
claims the pending rows under its lease fence and sends them; a watcher promoted later sends
what was queued meanwhile. See watcher/store/outbox.py for the once-only claim.

Dedupe keys, per destination (its index and name: every watcher has the same config):
- `new`: once per pattern (a watcher that finds the pattern stored does not call it new);
- `pr_opened`: once per fix;
- `digest`: never merged (each watcher's rate cap held back its own alerts);
- the others (`threshold`, `regressed`, `resolved`, and every kind to a destination that
  re-sends, such as Alertmanager): once per pattern and kind per slot of the destination's
  cooldown (its re-send interval when it has one), at least `MIN_SLOT_S`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from watcher.alerts import Alert, Destination
from watcher.fleet.leader import Leader
from watcher.store import LeaseLost, StateStore

log = structlog.get_logger("watcher.fleet")

MIN_SLOT_S = 60.0
CLAIM_LIMIT = 500
MAX_UNQUEUED = 1000  # alerts kept in memory while the store cannot take them


class AlertOutbox:
    """The Alerter's exchange with the shared store (`Alerter.outbox`)."""

    def __init__(
        self,
        store: StateStore,
        leader: Leader,
        destinations: Sequence[Destination],
        *,
        redact: Callable[[str], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.leader, self.redact, self.clock = store, leader, redact, clock
        self.destinations = tuple(destinations)
        self.index = {_dest_id(i, d): i for i, d in enumerate(self.destinations)}
        self._unqueued: list[tuple[str, str, str]] = []

    def rows(self, batch: Sequence[tuple[int, Alert]]) -> list[tuple[str, str, str]]:
        """(dedupe key, destination, payload) of each alert; the payload redacted (the store
        never holds a secret)."""
        now = self.clock()
        return [
            (self.key(i, alert, now), _dest_id(i, self.destinations[i]), encode(alert, self.redact))
            for i, alert in batch
        ]

    def key(self, i: int, alert: Alert, now: float) -> str:
        """The dedupe key of `alert` to destination i, decided at `now` (see the module doc)."""
        destination = self.destinations[i]
        prefix = f"{_dest_id(i, destination)}|{alert.kind}"
        if alert.kind == "pr_opened":
            return f"{prefix}|{alert.fix_id}"
        if alert.kind == "digest":
            return f"{prefix}|{self.leader.holder}|{now!r}"
        resend = destination.resend_interval
        if alert.kind == "new" and resend <= 0:
            return f"{prefix}|{alert.group_id}"
        window = max(resend if resend > 0 else destination.route.cooldown, MIN_SLOT_S)
        return f"{prefix}|{alert.group_id}|{int(now // window)}"

    async def exchange(self, batch: Sequence[tuple[int, Alert]]) -> list[tuple[int, Alert]]:
        """Queue this watcher's batch; on the leader, the pending alerts to send now (claimed:
        no other watcher sends them); elsewhere nothing."""
        pending = [*self._unqueued, *self.rows(batch)]
        if pending:
            try:
                await asyncio.to_thread(self.store.queue_alerts, self.leader.holder, pending)
                self._unqueued = []
            except self.store.errors as exc:
                self._keep(pending, exc)
                return []
        fence = self.leader.fence()
        if fence is None or not self.leader.is_leader:
            return []
        try:
            claimed = await asyncio.to_thread(self.store.claim_alerts, fence, CLAIM_LIMIT)
        except (LeaseLost, *self.store.errors) as exc:
            log.warning("Could not claim queued alerts.", error=str(exc))
            return []
        sendable = [(self.index[d], _decoded(p, d)) for _, d, p in claimed if d in self.index]
        return [(i, alert) for i, alert in sendable if alert is not None]

    def _keep(self, rows: list[tuple[str, str, str]], exc: BaseException) -> None:
        lost = max(len(rows) - MAX_UNQUEUED, 0)
        self._unqueued = rows[lost:]
        log.warning("Could not queue alerts; keeping them to retry.", error=str(exc),
                    kept=len(self._unqueued), dropped=lost)  # fmt: skip


def _decoded(payload: str, destination: str) -> Alert | None:
    try:
        return decode(payload)
    except (TypeError, ValueError) as exc:  # a row another watcher version queued
        log.error("Queued alert unreadable; dropped.", destination=destination, error=str(exc))
        return None


def _dest_id(i: int, destination: Destination) -> str:
    return f"{i}:{destination.name}"


def encode(alert: Alert, redact: Callable[[str], str]) -> str:
    """An alert as the outbox stores it: redacted, JSON."""
    return json.dumps(dataclasses.asdict(alert.redacted(redact)), separators=(",", ":"))


def decode(payload: str) -> Alert:
    """The alert an outbox row holds."""
    data: dict[str, Any] = json.loads(payload)
    frame = data.get("top_frame")
    data["top_frame"] = None if frame is None else tuple(frame)
    return Alert(**data)
