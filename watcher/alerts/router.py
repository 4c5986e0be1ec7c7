"""The Router: decides which alerts go to which destination, and when; never does I/O.

It runs on the pipeline's hot path (`observe`), so per update it does a few dict lookups and,
for the rare alert, snapshots the group once for every destination that takes it. Per
destination it applies the Route's rules (`rules.Gate`) and the global rate cap
(`ratecap.RateCap`); across destinations it keeps the patterns that are open somewhere, so that
`tick` can resolve those that went quiet for `resolve_after`, send digests, and re-send open
patterns to destinations that need it (Alertmanager). The Alerter drains `queue`.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from watcher.alerts.alert import OPENING, Alert, Kind, digest, from_group, pattern_link
from watcher.alerts.destination import Destination
from watcher.alerts.ratecap import RateCap
from watcher.alerts.rules import MAX_TRACKED, Gate
from watcher.model import ErrorGroup, GroupUpdate

Count = Callable[[str, int], None]
_DROP_LOG_INTERVAL = 60.0  # a full queue is logged at most this often; the metric counts all


@dataclass
class _Open:
    """A pattern open at one or more destinations."""

    group: ErrorGroup
    kind: Kind
    opened_at: float
    last_seen: float


class Router:
    """Routing, storm control and the open-pattern lifecycle for a set of destinations."""

    def __init__(
        self,
        destinations: Sequence[Destination],
        *,
        clock: Callable[[], float],
        count: Count,
        log: Any,
        max_queue: int = 1000,
        resolve_after: float = 600.0,
        rate_limit: int = 20,
        rate_window: float = 300.0,
        public_url: str = "",
    ) -> None:
        self.destinations = tuple(destinations)
        self.gates = [Gate(d.route) for d in self.destinations]
        self.caps = [RateCap(rate_limit, rate_window) for _ in self.destinations]
        self.clock, self.count, self.log = clock, count, log
        self.max_queue, self.resolve_after, self.public_url = max_queue, resolve_after, public_url
        self.queue: deque[tuple[int, Alert]] = deque()
        self.open: OrderedDict[str, _Open] = OrderedDict()  # least recently seen first
        # ids some gate holds back for min_count: one set lookup per update instead of one per
        # destination (a superset: ids are dropped lazily, when next seen or by a rebuild)
        self._held: set[str] = set()
        # patterns this Router resolved for being quiet: their next event is a regression
        self._quieted: OrderedDict[str, None] = OrderedDict()
        self._resent = [clock()] * len(self.destinations)
        self._drops_unlogged, self._last_drop_log = 0, float("-inf")

    # --- inputs -----------------------------------------------------------------------------

    def observe(self, updates: Iterable[GroupUpdate]) -> None:
        """Route the alerts these updates deserve; raises only on a bug (the Alerter catches)."""
        now, held, opened, quieted = self.clock(), self._held, self.open, self._quieted
        for update in updates:
            gid = update.group.id
            if gid in opened:
                opened[gid].last_seen = now
                opened.move_to_end(gid)
            if gid in held:
                self._count_held(update, now)
            if update.is_new or update.crossed_threshold or gid in quieted:  # the rare ones
                self._worthy(update, now)

    def _worthy(self, update: GroupUpdate, now: float) -> None:
        if update.group.id in self._quieted:  # resolved for being quiet, and back
            del self._quieted[update.group.id]
            self._offer("regressed", update.group, now, _sample(update))
        if update.is_new:
            self._offer("new", update.group, now, _sample(update))
        if update.crossed_threshold:
            self._offer("threshold", update.group, now, _sample(update))

    def pr_opened(self, group: ErrorGroup, pr_url: str, fix_id: str) -> None:
        """Route the news that a fix PR was opened for `group`."""
        self._offer("pr_opened", group, self.clock(), "", pr_url=pr_url, fix_id=fix_id)

    def notify_transition(self, group: ErrorGroup, kind: str) -> None:
        """A lifecycle change of `group` from the engine: "resolved", else "regressed"."""
        self._quieted.pop(group.id, None)  # the engine's lifecycle speaks for it from now on
        if kind == "resolved":
            self._resolve(group, self.clock())
        else:
            self._offer("regressed", group, self.clock(), "")

    def tick(self, now: float) -> None:
        """Time-driven alerts: quiet patterns resolved, digests due, open patterns re-sent."""
        self._resolve_quiet(now)
        for i, cap in enumerate(self.caps):
            held = cap.digest_due(now)
            if held:
                self._enqueue(i, digest(held, cap.window, now), now)
        for i, destination in enumerate(self.destinations):
            interval = destination.resend_interval
            if interval > 0 and now - self._resent[i] >= interval:
                self._resent[i] = now
                self._resend(i, now)

    def take(self) -> list[tuple[int, Alert]]:
        """Everything queued, oldest first; the queue is empty afterwards."""
        batch = list(self.queue)
        self.queue.clear()
        return batch

    # --- routing ----------------------------------------------------------------------------

    def _count_held(self, update: GroupUpdate, now: float) -> None:
        """One more event of a pattern some destination holds back: send once min_count is met."""
        group = update.group
        for i, gate in enumerate(self.gates):
            kind = gate.seen(group.id, now) if gate.holds(group.id) else None
            if kind is not None:
                self._admit(i, kind, group, now, self._maker(kind, group, _sample(update), {}))
        if not any(gate.holds(group.id) for gate in self.gates):
            self._held.discard(group.id)

    def _offer(self, kind: Kind, group: ErrorGroup, now: float, sample: str, **extra: str) -> None:
        make = self._maker(kind, group, sample, extra)
        for i, gate in enumerate(self.gates):
            verdict = gate.decide(kind, group.id, group.severity, now)
            if verdict == "send":
                self._admit(i, kind, group, now, make)
            elif verdict == "suppress":
                self.count("suppressed", 1)
            elif verdict == "hold":
                self._hold(group.id)

    def _hold(self, group_id: str) -> None:
        self._held.add(group_id)
        if len(self._held) > 2 * MAX_TRACKED:  # gates forgot some (their LRU): rebuild
            self._held = {g for g in self._held if any(gate.holds(g) for gate in self.gates)}

    def _admit(
        self, i: int, kind: Kind, group: ErrorGroup, now: float, make: Callable[[], Alert]
    ) -> None:
        """Through the rate cap and the queue bound to destination i, or counted as not."""
        gate = self.gates[i]
        if kind != "resolved" and not self.caps[i].take(now):
            gate.record(kind, group.id, now, opened=False)  # in the digest; cooldown applies
            self.count("digested", 1)
            return
        if not self._enqueue(i, make(), now):
            return
        gate.record(kind, group.id, now)
        if kind in OPENING and group.id not in self.open:
            self.open[group.id] = _Open(group, kind, now, now)

    def _enqueue(self, i: int, alert: Alert, now: float) -> bool:
        if len(self.queue) >= self.max_queue:
            self._dropped(now)
            return False
        self.queue.append((i, alert))
        return True

    def _maker(
        self, kind: Kind, group: ErrorGroup, sample: str, extra: dict[str, str]
    ) -> Callable[[], Alert]:
        """A snapshot made at most once, however many destinations take it."""
        made: list[Alert] = []

        def make() -> Alert:
            if not made:
                entry = self.open.get(group.id)
                starts = entry.opened_at if entry is not None else self.clock()
                link = pattern_link(self.public_url, group.id)
                made.append(from_group(kind, group, sample, link=link, starts_at=starts, **extra))
            return made[0]

        return make

    # --- lifecycle --------------------------------------------------------------------------

    def _resolve_quiet(self, now: float) -> None:
        if self.resolve_after <= 0:
            return
        quiet = itertools.takewhile(
            lambda entry: now - entry.last_seen >= self.resolve_after, self.open.values()
        )
        for group in [entry.group for entry in quiet]:  # least recently seen first
            self._resolve(group, now)
            self._quieted[group.id] = None
            while len(self._quieted) > MAX_TRACKED:
                self._quieted.popitem(last=False)

    def _resolve(self, group: ErrorGroup, now: float) -> None:
        """Tell every destination where `group` is open that it resolved; forget it."""
        make = self._maker("resolved", group, "", {})
        for i, gate in enumerate(self.gates):
            if gate.decide("resolved", group.id, group.severity, now) == "send":
                self._admit(i, "resolved", group, now, make)
            gate.record("resolved", group.id, now)
        entry = self.open.pop(group.id, None)
        if entry is not None:
            self.log.info("Pattern resolved.", group=group.id, quiet=round(now - entry.last_seen))

    def _resend(self, i: int, now: float) -> None:
        for group_id in list(self.gates[i].opened):
            entry = self.open.get(group_id)
            if entry is not None:
                self._enqueue(i, self._maker(entry.kind, entry.group, "", {})(), now)

    def _dropped(self, now: float) -> None:
        self.count("dropped", 1)
        self._drops_unlogged += 1
        if now - self._last_drop_log >= _DROP_LOG_INTERVAL:
            self.log.warning("Alert queue full; dropping alerts.", dropped=self._drops_unlogged)
            self._drops_unlogged, self._last_drop_log = 0, now


def _sample(update: GroupUpdate) -> str:
    event = update.event
    return event.text or event.message
