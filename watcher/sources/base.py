"""The Source seam: what every source module provides, and what the pipeline hands it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from watcher.metrics import Metrics
from watcher.model import RawLine

DEFAULT_MAX_LINE_BYTES = 64 * 1024


@dataclass
class SourceContext:
    """What the pipeline gives a source when it builds it."""

    shutdown: asyncio.Event = field(default_factory=asyncio.Event)
    # stream -> the cursor last committed for that stream (a dict; empty or None when none)
    checkpoint: Any = None
    metrics: Metrics = field(default_factory=Metrics)
    log: Any = field(default_factory=lambda: structlog.get_logger("watcher.source"))
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    # stream -> a position no line carries (a file placed at its end): stored with the next
    # commit, before the cursors of the lines read after it (None: nothing is stored)
    note: Callable[[dict[str, Any]], None] | None = None
    # the daemon's table of push-source HTTP routes (watcher.sources.intake.Intake); None where
    # no HTTP server runs (scan, replay, tests of pull sources)
    intake: Any = None


class Source(Protocol):
    """A producer of raw lines.

    Both methods yield *batches* (lists) of RawLine, never single lines: per-line async iteration
    costs more than parsing a line does. A batch may be any size >= 1.
    """

    name: str
    delivery: str  # "at_least_once" or "best_effort"

    def lines(self) -> AsyncIterator[list[RawLine]]:
        """Follow mode: resume from ctx.checkpoint (else the default start) until shutdown."""
        ...

    def window(self, start: float | None, end: float | None) -> AsyncIterator[list[RawLine]]:
        """Scan mode: the lines of [start, end] (epoch seconds; None = unbounded), then stop."""
        ...


class SourceConfig(Protocol):
    """A frozen dataclass per source type; its fields are the TOML keys of one [[sources]] entry."""

    type: str
    name: str

    def build(self, ctx: SourceContext) -> Source: ...


