"""The human log format: one short line per record, for `watcher run` on a terminal.

Records whose `event` is a pattern lifecycle word (see LIFECYCLE) become the lines an on-call
engineer scans for — `NEW`, `ALERT`, `REGRESSED`, `RESOLVED`, `FIX pr_open`, `SUMMARY` — with
the pattern, its count, category and top frame. Any other record is `time LEVEL message k=v`.
A module that wants such a line logs a structured record (`log.warning("regressed",
group=…, count=…, category=…, severity=…, pattern=…, top_frame=…)`); the JSON format carries
the same fields, so nothing has to know which format is on.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from typing import Any, TextIO

# event -> (tag, ANSI colour); the tag is padded so patterns line up
LIFECYCLE: dict[str, tuple[str, str]] = {
    "new": ("NEW", "33"),  # yellow
    "alert": ("ALERT", "1;31"),  # bold red
    "regressed": ("REGRESSED", "1;31"),
    "resolved": ("RESOLVED", "32"),  # green
    "fix": ("FIX", "36"),  # cyan
    "summary": ("SUMMARY", "2"),  # dim
}
LEVEL_TAGS = {"debug": "DEBUG", "info": "INFO", "warning": "WARN", "error": "ERROR"}
LEVEL_COLOURS = {"warning": "33", "error": "31", "critical": "1;31"}
# fields a lifecycle line shows in its own words, not as k=v
SHOWN = frozenset({"event", "level", "timestamp", "group", "count", "category", "severity",
                   "pattern", "top_frame", "status", "pr", "error", "logger"})  # fmt: skip
PATTERN_CHARS = 100
TAG_WIDTH = 9


def use_colour(stream: TextIO | None = None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    stream = stream if stream is not None else sys.stderr
    return stream.isatty() and not os.environ.get("NO_COLOR")


class HumanRenderer:
    """A structlog renderer: the event dict -> one line."""

    def __init__(self, colour: bool = False) -> None:
        self.colour = colour

    def __call__(self, _logger: Any, _name: str, record: dict[str, Any]) -> str:
        event = str(record.get("event", ""))
        when = _clock(record.get("timestamp"))
        if event in LIFECYCLE:
            tag, colour = LIFECYCLE[event]
            if event == "fix" and record.get("status"):
                tag = f"FIX {record['status']}"
            body = summary_text(record) if event == "summary" else pattern_text(record)
            return f"{when} {self._paint(tag.ljust(TAG_WIDTH), colour)} {body}"
        level = str(record.get("level", "info"))
        tag = LEVEL_TAGS.get(level, level.upper()).ljust(5)
        rest = _pairs(record, {"event", "level", "timestamp"})
        return f"{when} {self._paint(tag, LEVEL_COLOURS.get(level, ''))} {event}{rest}"

    def _paint(self, text: str, colour: str) -> str:
        return f"\x1b[{colour}m{text}\x1b[0m" if self.colour and colour else text


def pattern_text(record: dict[str, Any]) -> str:
    """`category/severity xcount  pattern  at file:line in function  [group] extras`."""
    parts = []
    if record.get("category"):
        kind = record["category"] + (f"/{record['severity']}" if record.get("severity") else "")
        parts.append(kind)
    if record.get("count") is not None:
        parts.append(f"x{record['count']}")
    if record.get("pattern"):
        parts.append(_cut(str(record["pattern"]), PATTERN_CHARS))
    if record.get("top_frame"):
        parts.append(f"at {record['top_frame']}")
    for key in ("pr", "error"):
        if record.get(key):
            parts.append(str(record[key]))
    if record.get("group"):
        parts.append(f"[{record['group']}]")
    return "  ".join(parts) + _pairs(record, SHOWN)


def summary_text(record: dict[str, Any]) -> str:
    """`lines  errors  patterns | top: …` from a summary record."""
    head = "  ".join(
        f"{record[key]:,} {key}" for key in ("lines", "errors", "patterns")
        if isinstance(record.get(key), int)
    )  # fmt: skip
    top = record.get("top") or []
    listed = ", ".join(
        f"{t.get('category', '?')} x{t.get('count', 0)} [{t.get('group', '?')}]"
        for t in top
        if isinstance(t, dict)
    )
    unshown = record.get("new_not_shown")
    more = f" | {unshown} more new patterns (not shown)" if unshown else ""
    return head + (f" | top 5m: {listed}" if listed else "") + more


def _pairs(record: dict[str, Any], skip: frozenset[str] | set[str]) -> str:
    extras = [f"{k}={_value(v)}" for k, v in record.items() if k not in skip and v is not None]
    return ("  " + " ".join(extras)) if extras else ""


def _value(value: Any) -> str:
    text = str(value)
    return repr(text) if " " in text else text


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())  # one line, whatever the pattern held
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clock(timestamp: Any) -> str:
    """HH:MM:SS in local time from structlog's ISO UTC timestamp (now when missing)."""
    try:
        moment = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    except ValueError:
        moment = datetime.now().astimezone()
    return moment.astimezone().strftime("%H:%M:%S")
