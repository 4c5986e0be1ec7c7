"""formats.can_be_error decides more ordinary lines without a full parse (issue 15, mixed
replay): a logfmt line's own level, and a level after a "[thread]" that follows the timestamp.
It may only say False where parse_line finds no error; the property tests hold it to that."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.model import RawLine
from watcher.parse import formats
from watcher.parse.formats import can_be_error, json_error_event, parse_line
from watcher.parse.multiline import Assembler

INFO_LINES = (
    'time=2026-11-21T06:00:01.701Z level=INFO msg="pipeline stats" processed=3 errors_total=0',
    'time=2026-11-21T06:00:03.245Z level=INFO msg="retrying after" error=none attempt=2',
    'level=warn msg="retrying request" err="connection reset by peer"',
    'msg="set level=error" level=info failures=0',
    "2026-11-21 06:00:02.910 [scheduling-1] INFO  c.a.billing.ErrorReportJob - 0 failures",
    "2026-11-21 06:00:02,910 [main] WARN retrying after a failed attempt",
    "2026-11-21T06:00:02.123456789 WARNING Warning  FailedMount: volume failed",
    "time=2026-11-21T06:00:01Z level=info lvl=error",  # "level" is the first key looked at
    'time=2026-11-21T06:00:01.701Z level=info msg="x" err="connection refused" lvl=error',
    '203.0.113.7 - - [21/Nov/2026:06:00:10 +0000] "GET /api/errors/summary HTTP/1.1" 404 17 "-"',
)
ERROR_LINES = (
    "time=2026-11-21T06:00:01.701Z level=ERROR msg=boom",
    "level=info msg=x level=error",  # a repeated key keeps its last value
    "time=2026-11-21T06:00:01Z level=info msg=x level=error",
    'time="2026 level=INFO " level=error',  # a quoted value hides what looks like a pair
    "lvl=bogus level=crit msg=x",
    'at=error code=H12 desc="Request timeout"',
    "2026-11-21 06:00:02.910 [scheduling-1] ERROR c.a.billing.Job - failed",
    "2026-11-21 06:00:02.910 [scheduling-1] c.a.Job failed: FooException: bad",
    '203.0.113.7 - - [21/Nov/2026:06:00:10 +0000] "GET /x?level=error HTTP/1.1" 500 17',
    "203.0.113.7 [error] upstream failed",
    "203.0.113.7 GET /errors FooException: bad",  # no request line: a level-less report
)


def test_ordinary_lines_that_mention_errors_are_not_parsed() -> None:
    """A level below error stated where the parser reads it is final: no full parse."""
    for text in INFO_LINES:
        assert not parse_line(RawLine(text, line_no=1)).is_error, text
        assert not can_be_error(RawLine(text, line_no=1)), text


def test_error_lines_still_pass() -> None:
    for text in ERROR_LINES:
        line = RawLine(text, line_no=1)
        assert can_be_error(line), text
        assert parse_line(RawLine(text, line_no=1)).is_error, text


keys = st.sampled_from(["level", "lvl", "severity", "at", "msg", "time", "err", "x", "a.b"])
values = st.one_of(
    st.sampled_from(["info", "INFO", "warn", "error", "ERR", "crit", "fatal", "bogus", "30", ""]),
    st.sampled_from(['"level=error"', '"info"', '"error', '"a b"', '"x\\"y"', "none"]),
    st.text(alphabet='aeflnoirt ="\\', max_size=8),
)
pairs = st.tuples(keys, st.just("="), values).map("".join)
logfmt = st.lists(
    st.one_of(pairs, st.sampled_from(["errors", "failed", "x", "[t]", "FooError:"])),
    min_size=1,
    max_size=6,
).map(" ".join)
timed_logfmt = st.tuples(
    st.sampled_from(["time=2026-11-21T06:00:01Z ", 'time="a b" ', "time=1 ", "time= "]),
    st.sampled_from(["level=info ", "level=INFO ", "level=warn ", "level=error ", "level=x "]),
    logfmt,
).map("".join)
threads = st.sampled_from(["", "[main] ", "[scheduling-1]  ", "[a b] ", "[x]", "[] "])
levels = st.sampled_from(["INFO", "WARN", "ERROR", "info", "[debug]", "notice:", "Err", "x"])
plain = st.tuples(
    st.sampled_from(["2026-11-21 06:00:02.910 ", "2026-11-21T06:00:02Z ", "12:00:00 "]),
    threads,
    levels,
    st.sampled_from([" order failed", " no errors", " FooException: bad", "", " at=error"]),
).map("".join)


access = st.tuples(
    st.sampled_from(["203.0.113.7 ", "10.0.0.1 - - ", "1.2.3.4 x ", "1.2.3 "]),
    st.sampled_from(["[21/Nov/2026:06:00:10 +0000] ", "", "ERROR ", "[error] "]),
    st.sampled_from(
        ['"GET /errors HTTP/1.1" 404 ', '"POST /x?level=error HTTP/1.1" 200 ', "GET /e ", ""]
    ),
    st.sampled_from(["", "FooError: bad", "connection refused", "panic:  x", "Completed 500 "]),
).map("".join)


@settings(max_examples=2000, deadline=None)
@given(
    text=st.one_of(logfmt, timed_logfmt, plain, access),
    stated=st.sampled_from([None, {"level": "error"}, {}]),
)
def test_can_be_error_never_misses_an_error(text: str, stated: dict | None) -> None:
    line = RawLine(text, line_no=1, fields=None if stated is None else dict(stated))
    if not can_be_error(line):
        again = RawLine(text, line_no=1, fields=None if stated is None else dict(stated))
        assert not parse_line(again).is_error


def test_a_superscript_priority_is_no_level() -> None:
    """journald's PRIORITY "²": str.isdigit accepts it, int() does not; the errors-only check
    raised on such a JSON record and stopped `watcher replay`."""
    text = '{"PRIORITY": "\u00b2", "msg": "x"}'
    asm = Assembler(errors_only=True)
    assert asm.feed(RawLine(text, line_no=1)) + asm.flush(force=True) == []
    assert json_error_event(RawLine(text, line_no=1)) is None
    assert not can_be_error(RawLine(text, line_no=1))
    assert parse_line(RawLine(text, line_no=1)).level is None


SCAN_WORDS = (
    "trace debug info notice warn warning error err crit critical fatal severe panic alert emerg"
)
SCAN_WORDS = SCAN_WORDS.split()
scan_texts = st.lists(
    st.one_of(
        st.sampled_from(["[", "<", "]", ">", "=", " ", "level", "lvl", "at", "xat", "WARNING"]),
        st.sampled_from(["Error", "eRR", "CRIT", "crit", "[Info]", "<emerg>", "SEVERE", "PANICS"]),
        st.sampled_from(["\u0130nfo", "\u0131nfo", "\u212arit", "e" * 190, "GET /errors"]),
        st.sampled_from(SCAN_WORDS).map(str.upper),
        st.sampled_from(SCAN_WORDS).flatmap(lambda w: st.sampled_from([w, w.title(), w[:-1]])),
        st.text(max_size=6),
    ),
    max_size=12,
).map("".join)


@settings(max_examples=3000, deadline=None)
@given(text=scan_texts)
def test_the_level_scan_precheck_never_hides_a_match(text: str) -> None:
    """_may_scan_level is False only where _LEVEL_SCAN finds nothing in its window."""
    if not formats._may_scan_level(text):
        assert formats._LEVEL_SCAN.search(text, 0, formats._SCAN_WINDOW) is None
