"""The masker of issue 15 (one fullmatch per part, the alternation compiled per feature set)
masks every input exactly like the masker before it, kept in tests/reference_mask.py."""

from __future__ import annotations

import contextlib
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from tests import reference_mask
from watcher.group import mask

# pieces that meet (or almost meet) each kind's need: a scheme, an @, dashes of dates and
# uuids, month and day names, quotes, key=value, booleans, empty brackets, 0x, paths, hosts
_PIECES = st.sampled_from(
    [
        "http://a.b/c?d=1",
        "ftp:/x",
        "bob@example.org",
        "a@b",
        "123e4567-e89b-12d3-a456-426614174000",
        "2024-01-02T03:04:05Z",
        "2024-01-02",
        "Jul",
        "10",
        "2005",
        "Sun",
        "Sept.",
        "03:55:15",
        "10.0.0.1:80",
        "fe80::1",
        "aa:bb:cc:dd:ee:ff",
        "/var/log/x.log",
        "C:\\dir\\f",
        "db.internal.example.com",
        "a.b.cd",
        "12ms",
        "3.5",
        "s",
        "KB",
        "(1.2",
        "KB)",
        '"abc"',
        "'q'",
        '"',
        "'",
        "user=alice",
        "k=",
        "true",
        "None",
        "nil",
        "()",
        "[]",
        "{}",
        "0x1F",
        "0X",
        "deadbeefcafe",
        "blk_-12",
        "x86_64,",
        "get_id()",
        "org.apache.Foo:",
        "<*>",
        "->",
        "-",
        ".",
        ":",
        "µs",
        "é",
        "١٢",  # Arabic-Indic digits: \d matches them
    ]
)
_TEXT = st.lists(st.tuples(_PIECES, st.sampled_from(["", " ", " ", " ", "  ", "\t"]))).map(
    lambda pairs: "".join(piece + sep for piece, sep in pairs)
)
_ANY_TEXT = st.one_of(
    _TEXT, st.text(max_size=80), st.text(alphabet=":/-.@'\"=0xJan 19", max_size=40)
)


@settings(max_examples=400, deadline=None)
@given(_ANY_TEXT)
def test_mask_equals_the_reference_masker(text: str) -> None:
    """mask() gives the same text as the masker before issue 15, whatever the input."""
    assert mask.mask(text) == reference_mask.mask(text)


@settings(max_examples=400, deadline=None)
@given(_ANY_TEXT)
def test_mask_tokens_equal_the_reference_masker(text: str) -> None:
    """mask_tokens() gives the same tokens as the masker before issue 15, whatever the input."""
    assert mask.mask_tokens(text) == reference_mask.mask_tokens(text)


def test_a_compiled_variant_leaves_out_the_kinds_a_region_cannot_match() -> None:
    """A region without "://" or "@" gets an alternation without the URL and e-mail kinds once
    its variant is compiled (before that, the whole one), and masks the same either way."""
    text = "took 12 ms from 10.0.0.1 at 12:30 user=7"
    first = mask.mask(text)
    with (
        mock.patch.object(mask, "COMPILE_AFTER", 1),
        mock.patch.dict(mask._BY_NEEDS, clear=True),
    ):
        variant = mask._mask_re(text).pattern
        assert "://" not in variant and "@" not in variant
        assert "://" in mask._mask_re("GET http://x/y 12").pattern
        assert mask.mask(text) == first == reference_mask.mask(text)


def test_variants_are_bounded_and_masking_stays_the_same_past_the_bound() -> None:
    """Past MAX_VARIANTS compiled variants, a region with a new combination of needs is masked
    with the whole alternation: memory stays bounded, output unchanged."""
    texts = ["a:1 b", "a@1 b", "a-1 b", "a.1 b", "a/1 b", "a=1 b", "a'1' b", 'a"1" b']
    with (
        mock.patch.object(mask, "COMPILE_AFTER", 1),
        mock.patch.object(mask, "MAX_VARIANTS", 3),
        mock.patch.dict(mask._BY_NEEDS, clear=True),
    ):
        for text in texts:
            assert mask.mask(text) == reference_mask.mask(text)
        assert len(mask._BY_NEEDS) == 3


def _redigit(text: str, draw_digit: st.SearchStrategy[str], data: st.DataObject) -> str:
    """`text` with its ASCII digits replaced by drawn ones, those before an x/X kept."""
    out = []
    for i, char in enumerate(text):
        if char in "0123456789" and text[i + 1 : i + 2] not in ("x", "X"):
            char = data.draw(draw_digit)
        out.append(char)
    return "".join(out)


@settings(max_examples=300, deadline=None)
@given(_ANY_TEXT, st.data())
def test_texts_of_one_digit_shape_mask_like_the_reference(text: str, data: st.DataObject) -> None:
    """Masking results are kept per digit shape (ASCII digits made "1" but the "0" of "0x"), of
    whole lines and of regions and parts: a text whose shape was masked before (other digits,
    same places) still masks exactly like the reference masker, by mask() and mask_tokens()
    (and by their bodies that use the tables of regions and parts without the line's)."""
    other = _redigit(text, st.sampled_from("0123456789"), data)
    assert mask._shape(other) == mask._shape(text)
    for masker in (mask.mask_tokens, mask.mask, mask._mask_tokens, mask._mask):
        masker(text)
    expected = reference_mask.mask_tokens(other)
    assert mask.mask_tokens(other) == mask._mask_tokens(other) == expected
    assert mask.mask(other) == mask._mask(other) == reference_mask.mask(other)


def test_the_zero_of_0x_is_part_of_the_shape() -> None:
    """Text "0x1Fg" masks to "<*>g" (the 0x kind stops at the hex) but "1x1Fg" to "<*>": the shape
    keeps the "0" of "0x", so one is never answered with the other's result."""
    for text in ["ab:0x1Fg", "ab:1x1Fg", "ab:0x1Fg 7", "ab:1x1Fg 7", "ab:00X1Fg", "ab:10X1Fg"]:
        assert mask.mask_tokens(text) == reference_mask.mask_tokens(text)
        assert mask.mask(text) == reference_mask.mask(text)
    assert mask.mask("ab:0x1Fg") == "ab:<*>g"
    assert mask.mask("ab:1x1Fg") == "ab:<*>"


def test_results_kept_per_shape_are_bounded() -> None:
    """At most SHAPES_LIMIT shapes of lines, regions and parts are kept (then the table is
    cleared), and none longer than LINE_CHARS; masking is the same with the bound reached."""
    texts = [f"a{'-' * n}1 x:{n}" for n in range(12)] + ["k=" + "ab1-" * 300 + " end"]
    tables = (
        mask._line_masked_by_shape,
        mask._line_tokens_by_shape,
        mask._masked_by_shape,
        mask._part_kind_by_shape,
    )
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(mask, "SHAPES_LIMIT", 3))
        for table in tables:
            stack.enter_context(mock.patch.dict(table, clear=True))
        for text in texts + texts:
            assert mask.mask_tokens(text) == reference_mask.mask_tokens(text)
            assert mask.mask(text) == reference_mask.mask(text)
            assert mask._mask_tokens(text) == reference_mask.mask_tokens(text)
            assert all(len(table) <= 3 for table in tables)
        assert all(len(key) <= mask.LINE_CHARS for table in tables for key in table)


def test_results_kept_per_shape_are_bounded_in_bytes() -> None:
    """A table of results per shape is also cleared past SHAPES_BYTES bytes of keys and values:
    long lines cannot make it hold 10k entries of a kilobyte each."""
    texts = [f"{n} " + "ab1-cd " * 120 for n in range(40)]  # ~850 characters each
    with (
        mock.patch.object(mask, "SHAPES_BYTES", 5_000),
        mock.patch.dict(mask._line_tokens_by_shape, clear=True),
    ):
        for text in texts:
            assert mask.mask_tokens(text) == reference_mask.mask_tokens(text)
            held = mask._line_tokens_by_shape
            assert sum(len(key) + len(value) + 100 for key, value in held.items()) <= 5_000
        assert held
