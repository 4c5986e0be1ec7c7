"""The trace parsers as they were before issue 15's caches (main 95db93c): every line matched
and read again, every frame line's language found by trying the languages in turn. Kept as the
reference the remembering parsers must equal on every input (tests/test_traces_equivalence.py).
The regexes and the helpers that did not change are imported from the modules themselves: what
is checked is what the caches skip."""

from __future__ import annotations

from watcher.model import Frame
from watcher.parse import traces
from watcher.parse.languages import FRAME_ORDER, STARTS, Language, go, jvm, node, python
from watcher.parse.languages.common import Trace, frame, header_before, int_or_none, is_in_app


def _language_of_frame(line: str) -> Language | None:
    stripped = line.lstrip()
    for language in FRAME_ORDER:
        if stripped.startswith(language.frame_start) and language.is_frame(line, stripped):  # type: ignore[misc]
            return language
    return None


def _detect(lines: list[str]) -> Language | None:
    started: Language | None = None
    for line in lines:
        first = line[:1]
        if first in (" ", "\t") or (first == "a" and line.startswith("at ")):
            found = _language_of_frame(line)
            if found is not None:
                return found
        else:
            for language in STARTS:
                if language.is_start(line):  # type: ignore[misc]
                    if language.decides:
                        return language
                    started = started or language
    return started


# --- Python ------------------------------------------------------------------------------------


def _parse_python(lines: list[str]) -> Trace:
    frames: list[Frame] = []
    exc_type = exc_msg = None
    in_tb = False
    causes: list[str] = []
    for line in lines:
        if line.startswith(python._PY_TB):
            if exc_type:
                causes.append(exc_type)
            frames, exc_type, exc_msg, in_tb = [], None, None, True
        elif not in_tb:
            continue
        elif line[:1] in (" ", "\t"):
            match = python._PY_FRAME.match(line)
            if match:
                file, number, function = match.groups()
                frames.append(frame(file, int_or_none(number), (function or "").strip()))
        elif exc_type is None and line:
            match = python._PY_EXCEPTION.match(line)
            if match:
                exc_type, exc_msg = match.group(1), match.group(2)
    return Trace("python", exc_type, exc_msg, frames, causes)


def _parse_python_frames_only(lines: list[str]) -> Trace:
    frames: list[Frame] = []
    exc_type = exc_msg = None
    for line in lines:
        match = python._PY_FRAME.match(line)
        if match:
            file, number, function = match.groups()
            frames.append(frame(file, int_or_none(number), (function or "").strip()))
        elif frames and exc_type is None and line[:1] not in (" ", "\t", ""):
            found = python._PY_EXCEPTION.match(line)
            if found and ("." in found.group(1) or found.group(1).endswith(("Error", "Exception"))):
                exc_type, exc_msg = found.group(1), found.group(2)
    return Trace("python", exc_type, exc_msg, frames)


def _parse_py(lines: list[str]) -> Trace:
    for line in lines:
        if line.startswith(python._PY_TB):
            return _parse_python(lines)
    return _parse_python_frames_only(lines)


# --- Java --------------------------------------------------------------------------------------


def _java_frame(qualified: str, location: str) -> Frame:
    qualified = qualified.rsplit("/", 1)[-1]
    cls, _, method = qualified.rpartition(".")
    package, _, simple = cls.rpartition(".")
    file_name, _, number = location.partition(":")
    if not file_name.endswith((".java", ".kt", ".scala", ".groovy", ".clj")):
        file_name = simple.split("$", 1)[0]
    path = package.replace(".", "/") + "/" + file_name if package else file_name
    return Frame(path, int_or_none(number), f"{simple}.{method}", is_in_app(path))


def _parse_java(lines: list[str]) -> Trace:
    frames: list[Frame] = []
    header: tuple[str, str | None] | None = None
    for index, line in enumerate(lines):
        match = jvm._JAVA_FRAME.match(line)
        if match:
            if not frames and header is None:
                header = header_before(lines, index, jvm._java_header)
            frames.append(_java_frame(match.group(1), match.group(2)))
        elif frames and line.startswith("Caused by:"):
            break
    frames.reverse()
    exc_type, exc_msg = header if header else (None, None)
    causes = [m.group(1) for line in lines if (m := jvm._JAVA_CAUSE.match(line))]
    return Trace("java", exc_type, exc_msg, frames, causes)


# --- Node --------------------------------------------------------------------------------------


def _node_frame(function: str | None, location: str) -> Frame | None:
    match = node._NODE_LOCATION.match(location)
    if not match:
        return None
    file = match.group(1)
    if file.startswith("file://"):
        file = file[7:]
    function = (function or "<anonymous>").removeprefix("async ")
    return Frame(file, int_or_none(match.group(2)), function, is_in_app(file))


def _parse_node(lines: list[str]) -> Trace:
    frames: list[Frame] = []
    header: tuple[str, str | None] | None = None
    seen_frame = False
    for index, line in enumerate(lines):
        match = node._NODE_FRAME.match(line) if "at " in line else None
        if match:
            if not seen_frame:
                header = header_before(lines, index, node._node_header)
                seen_frame = True
            found = _node_frame(match.group(1), match.group(2) or match.group(3))
            if found:
                frames.append(found)
        elif seen_frame and line[:1] not in (" ", "\t", ""):
            break
    frames.reverse()
    exc_type, exc_msg = header if header else (None, None)
    return Trace("node", exc_type, exc_msg, frames, node._node_causes(lines))


# --- Go ----------------------------------------------------------------------------------------


def _parse_go(lines: list[str]) -> Trace:
    frames: list[Frame] = []
    exc_type = exc_msg = None
    function = ""
    for line in lines:
        if line.startswith(go._GO_HEADS) and exc_type is None:
            exc_type, exc_msg = go._go_error(line)
        elif line.startswith("goroutine "):
            if frames:
                break
        elif line[:1] in ("\t", " "):
            match = go._GO_FILE.match(line)
            if match:
                frames.append(frame(match.group(1), int_or_none(match.group(2)), function))
        elif line:
            function = go._go_function(line)
    return Trace("go", exc_type, exc_msg, go._go_panicking(frames))


_PARSERS = {"python": _parse_py, "java": _parse_java, "node": _parse_node, "go": _parse_go}


def parse_trace(lines: list[str]) -> Trace | None:
    """traces.parse_trace with the parsers above."""
    if not lines:
        return None
    language = _detect(lines)
    if language is None:
        return traces._header_only(lines)
    trace = _PARSERS.get(language.name, language.parse)(lines)
    if trace.exception_type is None and not trace.frames:
        return None
    return trace


def trace_from_fields(fields: dict[str, object]) -> Trace | None:
    """traces.trace_from_fields as it was: every stack key asked, present or not."""
    if fields.keys().isdisjoint(traces.TRACE_KEYS):
        return None
    for key in traces._STACK_KEYS:
        value = fields.get(key)
        trace = (
            traces._structlog_dict(value)
            if isinstance(value, list)
            else traces._stack_string(value)
        )
        if trace is not None:
            error = fields.get("error")
            if trace.exception_message is None and isinstance(error, str):
                trace.exception_message = error
            return trace
    for key in ("err", "error"):
        value = fields.get(key)
        if isinstance(value, dict):
            trace = traces._error_object(value)
            if trace is not None:
                return trace
    exc_type = fields.get("error.type")
    if isinstance(exc_type, str):
        exc_msg = fields.get("error.message")
        return Trace("unknown", exc_type, exc_msg if isinstance(exc_msg, str) else None, [])
    return None
