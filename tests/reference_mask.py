"""The masking algorithm as it was before issue 15 (commit 02d1272), kept as the reference that
the faster `watcher.group.mask` must equal on every input (tests/test_mask_equivalence.py). The
kinds and the part classifier are imported from it: what is checked is the algorithm that applies
them (the whole alternation over each region, two fullmatches per part), not the kinds.

Variable masking: replace the values a logging statement interpolates with `<*>`.

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

from watcher.group.mask import _KINDS, _PART_RE, CONSTANT_CHARS, CONSTANTS_LIMIT, WILDCARD

_MASK_RE = re.compile("|".join(f"(?:{kind})" for kind in _KINDS))

# Parts proven constant, so that a line of known words costs one dict look-up per word. Only
# constants are kept (a vocabulary, not values), and the dict is cleared when full.
_constants: dict[str, str] = {}


def _constant(part: str) -> str | None:
    """`part` itself if it is a CONSTANT part (see above), else None."""
    known = _constants.get(part)
    if known is None:
        match = _PART_RE.fullmatch(part)
        if match is None or match.lastgroup != "constant":
            return None
        if len(part) > CONSTANT_CHARS:
            return part
        if len(_constants) >= CONSTANTS_LIMIT:
            _constants.clear()
        _constants[part] = known = part
    return known


def _simple(part: str) -> re.Match[str] | None:
    match = _PART_RE.fullmatch(part)
    return match if match is not None and match.lastgroup != "constant" else None


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
        match = _simple(part)
        if match is None:  # one part that is not SIMPLE: the whole run takes the regex
            return _MASK_RE.sub(WILDCARD, " ".join(parts))
        masked.append(WILDCARD + match["punct"])
    return " ".join(masked)


def mask(message: str) -> str:
    """Return `message` with every variable value replaced by `<*>`."""
    parts = message.split(" ")
    for start, end in reversed(_regions(parts)):
        parts[start:end] = [_mask_region(parts[start:end])]
    return " ".join(parts)


def is_variable(token: str) -> bool:
    """True for a masked token that is only variables and punctuation ("<*>:<*>", "(<*>),")."""
    # the punctuation is formatting of the value, which differs between values of one field
    return WILDCARD in token and not any(ch.isalnum() for ch in token.replace(WILDCARD, ""))


def mask_tokens(message: str) -> list[str]:
    """The whitespace tokens of `mask(message)`, each variable-only token made `<*>`."""
    tokens: list[str] = []
    parts = message.split(" ")
    start = -1  # first part of the current run of non-constant parts
    for i, part in enumerate(parts):
        token = _constants.get(part) or _constant(part)
        if token is None:
            if start < 0:
                start = i
            continue
        if start >= 0:
            _region_tokens(parts[start:i], tokens)
            start = -1
        # a constant punctuation run may hold a literal "<*>"
        tokens.append(WILDCARD if WILDCARD in token else token)
    if start >= 0:
        _region_tokens(parts[start:], tokens)
    return tokens


def _region_tokens(parts: list[str], tokens: list[str]) -> None:
    if all(_simple(part) for part in parts):
        tokens.extend([WILDCARD] * len(parts))
        return
    for token in _MASK_RE.sub(WILDCARD, " ".join(parts)).split():
        tokens.append(WILDCARD if is_variable(token) else token)
