"""The file reader's and the pipeline's per-line shortcuts (issue 15, mixed replay) against the
straightforward code they replace: lazy cursors made solid equal the dicts built per line, the
last cursor and first line number per stream equal a loop over every line, and the C-level
checks of a batch count truncated lines and scrub surrogates as the per-line loop did."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.group.table import GroupTable
from watcher.model import RawLine
from watcher.parse.formats import SURROGATE
from watcher.pipeline import (
    Pipeline,
    _first_numbers,
    _last_cursors,
    _look_over,
    solid_cursor,
)
from watcher.sources.file_handle import OpenFile
from watcher.sources.file_identity import ROTATED_SUFFIX, CursorBase, cursor, ident_of
from watcher.sources.lines import Lines

# --- lazy cursors --------------------------------------------------------------------------


def eager_to_raw(f: OpenFile, lines: Lines, source: str, stream: str) -> list[RawLine]:
    """OpenFile.to_raw as it was: a cursor dict per line (does not advance f.line_no)."""
    first = f.line_no
    return [
        RawLine(t, source, stream, cursor(f.ident, f.key, e, n, f.tag, stream), n)
        for n, t, e in zip(
            range(first + 1, first + 1 + len(lines)) if first is not None else [0] * len(lines),
            lines.texts,
            lines.ends,
            strict=True,
        )
    ]


line_texts = st.lists(st.text(alphabet="ab é\t", max_size=90), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(
    line_texts,
    st.integers(1, 7),
    st.sampled_from([0, 5, None]),
    st.lists(st.booleans(), min_size=1, max_size=12),
)
def test_lazy_cursors_are_the_eager_ones(
    texts: list[str], batch: int, line_no: int | None, rotated: list[bool]
) -> None:
    """Every line's cursor, made solid, is the dict the reader used to build for it: across
    reads that grow the head tag (the first 256 bytes come in several reads), a stream that
    changes (a rotated file's late lines) and unknown line numbers."""
    data = "".join(t + "\n" for t in texts).encode()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "app.log")
        with open(path, "wb") as out:
            fd = os.open(path, os.O_RDONLY)
            try:
                f = OpenFile(fd, ident_of(os.fstat(fd)), 0, line_no, 1024)
                i = 0
                for at in range(0, len(data), 37):  # written a bit at a time: the tag grows
                    out.write(data[at : at + 37])
                    out.flush()
                    while lines := f.read(batch):
                        stream = path + (ROTATED_SUFFIX if rotated[i % len(rotated)] else "")
                        i += 1
                        want = eager_to_raw(f, lines, "src", stream)
                        got = f.to_raw(lines, "src", stream)
                        assert [solid_cursor(g.cursor) for g in got] == [w.cursor for w in want]
                        assert [(g.text, g.line_no) for g in got] == [
                            (w.text, w.line_no) for w in want
                        ]
            finally:
                os.close(fd)


def test_solid_cursor_leaves_other_cursors_alone() -> None:
    """Cursors other sources make (dicts, None) are stored as they are."""
    stored = {"ts": 1, "ids": ["a"]}
    assert solid_cursor(stored) is stored and solid_cursor(None) is None
    base = CursorBase((1, 2), "file:1:2", "3:00000000", "/x")
    assert solid_cursor((base, 10, 4)) == cursor((1, 2), "file:1:2", 10, 4, "3:00000000", "/x")


# --- the pipeline's bookkeeping --------------------------------------------------------------

BASE = CursorBase((7, 9), "file:7:9", "0:00000000", "s")


def reference_last_cursors(lines: list[RawLine]) -> dict[str, Any]:
    """_last_cursors as it was: one dict entry written per line."""
    last = {line.stream: solid_cursor(line.cursor) for line in lines}
    if None in last.values():
        return {stream: cursor for stream, cursor in last.items() if cursor is not None}
    return {
        cursor["key"] if type(cursor) is dict and isinstance(cursor.get("key"), str) else stream: (
            cursor
        )
        for stream, cursor in last.items()
    }


def reference_first_numbers(lines: list[RawLine], hold: dict[str, int]) -> None:
    for line in lines:
        if line.stream not in hold and line.line_no > 0:
            hold[line.stream] = line.line_no


cursors = st.one_of(
    st.none(),
    st.integers(0, 50),
    st.builds(lambda o: {"offset": o}, st.integers(0, 50)),
    st.builds(lambda o, k: {"offset": o, "key": k}, st.integers(0, 50), st.sampled_from("kK")),
    st.builds(lambda o, n: (BASE, o, n), st.integers(0, 50), st.integers(0, 9)),
)
raw_lines = st.lists(
    st.builds(
        lambda s, c, n: RawLine("x", "src", s, c, n),
        st.sampled_from(["a", "b", "c"]),
        cursors,
        st.integers(0, 3),
    ),
    max_size=25,
)


def one_stream_of(lines: list[RawLine]) -> list[RawLine]:
    """The same lines, all in the first one's stream (a file source's batch)."""
    return [RawLine("x", "src", lines[0].stream, line.cursor, line.line_no) for line in lines]


@given(raw_lines)
def test_last_cursors_match_a_loop_over_every_line(lines: list[RawLine]) -> None:
    """The last cursor per stream, solid, under its key, in the streams' order of first
    appearance: what a dict written once per line gives; a one-stream batch's from its last
    line alone."""
    got = _last_cursors(lines, False)
    assert list(got.items()) == list(reference_last_cursors(lines).items())
    if lines:
        same = one_stream_of(lines)
        assert list(_last_cursors(same, True).items()) == list(reference_last_cursors(same).items())


@given(raw_lines, st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(1, 9)))
def test_first_numbers_match_a_loop_over_every_line(
    lines: list[RawLine], hold: dict[str, int]
) -> None:
    """Each stream not yet held gets its first positive line number, as a full loop gives."""
    for batch, one_stream in [(lines, False), (one_stream_of(lines) if lines else [], True)]:
        want, got = dict(hold), dict(hold)
        reference_first_numbers(batch, want)
        _first_numbers(batch, got, one_stream)
        assert got == want


# --- Pipeline.take's look at every line ------------------------------------------------------


@given(
    st.lists(
        st.tuples(
            st.text(alphabet="ab é\ud800\udfff", max_size=6),
            st.booleans(),
            st.sampled_from(["s", "s", "s", "t"]),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_take_looks_over_a_batch_like_a_loop(lines: list[tuple[str, bool, str]]) -> None:
    """The truncated lines counted, lone surrogates replaced and "one stream" said only when
    every line has the first one's stream."""
    batch = [RawLine(t, "src", s, None, i + 1, truncated=tr) for i, (t, tr, s) in enumerate(lines)]
    truncated, one_stream = _look_over(batch)
    assert truncated == sum(tr for _, tr, _ in lines)
    assert one_stream == (len({s for _, _, s in lines}) == 1)
    assert [line.text for line in batch] == [SURROGATE.sub("\ufffd", t) for t, _, _ in lines]
    pipeline = Pipeline(GroupTable())
    pipeline.take([RawLine(t, "src", s, None, 1, truncated=tr) for t, tr, s in lines])
    assert pipeline.stats.truncated_lines == truncated
