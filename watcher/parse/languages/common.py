"""What every language module shares: the Trace it returns, frames, in-app or library."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from watcher.memo import remember
from watcher.model import Frame

if TYPE_CHECKING:
    from collections.abc import Sequence


@dataclass(slots=True)
class Trace:
    """What a stack trace says: which exception, where."""

    language: str
    exception_type: str | None
    exception_message: str | None
    frames: list[Frame] = field(default_factory=list)
    # what caused it, outermost first: exception types and error codes of the cause chain
    # (JVM "Caused by:", .NET "--->", Node "cause:" / AggregateError members, Python chains)
    causes: list[str] = field(default_factory=list)


# --- in-app or library -------------------------------------------------------------------------

_LIBRARY_PARTS = (
    "site-packages/",
    "dist-packages/",
    "/lib/python",
    "<frozen ",
    "node_modules/",
    "node:internal",
    "/usr/local/go/src/",
    "/usr/lib/go/src/",
    "/usr/lib/golang/src/",
    "/usr/local/go/",
    "/pkg/mod/",
    "/vendor/",
    "/gems/",
    "/rubygems/",
    "/lib/ruby/",
    "<internal:",
    "/var/runtime/",  # the AWS Lambda runtime around the handler
    "/var/lang/",
)
_LIBRARY_PREFIXES = (
    "node:",
    "internal/",
    "runtime/",
    "$GOROOT/",
    "GOROOT/",
)
_JVM_PACKAGES = (
    "java",
    "javax",
    "jakarta",
    "sun",
    "com.sun",
    "jdk",
    "kotlin",
    "kotlinx",
    "scala",
    "groovy",
    "org.codehaus.groovy",
    "org.springframework",
    "org.apache",
    "org.hibernate",
    "org.eclipse.jetty",
    "org.jboss",
    "org.junit",
    "org.slf4j",
    "org.postgresql",
    "ch.qos.logback",
    "io.netty",
    "io.grpc",
    "io.micrometer",
    "io.undertow",
    "io.vertx",
    "io.quarkus",
    "io.micronaut",
    "reactor",
    "okhttp3",
    "com.fasterxml",
    "com.google.common",
    "com.zaxxer",
    "com.mysql",
    "akka",
)
_JVM_DOTTED = tuple(p + "." for p in _JVM_PACKAGES)
_JVM_SLASHED = tuple(p.replace(".", "/") + "/" for p in _JVM_PACKAGES)


# path -> is_in_app(path): a service's traces repeat the same few hundred files
_IN_APP: dict[str, bool] = {}
_IN_APP_CAP = 8192


def is_in_app(path: str) -> bool:
    """False for frames of the runtime, the standard library or third-party packages."""
    found = _IN_APP.get(path)
    if found is None:
        found = _is_in_app(path)
        if len(path) <= 512:  # bounds the cache's memory even for hostile input
            if len(_IN_APP) >= _IN_APP_CAP:
                _IN_APP.clear()
            _IN_APP[path] = found
    return found


def _is_in_app(path: str) -> bool:
    if "\\" in path:
        path = path.replace("\\", "/")
    if path.startswith("<") or (path.endswith(".js") and "/" not in path):
        return False  # "<anonymous>", and Node's own modules, which it prints without a directory
    if path.startswith(_LIBRARY_PREFIXES) or path.startswith(_JVM_SLASHED):
        return False
    if any(part in path for part in _LIBRARY_PARTS):
        return False
    # a JVM class name ("java.lang.Thread") rather than a path; "java.py" is one dot, a file
    is_class_name = "/" not in path and path.count(".") >= 2
    return not (is_class_name and path.startswith(_JVM_DOTTED))


def frame(file: str, line: int | None, function: str) -> Frame:
    return Frame(file, line, function, is_in_app(file))


# --- what a frame line says, remembered ---------------------------------------------------------

# A service's traces repeat the same few hundred frame lines: a language's parser remembers what
# each line said as the Frame's fields (a tuple: a Frame is mutable, mark_in_app sets its in_app,
# so every trace gets Frames of its own), or None for a line that is no frame. A hit costs a
# dict look-up and a Frame instead of a regex match, an int(), is_in_app and the string work.
FrameFields = tuple[str, int | None, str, bool]
LINE_CACHE_CAP = 4096  # lines per language; the cache is cleared when full
_LONGEST_KEPT = 512  # bounds the cache's memory even for hostile input


_T = TypeVar("_T")
UNSEEN: Any = object()  # cache.get(line, UNSEEN): a line not parsed yet (None is a result)


def int_or_none(text: str | None) -> int | None:
    # "B.java:12a", "²": a location is free text in some traces; only decimal digits are a line
    return int(text) if text and len(text) < 10 and text.isdecimal() else None


Header = tuple[str, str | None]


def remembered(parse: Callable[[str], _T]) -> Callable[[str], _T]:
    """`parse` of a line, remembered per line (memo.remember): every trace of an error prints
    the same exception header and frames (reading a Node header, two regexes and level_word, was
    a tenth of parsing a Node stack carried in a JSON field)."""
    cache: dict[str, _T] = {}

    def parse_remembered(line: str) -> _T:
        found = cache.get(line, UNSEEN)
        if found is UNSEEN:
            found = parse(line)
            remember(cache, line, found, LINE_CACHE_CAP, _LONGEST_KEPT)
        return found

    return parse_remembered


def header_before(
    lines: list[str],
    index: int,
    parse: Callable[[str], Header | None],
) -> Header | None:
    """The nearest line above the first frame that reads as an exception header."""
    for line in reversed(lines[max(0, index - 5) : index]):
        found = parse(line.strip())
        if found:
            return found
    return None


@dataclass(frozen=True, slots=True)
class Fixture:
    """A trace as the runtime prints it, and what parsing it must find: the contract test runs
    every language's fixtures through parse_trace and the assembler."""

    text: str
    exception_type: str | None
    top_function: str | None


@dataclass(frozen=True, slots=True)
class Language:
    """One runtime's traces: how to recognise them and how to read them.

    `is_frame(line, stripped)` says whether an indented (or column-0 "at …") line is one of its
    frames; `is_start(line)` whether an unindented line opens one of its traces (`decides`: the
    language is certain from that line alone); `header_only(line, lines)` reads a report that has
    no frames; `parse(lines)` reads the trace.
    """

    name: str
    parse: Callable[[list[str]], Trace]
    is_frame: Callable[[str, str], bool] | None = None
    # how every frame line of the language starts once stripped ("" when it varies): a cheap
    # filter before is_frame
    frame_start: str = ""
    is_start: Callable[[str], bool] | None = None
    # the first characters of every line is_start accepts ("" when it varies): a cheap filter
    start_firsts: str = ""
    decides: bool = False
    header_only: Callable[[str, list[str]], Trace | None] | None = None
    fixtures: Sequence[Fixture] = ()
