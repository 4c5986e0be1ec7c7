"""The daemon's `WatcherView`: what the JSON API and the dashboard read from a running watcher.

Read methods run on the event loop and must not block, so stored groups and fixes are read from
caches that `refresh()` fills in a worker thread; live groups come straight from the table.
The caches are filled on demand (`current()`, awaited before each API request) when they are
older than MAX_AGE, not on a clock: a daemon nobody asks reads nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from array import array
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from watcher.engine import Engine
from watcher.group.lifecycle import merge_buckets
from watcher.group.window import Windows
from watcher.metrics import Metrics
from watcher.model import CATEGORIES, Activity, ErrorGroup, Fix, GroupUpdate
from watcher.patterns import PatternActions
from watcher.store import StateStore

MINUTES = 24 * 60
RATES_STATE_KEY = "rate_history"
ACTIVITY_SHOWN = 500  # the newest activity entries the view keeps (the API's largest page)
# How old the stored groups, fixes and activity an API answer shows may be, in seconds. Read on
# a clock instead, every 5 s whether anyone asked or not, the 2,000 newest groups cost a flood of
# new groups 3-5 % of its CPU, and each watcher of a fleet as many reads of the shared database.
MAX_AGE = 5.0

log = structlog.get_logger("watcher.daemon")


class RateHistory:
    """Error events per category per minute over the last day, in fixed memory."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.counts = {c: array("q", [0]) * MINUTES for c in CATEGORIES}
        self.epochs = {c: array("q", [-1]) * MINUTES for c in CATEGORIES}

    def dump(self) -> dict[str, dict[str, int]]:
        """The last day's non-empty minutes per category, for the store."""
        oldest = int(self.clock() // 60) - MINUTES
        out: dict[str, dict[str, int]] = {}
        for category, counts in self.counts.items():
            epochs = self.epochs[category]
            kept = {str(m): n for m, n in zip(epochs, counts, strict=True) if n and m > oldest}
            if kept:
                out[category] = kept
        return out

    def restore(self, dumped: dict[str, dict[str, int]]) -> None:
        """Put a dump back (a restart keeps the rate chart)."""
        for category, minutes in dumped.items():
            for minute, n in minutes.items():
                self.add(category, int(minute) * 60.0, int(n))

    def add(self, category: str, t: float | None = None, n: int = 1) -> None:
        minute = int((t if t is not None else self.clock()) // 60)
        slot = minute % MINUTES
        counts, epochs = self.counts.get(category), self.epochs.get(category)
        if counts is None or epochs is None or epochs[slot] > minute:
            return
        if epochs[slot] != minute:
            epochs[slot], counts[slot] = minute, 0
        counts[slot] += n

    def series(self, *, bucket_seconds: int, buckets: int) -> dict[str, list[int]]:
        """Per category with any events: counts per bucket, oldest first, ending now."""
        per = max(1, bucket_seconds // 60)
        now = int(self.clock() // 60)
        first = now - per * buckets + 1
        out: dict[str, list[int]] = {}
        for category, counts in self.counts.items():
            epochs = self.epochs[category]
            series = [0] * buckets
            for slot in range(MINUTES):
                minute = epochs[slot]
                if first <= minute <= now:
                    series[(minute - first) // per] += counts[slot]
            if any(series):
                out[category] = series
        return out


class DaemonView:
    """A `WatcherView` over a running engine, its store, and (when enabled) the fix pipeline."""

    def __init__(
        self,
        engine: Engine,
        store: StateStore,
        metrics: Metrics,
        *,
        interval: float,
        fixer: Callable[[str, bool], Awaitable[Fix]] | None = None,
        clock: Callable[[], float] = time.time,
        max_age: float = MAX_AGE,
        ages: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.store = store
        self.metrics = metrics
        self.interval = interval
        self.fixer = fixer
        self.clock = clock
        self.monitoring_enabled = True
        self.rates = RateHistory(clock)
        self.rates_changed = False
        self.actions = PatternActions(
            store, table=engine.pipeline.table, engine=engine, clock=clock
        )
        engine.pipeline.table.life.subscribe(self.noted)
        self.errors_by_source: dict[str, int] = {}  # error events seen since the start
        self._stored: dict[str, ErrorGroup] = {}
        self._fixes: list[Fix] = []
        self._activity: list[Activity] = []
        self._recent: deque[Activity] = deque(maxlen=ACTIVITY_SHOWN)
        self.max_age = max_age
        self._ages = ages  # a monotonic clock: how old the caches are
        self._read_at: float | None = None  # when the caches were last read (None: never)
        self._reading = asyncio.Lock()  # requests that find the caches old share one read
        self.reads = 0  # store reads made for the caches (the tests count them)

    def noted(self, _group: ErrorGroup, entry: Activity) -> None:
        """Lifecycle subscriber: the change shows in the activity list before it is stored."""
        self._recent.append(entry)

    async def restore(self) -> None:
        """The rate history the last run stored (in a worker thread)."""
        dumped = await asyncio.to_thread(self.store.get_state, RATES_STATE_KEY)
        if isinstance(dumped, dict):
            self.rates.restore(dumped)

    async def save_rates(self) -> None:
        """Store the rate history when it changed (in a worker thread)."""
        if self.rates_changed:
            self.rates_changed = False
            await asyncio.to_thread(self.store.set_state, RATES_STATE_KEY, self.rates.dump())

    def observe(self, updates: list[GroupUpdate]) -> None:
        """on_updates hook: count each error event in its category's rate history.

        By the time the watcher saw it, as Prometheus rates are: a backlog read after a restart
        shows as a burst now rather than vanishing into an hour the chart no longer shows.
        """
        errors = self.errors_by_source
        for update in updates:
            self.rates.add(update.classification.category)
            source = update.event.source
            errors[source] = errors.get(source, 0) + 1
        self.rates_changed = self.rates_changed or bool(updates)

    def _stale(self) -> bool:
        return self._read_at is None or self._ages() - self._read_at >= self.max_age

    async def current(self) -> None:
        """Re-read the caches when they are max_age old or more (WatcherView.current).

        A failing read (a locked or failing store) is logged, and the request answered from
        the caches as they are: the API stays up while the store is away, and asks again only
        after max_age, not at every request.
        """
        if not self._stale():
            return
        async with self._reading:
            if not self._stale():  # read by the request this one waited for
                return
            try:
                await self.refresh()
            except Exception as exc:
                self._read_at = self._ages()
                log.warning("Could not refresh the API view from the store.", error=str(exc))

    async def refresh(self) -> None:
        """Re-read stored groups, fixes and activity into the caches (in a worker thread)."""
        started = self._ages()  # what changes during the read may be missed: age from here
        self.reads += 1
        groups, fixes, activity = await asyncio.to_thread(self._read_store)
        self._read_at = started
        self._stored = {g.id: g for g in groups}
        self._fixes = fixes
        self._activity = activity

    def _read_store(self) -> tuple[list[ErrorGroup], list[Fix], list[Activity]]:
        return (
            self.store.list_groups(limit=2000, order="last_seen"),
            self.store.list_fixes(limit=500),
            self.store.list_activity(limit=ACTIVITY_SHOWN),
        )

    def activity(self, *, group_id: str | None = None, limit: int = 100) -> list[Activity]:
        def key(a: Activity) -> tuple[str, str, str, float]:
            return (a.group_id, a.action, a.actor, a.at)

        merged = {key(a): a for a in self._recent}
        merged.update({key(a): a for a in self._activity})  # the stored copy carries its id
        chosen = [a for a in merged.values() if group_id is None or a.group_id == group_id]
        return sorted(chosen, key=lambda a: (-a.at, -a.id))[:limit]

    async def change(self, group_id: str, action: str, actor: str, **params: Any) -> ErrorGroup:
        group = await self.actions.apply(group_id, action, actor, **params)
        for other in params.get("others", ()):  # merged away: gone before the next refresh
            self._stored.pop(other, None)
        self._stored[group.id] = group
        return group

    def groups(self, *, since: float | None = None) -> list[ErrorGroup]:
        live = {g.id: g for g in self.engine.pipeline.table.snapshot(self.clock())}
        merged = {**self._stored, **live}
        chosen = [g for g in merged.values() if since is None or g.last_seen >= since]
        return [self._fleet(g, g.id in live) for g in chosen] if self.store.shared else chosen

    def group(self, group_id: str) -> ErrorGroup | None:
        table = self.engine.pipeline.table
        group_id = table.aliases.get(group_id, group_id)  # a merged-in fingerprint: its owner
        found = next((g for g in table.snapshot(self.clock()) if g.id == group_id), None)
        live = found is not None
        found = found or self._stored.get(group_id)
        return self._fleet(found, live) if found is not None and self.store.shared else found

    def _fleet(self, group: ErrorGroup, live: bool) -> ErrorGroup:
        """On a state several watchers share, a copy of `group` with the fleet's count and
        windows: the stored count (every watcher's commits) plus what this one counted since
        its last commit, and its own windows plus the other watchers' buckets."""
        stored = self._stored.get(group.id)
        count, peers = group.count, group.peer_buckets
        if stored is not None:
            peers = stored.peer_buckets
            if live:  # stored.count is the fleet's as of the last refresh
                count = max(count, stored.count + group.count - group.flushed)
        table = self.engine.pipeline.table
        windows = Windows(table.spans, table.labels)
        windows.restore(merge_buckets(peers, {} if live else group.buckets))
        now = self.clock()
        shown = windows.counts(now)
        own = group.window_counts if live else {}
        counts = {label: n + own.get(label, 0) for label, n in shown.items()}
        return dataclasses.replace(group, count=count, window_counts=counts)

    def fixes(self, *, group_id: str | None = None) -> list[Fix]:
        chosen = [f for f in self._fixes if group_id is None or f.group_id == group_id]
        return sorted(chosen, key=lambda f: (-f.created, f.id))

    def fix(self, fix_id: str) -> Fix | None:
        return next((f for f in self._fixes if f.id == fix_id), None)

    def sources(self) -> dict[str, dict[str, Any]]:
        stats = self.engine.pipeline.stats
        shared = self.engine.options.shared
        roles = shared.status() if shared is not None else {}
        out: dict[str, dict[str, Any]] = {}
        for name, state in self.engine.sources.items():
            up = self.metrics.registry.get_sample_value("watcher_source_up", {"source": name})
            lag = self.metrics.registry.get_sample_value(
                "watcher_source_lag_seconds", {"source": name}
            )
            problem = state.status.problem
            out[name] = {
                "up": state.failed is None and problem is None and (up is None or up >= 1),
                "lines": stats.lines_by_source.get(name, 0),
                "error_events": self.errors_by_source.get(name, 0),
                "error": str(state.failed) if state.failed is not None else problem,
                "lag_seconds": lag,
                "problem": problem,
                "targets": list(state.status.targets),
                "shared": roles.get(name),
            }
        return out

    def error_rate(self, *, bucket_seconds: int, buckets: int) -> dict[str, list[int]]:
        return self.rates.series(bucket_seconds=bucket_seconds, buckets=buckets)

    async def generate_fix(self, group_id: str, *, create_pr: bool) -> Fix:
        if self.group(group_id) is None:
            raise KeyError(group_id)
        if self.fixer is None:
            raise PermissionError(
                "auto-fix is disabled: set [autofix] enabled = true (or run with --auto-fix)"
            )
        fix = await self.fixer(group_id, create_pr)
        self._fixes = [f for f in self._fixes if f.id != fix.id] + [fix]
        return fix

    async def start_monitor(self, *, interval: float | None) -> dict[str, Any]:
        if interval is not None:
            self.interval = interval
        return {"status": "running", "interval_seconds": self.interval}

    async def scan(self, *, hours: float, auto_fix: bool) -> dict[str, Any]:
        found = self.groups(since=self.clock() - hours * 3600)
        result: dict[str, Any] = {
            "errors_found": len(found),
            "critical_errors": sum(1 for g in found if g.severity == "critical"),
        }
        if auto_fix:
            started = 0
            for g in found:
                if not g.fixable or self.fixer is None:
                    continue
                try:
                    await self.generate_fix(g.id, create_pr=True)
                    started += 1
                except PermissionError:
                    continue  # already open, running, or over budget: the pipeline said why
            result["auto_fixes_started"] = started
        return result
