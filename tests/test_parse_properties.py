"""Properties of parse_line and the Assembler over arbitrary input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.model import ERROR_RANK, LEVEL_RANK, LEVELS, LogEvent, RawLine
from watcher.parse.formats import ERROR_FRAGMENTS, can_be_error, parse_line
from watcher.parse.levels import WORD_LEVELS
from watcher.parse.multiline import Assembler

from .test_genlogs import genlogs

# fragments that steer random lines into every branch of the parsers and the assembler
FRAGMENTS = [
    "",
    " ",
    "\t",
    '  File "/app/a.py", line 3, in f',
    "Traceback (most recent call last):",
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
    "ValueError: bad",
    "java.lang.IllegalStateException: x",
    "\tat com.a.B.c(B.java:1)",
    "Caused by: java.io.IOException: y",
    "\t... 3 more",
    "TypeError: z",
    "    at fn (/app/x.js:1:2)",
    "panic: boom",
    "goroutine 1 [running]:",
    "main.main()",
    "\t/app/main.go:8 +0x1d",
    "[signal SIGSEGV]",
    "app.rb:3:in 'foo': boom (RuntimeError)",
    "\tfrom app.rb:7:in '<main>'",
    "Error: could not connect",
    "2024-01-01 12:00:00,123 ERROR [main] c.f.Bar - failed",
    "ERROR:root:x",
    'level=error msg="x',
    '{"level":"error","msg":"ab',
    '{"level": 50, "msg": "m", "err": {"stack": "Error: e\\n    at f (/a.js:1:1)"}}',
    "{",
    "[",
    "<13>",
]

line_text = st.one_of(
    st.sampled_from(FRAGMENTS),
    st.text(max_size=80),
    st.binary(max_size=80).map(lambda b: b.decode("utf-8", errors="replace")),
    st.tuples(st.sampled_from(FRAGMENTS), st.text(max_size=20)).map("".join),
)
stream_lines = st.lists(st.tuples(st.sampled_from("ab"), line_text), max_size=60)


@settings(max_examples=300, deadline=None)
@given(text=line_text)
def test_parse_line_never_raises(text: str) -> None:
    """Any text parses to an event with a known level (or none) and its text intact."""
    event = parse_line(RawLine(text, line_no=1))
    assert event.text == text
    assert event.level is None or event.level in LEVELS


@settings(max_examples=200, deadline=None)
@given(
    items=stream_lines,
    max_lines=st.integers(1, 8),
    max_bytes=st.integers(1, 400),
    batch_size=st.integers(1, 7),
)
def test_every_line_lands_in_exactly_one_event(
    items: list[tuple[str, str]], max_lines: int, max_bytes: int, batch_size: int
) -> None:
    """After flush(force=True), each stream's events tile its lines: no gap, no overlap. An
    event's span ends at its last line with content; the blank lines it consumed after that are
    still counted in its line_count."""
    lines = [RawLine(text, stream=s, line_no=n, cursor=n) for n, (s, text) in enumerate(items, 1)]
    assembler = Assembler(max_lines=max_lines, max_bytes=max_bytes)
    events = []
    for start in range(0, len(lines), batch_size):
        events += assembler.feed_batch(lines[start : start + batch_size])
    events += assembler.flush(force=True)

    assert assembler.pending == 0
    assert sum(e.line_count for e in events) == len(lines)
    for stream in "ab":
        expected = [line.line_no for line in lines if line.stream == stream]
        covered = []
        text_of = {line.line_no: line.text for line in lines}
        for event in (e for e in events if e.stream == stream):
            members = [n for n in expected if event.first_line <= n <= event.last_line]
            blanks = [n for n in expected if n > event.last_line][: event.line_count - len(members)]
            assert all(not text_of[n].strip() for n in blanks)
            members += blanks
            assert len(members) == event.line_count
            assert event.cursor == members[-1]  # the cursor of the event's last line
            covered += members
        assert sorted(covered) == expected
        assert len(covered) == len(set(covered))


# lines whose level or trace hides where a cheap check could miss it
TRICKY = [
    '{"level": 50, "msg": "m"}',
    '{"level": "50"}',
    '{"lvl": 60.0}',
    '{"level": 1e2}',
    '{"level": Infinity}',
    '{"PRIORITY": "3", "MESSAGE": "m"}',
    '{"PRIORITY": "50"}',
    '{"log": {"level": "error"}}',
    '{"severity": "ERROR", "level": "info"}',
    '{"level": "bogus", "severity": "fatal"}',
    '{"\\u006cevel": "\\u0045RROR"}',
    '{"exc_info": "Traceback (most recent call last):\\nValueError: x"}',
    '{"error.type": "IOError"}',
    '{"err": {"type": "Error", "message": "m"}}',
    "level=E\\RROR msg=x",
    'ts=1 msg="a" lvl=crit',
    "<11>1 2024-01-01T00:00:00Z host app - - - boom",
    "E/Tag( 12): boom",
    "E0101 12:00:00.000000   1 main.go:1] boom",
    "E, [2024-01-01T00:00:00.000 #1] ANY -- app: boom",
    "01-31 12:00:00.000  1  2 E tag: boom",
    "2024-01-01 00:00:00 [main] SEVERE x",
    "something Emergency happened",
]


@settings(max_examples=500, deadline=None)
@given(
    text=st.one_of(
        line_text,
        st.sampled_from(TRICKY),
        st.tuples(st.sampled_from(TRICKY), st.text(max_size=10)).map("".join),
    )
)
def test_can_be_error_never_misses_an_error(text: str) -> None:
    """can_be_error says False only for lines that parse_line reads as non-errors."""
    line = RawLine(text, line_no=1)
    assert can_be_error(line) or not parse_line(line).is_error


def test_can_be_error_on_generated_logs() -> None:
    """On every format genlogs writes, the cheap check lets every error line through."""
    for text in genlogs.generate(20_000, 11, 0.2):
        line = RawLine(text, line_no=1)
        assert can_be_error(line) or not parse_line(line).is_error, text


def test_error_fragments_cover_every_error_word() -> None:
    """Each level word at error or above contains one of the fragments can_be_error looks for."""
    for word, level in WORD_LEVELS.items():
        if LEVEL_RANK[level] >= ERROR_RANK:
            assert any(fragment in word for fragment in ERROR_FRAGMENTS), word


@settings(max_examples=200, deadline=None)
@given(items=stream_lines, batch_size=st.integers(1, 7))
def test_errors_only_returns_the_same_errors(items: list[tuple[str, str]], batch_size: int) -> None:
    """errors_only skips only non-error records, and counts every one it skips."""
    lines = [RawLine(text, stream=s, line_no=n, cursor=n) for n, (s, text) in enumerate(items, 1)]
    full, lazy = Assembler(), Assembler(errors_only=True)
    want: list[LogEvent] = []
    got: list[LogEvent] = []
    for start in range(0, len(lines), batch_size):
        want += full.feed_batch(lines[start : start + batch_size])
        got += lazy.feed_batch(lines[start : start + batch_size])
    want += full.flush(force=True)
    got += lazy.flush(force=True)

    assert len(got) + lazy.take_skipped() == len(want)
    assert [e for e in got if e.is_error] == [e for e in want if e.is_error]
