"""The group table's per-event shortcuts (issue 15, mixed replay) against the plain code: a trace
fingerprint remembered by what it is made of, and the tag count that skips records naming no
tag field."""

from __future__ import annotations

import hashlib
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.group import table
from watcher.group.table import (
    FINGERPRINT_VERSION,
    TAG_FIELDS,
    _base_type,
    _count_tags,
    _function,
    normalise_path,
    trace_fingerprint,
)
from watcher.model import ErrorGroup, Frame, LogEvent


def _plain_fingerprint(event: LogEvent) -> str:
    """trace_fingerprint (version 2) as it was, made again for every event."""
    top = event.top_frame
    parts = [f"v{FINGERPRINT_VERSION}", _base_type(event.exception_type) or "trace"]
    if top is not None:
        parts.append(f"{normalise_path(top.file)}:{_function(top.function)}")
    key = "|".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(key, digest_size=6).hexdigest()


frames = st.builds(
    Frame,
    st.sampled_from(["/app/a.py", "/srv/app/a.py", "./a.py", "a.py", "C:\\app\\a.py", "/x/b.go"]),
    st.none() | st.integers(0, 3),
    st.sampled_from(["f", "async f", "Object.f", "g", "main.(*T).f", ""]),
    st.booleans(),
)
events = st.builds(
    LogEvent,
    message=st.just("boom"),
    exception_type=st.none()
    | st.sampled_from(["", "KeyError", "Uncaught KeyError", " KeyError", "x.KeyError", "\ud800"]),
    frames=st.lists(frames, max_size=3),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(events, min_size=1, max_size=8))
def test_a_remembered_fingerprint_is_the_one_made_again(batch: list[LogEvent]) -> None:
    """Whatever came before (the cache warm with near misses: the same type or file, another
    function, in-app or not), an event's fingerprint is the one its parts make."""
    for event in batch * 2:
        assert trace_fingerprint(event) == _plain_fingerprint(event)


def _group() -> ErrorGroup:
    return ErrorGroup("g", "trace", "t", "c", "low", False, "", None, None, [], 0, 0.0, 0.0)


def _plain_tags(group: ErrorGroup, fields: dict[str, object]) -> None:
    """_count_tags as it was: the first key of each tag present, by next() of a generator."""
    for tag, keys in TAG_FIELDS:
        value = next((fields[k] for k in keys if k in fields), None)
        if value is None or isinstance(value, dict | list):
            continue
        values = group.tags.setdefault(tag, {})
        name = str(value)[:80]
        if name not in values and len(values) >= table.MAX_TAG_VALUES:
            name = "other"
        values[name] = values.get(name, 0) + 1


tag_keys = st.sampled_from([key for _, keys in TAG_FIELDS for key in keys] + ["msg", "level"])
tag_values = st.none() | st.sampled_from(["h1", "h2", 3, 2.5, True, [], {}, "x" * 90])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(tag_keys, tag_values, max_size=5), max_size=30))
def test_tags_are_counted_as_the_plain_loop_counts_them(records: list[dict]) -> None:
    """Records naming no tag field, one, several keys of one tag (the first wins), values that
    are not counted (None, lists, dicts): the same counts, "other" past the limit included."""
    counted, expected = _group(), _group()
    with mock.patch.object(table, "MAX_TAG_VALUES", 2):
        for fields in records:
            _count_tags(counted, fields)
            _plain_tags(expected, fields)
            assert counted.tags == expected.tags
