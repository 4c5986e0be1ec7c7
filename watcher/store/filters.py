"""What `Store.list_groups`' filters and orders become in SQL: a WHERE clause and an ORDER BY."""

from __future__ import annotations

from typing import Any

from watcher.model import SEVERITY_RANK

# list_groups' `order` -> ORDER BY; the groups_by_* indexes of the schema match these keys.
ORDERS = {
    "count": "count DESC, last_seen DESC, id",
    "last_seen": "last_seen DESC, count DESC, id",
}


def _severities_at_least(min_severity: str) -> list[str]:
    if min_severity not in SEVERITY_RANK:
        raise ValueError(
            f"unknown severity {min_severity!r}; expected one of {list(SEVERITY_RANK)}"
        )
    floor = SEVERITY_RANK[min_severity]
    return [name for name, rank in SEVERITY_RANK.items() if rank >= floor]


def group_filters(
    since: float | None,
    min_severity: str | None,
    category: str | None,
    fixable: bool | None,
    state: str | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE clause (empty when no filter is given) and its parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    if state is not None:
        clauses.append("state = ?")
        params.append(state)
    if since is not None:
        clauses.append("last_seen >= ?")
        params.append(since)
    if min_severity is not None:
        allowed = _severities_at_least(min_severity)
        clauses.append(f"severity IN ({', '.join('?' * len(allowed))})")
        params.extend(allowed)
    if category is not None:
        clauses.append("category = ?")
        params.append(category)
    if fixable is not None:
        clauses.append("fixable = ?")
        params.append(int(fixable))
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return where, params
