"""Variable masking: replace the values a logging statement interpolates with `<*>`.

One compiled alternation is applied in a single left-to-right pass, so the cost is one regex scan
per line whatever the number of variable kinds. Alternatives are ordered from the most specific
(URLs, UUIDs, IPs, timestamps) to the most general (any word with a digit), because at a given
position the regex engine takes the first alternative that matches.

Every kind is masked to the same `<*>` token rather than typed tokens (`<NUM>`, `<IP>`): one
field often carries values of different kinds (a host that is sometimes an IP, sometimes a
name), and typed tokens would split one statement into several groups.
"""

from __future__ import annotations

import re

WILDCARD = "<*>"

# Common TLDs and two-letter country codes decide whether `a.b.c` is a host name (a variable) or
# a dotted identifier such as a Java class (usually a constant of the statement).
_TLDS = (
    "com|net|org|edu|gov|mil|int|io|dev|app|cloud|local|localdomain|internal|lan|info|biz|"
    "co|me|ai|tv|uk|de|fr|jp|cn|ru|br|in|au|ca|nl|eu"
)

# Units after a number make the pair one value: "12 ms" and "3 sec" are one variable each.
_UNITS = (
    r"(?:[KMGTP]i?B|[kKMGT]?bytes?|B|b|[munµ]?s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|"
    r"days?|%)"
)

_MONTHS = r"\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_DAYS = r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*\.?"

_KINDS: tuple[str, ...] = (
    # URLs with a scheme; everything up to whitespace or a closing delimiter is the value.
    r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>)\]]+",
    # e-mail addresses
    r"[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+",
    # UUIDs
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    # ISO-8601 / syslog-ish date-times and dates
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?",
    # syslog / ctime style dates: "Mon Jul 10 03:55:15 2005", "Jul  1 09:00:55", "10 Jul 2005"
    rf"(?:{_DAYS},?\s+)?{_MONTHS}\s+\d{{1,2}},?(?:\s+\d{{1,2}}:\d{{2}}(?::\d{{2}})?(?:[.,]\d+)?)?"
    r"(?:\s+\d{4})?(?!\w)",
    rf"\d{{1,2}}\s+{_MONTHS}\s+\d{{4}}",
    # clock times and short durations (12:34:56.789, 00:01)
    r"(?<![\w:])\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?(?![\w:])",
    # IPv4 with optional port
    r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])",
    # IPv6 (full or compressed forms with at least two colons) and MAC addresses
    r"(?<![\w:])(?:[0-9a-fA-F]{1,4}:){2,7}(?::|[0-9a-fA-F]{1,4})(?![\w:])",
    # file-system paths: a leading slash (or drive) and at least one more segment
    r"(?<![\w/.])(?:[A-Za-z]:)?(?:[/\\][\w.@%+~$-]+){2,}[/\\]?",
    # host names ending in a known TLD, optionally with a port
    rf"(?<![\w.-])(?:(?:[A-Za-z0-9-]+\.)+(?:{_TLDS})|(?:[A-Za-z0-9-]+\.){{2,}}[a-z]{{2}})"
    r"(?::\d{1,5})?(?![\w.-])",
    # sizes and durations with their unit, incl. a human-readable alternate: "12 bytes (1.2 KB)"
    rf"[<>]?=?[-+]?\d+(?:[.,]\d+)?\s?{_UNITS}(?:\s\([-+]?\d+(?:[.,]\d+)?\s?{_UNITS}\))?(?![\w.])",
    # quoted single words; a quoted phrase is often a message fragment (an HTTP request line)
    # whose words say which statement it is, so its variables are left to the other rules
    r"(?<!\w)\"[^\"\s]{0,200}\"(?!\w)",
    r"(?<!\w)'[^'\s]{0,200}'(?!\w)",
    # the value of key=value (empty values stay empty: "ruser= rhost=")
    r"(?<=[A-Za-z_]=)[^\s,;&)\]}\"']+",
    # printed booleans and nulls
    r"\b(?:true|false|True|False|TRUE|FALSE|null|NULL|None|nil)\b",
    # empty brackets print an empty value
    r"(?<!\w)(?:\(\)|\[\]|\{\})",
    # hex numbers with a 0x prefix, and long bare hex runs (hashes, ids)
    r"0[xX][0-9a-fA-F]+",
    r"(?<![\w])[0-9a-fA-F]{8,}(?![\w])",
    # anything else that holds a digit: numbers, sizes, durations, ids like blk_-12 or node-7
    r"[\w.+-]*\d[\w.+-]*",
)

_MASK_RE = re.compile("|".join(f"(?:{kind})" for kind in _KINDS))


def mask(message: str) -> str:
    """Return `message` with every variable value replaced by `<*>`."""
    return _MASK_RE.sub(WILDCARD, message)
