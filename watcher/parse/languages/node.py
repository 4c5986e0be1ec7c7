"""Node/JavaScript: `TypeError: msg` + `    at fn (file.js:1:2)`, causes, AggregateError members."""

from __future__ import annotations

import re

from watcher.model import Frame
from watcher.parse.languages.common import (
    Fixture,
    FrameFields,
    Language,
    Trace,
    header_before,
    int_or_none,
    is_in_app,
    remembered,
)
from watcher.parse.levels import level_word

# --- Node / JavaScript -----------------------------------------------------------------------

_NODE_FRAME = re.compile(r"\s*at\s+(?:(.+?)\s+\(([^()]*)\)|(\S+))\s*$")
_NODE_LOCATION = re.compile(r"(.*?):(\d+)(?::\d+)?$")
_NODE_HEADER = re.compile(r"(?:Uncaught\s+)?([A-Za-z_$][\w$.]*)(?:\s\[[^\]]*\])?(?::\s?(.*))?$")


# the error class after a log prefix: "2024-01-01T00:00:00.000Z ERROR TypeError: x is undefined"
_NODE_HEADER_INSIDE = re.compile(
    r"(?:^|\s)((?:Uncaught\s+)?[A-Z][\w$]*(?:Error|Exception))(?::\s?(.*))?$"
)


def _node_header(line: str) -> tuple[str, str | None] | None:
    match = _NODE_HEADER.match(line)
    if match is None:
        inside = _NODE_HEADER_INSIDE.search(line)
        if inside is None:
            return None
        return inside.group(1).removeprefix("Uncaught").strip(), inside.group(2)
    name = match.group(1)
    # PascalCase or *Error: a class name, not a wrapped message line or a level word
    looks_like_class = name[0].isupper() or "Error" in name or "Exception" in name
    # "Error" is also a level word, but above a frame it is JavaScript's base class
    if looks_like_class and (name == "Error" or level_word(name) is None):
        return name, match.group(2)
    return None


_node_header_remembered = remembered(_node_header)


def _node_frame(function: str | None, location: str) -> FrameFields | None:
    match = _NODE_LOCATION.match(location)
    if not match:
        return None  # "native", "index 0", eval frames: no file to point at
    file = match.group(1)
    if file.startswith("file://"):
        file = file[7:]
    function = (function or "<anonymous>").removeprefix("async ")
    return file, int_or_none(match.group(2)), function, is_in_app(file)


_NO_FRAME: tuple[bool, FrameFields | None] = (False, None)


@remembered  # per line with "at " (memo.remember)
def _frame_fields(line: str) -> tuple[bool, FrameFields | None]:
    """(whether `line` is a frame line, the fields of its Frame if it names a file: None for
    "native", "index 0")."""
    match = _NODE_FRAME.match(line)
    if match is None:
        return _NO_FRAME
    return True, _node_frame(match.group(1), match.group(2) or match.group(3))


def _parse_node(lines: list[str]) -> Trace:
    frames: list[Frame] = []
    header: tuple[str, str | None] | None = None
    seen_frame = False
    for index, line in enumerate(lines):
        is_frame, found = _frame_fields(line) if "at " in line else _NO_FRAME
        if is_frame:
            if not seen_frame:
                header = header_before(lines, index, _node_header_remembered)
                seen_frame = True
            if found is not None:
                frames.append(Frame(*found))
        elif seen_frame and line[:1] not in (" ", "\t", ""):
            break  # a second error printed after this one
    frames.reverse()
    exc_type, exc_msg = header if header else (None, None)
    return Trace("node", exc_type, exc_msg, frames, _node_causes(lines))


# "  cause: ConnectTimeoutError: …", "  cause: Error [ERR_SOCKET_CONNECTION_TIMEOUT]: …",
# "  code: 'ETIMEDOUT'", and an AggregateError's members ("    Error: connect ETIMEDOUT …")
_NODE_CAUSE = re.compile(
    r"\s+(?:cause:\s+\[?([A-Z]\w*)(?: \[([A-Z_]+)\])?|code: '([A-Z_0-9]+)'"
    r"|Error: \w+ (E[A-Z]+)\b)"
)


def _node_causes(lines: list[str]) -> list[str]:
    causes: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t") and ("cause" in line or "code" in line or "Error: " in line):
            match = _NODE_CAUSE.match(line)
            if match:
                causes.extend(g for g in match.groups() if g and g not in causes)
    return causes


_BRACKET_HEADER = re.compile(r"\s*\[([A-Z]\w*(?:Error|Exception|Rejection))(?:: ([^\]]*))?\]")


def _bracket_only(line: str, lines: list[str]) -> Trace | None:
    """Node's print of an error without its stack: "[TypeError: fetch failed] {"."""
    bracket = _BRACKET_HEADER.match(line)
    if bracket is None:
        return None
    return Trace("node", bracket.group(1), bracket.group(2), [], _node_causes(lines))


LANGUAGE = Language(
    frame_start="at ",
    name="node",
    parse=_parse_node,
    is_frame=lambda line, stripped: (
        stripped.startswith("at ") and bool(_NODE_FRAME.match(stripped))
    ),
    header_only=_bracket_only,
    fixtures=(
        Fixture(
            "TypeError: Cannot read properties of undefined (reading 'id')\n"
            "    at customerId (/srv/app/orders.js:5:25)\n"
            "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)",
            "TypeError",
            "customerId",
        ),
        Fixture(
            "/srv/app/refunds.js:5\n    throw new Error(`refund window closed`);\n"
            "          ^\n\nError: refund window closed\n"
            "    at refund (/srv/app/refunds.js:5:11)\n\nNode.js v20.20.2",
            "Error",
            "refund",
        ),
    ),
)
