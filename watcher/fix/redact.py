"""Remove secrets from text before it leaves the process: prompts, commits, PRs, webhooks, logs.

A secret becomes `<secret:KIND:xxxx>`, xxxx being the first 4 hex digits of an HMAC of the value,
so one secret always gets the same placeholder (errors still group by it) and two secrets get
different ones. Rules are data (secret_rules.toml: gitleaks' rules plus ours); a rule runs only
when one of its keywords is in the text, so a line without any costs one regex pass.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from watcher.fix import secret_rules
from watcher.fix.secret_rules import Rule

PLACEHOLDER = re.compile(r"<secret:[a-z0-9-]+:[0-9a-f]{4}>")
# Redacting can expose a neighbour (a token glued to a secret now has a word boundary);
# passes repeat until nothing is found, bounded in case a rule misbehaves.
_MAX_PASSES = 4


@dataclass(frozen=True, slots=True)
class Finding:
    """A secret found in a text: its kind (rule id) and [start, end) span."""

    kind: str
    span: tuple[int, int]


class _KeywordIndex:
    """Which rules can match a text, from one regex pass over it for all rules' keywords."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        by_keyword: dict[str, set[int]] = {}
        for index, rule in enumerate(rules):
            for keyword in rule.keywords:
                by_keyword.setdefault(keyword, set()).add(index)
        # The trie regex reports the longest keyword at each position; a shorter one that is
        # its prefix (sk- inside sk-ant-) sits at the same position, so it inherits its rules.
        self._rules_for = {
            keyword: frozenset().union(
                *(ids for other, ids in by_keyword.items() if keyword.startswith(other))
            )
            for keyword in by_keyword
        }
        self._always = frozenset(i for i, rule in enumerate(rules) if not rule.keywords)
        # A lookahead finds keywords at every position, overlapping ones included.
        self._pattern = re.compile(f"(?=({_trie(by_keyword)}))") if by_keyword else None

    def candidates(self, text: str) -> list[int]:
        """Indexes of the rules to run on text, in rule order."""
        found = set(self._pattern.findall(text.lower())) if self._pattern else set()
        if not found:
            return sorted(self._always)
        return sorted(self._always.union(*(self._rules_for[k] for k in found)))


def _trie(words: Iterable[str]) -> str:
    """A regex alternation shaped as a trie: Python's re tries branches one by one."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        branches = [re.escape(char) + emit(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        group = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        if "" not in node:
            return group
        return f"(?:{group})?" if len(branches) == 1 else f"{group}?"

    return emit(root)


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
        self._key_rules = [rule for rule in self._rules if rule.key is not None]

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
        candidates = self._index.candidates(text)
        if not candidates:
            return []
        protected = [m.span() for m in PLACEHOLDER.finditer(text)] if "<secret:" in text else []
        hits: list[tuple[int, int, int]] = []
        for order in candidates:
            rule = self._rules[order]
            for match in rule.regex.finditer(text):
                start, end = rule.secret_span(match)
                if self._accepts(rule, text, start, end) and not _overlaps(start, end, protected):
                    hits.append((start, end, order))
        return _merge(hits, self._rules)

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
            for rule in self._key_rules:
                assert rule.key is not None
                if rule.key.search(key) and self._accepts(rule, value, 0, len(value)):
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
