"""Java/JVM traces: `X: msg` + `\tat pkg.Cls.m(File.java:12)`, `Caused by:`, `... N more`."""

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

# --- Java / JVM ------------------------------------------------------------------------------

# "at pkg.Cls.method(File.java:42)", with an optional "module/" prefix and logback's "~[jar]"
_JAVA_FRAME = re.compile(r"\s*at\s+([^\s(]+)\(([^()]*)\)(?:\s*~?\[[^\]]*\])?\s*$")
_JAVA_HEADER = re.compile(
    r"(?:Exception in thread \"[^\"]*\"\s+|Caused by:\s+|Uncaught\s+)?"
    r"([A-Za-z_$][\w$]*(?:\.[\w$]+)*)(?::\s?(.*))?$"
)
# starts at a word start, at most 64 segments: searched from every position of a long run of
# "Exception." otherwise, each try scanning the rest of the run (quadratic: 38 s a 64 KiB line)
_JAVA_HEADER_INLINE = re.compile(
    r"(?<![\w$])((?:[A-Za-z_$][\w$]*\.){1,64}[A-Za-z_$][\w$]*(?:Exception|Error|Throwable))"
    r"(?::\s?(.*))?"
)


def _java_frame(qualified: str, location: str) -> FrameFields:
    qualified = qualified.rsplit("/", 1)[-1]  # "java.base/java.lang.Thread.run"
    cls, _, method = qualified.rpartition(".")
    package, _, simple = cls.rpartition(".")
    file_name, _, number = location.partition(":")
    if not file_name.endswith((".java", ".kt", ".scala", ".groovy", ".clj")):
        file_name = simple.split("$", 1)[0]  # "Native Method" / "Unknown Source"
    # package dirs + file name: what the fix step needs to find the file in a checkout
    path = package.replace(".", "/") + "/" + file_name if package else file_name
    return path, int_or_none(number), f"{simple}.{method}", is_in_app(path)


@remembered  # per frame line (memo.remember)
def _frame_fields(line: str) -> FrameFields | None:
    """What `line` says as a frame, or None when it is none."""
    match = _JAVA_FRAME.match(line)
    return None if match is None else _java_frame(match.group(1), match.group(2))


def _is_exception_name(name: str) -> bool:
    if level_word(name) is not None:
        return False
    last = name.rsplit(".", 1)[-1]
    return "." in name or last.endswith(("Exception", "Error", "Throwable"))


def _java_header(line: str) -> tuple[str, str | None] | None:
    match = _JAVA_HEADER.match(line)
    if match and _is_exception_name(match.group(1)):
        return match.group(1), match.group(2)
    match = _JAVA_HEADER_INLINE.search(line)
    return (match.group(1), match.group(2)) if match else None


_java_header_remembered = remembered(_java_header)


def _java_header_alone(line: str) -> tuple[str, str | None] | None:
    """A JVM exception line on its own: strict, since "app.Server: started" is not one."""
    match = _JAVA_HEADER.match(line)
    if match is None:
        return None
    name = match.group(1)
    strong = line.startswith("Exception in thread ") or (
        "." in name and name.endswith(("Exception", "Error", "Throwable"))
    )
    return (name, match.group(2)) if strong else None


def _parse_java(lines: list[str]) -> Trace:
    """Top-level (outermost) exception and its frames; "Caused by:" sections are not used."""
    frames: list[Frame] = []
    header: tuple[str, str | None] | None = None
    for index, line in enumerate(lines):
        found = _frame_fields(line)
        if found is not None:
            if not frames and header is None:
                header = header_before(lines, index, _java_header_remembered)
            frames.append(Frame(*found))
        elif frames and line.startswith("Caused by:"):
            break
    frames.reverse()
    exc_type, exc_msg = header if header else (None, None)
    causes = [m.group(1) for line in lines if (m := _JAVA_CAUSE.match(line))]
    return Trace("java", exc_type, exc_msg, frames, causes)


_JAVA_CAUSE = re.compile(r"Caused by: ([\w$.]+)")


LANGUAGE = Language(
    frame_start="at ",
    name="java",
    parse=_parse_java,
    is_frame=lambda line, stripped: (
        stripped.startswith("at ") and bool(_JAVA_FRAME.match(stripped))
    ),
    header_only=lambda line, lines: _header_alone_trace(line),
    fixtures=(
        Fixture(
            'Exception in thread "main" java.lang.NullPointerException: boom\n'
            "\tat com.acme.Orders.total(Orders.java:12)\n\tat com.acme.Main.main(Main.java:5)",
            "java.lang.NullPointerException",
            "Orders.total",
        ),
        Fixture(
            "org.springframework.web.util.NestedServletException: failed; nested exception\n"
            "\tat org.springframework.web.servlet.FrameworkServlet.processRequest("
            "FrameworkServlet.java:1014)\n"
            "Caused by: java.sql.SQLException: deadlock\n"
            "\tat com.acme.Repo.save(Repo.java:40)\n\t... 3 more",
            "org.springframework.web.util.NestedServletException",
            "FrameworkServlet.processRequest",
        ),
    ),
)


def _header_alone_trace(line: str) -> Trace | None:
    header = _java_header_alone(line)
    return Trace("java", header[0], header[1], []) if header else None
