"""The Alerter: picks alert-worthy group updates, rate-limits them per pattern, batches, sends.

`observe` runs on the pipeline's hot path, so it only checks two booleans per update and, for
the rare alert, snapshots the group into a bounded deque; everything slow (redaction, payloads,
HTTP, retries) happens in the `run` task. Call `observe` and `pr_opened` on the event loop's
thread (the engine's `on_updates` callback is), since they wake `run` through an asyncio.Event.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import aiohttp
import structlog

from watcher.alerts.alert import KINDS, Alert, Kind, Redact, from_group, from_update
from watcher.alerts.delivery import Poster, RetryPolicy
from watcher.alerts.payloads import MAX_LISTED, build
from watcher.alerts.targets import WebhookTarget, parse_target
from watcher.model import SEVERITY_RANK, ErrorGroup, GroupUpdate

USER_AGENT = "watcher-alerts"
_DROP_LOG_INTERVAL = 60.0  # a full queue is logged at most this often; the metric counts all


class _Counter(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _LabelledCounter(Protocol):
    def labels(self, outcome: str) -> _Counter: ...


class AlertMetrics(Protocol):
    """The one metric the alerter needs: watcher.metrics.Metrics satisfies it."""

    alerts_sent: _LabelledCounter


def _identity(text: str) -> str:
    return text


def _default_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})


class Alerter:
    """Sends alerts for groups to webhooks; see the package docstring for the rules."""

    def __init__(
        self,
        webhooks: Sequence[str | WebhookTarget],
        *,
        min_severity: str = "high",
        cooldown: float = 900.0,
        redact: Redact = _identity,
        metrics: AlertMetrics | None = None,
        clock: Callable[[], float] = time.time,
        session_factory: Callable[[], aiohttp.ClientSession] | None = None,
        max_queue: int = 1000,
        batch_window: float = 5.0,
        max_retries: int = 4,
        max_listed: int = MAX_LISTED,
        drain_timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        logger: Any = None,
    ) -> None:
        if min_severity not in SEVERITY_RANK:
            raise ValueError(f"min_severity: expected one of {sorted(SEVERITY_RANK)}")
        if cooldown < 0 or batch_window < 0 or max_queue < 1 or max_retries < 0:
            raise ValueError("cooldown, batch_window, max_retries must be >= 0, max_queue >= 1")
        self.targets = tuple(parse_target(w) for w in webhooks)
        self.min_rank = SEVERITY_RANK[min_severity]
        self.cooldown, self.batch_window, self.drain_timeout = cooldown, batch_window, drain_timeout
        self.redact, self.metrics, self.clock = redact, metrics, clock
        self.max_queue, self.max_listed = max_queue, max_listed
        self.session_factory = session_factory or _default_session
        self.retry = dataclasses.replace(retry or RetryPolicy(), max_retries=max_retries)
        self.log = logger or structlog.get_logger("watcher.alerts")
        self._queue: deque[Alert] = deque()
        self._wake = asyncio.Event()
        # (family, group id) -> when its last alert was queued, oldest first: see _stamp
        self._last: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._drops_unlogged = 0
        self._last_drop_log = float("-inf")

    # --- producer side: the pipeline's hot path ---------------------------------------------

    def observe(self, updates: Iterable[GroupUpdate]) -> None:
        """Queue an alert for each update that deserves one; never blocks, never raises."""
        if not self.targets:
            return
        try:
            self._observe(updates)
        except Exception:
            # An alerting bug must not take the pipeline down with it.
            self.log.exception("Alert selection failed; skipping these updates.")
            self._count("dropped")

    def _observe(self, updates: Iterable[GroupUpdate]) -> None:
        for update in updates:
            if update.crossed_threshold or update.is_new:  # the cheap test comes first
                kind = self.alert_kind(update)
                if kind is not None:
                    self._offer(
                        "pattern", update.group.id, lambda k=kind, u=update: from_update(k, u)
                    )

    def alert_kind(self, update: GroupUpdate) -> Kind | None:
        """new_critical for a new critical group, threshold for a crossing at/above the minimum."""
        severity = update.group.severity
        if update.is_new and severity == "critical":
            return "new_critical"
        if update.crossed_threshold and SEVERITY_RANK.get(severity, -1) >= self.min_rank:
            return "threshold"
        return None

    def pr_opened(self, group: ErrorGroup, pr_url: str, fix_id: str) -> None:
        """Queue an alert saying a fix PR was opened for `group`."""
        if self.targets:
            make = lambda: from_group("pr_opened", group, pr_url=pr_url, fix_id=fix_id)  # noqa: E731
            self._offer("pr", group.id, make)

    def _offer(self, family: str, group_id: str, make: Callable[[], Alert]) -> None:
        # PR alerts are a family of their own: a threshold alert must not hide the news of a PR.
        now, key = self.clock(), (family, group_id)
        last = self._last.get(key)
        if last is not None and now - last < self.cooldown:
            self._count("suppressed")
            return
        if len(self._queue) >= self.max_queue:
            self._dropped(now)
            return
        self._queue.append(make())
        self._stamp(key, now)
        self._wake.set()

    def _stamp(self, key: tuple[str, str], now: float) -> None:
        """Remember when `key` last alerted; forget keys whose cooldown is over (bounded memory)."""
        self._last[key] = now
        self._last.move_to_end(key)
        while self._last:
            oldest_key, oldest = next(iter(self._last.items()))
            if now - oldest < self.cooldown:
                break
            del self._last[oldest_key]

    def _dropped(self, now: float) -> None:
        self._count("dropped")
        self._drops_unlogged += 1
        if now - self._last_drop_log >= _DROP_LOG_INTERVAL:
            self.log.warning("Alert queue full; dropping alerts.", dropped=self._drops_unlogged)
            self._drops_unlogged, self._last_drop_log = 0, now

    def _count(self, outcome: str, amount: int = 1) -> None:
        if self.metrics is not None and amount:
            self.metrics.alerts_sent.labels(outcome=outcome).inc(amount)

    @property
    def pending(self) -> int:
        """Alerts queued and not yet taken by the sender."""
        return len(self._queue)

    # --- consumer side: the sender task ------------------------------------------------------

    async def run(self, shutdown: asyncio.Event) -> None:
        """Send batches until `shutdown`; then send what is queued within drain_timeout."""
        if not self.targets:
            await shutdown.wait()
            return
        async with self.session_factory() as session:
            poster = Poster(session, self.retry, self.log)
            sender = asyncio.create_task(self._send_loop(poster, shutdown), name="alerts-sender")
            try:
                await _wait_any(shutdown, sender)
                await asyncio.wait_for(sender, self.drain_timeout)
            except TimeoutError:
                self._abandon_queue()
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender

    def _abandon_queue(self) -> None:
        lost = len(self._queue)
        self._queue.clear()
        self._count("dropped", lost)
        self.log.error("Alert drain timed out.", timeout=self.drain_timeout, dropped=lost)

    async def _send_loop(self, poster: Poster, shutdown: asyncio.Event) -> None:
        while True:
            batch = await self._next_batch(shutdown)
            if batch:
                await self._send_batch(poster, batch)
            elif shutdown.is_set():
                return

    async def _next_batch(self, shutdown: asyncio.Event) -> list[Alert]:
        """Wait for a first alert, then for batch_window more (cut short by shutdown)."""
        if not self._queue and not shutdown.is_set():
            self._wake.clear()
            await _wait_any(self._wake, shutdown)
        if self._queue and not shutdown.is_set():
            await _wait_any(shutdown, timeout=self.batch_window)
        batch = list(self._queue)
        self._queue.clear()
        return batch

    async def _send_batch(self, poster: Poster, batch: list[Alert]) -> None:
        """One message per kind per target; targets in parallel, each one's messages in order."""
        try:
            messages = self._messages(batch)
        except Exception:
            # A redactor that raises must not let unredacted text out, nor kill the sender.
            self.log.exception("Alert payloads could not be built; dropping the batch.")
            self._count("dropped", len(batch))
            return
        await asyncio.gather(*(self._send_to(poster, t, messages) for t in self.targets))

    def _messages(self, batch: list[Alert]) -> list[tuple[Kind, int, list[Alert]]]:
        """(kind, how many alerts, the listed ones redacted) for each kind in the batch."""
        out = []
        for kind in KINDS:
            alerts = [a for a in batch if a.kind == kind]
            if alerts:
                listed = [a.redacted(self.redact) for a in alerts[: self.max_listed]]
                out.append((kind, len(alerts), listed))
        return out

    async def _send_to(
        self, poster: Poster, target: WebhookTarget, messages: list[tuple[Kind, int, list[Alert]]]
    ) -> None:
        unsent = len(messages)
        try:
            for kind, total, listed in messages:
                delivered = await self._deliver(poster, target, kind, total, listed)
                unsent -= 1
                self._count("sent" if delivered else "failed")
        except asyncio.CancelledError:
            # The drain timeout (or run() being cancelled) cut these short: failed deliveries.
            self._count("failed", unsent)
            raise

    async def _deliver(
        self, poster: Poster, target: WebhookTarget, kind: Kind, total: int, listed: list[Alert]
    ) -> bool:
        try:
            payload = build(target.format, kind, listed, total)
            delivered, attempts = await poster.deliver(target, payload, kind=kind, patterns=total)
        except Exception:
            # A bug here must cost this message, not the sender task and every later alert.
            self.log.exception("Alert delivery crashed.", host=target.host, kind=kind)
            return False
        if delivered:
            self.log.info(
                "Alert sent.", host=target.host, kind=kind, patterns=total, attempts=attempts
            )
        return delivered


async def _wait_any(*aws: asyncio.Event | asyncio.Task[Any], timeout: float | None = None) -> None:
    """Return when any event is set or task is done, or after `timeout` seconds."""
    waiters = [
        aw if isinstance(aw, asyncio.Task) else asyncio.ensure_future(aw.wait()) for aw in aws
    ]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter, aw in zip(waiters, aws, strict=True):
            if waiter is not aw:
                waiter.cancel()
