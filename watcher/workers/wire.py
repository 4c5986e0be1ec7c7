"""What a worker process sends its parent: one `Shipment` per batch it processed.

Pure data and pure functions. The parent's per-message cost is the limit of the whole design
(an earlier attempt that sent an object per line spent 35-43 % of a core in the parent), so a
shipment carries per-batch counter deltas, the safe cursors, and only the error events, each as
a flat tuple (pickled several times faster than the dataclasses it stands for).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from watcher.model import Classification, Frame, LogEvent

# the Stats counters a worker counts and the parent adds up (lines_by_source goes per source)
STAT_FIELDS = (
    "lines",
    "truncated_lines",
    "events",
    "error_events",
    "ignored_events",
    "out_of_window_events",
    "parse_fallbacks",
)

Packed = tuple[Any, ...]


@dataclass(slots=True)
class Shipment:
    """The outcome of one batch (or one idle flush) in a worker."""

    worker: int
    source: str  # the source whose batch it was ("" for a flush of every source)
    stats: dict[str, int] = field(default_factory=dict)  # STAT_FIELDS deltas, nonzero only
    lines: dict[str, int] = field(default_factory=dict)  # per source
    events: dict[str, int] = field(default_factory=dict)  # per source, after assembly
    cursors: dict[str, dict[str, Any]] = field(default_factory=dict)  # safe, per source
    # positions no line carries (SourceContext.note), per source: stored before the cursors
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # classified error events; ignored ones (their classification says so) are sent only
    # when the parent prints events
    errors: list[tuple[Packed, Packed]] = field(default_factory=list)
    # the masked text (tokens joined) of messages the worker saw first: the parent's miner keys
    # on it as it comes, without masking them (one string: no split here, no join there)
    masked: dict[str, str] = field(default_factory=dict)
    # masked text -> the id a cluster first made of it gets (template.cluster_id): hashed here,
    # on the worker's core, not in the parent (the same string: it pickles as a reference)
    ids: dict[str, str] = field(default_factory=dict)
    # source metrics the worker's sources moved: (attribute, labels, counter delta or gauge)
    metrics: list[tuple[str, tuple[str, ...], float]] = field(default_factory=list)


def pack_event(event: LogEvent) -> Packed:
    """A LogEvent as a flat tuple (see unpack_event)."""
    return (
        event.message,
        event.source,
        event.stream,
        event.level,
        event.timestamp,
        event.logger,
        event.format,
        event.fields,
        event.text,
        event.exception_type,
        event.exception_message,
        [(f.file, f.line, f.function, f.in_app) for f in event.frames],
        event.first_line,
        event.last_line,
        event.line_count,
        event.cursor,
        event.truncated,
    )


def unpack_event(packed: Packed) -> LogEvent:
    """The LogEvent pack_event flattened, field for field (frames are the 12th).

    Unpacked by name, not by slices around the frames: two tuples fewer per event, and a
    one-line error (a flood's every event) has no frames to build (~40 % of this call)."""
    (message, source, stream, level, timestamp, logger, fmt, fields, text, exc_type, exc_message,
     packed_frames, first_line, last_line, line_count, cursor, truncated) = packed  # fmt: skip
    return LogEvent(
        message,
        source,
        stream,
        level,
        timestamp,
        logger,
        fmt,
        fields,
        text,
        exc_type,
        exc_message,
        [Frame(*f) for f in packed_frames] if packed_frames else [],
        first_line,
        last_line,
        line_count,
        cursor,
        truncated,
    )


def pack_class(cls: Classification) -> Packed:
    return (cls.category, cls.severity, cls.fixable, cls.suggested_fix, cls.ignored, cls.rule)


# packed -> the Classification made of it: a worker's events share a few dozen classifications,
# and making one (a frozen dataclass: object.__setattr__ per field) cost ~3 us, a tenth of the
# parent's work per event of a flood. Frozen, so sharing one object between events is safe.
_CLASSES: dict[Packed, Classification] = {}
CLASS_MEMO = 4096  # distinct classifications held (rules' suggested fixes vary a little)


def unpack_class(packed: Packed) -> Classification:
    cls = _CLASSES.get(packed)
    if cls is None:
        if len(_CLASSES) >= CLASS_MEMO:
            _CLASSES.clear()
        cls = _CLASSES[packed] = Classification(*packed)
    return cls
