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


@dataclass(frozen=True)
class Check:
    """One line of `check-config --probe`: what was checked, whether it passed, and why.

    `ok` None: not checked (skipped, with the reason in `detail`)."""

    name: str
    ok: bool | None
    detail: str


@dataclass
class SourceStatus:
    """What a running source says about itself beyond its lines, for readiness and the API.

    `problem` is set while the source cannot read anything for a reason only the user can fix
    (a path that matches no file, a program not on PATH): the daemon is then not ready and names
    it. `targets` lists what the source reads now (a file source: each file with its offset),
    replaced whole by the source, never mutated in place (read from the event loop).
    """

    problem: str | None = None
    targets: list[dict[str, Any]] = field(default_factory=list)


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
    status: SourceStatus = field(default_factory=SourceStatus)


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

    # Optional: `async def probe(self) -> list[Check]` — connect to what the source reads
    # (`watcher check-config --probe`); a source type without one is reported as not probed.


