"""Level spellings -> the normalised names of model.LEVELS."""

from __future__ import annotations

from typing import Any

# Every spelling seen in the wild that is a whole word; single letters (E/, W0101) are kept
# apart in LETTER_LEVELS because a lone "E" in free text is not a level.
WORD_LEVELS: dict[str, str] = {
    "trace": "trace",
    "trc": "trace",
    "trce": "trace",
    "verbose": "trace",
    "finest": "trace",
    "finer": "trace",
    "debug": "debug",
    "dbg": "debug",
    "dbug": "debug",
    "fine": "debug",
    "config": "debug",
    "info": "info",
    "inf": "info",
    "information": "info",
    "informational": "info",
    "notice": "notice",
    "warn": "warning",
    "warning": "warning",
    "wrn": "warning",
    "error": "error",
    "err": "error",
    "fail": "error",  # Microsoft.Extensions.Logging's console format: "fail: Category[0]"
    "erro": "error",
    "eror": "error",
    "severe": "error",
    "critical": "critical",
    "crit": "critical",
    "fatal": "critical",
    "panic": "critical",
    "dpanic": "critical",
    "alert": "critical",
    "emerg": "critical",
    "emergency": "critical",
}

LETTER_LEVELS: dict[str, str] = {
    "V": "trace",
    "T": "trace",
    "D": "debug",
    "I": "info",
    "N": "notice",
    "W": "warning",
    "E": "error",
    "F": "critical",
    "C": "critical",
    "A": "critical",
}

# Syslog severities 0..7 (RFC 5424), also journald's PRIORITY.
SYSLOG_LEVELS: tuple[str, ...] = (
    "critical",
    "critical",
    "critical",
    "error",
    "warning",
    "notice",
    "info",
    "debug",
)

# Exact spellings hit before any lower-casing: the common case costs one dict lookup.
_FAST: dict[str, str] = {**WORD_LEVELS, **{k.upper(): v for k, v in WORD_LEVELS.items()}}
_FAST.update({k.capitalize(): v for k, v in WORD_LEVELS.items()})
LEVEL_WORDS_FAST = frozenset(_FAST)  # the spellings normalize_level reads with one lookup


def level_word(word: str) -> str | None:
    """Normalise a level word (any case), or None when it is not one."""
    found = _FAST.get(word)
    if found is None and len(word) <= 16:
        found = WORD_LEVELS.get(word.strip().lower())
    return found


def level_number(number: float) -> str | None:
    """pino/bunyan numeric levels: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal."""
    if number != number or number < 10:  # NaN, or too small to be pino's scale
        return None
    if number >= 60:
        return "critical"
    if number >= 50:
        return "error"
    if number >= 40:
        return "warning"
    if number >= 30:
        return "info"
    return "debug" if number >= 20 else "trace"


def syslog_level(number: int) -> str | None:
    """A syslog severity (0 emerg .. 7 debug) as a level name."""
    return SYSLOG_LEVELS[number] if 0 <= number <= 7 else None


def normalize_level(value: Any) -> str | None:
    """Any structured level value (word, pino number, numeric string) -> a LEVELS name or None."""
    kind = type(value)
    if kind is str:
        found = _FAST.get(value) or level_word(value)
        # isdecimal, not isdigit: int() refuses a superscript "²", which isdigit accepts
        if found is None and value.isdecimal() and len(value) <= 3:
            found = level_number(int(value))
        return found
    if kind is int or kind is float:  # not isinstance: True is not a level
        return level_number(value)
    return None
