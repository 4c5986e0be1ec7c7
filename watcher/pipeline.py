"""The synchronous core: a batch of raw lines in, group updates out.

parse (per-source assembler) -> classify -> group, with the accounting that makes every line
visible. No asyncio here: the daemon and the scanner drive the same object, and tests drive it
with plain lists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from watcher.classify import Rule, classify
from watcher.group.table import GroupTable
from watcher.metrics import Metrics
from watcher.model import GroupUpdate, LogEvent, RawLine, Stats
from watcher.parse.multiline import Assembler


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """The multi-line assembler's caps (from `[parse]`)."""

    max_event_lines: int = 500
    max_event_bytes: int = 256 * 1024
    multiline_timeout: float = 2.0


class Pipeline:
    """Turns raw line batches into group updates, counting everything on the way."""

    def __init__(
        self,
        table: GroupTable,
        *,
        rules: Sequence[Rule] = (),
        metrics: Metrics | None = None,
        limits: ParseLimits = ParseLimits(),
        period: tuple[float | None, float | None] = (None, None),
        on_event: Callable[[LogEvent, GroupUpdate | None], None] | None = None,
    ) -> None:
        self.table = table
        self.rules = tuple(rules)
        self.metrics = metrics or Metrics()
        self.limits = limits
        self.period = period
        self.on_event = on_event
        self.stats = Stats(period_start=period[0], period_end=period[1])
        self.assemblers: dict[str, Assembler] = {}
        # per source, per stream: the cursor of the last event fully processed
        self.cursors: dict[str, dict[str, Any]] = {}

    def _assembler(self, source: str) -> Assembler:
        asm = self.assemblers.get(source)
        if asm is None:
            lim = self.limits
            asm = Assembler(
                max_lines=lim.max_event_lines,
                max_bytes=lim.max_event_bytes,
                timeout=lim.multiline_timeout,
            )
            self.assemblers[source] = asm
        return asm

    def feed(self, batch: list[RawLine]) -> list[GroupUpdate]:
        """Process one batch (all lines from one source)."""
        if not batch:
            return []
        source = batch[0].source
        n = len(batch)
        stats = self.stats
        stats.lines += n
        stats.lines_by_source[source] = stats.lines_by_source.get(source, 0) + n
        self.metrics.lines.labels(source).inc(n)
        truncated = sum(1 for line in batch if line.truncated)
        if truncated:
            stats.truncated_lines += truncated
            self.metrics.truncated_lines.labels(source).inc(truncated)
        return self._handle(self._assembler(source).feed_batch(batch))

    def flush(self, *, force: bool = False) -> list[GroupUpdate]:
        """Close multi-line events whose stream went quiet (all of them when `force`)."""
        updates: list[GroupUpdate] = []
        for asm in self.assemblers.values():
            updates.extend(self._handle(asm.flush(force=force)))
        return updates

    def _handle(self, events: list[LogEvent]) -> list[GroupUpdate]:
        if not events:
            return []
        stats = self.stats
        stats.events += len(events)
        self.metrics.events.labels(events[0].source).inc(len(events))
        updates: list[GroupUpdate] = []
        cursors = self.cursors.setdefault(events[0].source, {})
        for event in events:
            if event.cursor is not None:
                cursors[event.stream] = event.cursor
            if not event.is_error:
                continue
            update = self._error(event)
            if update is not None:
                updates.append(update)
        return updates

    def _error(self, event: LogEvent) -> GroupUpdate | None:
        stats = self.stats
        if not self._in_period(event.timestamp):
            stats.out_of_window_events += 1
            return None
        stats.error_events += 1
        cls = classify(event, self.rules)
        if cls.ignored:
            stats.ignored_events += 1
            if self.on_event is not None:
                self.on_event(event, None)
            return None
        update = self.table.add(event, cls)
        self.metrics.errors.labels(cls.category, update.group.severity).inc()
        if self.on_event is not None:
            self.on_event(event, update)
        return update

    def _in_period(self, ts: float | None) -> bool:
        if ts is None:
            return True  # an event with no timestamp is kept (DESIGN: scan --since)
        start, end = self.period
        return (start is None or ts >= start) and (end is None or ts <= end)

    def take_cursors(self) -> dict[str, dict[str, Any]]:
        """The cursors reached since the last call, per source; the caller commits them."""
        out, self.cursors = self.cursors, {}
        return {k: v for k, v in out.items() if v}
