"""One module per runtime's traces, behind one registry.

Each module holds its language's frame and start rules, its parser and fixture traces (a
`Language`); adding a runtime is one module plus one line here. `FRAME_ORDER` is the order frame
lines are tried in: a .NET frame is checked before a Java one, whose shape it shares.
"""

from __future__ import annotations

from watcher.parse.languages import dotnet, go, jvm, node, php, python, ruby
from watcher.parse.languages.common import Fixture, Language, Trace, is_in_app

LANGUAGES: tuple[Language, ...] = (
    python.LANGUAGE,
    dotnet.LANGUAGE,
    jvm.LANGUAGE,
    node.LANGUAGE,
    go.LANGUAGE,
    ruby.LANGUAGE,
    php.LANGUAGE,
)
BY_NAME = {language.name: language for language in LANGUAGES}
FRAME_ORDER = tuple(language for language in LANGUAGES if language.is_frame is not None)
STARTS = tuple(language for language in LANGUAGES if language.is_start is not None)
# the first characters of every line some language's is_start accepts; None when one does not say
START_FIRSTS: str | None = (
    "".join(language.start_firsts for language in STARTS)
    if all(language.start_firsts for language in STARTS)
    else None
)
# reports without frames: a Node error print, a Go panic line, PHP's fatal, a JVM exception
# line, a Ruby error line — tried in this order
HEADER_ONLY = tuple(
    BY_NAME[name] for name in ("node", "go", "php", "java", "ruby") if BY_NAME[name].header_only
)

__all__ = [
    "BY_NAME",
    "FRAME_ORDER",
    "HEADER_ONLY",
    "LANGUAGES",
    "STARTS",
    "START_FIRSTS",
    "Fixture",
    "Language",
    "Trace",
    "is_in_app",
]
