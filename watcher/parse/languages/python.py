"""Python tracebacks: `Traceback (most recent call last):`, chained reports, clipped frames."""

from __future__ import annotations

import re

from watcher.model import Frame
from watcher.parse.languages.common import (
    Fixture,
    Language,
    Trace,
    frame,
    int_or_none,
)

# --- Python ----------------------------------------------------------------------------------

_PY_FRAME = re.compile(r'\s*File "([^"]*)", line (\d+)(?:, in (.*))?')
_PY_EXCEPTION = re.compile(r"([A-Za-z_][\w.]*)(?::\s?(.*))?$")
_PY_TB = "Traceback (most recent call last)"


def _parse_python(lines: list[str]) -> Trace:
    """The last traceback of a (possibly chained) report wins: it is the one that escaped."""
    frames: list[Frame] = []
    exc_type = exc_msg = None
    in_tb = False
    causes: list[str] = []
    for line in lines:
        if line.startswith(_PY_TB):
            if exc_type:
                causes.append(exc_type)  # the exception this one was raised while handling
            frames, exc_type, exc_msg, in_tb = [], None, None, True
        elif not in_tb:
            continue
        elif line[:1] in (" ", "\t"):
            match = _PY_FRAME.match(line)
            if match:
                file, number, function = match.groups()
                frames.append(frame(file, int_or_none(number), (function or "").strip()))
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
        match = _PY_FRAME.match(line)
        if match:
            file, number, function = match.groups()
            frames.append(frame(file, int_or_none(number), (function or "").strip()))
        elif frames and exc_type is None and line[:1] not in (" ", "\t", ""):
            found = _PY_EXCEPTION.match(line)  # the clipped traceback's final exception line
            if found and ("." in found.group(1) or found.group(1).endswith(("Error", "Exception"))):
                exc_type, exc_msg = found.group(1), found.group(2)
    return Trace("python", exc_type, exc_msg, frames)


def parse(lines: list[str]) -> Trace:
    """A traceback with its header, or the frames of one that was clipped."""
    for line in lines:
        if line.startswith(_PY_TB):
            return _parse_python(lines)
    return _parse_python_frames_only(lines)


LANGUAGE = Language(
    frame_start='File "',
    name="python",
    parse=parse,
    is_frame=lambda line, stripped: stripped.startswith('File "'),
    is_start=lambda line: line.startswith(_PY_TB),
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
