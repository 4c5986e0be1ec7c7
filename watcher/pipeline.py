"""The synchronous core: a batch of raw lines in, group updates out.

parse (per-source assembler) -> classify -> group, with the accounting that makes every line
visible. No asyncio here: the daemon and the scanner drive the same object, and tests drive it
with plain lists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from watcher.classify import Rule, classify
from watcher.group.table import GroupTable, Key
from watcher.metrics import Metrics
from watcher.model import Classification, GroupUpdate, LineBatch, LogEvent, RawLine, Stats
from watcher.parse import is_fallback
from watcher.parse.formats import SURROGATE
from watcher.parse.multiline import Assembler


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """The multi-line assembler's caps (from `[parse]`)."""

    max_event_lines: int = 500
    max_event_bytes: int = 256 * 1024
    multiline_timeout: float = 2.0


class _Cursors:
    """One source's cursors: which are safe to commit, which wait for a pending record.

    A cursor is safe once no open record started at or before its line: a restart resumes after
    it, so a record still being assembled (in any stream of the source) must not be skipped. One
    stream's cursor only moves up to the line before its own open record, and a busy stream still
    commits although it always has a record open; another stream's open record holds back the
    cursors of lines read after it started.
    """

    __slots__ = ("held", "hold", "safe", "waiting")

    def __init__(self) -> None:
        self.safe: dict[str, Any] = {}  # per stream: reached since the last take
        self.waiting: dict[str, Any] = {}  # per stream: read, but after a pending record's head
        # per stream: the first waiting line number; events ending at or after it wait too, so
        # the counts a commit stores never include events whose cursors it does not carry
        # (a crash would otherwise count them again after the restart)
        self.hold: dict[str, int] = {}
        self.held: list[LogEvent] = []

    def fed(self, batch: list[RawLine], heads: list[RawLine], *, one_stream: bool = False) -> None:
        """Account for a batch the assembler took; `heads` are its open records' first lines.
        `one_stream`: every line has the first line's stream (only last lines are looked at)."""
        if not heads:
            self.drained()
            self.safe.update(_last_cursors(batch, one_stream))
            return
        cut = _first_of(batch, heads)
        if cut is None:  # a record open since an earlier batch holds everything back
            self.waiting.update(_last_cursors(batch, one_stream))
            _first_numbers(batch, self.hold, one_stream)
            return
        self.drained()  # every open record starts in this batch, after what came before
        self.safe.update(_last_cursors(batch[:cut], one_stream))
        self.waiting.update(_last_cursors(batch[cut:], one_stream))
        _first_numbers(batch[cut:], self.hold, one_stream)

    def drained(self) -> None:
        """No record is open any more: every line read so far is safe."""
        if self.waiting:
            self.safe.update(self.waiting)
            self.waiting.clear()
        self.hold.clear()

    def split(self, events: list[LogEvent]) -> list[LogEvent]:
        """The events whose lines are all safe (held ones released first); hold the rest."""
        if not self.hold and not self.held:
            return events
        pending, self.held = [*self.held, *events], []
        ready = []
        for event in pending:
            first = self.hold.get(event.stream)
            if first is not None and event.last_line >= first > 0:
                self.held.append(event)
            else:
                ready.append(event)
        return ready


def solid_cursor(cursor: Any) -> Any:
    """A line's cursor as it is stored. A tuple is a lazy one, (base, offset, line): the file
    source shares one base among a batch's lines and only the cursors read become dicts."""
    if type(cursor) is tuple:
        base, offset, line = cursor
        return base.at(offset, line)
    return cursor


def _first_numbers(lines: list[RawLine], hold: dict[str, int], one_stream: bool) -> None:
    """Each stream's first positive line number in `lines`, unless `hold` has one already."""
    if one_stream and lines:  # one stream (a file's batch): stop at its first numbered line
        if lines[0].stream not in hold:
            for line in lines:
                if line.line_no > 0:
                    hold[line.stream] = line.line_no
                    return
        return
    for line in lines:
        if line.stream not in hold and line.line_no > 0:
            hold[line.stream] = line.line_no


def _last_cursors(lines: list[RawLine], one_stream: bool) -> dict[str, Any]:
    """The last cursor of each stream in `lines` (only the last one matters to a restart),
    stored under the cursor's own "key" when it names one (the file source keys its cursors
    by file identity, so a file keeps its cursor whatever stream it was last read under)."""
    if one_stream:  # one stream (a file's batch): its last line is all there is to read
        last = {lines[-1].stream: lines[-1].cursor} if lines else {}
    else:
        last = {line.stream: line.cursor for line in lines}
    cursors = {stream: solid_cursor(cursor) for stream, cursor in last.items()}
    if None in cursors.values():  # a source without cursors (stdin, a command)
        return {stream: cursor for stream, cursor in cursors.items() if cursor is not None}
    return {_checkpoint_key(stream, cursor): cursor for stream, cursor in cursors.items()}


def _checkpoint_key(stream: str, cursor: Any) -> str:
    key = cursor.get("key") if type(cursor) is dict else None
    return key if isinstance(key, str) else stream


def _first_of(batch: list[RawLine], heads: list[RawLine]) -> int | None:
    """The index in `batch` of the earliest of `heads`, or None when one is not in it."""
    wanted = {id(head) for head in heads}
    first = None
    # open records start near the end of a batch: search backwards and stop once all are found
    for index in range(len(batch) - 1, -1, -1):
        if id(batch[index]) in wanted:
            first = index
            wanted.discard(id(batch[index]))
            if not wanted:
                return first
    return None


@dataclass(slots=True)
class Keyed:
    """Error events parsed, classified and keyed (the template miner has learnt them), not yet
    counted: `Pipeline.apply` counts them, and goes on where it stopped when a group had to be
    read from the store first (the engine reads them off the event loop)."""

    # (event, its classification, its group key or None when a rule ignores it, its read time)
    items: list[tuple[LogEvent, Classification, Key | None, float | None]] = field(
        default_factory=list
    )
    done: int = 0  # items counted so far
    updates: list[GroupUpdate] = field(default_factory=list)

    def pending(self) -> list[tuple[LogEvent, Key]]:
        """The keyed events not yet counted (for GroupTable.unknown)."""
        return [(event, key) for event, _, key, _ in self.items[self.done :] if key is not None]


def _look_over(batch: list[RawLine]) -> tuple[int, bool]:
    """One pass over a batch's lines: how many are truncated, and whether their streams are
    one (the first line's); lone surrogates are replaced on the way."""
    stream = batch[0].stream
    truncated = 0
    mixed = False
    for line in batch:
        if line.truncated:
            truncated += 1
        # JSON-decoding sources (Loki, Railway, CloudWatch) can pass "\ud800"
        if not line.text.isascii() and SURROGATE.search(line.text):
            line.text = SURROGATE.sub("\ufffd", line.text)
        # a Python loop: on 3.11 it costs less than the same look through map(attrgetter)
        if line.stream != stream:
            mixed = True
    return truncated, not mixed


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
        app_paths: Sequence[str] = (),
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.table = table
        # follow mode: an event without a timestamp happened when it was read (else the newest
        # timestamp seen, 0 at the start, and the 1m/5m/1h windows would never count it)
        self.clock = clock
        self.app_paths = tuple(app_paths)
        self.rules = tuple(rules)
        self.metrics = metrics or Metrics()
        self.limits = limits
        self.period = period
        self.on_event = on_event
        self.stats = Stats(period_start=period[0], period_end=period[1])
        self.assemblers: dict[str, Assembler] = {}
        self._cursors: dict[str, _Cursors] = {}

    def _assembler(self, source: str) -> Assembler:
        asm = self.assemblers.get(source)
        if asm is None:
            lim = self.limits
            # errors_only: only error events are classified and grouped; the rest are counted
            asm = Assembler(
                max_lines=lim.max_event_lines,
                max_bytes=lim.max_event_bytes,
                timeout=lim.multiline_timeout,
                errors_only=True,
            )
            self.assemblers[source] = asm
            self._cursors[source] = _Cursors()
        return asm

    def feed(self, batch: list[RawLine]) -> list[GroupUpdate]:
        """Process one batch (all lines from one source)."""
        return self.apply(self.take(batch))

    def take(self, batch: list[RawLine]) -> Keyed:
        """Parse, classify and key one batch (all lines from one source); `apply` counts it."""
        if not batch:
            return Keyed()
        if type(batch) is LineBatch:  # the file source's: one stream, decoded, counted
            truncated, one_stream = batch.truncated, True
        else:
            truncated, one_stream = _look_over(batch)
        source = batch[0].source
        n = len(batch)
        stats = self.stats
        stats.lines += n
        stats.lines_by_source[source] = stats.lines_by_source.get(source, 0) + n
        self.metrics.lines.labels(source).inc(n)
        if truncated:  # the source counted them in watcher_truncated_lines_total already
            stats.truncated_lines += truncated
        asm = self._assembler(source)
        events = asm.feed_batch(batch)
        book = self._cursors[source]
        book.fed(batch, asm.pending_heads(), one_stream=one_stream)
        keyed = Keyed()
        self._handle(source, book.split(events), asm.take_skipped(), keyed)
        return keyed

    def flush(self, *, force: bool = False, source: str | None = None) -> list[GroupUpdate]:
        """Close multi-line events whose stream went quiet (all of them when `force`); only
        `source`'s when given (a worker process closes a source that ended on its own)."""
        return self.apply(self.take_flushed(force=force, source=source))

    def take_flushed(self, *, force: bool = False, source: str | None = None) -> Keyed:
        """`flush`'s events, parsed, classified and keyed; `apply` counts them."""
        keyed = Keyed()
        for name, asm in list(self.assemblers.items()):
            if source is not None and name != source:
                continue
            events = asm.flush(force=force)
            book = self._cursors[name]
            if not asm.pending:
                book.drained()
            self._handle(name, book.split(events), asm.take_skipped(), keyed)
        return keyed

    def apply(self, keyed: Keyed) -> list[GroupUpdate]:
        """Count keyed events in their groups, in order; their updates. When the table's recall
        hook raises Unrecalled, the events counted so far stay counted and the same call goes
        on from the one that raised."""
        items, table, on_event = keyed.items, self.table, self.on_event
        updates = keyed.updates
        # watcher_errors by (category, severity), added once per batch: a counter's labels() and
        # inc() (a lock) per event were ~3 % of the parent's work under a flood
        counted: dict[tuple[str, str], int] = {}
        try:
            while keyed.done < len(items):
                event, cls, key, at = items[keyed.done]
                if key is None:  # ignored by a rule: only the hook sees it
                    if on_event is not None:
                        on_event(event, None)
                else:
                    update = table.apply(event, cls, key, at=at)
                    updates.append(update)
                    label = (cls.category, update.group.severity)
                    counted[label] = counted.get(label, 0) + 1
                    if on_event is not None:
                        on_event(event, update)
                keyed.done += 1
        finally:  # (Unrecalled: what was counted so far stays counted, the metric too)
            errors = self.metrics.errors
            for (category, severity), n in counted.items():
                errors.labels(category, severity).inc(n)
        return updates

    def _handle(self, source: str, events: list[LogEvent], skipped: int, keyed: Keyed) -> None:
        n = len(events) + skipped
        if not n:
            return
        stats = self.stats
        stats.events += n
        self.metrics.events.labels(source).inc(n)
        fallbacks = 0
        for event in events:
            if is_fallback(event):
                fallbacks += 1
            if not event.is_error:
                continue
            self._error(event, keyed)
        stats.parse_fallbacks += fallbacks

    def _error(self, event: LogEvent, keyed: Keyed) -> None:
        cls = self.judge(event)
        if cls is None:
            return
        if cls.ignored:  # only the on_event hook sees it, in order
            keyed.items.append((event, cls, None, None))
            return
        self.key(event, cls, keyed)

    def judge(self, event: LogEvent) -> Classification | None:
        """Count an error event and classify it (an ignored one's classification says so); None
        when it is out of the period. The half of the work a worker process does."""
        stats = self.stats
        if not self._in_period(event.timestamp):
            stats.out_of_window_events += 1
            return None
        stats.error_events += 1
        if self.app_paths:
            mark_in_app(event, self.app_paths)
        cls = classify(event, self.rules)
        if cls.ignored:
            stats.ignored_events += 1
        return cls

    def key(self, event: LogEvent, cls: Classification, keyed: Keyed) -> None:
        """Key a classified error event for `apply` (the template miner learns it here): the
        half the owner of the group table does."""
        at = self.clock() if self.clock else None
        keyed.items.append((event, cls, self.table.key(event), at))

    def _in_period(self, ts: float | None) -> bool:
        if ts is None:
            return True  # an event with no timestamp is kept (DESIGN: scan --since)
        start, end = self.period
        return (start is None or ts >= start) and (end is None or ts <= end)

    def forget(self, source: str) -> None:
        """Drop a source's open records and uncommitted cursors (a shared source another
        watcher took over reads those lines again from the checkpoint)."""
        self.assemblers.pop(source, None)
        self._cursors.pop(source, None)

    def note_cursors(self, source: str, cursors: dict[str, Any]) -> None:
        """Safe cursors another process reached for `source` (a worker's): committed by the
        next take_cursors like this pipeline's own."""
        book = self._cursors.get(source)
        if book is None:
            book = self._cursors[source] = _Cursors()
        book.safe.update(cursors)

    def take_cursors(self) -> dict[str, dict[str, Any]]:
        """The safe cursors reached since the last call, per source; the caller commits them.

        Only lines before every open record of their source count (see _Cursors), so a restart
        from these cursors never skips a record that was still being assembled.
        """
        out: dict[str, dict[str, Any]] = {}
        for source, book in self._cursors.items():
            if book.safe:
                out[source], book.safe = book.safe, {}
        return out


def mark_in_app(event: LogEvent, app_paths: tuple[str, ...]) -> None:
    """`[parse] app_paths` given: a frame is in-app exactly when its file is under one of them.

    The built-in guess (site-packages, node_modules, java.* … are libraries) is right for most
    deployments; a user who vendors code or runs from an unusual root says so here.
    """
    for frame in event.frames:
        frame.in_app = frame.file.startswith(app_paths)
