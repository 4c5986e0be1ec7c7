"""builtin_category's fast paths (issue 15) give exactly what the plain passes give.

`reference_category` below is a frozen copy of builtin_category as it was before the fast
paths (main 95db93c), minus its literal pre-checks: every pass runs its regexes in order on the
event's text. The fast builtin_category (one search for any hint, lower-cased regexes over
lower-cased text, a memo of the text passes) must name the same category for every event: the
events of the repository's logs and generated ones, and hypothesis-built events aimed at the
hints, the case folding and the order of the passes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import load_genlogs
from watcher import classify as classify_module
from watcher.classify import BUILTIN, CATEGORY_BY_NAME, ERROR_FIELDS, Category, builtin_category
from watcher.model import Frame, LogEvent, RawLine
from watcher.parse.multiline import Assembler
from watcher.parse.traces import TRACE_KEYS

ROOT = Path(__file__).resolve().parent.parent

# --- the frozen reference: the passes one by one, no pre-checks, no memo ------------------------

_EXCEPTION_ORDER = (
    "internal_error",
    "rate_limit_error",
    "auth_error",
    "cache_error",
    "database_error",
    "timeout_error",
    "provider_error",
    "external_service_error",
    "validation_error",
)
_MESSAGE_ORDER = (
    "internal_error",
    "rate_limit_error",
    "auth_error",
    "cache_error",
    "timeout_error",
    "database_error",
    "provider_error",
    "external_service_error",
    "validation_error",
)
_FRAME_STARTS = ("at ", 'File "', "from ", "#")


def _event_text(event: LogEvent) -> str:
    text = event.message
    if event.exception_message:
        text = f"{text}\n{event.exception_message}"
    if event.frames and "Caused by: " in event.text:
        causes = [ln for ln in _trace_text(event).splitlines() if ln.startswith("Caused by: ")]
        text = "\n".join([text, *causes])[:4000]
    elif event.line_count > 1 and event.text:
        extra = [
            ln
            for ln in event.text[:3000].splitlines()[1:24]
            if not ln.lstrip().startswith(_FRAME_STARTS) and ".go:" not in ln
        ]
        text = "\n".join([text, *extra])[:1500]
    for key in ERROR_FIELDS if event.fields else ():
        value = event.fields.get(key)
        if isinstance(value, str):
            text = f"{text}\n{value[:2000]}"
        elif isinstance(value, dict) and isinstance(value.get("message"), str):
            text = f"{text}\n{value['message'][:2000]}"
    return text


def _trace_text(event: LogEvent) -> str:
    if event.line_count > 1 or not event.fields:
        return event.text
    for key in TRACE_KEYS:
        value = event.fields.get(key)
        if isinstance(value, str) and "\n" in value:
            return value
    return event.text


def _exception_text(event: LogEvent) -> str:
    exc = event.exception_type or ""
    causes = event.fields.get("causes") if event.fields else None
    if isinstance(causes, list) and causes:
        exc = " ".join([exc, *(str(c) for c in causes[:8])])
    return exc


def _by_exception(exc: str, event: LogEvent) -> Category | None:
    by_name = {c.name: c for c in BUILTIN}
    for name in _EXCEPTION_ORDER if exc else ():
        pattern = by_name[name].exception
        if pattern is not None and pattern.search(exc):
            return by_name[name]
    if event.frames:
        library = " ".join(f.file for f in event.frames if not f.in_app).lower()
        for name, needles in classify_module.CLIENT_FRAMES:
            if any(needle in library for needle in needles):
                return CATEGORY_BY_NAME[name]
    return None


def reference_category(event: LogEvent) -> Category:
    """builtin_category before issue 15's fast paths, every regex searched."""
    exc, text = _exception_text(event), _event_text(event)
    if classify_module._JSON_PARSE.search(exc) or classify_module._JSON_PARSE.search(text):
        where = " ".join(f.file for f in event.frames) + " " + event.message
        if classify_module._HTTP_CLIENT.search(where):
            return CATEGORY_BY_NAME["external_service_error"]
        if classify_module._BODY_PARSER.search(where) or not event.frames:
            return CATEGORY_BY_NAME["validation_error"]
    explicit = classify_module._EXPLICIT.search(text)
    if explicit:
        return CATEGORY_BY_NAME["rate_limit_error" if explicit.group(1) else "auth_error"]
    found = _by_exception(exc, event)
    if found is not None:
        return found
    by_name = {c.name: c for c in BUILTIN}
    for name in _MESSAGE_ORDER:
        pattern = by_name[name].message
        if pattern is not None and pattern.search(text):
            return by_name[name]
    if event.logger == "postgres":
        return CATEGORY_BY_NAME["database_error"]
    return classify_module.INTERNAL


def assert_same(event: LogEvent) -> None:
    """The fast category, fresh and then from the memo, is the reference's."""
    classify_module.clear_memo()
    expected = reference_category(event).name
    assert builtin_category(event).name == expected, repr(event)
    assert builtin_category(event).name == expected, event  # the memo's answer


# --- the corpus: every event of the repository's logs, and generated ones -----------------------


def _events(lines: list[str]) -> Iterator[LogEvent]:
    asm = Assembler()
    raw = [RawLine(text, line_no=i + 1) for i, text in enumerate(lines)]
    for i in range(0, len(raw), 500):
        yield from asm.feed_batch(raw[i : i + 500])
    yield from asm.flush(force=True)


def _generated(n_lines: int, seed: int) -> list[str]:
    return list(load_genlogs().generate(n_lines, seed, 0.3))


def _corpus() -> list[LogEvent]:
    logs = [
        ROOT / "tests/data/mixed.log",
        ROOT / "tests/data/clean.log",
        ROOT / "tests/data/autofix_app/app.log",
        ROOT / "examples/app.log",
        ROOT / "bench/data/signal/stream.log",
    ]
    events = [e for path in logs for e in _events(path.read_text().splitlines())]
    traces = ROOT / "bench/data/signal/traces.jsonl"
    for record in map(json.loads, traces.read_text().splitlines()):
        events += _events(record["text"].splitlines())
    events += _events(_generated(12_000, 7))
    return events


@pytest.fixture(scope="module")
def corpus() -> list[LogEvent]:
    return _corpus()


def test_the_corpus_reaches_every_category_and_every_pass(corpus: list[LogEvent]) -> None:
    """The corpus is worth comparing on: errors of every category, traces, JSON and fields."""
    names = {reference_category(e).name for e in corpus if e.is_error}
    assert names == {c.name for c in BUILTIN}
    assert sum(e.is_error for e in corpus) > 1500
    assert any(e.frames and "Caused by: " in e.text for e in corpus)
    assert any(e.fields.get("err") or e.fields.get("error") for e in corpus)


def test_every_event_of_the_corpus_gets_the_reference_category(corpus: list[LogEvent]) -> None:
    """Each event alone (memo cleared), then all in a row (the memo answering repeats)."""
    for event in corpus:
        assert_same(event)
    classify_module.clear_memo()
    expected = [reference_category(e).name for e in corpus]
    assert [builtin_category(e).name for e in corpus] == expected


# --- hypothesis: events built near the hints, the case folding and the passes' order -----------

_HINTS = sorted({h for pair in classify_module._HINTS for hints in pair for h in hints or ()})
_WORDS = [
    *_HINTS,
    *(h[:-1] for h in _HINTS if len(h) > 2),
    *(h.upper() for h in _HINTS[::3]),
    *(h.title() for h in _HINTS[1::3]),
    "HTTP 429", "HTTP Error 429", "429 Too Many Requests", "(AccessDenied)", "(ExpiredToken)",
    "limiting requests", "Unexpected token", "in JSON at position 4", "Expecting value",
    "JSONDecodeError", "timed out", "time out", "Gateway Time-out", "relation \"users\" does not",
    "model gpt-4 not found", "waited 30 sec", "rediss://", "redis::", "slowdown", "x_rate-limit",
    "\u0130nvalid", "\u017ftripe", "\u212aafka", "\u00e9chec", "r\u00e9seau", "tivubove", "ref=f5",
    "postgres://", "SQLSTATE", "psycopg2", "Caused by: ", "at ", 'File "', "main.go:12", "#0",
    "deadlock", "403", "5000", "s3", "S3", "llm", "LLM", "orm", "ORM", "_", "-", ":", "",
]  # fmt: skip
_SEPS = st.sampled_from(["", " ", "  ", "\n", "\n  ", "_", ": ", "-", "/", "(", ")", '"'])
_TEXT = st.lists(st.tuples(st.sampled_from(_WORDS), _SEPS), max_size=8).map(
    lambda pairs: "".join(word + sep for word, sep in pairs)
)
_EXCEPTION_NAMES = [
    "ValueError", "KeyError", "TypeError", "redis.ConnectionError", "JSONDecodeError",
    "psycopg2.OperationalError", "httpx.ReadTimeout", "openai.RateLimitError",
    "botocore.exceptions.ClientError", "java.lang.NullPointerException",
    "org.springframework.dao.DataAccessException", "System.FormatException",
    "NumberFormatException", "jwt.ExpiredSignatureError", "requests.HTTPError",
    "\u00dcnknownError", "\u0130nvalidToken", "AuthError", "OverloadedError", "",
]  # fmt: skip
_EXCEPTIONS = st.one_of(st.none(), st.sampled_from(_EXCEPTION_NAMES), _TEXT)
_FILES = st.sampled_from(
    [
        "/app/orders.py", "/usr/lib/python3/site-packages/psycopg2/__init__.py",
        "node_modules/ioredis/built/redis.js", "node_modules/axios/lib/core.js",
        "node_modules/body-parser/lib/read.js", "/srv/app/rest_framework/parsers.py",
        "/usr/lib/python3/site-packages/requests/models.py", "org/hibernate/jdbc/Work.java",
        "/gems/activerecord/lib/base.rb", "main.go", "/x/redis-py/client.py", "app.js",
    ]
)  # fmt: skip
_FRAMES = st.lists(
    st.builds(Frame, file=_FILES, line=st.just(1), function=st.just("f"), in_app=st.booleans()),
    max_size=4,
)
_FIELD_VALUES = st.one_of(_TEXT, st.builds(lambda t: {"message": t}, _TEXT), st.integers(0, 9))
_FIELDS = st.dictionaries(
    st.sampled_from([*ERROR_FIELDS, "causes", "stack", "stacktrace", "msg", "x"]),
    st.one_of(_FIELD_VALUES, st.lists(_TEXT, max_size=3)),
    max_size=3,
)


@st.composite
def _events_near_hints(draw: st.DrawFn) -> LogEvent:
    message = draw(_TEXT)
    lines = draw(st.lists(_TEXT, max_size=5))
    text = "\n".join([message, *lines])
    return LogEvent(
        message=message,
        level="error",
        logger=draw(st.sampled_from([None, "postgres", "app"])),
        exception_type=draw(_EXCEPTIONS),
        exception_message=draw(st.one_of(st.none(), _TEXT)),
        fields=draw(_FIELDS),
        frames=draw(_FRAMES),
        text=text,
        line_count=text.count("\n") + 1,
    )


@settings(max_examples=600, deadline=None)
@given(_events_near_hints())
def test_events_near_the_hints_get_the_reference_category(event: LogEvent) -> None:
    """Hints whole, cut short, cased, run together, non-ASCII look-alikes, every pass's input."""
    assert_same(event)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.one_of(st.none(), st.text(max_size=20)))
def test_any_text_gets_the_reference_category(message: str, exc: str | None) -> None:
    """Arbitrary text: the lower-casing and the hints never decide what the regexes would not."""
    assert_same(LogEvent(message=message, level="error", exception_type=exc, text=message))


# --- the memo and the lower-cased patterns ------------------------------------------------------


def test_the_memo_keeps_frames_and_logger_out_of_what_it_remembers() -> None:
    """Same strings, other frames or logger: the memo's verdict, then each event's own tie-break."""
    classify_module.clear_memo()
    library = Frame("/usr/lib/python3/site-packages/psycopg2/pool.py", 1, "get", in_app=False)
    body = Frame("node_modules/body-parser/lib/read.js", 1, "parse", in_app=False)
    events = [
        LogEvent(message="boom", level="error"),
        LogEvent(message="boom", level="error", logger="postgres"),
        LogEvent(message="boom", level="error", frames=[library]),
        LogEvent(message="Unexpected token < in JSON at position 0", level="error"),
        LogEvent(message="Unexpected token < in JSON at position 0", level="error", frames=[body]),
        LogEvent(message="x", level="error", exception_type="KeyError", frames=[library]),
    ]
    got = [builtin_category(e).name for e in events]
    assert got == [reference_category(e).name for e in events]
    assert got[:3] == ["internal_error", "database_error", "database_error"]
    assert classify_module._verdict.cache_info().hits >= 2


@pytest.mark.parametrize(
    "pattern",
    [r"\Sfoo", r"\Bfoo", r"a\Wb", "[A-Z]x", "[A-z]", "(?s)a.b", "(?-i:A)b", "\u212a", "\u017ftop"],
)
def test_patterns_lower_casing_could_change_keep_their_case_folding(pattern: str) -> None:
    """Upper-case escapes, inline flags, classes with capitals, non-ASCII: not lower-cased."""
    assert classify_module.lowered(re.compile(pattern, re.IGNORECASE)) is None


def test_lowered_patterns_match_what_the_originals_match() -> None:
    """Every built-in pattern has a lower-cased twin, and it agrees on ASCII text."""
    assert all(rx is not None for pair in classify_module._LOWERED for rx in pair)
    assert classify_module.lowered(re.compile("Abc")) is None  # case-sensitive: left alone
    for coded in (r"\x41bc", r"\u0041bc", r"\101bc", r"\0"):  # a character by its code
        assert classify_module.lowered(re.compile(coded, re.IGNORECASE)) is None, coded
    assert classify_module.lowered(re.compile(r"(a)b\1", re.IGNORECASE)) is not None
    twin = classify_module.lowered(re.compile(r"\bSQLSTATE|Time[ _-]?Out\b", re.IGNORECASE))
    assert twin is not None and twin.pattern == r"\bsqlstate|time[ _-]?out\b"
    for text in ("SqlState 08006", "TIME-OUT", "timeouts", "x_sqlstate"):
        original = re.search(r"\bSQLSTATE|Time[ _-]?Out\b", text, re.IGNORECASE)
        assert (twin.search(text.lower()) is None) == (original is None), text
