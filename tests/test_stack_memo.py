"""A stack string carried in a JSON field is parsed once (issue 15): every record gets what a new
parse would give it, as a Trace of its own (new Frames, new lists), whatever the memo holds."""

from __future__ import annotations

import copy
import dataclasses
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from tests import reference_traces
from tests.test_traces_equivalence import _seen, traces_
from watcher.model import Frame
from watcher.parse import traces

stacks = traces_.map("\n".join)


@settings(max_examples=400, deadline=None)
@given(st.lists(stacks, min_size=1, max_size=5))
def test_a_remembered_stack_parses_as_a_new_one(batch: list[str]) -> None:
    """Cold, then warm: each stack string gives the reference parser's trace (or none)."""
    traces._STACKS.clear()
    for _ in range(2):
        for value in batch:
            expected = (
                _seen(reference_traces.parse_trace(value.splitlines())) if "\n" in value else None
            )
            assert _seen(traces._stack_string(value)) == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(stacks, min_size=1, max_size=6))
def test_a_full_memo_is_emptied_not_wrong(batch: list[str]) -> None:
    traces._STACKS.clear()
    with (
        mock.patch.object(traces, "_STACKS_CAP", 2),
        mock.patch.object(traces, "_LONGEST_STACK", 60),
    ):
        for value in batch * 2:
            expected = (
                _seen(reference_traces.parse_trace(value.splitlines())) if "\n" in value else None
            )
            assert _seen(traces._stack_string(value)) == expected
            assert len(traces._STACKS) <= 2


def test_every_record_gets_a_trace_of_its_own() -> None:
    """What one record's trace is given (a message from its fields, in_app from app_paths, a
    cause) never reaches the next record's."""
    traces._STACKS.clear()
    stack = (
        "TypeError: jwt expired\n    at verify (/app/node_modules/jsonwebtoken/verify.js:190:21)\n"
        "    at check (/app/src/auth.js:18:25)\n  cause: ConnectTimeoutError: slow"
    )
    first = traces._stack_string(stack)
    assert first is not None and first.causes and len(first.frames) == 2
    before = copy.deepcopy(_seen(first))
    first.exception_message = "changed"
    first.exception_type = "Other"
    first.frames[0].in_app = not first.frames[0].in_app
    first.frames[1].file = "/elsewhere.js"
    first.frames.append(Frame("x.js", 1, "f"))
    first.causes.append("more")
    second = traces._stack_string(stack)
    assert second is not None and _seen(second) == before
    assert second is not first and second.frames is not first.frames
    assert second.causes is not first.causes
    assert all(a is not b for a, b in zip(first.frames, second.frames, strict=False))


def test_a_frame_is_copied_whole() -> None:
    """_copy names Frame's fields one by one: a new field must be copied too."""
    assert [f.name for f in dataclasses.fields(Frame)] == ["file", "line", "function", "in_app"]
    assert [f.name for f in dataclasses.fields(traces.Trace)] == [
        "language", "exception_type", "exception_message", "frames", "causes"
    ]  # fmt: skip


def test_trace_from_fields_completes_a_copy() -> None:
    """zap's "error" message fills the copy's message, not the remembered trace's."""
    traces._STACKS.clear()
    stack = 'Traceback (most recent call last):\n  File "/a.py", line 1, in f\nKeyError'
    one = traces.trace_from_fields({"stacktrace": stack, "error": "first"})
    two = traces.trace_from_fields({"stacktrace": stack, "error": "second"})
    assert one is not None and two is not None
    assert (one.exception_type, two.exception_type) == ("KeyError", "KeyError")
    assert (one.exception_message, two.exception_message) == ("first", "second")
