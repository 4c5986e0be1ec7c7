"""Frozen copies of the errors-only line path as it was before issue 15's fourth session
(main 1055de6): Assembler.feed_batch, formats.can_be_error and linekinds.indented_kind.

tests/test_lines_equivalence.py holds the fast paths of watcher/parse/multiline.py (the JSON
decode before the wrapper check, the quiet-level verdicts taken inline, the indented-line kinds),
formats.can_be_error (its alarm fragments written out) and indented_kind to what these give.
Only the names of the frozen functions they call changed; everything else is imported.
"""

from __future__ import annotations

from watcher.model import LogEvent, RawLine
from watcher.parse.formats import (
    _CODED_FIRST,
    _LOGFMT_START,
    _PLAIN_ALARMS,
    _QUIET_LOGFMT_HEAD,
    _QUIET_PLAIN_HEAD,
    _WARNING_THEN_SPACE,
    _fields_say_error,
    _json_can_be_error,
    _logfmt_below_error,
    _quiet_access_line,
    _stated_below_error,
    json_error_event,
    unwrap_json,
)
from watcher.parse.linekinds import (
    _BRACKET_ERROR,
    _INDENTED_LOG,
    _K8S_WARNING,
    BLANK,
    EXC,
    FRAME,
    INDENT,
    JSON,
    K8S,
    MAYBE,
    OPEN,
    OTHER,
    PG,
    PROSE,
    TB,
    line_kind,
    may_have_prefix,
    resolve_prose,
)
from watcher.parse.multiline import (
    _FRAME_KINDS,
    _FRAME_STATES,
    _HELD_KINDS,
    Assembler,
    _after_timestamp,
)
from watcher.parse.prefixes import strip_prefix
from watcher.parse.records import Record, repeats_header, single_event


def reference_can_be_error(line: RawLine) -> bool:
    """False only when parse_line(line) certainly gives an event that is not an error.

    Costs a fraction of parse_line, so a caller that only wants the errors (the pipeline) parses
    just the lines this lets through. True is not a verdict: the full parse decides.
    """
    if line.fields and _fields_say_error(line.fields):
        return True  # the source's own fields (Railway attributes, Loki metadata) give the level
    text = line.text
    first = text[:1]
    if first == "{":
        return _json_can_be_error(text)
    if first in _CODED_FIRST and (first == "<" or text[1:2] in ("/", ",") or text[1:2].isdigit()):
        return True  # syslog <PRI>, Android "E/", Ruby Logger "E, [", glog "E0101"
    if first.isdigit() and text[2:3] == "-":
        return True  # logcat "01-31 12:00:00.000  1  2 E tag: msg"
    if "\\" in text:
        return True  # logfmt unescaping turns "E\\RROR" into a level word
    # the two commonest layouts that state a level below error first, decided by one anchored
    # match instead of the ~16 searches below (most of a plain line's cost in the assembler)
    if first.isdigit():
        if text[4:5] == "-" and _QUIET_PLAIN_HEAD.match(text):
            return False  # _stated_below_error(text), proven by its layout
    elif (
        first == "t"
        and (quiet := _QUIET_LOGFMT_HEAD.match(text)) is not None
        and text.find("level=", quiet.end()) < 0
    ):
        return False  # _logfmt_below_error(text): no later "level" key overrides it
    low = text.lower()
    # a plain loop: any() with a generator costs more than the searches themselves
    for fragment in _PLAIN_ALARMS:
        if fragment in low:
            # "2026-… INFO [api] order validated, no validation errors": a level below error
            # where the parser reads it is final whatever words follow; a full parse of such a
            # line cost ~10 µs, 8 % of the lines of bench/genlogs.py's mix (issue 15 parse)
            if first.isdigit():
                return not (_stated_below_error(text) or _quiet_access_line(text))
            # "level=INFO msg=… errors_total=0": the logfmt level decides, as after a timestamp
            return not (first.isalpha() and _LOGFMT_START.match(text) and _logfmt_below_error(text))
    if "warning" in low:  # a Kubernetes Warning event row, else a warning
        # what _K8S_WARNING_ROW needs: "Warning" and any whitespace (kubectl aligns its columns
        # with several spaces, but one is enough for the row to be read as an error)
        return _WARNING_THEN_SPACE.search(text) is not None
    # ("info", "debug" or "http/" in the line used to end the check here, before the level-less
    # fragments: "some information FooException: bad" has no level and is an error)
    return False


def reference_indented_kind(text: str) -> int:
    """What a line that starts with white space is: blank, a frame, an indented log line…"""
    if text.isspace():
        return BLANK
    if text[1:2].isspace() and _INDENTED_LOG.match(text):
        return OTHER
    stripped = text.lstrip()
    if stripped.startswith('File "'):
        return FRAME
    if stripped[:1] == "[" and _BRACKET_ERROR.match(text):
        return EXC
    if "Warning" in text and _K8S_WARNING.match(text):
        return K8S
    return INDENT


class ReferenceAssembler(Assembler):
    """The Assembler with its frozen feed_batch."""

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
        for line in lines:
            text = line.text
            key = line.stream
            first = text[:1]
            if first.isdigit() and text[10:11] != "T" and "\x1b" not in text:
                kind = OTHER  # the usual timestamped line: nothing to strip, a record start
            elif first.isdigit() or first == "[":
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
                wrapped = unwrap_json(text) if ('"message":' in text or '"log":' in text) else None
                if wrapped is not None:
                    text, key = self._unwrap(line, *wrapped)
                    kind = line_kind(text)
                    if kind == MAYBE:
                        kind = OTHER  # a wrapped line is a log entry of its own, not a run-on
            elif (first == " " or first == "\t") and not may_have_prefix(text, first):
                # a trace frame or a continuation: nothing to strip, and no dispatch needed
                kind = reference_indented_kind(text)
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
                        and not reference_can_be_error(head)
                    ):
                        skipped += 1  # what _single() does, without its call
                    else:
                        self._single(head, record.head_kind, out, record.event)
                    spare = record
                if errors_only:
                    found = json_error_event(line)  # one decode at most, none for most records
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
                    and not reference_can_be_error(head)
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
