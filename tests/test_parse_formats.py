"""parse_line: format detection, levels, timestamps, messages, fields, never raising."""

from __future__ import annotations

import json

import pytest

from watcher.model import LEVELS, LogEvent, RawLine
from watcher.parse import formats
from watcher.parse.formats import FALLBACK_KEY, is_fallback, parse_line
from watcher.parse.levels import normalize_level
from watcher.parse.timestamps import parse_timestamp

T0 = 1704110400.0  # 2024-01-01T12:00:00Z


def parse(text: str, **kwargs: object) -> LogEvent:
    return parse_line(RawLine(text, source="app", stream="s1", cursor=7, line_no=3, **kwargs))


def test_json_structlog_line() -> None:
    """A structlog JSON line gives message, level, timestamp, logger and the remaining fields."""
    event = parse(
        '{"event": "user login", "level": "warning", "timestamp": "2024-01-01T12:00:00Z",'
        ' "logger": "app.auth", "user_id": 42}'
    )
    assert event.format == "json"
    assert (event.message, event.level, event.timestamp) == ("user login", "warning", T0)
    assert event.logger == "app.auth"
    assert event.fields == {"user_id": 42}


def test_json_pino_numeric_level_and_millis() -> None:
    """pino's numeric levels and epoch-millisecond times are understood."""
    event = parse('{"level":50,"time":1704110400123,"pid":1,"hostname":"h","msg":"db down"}')
    assert (event.level, event.message) == ("error", "db down")
    assert event.timestamp == pytest.approx(T0 + 0.123)
    assert event.fields == {"pid": 1, "hostname": "h"}


@pytest.mark.parametrize(
    ("number", "level"),
    [(10, "trace"), (20, "debug"), (30, "info"), (40, "warning"), (50, "error"), (60, "critical")],
)
def test_pino_level_numbers(number: int, level: str) -> None:
    """Each bunyan/pino level number maps onto its level name."""
    assert parse(f'{{"level": {number}, "msg": "x"}}').level == level


@pytest.mark.parametrize(
    "line",
    [
        '{"lvl": "err", "msg": "x"}',
        '{"severity": "ERROR", "message": "x"}',
        '{"levelname": "ERROR", "message": "x"}',
        '{"log.level": "error", "message": "x"}',
        '{"log": {"level": "error"}, "message": "x"}',
        '{"PRIORITY": "3", "MESSAGE": "x"}',
    ],
)
def test_json_level_keys(line: str) -> None:
    """Every supported JSON level key (and journald's PRIORITY) yields level error."""
    assert parse(line).level == "error"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"2024-01-01T12:00:00Z"', T0),
        ('"2024-01-01T12:00:00"', T0),  # naive means UTC
        ('"2024-01-01T14:00:00+02:00"', T0),
        ('"2024-01-01 12:00:00,500"', T0 + 0.5),
        ('"2024-01-01T12:00:00.123456789Z"', T0 + 0.123456),
        ("1704110400", T0),
        ("1704110400.5", T0 + 0.5),
        ("1704110400000", T0),
        ("1704110400000000", T0),
        ("1704110400000000000", T0),
        ('"1704110400"', T0),
    ],
)
def test_json_timestamps(value: str, expected: float) -> None:
    """ISO-8601/RFC 3339 strings and epoch seconds/millis/micros/nanos all become epoch seconds."""
    assert parse(f'{{"ts": {value}, "msg": "x"}}').timestamp == pytest.approx(expected, abs=1e-5)


def test_raw_line_timestamp_used_when_line_has_none() -> None:
    """The source's timestamp fills in for a line without one, and never overrides one."""
    assert parse("no time here", timestamp=5.0).timestamp == 5.0
    assert parse('{"ts": 1704110400, "msg": "x"}', timestamp=5.0).timestamp == T0


def test_source_fields_merge_under_parsed_fields() -> None:
    """RawLine.fields are kept, give a level when the line has none, and lose to parsed keys."""
    event = parse('{"msg": "x", "pod": "b"}', fields={"pod": "a", "ns": "n", "level": "warn"})
    assert event.fields == {"pod": "b", "ns": "n", "level": "warn"}
    assert event.level == "warning"


def test_event_identity_fields_copied_from_raw_line() -> None:
    """source, stream, cursor, text and the line span come from the RawLine."""
    event = parse("hello", truncated=True)
    assert (event.source, event.stream, event.cursor, event.text) == ("app", "s1", 7, "hello")
    assert (event.first_line, event.last_line, event.line_count) == (3, 3, 1)
    assert event.truncated


def test_logfmt_line() -> None:
    """A logrus/go-kit logfmt line: quoted values, level, time, msg, and the other pairs."""
    event = parse(
        'time="2024-01-01T12:00:00Z" level=error msg="failed to connect" err="dial tcp: x" n=3'
    )
    assert event.format == "logfmt"
    assert (event.level, event.message, event.timestamp) == ("error", "failed to connect", T0)
    assert event.fields == {"err": "dial tcp: x", "n": "3"}


def test_logfmt_escapes_and_unterminated_quote() -> None:
    """Escaped quotes are unescaped and an unterminated quoted value runs to the end."""
    event = parse(r'level=info msg="say \"hi\"" detail="never closed')
    assert event.message == 'say "hi"'
    assert event.fields == {"detail": "never closed"}


def test_prose_with_equals_sign_is_plain() -> None:
    """One key=value pair at the start of prose is not enough to call a line logfmt."""
    assert parse("user=bob logged in").format == "plain"


def test_timestamp_then_logfmt_cri_line() -> None:
    """A kubelet CRI line (timestamp, stream, tag) wrapping logfmt is parsed as logfmt."""
    event = parse('2024-01-01T12:00:00.5Z stdout F level=warn msg="slow query"')
    assert (event.format, event.level, event.message) == ("logfmt", "warning", "slow query")
    assert event.timestamp == T0 + 0.5


@pytest.mark.parametrize(
    ("line", "level", "logger", "message"),
    [
        ("2024-01-01 12:00:00,123 ERROR [main] c.f.Bar - boom", "error", "c.f.Bar", "boom"),
        ("12:00:00.123 [main] WARN c.f.Bar - slow", "warning", "c.f.Bar", "slow"),
        ("ERROR:root:something failed", "error", "root", "something failed"),
        ("WARNING:app.db:pool low", "warning", "app.db", "pool low"),
        ("[error] upstream closed", "error", None, "upstream closed"),
        ("[2024-01-01 12:00:00] production.ERROR: Laravel", "error", None, "Laravel"),
        ("2024/01/01 12:00:00 [error] 12#0: connect() failed", "error", None, None),
        ("E/ActivityManager( 123): crash", "error", "ActivityManager", "crash"),
        ("E0101 12:00:00.123456   1 main.go:12] klog says", "error", "main.go:12", "klog says"),
        ("E, [2024-01-01T12:00:00.1 #1]  ERROR -- app: boom", "error", "app", "boom"),
        ("03-17 16:13:38.811  1702  2395 W Tag: careful", "warning", "Tag", "careful"),
        ("FATAL: out of memory", "critical", None, "out of memory"),
        ("panic: boom", "critical", None, "boom"),
        ("2024-01-01T12:00:00Z CRITICAL disk", "critical", None, "disk"),
        ("2024-01-01T12:00:00Z notice: rotated", "notice", None, "rotated"),
        ("2024-01-01T12:00:00Z DEBUG x", "debug", None, "x"),
        ("2024-01-01T12:00:00Z TRACE x", "trace", None, "x"),
        ("<11>Jan  1 12:00:00 host app[1]: disk failure", "error", None, None),
        ("Jan  1 12:00:00 host app[1]: ERROR disk failure", "error", None, None),
        ("just a sentence", None, None, "just a sentence"),
        ("Config loaded from /etc", None, None, "Config loaded from /etc"),
    ],
)
def test_plain_levels(
    line: str, level: str | None, logger: str | None, message: str | None
) -> None:
    """Plain layouts: level prefixes, brackets, log4j, Python logging, Android, glog, syslog."""
    event = parse(line)
    assert event.format == "plain"
    assert event.level == level
    assert event.logger == logger
    if message is not None:
        assert event.message == message


def test_plain_timestamp_prefixes() -> None:
    """Common timestamp prefixes of plain lines are parsed and cut from the message."""
    assert parse("2024-01-01 12:00:00,250 INFO x").timestamp == T0 + 0.25
    assert parse("[2024-01-01T12:00:00Z] INFO x").timestamp == T0
    assert parse("2024/01/01 12:00:00 hello").timestamp == T0
    assert parse("2024/01/01 12:00:00 hello").message == "hello"


@pytest.mark.parametrize(
    "text",
    [
        '{"level":"error","msg":"ab',
        "{not json at all",
        "{" * 100_000,
        '{"a":' * 5000 + "1" + "}" * 5000,
    ],
)
def test_malformed_json_falls_back_to_plain(text: str) -> None:
    """A line that looks like JSON but does not parse is plain, and marked as a fallback."""
    event = parse(text)
    assert event.format == "plain"
    assert event.fields[FALLBACK_KEY] == "json"
    assert is_fallback(event)


@pytest.mark.parametrize(
    "text",
    [
        "[1, 2, 3]",
        '"just a string"',
        "42",
        "null",
        "",
        "\x00\x00",
        "\ud800 lone surrogate \udfff",
        "é" * 10,
        "x" * 10_000_000,
        "2024-13-45T99:99:99Z ERROR impossible date",
        '{"ts": "2024-99-01T00:00:00Z", "level": true, "msg": 12, "logger": null}',
        '{"ts": 1e999, "level": 1e999, "msg": "x"}',
        '{"ts": 123456789012345678901234567890, "msg": "x"}',
        '{"ts": "',
        "level=",
        "=",
        "<999>",
        "[",
    ],
)
def test_never_raises(text: str) -> None:
    """Odd input of every kind still yields a LogEvent carrying the text."""
    event = parse(text)
    assert isinstance(event, LogEvent)
    assert event.text == text
    assert event.level is None or event.level in LEVELS
    assert event.fields.get(FALLBACK_KEY) != "error"  # no parser bug was swallowed


def test_json_non_string_values_do_not_become_message() -> None:
    """A non-string msg stays in fields and the text stands in for the message."""
    text = '{"msg": {"nested": true}, "level": "info"}'
    event = parse(text)
    assert event.message == text
    assert event.fields == {"msg": {"nested": True}}


def test_keyword_construction_matches_positional(monkeypatch: pytest.MonkeyPatch) -> None:
    """The keyword fallback (used if LogEvent's field order changes) builds the same event."""
    line = '{"level": "error", "msg": "x", "k": 1}'
    fast = parse(line)
    monkeypatch.setattr(formats, "_POSITIONAL", False)
    assert parse(line) == fast


def test_pino_err_stack_field() -> None:
    """pino/bunyan `err.stack` gives the event its exception type and frames."""
    stack = "TypeError: bad\n    at fn (/app/x.js:3:7)\n    at /app/node_modules/l/i.js:1:1"
    line = json.dumps(
        {
            "level": 50,
            "msg": "request failed",
            "err": {"type": "TypeError", "message": "bad", "stack": stack},
        }
    )
    event = parse(line)
    assert (event.exception_type, event.exception_message) == ("TypeError", "bad")
    assert [(f.file, f.line, f.in_app) for f in event.frames] == [
        ("/app/node_modules/l/i.js", 1, False),
        ("/app/x.js", 3, True),
    ]


def test_structlog_exception_string_field() -> None:
    """structlog's format_exc_info `exception` string is parsed as a Python traceback."""
    exc = (
        'Traceback (most recent call last):\n  File "/app/a.py", line 3, in f\n    g()\nKeyError: 1'
    )
    event = parse(json.dumps({"event": "boom", "exception": exc}))
    assert (event.exception_type, event.exception_message) == ("KeyError", "1")
    assert event.frames[0].file == "/app/a.py"
    assert event.level == "error"  # no level, but a trace


def test_structlog_dict_tracebacks_field() -> None:
    """structlog's dict_tracebacks list: the first stack is the exception that escaped."""
    exc = [
        {
            "exc_type": "RuntimeError",
            "exc_value": "outer",
            "frames": [{"filename": "/app/a.py", "lineno": 9, "name": "run"}],
        },
        {"exc_type": "KeyError", "exc_value": "inner", "frames": []},
    ]
    event = parse(json.dumps({"event": "boom", "level": "error", "exception": exc}))
    assert event.exception_type == "RuntimeError"
    assert [(f.file, f.line, f.function) for f in event.frames] == [("/app/a.py", 9, "run")]


@pytest.mark.parametrize("key", ["stack", "stack_trace", "error.stack", "error.stack_trace"])
def test_java_stack_string_fields(key: str) -> None:
    """logstash/ECS stack strings carry a Java trace."""
    stack = "java.lang.IllegalStateException: no\n\tat com.acme.A.b(A.java:5)"
    event = parse(json.dumps({"message": "failed", key: stack}))
    assert event.exception_type == "java.lang.IllegalStateException"
    assert event.frames[0].file == "com/acme/A.java"


def test_zap_stacktrace_field() -> None:
    """zap's `stacktrace` (Go frames, no header) gives frames; `error` gives the message."""
    stack = "main.handler\n\t/app/main.go:12\nruntime.main\n\t/usr/local/go/src/runtime/proc.go:250"
    event = parse(json.dumps({"level": "error", "msg": "x", "error": "eof", "stacktrace": stack}))
    assert event.exception_message == "eof"
    assert [(f.function, f.in_app) for f in event.frames] == [
        ("runtime.main", False),
        ("main.handler", True),
    ]


def test_ecs_error_type_without_stack() -> None:
    """ECS flat `error.type` alone still names the exception."""
    event = parse('{"message": "x", "error.type": "TimeoutError", "error.message": "slow"}')
    assert (event.exception_type, event.exception_message) == ("TimeoutError", "slow")


@pytest.mark.parametrize(
    ("value", "level"),
    [
        ("WARN", "warning"),
        ("Warning", "warning"),
        ("eror", "error"),
        ("SEVERE", "error"),
        ("fatal", "critical"),
        ("dpanic", "critical"),
        ("50", "error"),
        (True, None),
        ("x", None),
    ],
)
def test_normalize_level(value: object, level: str | None) -> None:
    """Level spellings normalise onto model.LEVELS; booleans and unknown words do not."""
    assert normalize_level(value) == level


@pytest.mark.parametrize("value", [None, True, [], {}, "", "soon", float("nan"), -5, "1e999"])
def test_parse_timestamp_rejects(value: object) -> None:
    """Values that are not times give None rather than an error."""
    assert parse_timestamp(value) is None
