"""One line of `railway logs --json` output -> the parts a RawLine needs.

The CLI prints each log as `{"message": …, "timestamp": …, <attributes>…}` with the attributes
flattened and in arbitrary key order (a Rust HashMap). The RawLine text is the *message*, with
the attributes in `fields` and the timestamp parsed: Railway stores every stdout line of a
service as its own log, so a Python traceback arrives as one JSON line per traceback line, and
only plain message text lets the multi-line assembler put the trace back together (it never
joins JSON lines). Lines that are not JSON (banners, CLI errors, garbage) are kept as they are.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from watcher.sources.lines import cap_bytes

# RFC3339 as Railway prints it: nanosecond fractions, "Z" (offsets accepted for safety).
_RFC3339 = re.compile(
    r"(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(?:[.,](\d+))?([Zz]|[+-]\d\d:?\d\d)?\s*"
)
# Colour and cursor sequences a CLI writes because its stdout is a terminal.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_SURROGATE = re.compile("[\ud800-\udfff]")
_NS = 1_000_000_000


@dataclass(slots=True)
class Entry:
    """A decoded output line: the text to emit and what de-duplication needs."""

    text: str
    truncated: bool = False
    timestamp: str | None = None  # as printed, for the cursor and --since
    ns: int | None = None  # the same instant in integer nanoseconds, for ordering
    digest: str | None = None  # identifies the entry among those sharing its timestamp
    fields: dict[str, Any] | None = None


def timestamp_ns(text: str) -> int | None:
    """Nanoseconds since the epoch for an RFC3339 timestamp; None when it is not one.

    Parsed by hand because datetime drops digits past microseconds, and string comparison (what
    the CLI does) misorders "…:05Z" and "…:05.1Z".
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    day, clock, fraction, zone = match.groups()
    if zone is None or zone in "Zz":
        zone = "+00:00"
    try:
        seconds = int(datetime.fromisoformat(f"{day}T{clock}{zone}").timestamp())
    except ValueError:
        return None
    return seconds * _NS + int((fraction or "0")[:9].ljust(9, "0"))


def format_ns(ns: int) -> str:
    """An RFC3339 UTC timestamp with nanoseconds, as the CLI's --since/--until accept."""
    seconds, fraction = divmod(ns, _NS)
    day = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{day}.{fraction:09d}Z"


def clean_text(text: str, limit: int) -> tuple[str, bool]:
    """`text` with lone surrogates replaced and capped at `limit` UTF-8 bytes; (text, cut)."""
    try:
        data = text.encode()
    except UnicodeEncodeError:  # "\ud83d" escapes in JSON decode to unencodable surrogates
        text = _SURROGATE.sub("\ufffd", text)
        data = text.encode()
    if len(data) <= limit:
        return text, False
    return cap_bytes(data, limit).decode("utf-8", "replace"), True


def decode(line: str, limit: int, *, cut: bool = False) -> Entry:
    """The Entry for one output line; `cut` when the splitter already truncated it."""
    obj = _json_object(_ANSI.sub("", line)) if not cut else None
    if obj is None:
        text, capped = clean_text(_ANSI.sub("", line).rstrip("\r"), limit)
        return Entry(text, truncated=cut or capped)
    digest = _digest(obj)
    message = obj.pop("message", None)
    stamp = obj.pop("timestamp", None)
    if isinstance(message, str):
        text = message
    else:  # an attribute named "message" replaced it, or there was none: keep everything
        text = line.strip()
        if message is not None:
            obj["message"] = message
    text, capped = clean_text(text.rstrip("\r"), limit)
    if not isinstance(stamp, str):
        return Entry(text, capped, fields=obj or None)
    return Entry(text, capped, stamp, timestamp_ns(stamp), digest, obj or None)


def _json_object(line: str) -> dict[str, Any] | None:
    stripped = line.strip()
    if not stripped.startswith("{"):
        return None
    try:
        obj = json.loads(stripped)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _digest(obj: dict[str, Any]) -> str:
    """A short hash of the whole entry, independent of key order (replays reorder keys)."""
    canonical = json.dumps(obj, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode(), digest_size=8).hexdigest()
