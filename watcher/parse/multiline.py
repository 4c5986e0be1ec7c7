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

import time
from collections.abc import Callable

from watcher.model import LogEvent, RawLine
from watcher.parse import formats
from watcher.parse.formats import (
    QUIET_PLAIN_HEAD,
    QUIET_WORDS,
    can_be_error,
    check_json,
    json_error_event,
    parse_line,
    unwrap_json,
)
from watcher.parse.linekinds import (
    BODY,
    EXC,
    FRAME,
    INDENT,
    JSON,
    JSON_ERR,
    K8S,
    MAYBE,
    OPEN,
    OTHER,
    PG,
    PROSE,
    PY,
    TB,
    TENTATIVE,
    indented_kind,
    line_kind,
    may_have_prefix,
    resolve_prose,
)
from watcher.parse.prefixes import strip_prefix
from watcher.parse.records import (
    Record,
    accepts,
    build_event,
    repeats_header,
    single_event,
)
from watcher.parse.timestamps import parse_timestamp
from watcher.parse.traces import TRACE_KEYS


def _after_timestamp(text: str) -> bool:
    """Whether what follows an RFC 3339 time could be a transport's: a CRI stream, a Logplex
    source, or a (lower-case) journald host — not an application's level word or bracket."""
    space = text.find(" ", 19, 40)
    if space < 0:
        return False
    return text.startswith(_TRANSPORT_WORDS, space + 1) or text[space + 1 : space + 2].islower()


_TRANSPORT_WORDS = ("stdout ", "stderr ", "app[", "heroku[")
# kinds the fast path holds in place of an ordinary record
_HELD_KINDS = frozenset((OTHER, MAYBE))
# a frame line in one of these states leaves the state as it is (records.accepts)
_FRAME_KINDS = frozenset((INDENT, FRAME))
_FRAME_STATES = frozenset((BODY, PY))


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
        self._open: dict[str, Record] = {}
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
        max_lines = self._max_lines
        errors_only = self._errors_only
        skipped = 0
        # a closed one-line OPEN record object (see the JSON branch), reused by the next OTHER line
        spare: Record | None = None
        # the line check_json decoded (as `checked`) in this loop: a line of the "{" branch
        checked: object = None
        checked_line: RawLine | None = None
        fast_loads = formats._fast_loads  # orjson's, when installed (read per batch: tests swap it)
        for line in lines:
            text = line.text
            key = line.stream
            first = text[:1]
            if (digit := first.isdigit()) and text[10:11] != "T" and "\x1b" not in text:
                kind = OTHER  # the usual timestamped line: nothing to strip, a record start
            elif digit or first == "[":
                # a transport prefix here starts with an RFC 3339 time (CRI, Logplex, short-iso
                # journald) or "[pod/"; colours can be anywhere
                if (
                    (text[10:11] == "T" and _after_timestamp(text))
                    or (first == "[" and text[1:5] == "pod/")
                    or "\x1b" in text
                ):
                    found = strip_prefix(text)
                    if found is not None:
                        text, key = self._unprefix(line, found)
                        if text is None:
                            continue
                        first = text[:1]
                if first.isdigit():
                    kind = OTHER  # a PostgreSQL continuation is told apart by resolve_prose()
                elif first == "[":
                    kind = line_kind(text) if text[1:2].isupper() else OTHER
                else:
                    kind = line_kind(text)
            elif first == "{":
                kind = JSON
                if errors_only and not line.fields:
                    # the decode json_error_event needs, done first: a record without a top-level
                    # "message" or "log" key is no wrapper (unwrap_json reads those), and two
                    # searches of the text (~1,200 instructions a JSON line) are spared
                    if fast_loads is not None:  # check_json(text), without its call
                        try:
                            checked = fast_loads(text)
                        except ValueError:
                            checked = check_json(text)
                    else:
                        checked = check_json(text)
                    wrapped = (
                        unwrap_json(text)
                        if (type(checked) is not dict or "message" in checked or "log" in checked)
                        and ('"message":' in text or '"log":' in text)
                        else None
                    )
                    if wrapped is None:
                        # `checked` is this text's decode (a wrapper's inner line, once its
                        # prefix is stripped, may be JSON too: decoded again below)
                        checked_line = line
                else:
                    wrapped = (
                        unwrap_json(text) if ('"message":' in text or '"log":' in text) else None
                    )
                if wrapped is not None:
                    text, key = self._unwrap(line, *wrapped)
                    kind = line_kind(text)
                    if kind == MAYBE:
                        kind = OTHER  # a wrapped line is a log entry of its own, not a run-on
            elif (first == " " or first == "\t") and (
                (stripped := text.lstrip())[:1].isascii()
                or first == "\t"
                or len(text) - len(stripped) >= 12
            ):  # not may_have_prefix(text, first): no glyph in the first 12 characters
                # a trace frame or a continuation (~28 % of a mixed log's lines): nothing to
                # strip; indented_kind(text), its two commonest answers without its call
                if not stripped or (ch := stripped[:1]) == "[" or ch.isdigit() or "Warning" in text:
                    kind = indented_kind(text)  # blank, an indented log line, "[Error…", k8s
                elif stripped.startswith('File "'):
                    kind = FRAME
                else:
                    kind = INDENT
            else:
                if first.islower():  # logfmt and prose: only a compose prefix is possible
                    found = strip_prefix(text) if text.find("| ", 0, 72) >= 0 else None
                else:
                    found = strip_prefix(text) if may_have_prefix(text, first) else None
                if found is not None:
                    text, key = self._unprefix(line, found)
                    if text is None:
                        continue
                    kind = line_kind(text)
                elif (
                    first.islower()
                    and (equals := text.find("=", 1, 40)) > 0
                    and text.find(" ", 0, equals) < 0
                ):
                    kind = OTHER  # logfmt, as line_kind says, without its call (8 % of lines)
                else:
                    kind = line_kind(text)
                if kind == MAYBE and (line.fields is not None or line.timestamp is not None):
                    # a source that gives every line its own record (Railway, Loki, CloudWatch)
                    # says where records start: its lines are never an earlier message run on
                    kind = OTHER
            record = open_records.get(key)
            if kind == JSON:
                if record is not None:
                    if record.state != OPEN or record.lines is not None:
                        self._continue(record, line, JSON, now, out)
                        continue
                    del open_records[key]
                    head = record.head
                    if (
                        errors_only
                        and record.event is None
                        and record.head_kind < TB
                        and (
                            (
                                not head.fields
                                and (head_text := head.text)[4:5] == "-"
                                and "\\" not in head_text
                                and QUIET_PLAIN_HEAD.match(head_text) is not None
                            )
                            or not can_be_error(head)
                        )
                    ):
                        skipped += 1  # what _single() does, without its call
                    else:
                        self._single(head, record.head_kind, out, record.event)
                    spare = record
                if errors_only:
                    if checked_line is line:
                        if type(checked) is dict:
                            # json_error_event's first verdict, without its call: the usual
                            # record states a quiet level under "level" (pino's 10-49 too)
                            value = checked.get("level")
                            value_type = type(value)
                            if (
                                (
                                    value in QUIET_WORDS
                                    if value_type is str
                                    else value_type is int and 10 <= value < 50
                                )
                                and checked.keys().isdisjoint(TRACE_KEYS)
                                and 'severity"' not in text
                            ):
                                skipped += 1
                                continue
                        found = json_error_event(line, checked)
                    else:
                        found = json_error_event(line)  # one decode at most
                    if found is None:
                        skipped += 1  # the usual JSON line: an INFO record, counted only
                        continue
                    self._json(line, key, now, out, found)
                else:
                    self._json(line, key, now, out)
                continue
            if record is None:
                if kind == MAYBE:
                    kind = OTHER  # nothing to run on from
                if kind == OTHER and spare is not None and len(text) < max_bytes:
                    # spare is a one-line OPEN record (count 1, depth 0, no lines): only what
                    # reset() would change for an OTHER head is set
                    spare.head, spare.head_kind, spare.key, spare.size, spare.touched = (
                        line,
                        OTHER,
                        key,
                        len(text),
                        now,
                    )
                    spare.event = None
                    open_records[key], spare = spare, None
                else:
                    self._start(line, kind, now, out, key)
            elif (
                kind in _HELD_KINDS
                and record.state == OPEN
                and record.lines is None
                and len(text) < max_bytes
            ):
                # the common case, line after ordinary line: emit the held one, hold this one in
                # the same record object
                head = record.head
                if (
                    errors_only
                    and record.head_kind < TB
                    and (
                        # can_be_error's verdict on "2026-… INFO …" (30 % of a mixed log's
                        # lines) without its call and the checks before its match: the match
                        # needs a digit first and "-" at 4, so no logcat or coded layout
                        (
                            not head.fields
                            and (head_text := head.text)[4:5] == "-"
                            and "\\" not in head_text
                            and QUIET_PLAIN_HEAD.match(head_text) is not None
                        )
                        or not can_be_error(head)
                    )
                    and not (kind == MAYBE and head.text.endswith((":", ": ")))
                ):
                    skipped += 1
                    kind = OTHER
                else:
                    kind = resolve_prose(kind, text)
                    if kind in (PROSE, PG) or (
                        (":in `" in text or ":in '" in text) and repeats_header(record, text)
                    ):  # it may continue an error record: the slow path
                        self._continue(record, line, PG if kind == OTHER else kind, now, out)
                        continue
                    out.append(single_event(head, record.head_kind, record.event))
                # only what an OPEN one-line record can have changed is set: a full reset()
                # costs a tenth of the loop
                record.head, record.head_kind, record.size, record.touched, record.event = (
                    line,
                    kind,
                    len(text),
                    now,
                    None,
                )
            elif (
                kind in _FRAME_KINDS
                and (state := record.state) in _FRAME_STATES
                and record.count < max_lines
                and record.size + len(text) <= max_bytes
            ):
                # a frame of a trace being assembled (15 % of a mixed log's lines): what
                # _continue and accepts() do with it (the state stays), without their calls
                if text.endswith(("{", "[")):
                    record.depth += 1
                elif record.depth and text.lstrip()[:1] in ("}", "]"):
                    record.depth -= 1
                record.add(line, state, now)
            else:
                if kind == MAYBE or (kind == OTHER and ":  " in text):
                    kind = resolve_prose(kind, text)
                self._continue(record, line, kind, now, out)
        self._skipped += skipped
        return out

    def _unwrap(self, line: RawLine, text: str, fields: dict) -> tuple[str, str]:
        """Feed the line a JSON wrapper carries in its place; the wrapper's level stays a hint."""
        level = fields.get("level") or fields.get("severity")
        # the level is kept: {"level", "message", "timestamp"} is winston's own JSON record as
        # much as Railway's export of a line (whose "error" may only mean stderr); a level the
        # wrapped text states itself still decides, and parse_plain lets a stated "error" win
        # only where the text has none
        if isinstance(level, str) and level.lower() != "stderr":
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
                if record.state == TENTATIVE:
                    self._split(record, out)
                else:
                    self._emit(record, out, truncated=False)
        return out

    # --- internals -----------------------------------------------------------------------------

    def _json(
        self,
        line: RawLine,
        key: str,
        now: float,
        out: list[LogEvent],
        event: LogEvent | None = None,
    ) -> None:
        """A JSON line: complete now, unless it is an error record a raw trace may follow.
        `event`: the line's event when the caller has parsed it already."""
        if event is None and self._errors_only:
            event = json_error_event(line)  # one decode at most, none for most INFO records
            if event is None:
                self._skipped += 1  # the usual JSON line: an INFO record, counted only
                return
        elif event is None:
            event = parse_line(line)
        if event.is_error and not event.frames and len(line.text) < self._max_bytes:
            record = Record(line, JSON, now, key)
            record.state, record.event = JSON_ERR, event
            self._open[key] = record
            return
        out.append(event)

    def _start(self, line: RawLine, kind: int, now: float, out: list[LogEvent], key: str) -> None:
        if len(line.text) >= self._max_bytes:
            self._single(line, kind, out)  # complete as it stands
            return
        if kind == K8S:
            self._single(line, kind, out)
            return
        self._open[key] = Record(line, kind, now, key)

    def _continue(
        self, record: Record, line: RawLine, kind: int, now: float, out: list[LogEvent]
    ) -> None:
        state = accepts(record, kind, line.text, line.timestamp)
        key = record.key
        if state is None:
            if record.state == TENTATIVE:
                # the header had no frame after it: it was a line of its own after all
                self._emit_part(record, out)
                header = record.lines[-1] if record.lines else record.head
                record = Record(header, EXC, record.touched, key)
                self._open[key] = record
                self._continue(record, line, kind, now, out)
                return
            del self._open[key]
            self._emit(record, out, truncated=False)
            if kind == JSON:
                self._json(line, key, now, out)
            else:
                self._start(line, kind, now, out, key)
            return
        if record.count >= self._max_lines or record.size + len(line.text) > self._max_bytes:
            del self._open[key]
            self._emit(record, out, truncated=True)
            if kind == JSON:
                self._json(line, key, now, out)
            else:
                self._start(line, kind, now, out, key)
            return
        text = line.text
        if text.endswith(("{", "[")):
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
        if event is None and self._errors_only and kind < TB and not can_be_error(line):
            self._skipped += 1
            return
        event = single_event(line, kind, event)
        if truncated:
            event.truncated = True
        out.append(event)

    def _emit(self, record: Record, out: list[LogEvent], *, truncated: bool) -> None:
        if record.lines is None:
            self._single(record.head, record.head_kind, out, record.event, truncated)
        else:
            out.append(build_event(record.lines, record.head_kind, truncated, record.event))

    def _emit_part(self, record: Record, out: list[LogEvent]) -> None:
        """The record without its probationary last line."""
        lines = record.lines or [record.head]
        if len(lines) == 2:
            self._single(lines[0], record.head_kind, out, record.event)
        else:
            out.append(build_event(lines[:-1], record.head_kind, False, record.event))

    def _split(self, record: Record, out: list[LogEvent]) -> None:
        header = record.lines[-1] if record.lines else record.head
        self._emit_part(record, out)
        self._single(header, EXC, out)
