"""Properties of parse_line and the Assembler over arbitrary input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.model import LEVELS, RawLine
from watcher.parse.formats import parse_line
from watcher.parse.multiline import Assembler

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
    """After flush(force=True), each stream's events tile its lines: no gap, no overlap."""
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
        for event in (e for e in events if e.stream == stream):
            members = [n for n in expected if event.first_line <= n <= event.last_line]
            assert len(members) == event.line_count
            assert event.cursor == event.last_line  # the cursor of the event's last line
            covered += members
        assert sorted(covered) == expected
        assert len(covered) == len(set(covered))
