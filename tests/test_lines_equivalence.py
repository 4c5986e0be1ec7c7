"""The errors-only line path's fast paths (issue 15, fourth session) decide as before.

tests/reference_lines.py holds frozen copies of Assembler.feed_batch, formats.can_be_error and
linekinds.indented_kind from before these fast paths: feed_batch's JSON decode before the
wrapper check and its inline quiet-level verdicts (a JSON record's "level", a plain "2026-… INFO"
head), its inline kinds of indented lines, can_be_error's alarm fragments written out, and
indented_kind's digit check before its regex. The same lines must give the same events and the
same count of skipped records: generated mixed logs, the repository's logs, and hypothesis-built
lines aimed at each fast path's edges (wrappers, a "message" key, fields, backslashes, Unicode
digits and glyphs after an indent, levels that are not strings).
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import load_genlogs
from tests.reference_lines import (
    ReferenceAssembler,
    reference_can_be_error,
    reference_indented_kind,
)
from watcher.model import LineBatch, RawLine
from watcher.parse.formats import _PLAIN_ALARMS, can_be_error, is_fallback, parse_line
from watcher.parse.linekinds import indented_kind
from watcher.parse.multiline import Assembler
from watcher.pipeline import _look_over

ROOT = Path(__file__).resolve().parent.parent


def _assemble(cls: type[Assembler], texts: list[str], fields: dict | None = None) -> tuple:
    """(repr of every event, skipped count) of an errors-only assembler fed `texts`."""
    asm = cls(errors_only=True, clock=lambda: 0.0)
    lines = [
        RawLine(t, "src", "s", None, n, None, dict(fields) if fields else None)
        for n, t in enumerate(texts, 1)
    ]
    events = []
    for i in range(0, len(lines), 50):
        events += asm.feed_batch(lines[i : i + 50])
    events += asm.flush(force=True)
    # what the pipeline keeps (Pipeline._handle): the errors and the fallbacks; every other
    # event only counts, as a skipped record does
    kept = [repr(e) for e in events if e.is_error or is_fallback(e)]
    return kept, asm.take_skipped() + len(events) - len(kept)


def _same(texts: list[str], fields: dict | None = None) -> None:
    assert _assemble(Assembler, texts, fields) == _assemble(ReferenceAssembler, texts, fields)


def test_generated_mixed_logs_assemble_alike() -> None:
    genlogs = load_genlogs()
    texts = list(genlogs.generate(12_000, 3, 0.2))
    _same(texts)


def test_the_repository_logs_assemble_alike() -> None:
    for path in (ROOT / "tests" / "data").glob("*.log"):
        _same(path.read_text(encoding="utf-8").splitlines())
    _same((ROOT / "tests" / "data" / "ordinary_lines.txt").read_text().splitlines())


def test_the_alarm_fragments_are_written_out() -> None:
    """can_be_error's written-out fragments are _PLAIN_ALARMS: each one alone in a line that
    nothing else alarms makes it True."""
    for fragment in _PLAIN_ALARMS:
        line = RawLine(f"somebody said {fragment} here")
        assert can_be_error(line) is True, fragment
        assert reference_can_be_error(line) is True, fragment


_STAMP = st.sampled_from(
    [
        "2026-11-21 06:00:00,039 ",
        "2026-11-21T06:00:00.1Z ",
        "٢٠٢٦-11-21 06:00:00 ",
        "2026/11/21 06:00:02 ",
        "203.0.113.7 - - ",
        "time=2026-11-21T06:00:00Z ",
        "at=",
        "I, [2026-11-21T06:00:04.07 #11]  ",
        "E, [x #1] ",
        "I, [2026-11-21T06:00:04.07 #11]  INFO -- app: ",
        "W, [x #2]  ERROR -- app: ",
        "D, [x #1]  FOO -- : ",
        "U, [x #1]  ANY -- p: ",
        "at=info method=GET ",
        "",
    ]
)
_LEVEL = st.sampled_from(
    [
        "INFO ",
        "WARN ",
        "ERROR ",
        "level=INFO ",
        "level=error ",
        "info ",
        "DEBUG ",
        "[warn] ",
        "FATAL ",
        "",
    ]
)
_WORDS = st.sampled_from(
    [
        "order created",
        "no validation errors",
        "connection refused",
        "FooException: bad",
        "reset by peer",
        "a\\b",
        "Warning  BackOff x",
        'GET /x HTTP/1.1" 200 5',
        "failed",
        "i/o timeout",
        "ok:",
        "\x1b[31m",
        "path=/x level=error",
        "a=1 at=error",
        "lvl=crit",
        "format=x",
        "severity=fatal",
    ]
)
_INDENT = st.sampled_from([" ", "  ", "    ", "\t", " " * 13, "\u00a0 ", "  \u3000"])
_AFTER_INDENT = st.sampled_from(
    [
        'File "a.py", line 3, in f',
        "at com.x.Y.z(Y.java:3)",
        "٣٣٣٣-11-21 06:00:00 x",
        "2026-11-21 06:00:00 INFO x",
        "[TypeError: x]",
        "[1, 2]",
        "✗ failed",
        "Normal  Warning  BackOff  x ",
        "}",
        "...",
        "",
    ]
)


def _json_line(draw: st.DrawFn) -> str:
    level = draw(
        st.sampled_from(["info", "INFO", "error", "warn", 30, 50, 10, 49.5, True, None, "x"])
    )
    obj: dict = {}
    if level is not None:
        obj["level"] = level
    for key in draw(
        st.lists(
            st.sampled_from(
                [
                    "msg",
                    "message",
                    "log",
                    "event",
                    "stack",
                    "exc_info",
                    "time",
                    "stream",
                    "severity",
                    "logger",
                    "err",
                ]
            ),
            max_size=4,
        )
    ):
        obj[key] = draw(
            st.sampled_from(["x", "boom\n", '{"a":1}', "2026-… ERROR x", 3, {"severity": "ERROR"}])
        )
    text = json.dumps(
        obj, separators=draw(st.sampled_from([(",", ":"), (", ", ": "), (",", " : ")]))
    )
    return text + draw(st.sampled_from(["", " ", " junk", "\\ud800"]))


@st.composite
def _line(draw: st.DrawFn) -> str:
    shape = draw(st.integers(0, 3))
    if shape == 0:
        return _json_line(draw)
    if shape == 1:
        return draw(_INDENT) + draw(_AFTER_INDENT)
    return draw(_STAMP) + draw(_LEVEL) + draw(_WORDS)


@settings(max_examples=400, deadline=None)
@given(
    texts=st.lists(_line(), min_size=1, max_size=30),
    fields=st.sampled_from([None, {}, {"level": "error"}, {"level": "info"}]),
)
def test_hypothesis_lines_assemble_alike(texts: list[str], fields: dict | None) -> None:
    _same(texts, fields)


@settings(max_examples=600, deadline=None)
@given(text=_line())
def test_can_be_error_decides_as_before(text: str) -> None:
    for fields in (None, {"level": "error"}, {"level": "info"}):
        new = can_be_error(RawLine(text, fields=fields))
        if new != reference_can_be_error(RawLine(text, fields=fields)):
            # a new proof (Heroku's "at=info", Ruby's Logger): False only where the full parse
            # gives an event the pipeline drops
            event = parse_line(RawLine(text, fields=fields))
            assert new is False and not event.is_error and not is_fallback(event)


@settings(max_examples=600, deadline=None)
@given(
    text=st.builds(str.__add__, _INDENT, _AFTER_INDENT) | st.text(" \t\u00a0٣1-: [aW", min_size=1)
)
def test_indented_kind_as_before(text: str) -> None:
    if text[:1] in (" ", "\t"):
        assert indented_kind(text) == reference_indented_kind(text)


def test_a_file_batch_is_what_look_over_would_say() -> None:
    """The file source's LineBatch states what pipeline._look_over finds."""
    import os
    import tempfile

    from watcher.sources.file_handle import OpenFile
    from watcher.sources.file_identity import ident_of
    from watcher.sources.lines import Lines

    with tempfile.NamedTemporaryFile() as tmp:
        fd = os.open(tmp.name, os.O_RDONLY)
        f = OpenFile(fd, ident_of(os.fstat(fd)), 0, 0, 10)
        try:
            lines = Lines(["a", "b\ufffd" * 9, "c"], [2, 30, 32], [1])
            batch = f.to_raw(lines, "src", tmp.name)
        finally:
            f.close()
    assert type(batch) is LineBatch
    assert (batch.truncated, True) == _look_over(batch)
    assert type(batch[:2]) is list  # a slice is looked over again


QUIET_PROOF_EDGES = (
    "at=info method=GET path=/x status=200",
    "at=info method=GET path=/x level=error",
    "at=info method=GET path=/x lvl=crit",
    "at=info method=GET path=/x severity=fatal",
    "at=info method=GET path=/x at=error",
    "at=info method=GET path=/x x=at=error",
    "at=info method=GET path=/x\\ failed",
    "I, [2026-11-21T06:00:04.07 #11]  INFO -- app: job failed",
    "I, [2026-11-21T06:00:04.07 #11]  ERROR -- app: boom",
    "W, [x #2]  FATAL -- app: boom",
    "D, [x #1]  FOO -- : failed",
    "U, [x #1]  ANY -- p: failed",
    "I, [x] INFO failed",
)


def test_quiet_proofs_at_their_edges() -> None:
    for text in QUIET_PROOF_EDGES:
        line = RawLine(text)
        event = parse_line(line)
        if can_be_error(line) is False:
            assert not event.is_error and not is_fallback(event), text
        elif reference_can_be_error(line) is False:
            raise AssertionError(f"the new check lets through what the old proved: {text}")
    _same(list(QUIET_PROOF_EDGES))


def test_a_wrapped_json_line_is_decoded_for_itself() -> None:
    """A wrapper whose line is a CRI-prefixed JSON record: the record is what is checked, not
    the wrapper decoded before it."""
    inner = '2026-11-21T06:00:00.1Z stdout F {\\"level\\":\\"error\\",\\"msg\\":\\"boom\\"}'
    wrapper = '{"log": "' + inner + '", "stream": "stdout"}'
    quiet = '{"log": "' + inner.replace("error", "info") + '", "level": "info"}'
    _same([wrapper, quiet, "2026-11-21 06:00:00,039 INFO x", wrapper])
    events, _ = _assemble(Assembler, [wrapper])
    assert len(events) == 1 and "boom" in events[0]
