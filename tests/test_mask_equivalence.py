"""The masker of issue 15 (one fullmatch per part, the alternation compiled per feature set)
masks every input exactly like the masker before it, kept in tests/reference_mask.py."""

from __future__ import annotations

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
