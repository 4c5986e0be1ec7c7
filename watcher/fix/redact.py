"""Remove secrets from text before it leaves the process: prompts, commits, PRs, webhooks, logs.

A secret becomes `<secret:KIND:xxxx>`, xxxx being the first 4 hex digits of an HMAC of the value,
so one secret always gets the same placeholder (errors still group by it) and two secrets get
different ones. Rules are data (secret_rules.toml: gitleaks' rules plus ours); a rule runs only
when one of its keywords is in the text, found without a regex pass (see _KeywordIndex), so the
usual log line, with no secret and no keyword, costs a few microseconds.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re
import string
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from watcher.fix import secret_rules
from watcher.fix.secret_rules import Rule

PLACEHOLDER = re.compile(r"<secret:[a-z0-9-]+:[0-9a-f]{4}>")
# Texts longer than this, with newlines, are scanned line by line (see Redactor.findings).
_WHOLE_TEXT_MAX = 4096
# Redacting can expose a neighbour (a token glued to a secret now has a word boundary);
# passes repeat until nothing is found, bounded in case a rule misbehaves.
_MAX_PASSES = 4


@dataclass(frozen=True, slots=True)
class Finding:
    """A secret found in a text: its kind (rule id) and [start, end) span."""

    kind: str
    span: tuple[int, int]


def _word_view_table() -> bytes:
    """bytes.translate table: ASCII letters and digits kept (lower-cased), all else a space."""
    table = bytearray(b" " * 256)
    for char in string.ascii_lowercase + string.digits:
        table[ord(char)] = ord(char)
    for char in string.ascii_uppercase:
        table[ord(char)] = ord(char.lower())
    return bytes(table)


_WORD_VIEW = _word_view_table()
_HEAD2, _TAIL3 = itemgetter(slice(0, 2)), itemgetter(slice(-3, None))
# Keywords met inside a word rather than at its start (…8Q~ for Azure, …T3BlbkFJ… for OpenAI).
_INNER_KEYWORDS = frozenset({"q~", "t3blbkfj"})


class _KeywordIndex:
    """Which rules to run on a text: those with a keyword in it (gitleaks' prefilter).

    gitleaks looks for each keyword anywhere in the lower-cased text; a regex alternation of
    ~140 keywords costs Python's re ~70 ns per character, most of the budget for a log line.
    Here the text is cut into words (runs of letters and digits, by bytes.translate and split,
    both in C) and a keyword is a candidate when its first word's first 2 letters start a
    word of the text, or, for key=value rules, when it ends one (clientSecret=, PGPASSWORD=);
    each candidate is then confirmed with `in`. Keywords glued to a preceding letter or digit
    (xghp_…) are not seen, except the few listed in _INNER_KEYWORDS.
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        by_keyword: dict[str, set[int]] = {}
        heads: dict[bytes, set[str]] = {}
        tails: dict[bytes, set[str]] = {}
        floating: set[str] = set()
        for index, rule in enumerate(rules):
            for keyword in rule.keywords:
                by_keyword.setdefault(keyword, set()).add(index)
                words = keyword.encode("utf-8").translate(_WORD_VIEW).split()
                if keyword in _INNER_KEYWORDS or not words or len(words[0]) < 2:
                    floating.add(keyword)
                elif rule.key is not None:  # key=value: the key word ends the key
                    tails.setdefault(words[-1][-3:], set()).add(keyword)
                else:
                    heads.setdefault(words[0][:2], set()).add(keyword)
        self._rules_for = {k: frozenset(ids) for k, ids in by_keyword.items()}
        self._anywhere = _any_of(by_keyword)
        self._tables = [
            (part, {piece: tuple(sorted(ks)) for piece, ks in table.items()}, frozenset(table))
            for part, table in ((_HEAD2, heads), (_TAIL3, tails))
        ]
        self._floating = tuple(sorted(floating))
        self._always = frozenset(i for i, rule in enumerate(rules) if not rule.keywords)

    def __getstate__(self) -> dict[str, Any]:
        # an RE2 set cannot be pickled (nor deep-copied): made again from the keywords
        return {**self.__dict__, "_anywhere": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._anywhere = _any_of(self._rules_for)

    def candidates(self, text: str, lower: str) -> list[int]:
        """Indexes of the rules to run on text (lower: text.lower()), in rule order."""
        anywhere = self._anywhere
        if anywhere is not None and anywhere.Match(lower.encode("utf-8", "surrogatepass")) is None:
            # no keyword is anywhere in the text, and every keyword found below must be (its
            # `present` check): nothing is found, so the words need not be cut (~1 us against
            # ~6 us for a 100-character line; 70-85 % of log lines hold no keyword)
            return sorted(self._always)
        words = text.encode("utf-8", "surrogatepass").translate(_WORD_VIEW).split()
        present = lower.__contains__
        found = list(filter(present, self._floating))
        for part, table, pieces in self._tables:
            for piece in pieces.intersection(map(part, words)):
                found.extend(filter(present, table[piece]))
        if not found:
            return sorted(self._always)
        return sorted(self._always.union(*(self._rules_for[k] for k in found)))


def _any_of(keywords: Iterable[str]) -> Any:
    """An RE2 set of every keyword, matched over the UTF-8 bytes of a lower-cased text: it
    matches wherever, and only wherever, `keyword in lower` holds for one of them (UTF-8 keeps
    substrings: a keyword's bytes cannot start or end inside another character's). RE2 runs
    the ~180 literals in one pass (Python's re tries them one by one: ~26 us a line), and a
    set's Match is a thin call (~0.7 us a line, half of a compiled alternation's search);
    Latin-1 mode makes every byte a character, so lone surrogates (surrogatepass) match as
    bytes too. None when there is no keyword, or RE2 refuses one: candidates() then cuts words.
    """
    literals = sorted({k.encode("utf-8", "surrogatepass") for k in keywords})
    if not literals:
        return None
    import re2

    options = re2.Options()
    options.log_errors = False
    options.encoding = re2.Options.Encoding.LATIN1
    found = re2.Set.SearchSet(options)
    try:
        for literal in literals:
            found.Add(re2.escape(literal))
        found.Compile()
    except re2.error:
        return None
    return found


@functools.cache
def _default_rules() -> tuple[tuple[Rule, ...], tuple[re.Pattern[str], ...]]:
    return secret_rules.load_default()


class Redactor:
    """Finds and replaces secrets; thread-safe, holds no state but its rules and HMAC key."""

    def __init__(
        self,
        *,
        extra_patterns: Sequence[str] = (),
        key: bytes | None = None,
        redact_emails: bool = True,
    ) -> None:
        rules, self._allow = _default_rules()
        kept = [rule for rule in rules if redact_emails or rule.id != "email"]
        self._rules = (*kept, *secret_rules.user_rules(extra_patterns))
        self._index = _KeywordIndex(self._rules)
        # A per-process key unless configured: placeholders then change across restarts.
        self._key = key if key is not None else os.urandom(32)
        self._key_rules = [(rule, rule.key) for rule in self._rules if rule.key is not None]
        self._multiline = frozenset(i for i, rule in enumerate(self._rules) if rule.multiline)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules in priority order (gitleaks', ours, then the user's)."""
        return self._rules

    def placeholder(self, kind: str, value: str) -> str:
        """The stable placeholder for value: same value and key, same placeholder."""
        digest = hmac.new(self._key, value.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return f"<secret:{kind}:{digest.hexdigest()[:4]}>"

    def findings(self, text: str) -> list[Finding]:
        """Every secret in text, overlapping hits merged (the earlier rule names the kind)."""
        lower = text.lower()
        if len(text) <= _WHOLE_TEXT_MAX or "\n" not in text:
            return _merge(
                self._hits(text, lower, 0, self._index.candidates(text, lower)), self._rules
            )
        # A long text (a prompt, a PR body) is scanned line by line, so a rule whose keyword
        # is somewhere in it does not run over all of it; rules that span lines run on the whole.
        hits = self._hits(text, lower, 0, [i for i in self._multiline if self._present(i, lower)])
        offset = 0
        for line in text.split("\n"):
            line_lower = line.lower()
            wanted = self._index.candidates(line, line_lower)
            hits += self._hits(
                line, line_lower, offset, [i for i in wanted if i not in self._multiline]
            )
            offset += len(line) + 1
        return _merge(hits, self._rules)

    def _present(self, order: int, lower: str) -> bool:
        keywords = self._rules[order].keywords
        return not keywords or any(k in lower for k in keywords)

    def _hits(
        self, text: str, lower: str, offset: int, candidates: Sequence[int]
    ) -> list[tuple[int, int, int]]:
        """(start, end, rule order) of each accepted match of the candidate rules in text."""
        if not candidates:
            return []
        protected = [m.span() for m in PLACEHOLDER.finditer(text)] if "<secret:" in text else []
        hits: list[tuple[int, int, int]] = []
        for order in candidates:
            rule = self._rules[order]
            if rule.gate is not None and not rule.gate.search(lower):
                continue
            for match in rule.regex.finditer(text):
                start, end = rule.secret_span(match)
                if self._accepts(rule, text, start, end) and not _overlaps(start, end, protected):
                    hits.append((start + offset, end + offset, order))
        return hits

    def redact(self, text: str) -> str:
        """text with every secret replaced by its placeholder."""
        for _ in range(_MAX_PASSES):
            found = self.findings(text)
            if not found:
                break
            text = self._replace(text, found)
        return text

    def redact_obj(self, obj: Any) -> Any:
        """A copy of a JSON-like value (dict, list, tuple, str) with every string redacted.

        A str value under a key that names a secret ({"password": "hunter22"}) is replaced
        whole, since the key=value context the text rules look for is in the structure.
        """
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, Mapping):
            return {self.redact_obj(k): self._redact_item(k, v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.redact_obj(item) for item in obj]
        if isinstance(obj, tuple):
            return tuple(self.redact_obj(item) for item in obj)
        return obj

    def _redact_item(self, key: Any, value: Any) -> Any:
        if isinstance(key, str) and isinstance(value, str) and not PLACEHOLDER.search(value):
            for rule, names in self._key_rules:
                if names.search(key) and self._accepts(rule, value, 0, len(value)):
                    return self.placeholder(rule.id, value)
        return self.redact_obj(value)

    def _accepts(self, rule: Rule, text: str, start: int, end: int) -> bool:
        value = text[start:end]
        if not value or (rule.entropy and secret_rules.shannon_entropy(value) <= rule.entropy):
            return False
        if any(a.search(value) for a in rule.allow) or any(a.search(value) for a in self._allow):
            return False
        return rule.check is None or rule.check(value, text, start)

    def _replace(self, text: str, found: Sequence[Finding]) -> str:
        parts: list[str] = []
        cursor = 0
        for finding in found:
            start, end = finding.span
            parts += (text[cursor:start], self.placeholder(finding.kind, text[start:end]))
            cursor = end
        parts.append(text[cursor:])
        return "".join(parts)


def _overlaps(start: int, end: int, spans: Sequence[tuple[int, int]]) -> bool:
    return any(start < s_end and s_start < end for s_start, s_end in spans)


def _merge(hits: list[tuple[int, int, int]], rules: Sequence[Rule]) -> list[Finding]:
    """Union overlapping spans, so a secret two rules see in part is redacted whole."""
    merged: list[list[int]] = []
    for start, end, order in sorted(hits):
        if merged and start < merged[-1][1]:
            last = merged[-1]
            last[1], last[2] = max(last[1], end), min(last[2], order)
        else:
            merged.append([start, end, order])
    return [Finding(rules[order].id, (start, end)) for start, end, order in merged]


@functools.cache
def default_redactor() -> Redactor:
    """The process-wide redactor: default rules, per-process key, emails redacted."""
    return Redactor()


EventDict = MutableMapping[str, Any]


def structlog_processor(redactor: Redactor) -> Callable[[Any, str, EventDict], EventDict]:
    """A structlog processor redacting every string in the event dict, nested ones included.

    Put it after format_exc_info (so tracebacks are strings by then) and before the renderer.
    """

    def processor(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
        redacted: EventDict = redactor.redact_obj(event_dict)
        return redacted

    return processor
