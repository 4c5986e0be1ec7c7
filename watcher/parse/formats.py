"""One physical line -> LogEvent: a JSON object, logfmt, or plain text with a level prefix.

Pure functions, no I/O. The cheap checks come first (the first character, one anchored regex),
so an ordinary plain line costs a couple of regex matches and one LogEvent.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from watcher.model import ERROR_RANK, LEVEL_RANK, LogEvent, RawLine
from watcher.parse.levels import (
    LETTER_LEVELS,
    LEVEL_WORDS_FAST,
    level_word,
    normalize_level,
    syslog_level,
)
from watcher.parse.timestamps import parse_iso, parse_timestamp, prefix, prefix_end
from watcher.parse.traces import TRACE_KEYS, Trace, trace_from_fields

# A line that looked structured but did not parse carries this key in `fields` (value: the
# format it failed as); the pipeline counts those in Stats.parse_fallbacks via is_fallback().
FALLBACK_KEY = "parse_fallback"

_scan_once = json.JSONDecoder().scan_once

try:  # optional (`pip install watcher[fast]`): orjson decodes a log record ~2x faster than the
    # stdlib's C scanner, and serves the errors-only check (_check_loads), never an event
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - depends on the environment
    _fast_loads = None

# --- building the event ------------------------------------------------------------------------

_EVENT_ORDER = (
    "message",
    "source",
    "stream",
    "level",
    "timestamp",
    "logger",
    "format",
    "fields",
    "text",
    "exception_type",
    "exception_message",
    "frames",
    "first_line",
    "last_line",
    "line_count",
    "cursor",
    "truncated",
)
# Positional construction is 2.5x cheaper than keywords on the hot path; it is only used while
# model.LogEvent still starts with exactly these fields (appending new ones is fine).
_POSITIONAL = tuple(f.name for f in dataclasses.fields(LogEvent))[: len(_EVENT_ORDER)] == (
    _EVENT_ORDER
)


def make_event(
    line: RawLine,
    message: str,
    level: str | None,
    timestamp: float | None,
    logger: str | None,
    fmt: str,
    fields: dict[str, Any],
    trace: Trace | None = None,
) -> LogEvent:
    """A one-line LogEvent for `line`, with the source's own fields and timestamp as fallbacks."""
    if line.fields:
        if level is None:
            level = _level_from(line.fields)
        fields = {**line.fields, **fields}
    if timestamp is None:
        timestamp = line.timestamp
    exc_type = exc_msg = None
    frames: list[Any] = []
    if trace is not None:
        exc_type, exc_msg, frames = trace.exception_type, trace.exception_message, trace.frames
        if level is None:
            level = "error"
        if trace.causes and "causes" not in fields:
            # the chain of a trace carried in a field, as an assembled trace's (records.py):
            # "Caused by: …SQLException" names the failure its wrapper hides
            fields = {**fields, "causes": trace.causes}
    args = (
        message,
        line.source,
        line.stream,
        level,
        timestamp,
        logger,
        fmt,
        fields,
        line.text,
        exc_type,
        exc_msg,
        frames,
        line.line_no,
        line.line_no,
        1,
        line.cursor,
        line.truncated,
    )
    if _POSITIONAL:
        return LogEvent(*args)
    return LogEvent(**dict(zip(_EVENT_ORDER, args, strict=True)))


def is_fallback(event: LogEvent) -> bool:
    """True when the event's line looked structured (JSON) but did not parse."""
    return FALLBACK_KEY in event.fields


# --- JSON --------------------------------------------------------------------------------------

_MSG_KEYS = ("msg", "message", "event", "MESSAGE", "@m", "@message", "@mt", "log", "text")
_LEVEL_KEYS = (
    "level",
    "lvl",
    "severity",
    "levelname",
    "log.level",
    "loglevel",
    "level_name",
    "@l",
    "severity_text",
    "severityText",
    "error_severity",
)
_TS_KEYS = (
    "ts",
    "time",
    "timestamp",
    "@timestamp",
    "t",
    "@t",
    "datetime",
    "date",
    "asctime",
    "__REALTIME_TIMESTAMP",
)
_LOGGER_KEYS = ("logger", "logger_name", "loggerName", "log.logger", "name")


def _pop_text(obj: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str):
            del obj[key]
            return value
    return None


def _level_from(obj: dict[str, Any], pop: bool = False) -> str | None:
    if not obj:
        return None
    for key in _LEVEL_KEYS:
        if key in obj:
            level = normalize_level(obj[key])
            if level is not None:
                if pop:
                    del obj[key]
                return level
    priority = obj.get("PRIORITY")  # journald: a syslog severity as a string
    if isinstance(priority, str) and priority.isdecimal() and len(priority) == 1:
        return syslog_level(int(priority))
    nested = obj.get("log")  # ECS written nested: {"log": {"level": "error"}}
    if isinstance(nested, dict):
        return normalize_level(nested.get("level"))
    return None


_NESTED_LEVEL_KEYS = ("error_severity", "severity", "level", "severity_text", "levelname")


def nested_record(obj: dict[str, Any]) -> tuple[str, str | None] | None:
    """(level, message) of a record nested one level down, e.g. CloudNativePG's
    {"level": "info", "msg": "record", "record": {"error_severity": "FATAL", "message": …}}: the
    wrapper's level is the shipper's, the nested one is the database's."""
    for value in obj.values():
        if type(value) is dict:
            for key in _NESTED_LEVEL_KEYS:
                level = normalize_level(value.get(key))
                if level is not None:
                    message = value.get("message") or value.get("msg")
                    return level, message if isinstance(message, str) else None
    return None


def _pop_timestamp(obj: dict[str, Any]) -> float | None:
    for key in _TS_KEYS:
        if key in obj:
            timestamp = parse_timestamp(obj[key])
            if timestamp is not None:
                del obj[key]
                return timestamp
    return None


# key -> (role, rank): one pass over the record's keys finds the best key of each role, instead
# of probing ~25 candidate keys one by one (a third of the cost of a JSON line)
_MESSAGE, _LEVEL, _TIME, _LOGGER, _TRACE = range(5)
_ROLES: dict[str, tuple[int, int]] = {}
for _role, _keys in ((_MESSAGE, _MSG_KEYS), (_LEVEL, _LEVEL_KEYS), (_TIME, _TS_KEYS)):
    _ROLES.update({key: (_role, rank) for rank, key in enumerate(_keys)})
_ROLES.update({key: (_LOGGER, rank) for rank, key in enumerate(_LOGGER_KEYS)})
_ROLES.update({key: (_TRACE, 0) for key in TRACE_KEYS if key not in _ROLES})
_ROLES.update({"PRIORITY": (_LEVEL, 99)})  # journald; only read by the slow path


def _best_keys(obj: dict[str, Any]) -> tuple[list[str | None], bool]:
    best: list[str | None] = [None, None, None, None, None]
    ranks = [999, 999, 999, 999, 999]
    for key in obj:
        found = _ROLES.get(key)
        if found is not None:
            role, rank = found
            if rank < ranks[role]:
                best[role], ranks[role] = key, rank
    return best, best[_TRACE] is not None


def _take_text(obj: dict[str, Any], key: str | None, keys: tuple[str, ...]) -> str | None:
    if key is None:
        return None
    value = obj[key]
    if type(value) is str:
        del obj[key]
        return value
    return _pop_text(obj, keys)  # the best key holds a non-string: try the others


def _take_level(obj: dict[str, Any], key: str | None) -> str | None:
    if key is not None:
        level = normalize_level(obj[key])
        if level is not None:
            del obj[key]
            return level
    return _level_from(obj, pop=True)


def _take_timestamp(obj: dict[str, Any], key: str | None) -> float | None:
    if key is None:
        return None
    timestamp = parse_timestamp(obj[key])
    if timestamp is not None:
        del obj[key]
        return timestamp
    return _pop_timestamp(obj)


def _check_loads(text: str) -> Any:
    """_loads as far as the errors-only check can tell: through orjson when installed.

    orjson reads an integer beyond 64 bits as a float (10**20 -> 1e+20), which an event's fields
    would show but no level, trace key or nested record tells apart (a level of either is
    critical), so it decodes for the check only; the event is decoded by _loads."""
    if _fast_loads is not None:
        try:
            return _fast_loads(text)
        except ValueError:
            pass  # lone surrogates, NaN, huge nesting: the stdlib is more lenient, so ask it
    return _loads(text)


def _loads(text: str) -> Any:
    """json.loads (the stdlib's decoder); None when the text is not JSON."""
    try:
        # the C scanner itself: json.loads adds ~0.4 us of Python wrappers per line
        obj, end = _scan_once(text, 0)
    except (StopIteration, ValueError, RecursionError):
        return None
    if end != len(text) and not text[end:].isspace():
        return None  # "{…} trailing junk", which json.loads rejects as extra data
    if "\\u" in text:  # an escaped lone surrogate ("\\ud800") cannot be encoded or stored
        try:
            return scrub_surrogates(obj)
        except RecursionError:
            return None
    return obj


SURROGATE = re.compile("[\ud800-\udfff]")


def scrub_surrogates(value: Any) -> Any:
    """`value` with every lone surrogate in its strings (and keys) replaced by U+FFFD."""
    if isinstance(value, str):
        return SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {scrub_surrogates(k): scrub_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_surrogates(v) for v in value]
    return value


# parse_line's `decoded` when the caller has not decoded the line
_UNDECODED: Any = object()


def _parse_json(line: RawLine, obj: Any = _UNDECODED) -> LogEvent | None:
    if obj is _UNDECODED:
        obj = _loads(line.text)
    if type(obj) is not dict:
        return None
    best, has_trace = _best_keys(obj)
    message = _take_text(obj, best[_MESSAGE], _MSG_KEYS)
    level = _take_level(obj, best[_LEVEL])
    timestamp = _take_timestamp(obj, best[_TIME])
    logger = _take_text(obj, best[_LOGGER], _LOGGER_KEYS)
    trace = trace_from_fields(obj) if has_trace else None
    if (level is None or LEVEL_RANK[level] < ERROR_RANK) and 'severity"' in line.text:
        nested = nested_record(obj)
        if nested is not None and LEVEL_RANK[nested[0]] > LEVEL_RANK.get(level or "", -1):
            level, message = nested[0], nested[1] or message
    if message is None:
        message = line.text
    return make_event(line, message, level, timestamp, logger, "json", obj, trace)


# --- line wrappers -----------------------------------------------------------------------------

# A JSON object that only wraps one printed line (Railway's `railway logs --json`, Docker's
# json-file `{"log": "…\n", "stream": "stderr"}`, a shipper's envelope): the line inside is what
# the application wrote, and a trace printed over several lines arrives one wrapper per line.
_WRAPPER_TEXT = ("message", "log")
_WRAPPER_KEYS = frozenset(
    (
        *_WRAPPER_TEXT,
        "timestamp",
        "time",
        "ts",
        "@timestamp",
        "level",
        "severity",
        "stream",
        "attributes",
        "tags",
        "deploymentId",
        "deploymentInstanceId",
        "replica",
        "replicaId",
        "serviceId",
        "environmentId",
    )
)


def unwrap_json(text: str) -> tuple[str, dict[str, Any]] | None:
    """(the wrapped line, the wrapper's other fields) when `text` is a one-line wrapper, else None.

    Only objects made of wrapper keys count: an application's own JSON record has keys of its own
    (logger, request ids…) and is parsed as the structured record it is.
    """
    if text.count('":') > 12 or ('"message":' not in text and '"log":' not in text):
        return None
    obj = _loads(text)
    if type(obj) is not dict or not obj.keys() <= _WRAPPER_KEYS:
        return None
    for key in _WRAPPER_TEXT:
        value = obj.get(key)
        if type(value) is str:
            inner = value[:-1] if value.endswith("\n") else value
            if "\n" in inner or inner.lstrip().startswith("{"):
                return None  # a whole multi-line trace, or JSON inside: parse it as a record
            del obj[key]
            return inner, obj
    return None


# --- logfmt ------------------------------------------------------------------------------------

_LOGFMT_START = re.compile(r"[A-Za-z_][\w.\-]*=")
# an unterminated quote runs to the end of the line rather than failing the line; the value is
# unrolled (30% faster); a key starts only where a run of key characters starts, else findall
# re-scans a long run without "=" from each of its positions (quadratic: 30 s on a 64 KiB line)
_LOGFMT_PAIR = re.compile(r'(?<![^\s="])([^\s="]+)=("[^"\\]*(?:\\.[^"\\]*)*"?|\S*)')
_LOGFMT_KNOWN = frozenset(
    ("level", "lvl", "severity", "msg", "message", "ts", "time", "timestamp", "logger")
)
_LOGFMT_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def _unquote(value: str) -> str:
    if not value.startswith('"'):
        return value
    value = value[1:-1] if len(value) >= 2 and value.endswith('"') else value[1:]
    if "\\" in value:
        value = _LOGFMT_ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), value)
    return value


def _parse_logfmt(line: RawLine, pos: int, prefix_ts: float | None) -> LogEvent | None:
    pairs = _LOGFMT_PAIR.findall(line.text, pos)
    if len(pairs) < 2 and not (pairs and pairs[0][0] in _LOGFMT_KNOWN):
        return None  # "user=bob logged in" is prose with an equals sign, not logfmt
    fields: dict[str, Any] = {}
    for key, value in pairs:
        fields[key] = _unquote(value) if value[:1] == '"' else value
    message = _pop_text(fields, ("msg", "message"))
    level = None
    for key in ("level", "lvl", "severity", "at"):  # at=: Heroku's router and platform lines
        if key in fields:
            level = level_word(fields[key])
            if level is not None:
                del fields[key]
                break
    timestamp = _pop_timestamp(fields) if prefix_ts is None else prefix_ts
    logger = _pop_text(fields, ("logger",))
    text = line.text
    return make_event(line, message or text, level, timestamp, logger, "logfmt", fields)


# --- plain text --------------------------------------------------------------------------------

_PRI = re.compile(r"<(\d{1,3})>(?:1 )?")
# what may follow the timestamp: a separator, then the CRI "stdout F " of container runtimes
_AFTER_TS = re.compile(r"(?:\s*[|-]\s+|\s+)(?:std(?:out|err) [FP] )?")
# a level word where the line (after its timestamp) starts: "ERROR", "[error]", "<warn>",
# "production.ERROR:", "ERROR:root:msg"
_LEVEL_AT = re.compile(r"([\[(<]?)(?:[\w-]+\.)?([A-Za-z]{3,11})[\])>]?(?:(:)|(?=\s)|$)\s*")
_THREAD = re.compile(r"\[[^\]]{0,80}\]\s+")
# words that also start ordinary sentences ("Trace id", "Config loaded") count only when they
# are written as a level: upper case, bracketed, or followed by a colon
_PLAIN_START_WORDS = frozenset(("info", "debug", "warn", "warning", "error", "err", "fatal"))
_PY_LOGGER = re.compile(r"([\w.\-<>]+):")
_LOG4J_TAIL = re.compile(r"\s*(\[[^\]]{0,80}\]\s+)?([A-Za-z_$][\w$.]*)\s+-\s+")
_LEVEL_SCAN = re.compile(
    r"\b(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRIT|CRITICAL|FATAL|SEVERE|PANIC"
    r"|ALERT|EMERG)\b"
    r"|[\[<](?i:(trace|debug|info|notice|warn|warning|error|err|crit|critical|fatal|alert|emerg))[\]>]"
    r"|\b(?:level|lvl|at)=(\w+)"  # at=: Heroku's router and platform lines
)
_SCAN_WINDOW = 200
_HEADERISH = re.compile(r"(?:\[[^\]]*\]|[\d\s:.,/+\-TZ|])*")
_ANDROID = re.compile(r"([VDIWEFA])/([^(:]*?)\s*(?:\(\s*\d+\))?:\s?")
_LOGCAT = re.compile(r"\d\d-\d\d \d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+ ([VDIWEFA]) ([^:]*?)\s*: ?")
_GLOG = re.compile(r"([IWEF])\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ ([^\]\s]+)\] ?")
_RUBY_LOGGER = re.compile(r"[DIWEFAU], \[(\S+) #\d+\]\s+(\w+) -- ([^:]*): ?")


def _level_at(text: str, pos: int) -> tuple[str, int, str | None] | None:
    """(level, end, logger) when a level word starts at `pos`."""
    match = _LEVEL_AT.match(text, pos)
    if match is None:
        return None
    bracket, word, colon = match.groups()
    level = level_word(word)
    if level is None:
        return None
    if not (bracket or colon or word.isupper() or word.lower() in _PLAIN_START_WORDS):
        return None
    end = match.end()
    if colon and end == match.end(3):  # "ERROR:root:msg", Python logging's default format
        logger = _PY_LOGGER.match(text, end)
        if logger:
            return level, logger.end(), logger.group(1)
    return level, end, None


def _log4j_tail(text: str, pos: int) -> tuple[int, str | None]:
    """Skip "[thread] c.f.Logger - " after the level; a bare word needs the thread to count."""
    match = _LOG4J_TAIL.match(text, pos)
    if match and (match.group(1) or "." in match.group(2)):
        return match.end(), match.group(2)
    return pos, None


def _special_prefix(text: str) -> tuple[str | None, int, str | None, float | None] | None:
    """Android, logcat, glog/klog and Ruby Logger layouts: (level, end, logger, timestamp)."""
    first, second = text[:1], text[1:2]
    match: re.Match[str] | None
    if second == "/" and first in LETTER_LEVELS:
        match = _ANDROID.match(text)
        if match:
            return LETTER_LEVELS[match.group(1)], match.end(), match.group(2), None
    elif second.isdigit() and first in "IWEF":
        match = _GLOG.match(text)
        if match:
            return LETTER_LEVELS[match.group(1)], match.end(), match.group(2), None
    elif second == "," and first in LETTER_LEVELS:
        match = _RUBY_LOGGER.match(text)
        if match:
            level = level_word(match.group(2)) or LETTER_LEVELS.get(first)
            return level, match.end(), match.group(3) or None, parse_iso(match.group(1))
    elif first.isdigit() and text[2:3] == "-":
        match = _LOGCAT.match(text)
        if match:
            return LETTER_LEVELS[match.group(1)], match.end(), match.group(2), None
    return None


def _scan_level(text: str, pos: int) -> tuple[str | None, int]:
    """A level word further in: (level, where the message starts, or `pos` if unknown)."""
    match = _LEVEL_SCAN.search(text, pos, pos + _SCAN_WINDOW)
    if match is None:
        return None, pos
    word = match.group(1) or match.group(2) or match.group(3)
    level = level_word(word)
    # only a prefix of numbers, punctuation and [brackets] is a header worth cutting off
    if level and match.group(3) is None and _HEADERISH.fullmatch(text, pos, match.start()):
        return level, match.end()
    return level, pos


def _timestamp_at(text: str, pos: int) -> tuple[float, int] | None:
    """(timestamp, where what follows it starts) when a timestamp prefix starts at `pos`."""
    found_ts = prefix(text, pos)
    if found_ts is None:
        return None
    timestamp, pos = found_ts
    return timestamp, _after_timestamp(text, pos)


def _after_timestamp(text: str, pos: int) -> int:
    """Where what follows a timestamp that ends at `pos` starts (past its separator)."""
    if text[pos : pos + 1] == " " and text[pos + 1 : pos + 2] not in (" ", "|", "-", "s"):
        return pos + 1  # the usual single space: no regex needed
    after = _AFTER_TS.match(text, pos)
    return pos if after is None else after.end()


def _stated_below_error(text: str) -> bool:
    """True when a plain line that starts with a digit states a level below error right after
    its timestamp: _parse_plain reads it there, and nothing after it changes it."""
    end = prefix_end(text, 0)  # where _timestamp_at's time ends, without its epoch
    if end is None:
        return False
    pos = _after_timestamp(text, end)
    if _LOGFMT_START.match(text, pos):
        return False  # "2024-… level=info …" is logfmt: its pairs decide
    found = _level_at(text, pos)
    if found is None and text[pos : pos + 1] == "[":
        # "2026-… [scheduling-1] INFO c.f.Job - …": the thread before the level, as
        # _parse_plain reads it (and there, too, the level found is final for a digit-first line)
        thread = _THREAD.match(text, pos)
        found = _level_at(text, thread.end()) if thread else None
    return found is not None and LEVEL_RANK[found[0]] < ERROR_RANK


# "2026-11-21 06:00:00,039 INFO …": where _stated_below_error finds the level after the time
# (prefix() ends the time at the space or, if fromisoformat refuses it, just after it: either
# way _after_timestamp moves to the level word, which _level_at reads as upper case + space)
QUIET_PLAIN_HEAD = _QUIET_PLAIN_HEAD = re.compile(
    r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})? (?:INFO|DEBUG|WARN|WARNING|NOTICE|TRACE) "
)
# "time=… level=info …": the first two logfmt pairs (no quote, so no quoted value hides them);
# the "level" key is the first _parse_logfmt looks at, unless a later "level=" repeats it
_QUIET_LOGFMT_HEAD = re.compile(
    r"time=[^\s\"=]+ level=(?:info|INFO|debug|DEBUG|warn|WARN|warning|WARNING|trace|TRACE) "
)
# an access log line's client address: an IPv4 address, then a space
_IPV4_FIRST = re.compile(r"\d{1,3}(?:\.\d{1,3}){3} ")


def _quiet_access_line(text: str) -> bool:
    """True for an access log line (a client address first) that _parse_plain reads without a
    level: no time opens it, no level word is where the parser looks (no "ERROR", "[error]",
    "level=error" in its scan window, no PostgreSQL severity), and levelless_level reads an
    access line as traffic ("GET /api/errors/summary" does not make the request an error)."""
    return (
        _IPV4_FIRST.match(text) is not None  # no timestamp, level word or logcat layout at 0
        and ":  " not in text
        and (not _may_scan_level(text) or _LEVEL_SCAN.search(text, 0, _SCAN_WINDOW) is None)
        and ACCESS_LINE.search(text) is not None
    )


# what each of _LEVEL_SCAN's three alternatives needs in its window: an upper-case level word
# (WARNING, ERROR, CRITICAL contain WARN, ERR, CRIT), "[" or "<" before a level word in any case
# (lower-cased: the prefixes of its words), or a level key
_SCAN_UPPER = ("TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "ERR", "CRIT", "FATAL", "SEVERE",
               "PANIC", "ALERT", "EMERG")  # fmt: skip
_SCAN_BRACKETED = ("trace", "debug", "info", "notice", "warn", "err", "crit", "fatal", "alert",
                   "emerg")  # fmt: skip


def _may_scan_level(text: str) -> bool:
    """False only when _LEVEL_SCAN.search(text, 0, _SCAN_WINDOW) cannot match: its search tries
    a dozen alternatives at every position (~15 µs on a 170-character access line), these
    substring checks cost a tenth of that."""
    window = text[:_SCAN_WINDOW]
    if not window.isascii():
        return True  # (?i:) also matches U+0130, U+0131, U+017F, U+212A: the regex decides
    for word in _SCAN_UPPER:  # a plain loop: any() with a generator costs more
        if word in window:
            return True
    if "level=" in window or "lvl=" in window or "at=" in window:
        return True
    for opener in "[<":
        at = window.find(opener)
        while at >= 0:
            if window[at + 1 : at + 9].lower().startswith(_SCAN_BRACKETED):
                return True
            at = window.find(opener, at + 1)
    return False


def _logfmt_below_error(text: str) -> bool:
    """True when parse_line reads `text` (a letter first, no backslash) as logfmt with a level
    below error: _parse_logfmt's pairs and its choice of level key, without the rest of the
    event (timestamp, message, fields) that a full parse of the line builds."""
    pairs = _LOGFMT_PAIR.findall(text)
    if len(pairs) < 2 and not (pairs and pairs[0][0] in _LOGFMT_KNOWN):
        return False  # prose: the plain parser decides
    fields = dict(pairs)  # a repeated key keeps its last value, as in _parse_logfmt
    for key in ("level", "lvl", "severity", "at"):
        value = fields.get(key)
        if value is not None:
            level = level_word(_unquote(value) if value[:1] == '"' else value)
            if level is not None:
                return LEVEL_RANK[level] < ERROR_RANK
    return False


def _parse_plain(line: RawLine) -> LogEvent:
    text = line.text
    pos = 0
    level: str | None = None
    timestamp: float | None = None
    logger: str | None = None
    first = text[:1]
    if first == "<":
        match = _PRI.match(text)
        if match:
            level, pos = syslog_level(int(match.group(1)) & 7), match.end()
            first = text[pos : pos + 1]
    if first.isdigit() or first == "[":
        found_ts = _timestamp_at(text, pos)
        if found_ts is not None:
            timestamp, pos = found_ts
            if _LOGFMT_START.match(text, pos):  # "2024-… level=info msg=…" (k8s, docker)
                event = _parse_logfmt(line, pos, timestamp)
                if event is not None:
                    return event
    found = _level_at(text, pos)
    if found is None and text[pos : pos + 1] == "[":
        thread = _THREAD.match(text, pos)
        found = _level_at(text, thread.end()) if thread else None
    weak = False
    if found is not None:
        level, pos, logger = found
        # "error budget remaining 99%": a lower-case word is a level only when nothing says
        # otherwise; the source's own level (a Railway or Loki attribute) does
        weak = text[pos - 1 : pos] == " " and text[:1].islower()
        if logger is None:
            pos, logger = _log4j_tail(text, pos)
        if logger is None and text[pos : pos + 1] == "[":
            named = _BRACKET_LOGGER.match(text, pos)  # "ERROR [app.checkout] msg"
            if named:
                pos, logger = named.end(), named.group(1)
    elif pos == 0 and (special := _special_prefix(text)) is not None:
        level, pos, logger, timestamp = special
    elif ":  " in text and (pg := _PG_SEVERITY.search(text, pos, pos + _SCAN_WINDOW)) is not None:
        # PostgreSQL writes "SEVERITY:  message" (two spaces) after any log_line_prefix: what
        # comes before it (pid, user@db, session ids) is the prefix, whatever its layout
        level, pos, logger = level_word(pg.group(1)), pg.end(), logger or "postgres"
    else:
        scanned, start = _scan_level(text, pos)
        if scanned is not None:
            level = scanned
            if start != pos:
                pos, logger = _log4j_tail(text, start)
    message = text[pos:].strip() if pos else text.strip()
    if weak and line.fields:
        level = _level_from(line.fields) or level
    if level is None and line.fields:
        # a level the source states beats a guess from the words, except the two a shipper
        # gives by stream (stdout "info", stderr "error"): those say nothing about the line
        stated = _level_from(line.fields)
        if stated not in (None, "info", "error"):
            level = stated
    if level is None:
        level = levelless_level(message)
    return make_event(line, message, level, timestamp, logger, "plain", {})


# a logger name in brackets after the level: dotted words with a letter, not a pid or a time
_BRACKET_LOGGER = re.compile(r"\[([A-Za-z_][\w$-]*(?:\.[\w$-]+)*)\]\s+")
_PG_SEVERITY = re.compile(
    r"(?<![\w.])(LOG|ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|DEBUG\d?|DETAIL|HINT|STATEMENT"
    r"|CONTEXT|QUERY|LOCATION):  "
)
# A line with no level that still says it is an error: an exception class with its message
# ("Command raised an exception: ServerSelectionTimeoutError: …"), an error from an API
# ("API Error (529 …)"), a line that opens with "Error"/"Fatal"/"Panic", the errno phrases Go's
# net and os packages (and most C libraries) end an error with. Searched from the literal
# ("Error", "Exception"): a pattern that starts at every capital letter of a long line is slow.
_CLASS_TAIL = re.compile(r"(?:Error|Exception)\b(?::\s|\s\(|$)")
_API_ERROR = re.compile(r"\b(?:API|HTTP|[Uu]pstream|[Pp]rovider) [Ee]rror\b")
_OPENS_AS_ERROR = re.compile(r"(?:Error|ERROR|Fatal|FATAL|Panic)\b")
_ERRNO_PHRASES = (
    "context deadline exceeded",
    "connection refused",
    "connection reset by peer",
    "i/o timeout",
    "no such host",
    "broken pipe",
)
# a kubectl describe / get events row of type Warning (BackOff, FailedScheduling, SystemOOM …)
_K8S_WARNING_ROW = re.compile(
    r"(?:\S+\s+){0,6}?Warning\s+([A-Z][a-z]*[A-Z]\w*|Unhealthy|Evicted)\s"
)
_WARNING_THEN_SPACE = re.compile(r"Warning\s")
# access log lines, and the request summaries of frameworks (Rails' "Completed 500 … in 25ms")
ACCESS_LINE = re.compile(r'"[A-Z]+ \S+ HTTP/[\d.]+"|HTTP/[\d.]+" \d{3}|^Completed \d{3} ')


# Level-less error reports that no level fragment names (levelless_level decides; can_be_error
# only lets the line through to it): exception names and errno phrases of Go's log and CLIs.
_LEVELLESS_FRAGMENTS = (
    "exception",
    "exceeded",
    "refused",
    "reset by peer",
    "i/o timeout",
    "no such host",
    "broken pipe",
)
# what _reports_error and _K8S_WARNING_ROW can match, lower-cased: a cheap "cannot match"
_LEVELLESS_HINTS = ("error", "fatal", "panic", "warning", *_LEVELLESS_FRAGMENTS)


def _reports_error(message: str, low: str) -> bool:
    if _OPENS_AS_ERROR.match(message) or ("rror" in message and _API_ERROR.search(message)):
        return True
    for match in _CLASS_TAIL.finditer(message):
        start = match.start()  # the class name is the word that ends here: CamelCase
        word = start
        while word > 0 and message[word - 1].isalnum():
            word -= 1
        if message[word : word + 1].isupper():
            return True
    for phrase in _ERRNO_PHRASES:  # noqa: SIM110
        if phrase in low:
            return True
    return False


def levelless_level(message: str) -> str | None:
    """The level "error" for a line without a level word that reports an error, else None."""
    low = message.lower()
    for hint in _LEVELLESS_HINTS:
        if hint in low:
            break
    else:
        return None  # the regexes below cannot match: spare them (most level-less lines)
    if _reports_error(message, low) or _K8S_WARNING_ROW.match(message):
        # an access log line quoting an error path or status is traffic, not an error report
        return None if ACCESS_LINE.search(message) else "error"
    return None


# --- the cheap pre-check ------------------------------------------------------------------------

# Lower-cased fragments that every level word at error or above contains (checked against
# WORD_LEVELS by the tests): a plain or logfmt line with none of them cannot get such a level.
ERROR_FRAGMENTS = ("err", "eror", "sever", "crit", "fatal", "panic", "alert", "emerg", "fail")
# A line naming info or debug has a level, and most lines do: only the rest pay for the
# _LEVELLESS_FRAGMENTS (defined with levelless_level above).
# what a plain line needs for an error verdict: a level word at error or above, or (no level
# found) a level-less report; checked in one loop
_PLAIN_ALARMS = (*ERROR_FRAGMENTS, *_LEVELLESS_FRAGMENTS)
# first characters of the layouts whose level is a letter or a number, not a word
_CODED_FIRST = frozenset("<EFCA")
# Ruby Logger severity letters below error (E, F, A are _CODED_FIRST: always parsed)
_RUBY_QUIET_FIRST = frozenset("DIWU")
_LEVEL_ORDER = (*_LEVEL_KEYS, "PRIORITY")  # the ranks _best_keys gives the level keys


def _peek_json_level(obj: dict[str, Any]) -> str | None:
    """The level _take_level would find, without removing anything from the record."""
    for key in _LEVEL_ORDER:
        if key in obj:
            level = normalize_level(obj[key])
            return level if level is not None else _level_from(obj)
    return _level_from(obj)


def _json_can_be_error(text: str) -> bool:
    obj = _check_loads(text)
    if type(obj) is not dict:
        return True  # the full parse falls back to plain text and marks it
    return _record_can_be_error(obj, text)


def _record_can_be_error(obj: dict[str, Any], text: str) -> bool:
    """Whether the decoded JSON record `obj` (of the line `text`) can parse to an error."""
    if not obj.keys().isdisjoint(TRACE_KEYS):
        return True
    level = _peek_json_level(obj)
    if level is not None and LEVEL_RANK[level] >= ERROR_RANK:
        return True
    # a nested database record names its severity "error_severity" (CloudNativePG) or "severity"
    nested = nested_record(obj) if 'severity"' in text else None
    return nested is not None and LEVEL_RANK[nested[0]] >= ERROR_RANK


def can_be_error(line: RawLine) -> bool:
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
    elif first == "a":
        # Heroku's router, "at=info method=GET …" (2 % of a mixed log's lines): _parse_logfmt
        # reads two pairs at least and its level from "at" when no later pair is "at", "level",
        # "lvl" or "severity" (a key containing one of those only makes this proof fail)
        if (
            text.startswith("at=info method=")
            and text.find("at=", 3) < 0
            and "level=" not in text
            and "lvl=" not in text
            and "severity=" not in text
        ):
            return False
    elif text[1:3] == ", " and first in _RUBY_QUIET_FIRST:
        # Ruby's Logger, "I, [time #pid]  INFO -- prog: msg" (2 % of a mixed log's lines): no
        # level word at 0 (one letter, then ","), so _parse_plain's level is _special_prefix's,
        # final whatever words follow
        ruby = _RUBY_LOGGER.match(text)
        if ruby is not None:
            level = level_word(ruby.group(2)) or LETTER_LEVELS.get(first)
            if level is not None and LEVEL_RANK[level] < ERROR_RANK:
                return False
    low = text.lower()
    # any of _PLAIN_ALARMS (a test checks the list), written out: a loop over the tuple cost
    # ~2,000 instructions more per line that reaches it (an access line, 15 % of a mixed log)
    if (
        "err" in low
        or "eror" in low
        or "sever" in low
        or "crit" in low
        or "fatal" in low
        or "panic" in low
        or "alert" in low
        or "emerg" in low
        or "fail" in low
        or "exception" in low
        or "exceeded" in low
        or "refused" in low
        or "reset by peer" in low
        or "i/o timeout" in low
        or "no such host" in low
        or "broken pipe" in low
    ):
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


# level words normalize_level reads below error (pino's numbers 10-49 are checked as numbers)
QUIET_WORDS = _QUIET_WORDS = frozenset(
    word for word in LEVEL_WORDS_FAST if LEVEL_RANK[normalize_level(word)] < ERROR_RANK
)


def json_error_event(line: RawLine, checked: Any = _UNDECODED) -> LogEvent | None:
    """parse_line(line) for a JSON line ("{…") that can_be_error lets through, else None.
    `checked`: what check_json(line.text) gave, when the caller has decoded the line already.

    Without orjson the check and the parse share one decode (an error line used to be decoded
    twice); with it, orjson decodes for the check and the stdlib only the lines that pass. (A
    substring pre-check that skips the decode of lines it proves cannot be errors was measured
    and dropped: the C decoder costs less than the ~18 substring searches and the level-number
    regex such a proof needs; bench/RESULTS.md, issue 15 parse.)"""
    decoded = _UNDECODED
    if not (line.fields and _fields_say_error(line.fields)):
        text = line.text
        if checked is not _UNDECODED:
            pass
        elif _fast_loads is not None:  # _check_loads(text), without its call
            try:
                checked = _fast_loads(text)
            except ValueError:
                checked = _loads(text)
        else:
            checked = _loads(text)
        if type(checked) is dict:
            # the usual record (~30 % of a mixed log's lines) states its level under "level" in
            # a common spelling: one lookup decides what _record_can_be_error's three calls do
            # ("level" is the first key _peek_json_level looks at)
            value = checked.get("level")
            kind = type(value)
            if (
                (value in _QUIET_WORDS if kind is str else kind is int and 10 <= value < 50)
                and checked.keys().isdisjoint(TRACE_KEYS)
                and 'severity"' not in text
            ):
                return None
            if not _record_can_be_error(checked, text):
                return None
        if _fast_loads is None or (type(checked) is dict and _decodes_alike(checked)):
            # the stdlib's own result, or orjson's where it is the same: the event takes it (a
            # second decode of an error line, often a whole trace in a field, was ~10 % of it)
            decoded = checked
    return parse_line(line, decoded)


# orjson reads an integer beyond 64 bits (> 2**64 - 1 or < -2**63) as a float this large or more
_INT64_FLOAT = 2.0**63
_DEEPEST = 100  # nesting the stdlib decodes as orjson does (its recursion limit is ~1000)


def _decodes_alike(obj: dict[str, Any] | list[Any], depth: int = 0) -> bool:
    """Whether `obj`, orjson's decode of a JSON line (or _loads' when orjson failed), is what
    _loads gives: the same values, keys and order (floats: both round correctly; a repeated key:
    both keep the last value at the first place; lone surrogates, NaN and 1e400 make orjson
    fail). Not where a float could be an integer beyond 64 bits, nor deeper than _DEEPEST: the
    stdlib fails past its recursion limit. (A regex for 19 digits in the text cost 3x the
    second decode it saves.)"""
    if depth > _DEEPEST:
        return False
    for value in obj.values() if type(obj) is dict else obj:
        kind = type(value)
        if kind is float:
            if not -_INT64_FLOAT < value < _INT64_FLOAT:
                return False
        elif (kind is dict or kind is list) and not _decodes_alike(value, depth + 1):
            return False
    return True


def check_json(text: str) -> Any:
    """_check_loads(text) (orjson's decode when installed, else the stdlib's): the decode the
    errors-only check reads; json_error_event takes it as `checked`."""
    if _fast_loads is not None:
        try:
            return _fast_loads(text)
        except ValueError:
            pass
    return _loads(text)


def _fields_say_error(fields: dict[str, Any]) -> bool:
    # labels without a level (most Loki streams) must not force every line to the full parse
    level = _level_from(dict(fields))
    return level is not None and LEVEL_RANK.get(level, 0) >= ERROR_RANK


# --- entry point -------------------------------------------------------------------------------


def parse_line(line: RawLine, decoded: Any = _UNDECODED) -> LogEvent:
    """One physical line -> LogEvent (format json|logfmt|plain). Never raises on any text.

    `decoded`: what _loads(line.text) gave for a JSON line a caller has decoded already (it is
    consumed: the event takes its fields)."""
    text = line.text
    first = text[:1]
    try:
        if first == "{":
            event = _parse_json(line, decoded)
            if event is not None:
                return event
            event = _parse_plain(line)
            event.fields[FALLBACK_KEY] = "json"
            return event
        if first.isalpha() and _LOGFMT_START.match(text):
            event = _parse_logfmt(line, 0, None)
            if event is not None:
                return event
        return _parse_plain(line)
    except Exception:  # a parser bug must cost one line's structure, never the pipeline
        event = make_event(line, text, None, None, None, "plain", {})
        event.fields[FALLBACK_KEY] = "error"
        return event
