"""The language registry's contract: every registered runtime's fixture traces are read right by
parse_trace and assembled into one event, whatever log line precedes them."""

from __future__ import annotations

import pytest

from watcher.model import RawLine
from watcher.parse.languages import LANGUAGES, Fixture, Language
from watcher.parse.multiline import Assembler
from watcher.parse.traces import parse_trace

CASES = [
    pytest.param(language, fixture, id=f"{language.name}-{n}")
    for language in LANGUAGES
    for n, fixture in enumerate(language.fixtures)
]


def test_every_language_has_fixtures() -> None:
    """A language without fixture traces is untested: the registry refuses none silently."""
    assert all(language.fixtures for language in LANGUAGES)
    assert len({language.name for language in LANGUAGES}) == len(LANGUAGES)


@pytest.mark.parametrize(("language", "fixture"), CASES)
def test_fixture_parses(language: Language, fixture: Fixture) -> None:
    """The trace is recognised as its language, with its exception type and top frame."""
    trace = parse_trace(fixture.text.split("\n"))
    assert trace is not None
    assert trace.language == language.name
    assert trace.exception_type == fixture.exception_type
    top = trace.frames[-1].function if trace.frames else None
    in_app = [f for f in trace.frames if f.in_app]
    top = in_app[-1].function if in_app else top
    assert top == fixture.top_function


def _assemble(lines: list[str]) -> list:
    raw = [RawLine(t, source="s", stream="s", cursor=n, line_no=n) for n, t in enumerate(lines, 1)]
    assembler = Assembler()
    return assembler.feed_batch(raw) + assembler.flush(force=True)


@pytest.mark.parametrize(("language", "fixture"), CASES)
def test_fixture_after_an_error_line_is_one_event(language: Language, fixture: Fixture) -> None:
    """The log line that reported the error and the whole trace are one event."""
    trace = fixture.text.split("\n")
    lines = ["2024-03-04 08:00:00,000 ERROR [app.api] request failed", *trace]
    lines.append("2024-03-04 08:00:01,000 INFO [app.api] next request")
    errors = [e for e in _assemble(lines) if e.is_error]
    assert [(e.first_line, e.last_line) for e in errors] == [(1, len(trace) + 1)]
    assert errors[0].exception_type == fixture.exception_type
    assert errors[0].message == "request failed"


@pytest.mark.parametrize(("language", "fixture"), CASES)
def test_fixture_after_an_info_line_is_its_own_event(language: Language, fixture: Fixture) -> None:
    """After an unrelated INFO line the trace starts its own event."""
    trace = fixture.text.split("\n")
    lines = ["2024-03-04 08:00:00,000 INFO [app.api] served /health", *trace, '{"msg": "x"}']
    errors = [e for e in _assemble(lines) if e.is_error]
    assert [(e.first_line, e.last_line) for e in errors] == [(2, len(trace) + 1)]
