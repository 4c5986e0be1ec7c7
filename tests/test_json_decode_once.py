"""One decode per JSON line (formats.json_error_event): the errors-only check and the parse share
it. The property test holds it against parse_line over generated records with levels in every
spelling, case, numeric and nested form the parser accepts, escaped text, and text that is not
valid JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.model import RawLine
from watcher.parse import formats
from watcher.parse.formats import _LEVEL_ORDER, can_be_error, json_error_event, parse_line
from watcher.parse.levels import WORD_LEVELS
from watcher.parse.multiline import Assembler
from watcher.parse.traces import TRACE_KEYS

LEVEL_KEYS = [*_LEVEL_ORDER, "log"]  # "log": ECS's nested {"log": {"level": …}}


def _cases(word: str) -> st.SearchStrategy[str]:
    """`word` in lower, upper, title or a random mix of cases, sometimes padded."""
    mixed = st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda ups: "".join(c.upper() if up else c for c, up in zip(word, ups, strict=True))
    )
    spelled = st.one_of(st.just(word), st.just(word.upper()), st.just(word.capitalize()), mixed)
    return st.tuples(st.sampled_from(["", " "]), spelled, st.sampled_from(["", " "])).map("".join)


level_words = st.sampled_from(sorted(WORD_LEVELS)).flatmap(_cases)
numbers = st.one_of(
    st.integers(-100, 200),
    st.sampled_from([10, 20, 30, 40, 49, 50, 59, 60, 99, 100, 10**20, -(10**20)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([49.99, 50.0, 5e1, 6e1, 1e400, 0.5]),
)
digit_strings = st.one_of(
    st.integers(0, 999).map(str),
    st.sampled_from(
        ["50", "\u0665\u0660", "\u00b2", "6", "3", "0", "050", " 50", "50.0", "5e1", "-50"]
    ),
)
scalar_levels = st.one_of(
    level_words, numbers, digit_strings, st.booleans(), st.none(), st.text(max_size=8)
)
level_values = st.one_of(
    scalar_levels,
    st.dictionaries(st.sampled_from(LEVEL_KEYS[:12]), scalar_levels, max_size=2),
    st.lists(scalar_levels, max_size=2),
)
keys = st.one_of(
    st.sampled_from(LEVEL_KEYS),
    st.sampled_from(sorted(TRACE_KEYS)),
    st.sampled_from(["msg", "message", "event", "time", "ts", "logger", "name", "record"]),
    st.sampled_from(["errors", "severity", "stacked", "status", "path", "Warning", "x"]),
    st.text(max_size=6),
)
plain_texts = st.one_of(
    st.sampled_from(
        [
            "request completed",
            "GET /api/errors/summary 200",
            "ERROR:  relation does not exist",
            "FooException: bad",
            "dial tcp: connection refused",
            "context deadline exceeded",
            "Warning  BackOff  pod/x",
            "Warning BackOff pod/x",
            "[error] upstream",
            "level=err",
            "at=fail",
            "CRITICAL",
            "Traceback (most recent call last):",
            "i/o timeout",
        ]
    ),
    st.text(max_size=12),
)
values = st.one_of(level_values, plain_texts)
records = st.dictionaries(keys, values, max_size=6)
# a CloudNativePG-like wrapper: a nested record with its own severity
nested = st.fixed_dictionaries(
    {"level": level_values, "msg": plain_texts, "record": st.dictionaries(keys, values, max_size=4)}
)


def _dump(obj: object, spacing: int, ascii_only: bool) -> str:
    seps = ((",", ":"), (", ", ": "), (" ,", " : "))[spacing]
    try:
        return json.dumps(obj, separators=seps, ensure_ascii=ascii_only, allow_nan=True)
    except (ValueError, OverflowError):  # pragma: no cover - json.dumps takes every value drawn
        return "{}"


# the usual record: one level key, a message
simple = st.builds(
    lambda key, level, message: {key: level, "msg": message},
    st.sampled_from(LEVEL_KEYS),
    level_values,
    plain_texts,
)
json_lines = st.builds(
    _dump,
    st.one_of(simple, records, nested),
    st.integers(0, 2),
    st.booleans(),
)


@st.composite
def damaged(draw: st.DrawFn) -> str:
    """A JSON line cut short, with text appended, or with an escape spelling a letter."""
    text = draw(json_lines)
    how = draw(st.sampled_from(["cut", "junk", "escape", "spaces"]))
    if how == "cut":
        return text[: draw(st.integers(1, max(1, len(text))))]
    if how == "junk":
        return text + draw(st.sampled_from(["", " "])) + draw(plain_texts)
    if how == "escape":
        # "\u0065rror": the decoder reads "error" where the text has no such fragment
        at = text.find('"', 1)
        if at < 0 or at + 1 >= len(text):
            return text
        return text[: at + 1] + f"\\u{ord(text[at + 1]):04x}" + text[at + 2 :]
    return text.replace(":", " :\t", 1)


lines = st.one_of(json_lines, damaged())


@settings(max_examples=2000, deadline=None)
@given(text=lines, stated=st.sampled_from([None, {"level": "error"}, {"level": "info"}, {}]))
def test_json_error_event_is_parse_line_for_every_error(text: str, stated: dict | None) -> None:
    """json_error_event gives parse_line's event for every error line (and for the others it
    lets through), None only for lines that are not errors."""
    if not text.startswith("{"):
        return

    def line() -> RawLine:  # parse_line may write to a line's fields: a fresh one each time
        return RawLine(text, line_no=1, fields=None if stated is None else dict(stated))

    full = parse_line(line())
    got = json_error_event(line())
    if got is None:
        assert not full.is_error
    else:
        assert got == full
    assert (got is not None) == can_be_error(line())


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts decoded, by the stdlib or (when installed) orjson: an error line whose orjson
    decode is the stdlib's is decoded by orjson alone (formats._decodes_alike)."""
    calls: list[str] = []

    def counting(loads: Callable[[str], object]) -> Callable[[str], object]:
        def decode(text: str) -> object:
            calls.append(text)
            return loads(text)

        return decode

    monkeypatch.setattr(formats, "_loads", counting(formats._loads))
    if formats._fast_loads is not None:
        monkeypatch.setattr(formats, "_fast_loads", counting(formats._fast_loads))
    return calls


def test_an_error_record_is_decoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_decodes(monkeypatch)
    asm = Assembler(errors_only=True)
    text = '{"level":"error","msg":"payment failed","order":7}'
    events = asm.feed(RawLine(text, line_no=1)) + asm.flush(force=True)
    assert [e.message for e in events] == ["payment failed"]
    assert calls == [text]


def test_a_superscript_level_is_no_level() -> None:
    """int() refuses "²" although str.isdigit accepts it: the check used to raise (and stop a
    replay) on such a record that also said "error"."""
    line = RawLine('{"level":"²","msg":"error budget"}', line_no=1)
    assert can_be_error(line) is False
    event = parse_line(line)
    assert event.level is None and event.message == "error budget"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=12,
)
raw_json = st.one_of(
    st.builds(
        _dump,
        st.dictionaries(st.text(max_size=5), json_values, max_size=5),
        st.integers(0, 2),
        st.booleans(),
    ),
    lines,
    st.sampled_from(
        [
            '{"a":1}\x0c',
            '{"a":1} ',
            '{"a":"\\ud800"}',
            '{"a":"\\ud83d\\ude00"}',
            '{"a":1e400,"b":-0,"c":1E2}',
            '{"a":NaN}',
            '{"a":"x\ty"}',
            '{"a":1,"a":2}',
            "{" * 2000 + "}" * 2000,
            '{"a":' * 600 + "1" + "}" * 600,
        ]
    ),
)


@settings(max_examples=1500, deadline=None)
@given(text=raw_json)
def test_orjson_decides_like_the_stdlib(text: str) -> None:
    """With orjson installed the errors-only check decides as the stdlib decoder does, and the
    event it lets through is the one parse_line gives without orjson."""
    orjson = pytest.importorskip("orjson")
    if not text.startswith("{"):
        return
    fast = formats._fast_loads
    try:
        formats._fast_loads = orjson.loads
        with_orjson = json_error_event(RawLine(text, line_no=1))
        formats._fast_loads = None
        stdlib = json_error_event(RawLine(text, line_no=1))
    finally:
        formats._fast_loads = fast
    assert repr(with_orjson) == repr(stdlib)  # repr: NaN != NaN, but prints alike


def test_an_integer_beyond_64_bits_keeps_its_value() -> None:
    """orjson reads 10**20 as the float 1e+20: it decodes for the check only, so an event's
    fields keep the integer whether orjson is installed or not."""
    text = '{"level":"error","msg":"x","trace_id":100000000000000000000}'
    for event in (parse_line(RawLine(text)), json_error_event(RawLine(text))):
        assert event is not None
        assert event.fields["trace_id"] == 10**20
        assert type(event.fields["trace_id"]) is int


# --- plain lines: a level below error after the timestamp is final ----------------------------

stamps = st.sampled_from(
    [
        "2026-11-21 06:00:02,154",
        "2026-11-21T06:00:02.154Z",
        "2026-11-21 06:00:02",
        "2026-11-21T06:00:02+01:00",
        "1795297946",
        "06:00:02.154",
        "2026/11/21 06:00:02",
        "20261121",
        "2026-11-21",
    ]
)
separators = st.sampled_from([" ", "  ", " | ", " - ", "\t", " stdout F ", ": ", ""])
heads = st.one_of(
    level_words,
    st.sampled_from(["[INFO]", "<warn>", "INFO:root:", "level=info", "lvl=error", "Error:", "x"]),
)
rests = st.lists(
    st.one_of(plain_texts, st.sampled_from(["errors=0", "[main]", "c.f.Bar -", "ERROR", "="])),
    max_size=4,
).map(" ".join)
timestamped = st.tuples(stamps, separators, heads, st.just(" "), rests).map("".join)


@settings(max_examples=3000, deadline=None)
@given(text=timestamped, stated=st.sampled_from([None, {"level": "error"}, {"level": "info"}]))
def test_timestamped_lines_below_error_are_never_errors(text: str, stated: dict | None) -> None:
    """can_be_error says False for a timestamped line only where parse_line finds no error."""
    line = RawLine(text, line_no=1, fields=None if stated is None else dict(stated))
    if not can_be_error(line):
        again = RawLine(text, line_no=1, fields=None if stated is None else dict(stated))
        assert not parse_line(again).is_error


def test_an_info_line_that_mentions_errors_is_not_parsed() -> None:
    """The level after the timestamp decides: the words after it need no full parse."""
    for text in (
        "2026-11-21 06:00:02,154 INFO [api.orders] order 219446 validated, no validation errors",
        "2026-11-21T06:00:02.154Z WARN retrying after a failed attempt",
    ):
        assert not can_be_error(RawLine(text)), text
    for text in (
        "2026-11-21 06:00:02,154 ERROR [api.orders] invalid order",
        "2026-11-21 06:00:02,154 level=info msg=x err=boom",
        "2026-11-21 06:00:02,154 order failed",
    ):
        assert can_be_error(RawLine(text)), text


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-21 06:00:02,154 some information FooException: bad",
        "service debug hook ConnectionRefused: connection refused",
        "0s Warning BackOff pod/api-7d9 Back-off restarting the container",
    ],
)
def test_the_check_lets_through_errors_it_used_to_skip(text: str) -> None:
    """ "info"/"debug" in a line ended the check before the level-less reports were looked for,
    and a kubectl Warning row needed two spaces after "Warning": these errors were skipped."""
    line = RawLine(text, line_no=1)
    assert parse_line(line).is_error
    assert can_be_error(line)
