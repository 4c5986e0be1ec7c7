"""Multi-line assembly: physical lines of one stream -> logical records (a line plus its trace).

At most one record is held open per stream. A line can only be known complete when the next
line of its stream arrives (or the timeout passes), so every plain or logfmt line waits for its
successor: latency is one line, or `timeout` seconds on a stream that goes quiet — the pipeline
must call flush() periodically (every ~timeout/2). JSON object lines never take continuation
lines (structured loggers put the trace inside the record), so they come out at once.

Continuation rules, by the state of the open record:

- any record takes blank lines, and indented lines (frames, "... 3 more", SQL, pretty dumps)
- a plain log line takes a following "Traceback (most recent call last):", "Caused by:",
  "goroutine N [...]:", or, on probation, an exception header ("com.x.FooException: msg",
  "TypeError: msg"): the header stays only if a frame follows it, else it becomes its own record
- a Python traceback takes its final "ValueError: msg" line and the lines of a message that runs
  on (lines opening in lower case or "(" that do not start like a record: a logfmt key= or a
  level word), then "During handling of the above exception…" / "The above exception was the
  direct cause…" and the next "Traceback"
- a JVM "Caused by: X: msg" takes the unindented lines of a message that runs on until its frames
  (any line that does not start like a record: a digit, "[", "<", "{", a logfmt key=, a Ruby
  "X, [" or a level word)
- a Ruby Logger error record ("E, [time #pid] ERROR -- prog: msg") takes every following line up to
  the next line that starts like a record (its message and backtrace are printed unindented)
- a Go panic takes "goroutine N [...]:" blocks, "[signal …]" and "pkg.fn(...)" frame lines
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from watcher.model import LogEvent, RawLine
from watcher.parse.formats import can_be_error, parse_line
from watcher.parse.traces import parse_trace

# line kinds
(
    _OTHER,
    _BLANK,
    _INDENT,
    _JSON,
    _TB,
    _CHAIN,
    _CAUSED,
    _GOROUTINE,
    _GOHEAD,
    _EXC,
    _JVM_HEAD,
    _RUBY_HEAD,
) = range(12)
# record states
_OPEN, _TENTATIVE, _BODY, _PY, _PY_DONE, _PY_CHAIN, _GO, _JMSG, _RUBY = range(9)

_PREFIX_KINDS = (
    ("Traceback (most recent call last)", _TB),
    ("During handling of the above exception", _CHAIN),
    ("The above exception was the direct cause", _CHAIN),
    ("Caused by: ", _CAUSED),
    ("goroutine ", _GOROUTINE),
    ("panic: ", _GOHEAD),
    ("fatal error: ", _GOHEAD),
    ("Exception in thread ", _JVM_HEAD),
)
_PREFIXES = tuple(prefix for prefix, _ in _PREFIX_KINDS)
_STATE_OF_HEAD = {
    _TB: _PY,
    _CHAIN: _PY_CHAIN,
    _CAUSED: _JMSG,
    _GOROUTINE: _GO,
    _GOHEAD: _GO,
    _RUBY_HEAD: _RUBY,
}

# "com.foo.BarException: msg" (a qualified class) or "TypeError: msg" / "Error" (JS)
_EXC_HEADER = re.compile(
    r"(?:(?:[A-Za-z_$][\w$]*\.)+[A-Z][\w$]*|(?:Uncaught )?[A-Z][\w$]*(?:Error|Exception)"
    r"(?: \[[\w-]+\])?|Error)(?::\s|:?\s*$)"
)
_PY_EXCEPTION = re.compile(r"[A-Za-z_][\w.]*(?::|\s*$)")
# Ruby's first trace line: "app/models/user.rb:12:in `name': undefined method … (NoMethodError)"
_RUBY_HEADER = re.compile(r"\S+:\d+:in [`'].*\(([A-Z]\w*(?:::[A-Z]\w*)*)\)$")
# a line that starts a new record rather than continuing a Java exception message
_LEVEL_START = r"(?:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|FATAL|CRITICAL)\b"
_RECORD_HEAD = re.compile(r"[\d\[<{]|[\w.-]+=|[A-Z], \[|" + _LEVEL_START, re.IGNORECASE)
# the same for a Ruby record, whose message lines may start with "[" ("[HTTP 503] …")
_RUBY_STOP = re.compile(r"[\d{]|[\w.-]+=|[A-Z], \[|" + _LEVEL_START, re.IGNORECASE)
_FRAME_LINE = re.compile(r"\s+(?:at |\.\.\. \d+ more|from )")
_GO_FUNC = re.compile(r"[^\s(]+\(.*\)$|created by |\[signal |exit status ")
# an indented line that is itself a timestamped log line does not continue anything
_INDENTED_LOG = re.compile(r"\s+\d{4}-\d\d-\d\d[T ]\d\d:")


def _kind(text: str) -> int:
    """What a line could be to the record before it; ordinary log lines cost one or two checks."""
    first = text[:1]
    if first == "{":
        return _JSON
    if first == " " or first == "\t":
        if text.isspace():
            return _BLANK
        return _OTHER if text[1:2].isspace() and _INDENTED_LOG.match(text) else _INDENT
    if not first:
        return _BLANK
    if first.isdigit() or first == "[":
        return _OTHER
    if text[1:4] == ", [" and first in "EFA":
        return _RUBY_HEAD  # Ruby Logger "E, [time #pid] ERROR -- prog: msg"
    if text.startswith(_PREFIXES):
        for prefix, kind in _PREFIX_KINDS:
            if text.startswith(prefix):
                if kind == _GOROUTINE and " [" not in text:
                    return _OTHER
                return kind
    if _EXC_HEADER.match(text) or ((first == "/" or first.isalpha()) and _RUBY_HEADER.match(text)):
        return _EXC
    return _OTHER


class _Record:
    """The open record of one stream."""

    __slots__ = ("count", "head", "head_kind", "lines", "size", "state", "touched")

    def __init__(self, line: RawLine, kind: int, now: float) -> None:
        self.reset(line, kind, now)

    def reset(self, line: RawLine, kind: int, now: float) -> None:
        """Start over as the record of `line` (reusing the object is cheaper than a new one)."""
        self.head = line
        self.head_kind = kind
        self.lines: list[RawLine] | None = None  # every line once there is more than one
        self.count = 1
        self.size = len(line.text)
        self.state = _STATE_OF_HEAD.get(kind, _OPEN)
        self.touched = now

    def add(self, line: RawLine, state: int, now: float) -> None:
        if self.lines is None:
            self.lines = [self.head]
        self.lines.append(line)
        self.count += 1
        self.size += len(line.text)
        self.state = state
        self.touched = now


def _accepts(state: int, kind: int, text: str) -> int | None:
    """The record's next state if a line of `kind` continues it, else None."""
    if kind == _BLANK:
        # a header on probation must stay the record's last line, so a blank line decides it
        return None if state == _TENTATIVE else state
    if state == _RUBY:
        # Ruby's logger.error(e.full_message) prints the message and the backtrace unindented:
        # everything up to the next logger record, JSON line or timestamped/addressed line
        return None if kind in (_JSON, _RUBY_HEAD) or _RUBY_STOP.match(text) else _RUBY
    if state == _JMSG:
        # inside a "Caused by:" message, which may run over several lines (PostgreSQL's
        # "Detail:" / "Hint:" blocks) until the frames start
        if kind == _INDENT:
            return _BODY if _FRAME_LINE.match(text) else _JMSG
        if kind == _CAUSED or (kind in (_OTHER, _EXC) and not _RECORD_HEAD.match(text)):
            return _JMSG
        return None
    if kind == _INDENT:
        return _BODY if state in (_OPEN, _TENTATIVE) else state
    if state == _OPEN:
        if kind == _TB:
            return _PY
        if kind == _CAUSED:
            return _JMSG
        if kind == _GOROUTINE:
            return _GO
        return _TENTATIVE if kind == _EXC else None
    if state in (_BODY, _TENTATIVE):
        return _JMSG if kind == _CAUSED else None
    if state == _PY:
        if kind in (_OTHER, _EXC) and _PY_EXCEPTION.match(text):
            return _PY_DONE
        return None
    if state == _PY_DONE:
        if kind == _CHAIN:
            return _PY_CHAIN
        # an exception message may run over several lines (pydantic's error list,
        # SQLAlchemy's "(Background on this error at: …)"): prose that is not a new record
        # — only lines opening in lower case or "(": a capitalised line is far more often the next
        # record of a log without timestamps ("END RequestId: …" on Lambda)
        first = text[:1]
        if (first == "(" or first.islower()) and not _RECORD_HEAD.match(text):
            return _PY_DONE
        return None
    if state == _PY_CHAIN:
        return _PY if kind == _TB else None
    is_go_line = kind == _GOROUTINE or (kind in (_OTHER, _EXC) and _GO_FUNC.match(text))
    return _GO if state == _GO and is_go_line else None


def _build(lines: list[RawLine], head_kind: int, truncated: bool) -> LogEvent:
    """The LogEvent of a multi-line record: the head's structure plus the trace of all lines."""
    head, last = lines[0], lines[-1]
    event = parse_line(head)
    texts = [line.text for line in lines]
    event.text = "\n".join(texts)
    event.last_line = last.line_no
    event.line_count = len(lines)
    event.cursor = last.cursor
    event.truncated = truncated or any(line.truncated for line in lines)
    trace = parse_trace(texts)
    if trace is not None:
        _apply_trace(event, trace.exception_type, trace.exception_message, trace.frames)
        if head_kind == _TB and trace.exception_type:  # "Traceback (…):" says nothing useful
            message = trace.exception_message
            event.message = (
                f"{trace.exception_type}: {message}" if message else trace.exception_type
            )
    return event


def _apply_trace(event: LogEvent, exc_type: str | None, exc_msg: str | None, frames: list) -> None:
    # a trace found in a JSON head's fields is kept unless the lines say more
    if exc_type is not None or not event.exception_type:
        event.exception_type, event.exception_message = exc_type, exc_msg
    if frames:
        event.frames = frames
    if event.level is None:
        event.level = "error"


def _single(line: RawLine, kind: int) -> LogEvent:
    """A one-line record; only a line that reads as a trace head pays for parse_trace."""
    event = parse_line(line)
    if kind >= _TB and event.exception_type is None:
        trace = parse_trace([line.text])
        if trace is not None:
            _apply_trace(event, trace.exception_type, trace.exception_message, trace.frames)
    return event


class Assembler:
    """Joins each stream's continuation lines onto the line that started the record."""

    def __init__(
        self,
        *,
        max_lines: int = 500,
        max_bytes: int = 256 * 1024,
        timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        errors_only: bool = False,
    ) -> None:
        self._max_lines = max(1, max_lines)
        # errors_only: a one-line record that can_be_error() rules out is only counted, never
        # parsed nor returned; most lines are such records, and only errors are grouped
        self._errors_only = errors_only
        self._skipped = 0
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._clock = clock
        self._open: dict[str, _Record] = {}
        self._next_sweep = clock() + timeout

    @property
    def pending(self) -> int:
        """Records held open, waiting for their next line or the timeout."""
        return len(self._open)

    def pending_heads(self) -> list[RawLine]:
        """The first line of every open record: nothing from it on has been returned yet."""
        return [record.head for record in self._open.values()]

    def take_skipped(self) -> int:
        """Records passed over (errors_only) since the last call: events nobody asked for."""
        skipped, self._skipped = self._skipped, 0
        return skipped

    def feed(self, line: RawLine) -> list[LogEvent]:
        """The events completed by this line, in order."""
        return self.feed_batch([line])

    def feed_batch(self, lines: list[RawLine]) -> list[LogEvent]:
        """The events completed by these lines, in order; records idle past the timeout too."""
        now = self._clock()
        out: list[LogEvent] = []
        if now >= self._next_sweep:
            # a stream that went quiet must not wait for the caller's next flush()
            self._next_sweep = now + self._timeout / 2
            out.extend(self.flush())
        open_records = self._open
        max_bytes = self._max_bytes
        errors_only = self._errors_only
        skipped = 0
        spare: _Record | None = None  # a closed record object, reused by the next _OTHER line
        for line in lines:
            text = line.text
            first = text[:1]
            if first.isdigit() or first == "[":
                kind = _OTHER  # inlined _kind() for the usual timestamped line
            elif first == "{":
                # a JSON object line never continues a record and is complete as it stands:
                # close the open record, emit both (inlined _continue + _start for this case)
                record = open_records.get(line.stream)
                if record is not None:
                    if record.state != _OPEN or record.lines is not None:
                        self._continue(record, line, _JSON, now, out)
                        continue
                    del open_records[line.stream]
                    self._single(record.head, record.head_kind, out)
                    spare = record
                self._single(line, _JSON, out)
                continue
            else:
                kind = _kind(text)
            record = open_records.get(line.stream)
            if record is None:
                if kind == _OTHER and spare is not None and len(text) < max_bytes:
                    spare.reset(line, kind, now)
                    open_records[line.stream], spare = spare, None
                else:
                    self._start(line, kind, now, out)
            elif (
                kind == _OTHER
                and record.state == _OPEN
                and record.lines is None
                and len(text) < max_bytes
            ):
                # the common case, line after ordinary line: emit the held one, hold this one in
                # the same record object
                head = record.head
                if errors_only and record.head_kind < _TB and not can_be_error(head):
                    skipped += 1
                else:
                    out.append(_single(head, record.head_kind))
                record.head, record.head_kind, record.size, record.touched = (
                    line,
                    kind,
                    len(text),
                    now,
                )
            else:
                self._continue(record, line, kind, now, out)
        self._skipped += skipped
        return out

    def flush(self, *, force: bool = False) -> list[LogEvent]:
        """Close the records idle for longer than the timeout (all of them when force)."""
        if not self._open:
            return []
        now = self._clock()
        out: list[LogEvent] = []
        for stream, record in list(self._open.items()):
            if force or now - record.touched >= self._timeout:
                del self._open[stream]
                if record.state == _TENTATIVE:
                    self._split(record, out)
                else:
                    self._emit(record, out, truncated=False)
        return out

    # --- internals -----------------------------------------------------------------------------

    def _start(self, line: RawLine, kind: int, now: float, out: list[LogEvent]) -> None:
        if kind == _JSON or len(line.text) >= self._max_bytes:
            self._single(line, kind, out)  # complete as it stands
            return
        self._open[line.stream] = _Record(line, kind, now)

    def _continue(
        self, record: _Record, line: RawLine, kind: int, now: float, out: list[LogEvent]
    ) -> None:
        state = _accepts(record.state, kind, line.text)
        if state is None:
            if record.state == _TENTATIVE:
                # the header had no frame after it: it was a line of its own after all
                self._emit_part(record, out)
                header = record.lines[-1] if record.lines else record.head
                record = _Record(header, _EXC, record.touched)
                self._open[line.stream] = record
                self._continue(record, line, kind, now, out)
                return
            del self._open[record.head.stream]
            self._emit(record, out, truncated=False)
            self._start(line, kind, now, out)
            return
        if record.count >= self._max_lines or record.size + len(line.text) > self._max_bytes:
            del self._open[line.stream]
            self._emit(record, out, truncated=True)
            self._start(line, kind, now, out)
            return
        record.add(line, state, now)

    def _single(
        self, line: RawLine, kind: int, out: list[LogEvent], truncated: bool = False
    ) -> None:
        """Append the event of a one-line record, unless errors_only rules it out cheaply."""
        if self._errors_only and kind < _TB and not can_be_error(line):
            self._skipped += 1
            return
        event = _single(line, kind)
        if truncated:
            event.truncated = True
        out.append(event)

    def _emit(self, record: _Record, out: list[LogEvent], *, truncated: bool) -> None:
        if record.lines is None:
            self._single(record.head, record.head_kind, out, truncated)
        else:
            out.append(_build(record.lines, record.head_kind, truncated))

    def _emit_part(self, record: _Record, out: list[LogEvent]) -> None:
        """The record without its probationary last line."""
        lines = record.lines or [record.head]
        if len(lines) == 2:
            self._single(lines[0], record.head_kind, out)
        else:
            out.append(_build(lines[:-1], record.head_kind, False))

    def _split(self, record: _Record, out: list[LogEvent]) -> None:
        header = record.lines[-1] if record.lines else record.head
        self._emit_part(record, out)
        self._single(header, _EXC, out)
