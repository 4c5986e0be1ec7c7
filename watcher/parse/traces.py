"""Stack traces -> exception type, message and frames, read by the language that wrote them.

The languages (Python, Java/JVM, Node/JS, Go, Ruby, .NET, PHP) are modules of
`watcher/parse/languages/` behind one registry; this module finds which one a trace is and asks
it. Frames are always ordered like Python prints them: outermost call first, the frame that
raised last. Java, Node, Go, Ruby, .NET and PHP print innermost first, so their modules reverse
them; this is what `LogEvent.top_frame` (which walks the list backwards) relies on.
"""

from __future__ import annotations

from watcher.memo import remember
from watcher.model import Frame
from watcher.parse.languages import FRAME_ORDER, HEADER_ONLY, START_FIRSTS, STARTS, Language
from watcher.parse.languages.common import UNSEEN, Trace, frame, is_in_app, remembered

__all__ = ["TRACE_KEYS", "Trace", "is_in_app", "parse_trace", "trace_from_fields"]


@remembered  # the first frame of every trace asks, and up to four languages' regexes answer
def _language_of_frame(line: str) -> Language | None:
    """The language of an indented (or column-0 "at …") frame line, or None."""
    return _frame_language(line)


def _frame_language(line: str) -> Language | None:
    stripped = line.lstrip()
    for language in FRAME_ORDER:
        if stripped.startswith(language.frame_start) and language.is_frame(line, stripped):  # type: ignore[misc]
            return language
    return None


def _detect(lines: list[str]) -> Language | None:
    started: Language | None = None
    # a line opening with none of these characters is no language's start: the usual unindented
    # line of a trace (its log line, a message) skips the is_start calls
    firsts = START_FIRSTS
    for line in lines:
        first = line[:1]
        if first in (" ", "\t") or (first == "a" and line.startswith("at ")):
            found = _language_of_frame(line)
            if found is not None:
                return found
        elif firsts is None or first in firsts:
            for language in STARTS:
                if language.is_start(line):  # type: ignore[misc]
                    if language.decides:
                        return language
                    started = started or language
    return started


def _header_only(lines: list[str]) -> Trace | None:
    """A report with no frames: a Node error print, a Go panic, PHP's fatal, a JVM exception
    line or a Ruby error line."""
    for line in lines[:6]:
        for language in HEADER_ONLY:
            trace = language.header_only(line, lines)  # type: ignore[misc]
            if trace is not None:
                return trace
    return None


def parse_trace(lines: list[str]) -> Trace | None:
    """The trace in `lines` (which may start with the log line that reported it), or None."""
    if not lines:
        return None
    language = _detect(lines)
    if language is None:
        return _header_only(lines)
    trace = language.parse(lines)
    if trace.exception_type is None and not trace.frames:
        return None
    return trace


# --- traces carried in structured fields -----------------------------------------------------

# string fields holding a whole printed trace: structlog/python-json-logger, logstash, zap, ECS
_STACK_KEYS = (
    "exception",
    "exc_info",
    "exc_text",
    "traceback",
    "stack_trace",
    "stacktrace",
    "stack",
    "error.stack_trace",
    "error.stack",
)
TRACE_KEYS = frozenset((*_STACK_KEYS, "err", "error", "error.type"))


def _structlog_dict(stacks: list[object]) -> Trace | None:
    """structlog's dict_tracebacks: stacks[0] is the exception that escaped."""
    stack = stacks[0] if stacks else None
    if not isinstance(stack, dict):
        return None
    frames = []
    for item in stack.get("frames") or ():
        if isinstance(item, dict):
            file = str(item.get("filename", ""))
            number = item.get("lineno")
            line = number if isinstance(number, int) and not isinstance(number, bool) else None
            frames.append(frame(file, line, str(item.get("name", ""))))
    exc_type, exc_msg = stack.get("exc_type"), stack.get("exc_value")
    return Trace(
        "python",
        exc_type if isinstance(exc_type, str) else None,
        exc_msg if isinstance(exc_msg, str) else None,
        frames,
    )


# A stack string a JSON record carries is printed the same by every occurrence of its error (the
# mixed log: 1,649 stacks in its first 200k lines, 444 distinct): what each parsed to is kept,
# and every record gets a copy of its own (the caller completes the Trace, mark_in_app sets its
# Frames' in_app). Per stack: ~60k instructions parsed, a copy a few thousand.
_STACKS: dict[str, Trace | None] = {}
_STACKS_CAP = 1024  # stacks; cleared when full
_LONGEST_STACK = 8192  # longer stacks are parsed every time (bounds the memo's memory)


def _stack_string(value: object) -> Trace | None:
    if isinstance(value, str) and "\n" in value:
        found = _STACKS.get(value, UNSEEN)
        if found is UNSEEN:
            found = parse_trace(value.splitlines())
            remember(_STACKS, value, found, _STACKS_CAP, _LONGEST_STACK)
        return None if found is None else _copy(found)
    return None


def _copy(trace: Trace) -> Trace:
    """A Trace of its own: new frame and cause lists, new Frames."""
    return Trace(
        trace.language,
        trace.exception_type,
        trace.exception_message,
        [Frame(f.file, f.line, f.function, f.in_app) for f in trace.frames],
        trace.causes.copy(),
    )


def _error_object(value: dict[str, object]) -> Trace | None:
    """pino/bunyan `err`, ECS `error`: {"type", "message", "stack"}."""
    trace = None
    for key in ("stack", "stack_trace", "stacktrace"):
        trace = _stack_string(value.get(key))
        if trace:
            break
    exc_type = value.get("type") or value.get("kind") or value.get("name")
    exc_msg = value.get("message") or value.get("msg")
    if trace is None:
        if not isinstance(exc_type, str):
            return None
        trace = Trace("unknown", None, None, [])
    if trace.exception_type is None and isinstance(exc_type, str):
        trace.exception_type = exc_type
    if trace.exception_message is None and isinstance(exc_msg, str):
        trace.exception_message = exc_msg
    return trace


def trace_from_fields(fields: dict[str, object]) -> Trace | None:
    """A trace carried in a structured record's fields, or None."""
    if fields.keys().isdisjoint(TRACE_KEYS):
        return None
    for key in _STACK_KEYS:
        if key not in fields:
            continue  # (an absent key is None: no trace, without the call that says so)
        value = fields[key]
        trace = _structlog_dict(value) if isinstance(value, list) else _stack_string(value)
        if trace is not None:
            error = fields.get("error")
            if trace.exception_message is None and isinstance(error, str):
                trace.exception_message = error  # zap: "error" holds the message
            return trace
    for key in ("err", "error"):
        value = fields.get(key)
        if isinstance(value, dict):
            trace = _error_object(value)
            if trace is not None:
                return trace
    exc_type = fields.get("error.type")
    if isinstance(exc_type, str):
        exc_msg = fields.get("error.message")
        return Trace("unknown", exc_type, exc_msg if isinstance(exc_msg, str) else None, [])
    return None
