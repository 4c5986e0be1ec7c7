"""Timestamp text or numbers -> epoch seconds (float). Naive times are taken as UTC."""

from __future__ import annotations

import datetime as _dt
import math
import re
from typing import Any

# ISO-8601 / RFC 3339 and the common "YYYY-MM-DD HH:MM:SS,mmm" and Go "YYYY/MM/DD" spellings.
ISO = re.compile(
    r"(\d{4})[-/](\d\d)[-/](\d\d)[T ](\d\d):(\d\d)(?::(\d\d))?(?:[.,](\d{1,9}))?"
    r" ?(Z|z|UTC|GMT|[+-]\d\d(?::?\d\d)?)?"
)

_ISO_BRACKETED = re.compile(r"\[?(?:" + ISO.pattern + r")\]?")
_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
_EPOCH_NAIVE = _dt.datetime(1970, 1, 1)
# date string -> days since the epoch; logs repeat the same few dates millions of times.
_DAYS: dict[tuple[str, str, str], int | None] = {}
_DAYS_CAP = 4096


def _days(year: str, month: str, day: str) -> int | None:
    key = (year, month, day)
    days = _DAYS.get(key, -1)
    if days == -1:
        try:
            days = _dt.date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
        except ValueError:
            days = None
        if len(_DAYS) >= _DAYS_CAP:
            _DAYS.clear()
        _DAYS[key] = days
    return days


def _offset(zone: str | None) -> int:
    """Seconds east of UTC for a zone suffix; naive and Z/UTC are 0."""
    if not zone or zone[0] not in "+-":
        return 0
    digits = zone[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) >= 4 else 0)
    return -minutes * 60 if zone[0] == "-" else minutes * 60


def from_match(match: re.Match[str]) -> float | None:
    """Epoch seconds from an ISO match, or None when the date or time is out of range."""
    year, month, day, hour, minute, second, frac, zone = match.groups()
    days = _days(year, month, day)
    h, m, s = int(hour), int(minute), int(second or 0)
    if days is None or h > 23 or m > 59 or s > 60:
        return None
    total = days * 86400 + h * 3600 + m * 60 + s - _offset(zone)
    if frac:
        return total + int(frac) / 10 ** len(frac)
    return float(total)


def parse_iso(text: str) -> float | None:
    """Epoch seconds of an ISO-like timestamp (the whole of `text`), else None."""
    try:
        # the C parser is ~4x cheaper than the regex; it takes ",123", 9-digit fractions, "Z"
        moment = _dt.datetime.fromisoformat(text)
    except ValueError:
        match = ISO.match(text)
        return from_match(match) if match else None
    return _epoch(moment)


def _epoch(moment: _dt.datetime) -> float | None:
    try:
        if moment.tzinfo is None:
            return (moment - _EPOCH_NAIVE).total_seconds()  # naive means UTC, never local time
        return moment.timestamp()
    except (OverflowError, ValueError):
        return None


def prefix(text: str, pos: int) -> tuple[float | None, int] | None:
    """A timestamp starting at `pos` ("2024-05-01 12:00:00,123 …", "[2024-…]"): (epoch, end).

    The fixed layout is checked by hand and parsed by the C parser; anything else goes through
    the ISO regex. `end` is just past the timestamp and its closing bracket.
    """
    fixed = _fixed_layout(text, pos)
    if fixed is not None:
        return _epoch(fixed[0]), fixed[1]
    match = _ISO_BRACKETED.match(text, pos)
    if match is None:
        return None
    return from_match(match), match.end()


def prefix_end(text: str, pos: int) -> int | None:
    """Where prefix(text, pos)'s timestamp ends (None when there is none), without computing
    its epoch: a caller that only needs what follows the time (the errors-only check) skips
    the datetime arithmetic, a third of prefix()'s cost."""
    fixed = _fixed_layout(text, pos)
    if fixed is not None:
        return fixed[1]
    match = _ISO_BRACKETED.match(text, pos)
    return None if match is None else match.end()


def _fixed_layout(text: str, pos: int) -> tuple[_dt.datetime, int] | None:
    """The usual "2024-05-01 12:00:00,123" at `pos` (bracketed or not), checked by hand and
    parsed by the C parser: (moment, end past it and its bracket), or None for the regex."""
    start = pos + 1 if text[pos : pos + 1] == "[" else pos
    if text[start + 13 : start + 14] != ":" or text[start + 4 : start + 5] != "-":
        return None
    stop = text.find("]" if start > pos else " ", start + 16)
    if stop == -1:
        stop = len(text)
    try:
        moment = _dt.datetime.fromisoformat(text[start:stop])
    except ValueError:
        return None
    return moment, stop + 1 if start > pos else stop


def from_epoch(number: float) -> float | None:
    """Epoch seconds from a number in seconds, millis, micros or nanos (told apart by size)."""
    if not math.isfinite(number) or number < 0:
        return None
    if number >= 1e17:
        return number / 1e9
    if number >= 1e14:
        return number / 1e6
    if number >= 1e11:
        return number / 1e3
    return float(number)


def parse_timestamp(value: Any) -> float | None:
    """A structured timestamp (ISO string, epoch number or numeric string) -> epoch seconds."""
    kind = type(value)
    if kind is str:
        if value[4:5] in ("-", "/") and value[:1].isdigit():
            return parse_iso(value)
        try:
            return from_epoch(float(value))
        except ValueError:
            return None
    if kind is int or kind is float:  # not isinstance: True is not a time
        try:
            return from_epoch(float(value))
        except OverflowError:  # an int too large for a float
            return None
    return None
