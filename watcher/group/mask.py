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
import typing

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
    # The look-behinds here and on e-mails and the catch-all keep masking linear: without them
    # the engine re-scans a long run ("a-a-a-…", 64 KiB) from each of its positions (quadratic,
    # ~40 s a line). Only a run's first character can start these kinds anyway, unless a match
    # of another kind ended inside the run.
    r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>)\]]+",
    # e-mail addresses
    r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+",
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
    # anything else that holds a digit: numbers, sizes, durations, ids like blk_-12 or node-7;
    # from inside a run (where another kind's match ended: "0x1f-12") only with a digit within
    # 33 characters, so a digitless run costs a bounded look per position (linear, see URLs)
    r"(?<![\w.+-])[\w.+-]*\d[\w.+-]*|[\w.+-]{0,32}\d[\w.+-]*",
)

# -- fast path --------------------------------------------------------------------------------
#
# The alternation costs ~0.4 us per character (the engine tries every kind at every position),
# so it only runs on the parts of a line that need it. A line is cut at single spaces into parts
# and each part is classified:
#
# CONSTANT  a word or identifier ("failed", "(TID", "done.", "org.apache.Foo:", "get_id()") or
#           a punctuation run ("=", "--", "->"). No kind
#           can start inside one, and none continues into one from the previous part: the kinds
#           that cross whitespace continue only into a digit, a month name, a unit or "(<digit>".
#           So a line's masking is the same whether or not these parts are fed to the regex.
# SIMPLE    `[A-Za-z0-9_]*` holding a digit, then closing punctuation (",", ":", ")"): every
#           kind that matches at its start ends exactly at the punctuation ("1482", "bn654",
#           "12ms", "x86_64,"), so it masks to `<*>` + that punctuation, unless a neighbour can
#           continue it ("12 ms", "10 Jul 2005"): only a run of SIMPLE parts between CONSTANT
#           ones takes the shortcut.
# other     a run of non-constant parts (with its spaces) goes through the regex as one string.
#
# `tests/test_mask.py` checks this against the plain one-pass regex on random text.

# words that may be, or start, a variable: months and days (dates), units ("12 ms"), printed
# booleans, and 8+ hex letters (hashes)
_NOT_CONSTANT = (
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec|Mon|Tue|Wed|Thu|Fri|Sat|Sun"
    r"|true|false|True|False|TRUE|FALSE|null|NULL|None|nil|[a-fA-F]{8}"
    r"|(?:[KMGTP]i?B|[kKMGT]?bytes?|B|b|[munµ]?s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?"
    r"|days?)(?![A-Za-z]))"
)
# after a dot, a segment that would make the part a host name ("a.b.com", "x.y.io")
_TLD_LIKE = rf"(?:{_TLDS}|[a-z]{{2}})(?![A-Za-z_])"
_WORD = rf"(?!{_NOT_CONSTANT})[A-Za-z_]+"
_PART_RE = re.compile(
    # a word or dotted identifier, maybe called "()", in brackets or before punctuation
    rf"(?P<constant>[(\[]?{_WORD}(?:\.(?!{_TLD_LIKE}){_WORD})*(?:\(\))?[.,:;)\]!?]*"
    r"|[-=:|*#~.,;!?&<>]+)"
    r"|(?!0[xX])[A-Za-z0-9_]*[0-9][A-Za-z0-9_]*(?P<punct>[,;:)\]]*)"
)
# KEYVALUE  `key=value` with a constant word for key (`_WORD`) and `[A-Za-z0-9_]+` for value
#           ("seq=1", "ref=f5cae3bf", "user=alice"): masks to "key=<*>", the key=value kind's
#           match. No kind starts inside the key (as in a CONSTANT part) and none crosses "=";
#           at "=" only the size kind can start, when the value is digits and a unit ("t=12ms"
#           masks to "t<*>"), and at the value's start only a date kind comes before key=value,
#           when the value starts with a month or day name: both are left to the regex. The
#           value ends at the space, and neighbours cannot continue into or out of it, as for
#           SIMPLE parts (an all-digit value before a unit word: that word is not CONSTANT,
#           SIMPLE nor KEYVALUE, so the run takes the regex). A flood of unique errors
#           (`ref=<hex> seq=<n>`) sent every such run through the regex: ~3 us a part.
_KEYVALUE_RE = re.compile(
    rf"{_WORD}=(?!Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec|Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
    rf"(?![0-9]+{_UNITS}\Z)[A-Za-z0-9_]+"
)
_KEYVALUE = "key=value"  # the kind of a KEYVALUE part (compared by identity, like _CONSTANT)

# `_KEYVALUE_RE` decided without it (each call cost ~6k instructions, 22 % of masking a flood of
# `ref=<hex> seq=<n>` lines), in halves at the part's first "=" (neither the key nor the value
# holds one). The key's half (`_WORD=`) depends on the key alone, since the look-ahead at its
# start sees at most the "=" after it (no word it looks for holds "="), so it is kept per key,
# a vocabulary like `_constants`. The value's half is tested with string operations:
# `[A-Za-z0-9_]+`, not starting with a month or day name, and not digits then a unit to the
# end (a unit starts with no digit, so the digits are all the leading ones; the units of
# `_UNITS` spelt in those characters are `_UNIT_WORDS`).
_KEY_RE = re.compile(rf"{_WORD}=")
_keys: dict[str, bool] = {}  # key -> whether it is a KEYVALUE key; bounded like _constants


def _is_keyvalue(part: str) -> bool:
    """Whether `_KEYVALUE_RE` matches all of `part`."""
    key, _, value = part.partition("=")
    known = _keys.get(key)
    if known is None:
        known = _KEY_RE.fullmatch(key + "=") is not None
        if len(key) <= CONSTANT_CHARS:
            if len(_keys) >= CONSTANTS_LIMIT:
                _keys.clear()
            _keys[key] = known
    if not known or not value.isascii() or value[:3] in _MONTH_DAY_HEADS:
        return False
    if not value.isalnum() and not value.replace("_", "a").isalnum():
        return False
    unit = value.lstrip("0123456789")
    return len(unit) == len(value) or unit not in _UNIT_WORDS


def _keyvalue_token(part: str) -> str:
    """The masked token of a KEYVALUE part: its key, "=" and `<*>`."""
    return part[: part.index("=") + 1] + WILDCARD


# An ASCII word of letters is CONSTANT unless `_NOT_CONSTANT` matches at its start (the constant
# branch of _PART_RE is then `_WORD` alone; the other branches need a digit or punctuation):
# a month or day name or a printed boolean starts it, 8 hex letters do, or it is a unit (a unit
# must be followed by a non-letter, and only the word's end is). Tested with a few C-level
# string operations instead of a regex call: a flood of unique words pays this on every word.
_MONTH_DAY_HEADS = frozenset(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
     "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
)  # fmt: skip
_BOOL_HEADS = ("true", "false", "True", "False", "TRUE", "FALSE", "null", "NULL", "None", "nil")
_UNIT_WORDS = frozenset(
    (*(f"{p}{i}B" for p in "KMGTP" for i in ("", "i")),
     *(f"{p}byte{s}" for p in ("", "k", "K", "M", "G", "T") for s in ("", "s")),
     "B", "b", "s", "ms", "us", "ns", "sec", "secs", "second", "seconds", "min", "mins",
     "minute", "minutes", "h", "hr", "hrs", "hour", "hours", "day", "days")
)  # fmt: skip
_HEX_LETTERS = "abcdefABCDEF"


# the first three letters of every head above (each has at least three): a word that starts
# with none of them is tested for a unit and a hex run only (`startswith` of a tuple of ten
# heads, and the strip, cost a never-seen word more than the rest of its tests together)
_HEADS3 = _MONTH_DAY_HEADS | frozenset(head[:3] for head in _BOOL_HEADS)


def _not_constant_word(word: str) -> bool:
    """Whether `_NOT_CONSTANT` matches at the start of `word`, an ASCII word of letters."""
    head = word[:3]
    return (
        (head in _HEADS3 and (head in _MONTH_DAY_HEADS or word.startswith(_BOOL_HEADS)))
        or word in _UNIT_WORDS
        or (len(word) >= 8 and word[0] in _HEX_LETTERS and not word[:8].strip(_HEX_LETTERS))
    )


# Parts proven constant, so that a line of known words costs one dict look-up per word, each
# mapped to its token (itself, or `<*>` for a punctuation run holding a literal "<*>"). Only
# constants are kept (a vocabulary, not values), and the dict is cleared when full.
_constants: dict[str, str] = {}
CONSTANTS_LIMIT = 100_000
# Longer parts are not kept: no vocabulary has such words, and 100k of 64 KiB "words" (a hostile
# line of letters) would be gigabytes.
CONSTANT_CHARS = 64


def _constant(part: str) -> str | None:
    """The token of a CONSTANT part (see above), else None."""
    known = _constants.get(part)
    if known is None:
        match = _PART_RE.fullmatch(part)
        if match is None or match.lastgroup != "constant":
            return None
        known = _remember(part)
    return known


def _remember(part: str) -> str:
    """Keep a part proven constant in the vocabulary; return its token."""
    token = WILDCARD if WILDCARD in part else part
    if len(part) <= CONSTANT_CHARS:
        if len(_constants) >= CONSTANTS_LIMIT:
            _constants.clear()
        _constants[part] = token
    return token


# -- the kinds as compiled --------------------------------------------------------------------
#
# `_KINDS` spells each kind plainly (tests/reference_mask.py compiles it: it is what masking
# means). The alternation is compiled from `_FAST_KINDS`: the same kinds, each as one or more
# alternatives that together match the same span as the kind at every position (spliced in its
# place, in order: the first alternative that matches wins, as the first kind did), written so
# that a position where a kind cannot match costs the engine little. A failed try of every kind
# is repeated at every position of a region, and was ~200 ns a character; now ~2.4x fewer
# instructions on Loghub's regions. tests/test_mask_equivalence.py checks every kind's spans
# against `_KINDS` on random text, and the whole masking against the reference masker.
#
# - The engine skips an alternative whose first operation is a character (class) the position
#   does not hold without entering it; a look-behind first is entered at every position. So a
#   kind that started with a look-behind starts with its first character (class) and looks
#   behind after it, one character wider: `(?<![\w:])\d` is `\d(?<![\w:]\d)` (the same test of
#   the character before, now that the class checked is behind). Kinds with an alternation at
#   their start are split into one alternative per branch ("true", "false"... each behind its
#   first letter; the empty brackets; sizes per first character).
# - Most positions are inside a word, right after an ASCII letter or digit. There only the kinds
#   without a look-behind or word boundary before them can match (UUIDs, ISO dates, "10 Jul
#   2005", sizes, 0x numbers, the catch-all from inside a run): every other kind looks behind for
#   a character that is not one of those, or needs a word boundary before a letter. So the
#   alternation is `(?<=[A-Za-z0-9])(?:those)|(?<![A-Za-z0-9])(?:all)`: one look behind, then
#   only those (the second bool of each alternative says whether it is one of them).
# - The catch-all backtracked through every digitless word, from each of its positions
#   (`[\w.+-]*\d` gives back one character at a time looking for a digit: quadratic per word).
#   A look-ahead first skips the ASCII letters, "_", ".", "+" and "-" possessively (a tight loop)
#   and needs the next character to be an ASCII digit or non-ASCII: necessary for a match (an
#   ASCII character of a run before its digit is one of those skipped; a Unicode digit or letter
#   is non-ASCII), then the exact look-ahead; bounded by 32 (31 after the first character) like
#   the branch it guards, so linear (see the URL kind). After the first character the match is
#   the rest of the run, as `[\w.+-]*\d[\w.+-]*` always ends at the run's end.
# - Sizes: after `\d+` come `[.,]`, whitespace or a unit, none of which starts with a digit, so
#   giving a digit back can never make the rest match: the digit runs are possessive (`\d++`).
_NOT_DIGIT_RUN = r"[A-Za-z_.+\-]"
# (as a negated class: a range up to U+10FFFF took the compiler ~1 ms a use)
_DIGIT_OR_NON_ASCII = r"[^\x00-/:-\x7f]"
_SIZE_REST = rf"(?:[.,]\d++)?\s?{_UNITS}(?:\s\([-+]?\d++(?:[.,]\d++)?\s?{_UNITS}\))?(?![\w.])"
_HEX = "[0-9a-fA-F]"
_FAST_KINDS: tuple[tuple[tuple[str, bool], ...], ...] = (
    # URL
    ((r"[A-Za-z](?<![A-Za-z0-9+.-][A-Za-z])[A-Za-z0-9+.-]*://[^\s\"'<>)\]]+", False),),
    # e-mail
    ((r"[\w.+-](?<![\w.+-][\w.+-])[\w.+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+", False),),
    # UUID
    ((rf"{_HEX}{_HEX}{{7}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}", True),),
    # ISO date
    ((r"\d\d{3}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?",
      True),),
    # syslog / ctime date (word boundaries: never right after a letter or digit)
    ((_KINDS[4], False),),
    # "10 Jul 2005"
    ((rf"\d\d?\s+{_MONTHS}\s+\d{{4}}", True),),
    # clock time
    ((r"\d(?<![\w:]\d)\d?:\d{2}(?::\d{2})?(?:[.,]\d+)?(?![\w:])", False),),
    # IPv4
    ((r"\d(?<![\w.]\d)\d{0,2}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])", False),),
    # IPv6 / MAC (the first group of hex digits unrolled)
    ((rf"{_HEX}(?<![\w:]{_HEX}){_HEX}{{0,3}}:(?:{_HEX}{{1,4}}:){{1,6}}(?::|{_HEX}{{1,4}})(?![\w:])",
      False),),
    # path: with a drive letter, or from a slash
    ((r"[A-Za-z](?<![\w/.][A-Za-z]):(?:[/\\][\w.@%+~$-]+){2,}[/\\]?", False),
     (r"[/\\](?<![\w/.][/\\])[\w.@%+~$-]+(?:[/\\][\w.@%+~$-]+)+[/\\]?", False)),
    # host name
    ((rf"[A-Za-z0-9-](?<![\w.-][A-Za-z0-9-])(?:[A-Za-z0-9-]*\.(?:[A-Za-z0-9-]+\.)*(?:{_TLDS})"
      rf"|[A-Za-z0-9-]*\.(?:[A-Za-z0-9-]+\.)+[a-z]{{2}})(?::\d{{1,5}})?(?![\w.-])", False),),
    # size / duration with a unit, after the first character as it was
    ((r"[<>=+\-\d](?:(?<=\d)\d*+|(?<=[<>])=?[-+]?\d++|(?<==)[-+]?\d++|(?<=[-+])\d++)"
      rf"{_SIZE_REST}", True),),
    # quoted words
    ((r"\"(?<!\w\")[^\"\s]{0,200}\"(?!\w)", False),),
    ((r"'(?<!\w')[^'\s]{0,200}'(?!\w)", False),),
    # key=value
    ((r"[^\s,;&)\]}\"'](?<=[A-Za-z_]=[^\s,;&)\]}\"'])[^\s,;&)\]}\"']*", False),),
    # booleans and nulls, in the order of the kind's alternation
    tuple(
        (rf"{word[0]}(?<!\w{word[0]}){word[1:]}\b", False)
        for word in ("true", "false", "True", "False", "TRUE", "FALSE", "null", "NULL", "None",
                     "nil")
    ),
    # empty brackets
    ((r"\((?<!\w\()\)", False), (r"\[(?<!\w\[)\]", False), (r"\{(?<!\w\{)\}", False)),
    # 0x hex
    ((r"0[xX][0-9a-fA-F]+", True),),
    # bare hex run
    ((rf"{_HEX}(?<!\w{_HEX}){_HEX}{{7,}}(?!\w)", False),),
    # anything with a digit: from a run's start, or from inside one within 33 characters
    ((rf"[\w.+-](?<![\w.+-][\w.+-])(?:(?<=\d)|(?={_NOT_DIGIT_RUN}*+{_DIGIT_OR_NON_ASCII})"
      r"(?=[\w.+-]*\d))[\w.+-]*", False),
     (rf"[\w.+-](?:(?<=\d)|(?={_NOT_DIGIT_RUN}{{0,31}}+{_DIGIT_OR_NON_ASCII})"
      r"(?=[\w.+-]{0,31}\d))[\w.+-]*", True)),
)  # fmt: skip
assert len(_FAST_KINDS) == len(_KINDS)


def _alternation(kinds: typing.Iterable[tuple[tuple[str, bool], ...]]) -> re.Pattern[str]:
    """The alternation of `kinds` (of `_FAST_KINDS`), gated on the character before."""
    alternatives = [alternative for kind in kinds for alternative in kind]
    after_alnum = "|".join(f"(?:{alt})" for alt, follows in alternatives if follows) or "(?!)"
    anywhere = "|".join(f"(?:{alt})" for alt, _ in alternatives)
    return re.compile(f"(?<=[A-Za-z0-9])(?:{after_alnum})|(?<![A-Za-z0-9])(?:{anywhere})")


_FULL_RE = _alternation(_FAST_KINDS)


def _sub(text: str) -> str:
    """The alternation applied to `text`."""
    # (Once, the alternation was compiled per set of the characters and words a region holds,
    # leaving out the kinds it could not match. With the kinds compiled as above, a kind that
    # cannot match costs so little that the variants saved ~1 % of masking, less than computing
    # which one a region needs, and compiling ~8 of them cost a short run more than that.)
    return _FULL_RE.sub(WILDCARD, text)


# -- results per digit shape ------------------------------------------------------------------
#
# On text never seen before most regions are values the vocabulary cannot hold ("10.0.0.7:80",
# "blk_-1608999687919862906"), but few *shapes* of them: Loghub's 38.5k regions that take the
# regex have 12.5k distinct texts and 2.5k distinct shapes. The shape of a text is the text with
# every ASCII digit made "1", except the "0" of a "0x"/"0X". It gives the same masking as the
# text, so the result is kept per shape:
# - the kinds and `_PART_RE` name digits only through classes (`\d`, `\w`, `[0-9a-f]`,
#   `[A-Za-z0-9_]`), which hold "1" exactly when they hold any other ASCII digit, and through
#   the literal "0" of `0[xX]`, which the shape keeps exactly where it is followed by x/X. So at
#   every position every alternative matches the same span in the text and in its shape.
# - the masked text keeps no ASCII digit (the last kind matches from any digit), so what is left
#   between the `<*>` is the same characters in both.
# tests/test_mask_equivalence.py checks that texts of one shape mask alike, against the
# reference masker.

_ONES = bytes.maketrans(b"0123456789", b"1111111111")


def _shape(text: str) -> bytes:
    """The key of `text`'s shape: `text` with every ASCII digit made "1", as UTF-8 bytes (10x
    faster to make than a str; an ASCII digit is the only UTF-8 byte in 0x30-0x39), and the "0"
    of a "0x" prefix made the byte 0xff instead of kept (no UTF-8 text holds that byte, so two
    texts have one key exactly when they have one shape; the replacement costs a scan where a
    regex substitution of every digit of a line with a 0x value cost ~10x more)."""
    raw = text.encode("utf-8", "surrogatepass")
    if "0x" in text or "0X" in text:  # (cheaper on the str than bytes.replace finding nothing)
        raw = raw.replace(b"0x", b"\xffx").replace(b"0X", b"\xffX")
    return raw.translate(_ONES)


# line shape -> mask(line), and -> mask_tokens(line) joined by " "; region shape -> the region
# masked; part shape -> the closing punctuation of a SIMPLE part, or None for a part that is
# neither SIMPLE nor CONSTANT (constants are in the vocabulary). Loghub's 32k lines have 4.1k
# shapes. A table is cleared when it holds SHAPES_LIMIT entries or SHAPES_BYTES bytes of keys
# and values (+100 a entry for the objects): ~2-4 MB of memory per table at most. Only lines of
# at most LINE_CHARS characters and regions and parts of at most SHAPE_CHARS are kept.
_line_masked_by_shape: dict[bytes, str] = {}
_line_tokens_by_shape: dict[bytes, str] = {}
_masked_by_shape: dict[bytes, str] = {}
_part_kind_by_shape: dict[bytes, str | None] = {}
_kept_bytes: dict[int, int] = {}  # id(table) -> the bytes it holds
SHAPES_LIMIT = 10_000
SHAPES_BYTES = 2_000_000
SHAPE_CHARS = 200
LINE_CHARS = 1_000
_CONSTANT = "constant"  # the kind of a CONSTANT part (compared by identity)
_UNKNOWN = object()


def _masked(text: str) -> str:
    """`text` masked by the alternation, the result kept per shape."""
    if len(text) > SHAPE_CHARS:
        return _sub(text)
    key = _shape(text)
    masked = _masked_by_shape.get(key)
    if masked is None:
        masked = _sub(text)
        _keep(_masked_by_shape, key, masked)
    return masked


def _keep(table: dict[bytes, typing.Any], key: bytes, value: str | None) -> None:
    """Keep a result per shape, the table cleared when full."""
    size = len(key) + len(value or "") + 100
    held = _kept_bytes.get(id(table), 0) + size
    if len(table) >= SHAPES_LIMIT or held > SHAPES_BYTES:
        table.clear()
        held = size
    _kept_bytes[id(table)] = held
    table[key] = value


def _part_kind(part: str) -> str | None:
    """`_CONSTANT` for a CONSTANT part, the closing punctuation of a SIMPLE one, else None;
    what is not CONSTANT is kept per shape."""
    if part.isalpha() or len(part) > SHAPE_CHARS:
        # a word never seen is most often a constant, which the vocabulary keeps once its one
        # fullmatch proved it: making its shape first would be wasted (a flood of unique
        # words pays it on every word)
        return _classify(part)
    if "=" in part and _is_keyvalue(part):
        return _KEYVALUE  # before the shape: a value such as a hash makes shapes of its own
    return _shape_kind(part)


def _shape_kind(part: str) -> str | None:
    """`_part_kind` of a part of at most SHAPE_CHARS that is not letters nor KEYVALUE."""
    key = _shape(part)
    kind = _part_kind_by_shape.get(key, _UNKNOWN)
    if kind is _UNKNOWN:
        kind = _classify(part)
        if kind is not _CONSTANT:
            _keep(_part_kind_by_shape, key, kind)
    return kind  # type: ignore[return-value]


def _classify(part: str) -> str | None:
    match = _PART_RE.fullmatch(part)
    if match is None:
        return None
    return _CONSTANT if match.lastgroup == "constant" else match["punct"]


def _regions(parts: list[str]) -> list[tuple[int, int]]:
    """The (start, end) index ranges of the runs of non-constant parts."""
    spans, start = [], -1
    for i, part in enumerate(parts):
        if _constant(part) is not None:
            if start >= 0:
                spans.append((start, i))
                start = -1
        elif start < 0:
            start = i
    if start >= 0:
        spans.append((start, len(parts)))
    return spans


def _mask_region(parts: list[str]) -> str:
    masked = []
    for part in parts:
        kind = _part_kind(part)
        if kind is None or kind is _CONSTANT:
            # one part that is not SIMPLE nor KEYVALUE: the whole run takes the regex
            return _masked(" ".join(parts))
        masked.append(_keyvalue_token(part) if kind is _KEYVALUE else WILDCARD + kind)
    return " ".join(masked)


def mask(message: str) -> str:
    """Return `message` with every variable value replaced by `<*>`."""
    if len(message) > LINE_CHARS:
        return _mask(message)
    key = _shape(message)  # the same masking as the message (see "results per digit shape")
    masked = _line_masked_by_shape.get(key)
    if masked is None:
        masked = _mask(message)
        _keep(_line_masked_by_shape, key, masked)
    return masked


def _mask(message: str) -> str:
    parts = message.split(" ")
    for start, end in reversed(_regions(parts)):
        parts[start:end] = [_mask_region(parts[start:end])]
    return " ".join(parts)


def is_variable(token: str) -> bool:
    """True for a masked token that is only variables and punctuation ("<*>:<*>", "(<*>),")."""
    # the punctuation is formatting of the value, which differs between values of one field
    # ([^\W_] is str.isalnum: \w is the alphanumerics and "_")
    return token == WILDCARD or (
        WILDCARD in token and _ALNUM.search(token.replace(WILDCARD, "")) is None
    )


_ALNUM = re.compile(r"[^\W_]")


def mask_tokens(message: str) -> list[str]:
    """The whitespace tokens of `mask(message)`, each variable-only token made `<*>`."""
    if len(message) > LINE_CHARS:
        return _mask_tokens(message)
    key = _shape(message)  # the same tokens as the message (see "results per digit shape")
    joined = _line_tokens_by_shape.get(key)
    if joined is not None:
        return joined.split()  # tokens hold no whitespace and none is empty
    tokens = _mask_tokens(message)
    _keep(_line_tokens_by_shape, key, " ".join(tokens))
    return tokens


def mask_joined(message: str) -> str:
    """`" ".join(mask_tokens(message))`, without making the list: the text is what the line
    cache keeps, so a line of a shape seen before costs no split and no join (a miner keyed on
    the masked text splits it only for a text it has not seen: `mask_joined(m).split()` is
    `mask_tokens(m)`, as tokens hold no whitespace and none is empty)."""
    if len(message) > LINE_CHARS:
        return " ".join(_mask_tokens(message))
    key = _shape(message)
    joined = _line_tokens_by_shape.get(key)
    if joined is None:
        joined = " ".join(_mask_tokens(message))
        _keep(_line_tokens_by_shape, key, joined)
    return joined


def _mask_tokens(message: str) -> list[str]:
    tokens: list[str] = []
    parts = message.split(" ")
    start = -1  # first part of the current run of non-constant parts
    simple = True  # whether every part of that run is SIMPLE or KEYVALUE
    known = _constants.get
    fullmatch = _PART_RE.fullmatch
    for i, part in enumerate(parts):
        token = known(part)
        if token is None:
            if part.isalpha():  # a word not in the vocabulary: one fullmatch (see _part_kind)
                if part.isascii():
                    if not _not_constant_word(part):
                        # _remember inlined (a never-seen word of a flood's every line): ASCII
                        # letters hold no "<*>", so the word is its own token
                        if len(part) <= CONSTANT_CHARS:
                            if len(_constants) >= CONSTANTS_LIMIT:
                                _constants.clear()
                            _constants[part] = part
                        if start >= 0:
                            _region_tokens(parts[start:i], simple, tokens)
                            start = -1
                        tokens.append(part)
                        continue
                    kind = None
                else:
                    match = fullmatch(part)
                    constant = match is not None and match.lastgroup == "constant"
                    kind = _CONSTANT if constant else None
            # CONSTANT, SIMPLE, KEYVALUE or neither: _part_kind of a part not letters, inlined
            # up to the shape (a flood's every line has three KEYVALUE parts)
            elif len(part) > SHAPE_CHARS:
                kind = _classify(part)
            elif "=" in part and _is_keyvalue(part):
                kind = _KEYVALUE
            else:
                kind = _shape_kind(part)
            if kind is not _CONSTANT:
                if start < 0:
                    start, simple = i, True
                simple = simple and kind is not None
                continue
            token = _remember(part)
        if start >= 0:
            _region_tokens(parts[start:i], simple, tokens)
            start = -1
        tokens.append(token)
    if start >= 0:
        _region_tokens(parts[start:], simple, tokens)
    return tokens


def _region_tokens(parts: list[str], simple: bool, tokens: list[str]) -> None:
    if simple:  # SIMPLE parts mask to "<*>" (a variable-only token), KEYVALUE ones to "key=<*>"
        # ("_=1" masks to "_=<*>", a variable-only token: "<*>"); _kv_token inlined (a flood's
        # every line has three such parts)
        append = tokens.append
        for part in parts:
            if "=" not in part:
                append(WILDCARD)
                continue
            key = part[: part.index("=")]
            append(key + "=" + WILDCARD if key.strip("_") else WILDCARD)
        return
    # (is_variable inlined for the common tokens: no "<*>" at all, or exactly "<*>")
    tokens.extend(
        [
            token if WILDCARD not in token else WILDCARD if is_variable(token) else token
            for token in _masked(" ".join(parts)).split()
        ]
    )
