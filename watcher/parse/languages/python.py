"""Python tracebacks: `Traceback (most recent call last):`, chained reports, clipped frames."""

from __future__ import annotations

import re

from watcher.model import Frame
from watcher.parse.languages.common import (
    Fixture,
    FrameFields,
    Language,
    Trace,
    int_or_none,
    is_in_app,
    remembered,
)

# --- Python ----------------------------------------------------------------------------------

_PY_FRAME = re.compile(r'\s*File "([^"]*)", line (\d+)(?:, in (.*))?')
_PY_EXCEPTION = re.compile(r"([A-Za-z_][\w.]*)(?::\s?(.*))?$")
_PY_TB = "Traceback (most recent call last)"


@remembered  # per frame line (memo.remember)
def _frame_fields(line: str) -> FrameFields | None:
    """What `line` says as a frame (file, line, function, in_app), or None when it is none."""
    match = _PY_FRAME.match(line)
    if match is None:
        return None
    file, number, function = match.groups()
    return file, int_or_none(number), (function or "").strip(), is_in_app(file)


def _parse_python(lines: list[str], start: int = 0) -> Trace:
    """The last traceback of a (possibly chained) report wins: it is the one that escaped.
    `start`: the index of the first "Traceback" line (nothing before it is read)."""
    frames: list[Frame] = []
    exc_type = exc_msg = None
    in_tb = False
    causes: list[str] = []
    for index in range(start, len(lines)):
        line = lines[index]
        if line.startswith(_PY_TB):
            if exc_type:
                causes.append(exc_type)  # the exception this one was raised while handling
            frames, exc_type, exc_msg, in_tb = [], None, None, True
        elif not in_tb:
            continue
        elif line[:1] in (" ", "\t"):
            found = _frame_fields(line)
            if found is not None:
                frames.append(Frame(*found))
        elif exc_type is None and line:
            match = _PY_EXCEPTION.match(line)
            if match:
                exc_type, exc_msg = match.group(1), match.group(2)
    return Trace("python", exc_type, exc_msg, frames, causes)


def _parse_python_frames_only(lines: list[str]) -> Trace:
    """Frames without a "Traceback" header, e.g. a stack_info dump or a clipped traceback."""
    frames: list[Frame] = []
    exc_type = exc_msg = None
    for line in lines:
        found = _frame_fields(line)
        if found is not None:
            frames.append(Frame(*found))
        elif frames and exc_type is None and line[:1] not in (" ", "\t", ""):
            match = _PY_EXCEPTION.match(line)  # the clipped traceback's final exception line
            if match and ("." in match.group(1) or match.group(1).endswith(("Error", "Exception"))):
                exc_type, exc_msg = match.group(1), match.group(2)
    return Trace("python", exc_type, exc_msg, frames)


def parse(lines: list[str]) -> Trace:
    """A traceback with its header, or the frames of one that was clipped."""
    for index, line in enumerate(lines):
        if line.startswith(_PY_TB):
            return _parse_python(lines, index)
    return _parse_python_frames_only(lines)


LANGUAGE = Language(
    frame_start='File "',
    name="python",
    parse=parse,
    is_frame=lambda line, stripped: stripped.startswith('File "'),
    is_start=lambda line: line.startswith(_PY_TB),
    start_firsts=_PY_TB[0],
    fixtures=(
        Fixture(
            'Traceback (most recent call last):\n  File "/app/api.py", line 10, in handle\n'
            "    do()\nValueError: bad input",
            "ValueError",
            "handle",
        ),
        Fixture(
            'Traceback (most recent call last):\n  File "/app/db.py", line 3, in q\n'
            "KeyError: 'k'\n\nDuring handling of the above exception, another exception "
            'occurred:\n\nTraceback (most recent call last):\n  File "/app/api.py", line 9, in '
            "get\nLookupError: missing",
            "LookupError",
            "get",
        ),
    ),
)
