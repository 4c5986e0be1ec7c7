"""`watcher scan` and `watcher replay`: one bounded pass of the pipeline over a window.

Checkpoints are neither read nor moved; the state DB is touched only when a path is given.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from watcher.config import Config
from watcher.metrics import Metrics
from watcher.model import SEVERITY_RANK, ErrorGroup, GroupUpdate, LogEvent, Stats
from watcher.sources.base import SourceConfig
from watcher.store import Store
from watcher.wiring import build_engine, build_pipeline


@dataclass
class ScanResult:
    """What one bounded pass found."""

    stats: Stats
    groups: list[ErrorGroup]
    failed_sources: dict[str, str] = field(default_factory=dict)
    empty_sources: list[str] = field(default_factory=list)

    def worst_severity_rank(self) -> int:
        return max((SEVERITY_RANK[g.severity] for g in self.groups), default=-1)


def event_json(event: LogEvent, update: GroupUpdate | None) -> str:
    """One error event as the `--emit events` JSON line."""
    top = event.top_frame
    doc: dict[str, Any] = {
        "source": event.source,
        "stream": event.stream,
        "first_line": event.first_line,
        "last_line": event.last_line,
        "group": update.group.id if update else None,
        "category": update.classification.category if update else None,
        "severity": update.group.severity if update else None,
        "ignored": update is None,
        "exception_type": event.exception_type,
        "top_frame": top.to_dict() if top else None,
        "message": event.message,
        "timestamp": event.timestamp,
        "level": event.level,
    }
    return json.dumps(doc, ensure_ascii=False)


def event_printer(out: IO[str]) -> Callable[[LogEvent, GroupUpdate | None], None]:
    """An on_event hook that writes one JSON object per error event."""

    def emit(event: LogEvent, update: GroupUpdate | None) -> None:
        out.write(event_json(event, update) + "\n")

    return emit


class Progress:
    """A one-line progress display on a terminal (stderr), at most a few times a second."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.last = 0.0
        self.started = time.monotonic()

    def __call__(self, stats: Stats, groups: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.25:
            return
        self.last = now
        rate = stats.lines / max(now - self.started, 1e-6)
        self.stream.write(
            f"\r{stats.lines:,} lines  {stats.error_events:,} errors  {groups:,} groups"
            f"  {rate:,.0f} lines/s "
        )
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\r" + " " * 72 + "\r")
        self.stream.flush()


async def scan(
    config: Config,
    sources: list[SourceConfig],
    *,
    period: tuple[float | None, float | None] = (None, None),
    on_event: Callable[[LogEvent, GroupUpdate | None], None] | None = None,
    state_path: str | None = None,
    metrics: Metrics | None = None,
    progress: bool = False,
) -> ScanResult:
    """Read every source's window once, through the full pipeline; return groups and stats."""
    metrics = metrics or Metrics()
    pipeline = build_pipeline(config, metrics, period=period, on_event=on_event)
    store = Store(state_path, metrics=metrics) if state_path else None
    show = Progress(sys.stderr) if progress and sys.stderr.isatty() else None
    engine = build_engine(
        config,
        pipeline,
        sources,
        metrics=metrics,
        store=store,
        follow=False,
        period=period,
        progress=show,
    )
    try:
        stats = await engine.run(asyncio.Event())
    finally:
        if show is not None:
            show.close()
        if store is not None:
            store.close()
    stats.duplicate_lines = int(_sum_counter(metrics, "watcher_duplicate_lines_total"))
    failed = {n: str(s.failed) for n, s in engine.sources.items() if s.failed is not None}
    empty = [n for n, s in engine.sources.items() if s.batches == 0]
    return ScanResult(stats, pipeline.table.snapshot(), failed, empty)


def _sum_counter(metrics: Metrics, name: str) -> float:
    total = 0.0
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name:
                total += sample.value
    return total
