"""Secret rules as data: load secret_rules.toml (gitleaks' rules plus ours) into compiled Rules.

gitleaks writes its rules for Go's RE2; `go_to_python` converts the two constructs Python's `re`
reads differently (a `(?i)` in mid-pattern, `\\z`). Value checks that a regex cannot express
(is this really a password, does this base64 decode to user:pass) are named in the data and
live here in CHECKS.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

# A check sees the secret and where it sits, and says whether it is one.
Check = Callable[[str, str, int], bool]

_FLAGS = re.ASCII  # RE2's \w, \b, \s and (?i) are ASCII-only; keep the same meaning here.
_GLOBAL_FLAGS = re.compile(r"\(\?([a-zA-Z]+)\)")
# gitleaks ends most tokens with this group: a quote, space, ";", an escaped newline or the end.
# Log text follows tokens with ")", ",", "&", "." just as often, so any character that cannot
# continue a token ends it here (and is not consumed).
_GITLEAKS_TOKEN_END = r"""(?:[\x60'"\s;]|\\[nr]|$)"""
_TOKEN_END = r"(?![A-Za-z0-9_+/=-])"
# What follows a key name before its value, in every key=value rule (a superset of theirs).
_KEY_SEPARATOR = r"""\\?["']?\s*[:=]"""
# A key word starts a word: after a non-alphanumeric, at a camelCase hump (dbPassword) or
# inside an upper-case run (PGPASSWORD; BYPASS=… then needs a password-like value as well).
_KEY_BOUNDARY = r"(?:(?<![A-Za-z0-9])|(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z]))"


@dataclass(frozen=True)
class Rule:
    """One compiled secret rule."""

    id: str
    regex: re.Pattern[str]
    keywords: tuple[str, ...] = ()  # lower-case; the rule runs only if one is in the text
    source: str = "watcher"  # "gitleaks" or "watcher"
    entropy: float = 0.0  # gitleaks: a secret at or below this Shannon entropy is skipped
    allow: tuple[re.Pattern[str], ...] = ()
    whole_match: bool = False  # redact the match, not the first non-empty group
    check: Check | None = None
    check_name: str = field(default="", compare=False)
    key: re.Pattern[str] | None = None  # dict keys whose str value is this kind of secret
    gate: re.Pattern[str] | None = None  # must match the lower-cased text for the rule to run
    multiline: bool = False  # may match across lines: runs on a long text whole, not per line

    def secret_span(self, match: re.Match[str]) -> tuple[int, int]:
        """The span to redact: gitleaks' convention, the first non-empty group, else the match."""
        if not self.whole_match:
            for index in range(1, (match.re.groups or 0) + 1):
                start, end = match.span(index)
                if end > start:
                    return start, end
        return match.span()


def go_to_python(pattern: str) -> str:
    """Rewrite RE2-only syntax for Python's `re` (mid-pattern global flags, `\\z`)."""
    out: list[str] = []
    closers: list[int] = [0]  # per open group: extra ")" owed to a scoped flag group
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            escaped = pattern[i : i + 2]
            out.append("\\Z" if escaped == "\\z" and not in_class else escaped)
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            start, i = i, i + 1
            i += pattern[i : i + 1] == "^"
            i += pattern[i : i + 1] == "]"  # a leading "]" is a literal
            out.append(pattern[start:i])
            in_class = True
            continue
        elif char == "(":
            flags = _GLOBAL_FLAGS.match(pattern, i)
            if flags and i > 0:
                out.append(f"(?{flags.group(1)}:")
                closers[-1] += 1
                i = flags.end()
                continue
            closers.append(0)
        elif char == ")" and len(closers) > 1:  # an unbalanced ")" is left to re.compile
            out.append(")" * closers.pop())
        elif char == "|" and closers[-1]:
            raise ValueError(f"cannot scope a mid-pattern flag across '|': {pattern!r}")
        out.append(char)
        i += 1
    out.append(")" * closers[-1])
    return "".join(out)


def compile_go(pattern: str) -> re.Pattern[str]:
    """Compile a gitleaks (RE2) pattern with Python's `re`."""
    return re.compile(go_to_python(pattern), _FLAGS)


def shannon_entropy(text: str) -> float:
    """Bits per character, as gitleaks computes it."""
    if not text:
        return 0.0
    counts = Counter(text).values()
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in counts)


# ---- value checks -------------------------------------------------------------------------

_IDENTIFIER = re.compile(r"[a-z]+(?:[_.-][a-z]+)*", re.ASCII)  # required, not_set, from-env
_PATH = re.compile(r"/[\w./-]*", re.ASCII)  # /app/src, /var/run/x.sock
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?", re.ASCII)
_MASKED = re.compile(
    r"[\[<(]?(?:redacted|hidden|masked|filtered|removed|none|null|nil|undefined|empty|"
    r"true|false|yes|no|on|off|\*+|x+|\.+)[\]>)]?",
    re.ASCII | re.IGNORECASE,
)
_PLACEHOLDER_SHAPE = re.compile(r"<secret:[a-z0-9-]+:[0-9a-f]{4}>")
# Format templates: {token}, {self.token}, ${TOKEN}, %(token)s, %s.
_TEMPLATE = re.compile(r"\$?\{[^{}]*\}|%\(\w+\)s|%s", re.ASCII)
# Source code in a patch: attribute access (settings.API_KEY, os.environ) and bare names.
_DOTTED_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+", re.ASCII)
_LETTERS_NAME = re.compile(r"[A-Za-z_]{1,24}", re.ASCII)  # SecretStr, Optional, API_KEY
# Text just before a value inside a URL's userinfo (scheme://user:…@ or scheme://…@): the
# url-password rule owns that part, and the host after "@" must stay readable.
_URL_USERINFO_BEFORE = re.compile(r"://[^\s/@]*$")
# systemd unit suffixes: getty@tty1.service is a unit instance, not an address.
_SYSTEMD_UNITS = frozenset(
    ("service", "socket", "timer", "target", "mount", "path", "slice", "scope", "device", "swap")
)


def _ordinary(value: str) -> bool:
    """True for values no rule should call a secret: masks, booleans, placeholders, templates."""
    return bool(
        _MASKED.fullmatch(value) or _PLACEHOLDER_SHAPE.search(value) or _TEMPLATE.fullmatch(value)
    )


def _code(value: str, text: str, start: int) -> bool:
    """Source code, as the patch guard scans it: a dotted name (settings.API_KEY), or a name
    called or subscripted (os.getenv(…), Optional[str])."""
    after = text[start + len(value) : start + len(value) + 1]
    return bool(_DOTTED_NAME.fullmatch(value)) or after in ("(", "[")


def _in_url_userinfo(text: str, start: int) -> bool:
    return bool(_URL_USERINFO_BEFORE.search(text, max(0, start - 256), start))


def secret_value(value: str, text: str = "", start: int = 0) -> bool:
    """A value behind a key naming a secret: ≥ 8 chars, not a number, word, path or URL."""
    if len(value) < 8 or _ordinary(value) or _NUMBER.fullmatch(value):
        return False
    if _code(value, text, start):
        return False
    if _in_url_userinfo(text, start):  # https://x-access-token:…@host is the URL's business
        return False
    if _IDENTIFIER.fullmatch(value) or _LETTERS_NAME.fullmatch(value):  # tokens have digits
        return False
    return not ("://" in value or _PATH.fullmatch(value))


def password(value: str, text: str = "", start: int = 0) -> bool:
    """A password value: ≥ 4 chars; short lower-case words ("incorrect") are messages."""
    if len(value) < 4 or _ordinary(value) or _PATH.fullmatch(value):  # PWD=/app is a path
        return False
    if _code(value, text, start):
        return False
    if _in_url_userinfo(text, start):
        return False
    return not (len(value) < 16 and _IDENTIFIER.fullmatch(value))


def url_password(value: str, _text: str = "", _start: int = 0) -> bool:
    """The password slot of a URL is a password unless masked or templated."""
    return not _ordinary(value)


def basic_credential(value: str, _text: str = "", _start: int = 0) -> bool:
    """`Basic xxx` is a credential when xxx is base64 of `user:password`."""
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded and sum(32 <= b < 127 for b in decoded) >= 0.9 * len(decoded)


def opaque_token(value: str, _text: str = "", _start: int = 0) -> bool:
    """A bare token after "bearer" in prose: ≥ 16 chars with letters and digits."""
    return (
        len(value) >= 16
        and secret_value(value)
        and any(c.isdigit() for c in value)
        and any(c.isalpha() for c in value)
    )


def mixed_case_digits(value: str, _text: str = "", _start: int = 0) -> bool:
    """Random API keys mix upper, lower and digits; kebab-case names (sk-pod-name-x) do not."""
    return (
        any(c.isupper() for c in value)
        and any(c.islower() for c in value)
        and any(c.isdigit() for c in value)
    )


def email(value: str, text: str = "", start: int = 0) -> bool:
    """An address, not git@host (an SSH remote), getty@tty1.service or a URL's user@host."""
    local, _, domain = value.partition("@")
    if local == "git" or domain.rsplit(".", 1)[-1].lower() in _SYSTEMD_UNITS:
        return False
    return not _in_url_userinfo(text, start)


CHECKS: Mapping[str, Check] = {
    "secret-value": secret_value,
    "password": password,
    "url-password": url_password,
    "basic-credential": basic_credential,
    "mixed-case-digits": mixed_case_digits,
    "opaque-token": opaque_token,
    "email": email,
}


# ---- loading ------------------------------------------------------------------------------


def _rule(entry: Mapping[str, Any], source: str) -> Rule:
    check_name = entry.get("check", "")
    key = entry.get("key")
    regex = entry["regex"].replace(_GITLEAKS_TOKEN_END, _TOKEN_END)
    if key:
        regex = regex.replace("{key}", f"{_KEY_BOUNDARY}(?i:{key})")
    allow = tuple(
        compile_go(regex) for block in entry.get("allowlists", ()) for regex in block["regexes"]
    )
    return Rule(
        id=entry["id"],
        regex=compile_go(regex),
        keywords=tuple(k.lower() for k in entry.get("keywords", ())),
        source=source,
        entropy=float(entry.get("entropy", 0.0)),
        allow=allow,
        whole_match=entry.get("span") == "match",
        multiline=bool(entry.get("multiline", False)),
        check=CHECKS[check_name] if check_name else None,
        check_name=check_name,
        key=compile_go(f"{_KEY_BOUNDARY}(?i:{key})$") if key else None,
        gate=re.compile(f"(?:{key}){_KEY_SEPARATOR}", _FLAGS) if key else None,
    )


def load(data: Mapping[str, Any]) -> tuple[tuple[Rule, ...], tuple[re.Pattern[str], ...]]:
    """Rules in file order (gitleaks first, then ours) and the global allowlist."""
    rules = [_rule(entry, "gitleaks") for entry in data.get("gitleaks", ())]
    rules += [_rule(entry, "watcher") for entry in data.get("watcher", ())]
    allow = tuple(compile_go(regex) for regex in data.get("allowlist", {}).get("regexes", ()))
    return tuple(rules), allow


def load_default() -> tuple[tuple[Rule, ...], tuple[re.Pattern[str], ...]]:
    """The rules shipped with watcher (watcher/fix/secret_rules.toml)."""
    text = resources.files("watcher.fix").joinpath("secret_rules.toml").read_text("utf-8")
    return load(tomllib.loads(text))


def user_rules(patterns: Iterable[str]) -> tuple[Rule, ...]:
    """Rules from config regexes (Python syntax): group 1 if the pattern has one, else the match."""
    return tuple(Rule(id="custom", regex=re.compile(p), multiline=True) for p in patterns)
