"""Variable masking: each kind of value becomes `<*>`, the words of the statement stay."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.group.mask import _KINDS, WILDCARD, is_variable, mask, mask_tokens

# the specification: the whole alternation applied to the whole line in one pass
_REFERENCE = re.compile("|".join(f"(?:{kind})" for kind in _KINDS))
# log-like text: words that are months, units, booleans, hex, TLDs, and the punctuation and
# digits that the kinds key on, glued with single and double spaces and tabs
_PIECES = st.sampled_from(
    [
        "Jan",
        "Mon",
        "May",
        "Sept",
        "true",
        "None",
        "ms",
        "s",
        "KB",
        "bytes",
        "h",
        "%",
        "deadbeefcafe",
        "com",
        "io",
        "org.apache.Foo",
        "a.b.cd",
        "key=",
        "=",
        "-",
        "->",
        "(",
        ")",
        "()",
        "[",
        "]",
        '"',
        "'",
        "/",
        ":",
        "::",
        ".",
        ",",
        ";",
        "@",
        "0x1f",
        "12",
        "3.5",
        "10.0.0.1:80",
        "2024-01-02",
        "12:34",
        "blk_-12",
        "x86_64,",
        "get_id()",
        "(TID",
        "<*>",
        "µs",
        "é",
    ]
)
_TEXT = st.lists(st.tuples(_PIECES, st.sampled_from(["", " ", " ", "  ", "\t"]))).map(
    lambda pairs: "".join(piece + sep for piece, sep in pairs)
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("took 1234 steps", "took <*> steps"),
        ("offset -12.5 applied", "offset <*> applied"),
        ("id 0xdeadBEEF", "id <*>"),
        ("commit 9f86d081884c7d65", "commit <*>"),
        ("req 123e4567-e89b-12d3-a456-426614174000 done", "req <*> done"),
        ("from 10.0.0.12:5432 ok", "from <*> ok"),
        ("peer fe80:0:0:0:202:b3ff:fe1e:8329 up", "peer <*> up"),
        ("open /var/log/app/main.log failed", "open <*> failed"),
        ("GET https://api.example.com/v1/x?q=1 500", "GET <*> <*>"),
        ("mail bob.smith@example.org bounced", "mail <*> bounced"),
        ("host db.internal.example.com down", "host <*> down"),
        ("at 2024-01-02T03:04:05.123Z boom", "at <*> boom"),
        ("at Sun Jul 10 03:55:15 2005 boom", "at <*> boom"),
        ("at 12:34:56 boom", "at <*> boom"),
        ("took 12ms", "took <*>"),
        ("took 3.5 s and 10 MB", "took <*> and <*>"),
        ("sent 1234 bytes (1.2 KB) ok", "sent <*> ok"),
        ("service 'sparkDriver' started", "service <*> started"),
        ('key "abc" missing', "key <*> missing"),
        ("user=alice retry=3", "user=<*> retry=<*>"),
        ("enabled: true", "enabled: <*>"),
        ("block blk_-1608999687919862906 served", "block <*> served"),
    ],
)
def test_each_variable_kind_is_masked(text: str, expected: str) -> None:
    """Every variable kind is replaced by one wildcard and the constant words are kept."""
    assert mask(text) == expected


def test_constant_words_and_identifiers_are_kept() -> None:
    """Words, dotted class names and source file names are not variables."""
    text = "org.apache.hadoop.Foo failed in main.py: connection refused"
    assert mask(text) == text


def test_quoted_phrase_keeps_its_words() -> None:
    """A quoted phrase keeps its words so that GET and POST lines stay apart."""
    assert mask('"GET /v2/servers/detail HTTP/1.1" 200') == '"GET <*> HTTP/<*>" <*>'


def test_empty_line_is_empty() -> None:
    """Masking an empty message gives an empty message."""
    assert mask("") == ""


def test_wildcard_constant() -> None:
    """The wildcard is the Loghub-style `<*>`."""
    assert WILDCARD == "<*>"


@settings(max_examples=400, deadline=None)
@given(st.one_of(_TEXT, st.text(max_size=60)))
def test_fast_path_equals_one_pass_regex(text: str) -> None:
    """The part-by-part fast path masks exactly like the one-pass alternation."""
    assert mask(text) == _REFERENCE.sub(WILDCARD, text)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_TEXT, st.text(max_size=60)))
def test_mask_tokens_are_the_masked_tokens(text: str) -> None:
    """mask_tokens gives the tokens of mask(), variable-only tokens made one wildcard."""
    expected = [WILDCARD if is_variable(tok) else tok for tok in mask(text).split()]
    assert mask_tokens(text) == expected
