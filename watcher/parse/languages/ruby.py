"""Ruby: `file.rb:12:in 'fn': msg (Error)` + `from file.rb:3:in 'g'` frames."""

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

# --- Ruby ------------------------------------------------------------------------------------

_RUBY_FRAME = re.compile(r"\s*(?:from\s+)?(\S+?):(\d+):in [`']([^']*)'")
_RUBY_TYPE_SUFFIX = re.compile(r"(.*) \(([A-Z]\w*(?:::[A-Z]\w*)*)\)$")
_RUBY_TYPE_PREFIX = re.compile(r"([A-Z]\w*(?:::[A-Z]\w*)*) \((.*)\):?$")


def _ruby_error(line: str) -> tuple[str, str | None] | None:
    match = _RUBY_TYPE_SUFFIX.match(line)
    if match:
        return match.group(2), match.group(1)
    match = _RUBY_TYPE_PREFIX.match(line)
    return (match.group(1), match.group(2)) if match else None


def _parse_ruby(lines: list[str]) -> Trace:
    frames: list[Frame] = []
    error: tuple[str, str | None] | None = None
    for line in lines:
        match = _RUBY_FRAME.match(line)
        if match:
            file, number, function = match.groups()
            frames.append(frame(file, int_or_none(number), function))
            rest = line[match.end() :]
            if error is None and rest.startswith(": "):
                error = _ruby_error(rest[2:])  # "app.rb:3:in 'foo': msg (RuntimeError)"
        elif error is None and not frames:
            error = _ruby_error(line.strip())
    frames.reverse()
    exc_type, exc_msg = error if error else (None, None)
    return Trace("ruby", exc_type, exc_msg, frames)


def _error_line(line: str, lines: list[str]) -> Trace | None:
    """ "app.rb:3:in 'foo': msg (RuntimeError)" alone: the error and where it was raised."""
    match = _RUBY_FRAME.match(line)
    if not match or not line[match.end() :].startswith(": "):
        return None
    error = _ruby_error(line[match.end() + 2 :])
    if not error:
        return None
    file, number, function = match.groups()
    return Trace("ruby", error[0], error[1], [frame(file, int_or_none(number), function)])


LANGUAGE = Language(
    name="ruby",
    parse=_parse_ruby,
    is_frame=lambda line, stripped: ":in " in stripped and bool(_RUBY_FRAME.match(stripped)),
    header_only=_error_line,
    fixtures=(
        Fixture(
            "/srv/app/mailer.rb:8:in `deliver_receipt': undefined method `email' for nil "
            "(NoMethodError)\n\tfrom /srv/app/jobs.rb:18:in `perform'",
            "NoMethodError",
            "deliver_receipt",
        ),
    ),
)
