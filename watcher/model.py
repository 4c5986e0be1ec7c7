"""The data that flows between stages: the only module every other module imports.

RawLine (sources) -> LogEvent (parse) -> Classification (classify) -> ErrorGroup (group).
Everything here is plain data: no I/O, no asyncio.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Normalised level names, lowest first; parse maps every spelling onto these.
LEVELS = ("trace", "debug", "info", "notice", "warning", "error", "critical")
LEVEL_RANK = {name: rank for rank, name in enumerate(LEVELS)}
ERROR_RANK = LEVEL_RANK["error"]

SEVERITIES = ("info", "low", "medium", "high", "critical")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}

CATEGORIES = (
    "provider_error",
    "database_error",
    "rate_limit_error",
    "timeout_error",
    "auth_error",
    "validation_error",
    "cache_error",
    "external_service_error",
    "internal_error",
)


@dataclass(slots=True)
class RawLine:
    """One physical line as a source read it, before any parsing.

    `cursor` is opaque to everyone but the source that made it; the pipeline stores the cursor of
    the last processed line so a restarted daemon resumes there. It must be JSON-serialisable, or
    a lazy tuple (base, offset, line) whose `base.at(offset, line)` makes that value: the file
    source shares one base among a batch's lines, since only a few lines' cursors are ever stored
    (`watcher.pipeline.solid_cursor` makes a cursor what is stored; no other source uses tuples).
    `stream` keys multi-line assembly: lines of one stream (a file, a pod, a log stream) are
    assembled together, never with another stream's.
    """

    text: str
    source: str = ""
    stream: str = ""
    cursor: Any = None
    line_no: int = 0
    timestamp: float | None = None
    fields: dict[str, Any] | None = None
    truncated: bool = False


class LineBatch(list):  # type: ignore[type-arg]  # list[RawLine]
    """A batch of RawLines that a local reader (the file source) split itself: one stream, no
    lone surrogates (UTF-8 decoded with replacement cannot make one), `truncated` of them cut.

    The pipeline takes these facts instead of looking at every line (pipeline._look_over: ~500
    instructions a line, ~1 % of a mixed replay). A slice or a copy is a plain list again, and is
    looked over; whoever changes a LineBatch in place (another stream's line, a new text) must
    make it a plain list."""

    __slots__ = ("truncated",)

    def __init__(self, lines: Iterable[RawLine] = (), truncated: int = 0) -> None:
        super().__init__(lines)
        self.truncated = truncated


@dataclass(slots=True)
class Frame:
    """One stack frame of a trace."""

    file: str
    line: int | None
    function: str
    in_app: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The shape of `--emit events` and reports: where, without the in-app judgement."""
        return {"file": self.file, "line": self.line, "function": self.function}

    def to_record(self) -> dict[str, Any]:
        """Every field, in_app included: what the store and the JSON API round-trip."""
        return {**self.to_dict(), "in_app": self.in_app}


@dataclass(slots=True)
class LogEvent:
    """One logical log record: a line, or a line plus its trace continuation lines."""

    message: str
    source: str = ""
    stream: str = ""
    level: str | None = None
    timestamp: float | None = None
    logger: str | None = None
    format: str = "plain"
    fields: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    exception_type: str | None = None
    exception_message: str | None = None
    frames: list[Frame] = field(default_factory=list)
    first_line: int = 0
    last_line: int = 0
    line_count: int = 1
    cursor: Any = None
    truncated: bool = False

    @property
    def is_error(self) -> bool:
        """An error is a record at level error or above, or one that carries a trace."""
        if self.exception_type is not None or self.frames:
            return True
        return self.level is not None and LEVEL_RANK.get(self.level, 0) >= ERROR_RANK

    @property
    def top_frame(self) -> Frame | None:
        """The innermost in-app frame, else the innermost frame: where to look first."""
        for frame in reversed(self.frames):
            if frame.in_app:
                return frame
        return self.frames[-1] if self.frames else None


@dataclass(frozen=True, slots=True)
class Classification:
    """What an error is, how bad, and whether the fix pipeline may try it."""

    category: str
    severity: str
    fixable: bool
    suggested_fix: str = ""
    ignored: bool = False
    rule: str = "builtin"


@dataclass(slots=True)
class Sample:
    """A stored example occurrence of a group."""

    timestamp: float
    source: str
    text: str
    line: int = 0


@dataclass(slots=True)
class ErrorGroup:
    """A pattern of errors: every event with the same fingerprint."""

    id: str
    kind: str  # "trace" or "template"
    template: str
    category: str
    severity: str
    fixable: bool
    suggested_fix: str = ""
    exception_type: str | None = None
    top_frame: Frame | None = None
    frames: list[Frame] = field(default_factory=list)
    count: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    sources: dict[str, int] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    status: str = "open"  # open | alerting | fixing | fixed | ignored
    # filled from the sliding windows when a snapshot is taken: {"1m": 3, "5m": 9, "1h": 40}
    window_counts: dict[str, int] = field(default_factory=dict)
    trend: str = "flat"  # rising | falling | flat | new
    # the pattern's life (watcher/group/lifecycle.py): open | resolved | ignored | regressed
    state: str = "open"
    state_changed: float = 0.0
    # an ignore that ends by itself: at this time, or once `count` reaches ignore_count
    ignore_until: float | None = None
    ignore_count: int | None = None
    # per field that logs carry (host, pod, release): value -> events, bounded (see table)
    tags: dict[str, dict[str, int]] = field(default_factory=dict)
    # the sliding windows' buckets ({span seconds: {bucket epoch: count}}), so a restart shows
    # the same windows; filled by the group table when it hands the group to the store
    buckets: dict[str, dict[str, int]] = field(default_factory=dict)
    # how much of `count` a store shared by several watchers already holds (PostgresStore adds
    # only count - flushed at a commit); not part of the group's value
    flushed: int = field(default=0, repr=False, compare=False)
    # on a store several watchers share: the other watchers' window buckets, summed (`buckets`
    # is then this watcher's own); the windows shown are both added up
    peer_buckets: dict[str, dict[str, int]] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Activity:
    """One recorded change of a group's life: who did what, when (the activity list)."""

    group_id: str
    action: str  # resolved | ignored | reopened | regressed | unignored | merged | split | ...
    actor: str  # "user:<name>", "api", "cli", "watcher" (automatic), "fix:<fix id>"
    at: float
    old_state: str = ""
    new_state: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    id: int = 0  # the store's sequence number (0 until stored)


@dataclass(slots=True)
class GroupUpdate:
    """Emitted by the grouper for every error event: which group, and what changed.

    Not frozen, though nothing changes one: a frozen dataclass's __init__ sets each field
    through object.__setattr__, ~7k instructions a flood event (it was unhashable either way:
    its group is a mutable ErrorGroup)."""

    group: ErrorGroup
    event: LogEvent
    classification: Classification
    is_new: bool
    crossed_threshold: bool = False


@dataclass(slots=True)
class Fix:
    """A proposed fix for a group; filled in by the fix pipeline."""

    id: str
    group_id: str
    status: str  # pending | analyzed | patched | pr_open | rejected | failed | dry_run
    created: float
    root_cause: str = ""
    confidence: float = 0.0
    diff: str = ""
    branch: str = ""
    pr_url: str = ""
    error: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Stats:
    """The accounting of one pipeline run: every line read is visible in one of these counts."""

    lines: int = 0
    duplicate_lines: int = 0
    truncated_lines: int = 0
    dropped_lines: int = 0
    events: int = 0
    error_events: int = 0
    ignored_events: int = 0
    out_of_window_events: int = 0
    parse_fallbacks: int = 0  # lines that looked structured but did not parse: kept as plain
    lines_by_source: dict[str, int] = field(default_factory=dict)
    started: float = 0.0
    finished: float = 0.0
    period_start: float | None = None
    period_end: float | None = None
