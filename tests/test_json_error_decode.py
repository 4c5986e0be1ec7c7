"""A JSON error line is decoded once (issue 15, mixed replay): the event takes orjson's decode
from the errors-only check where it is the stdlib's, so the event must be the one parse_line
makes, which always decodes with the stdlib."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.model import RawLine
from watcher.parse import formats
from watcher.parse.formats import json_error_event, parse_line

pytestmark = pytest.mark.skipif(formats._fast_loads is None, reason="orjson is not installed")

numbers = st.one_of(
    st.integers(),
    st.integers(2**63 - 3, 2**64 + 3),
    st.integers(-(2**63) - 3, -(2**63) + 3),
    st.integers(10**18, 10**21),
    st.floats(allow_nan=False, allow_infinity=False),
)
leaves = st.none() | st.booleans() | numbers | st.text(max_size=8)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)
_TRACE = 'Traceback (most recent call last):\n  File "/a.py", line 1, in f\nE: x'
records = st.fixed_dictionaries(
    {"level": st.sampled_from(["error", "fatal", 50])},
    optional={
        "msg": st.text(max_size=12),
        "n": numbers,
        "data": values,
        "exception": st.just(_TRACE),
    },
)


def _both(text: str) -> None:
    event = json_error_event(RawLine(text, line_no=1))
    assert event is not None
    assert event == parse_line(RawLine(text, line_no=1)), text


@settings(max_examples=400, deadline=None)
@given(records, st.booleans())
def test_an_error_record_is_the_event_the_stdlib_decode_makes(record: dict, ascii_: bool) -> None:
    """Integers at and beyond 64 bits (orjson makes floats of the latter), floats, strings,
    repeated keys, nested values: the same fields, values and order."""
    _both(json.dumps(record, ensure_ascii=ascii_))
    _both(json.dumps(record)[:-1] + ', "level": "critical"}')  # a repeated key


@pytest.mark.parametrize("depth", [100, 255, 256, 600, 950, 990, 1000, 1023, 1030])
def test_deep_nesting_decodes_as_the_stdlib_does(depth: int) -> None:
    """Nesting the stdlib's recursion limit refuses (a plain-text fallback) but orjson reads."""
    _both('{"level": "error", "a": ' + "[" * depth + "]" * depth + "}")


@pytest.mark.parametrize(
    "text",
    [
        '{"level": "error", "id": "12345678901234567890", "n": 12345678901234567890}',
        '{"level": "error", "n": -9223372036854775809, "ts": 1795240802.176}',
        '{"level": "error", "n": 1e19}',  # a float as large: the second decode, the same event
        '{"level": "error", "msg": "truncated',  # not JSON: the plain-text fallback
        '{"level": "error", "msg": "x"} trailing',
        '{"level": "error", "msg": "\\ud800 lone"}',
        '{"level": "error", "v": NaN}',
    ],
)
def test_lines_orjson_reads_otherwise_or_not_at_all(text: str) -> None:
    _both(text)


def test_what_the_event_may_take_from_orjson() -> None:
    assert formats._decodes_alike({"a": [1.5, {"b": 2**63 - 1}], "c": -(9.2e18)})
    assert not formats._decodes_alike({"a": [{"b": 9.3e18}]})
    assert not formats._decodes_alike({"a": -(2.0**63)})
