"""The Alerter: routes alert-worthy group updates to destinations, batches, redacts, sends.

`observe` runs on the pipeline's hot path, so it only hands updates to the `Router` (a few
dict lookups per update); everything slow (redaction, payloads, HTTP, retries) happens in the
`run` task, which also wakes every `tick` seconds for the time-driven alerts (resolves of quiet
patterns, digests, Alertmanager re-sends). Call `observe`, `pr_opened` and `notify_transition`
on the event loop's thread (the engine's callbacks are), since they wake `run` through an
asyncio.Event.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import aiohttp
import structlog

from watcher.alerts.alert import Alert, Redact
from watcher.alerts.delivery import Poster, RetryPolicy
from watcher.alerts.destination import Destination
from watcher.alerts.payloads import MAX_LISTED
from watcher.alerts.router import Router
from watcher.alerts.rules import Route
from watcher.alerts.targets import WebhookTarget, parse_target
from watcher.alerts.webhook import WebhookDestination
from watcher.model import ErrorGroup, GroupUpdate

USER_AGENT = "watcher-alerts"


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
    """Sends alerts for groups to destinations; see `router` and `rules` for which and when.

    `destinations` may hold plain webhook URLs (the legacy `[alerts] webhooks`), which become
    webhook destinations with `min_severity` and `cooldown`; built destinations keep their own.
    """

    def __init__(
        self,
        destinations: Sequence[str | WebhookTarget | Destination],
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
        resolve_after: float = 600.0,
        rate_limit: int = 20,
        rate_window: float = 300.0,
        public_url: str = "",
        tick: float = 1.0,
    ) -> None:
        if cooldown < 0 or batch_window < 0 or max_queue < 1 or max_retries < 0:
            raise ValueError("cooldown, batch_window, max_retries must be >= 0, max_queue >= 1")
        route = Route(min_severity=min_severity, cooldown=cooldown)
        self.destinations = tuple(_destination(d, route, max_listed) for d in destinations)
        self.batch_window, self.drain_timeout, self.tick = batch_window, drain_timeout, tick
        self.redact, self.metrics, self.clock = redact, metrics, clock
        self.session_factory = session_factory or _default_session
        self.retry = dataclasses.replace(retry or RetryPolicy(), max_retries=max_retries)
        self.log = logger or structlog.get_logger("watcher.alerts")
        self.router = Router(
            self.destinations,
            clock=clock,
            count=self._count,
            log=self.log,
            max_queue=max_queue,
            resolve_after=resolve_after,
            rate_limit=rate_limit,
            rate_window=rate_window,
            public_url=public_url,
        )
        self._wake = asyncio.Event()
        # on a shared state (watcher.fleet.outbox.AlertOutbox): batches are queued there and
        # only what it hands back (the leader's claimed alerts) is sent
        self.outbox: Any = None

    # --- producer side: the pipeline's hot path ---------------------------------------------

    def observe(self, updates: Iterable[GroupUpdate]) -> None:
        """Queue the alerts these updates deserve; never blocks, never raises."""
        if self.destinations:
            self._guarded(self.router.observe, updates)

    def pr_opened(self, group: ErrorGroup, pr_url: str, fix_id: str) -> None:
        """Queue an alert saying a fix PR was opened for `group`."""
        if self.destinations:
            self._guarded(self.router.pr_opened, group, pr_url, fix_id)

    def notify_transition(self, group: ErrorGroup, kind: str) -> None:
        """The engine's lifecycle hook: `group` was "resolved" or has "regressed".

        A resolve goes to every destination where the pattern is open (PagerDuty resolves the
        incident, Alertmanager ends the alert); a regression is a new alert of kind regressed.
        """
        if kind not in ("resolved", "regressed"):
            raise ValueError(f"transition: expected resolved or regressed, got {kind!r}")
        if self.destinations:
            self._guarded(self.router.notify_transition, group, kind)

    def _guarded(self, call: Callable[..., None], *args: Any) -> None:
        try:
            call(*args)
        except Exception:
            # An alerting bug must not take the pipeline down with it.
            self.log.exception("Alert selection failed; skipping these updates.")
            self._count("dropped")
        if self.router.queue:
            self._wake.set()

    def _count(self, outcome: str, amount: int = 1) -> None:
        if self.metrics is not None and amount:
            self.metrics.alerts_sent.labels(outcome=outcome).inc(amount)

    @property
    def pending(self) -> int:
        """Alerts queued (one per destination) and not yet taken by the sender."""
        return len(self.router.queue)

    # --- consumer side: the sender task ------------------------------------------------------

    async def run(self, shutdown: asyncio.Event) -> None:
        """Send batches until `shutdown`; then send what is queued within drain_timeout."""
        if not self.destinations:
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
        lost = len(self.router.take())
        self._count("dropped", lost)
        self.log.error("Alert drain timed out.", timeout=self.drain_timeout, dropped=lost)

    async def _send_loop(self, poster: Poster, shutdown: asyncio.Event) -> None:
        while True:
            if not shutdown.is_set():
                self._guarded(self.router.tick, self.clock())
            batch = await self._next_batch(shutdown)
            if self.outbox is not None:
                batch = await self.outbox.exchange(batch)
            if batch:
                await self._send_batch(poster, batch)
            elif shutdown.is_set():
                return

    async def _next_batch(self, shutdown: asyncio.Event) -> list[tuple[int, Alert]]:
        """Wait for a first alert (or the tick), then batch_window more (cut short by shutdown)."""
        if not self.router.queue and not shutdown.is_set():
            self._wake.clear()
            await _wait_any(self._wake, shutdown, timeout=self.tick)
        if self.router.queue and not shutdown.is_set():
            await _wait_any(shutdown, timeout=self.batch_window)
        return self.router.take()

    async def _send_batch(self, poster: Poster, batch: list[tuple[int, Alert]]) -> None:
        """Each destination its share of the batch, redacted; destinations in parallel."""
        try:
            shares = self._shares(batch)
        except Exception:
            # A redactor that raises must not let unredacted text out, nor kill the sender.
            self.log.exception("Alert payloads could not be built; dropping the batch.")
            self._count("dropped", len(batch))
            return
        await asyncio.gather(*(self._send_to(poster, i, alerts) for i, alerts in shares.items()))

    def _shares(self, batch: list[tuple[int, Alert]]) -> dict[int, list[Alert]]:
        """destination index -> its alerts, each snapshot redacted once whoever shares it."""
        redacted: dict[int, Alert] = {}
        shares: dict[int, list[Alert]] = {}
        for i, alert in batch:
            clean = redacted.get(id(alert))
            if clean is None:
                clean = redacted[id(alert)] = alert.redacted(self.redact)
            shares.setdefault(i, []).append(clean)
        return shares

    async def _send_to(self, poster: Poster, i: int, alerts: list[Alert]) -> None:
        destination = self.destinations[i]
        try:
            outcome = await destination.send(poster, alerts)
        except asyncio.CancelledError:
            # The drain timeout (or run() being cancelled) cut this short: a failed delivery.
            self._count("failed")
            raise
        except Exception:
            # A bug here must cost this batch, not the sender task and every later alert.
            self.log.exception("Alert delivery crashed.", destination=destination.name)
            self._count("failed")
            return
        self._count("sent", outcome.sent)
        self._count("failed", outcome.failed)


def _destination(
    spec: str | WebhookTarget | Destination, route: Route, max_listed: int
) -> Destination:
    """A legacy webhook URL (or target) as a webhook destination; a destination as it is."""
    if isinstance(spec, str | WebhookTarget):
        target = parse_target(spec)
        return WebhookDestination(target.format, target, route, max_listed)
    return spec


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
