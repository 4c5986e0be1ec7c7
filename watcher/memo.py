"""Bounded memos: a dict of what a key (a line, a path, a stack) computed to, cleared when full,
with keys longer than a limit never kept, so hostile input cannot grow one."""

from __future__ import annotations

from typing import TypeVar

_T = TypeVar("_T")


def remember(memo: dict[str, _T], key: str, value: _T, cap: int, longest: int) -> None:
    """Keep `value` for `key` unless the key is over `longest` characters; a memo holding `cap`
    keys is cleared first. Callers look up inline (`memo.get`), so a hit costs no call."""
    if len(key) <= longest:
        if len(memo) >= cap:
            memo.clear()
        memo[key] = value
