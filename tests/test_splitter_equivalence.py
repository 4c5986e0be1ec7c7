"""The line splitter splits and decodes a fed chunk at once (issue 15, mixed replay); it must
give what the splitter that split and decoded line by line gave (tests/reference_splitter.py)
for any bytes, any chunking and any sequence of calls: the same lines, ends, truncation marks,
batches, offset and pending state."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reference_splitter import ReferenceSplitter
from watcher.sources.lines import Lines, LineSplitter

# bytes that exercise the rules: newlines, CRs, NULs, valid and cut or invalid UTF-8
PIECES = [
    b"a",
    b"xyz",
    b"\n",
    b"\n\n",
    b"\r",
    b"\r\n",
    b"\x00",
    "é".encode(),
    "€".encode(),
    "😀".encode(),
    b"\xe2",
    b"\x82",
    b"\xe2\x82",
    b"\xf0\x9f\x98",
    b"\xff",
    b"\xc3",
    b"x" * 30,
]

chunks = st.lists(st.sampled_from(PIECES), max_size=12).map(b"".join)
# small byte limits often: a batch cut by bytes, right after an over-long line, is the hard case
limits = st.one_of(st.integers(-3, 12), st.integers(-3, 60))
ops = st.lists(
    st.one_of(
        st.tuples(st.just("feed"), chunks),
        st.tuples(st.just("take"), st.integers(1, 6), limits),
        st.tuples(st.just("drain"), st.integers(1, 6), limits),
        st.tuples(st.just("flush")),
    ),
    max_size=25,
)


def seen(lines: Lines) -> tuple[list[str], list[int], list[int]]:
    return lines.texts, lines.ends, lines.truncated


def step(
    sp: LineSplitter | ReferenceSplitter, op: tuple[object, ...]
) -> list[tuple[list[str], list[int], list[int]]]:
    """Apply one call (a drain takes until nothing comes); what it returned."""
    kind = op[0]
    if kind == "feed":
        sp.feed(op[1])  # type: ignore[arg-type]
        return []
    if kind == "flush":
        return [seen(sp.flush())]
    got = [seen(sp.take(op[1], op[2]))]  # type: ignore[arg-type]
    while kind == "drain" and got[-1][0]:
        got.append(seen(sp.take(op[1], op[2])))  # type: ignore[arg-type]
    return got


@settings(max_examples=400, deadline=None)
@given(ops, st.one_of(st.integers(1, 8), st.integers(1, 40)), st.integers(0, 1000))
def test_splitter_equals_the_line_by_line_splitter(
    calls: list[tuple[object, ...]], cap: int, offset: int
) -> None:
    """Call for call, both splitters return the same batches and agree on offset/pending."""
    fast, ref = LineSplitter(cap, offset), ReferenceSplitter(cap, offset)
    for op in [*calls, ("flush",)]:
        assert step(fast, op) == step(ref, op), op
        assert (fast.offset, fast.pending) == (ref.offset, ref.pending), op


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join))
def test_whole_chunk_decode_equals_line_by_line(data: bytes) -> None:
    """Decoding a chunk at once and splitting the text at "\\n" gives each line's own decode
    (with replacement): a newline byte never belongs to an invalid sequence."""
    texts = data.decode("utf-8", "replace").split("\n")
    assert texts == [part.decode("utf-8", "replace") for part in data.split(b"\n")]


def test_an_over_long_line_then_a_byte_limit() -> None:
    """A line whose tail was skipped comes first in its batch; the lines after it are handed
    out only within what the byte limit leaves."""
    for max_bytes in range(-1, 12):
        fast, ref = LineSplitter(4, 3), ReferenceSplitter(4, 3)
        for op in [("feed", b"x" * 10), ("take", 5, 100), ("feed", b"yy\nab\ncd\n")]:
            assert step(fast, op) == step(ref, op)
        assert seen(fast.take(5, max_bytes)) == seen(ref.take(5, max_bytes)), max_bytes
        assert seen(fast.flush()) == seen(ref.flush())


def test_a_big_ascii_chunk_in_batches() -> None:
    """A chunk of many lines comes out in batches bounded by lines and bytes, as before."""
    data = b"".join(b"line %06d %s\n" % (i, b"x" * (i % 300)) for i in range(5000))
    fast, ref = LineSplitter(200, 7), ReferenceSplitter(200, 7)
    for sp in (fast, ref):
        sp.feed(data[:700_000])
    for _ in range(3):
        assert seen(fast.take(2000, 100_000)) == seen(ref.take(2000, 100_000))
    for sp in (fast, ref):
        sp.feed(data[700_000:])
    while (got := seen(fast.take(2000, 100_000)))[0]:
        assert got == seen(ref.take(2000, 100_000))
    assert seen(fast.flush()) == seen(ref.flush()) and fast.offset == ref.offset == 7 + len(data)
