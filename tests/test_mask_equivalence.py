"""The masker of issue 15 (one fullmatch per part, results per digit shape, the kinds compiled so
that a position where they cannot match costs little) masks every input exactly like the masker
before it, kept in tests/reference_mask.py."""

from __future__ import annotations

import contextlib
import re
from unittest import mock

import pytest
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


# key=value parts next to what could continue into or out of them: units, months and days,
# digits, hex, booleans, brackets, other key=value parts (the KEYVALUE shortcut of mask.py)
_KV_KEYS = st.sampled_from(
    ["seq", "ref", "k", "s", "ms", "h", "msg", "Jan", "Sunday", "deadbeef", "true", "x_", "_",
     "src", "user", "nil", "B", "KB", "days", "dayz", "x1", "é"]
)  # fmt: skip
_KV_VALUES = st.sampled_from(
    ["1", "12", "2005", "12ms", "5s", "3h", "10B", "4days", "12msx", "f5cae3bf", "04a012e8",
     "0x1f", "Jan", "Jul5", "Monday", "Sun", "gen", "alice", "true", "None", "x", "_", "12_3",
     "1e5", "", "a.b", "a=b", "12.5", "١٢"]
)  # fmt: skip
_KV_PARTS = st.one_of(
    st.builds(lambda k, v, p: f"{k}={v}{p}", _KV_KEYS, _KV_VALUES, st.sampled_from(["", ",", ")"])),
    _PIECES,
    st.sampled_from(["ms", "s", "KB", "Jul", "2005", "(1", "KB)", "12", "word", "done."]),
)
_KV_TEXT = st.lists(_KV_PARTS, max_size=8).map(" ".join)


@settings(max_examples=600, deadline=None)
@given(_KV_TEXT)
def test_key_value_parts_mask_like_the_reference_masker(text: str) -> None:
    """A `key=value` part masked without the regex ("seq=1" -> "seq=<*>") gives what the
    reference masker gives, whatever its key, its value and its neighbours."""
    for table in (
        mask._line_masked_by_shape,
        mask._line_tokens_by_shape,
        mask._masked_by_shape,
        mask._part_kind_by_shape,
    ):
        table.clear()  # each text masked afresh, not from a shape an earlier example kept
    assert mask.mask(text) == reference_mask.mask(text)
    assert mask.mask_tokens(text) == reference_mask.mask_tokens(text)


def test_key_value_parts_take_no_regex() -> None:
    """A run of key=value parts of a constant word and a plain value is masked part by part:
    the alternation is not run on it (a flood of unique `ref=<hex>` values ran it per line)."""
    text = "charge failed ref=f5cae3bf seq=12 src=gen"
    with mock.patch.object(mask, "_sub", side_effect=AssertionError("regex run")):
        mask._line_tokens_by_shape.clear()
        mask._line_masked_by_shape.clear()
        tokens = mask.mask_tokens(text)
        masked = mask.mask(text)
    assert tokens == reference_mask.mask_tokens(text) == ["charge", "failed", "ref=<*>",
                                                          "seq=<*>", "src=<*>"]  # fmt: skip
    assert masked == reference_mask.mask(text)


_HEADS = st.sampled_from(
    ["", "Jan", "Sept", "Sun", "Mon", "true", "False", "NULL", "None", "nil", "deadbeef",
     "abcdefa", "KB", "KiB", "Kbytes", "bytes", "Bytes", "ms", "s", "h", "hrs", "days", "min",
     "B", "b", "x", "Q"]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(_HEADS, st.text(alphabet="abcdefhimnorstuyABEFKLNRSTUx", max_size=6))
def test_a_word_of_letters_is_constant_exactly_when_the_part_regex_says(
    head: str, tail: str
) -> None:
    """The string test of a word of ASCII letters agrees with _PART_RE's constant branch."""
    word = head + tail
    if not word:
        return
    match = mask._PART_RE.fullmatch(word)
    by_regex = match is not None and match.lastgroup == "constant"
    assert mask._not_constant_word(word) is not by_regex


# runs of word characters, ".", "+" and "-" with digits near and past the 32 the catch-all looks
# ahead, Unicode letters and digits, and units, ".", "," after numbers (the rewritten kinds)
_RUN_TEXT = st.one_of(
    st.text(alphabet="aZ_.+-1090é\u0661€ x:/@(KBms%,", max_size=120),
    st.text(alphabet="afF09:./\\-=\"'()[]{}<>+ xT", max_size=60),
    st.lists(
        st.sampled_from(["true", "None", "nil", "Jul", "Mon", "10", "2005", "12:30", "1.2.3.4",
                         "fe80::1", "a.b.com", "x.y.zz", "C:", "/a/b", "deadbeef", "=", "k=",
                         "0x", "-", "<", ">=", "5", "ms", " ", "a", "_", "é", "()", '"', "'"])
    ).map("".join),
    st.lists(
        st.sampled_from(["a" * 31, "b" * 32, "c-" * 17, "1", "٣", "é", "x", " ", ".", "12", "ms",
                         " (1.5 KB)", "0x1f", "-", "+", "12.", ",5", "3 s", "Ω"])
    ).map("".join),
    _TEXT,
)  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(_RUN_TEXT)
def test_the_kinds_as_compiled_match_like_the_kinds_as_written(text: str) -> None:
    """Each kind of _FAST_KINDS (its alternatives, rewritten so that a position where it cannot
    match costs little) matches the same spans as the kind of _KINDS it stands for, alone and in
    the whole alternation; an alternative not marked as able to follow an ASCII letter or digit
    matches at no position right after one (the gate of the alternation relies on it)."""
    for fast, plain in zip(mask._FAST_KINDS, mask._KINDS, strict=True):
        spans = [m.span() for m in re.finditer("|".join(alt for alt, _ in fast), text)]
        assert spans == [m.span() for m in re.finditer(plain, text)], plain
        for alt, follows in fast:
            if not follows:
                compiled = re.compile(alt)
                after = [i for i in range(1, len(text)) if text[i - 1] in _ASCII_ALNUM]
                assert all(compiled.match(text, i) is None for i in after), alt
    assert mask._FULL_RE.sub("<*>", text) == reference_mask._MASK_RE.sub("<*>", text)


_ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


@pytest.mark.parametrize("gap", [30, 31, 32, 33, 34])
def test_the_catch_all_looks_32_characters_into_a_run(gap: int) -> None:
    """Inside a run (after the 0x kind stopped at "g"), a digit counts only within 33 characters:
    the look-ahead the catch-all got keeps that bound."""
    text = "0x1fg" + "a" * gap + "7"
    assert mask._FULL_RE.sub("<*>", text) == reference_mask._MASK_RE.sub("<*>", text)
    assert mask.mask(text) == reference_mask.mask(text)


_SHAPE_BY_REGEX = re.compile(rb"[1-9]|0(?![xX])")


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(alphabet="0x0X1290xaé ", max_size=40), _ANY_TEXT))
def test_the_shape_is_every_digit_made_one_but_the_zero_of_0x(text: str) -> None:
    """_shape() is the shape as defined, every ASCII digit made "1" but a "0" before x or X
    ("00x" -> "10x", "0x0X" kept), with the kept "0"s spelled as the byte 0xff (the only "0"s left
    in a shape, and a byte no UTF-8 text holds: one key per shape)."""
    raw = text.encode("utf-8", "surrogatepass")
    assert mask._shape(text) == _SHAPE_BY_REGEX.sub(b"1", raw).replace(b"0", b"\xff")


@settings(max_examples=300, deadline=None)
@given(_ANY_TEXT)
def test_mask_joined_is_the_tokens_joined(text: str) -> None:
    """mask_joined() is the reference masker's tokens joined by spaces, first (cold) and from the
    line cache, and splits back into mask_tokens()."""
    expected = " ".join(reference_mask.mask_tokens(text))
    assert mask.mask_joined(text) == expected
    assert mask.mask_joined(text) == expected
    assert mask.mask_joined(text).split() == mask.mask_tokens(text)


_KV_KEYS_MORE = st.one_of(
    _KV_KEYS,
    st.sampled_from(["s_x", "ms_", "Janitor", "deadbeefx", "KB_1", "nil_", "truex", "a=b", ""]),
    st.text(alphabet="aefsmBK_=J", max_size=10),
)
_KV_VALUES_MORE = st.one_of(
    _KV_VALUES,
    st.sampled_from(["12KiB", "3bytes", "0kbytes", "5µs", "7%", "_", "1_", "Mon1", "Ma", "12sec"]),
    st.text(alphabet="0123sbyKiBmhé_-x", max_size=8),
    st.text(max_size=8),
)


@settings(max_examples=800, deadline=None)
@given(
    st.one_of(
        st.builds(lambda k, v: f"{k}={v}", _KV_KEYS_MORE, _KV_VALUES_MORE),
        _KV_PARTS,
        st.text(max_size=20),
    )
)
def test_key_value_decided_in_halves_is_the_key_value_regex(part: str) -> None:
    """_is_keyvalue (the key's half kept per key, the value's half by string tests) says what
    _KEYVALUE_RE's fullmatch says, whether the key was seen before or not."""
    expected = mask._KEYVALUE_RE.fullmatch(part) is not None
    mask._keys.clear()
    assert mask._is_keyvalue(part) is expected
    assert mask._is_keyvalue(part) is expected  # the key's half now from the table
