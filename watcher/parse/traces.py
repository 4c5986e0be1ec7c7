"""Stack traces (Python, Java/JVM, Node/JS, Go, Ruby) -> exception type, message and frames.

Frames are always ordered like Python prints them: outermost call first, the frame that raised
last. Java, Node, Go and Ruby print innermost first, so their frames are reversed here; this is
what `LogEvent.top_frame` (which walks the list backwards) relies on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from watcher.model import Frame
from watcher.parse.levels import level_word


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


def _frame(file: str, line: int | None, function: str) -> Frame:
    return Frame(file, line, function, is_in_app(file))


def _int(text: str | None) -> int | None:
    # "B.java:12a", "²": a location is free text in some traces; only decimal digits are a line
    return int(text) if text and len(text) < 10 and text.isdecimal() else None


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
                frames.append(_frame(file, _int(number), (function or "").strip()))
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
            frames.append(_frame(file, _int(number), (function or "").strip()))
        elif frames and exc_type is None and line[:1] not in (" ", "\t", ""):
            found = _PY_EXCEPTION.match(line)  # the clipped traceback's final exception line
            if found and ("." in found.group(1) or found.group(1).endswith(("Error", "Exception"))):
                exc_type, exc_msg = found.group(1), found.group(2)
    return Trace("python", exc_type, exc_msg, frames)


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


def _java_frame(qualified: str, location: str) -> Frame:
    qualified = qualified.rsplit("/", 1)[-1]  # "java.base/java.lang.Thread.run"
    cls, _, method = qualified.rpartition(".")
    package, _, simple = cls.rpartition(".")
    file_name, _, number = location.partition(":")
    if not file_name.endswith((".java", ".kt", ".scala", ".groovy", ".clj")):
        file_name = simple.split("$", 1)[0]  # "Native Method" / "Unknown Source"
    # package dirs + file name: what the fix step needs to find the file in a checkout
    path = package.replace(".", "/") + "/" + file_name if package else file_name
    return Frame(path, _int(number), f"{simple}.{method}", is_in_app(path))


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
        match = _JAVA_FRAME.match(line)
        if match:
            if not frames and header is None:
                header = _header_before(lines, index, _java_header)
            frames.append(_java_frame(match.group(1), match.group(2)))
        elif frames and line.startswith("Caused by:"):
            break
    frames.reverse()
    exc_type, exc_msg = header if header else (None, None)
    causes = [m.group(1) for line in lines if (m := _JAVA_CAUSE.match(line))]
    return Trace("java", exc_type, exc_msg, frames, causes)


_JAVA_CAUSE = re.compile(r"Caused by: ([\w$.]+)")


def _header_before(
    lines: list[str],
    index: int,
    parse: Callable[[str], tuple[str, str | None] | None],
) -> tuple[str, str | None] | None:
    """The nearest line above the first frame that reads as an exception header."""
    for line in reversed(lines[max(0, index - 5) : index]):
        found = parse(line.strip())
        if found:
            return found
    return None


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


def _node_frame(function: str | None, location: str) -> Frame | None:
    match = _NODE_LOCATION.match(location)
    if not match:
        return None  # "native", "index 0", eval frames: no file to point at
    file = match.group(1)
    if file.startswith("file://"):
        file = file[7:]
    function = (function or "<anonymous>").removeprefix("async ")
    return Frame(file, _int(match.group(2)), function, is_in_app(file))


def _parse_node(lines: list[str]) -> Trace:
    frames: list[Frame] = []
    header: tuple[str, str | None] | None = None
    seen_frame = False
    for index, line in enumerate(lines):
        match = _NODE_FRAME.match(line) if "at " in line else None
        if match:
            if not seen_frame:
                header = _header_before(lines, index, _node_header)
                seen_frame = True
            frame = _node_frame(match.group(1), match.group(2) or match.group(3))
            if frame:
                frames.append(frame)
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


# --- Go --------------------------------------------------------------------------------------

_GO_FILE = re.compile(r"\s+(\S+\.go):(\d+)(?: \+0x[0-9a-f]+)?(?: fp=\S+ sp=\S+ pc=\S+)?\s*$")
_GO_HEADS = ("panic: ", "fatal error: ")


def _go_error(line: str) -> tuple[str, str]:
    kind, _, message = line.partition(": ")
    if kind == "panic" and message.startswith("runtime error: "):
        return "runtime error", message[len("runtime error: ") :]
    return kind, message.removesuffix(" [recovered]")


def _go_function(line: str) -> str:
    line = line.strip().removeprefix("created by ")
    line = line.split(" in goroutine ", 1)[0]
    if line.endswith(")") and "(" in line:
        line = line[: line.rfind("(")]
    return line


def _parse_go(lines: list[str]) -> Trace:
    """The panicking goroutine's frames (the first block); zap's header-less stacks too."""
    frames: list[Frame] = []
    exc_type = exc_msg = None
    function = ""
    for line in lines:
        if line.startswith(_GO_HEADS) and exc_type is None:
            exc_type, exc_msg = _go_error(line)
        elif line.startswith("goroutine "):
            if frames:
                break
        elif line[:1] in ("\t", " "):
            match = _GO_FILE.match(line)
            if match:
                frames.append(_frame(match.group(1), _int(match.group(2)), function))
        elif line:
            function = _go_function(line)
    return Trace("go", exc_type, exc_msg, _go_panicking(frames))


def _go_panicking(frames: list[Frame]) -> list[Frame]:
    """Outermost first, cut at the last `panic(…)`: a deferred recover that re-panics is not
    where the error happened, the frame that panicked first is (it sits below the last panic)."""
    for index in range(len(frames) - 1, -1, -1):
        if frames[index].function in ("panic", "runtime.gopanic") and index + 1 < len(frames):
            frames = frames[index + 1 :]
            break
    frames.reverse()
    return frames


# --- .NET ------------------------------------------------------------------------------------

# "at Ns.Type.Method(Arg a, Arg b) in /src/File.cs:line 42"; the location is optional
_DOTNET_FRAME = re.compile(r"\s*at ([^\s(]+)\(([^)]*)\)(?: in (.+?):line (\d+))?\s*$")
_DOTNET_HEADER = re.compile(
    r"(?:Unhandled exception\. |Unhandled Exception: )?((?:[A-Za-z_]\w*\.)+[A-Za-z_]\w*)"
    r"(?: \(0x[0-9A-Fa-f]+\))?: (.*)$"
)
_DOTNET_INNER = re.compile(r"\s*---> ((?:[A-Za-z_]\w*\.)+[A-Za-z_]\w*)")


def _is_dotnet_frame(line: str) -> bool:
    match = _DOTNET_FRAME.match(line)
    if match is None:
        return False
    args = match.group(2)
    # Java's parentheses hold "File.java:12" or "Native Method"; .NET's the parameters
    return (
        match.group(3) is not None
        or args == ""
        or ", " in args
        or (" " in args and args not in ("Native Method", "Unknown Source"))
    )


def _parse_dotnet(lines: list[str]) -> Trace:
    frames: list[Frame] = []
    header: tuple[str, str] | None = None
    causes: list[str] = []
    for line in lines:
        match = _DOTNET_FRAME.match(line)
        if match and _is_dotnet_frame(line):
            qualified, _, location, number = match.groups()
            cls, _, method = qualified.rpartition(".")
            file = (location or cls.replace(".", "/")).replace("\\", "/")
            frames.append(
                Frame(
                    file,
                    _int(number),
                    f"{cls.rsplit('.', 1)[-1]}.{method}",
                    _dotnet_in_app(qualified),
                )
            )
            continue
        inner = _DOTNET_INNER.match(line)
        if inner:
            causes.append(inner.group(1))
        elif header is None and not frames:
            found = _DOTNET_HEADER.search(line)
            if found:
                header = (found.group(1), found.group(2))
    frames.reverse()
    exc_type, exc_msg = header if header else (None, None)
    return Trace("dotnet", exc_type, exc_msg, frames, causes)


_DOTNET_LIBRARY = (
    "System.",
    "Microsoft.",
    "Npgsql.",
    "Newtonsoft.",
    "LinqToDB.",
    "Dapper.",
    "StackExchange.",
    "Grpc.",
    "Polly.",
    "MySqlConnector.",
    "Serilog.",
)


def _dotnet_in_app(qualified: str) -> bool:
    return not qualified.startswith(_DOTNET_LIBRARY)


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
            frames.append(_frame(file, _int(number), call.split("(", 1)[0]))
        elif header is None:
            found = _PHP_HEADER.search(stripped)
            if found:
                header = found.groups()
    frames.reverse()
    exc_type, exc_msg = header[:2] if header else (None, None)
    if header and header[2]:
        # the header's "in file:line" is where it was thrown: the innermost frame ("#0" is the
        # call made there, whose callee is not the failing function)
        frames.append(_frame(header[2], _int(header[3]), ""))
    return Trace("php", exc_type, exc_msg, frames)


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
            frames.append(_frame(file, _int(number), function))
            rest = line[match.end() :]
            if error is None and rest.startswith(": "):
                error = _ruby_error(rest[2:])  # "app.rb:3:in 'foo': msg (RuntimeError)"
        elif error is None and not frames:
            error = _ruby_error(line.strip())
    frames.reverse()
    exc_type, exc_msg = error if error else (None, None)
    return Trace("ruby", exc_type, exc_msg, frames)


# --- detection -------------------------------------------------------------------------------

_PARSERS: dict[str, Callable[[list[str]], Trace]] = {
    "python": _parse_python,
    "python-frames": _parse_python_frames_only,
    "java": _parse_java,
    "node": _parse_node,
    "go": _parse_go,
    "ruby": _parse_ruby,
    "dotnet": _parse_dotnet,
    "php": _parse_php,
}


def _language_of_frame(line: str) -> str | None:
    """The language of an indented frame line, or None for any other indented line."""
    stripped = line.lstrip()
    if stripped.startswith('File "'):
        return "python-frames"
    if stripped.startswith("at "):
        if _is_dotnet_frame(stripped):
            return "dotnet"
        if _JAVA_FRAME.match(stripped):
            return "java"
        return "node" if _NODE_FRAME.match(stripped) else None
    if ".go:" in stripped and _GO_FILE.match(line):
        return "go"
    if ":in " in stripped and _RUBY_FRAME.match(stripped):
        return "ruby"
    return None


def _detect(lines: list[str]) -> str | None:
    language = None
    for line in lines:
        first = line[:1]
        if first in (" ", "\t") or (first == "a" and line.startswith("at ")):
            found = _language_of_frame(line)
            if found == "python-frames" and language == "python":
                return language
            if found:
                return found
        elif line.startswith(_PY_TB):
            language = "python"
        elif line.startswith(_GO_HEADS) or (line.startswith("goroutine ") and " [" in line):
            return "go"
        elif first == "#" and _PHP_FRAME.match(line):
            return "php"
    return language


_BRACKET_HEADER = re.compile(r"\s*\[([A-Z]\w*(?:Error|Exception|Rejection))(?:: ([^\]]*))?\]")


def _header_only(lines: list[str]) -> Trace | None:
    """A one-line report with no frames: a Go panic, a Ruby error or a JVM exception line."""
    for line in lines[:6]:
        bracket = _BRACKET_HEADER.match(line)
        if bracket:  # Node's print of an error without its stack: "[TypeError: fetch failed] {"
            return Trace("node", bracket.group(1), bracket.group(2), [], _node_causes(lines))
        if line.startswith(_GO_HEADS):
            exc_type, exc_msg = _go_error(line)
            return Trace("go", exc_type, exc_msg, [])
        if line.startswith("PHP Fatal error:"):
            return _parse_php([line])
        header = _java_header_alone(line)
        if header:
            return Trace("java", header[0], header[1], [])
        match = _RUBY_FRAME.match(line)
        if match and line[match.end() :].startswith(": "):
            error = _ruby_error(line[match.end() + 2 :])
            if error:
                file, number, function = match.groups()
                frame = _frame(file, _int(number), function)
                return Trace("ruby", error[0], error[1], [frame])
    return None


def parse_trace(lines: list[str]) -> Trace | None:
    """The trace in `lines` (which may start with the log line that reported it), or None."""
    if not lines:
        return None
    language = _detect(lines)
    if language is None:
        return _header_only(lines)
    trace = _PARSERS[language](lines)
    if trace.exception_type is None and not trace.frames:
        return None
    return trace


# --- traces carried in structured fields -----------------------------------------------------

# string fields holding a whole printed trace: structlog/python-json-logger, logstash, zap, ECS
_STACK_KEYS = (
    "exception",
    "exc_info",
    "exc_text",
    "traceback",
    "stack_trace",
    "stacktrace",
    "stack",
    "error.stack_trace",
    "error.stack",
)
TRACE_KEYS = frozenset((*_STACK_KEYS, "err", "error", "error.type"))


def _structlog_dict(stacks: list[object]) -> Trace | None:
    """structlog's dict_tracebacks: stacks[0] is the exception that escaped."""
    stack = stacks[0] if stacks else None
    if not isinstance(stack, dict):
        return None
    frames = []
    for item in stack.get("frames") or ():
        if isinstance(item, dict):
            file = str(item.get("filename", ""))
            number = item.get("lineno")
            line = number if isinstance(number, int) and not isinstance(number, bool) else None
            frames.append(_frame(file, line, str(item.get("name", ""))))
    exc_type, exc_msg = stack.get("exc_type"), stack.get("exc_value")
    return Trace(
        "python",
        exc_type if isinstance(exc_type, str) else None,
        exc_msg if isinstance(exc_msg, str) else None,
        frames,
    )


def _stack_string(value: object) -> Trace | None:
    if isinstance(value, str) and "\n" in value:
        return parse_trace(value.splitlines())
    return None


def _error_object(value: dict[str, object]) -> Trace | None:
    """pino/bunyan `err`, ECS `error`: {"type", "message", "stack"}."""
    trace = None
    for key in ("stack", "stack_trace", "stacktrace"):
        trace = _stack_string(value.get(key))
        if trace:
            break
    exc_type = value.get("type") or value.get("kind") or value.get("name")
    exc_msg = value.get("message") or value.get("msg")
    if trace is None:
        if not isinstance(exc_type, str):
            return None
        trace = Trace("unknown", None, None, [])
    if trace.exception_type is None and isinstance(exc_type, str):
        trace.exception_type = exc_type
    if trace.exception_message is None and isinstance(exc_msg, str):
        trace.exception_message = exc_msg
    return trace


def trace_from_fields(fields: dict[str, object]) -> Trace | None:
    """A trace carried in a structured record's fields, or None."""
    if fields.keys().isdisjoint(TRACE_KEYS):
        return None
    for key in _STACK_KEYS:
        value = fields.get(key)
        trace = _structlog_dict(value) if isinstance(value, list) else _stack_string(value)
        if trace is not None:
            error = fields.get("error")
            if trace.exception_message is None and isinstance(error, str):
                trace.exception_message = error  # zap: "error" holds the message
            return trace
    for key in ("err", "error"):
        value = fields.get(key)
        if isinstance(value, dict):
            trace = _error_object(value)
            if trace is not None:
                return trace
    exc_type = fields.get("error.type")
    if isinstance(exc_type, str):
        exc_msg = fields.get("error.message")
        return Trace("unknown", exc_type, exc_msg if isinstance(exc_msg, str) else None, [])
    return None
