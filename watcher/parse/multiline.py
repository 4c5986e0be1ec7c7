"""Multi-line assembly: physical lines of one stream -> logical records (a line plus its trace).

At most one record is held open per writer (a stream, or a writer inside it that a transport
prefix names: a journald process, a compose service, a pod). A line can only be known complete
when the next line of its writer arrives (or the timeout passes), so every plain or logfmt line
waits for its successor: latency is one line, or `timeout` seconds on a stream that goes quiet —
the pipeline must call flush() periodically (every ~timeout/2). A JSON object line is complete as
it stands, unless it is an error record: then the raw trace a runtime prints after it joins it.

Transport prefixes (parse/prefixes.py) are stripped first. Then, by the state of the open record:

- a trace start — "Traceback (most recent call last):", an exception header ("TypeError: msg",
  "com.x.FooException: msg", "[Error: msg] {"), "panic:", "Exception in thread", a Node crash
  preamble ("file.js:12" + source line + caret), a header-less frame ("  File …", "    at …") —
  joins the open record only when that record announces an error (level error or above, or no
  level and words of failure, or a line ending in ":"); after an INFO line, an access log line or
  any other record it starts its own event
- any record takes blank lines and indented lines (frames, "... 3 more", SQL, pretty dumps); the
  blank lines at the end of a record are not part of its span
- an error record takes the unindented lines of a message that runs on (lines that cannot start
  a record: no timestamp, level word, JSON, key=value or bracket), PostgreSQL's
  DETAIL/HINT/CONTEXT/STATEMENT lines, and JVM/.NET frames written at column 0 ("at …",
  "--- End of stack trace …")
- an exception header on probation stays only if a frame follows it, else it is its own record
- a Python traceback takes its final "ValueError: msg" line and the lines of a message that runs
  on (lines opening in lower case or "(" that do not start like a record), then "During handling
  of the above exception…" / "The above exception was the direct cause…" and the next "Traceback"
- a JVM "Caused by: X: msg" takes the unindented lines of a message that runs on until its frames
- a Node error printed with its properties ("at … {" … "}") takes lines up to the closing brace
- a Ruby Logger error record takes the following lines of the same logger, process and request
  tags (Rails' tagged FATAL block) and every line up to the next record
- a Go panic takes "goroutine N [...]:" blocks, "[signal …]" and "pkg.fn(...)" frame lines
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from watcher.model import ERROR_RANK, LEVEL_RANK, LogEvent, RawLine
from watcher.parse.formats import can_be_error, parse_line, unwrap_json
from watcher.parse.prefixes import strip_prefix
from watcher.parse.timestamps import parse_timestamp
from watcher.parse.traces import parse_trace

WARNING_RANK = LEVEL_RANK["warning"]

# line kinds; every kind from _TB on can start or continue a trace
(
    _OTHER,
    _BLANK,
    _INDENT,
    _JSON,
    _PROSE,
    _MAYBE,
    _PG,
    _AT0,
    _TB,
    _CHAIN,
    _CAUSED,
    _GOROUTINE,
    _GOHEAD,
    _EXC,
    _JVM_HEAD,
    _RUBY_HEAD,
    _FRAME,
    _NODE_PRE,
    _RUBY_ERR,
    _K8S,
) = range(20)
# record states
(
    _OPEN,
    _TENTATIVE,
    _BODY,
    _PY,
    _PY_DONE,
    _PY_CHAIN,
    _GO,
    _JMSG,
    _RUBY,
    _RUNON,
    _NODE_PRE_S,
    _JSON_ERR,
) = range(12)

_PREFIX_KINDS = (
    ("Traceback (most recent call last)", _TB),
    ("During handling of the above exception", _CHAIN),
    ("The above exception was the direct cause", _CHAIN),
    ("Caused by: ", _CAUSED),
    ("goroutine ", _GOROUTINE),
    ("panic: ", _GOHEAD),
    ("fatal error: ", _GOHEAD),
    ("Exception in thread ", _JVM_HEAD),
    ("Unhandled exception. ", _JVM_HEAD),  # .NET's crash report
    ("Unhandled Exception: ", _JVM_HEAD),
    ("PHP Fatal error: ", _JVM_HEAD),
    ("PHP Warning: ", _OTHER),
    ("Uncaught ", _EXC),
    ("FATAL EXCEPTION: ", _JVM_HEAD),  # Android's AndroidRuntime crash header
)
_PREFIXES = tuple(prefix for prefix, _ in _PREFIX_KINDS)
_STATE_OF_HEAD = {
    _TB: _PY,
    _CHAIN: _PY_CHAIN,
    _CAUSED: _JMSG,
    _GOROUTINE: _GO,
    _GOHEAD: _GO,
    _RUBY_HEAD: _RUBY,
    _FRAME: _PY,
    _NODE_PRE: _NODE_PRE_S,
    _RUBY_ERR: _BODY,
    _JVM_HEAD: _BODY,
}

# "com.foo.BarException: msg" (a qualified class), "TypeError: msg" / "Error" (JS), .NET's
# "Npgsql.NpgsqlException (0x80004005): msg"
_EXC_HEADER = re.compile(
    r"(?:(?:[A-Za-z_$][\w$]*\.)+[A-Z][\w$]*|(?:Uncaught )?[A-Z][\w$]*(?:Error|Exception|Rejection)"
    r"(?: \[[\w-]+\])?|Error)(?: \(0x[0-9A-Fa-f]+\))?(?::\s|:?\s*$)"
)
# Node's print of an error object without a stack: "[TypeError: fetch failed] {"
_BRACKET_ERROR = re.compile(r"\s*\[[A-Z]\w*(?:Error|Exception|Rejection)\b(?::|\])")
# Node's crash preamble: the throwing source location, alone on its line
_NODE_LOCATION = re.compile(
    r"(?:node:[\w/.-]+|(?:file://)?(?:[A-Za-z]:)?[^\s:]*\.(?:js|mjs|cjs|ts|jsx|tsx)):\d+$"
)
_PY_EXCEPTION = re.compile(r"[A-Za-z_][\w.]*(?::|\s*$)")
# Ruby's first trace line: "app/models/user.rb:12:in `name': undefined method … (NoMethodError)"
_RUBY_HEADER = re.compile(r"\S+:\d+:in [`'].*\(([A-Z]\w*(?:::[A-Z]\w*)*)\)$")
# a Ruby Logger line: severity letter, process, progname and the request tags that open its text
_RUBY_KEY = re.compile(r"([A-Z]), \[\S+ #(\d+)\]\s+\w+ -- ([^:]*): ((?:\[[^\]]*\] ?)*)")
# a line that starts a new record rather than continuing a message
_LEVEL_START = r"(?:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|FATAL|CRITICAL)\b"
_RECORD_HEAD = re.compile(r"[\d\[<{]|[\w.-]+=|[A-Z], \[|" + _LEVEL_START, re.IGNORECASE)
# the same for a Ruby record, whose message lines may start with "[" ("[HTTP 503] …")
_RUBY_STOP = re.compile(r"[\d{]|[\w.-]+=|[A-Z], \[|" + _LEVEL_START, re.IGNORECASE)
# prose that cannot start a record: no level word, timestamp, key=value, path or bracket
_NOT_PROSE = re.compile(
    r"[\d\[<{(/\\>$@*|=+-]|[\w.-]+=|[A-Z], \[|\w+:\s|" + _LEVEL_START, re.IGNORECASE
)
_FRAME_LINE = re.compile(r"\s+(?:at |\.\.\. \d+ more|from )")
_GO_FUNC = re.compile(r"[^\s(]+\(.*\)$|created by |\[signal |exit status ")
# an indented line that is itself a timestamped log line does not continue anything
_INDENTED_LOG = re.compile(r"\s+\d{4}-\d\d-\d\d[T ]\d\d:")
# PostgreSQL's continuation records ("DETAIL:  …", two spaces), after any log_line_prefix
_PG_KEYS = ("DETAIL:  ", "HINT:  ", "CONTEXT:  ", "STATEMENT:  ", "QUERY:  ", "LOCATION:  ")
_PG_CONT = re.compile(r"(?:.{0,160}?[\s\]:])?(?:DETAIL|HINT|CONTEXT|STATEMENT|QUERY|LOCATION):  ")
# a kubectl describe / get events row of type Warning: each row is an event of its own
_K8S_WARNING = re.compile(r"\s*(?:\S+\s+){0,6}?Warning\s+[A-Z]\w+\s")
# a column-0 .NET/JVM frame or async boundary, as journald and some log viewers leave them
_AT0 = re.compile(r"at [\w$.<>`|\[\],+-]+[.(:]")
# a head that announces an error without a level: words of failure, or a line ending in ":"
_FAILURE_WORDS = re.compile(
    r"(?i)\b(?:error|errors|exception|fail(?:ed|ure)?|fatal|panic|traceback|unhandled|uncaught"
    r"|crash(?:ed)?|abort(?:ed)?|rejection)\b"
)
_ACCESS_LOG = re.compile(r'"[A-Z]+ \S+ HTTP/[\d.]+"|HTTP/[\d.]+" \d{3}|^Completed \d{3} ')

_PHP_CONT = re.compile(r"Stack trace:$|#\d+ \S|\{main\}")
_ATTACHED = frozenset((_TB, _EXC, _FRAME, _CAUSED, _RUBY_ERR))
_TRACE_STARTS = frozenset((_TB, _EXC, _GOHEAD, _JVM_HEAD, _FRAME, _NODE_PRE, _RUBY_ERR))
_CONTINUES_ANY = frozenset((_BLANK, _INDENT))


def _kind(text: str) -> int:
    """What a line could be to the record before it; ordinary log lines cost one or two checks."""
    first = text[:1]
    if first == "{":
        return _JSON
    if first == " " or first == "\t":
        return _indented_kind(text)
    if not first:
        return _BLANK
    if first.isdigit() or first == "[":
        if first == "[" and text[1:2].isupper() and _BRACKET_ERROR.match(text):
            return _EXC
        return _PG if ":  " in text and _PG_CONT.match(text) else _OTHER
    if text[1:4] == ", [" and first in "EFA":
        return _RUBY_HEAD  # Ruby Logger "E, [time #pid] ERROR -- prog: msg"
    if text.startswith(_PREFIXES):
        for prefix, kind in _PREFIX_KINDS:
            if text.startswith(prefix):
                if kind == _GOROUTINE and " [" not in text:
                    return _OTHER
                return kind
    if text.startswith(_PG_KEYS):
        return _PG
    if _EXC_HEADER.match(text):
        return _EXC
    if (first == "/" or first.isalpha()) and _RUBY_HEADER.match(text):
        return _RUBY_ERR  # "app.rb:12:in `f': msg (Error)": a frame itself, not on probation
    if first == "a" and text.startswith("at ") and _AT0.match(text):
        return _AT0
    if first == "-" and text.startswith(("--- End of ", "---> ")):
        return _AT0  # .NET's async boundary and inner exception, unindented by journald
    if text[-1:].isdigit() and _NODE_LOCATION.match(text):
        return _NODE_PRE
    # whether it is prose (a message that runs on) only matters under an error record: the
    # caller decides with _prose() when it does
    return _MAYBE


def _prose(kind: int, text: str) -> int:
    """What the fast path leaves open, decided where it matters (under a record that may be an
    error): _MAYBE is _PROSE for a line that cannot start a record, else _OTHER; an _OTHER line
    may be a PostgreSQL continuation record."""
    if kind == _MAYBE:
        return _OTHER if _NOT_PROSE.match(text) else _PROSE
    if kind == _OTHER and ":  " in text and _PG_CONT.match(text):
        return _PG
    return kind


def _indented_kind(text: str) -> int:
    if text.isspace():
        return _BLANK
    if text[1:2].isspace() and _INDENTED_LOG.match(text):
        return _OTHER
    stripped = text.lstrip()
    if stripped.startswith('File "'):
        return _FRAME
    if stripped[:1] == "[" and _BRACKET_ERROR.match(text):
        return _EXC
    if "Warning" in text and _K8S_WARNING.match(text):
        return _K8S
    return _INDENT


def _may_have_prefix(text: str, first: str) -> bool:
    """A cheap look at a line that starts with neither a digit nor "[" or "{": could
    strip_prefix find something? (journald's "Mar 04 …", a compose "api-1  | ", a terminal
    glyph, colours)."""
    if first.isupper():
        return (text[3:4] == " " and text[6:7] == " ") or "#033[" in text or "\x1b" in text
    if first.islower():
        return "| " in text[:72] or "\x1b" in text
    if first == " ":
        return not text[:12].lstrip()[:1].isascii() or "\x1b" in text
    return True


class _Record:
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
        self.state = _STATE_OF_HEAD.get(kind, _OPEN)
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

    def announces_error(self, attached: bool = False) -> bool:
        """Whether a trace that follows belongs to this record: it reported an error (or, for a
        trace a logger attaches to its record, a warning)."""
        if self.head_kind >= _TB or self.state == _JSON_ERR:
            return True
        event = self.head_event()
        if event.level is not None:
            # logger.warning("…", exc_info=True) and Java's log.warn(msg, e) attach the trace to
            # a warning record: one logging call, one event (an error by its trace)
            return LEVEL_RANK.get(event.level, 0) >= (WARNING_RANK if attached else ERROR_RANK)
        text = self.head.text
        if _ACCESS_LOG.search(text):
            return False
        return text.rstrip().endswith(":") or _FAILURE_WORDS.search(text) is not None


def _accepts(record: _Record, kind: int, text: str) -> int | None:
    """The record's next state if a line of `kind` continues it, else None."""
    state = record.state
    if kind == _BLANK:
        # a header on probation must stay the record's last line, so a blank line decides it
        return None if state in (_TENTATIVE, _JSON_ERR) else state
    if kind == _K8S:
        return None
    if state == _RUBY:
        return _ruby_accepts(record, kind, text)
    if state == _JMSG:
        # inside a "Caused by:" message, which may run over several lines (PostgreSQL's
        # "Detail:" / "Hint:" blocks) until the frames start
        if kind in (_INDENT, _FRAME):
            return _BODY if _FRAME_LINE.match(text) else _JMSG
        if kind in (_CAUSED, _PROSE, _AT0) or (
            kind in (_OTHER, _EXC) and not _RECORD_HEAD.match(text)
        ):
            return _BODY if kind == _AT0 else _JMSG
        return None
    if state == _NODE_PRE_S:
        # "file.js:12", the source line, the caret, a blank line, then the error itself
        if kind in (_INDENT, _OTHER, _PROSE) and record.count < 6:
            return _NODE_PRE_S
        if kind == _EXC:
            return _TENTATIVE
        return None
    if kind in (_INDENT, _FRAME):
        if state in (_OPEN, _RUNON, _JSON_ERR):
            if kind == _FRAME:
                if state == _OPEN and not record.announces_error(attached=True):
                    return None  # a header-less traceback after an unrelated record
                return _PY
            if state == _OPEN and record.lines is None and record.head.text.endswith("call last):"):
                return _PY  # "ERROR:root:Traceback (most recent call last):" on one line
            return _BODY
        if state == _TENTATIVE:
            return _BODY
        return _PY if state == _PY_CHAIN and kind == _FRAME else state
    if state in (_OPEN, _RUNON, _JSON_ERR):
        return _open_accepts(record, kind, text)
    if state in (_BODY, _TENTATIVE):
        if kind == _CAUSED:
            return _JMSG
        if kind in (_AT0, _PG):
            return _BODY
        if record.depth > 0 and text[:1] in "}]":
            return _BODY  # the closing brace of a Node error's properties
        if kind == _PROSE and text.startswith(("Node.js v", "Emitted 'error' event")):
            return _BODY  # the last lines of Node's crash report
        if kind in (_PROSE, _OTHER) and _PHP_CONT.match(text):
            return _BODY  # PHP's "Stack trace:" and "#0 file(12): fn()" frames
        return None
    if state == _PY:
        if kind in (_OTHER, _EXC, _PROSE) and _PY_EXCEPTION.match(text):
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
        if kind not in (_PROSE, _OTHER):
            return None  # a trace start, or a line a source delimited, is not a message run-on
        if (first == "(" or (first.islower() and kind == _PROSE)) and not _RECORD_HEAD.match(text):
            return _PY_DONE
        return None
    if state == _PY_CHAIN:
        return _PY if kind == _TB else None
    is_go_line = kind == _GOROUTINE or (
        kind in (_OTHER, _EXC, _PROSE) and _GO_FUNC.match(text) is not None
    )
    return _GO if state == _GO and is_go_line else None


def _open_accepts(record: _Record, kind: int, text: str) -> int | None:
    """A record that is a log line (and what ran on from it) so far."""
    if kind == _PG:
        return _BODY
    if kind in _TRACE_STARTS or kind == _CAUSED:
        # a logger attaches a Python or JVM trace to its record; a process crash (panic:,
        # Node's preamble, "Exception in thread") follows only an error line it belongs to
        if not record.announces_error(attached=kind in _ATTACHED):
            return None
        if kind == _TB:
            return _PY
        if kind == _GOHEAD:
            return _GO
        if kind == _NODE_PRE:
            return _NODE_PRE_S
        if kind in (_RUBY_ERR, _JVM_HEAD):
            return _BODY  # a crash report's own first line: nothing to put on probation
        return _JMSG if kind == _CAUSED else _TENTATIVE
    if kind == _GOROUTINE:
        return _GO if record.announces_error() else None
    if kind == _AT0:
        return _BODY if record.announces_error() else None
    if kind == _PROSE and record.state != _JSON_ERR and record.count < 20:
        # a message that runs on over unindented lines, under an error record only; the same
        # statement written again (a burst of one error line) is the next event, not a run-on
        if text[:12] == record.head.text[:12]:
            return None
        return _RUNON if record.announces_error() else None
    return None


def _ruby_accepts(record: _Record, kind: int, text: str) -> int | None:
    """Ruby's logger.error(e.full_message) prints the message and backtrace unindented."""
    if kind == _RUBY_HEAD:
        # Rails' tagged logger writes one FATAL record per line of the report: the same
        # severity, process, program and request tags continue the same event
        head = _RUBY_KEY.match(record.head.text)
        line = _RUBY_KEY.match(text)
        if head and line and head.group(4) and _ruby_id(head) == _ruby_id(line):
            return _RUBY
        return None
    if kind == _JSON or _RUBY_STOP.match(text):
        # a line that starts with the record's request tag is the report's last line
        tags = _RUBY_KEY.match(record.head.text)
        if tags and tags.group(4) and text.startswith(tags.group(4).split("]")[0] + "]"):
            return _RUBY
        return None
    return _RUBY


def _repeats_header(record: _Record, text: str) -> bool:
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


def _build(
    record_lines: list[RawLine], head_kind: int, truncated: bool, head: LogEvent | None
) -> LogEvent:
    """The LogEvent of a multi-line record: the head's structure plus the trace of all lines."""
    lines = _trim(record_lines)
    first, last = lines[0], lines[-1]
    if len(lines) == 1:
        event = _single(first, head_kind, head)
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
    event.truncated = truncated or any(line.truncated for line in lines)
    trace = parse_trace(_without_logger_prefix(texts) if head_kind == _RUBY_HEAD else texts)
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
        match = _RUBY_KEY.match(text)
        rest = text[match.end() :] if match else text
        if rest.startswith("[") and "] " in rest[:64]:
            rest = rest[rest.index("] ") + 2 :]
        out.append(rest)
    return out


# heads that are part of the trace, not a log line that reported it
_HEADLESS = frozenset((_TB, _FRAME, _NODE_PRE))
_CRASH_HEADS = frozenset((_TB, _FRAME, _NODE_PRE, _GOHEAD, _JVM_HEAD, _EXC))


def _apply_trace(event: LogEvent, exc_type: str | None, exc_msg: str | None, frames: list) -> None:
    # a trace found in a JSON head's fields is kept unless the lines say more
    if exc_type is not None or not event.exception_type:
        event.exception_type, event.exception_message = exc_type, exc_msg
    if frames:
        event.frames = frames
    if event.level is None or LEVEL_RANK.get(event.level, 0) < ERROR_RANK:
        # a trace makes the record an error, whatever level its (unrelated-looking) head had
        event.level = "error" if event.level is None else event.level


def _single(line: RawLine, kind: int, event: LogEvent | None = None) -> LogEvent:
    """A one-line record; only a line that reads as a trace head pays for parse_trace."""
    if event is None:
        event = parse_line(line)
    if kind >= _TB and event.exception_type is None:
        trace = parse_trace([line.text])
        if trace is not None:
            _apply_trace(event, trace.exception_type, trace.exception_message, trace.frames)
    return event


class Assembler:
    """Joins each writer's continuation lines onto the line that started the record."""

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
        self._partial: dict[str, str] = {}  # CRI "P" line fragments waiting for their end
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
            key = line.stream
            first = text[:1]
            if first.isdigit() or first == "[":
                # a transport prefix here starts with an RFC 3339 time (CRI, Logplex, short-iso
                # journald) or "[pod/"; colours can be anywhere
                if text[10:11] == "T" or (first == "[" and text[1:5] == "pod/") or "\x1b" in text:
                    found = strip_prefix(text)
                    if found is not None:
                        text, key = self._unprefix(line, found)
                        if text is None:
                            continue
                        first = text[:1]
                if first.isdigit():
                    kind = _OTHER  # a PostgreSQL continuation is told apart by _prose()
                elif first == "[":
                    kind = _kind(text) if text[1:2].isupper() else _OTHER
                else:
                    kind = _kind(text)
            elif first == "{":
                kind = _JSON
                wrapped = unwrap_json(text) if ('"message":' in text or '"log":' in text) else None
                if wrapped is not None:
                    text, key = self._unwrap(line, *wrapped)
                    kind = _kind(text)
                    if kind == _MAYBE:
                        kind = _OTHER  # a wrapped line is a log entry of its own, not a run-on
            else:
                found = strip_prefix(text) if _may_have_prefix(text, first) else None
                if found is not None:
                    text, key = self._unprefix(line, found)
                    if text is None:
                        continue
                kind = _kind(text)
                if kind == _MAYBE and (line.fields is not None or line.timestamp is not None):
                    # a source that gives every line its own record (Railway, Loki, CloudWatch)
                    # says where records start: its lines are never an earlier message run on
                    kind = _OTHER
            record = open_records.get(key)
            if kind == _JSON:
                if record is not None:
                    if record.state != _OPEN or record.lines is not None:
                        self._continue(record, line, _JSON, now, out)
                        continue
                    del open_records[key]
                    self._single(record.head, record.head_kind, out, record.event)
                    spare = record
                if errors_only and not can_be_error(line):
                    skipped += 1  # the usual JSON line: an INFO record, counted only
                else:
                    self._json(line, key, now, out)
                continue
            if record is None:
                if kind == _MAYBE:
                    kind = _OTHER  # nothing to run on from
                if kind == _OTHER and spare is not None and len(text) < max_bytes:
                    spare.reset(line, kind, now, key)
                    open_records[key], spare = spare, None
                else:
                    self._start(line, kind, now, out, key)
            elif (
                kind in (_OTHER, _MAYBE)
                and record.state == _OPEN
                and record.lines is None
                and len(text) < max_bytes
            ):
                # the common case, line after ordinary line: emit the held one, hold this one in
                # the same record object
                head = record.head
                if errors_only and record.head_kind < _TB and not can_be_error(head):
                    skipped += 1
                    kind = _OTHER
                else:
                    kind = _prose(kind, text)
                    if kind in (_PROSE, _PG) or (
                        (":in `" in text or ":in '" in text) and _repeats_header(record, text)
                    ):  # it may continue an error record: the slow path
                        self._continue(record, line, _PG if kind == _OTHER else kind, now, out)
                        continue
                    out.append(_single(head, record.head_kind, record.event))
                # only what an OPEN one-line record can have changed is set: a full reset()
                # costs a tenth of the loop
                record.head, record.head_kind, record.size, record.touched, record.event = (
                    line,
                    kind,
                    len(text),
                    now,
                    None,
                )
            else:
                self._continue(record, line, _prose(kind, text), now, out)
        self._skipped += skipped
        return out

    def _unwrap(self, line: RawLine, text: str, fields: dict) -> tuple[str, str]:
        """Feed the line a JSON wrapper carries in its place; the wrapper's level stays a hint."""
        level = fields.get("level") or fields.get("severity")
        # Railway and Docker call every stderr line "error": a runtime writes its INFO logs there
        # too, so only a level other than that is kept (a trace is an error by itself)
        if isinstance(level, str) and level.lower() not in ("error", "err", "stderr"):
            line.fields = {**(line.fields or {}), "level": level}
        if line.timestamp is None:
            line.timestamp = parse_timestamp(fields.get("timestamp") or fields.get("time"))
        line.text = text
        stream = fields.get("stream")
        key = f"{line.stream}\x1f{stream}" if isinstance(stream, str) else line.stream
        found = strip_prefix(text) if text[:1] != "{" else None
        if found is not None:
            text, key = self._unprefix(line, found)
            if text is None:
                return "", key
        return text, key

    def _unprefix(
        self, line: RawLine, found: tuple[str, str | None, bool]
    ) -> tuple[str | None, str]:
        """Strip the line's transport prefix in place; (its text or None when held, its writer)."""
        text, writer, partial = found
        key = line.stream if writer is None else f"{line.stream}\x1f{writer}"
        held = self._partial.pop(key, None)
        if held is not None:
            text = held + text
        if partial:  # CRI: the runtime split a long line; the rest comes with the "F" line
            self._partial[key] = text
            return None, key
        line.text = text
        return text, key

    def flush(self, *, force: bool = False) -> list[LogEvent]:
        """Close the records idle for longer than the timeout (all of them when force)."""
        if not self._open:
            return []
        now = self._clock()
        out: list[LogEvent] = []
        # in the order the records started, whichever way each writer's entry was (re)inserted
        for key, record in sorted(self._open.items(), key=lambda item: item[1].head.line_no):
            if force or now - record.touched >= self._timeout:
                del self._open[key]
                if record.state == _TENTATIVE:
                    self._split(record, out)
                else:
                    self._emit(record, out, truncated=False)
        return out

    # --- internals -----------------------------------------------------------------------------

    def _json(self, line: RawLine, key: str, now: float, out: list[LogEvent]) -> None:
        """A JSON line: complete now, unless it is an error record a raw trace may follow."""
        if self._errors_only and not can_be_error(line):
            self._skipped += 1
            return
        event = parse_line(line)
        if event.is_error and not event.frames and len(line.text) < self._max_bytes:
            record = _Record(line, _JSON, now, key)
            record.state, record.event = _JSON_ERR, event
            self._open[key] = record
            return
        out.append(event)

    def _start(self, line: RawLine, kind: int, now: float, out: list[LogEvent], key: str) -> None:
        if len(line.text) >= self._max_bytes:
            self._single(line, kind, out)  # complete as it stands
            return
        if kind == _K8S:
            self._single(line, kind, out)
            return
        self._open[key] = _Record(line, kind, now, key)

    def _continue(
        self, record: _Record, line: RawLine, kind: int, now: float, out: list[LogEvent]
    ) -> None:
        state = _accepts(record, kind, line.text)
        key = record.key
        if state is None:
            if record.state == _TENTATIVE:
                # the header had no frame after it: it was a line of its own after all
                self._emit_part(record, out)
                header = record.lines[-1] if record.lines else record.head
                record = _Record(header, _EXC, record.touched, key)
                self._open[key] = record
                self._continue(record, line, kind, now, out)
                return
            del self._open[key]
            self._emit(record, out, truncated=False)
            if kind == _JSON:
                self._json(line, key, now, out)
            else:
                self._start(line, kind, now, out, key)
            return
        if record.count >= self._max_lines or record.size + len(line.text) > self._max_bytes:
            del self._open[key]
            self._emit(record, out, truncated=True)
            if kind == _JSON:
                self._json(line, key, now, out)
            else:
                self._start(line, kind, now, out, key)
            return
        text = line.text
        if text.endswith("{") or text.endswith("["):
            record.depth += 1
        elif record.depth and text.lstrip()[:1] in ("}", "]"):
            record.depth -= 1
        record.add(line, state, now)

    def _single(
        self,
        line: RawLine,
        kind: int,
        out: list[LogEvent],
        event: LogEvent | None = None,
        truncated: bool = False,
    ) -> None:
        """Append the event of a one-line record, unless errors_only rules it out cheaply."""
        if event is None and self._errors_only and kind < _TB and not can_be_error(line):
            self._skipped += 1
            return
        event = _single(line, kind, event)
        if truncated:
            event.truncated = True
        out.append(event)

    def _emit(self, record: _Record, out: list[LogEvent], *, truncated: bool) -> None:
        if record.lines is None:
            self._single(record.head, record.head_kind, out, record.event, truncated)
        else:
            out.append(_build(record.lines, record.head_kind, truncated, record.event))

    def _emit_part(self, record: _Record, out: list[LogEvent]) -> None:
        """The record without its probationary last line."""
        lines = record.lines or [record.head]
        if len(lines) == 2:
            self._single(lines[0], record.head_kind, out, record.event)
        else:
            out.append(_build(lines[:-1], record.head_kind, False, record.event))

    def _split(self, record: _Record, out: list[LogEvent]) -> None:
        header = record.lines[-1] if record.lines else record.head
        self._emit_part(record, out)
        self._single(header, _EXC, out)
