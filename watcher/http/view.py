"""What the JSON API reads and asks for: the `WatcherView` seam, and an in-memory one for tests.

The daemon implements the real view over its live groups and the store. The routes only ever
talk to this protocol, so they can be tested without an engine, a store or a network.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from watcher.group import lifecycle
from watcher.group.lifecycle import LifecycleError
from watcher.model import Activity, ErrorGroup, Fix


class WatcherView(Protocol):
    """The daemon's state as the HTTP API sees it.

    Read methods are synchronous and called on the event loop, so they must not block (no
    sqlite3 or network I/O without a cache). The async methods may take their time.
    """

    monitoring_enabled: bool

    async def current(self) -> None:
        """Bring what the read methods answer from up to date, if it is older than the view
        allows. Awaited before each API request (after its access check), so a view may read
        its store on demand rather than on a clock."""
        ...

    def groups(self, *, since: float | None = None) -> list[ErrorGroup]:
        """Live groups (window_counts/trend filled) merged with stored ones; `since` filters on
        last_seen (epoch seconds)."""
        ...

    def group(self, group_id: str) -> ErrorGroup | None:
        """One group with its samples, or None."""
        ...

    def fixes(self, *, group_id: str | None = None) -> list[Fix]:
        """Fixes, newest first; only those of `group_id` when given."""
        ...

    def fix(self, fix_id: str) -> Fix | None:
        """One fix, or None."""
        ...

    def sources(self) -> dict[str, dict[str, Any]]:
        """name -> {"up": bool, "lines": int, "error": str | None, "lag_seconds": float | None}."""
        ...

    def error_rate(self, *, bucket_seconds: int, buckets: int) -> dict[str, list[int]]:
        """Per category, error events per time bucket, oldest first, ending now."""
        ...

    def activity(self, *, group_id: str | None = None, limit: int = 100) -> list[Activity]:
        """Lifecycle changes (who, what, when), newest first; only one group's when given."""
        ...

    async def change(self, group_id: str, action: str, actor: str, **params: Any) -> ErrorGroup:
        """Apply one lifecycle action: resolve | ignore (more=N, until=epoch) | reopen |
        merge (others=[ids]) | split (fingerprint=fp). The group after the change.

        Raises KeyError for an unknown group and LifecycleError for a change that cannot be
        made (bad parameters, a fingerprint the group does not own).
        """
        ...

    async def generate_fix(self, group_id: str, *, create_pr: bool) -> Fix:
        """Queue or run the fix pipeline for one group.

        Raises KeyError for an unknown group and PermissionError (with a message for the user)
        when auto-fix is disabled or the budget is spent.
        """
        ...

    async def start_monitor(self, *, interval: float | None) -> dict[str, Any]:
        """Turn on continuous monitoring; returns {"status": ..., "interval_seconds": ...}."""
        ...

    async def scan(self, *, hours: float, auto_fix: bool) -> dict[str, Any]:
        """A one-off scan; returns at least {"errors_found": int, "critical_errors": int} and
        {"auto_fixes_started": int} when auto_fix started any."""
        ...


def healthy_source(lines: int = 0) -> dict[str, Any]:
    """The status dict of a source that is up and current."""
    return {"up": True, "lines": lines, "error": None, "lag_seconds": 0.0}


@dataclass
class InMemoryView:
    """A `WatcherView` over plain lists: what the API tests and the dashboard test seed.

    `refuse_fixes` makes generate_fix raise PermissionError with that message, as a daemon with
    auto-fix disabled or no budget left would.
    """

    group_list: list[ErrorGroup] = field(default_factory=list)
    fix_list: list[Fix] = field(default_factory=list)
    source_status: dict[str, dict[str, Any]] = field(default_factory=dict)
    rates: dict[str, list[int]] = field(default_factory=dict)
    monitoring_enabled: bool = False
    refuse_fixes: str | None = None
    monitor_interval: float = 60.0
    clock: Callable[[], float] = time.time
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    activity_list: list[Activity] = field(default_factory=list)
    # fingerprint -> the group that owns it, where that is another group (merged in)
    fingerprint_map: dict[str, str] = field(default_factory=dict)
    _ids: itertools.count[int] = field(
        default_factory=lambda: itertools.count(1), init=False, repr=False
    )

    async def current(self) -> None:
        return None  # plain lists: always current

    def groups(self, *, since: float | None = None) -> list[ErrorGroup]:
        return [g for g in self.group_list if since is None or g.last_seen >= since]

    def group(self, group_id: str) -> ErrorGroup | None:
        return next((g for g in self.group_list if g.id == group_id), None)

    def fixes(self, *, group_id: str | None = None) -> list[Fix]:
        chosen = [f for f in self.fix_list if group_id is None or f.group_id == group_id]
        return sorted(chosen, key=lambda f: (-f.created, f.id))

    def fix(self, fix_id: str) -> Fix | None:
        return next((f for f in self.fix_list if f.id == fix_id), None)

    def sources(self) -> dict[str, dict[str, Any]]:
        return {name: dict(status) for name, status in self.source_status.items()}

    def error_rate(self, *, bucket_seconds: int, buckets: int) -> dict[str, list[int]]:
        # Seeded series are cut or left-padded to the asked length, newest bucket last.
        return {cat: ([0] * buckets + list(s))[-buckets:] for cat, s in self.rates.items()}

    def activity(self, *, group_id: str | None = None, limit: int = 100) -> list[Activity]:
        chosen = [a for a in self.activity_list if group_id is None or a.group_id == group_id]
        return sorted(chosen, key=lambda a: -a.at)[:limit]

    async def change(self, group_id: str, action: str, actor: str, **params: Any) -> ErrorGroup:
        self.calls.append((action, {"group_id": group_id, "actor": actor, **params}))
        group = self.group(group_id)
        if group is None:
            raise KeyError(group_id)
        now = self.clock()
        if action == "merge":
            entries = [self._merge(group, other, actor, now) for other in params["others"]]
        elif action == "split":
            entries = [self._split(group, params["fingerprint"], actor, now)]
        else:
            entries = [lifecycle.change(group, action, actor, now, **params)]
        self.activity_list.extend(entries)
        return group

    def _merge(self, into: ErrorGroup, other_id: str, actor: str, now: float) -> Activity:
        other = self.group(other_id)
        if other is None:
            raise KeyError(other_id)
        if other is into:
            raise LifecycleError(f"{other_id} is already part of {into.id}")
        lifecycle.fold(into, other)
        self.group_list.remove(other)
        self.fingerprint_map[other.id] = into.id
        return lifecycle.merged_entry(into, other, actor, now, [other.id])

    def _split(self, group: ErrorGroup, fingerprint: str, actor: str, now: float) -> Activity:
        if self.fingerprint_map.get(fingerprint) != group.id:
            raise LifecycleError(f"{group.id} does not own the fingerprint {fingerprint}")
        del self.fingerprint_map[fingerprint]
        detail = {"fingerprint": fingerprint}
        return Activity(group.id, "split", actor, now, group.state, group.state, detail)

    async def generate_fix(self, group_id: str, *, create_pr: bool) -> Fix:
        self.calls.append(("generate_fix", {"group_id": group_id, "create_pr": create_pr}))
        if self.group(group_id) is None:
            raise KeyError(group_id)
        if self.refuse_fixes is not None:
            raise PermissionError(self.refuse_fixes)
        fix = Fix(f"fix-{next(self._ids)}", group_id, status="pending", created=self.clock())
        self.fix_list.append(fix)
        return fix

    async def start_monitor(self, *, interval: float | None) -> dict[str, Any]:
        self.calls.append(("start_monitor", {"interval": interval}))
        self.monitoring_enabled = True
        if interval is not None:
            self.monitor_interval = interval
        return {"status": "started", "interval_seconds": self.monitor_interval}

    async def scan(self, *, hours: float, auto_fix: bool) -> dict[str, Any]:
        self.calls.append(("scan", {"hours": hours, "auto_fix": auto_fix}))
        found = self.groups(since=self.clock() - hours * 3600)
        result: dict[str, Any] = {
            "errors_found": len(found),
            "critical_errors": sum(1 for g in found if g.severity == "critical"),
        }
        if auto_fix:
            result["auto_fixes_started"] = sum(1 for g in found if g.fixable)
        return result

