"""An open record of one writer, the rules for what continues it, and the event it becomes."""

from __future__ import annotations

import re
from operator import attrgetter

from watcher.model import ERROR_RANK, LEVEL_RANK, LogEvent, RawLine
from watcher.parse.formats import can_be_error, parse_line
from watcher.parse.linekinds import (
    ACCESS_LOG,
    AT0,
    ATTACHED,
    BLANK,
    BODY,
    CAUSED,
    CHAIN,
    EXC,
    FAILURE_WORDS,
    FRAME,
    FRAME_LINE,
    GO,
    GO_FUNC,
    GOHEAD,
    GOROUTINE,
    INDENT,
    JMSG,
    JSON,
    JSON_ERR,
    JVM_HEAD,
    K8S,
    NODE_PRE,
    NODE_PRE_S,
    OPEN,
    OTHER,
    PG,
    PHP_CONT,
    PROSE,
    PY,
    PY_CHAIN,
    PY_DONE,
    PY_EXCEPTION,
    RECORD_HEAD,
    RUBY,
    RUBY_ERR,
    RUBY_HEAD,
    RUBY_KEY,
    RUBY_STOP,
    RUNON,
    STATE_OF_HEAD,
    TB,
    TENTATIVE,
    TRACE_STARTS,
    WARNING_RANK,
)
from watcher.parse.traces import parse_trace

# seconds between a warning record and a trace stamped by their source that still make one
# logging call (a call writes all its lines at once; a shipper's clock may split a millisecond)
_SAME_CALL = 1.0


class Record:
    """The open record of one writer."""

    __slots__ = (
        "count",
        "depth",
        "event",
        "head",
        "head_kind",
        "key",
        "lines",
        "size",
        "state",
        "touched",
    )

    def __init__(self, line: RawLine, kind: int, now: float, key: str) -> None:
        self.reset(line, kind, now, key)

    def reset(self, line: RawLine, kind: int, now: float, key: str) -> None:
        """Start over as the record of `line` (reusing the object is cheaper than a new one)."""
        self.head = line
        self.head_kind = kind
        self.key = key
        self.lines: list[RawLine] | None = None  # every line once there is more than one
        self.count = 1
        self.size = len(line.text)
        self.state = STATE_OF_HEAD.get(kind, OPEN)
        self.touched = now
        self.event: LogEvent | None = None  # the head, parsed once it had to be looked at
        self.depth = 0  # open braces of a Node error's property print

    def add(self, line: RawLine, state: int, now: float) -> None:
        if self.lines is None:
            self.lines = [self.head]
        self.lines.append(line)
        self.count += 1
        self.size += len(line.text)
        self.state = state
        self.touched = now

    def head_event(self) -> LogEvent:
        """The head line parsed (once)."""
        if self.event is None:
            self.event = parse_line(self.head)
        return self.event

    def announces_error(self, attached: bool = False, stamp: float | None = None) -> bool:
        """Whether a trace that follows belongs to this record: it reported an error (or, for a
        trace a logger attaches to its record, a warning). `stamp` is the trace line's own
        timestamp when its source gave one."""
        if self.head_kind >= TB or self.state == JSON_ERR:
            return True
        event = self.head_event()
        if event.level is not None:
            rank = LEVEL_RANK.get(event.level, 0)
            if attached and WARNING_RANK <= rank < ERROR_RANK:
                # logger.warning("…", exc_info=True) and Java's log.warn(msg, e) attach the trace
                # to a warning record: one logging call, one event (an error by its trace). One
                # call writes its lines at once: where the source stamps every line, a trace
                # stamped later is a report of its own
                head = self.head.timestamp
                return stamp is None or head is None or abs(stamp - head) <= _SAME_CALL
            return rank >= ERROR_RANK
        text = self.head.text
        if ACCESS_LOG.search(text):
            return False
        if text.rstrip().endswith(":"):
            return True
        # words of failure only where can_be_error lets the head through: the assembler's
        # errors-only fast path must decide like the full path does
        return can_be_error(self.head) and FAILURE_WORDS.search(text) is not None


def accepts(record: Record, kind: int, text: str, stamp: float | None = None) -> int | None:
    """The record's next state if a line of `kind` continues it, else None (`stamp`: the
    line's timestamp from its source, if any)."""
    state = record.state
    if kind == BLANK:
        # a header on probation must stay the record's last line, so a blank line decides it
        return None if state in (TENTATIVE, JSON_ERR) else state
    if kind == K8S:
        return None
    if state == RUBY:
        return _ruby_accepts(record, kind, text)
    if state == JMSG:
        # inside a "Caused by:" message, which may run over several lines (PostgreSQL's
        # "Detail:" / "Hint:" blocks) until the frames start
        if kind in (INDENT, FRAME):
            return BODY if FRAME_LINE.match(text) else JMSG
        if kind in (CAUSED, PROSE, AT0) or (kind in (OTHER, EXC) and not RECORD_HEAD.match(text)):
            return BODY if kind == AT0 else JMSG
        return None
    if state == NODE_PRE_S:
        # "file.js:12", the source line, the caret, a blank line, then the error itself
        if kind in (INDENT, OTHER, PROSE) and record.count < 6:
            return NODE_PRE_S
        if kind == EXC:
            return TENTATIVE
        return None
    if kind in (INDENT, FRAME):
        if state in (OPEN, RUNON, JSON_ERR):
            if kind == FRAME:
                if state == OPEN and not record.announces_error(True, stamp):
                    return None  # a header-less traceback after an unrelated record
                return PY
            if state == OPEN and record.lines is None and record.head.text.endswith("call last):"):
                return PY  # "ERROR:root:Traceback (most recent call last):" on one line
            return BODY
        if state == TENTATIVE:
            return BODY
        return PY if state == PY_CHAIN and kind == FRAME else state
    if state in (OPEN, RUNON, JSON_ERR):
        return _open_accepts(record, kind, text, stamp)
    if state in (BODY, TENTATIVE):
        if kind == CAUSED:
            return JMSG
        if kind in (AT0, PG):
            return BODY
        if record.depth > 0 and text[:1] in "}]":
            return BODY  # the closing brace of a Node error's properties
        if kind in (PROSE, OTHER) and text.startswith(("Node.js v", "Emitted 'error' event")):
            return BODY  # the last lines of Node's crash report
        if kind in (PROSE, OTHER) and PHP_CONT.match(text):
            return BODY  # PHP's "Stack trace:" and "#0 file(12): fn()" frames
        return None
    if state == PY:
        if kind in (OTHER, EXC, PROSE) and PY_EXCEPTION.match(text):
            return PY_DONE
        return None
    if state == PY_DONE:
        if kind == CHAIN:
            return PY_CHAIN
        # an exception message may run over several lines (pydantic's error list,
        # SQLAlchemy's "(Background on this error at: …)"): prose that is not a new record
        # — only lines opening in lower case or "(": a capitalised line is far more often the next
        # record of a log without timestamps ("END RequestId: …" on Lambda)
        first = text[:1]
        if kind not in (PROSE, OTHER):
            return None  # a trace start, or a line a source delimited, is not a message run-on
        if (first == "(" or (first.islower() and kind == PROSE)) and not RECORD_HEAD.match(text):
            return PY_DONE
        return None
    if state == PY_CHAIN:
        return PY if kind == TB else None
    is_go_line = kind == GOROUTINE or (
        kind in (OTHER, EXC, PROSE) and GO_FUNC.match(text) is not None
    )
    return GO if state == GO and is_go_line else None


def _open_accepts(record: Record, kind: int, text: str, stamp: float | None) -> int | None:
    """A record that is a log line (and what ran on from it) so far."""
    if kind == PG:
        return BODY
    if kind in TRACE_STARTS or kind == CAUSED:
        # a logger attaches a Python or JVM trace to its record; a process crash (panic:,
        # Node's preamble, "Exception in thread") follows only an error line it belongs to
        if not record.announces_error(kind in ATTACHED, stamp):
            return None
        if kind == TB:
            return PY
        if kind == GOHEAD:
            return GO
        if kind == NODE_PRE:
            return NODE_PRE_S
        if kind in (RUBY_ERR, JVM_HEAD):
            return BODY  # a crash report's own first line: nothing to put on probation
        return JMSG if kind == CAUSED else TENTATIVE
    if kind == GOROUTINE:
        return GO if record.announces_error() else None
    if kind == AT0:
        return BODY if record.announces_error() else None
    if kind == PROSE and record.state != JSON_ERR and record.count < 20:
        # a message that runs on over unindented lines, under an error record only; the same
        # statement written again (a burst of one error line) is the next event, not a run-on
        if text[:12] == record.head.text[:12]:
            return None
        return RUNON if record.announces_error() else None
    return None


def _ruby_accepts(record: Record, kind: int, text: str) -> int | None:
    """Ruby's logger.error(e.full_message) prints the message and backtrace unindented."""
    if kind == RUBY_HEAD:
        # Rails' tagged logger writes one FATAL record per line of the report: the same
        # severity, process, program and request tags continue the same event
        head = RUBY_KEY.match(record.head.text)
        line = RUBY_KEY.match(text)
        if head and line and head.group(4) and _ruby_id(head) == _ruby_id(line):
            return RUBY
        return None
    if kind == JSON or RUBY_STOP.match(text):
        # a line that starts with the record's request tag is the report's last line
        tags = RUBY_KEY.match(record.head.text)
        if tags and tags.group(4) and text.startswith(tags.group(4).split("]")[0] + "]"):
            return RUBY
        return None
    return RUBY


def repeats_header(record: Record, text: str) -> bool:
    """A Ruby backtrace line written as a log record of its own with the error's header
    (Sidekiq: "… TID-x ERROR: /gems/…/timed_stack.rb:42:in `pop'"): the header repeats."""
    frame = _RUBY_FRAME_TEXT.search(text)
    if frame is None or frame.start() == 0:
        return False
    cut = frame.start()
    return _DIGITS.sub("", record.head.text[:cut]) == _DIGITS.sub("", text[:cut])


_DIGITS = re.compile(r"\d")
_RUBY_FRAME_TEXT = re.compile(r"(?<=\s)(?:/|\w+/)\S*\.rb:\d+:in ")


def _ruby_id(match: re.Match[str]) -> tuple[str, ...]:
    return match.group(1), match.group(2), match.group(3), match.group(4).strip()


def _trim(lines: list[RawLine]) -> list[RawLine]:
    """The lines without the blank ones at the end: they separate records, they are not content."""
    end = len(lines)
    while end > 1 and (not lines[end - 1].text or lines[end - 1].text.isspace()):
        end -= 1
    return lines if end == len(lines) else lines[:end]


def build_event(
    record_lines: list[RawLine], head_kind: int, truncated: bool, head: LogEvent | None
) -> LogEvent:
    """The LogEvent of a multi-line record: the head's structure plus the trace of all lines."""
    lines = _trim(record_lines)
    first, last = lines[0], lines[-1]
    if len(lines) == 1:
        event = single_event(first, head_kind, head)
        event.line_count = len(record_lines)
        event.cursor = record_lines[-1].cursor
        return event
    event = head if head is not None else parse_line(first)
    texts = [line.text for line in lines]
    event.text = "\n".join(texts)
    event.last_line = last.line_no
    # every physical line the record consumed, the trailing blank ones too: they are accounted
    # for here although the span (first_line..last_line) ends at the last line with content
    event.line_count = len(record_lines)
    event.cursor = record_lines[-1].cursor
    event.truncated = truncated or any(map(_TRUNCATED, lines))  # (no generator: per record)
    trace = parse_trace(_without_logger_prefix(texts) if head_kind == RUBY_HEAD else texts)
    if head_kind in _CRASH_HEADS and event.level is None:
        event.level = "error"  # a runtime's crash report carries no level of its own
    if trace is not None:
        _apply_trace(event, trace.exception_type, trace.exception_message, trace.frames)
        if trace.causes:
            event.fields.setdefault("causes", trace.causes)
        if head_kind in _HEADLESS and trace.exception_type:  # "Traceback (…):" says nothing
            message = trace.exception_message
            event.message = (
                f"{trace.exception_type}: {message}" if message else trace.exception_type
            )
    return event


def _without_logger_prefix(texts: list[str]) -> list[str]:
    """A Ruby tagged block's lines as the backtrace printed them: without "F, [...] FATAL -- : "
    and the request tags the logger wrote in front of each."""
    out = [texts[0]]
    for text in texts[1:]:
        match = RUBY_KEY.match(text)
        rest = text[match.end() :] if match else text
        if rest.startswith("[") and "] " in rest[:64]:
            rest = rest[rest.index("] ") + 2 :]
        out.append(rest)
    return out


_TRUNCATED = attrgetter("truncated")
# heads that are part of the trace, not a log line that reported it
_HEADLESS = frozenset((TB, FRAME, NODE_PRE))
_CRASH_HEADS = frozenset((TB, FRAME, NODE_PRE, GOHEAD, JVM_HEAD, EXC))


def _apply_trace(event: LogEvent, exc_type: str | None, exc_msg: str | None, frames: list) -> None:
    # a trace found in a JSON head's fields is kept unless the lines say more
    if exc_type is not None or not event.exception_type:
        event.exception_type, event.exception_message = exc_type, exc_msg
    if frames:
        event.frames = frames
    if event.level is None or LEVEL_RANK.get(event.level, 0) < ERROR_RANK:
        # a trace makes the record an error, whatever level its (unrelated-looking) head had
        event.level = "error" if event.level is None else event.level


def single_event(line: RawLine, kind: int, event: LogEvent | None = None) -> LogEvent:
    """A one-line record; only a line that reads as a trace head pays for parse_trace."""
    if event is None:
        event = parse_line(line)
    if kind >= TB and event.exception_type is None:
        trace = parse_trace([line.text])
        if trace is not None:
            _apply_trace(event, trace.exception_type, trace.exception_message, trace.frames)
    return event
