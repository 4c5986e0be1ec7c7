"""Small helpers shared by tests (no fixtures with side effects here)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from watcher.model import RawLine

DATA = Path(__file__).parent / "data"


def raw_lines(text: str, *, source: str = "app", stream: str = "s") -> list[RawLine]:
    """RawLines for each line of text, numbered from 1, cursor = line number."""
    return [
        RawLine(line, source=source, stream=stream, cursor=i, line_no=i)
        for i, line in enumerate(text.splitlines(), start=1)
    ]


def wait_for(cond: Callable[[], object], timeout: float = 10.0, step: float = 0.02) -> object:
    """Poll until cond() is truthy; fail with AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met before the deadline")
