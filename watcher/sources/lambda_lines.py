"""CloudWatch event messages -> physical lines, with AWS Lambda's runtime shapes made readable.

A CloudWatch event is one `message` that may hold many lines (a Lambda runtime writes a whole
traceback into one event), so it is split into lines the multi-line assembler joins again.

Lambda runtimes put tab-separated columns in front of what the function logged (timestamp,
request id, level). The generic parser would keep the request id in every message and miss the
level column of Node lines, so the known shapes are rewritten here into the "TIMESTAMP LEVEL
message" layout the parser already reads, and the request id moves to
`fields["aws_request_id"]`. Rewriting (rather than filling RawLine.fields/timestamp and leaving
a bare message) keeps the stored sample readable as a log line and leaves level and timestamp
detection, with all its edge cases, in one place: the parser. Only lines that match a shape
exactly are touched, so ECS or EC2 logs pass through unchanged.

Shapes (reference: awslambdaric bootstrap.py / the Node runtime's console patching):

- Python logging   `[ERROR]\\t2024-…Z\\t<request id>\\tmessage`
- Python unhandled `[ERROR] KeyError: 'x'\\nTraceback (most recent call last):\\n  File …` —
  the runtime prints the exception line *before* the frames and none after them; a copy is
  added after them, where CPython prints it, so the trace parser finds type and message. (It is
  copied, not moved: a first line starting with "Traceback" would continue the previous
  event's record in the assembler, which knows nothing of event boundaries.)
- Node console     `2024-…Z\\t<request id>\\tERROR\\tmessage`
- Node unhandled   `…\\tERROR\\tInvoke Error \\t{"errorType", "errorMessage", "stack": [...]}` —
  the JSON `stack` becomes the printed stack it came from, one line per entry.
- Platform lines   START / END / REPORT / INIT_* (info; REPORT's measurements become fields;
  a `Status: timeout|error` makes the line an error), `<ts> <request id> Task timed out after
  N seconds` and `RequestId: <id> Error: …` (errors).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # older Python runtimes wrote "\r" between lines

_ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z"
_PY_LOGGING = re.compile(
    r"\[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\]\t(" + _ISO + r")\t(\S*)\t(.*)", re.DOTALL
)
_PY_UNHANDLED = re.compile(r"\[ERROR\] (.*)", re.DOTALL)
_TRACEBACK = "Traceback (most recent call last):"
_NODE = re.compile(r"(" + _ISO + r")\t(\S*)\t(TRACE|DEBUG|INFO|WARN|ERROR|FATAL)\t(.*)", re.DOTALL)
_NODE_INVOKE = re.compile(r"([A-Z][\w ]*?)\s*\t(\{.*\})\s*")
_TIMED_OUT = re.compile(r"(" + _ISO + r") (\S+) (Task timed out after .*)")
_REQUEST_ERROR = re.compile(r"RequestId: (\S+) Error: (.*)")
_PLATFORM = re.compile(
    r"(START|END|REPORT|INIT_START|INIT_REPORT|INIT_RUNTIME_DONE|RESTORE_START|RESTORE_REPORT"
    r"|EXTENSION|TELEMETRY) "
)
_REQUEST_ID = re.compile(r"RequestId: (\S+)")
_FAILED = ("timeout", "error", "failure")
# REPORT keys -> field names; values like "3000.00 ms" keep the number only
_MEASURES = {
    "Duration": "duration_ms",
    "Billed Duration": "billed_duration_ms",
    "Memory Size": "memory_size_mb",
    "Max Memory Used": "max_memory_used_mb",
    "Init Duration": "init_duration_ms",
    "Restore Duration": "restore_duration_ms",
}


@dataclass(slots=True)
class Normalised:
    """The lines of one event, and fields for its first line (None when there are none)."""

    texts: list[str]
    fields: dict[str, Any] | None = None


def split_message(message: str) -> list[str]:
    """The physical lines of a message; the newline most messages end with adds no line."""
    parts = _LINE_BREAK.split(message)
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return parts


def normalise(message: str) -> Normalised:
    """The lines of one CloudWatch event, Lambda runtime shapes rewritten (see module doc)."""
    lines = split_message(message)
    first = lines[0]
    if first[:1] == "[":
        return _python(lines)
    if first[:1].isdigit():
        return _node(lines) or _timed_out(lines) or Normalised(lines)
    if first.startswith("RequestId: "):
        return _request_error(lines) or Normalised(lines)
    if _PLATFORM.match(first):
        return _platform(lines)
    return Normalised(lines)


def _python(lines: list[str]) -> Normalised:
    match = _PY_LOGGING.fullmatch(lines[0])
    if match:
        level, stamp, request_id, rest = match.groups()
        lines[0] = f"{stamp} {level} {rest}"
        return Normalised(lines, _request(request_id))
    match = _PY_UNHANDLED.fullmatch(lines[0])
    if match and _TRACEBACK in lines:
        start = lines.index(_TRACEBACK)
        return Normalised([*lines, match.group(1), *lines[1:start]])
    return Normalised(lines)


def _node(lines: list[str]) -> Normalised | None:
    match = _NODE.fullmatch(lines[0])
    if match is None:
        return None
    stamp, request_id, level, rest = match.groups()
    invoke = _NODE_INVOKE.fullmatch(rest)
    stack = _node_stack(invoke.group(2)) if invoke else None
    if invoke and stack is not None:
        return Normalised([f"{stamp} {level} {invoke.group(1)}", *stack], _request(request_id))
    lines[0] = f"{stamp} {level} {rest}"
    return Normalised(lines, _request(request_id))


def _node_stack(text: str) -> list[str] | None:
    """The printed stack of a Node runtime error record, or None when it is not one."""
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("errorType"), str):
        return None
    stack = record.get("stack")
    if isinstance(stack, list) and stack and all(isinstance(s, str) for s in stack):
        return [line for entry in stack for line in split_message(entry)]
    kind, message = record["errorType"], record.get("errorMessage")
    return split_message(f"{kind}: {message}" if isinstance(message, str) else kind)


def _timed_out(lines: list[str]) -> Normalised | None:
    match = _TIMED_OUT.fullmatch(lines[0])
    if match is None:
        return None
    stamp, request_id, rest = match.groups()
    lines[0] = f"{stamp} ERROR {rest}"
    return Normalised(lines, _request(request_id))


def _request_error(lines: list[str]) -> Normalised | None:
    """`RequestId: … Error: Runtime exited …` + the error type on the next line: one line."""
    match = _REQUEST_ERROR.fullmatch(lines[0])
    if match is None:
        return None
    request_id, error = match.groups()
    fields = _request(request_id)
    kind = lines[1].strip() if len(lines) == 2 else ""
    if kind and " " not in kind:
        fields["error_type"] = kind
        return Normalised([f"ERROR {error} ({kind})"], fields)
    return Normalised([f"ERROR {error}", *lines[1:]], fields)


def _platform(lines: list[str]) -> Normalised:
    """START/END/REPORT/INIT_*: info, or error when the record reports a failed status."""
    first = lines[0]
    keyword = first.split(" ", 1)[0]
    request = _REQUEST_ID.search(first)
    fields: dict[str, Any] = _request(request.group(1)) if request else {}
    pairs = _pairs(first[len(keyword) :])
    for key, name in _MEASURES.items():
        number = _number(pairs.get(key, ""))
        if number is not None:
            fields[name] = number
    status = pairs.get("Status", "").strip()
    failed = status in _FAILED
    if status:
        fields["status"] = status
    if pairs.get("Error Type"):
        fields["error_type"] = pairs["Error Type"].strip()
    fields["level"] = "error" if failed else "info"
    if failed:
        # one stable text per failure kind: the measurements (kept in fields) would split a
        # group, as cold starts add an "Init Duration" column
        rid = f" RequestId: {request.group(1)}" if request else ""
        kind = f" Error Type: {fields['error_type']}" if "error_type" in fields else ""
        lines = [f"{keyword}{rid} Status: {status}{kind}", *lines[1:]]
    return Normalised(lines, fields)


def _pairs(text: str) -> dict[str, str]:
    """ "Key: value" columns separated by tabs ("Duration: 3.1 ms\tStatus: timeout")."""
    pairs = {}
    for column in text.split("\t"):
        key, sep, value = column.strip().partition(": ")
        if sep:
            pairs[key] = value.strip()
    return pairs


def _request(request_id: str) -> dict[str, Any]:
    return {"aws_request_id": request_id} if request_id and request_id != "undefined" else {}


def _number(value: str) -> float | None:
    head = value.strip().split(" ", 1)[0]
    try:
        return float(head)
    except ValueError:
        return None
