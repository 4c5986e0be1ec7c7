"""PHP: `PHP Fatal error:  Uncaught X: msg in file:line`, `Stack trace:`, `#0 file(12): fn()`."""

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

# --- PHP -------------------------------------------------------------------------------------

_PHP_FRAME = re.compile(r"#\d+ (.+?)\((\d+)\): (.+)$")
_PHP_HEADER = re.compile(r"PHP Fatal error:\s+Uncaught ([\w\\]+): (.*?)(?: in (\S+):(\d+))?$")


def _parse_php(lines: list[str]) -> Trace:
    frames: list[Frame] = []
    header: tuple[str, ...] | None = None
    for line in lines:
        stripped = line.strip()
        match = _PHP_FRAME.match(stripped)
        if match:
            file, number, call = match.groups()
            frames.append(frame(file, int_or_none(number), call.split("(", 1)[0]))
        elif header is None:
            found = _PHP_HEADER.search(stripped)
            if found:
                header = found.groups()
    frames.reverse()
    exc_type, exc_msg = header[:2] if header else (None, None)
    if header and header[2]:
        # the header's "in file:line" is where it was thrown: the innermost frame ("#0" is the
        # call made there, whose callee is not the failing function)
        frames.append(frame(header[2], int_or_none(header[3]), ""))
    return Trace("php", exc_type, exc_msg, frames)


LANGUAGE = Language(
    name="php",
    parse=_parse_php,
    is_start=lambda line: line[:1] == "#" and bool(_PHP_FRAME.match(line)),
    start_firsts="#",
    decides=True,
    header_only=lambda line, lines: (
        _parse_php([line]) if line.startswith("PHP Fatal error:") else None
    ),
    fixtures=(
        Fixture(
            "PHP Fatal error:  Uncaught TypeError: App\\Cart::addItem(): Argument #1 must be of "
            "type int in /srv/app/src/Cart.php:15\nStack trace:\n"
            "#0 /srv/app/crash.php(20): App\\Cart->addItem('x')\n#1 {main}\n"
            "  thrown in /srv/app/src/Cart.php on line 15",
            "TypeError",
            "",
        ),
    ),
)
