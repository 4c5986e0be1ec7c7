""".NET: `Ns.XException (0x80004005): msg`, `   at Ns.T.M() in File.cs:line 42`, `--->` inner."""

from __future__ import annotations

import re

from watcher.model import Frame
from watcher.parse.languages.common import (
    Fixture,
    Language,
    Trace,
    int_or_none,
)

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
                    int_or_none(number),
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


LANGUAGE = Language(
    frame_start="at ",
    name="dotnet",
    parse=_parse_dotnet,
    is_frame=lambda line, stripped: stripped.startswith("at ") and _is_dotnet_frame(stripped),
    fixtures=(
        Fixture(
            "System.NullReferenceException: Object reference not set to an instance of an object."
            "\n   at Shop.Seo.SlugRouteTransformer.TransformAsync(HttpContext httpContext) in "
            "SlugRouteTransformer.cs:line 259\n"
            "   at Microsoft.AspNetCore.Routing.EndpointMiddleware.Invoke(HttpContext context)",
            "System.NullReferenceException",
            "SlugRouteTransformer.TransformAsync",
        ),
    ),
)
