"""Acting on patterns by hand: resolve, ignore, reopen, merge, split — for the API and the CLI.

One `PatternActions` serves both: in the daemon it is given the live group table and the engine
(a live group changes in memory, its record is committed with the next persist, brought forward
to now); the CLI, with no daemon running, gives it only the store. Every change is an `Activity`
announced on the table's `Lifecycle` (the one event alerts and log lines subscribe to).
Store calls run in a worker thread: nothing here blocks the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from watcher.group import lifecycle
from watcher.group.lifecycle import LifecycleError
from watcher.group.table import GroupTable
from watcher.model import Activity, ErrorGroup
from watcher.store import StateStore


class PatternActions:
    """resolve / ignore / reopen / merge / split one pattern, recorded with who and when."""

    def __init__(
        self,
        store: StateStore,
        *,
        table: GroupTable | None = None,
        engine: Any = None,
        life: lifecycle.Lifecycle | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.table = table
        self.engine = engine
        self.life = life or (table.life if table is not None else lifecycle.Lifecycle())
        self.clock = clock

    async def find(self, group_id: str) -> ErrorGroup:
        """The group by id or by a fingerprint it owns, live first; KeyError when unknown."""
        if self.table is not None:
            found = self.table.find(group_id)
            if found is not None:
                return found
        held = self.engine.held(group_id) if self.engine is not None else None
        if held is not None:
            return held
        stored = await asyncio.to_thread(self.store.get_group, group_id)
        if stored is None:
            owner = await asyncio.to_thread(self._owner, group_id)
            stored = await asyncio.to_thread(self.store.get_group, owner) if owner else None
        if stored is None:
            raise KeyError(group_id)
        return stored

    def _owner(self, fingerprint: str) -> str | None:
        rows = [r for r in self.store.fingerprints() if r[0] == fingerprint]
        return rows[0][1] if rows else None

    async def apply(self, group_id: str, action: str, actor: str, **params: Any) -> ErrorGroup:
        """One action by name: resolve | ignore (more=N, until=epoch) | reopen |
        merge (others=[ids]) | split (fingerprint=fp); see WatcherView.change."""
        if action == "merge":
            return await self.merge(group_id, list(params["others"]), actor)
        if action == "split":
            return await self.split(group_id, params["fingerprint"], actor)
        group = await self.find(group_id)
        await self._save(group, lifecycle.change(group, action, actor, self.clock(), **params))
        return group

    async def merge(self, group_id: str, others: list[str], actor: str) -> ErrorGroup:
        """Fold `others` into the group: their counts, samples and fingerprints (later events
        with those fingerprints count here)."""
        into = await self.find(group_id)
        for other_id in others:
            other = await self.find(other_id)
            if other.id == into.id:
                raise LifecycleError(f"{other_id} is already part of {into.id}")
            await self._merge_one(into, other, actor)
        return into

    async def _merge_one(self, into: ErrorGroup, other: ErrorGroup, actor: str) -> None:
        rows = await asyncio.to_thread(self.store.fingerprints, other.id)
        fingerprints = sorted({other.id, *(fp for fp, _, _ in rows)})
        entry = lifecycle.merged_entry(into, other, actor, self.clock(), fingerprints)
        if self.table is not None:
            self.table.absorb(into, other, fingerprints)
        else:
            lifecycle.fold(into, other)
        if self.engine is not None:
            self.engine.forget(other.id)
        # written at once (the other row must go with its fingerprints in one transaction);
        # a live group's count may then include events whose cursors commit with the next
        # persist: a crash in between reads them again (at-least-once, as everywhere)
        await asyncio.to_thread(self.store.merge_groups, into, other.id, entry)
        self.life.notify(into, entry)

    async def split(self, group_id: str, fingerprint: str, actor: str) -> ErrorGroup:
        """The fingerprint leaves the group: later events with it open a pattern of their own
        (the counts already merged stay where they are)."""
        group = await self.find(group_id)
        owned = {fp for fp, _, _ in await asyncio.to_thread(self.store.fingerprints, group.id)}
        if fingerprint == group.id:
            raise LifecycleError("a group's own fingerprint cannot be split off it")
        if fingerprint not in owned:
            raise LifecycleError(f"{group.id} does not own the fingerprint {fingerprint}")
        entry = Activity(group.id, "split", actor, self.clock(), group.state, group.state,
                         {"fingerprint": fingerprint})  # fmt: skip
        if self.table is not None:
            self.table.detach(fingerprint)
        await asyncio.to_thread(self.store.split_fingerprint, fingerprint, entry)
        self.life.notify(group, entry)
        return group

    async def fixes_merged(self, fixes: list[Any]) -> None:
        """Merged fix PRs (the store already resolved their patterns): the live groups take
        the same state, and each resolution is announced."""
        for fix in fixes:
            live = self.table.find(fix.group_id) if self.table is not None else None
            group = live or await asyncio.to_thread(self.store.get_group, fix.group_id)
            if group is None:
                continue
            if live is not None:
                live.status = "fixed"
                entry = lifecycle.resolve(live, f"fix:{fix.id}", self.clock(), pr_url=fix.pr_url)
                assert self.table is not None
                self.table.dirty.add(live.id)
            else:
                entry = Activity(group.id, "resolved", f"fix:{fix.id}", group.state_changed,
                                 "open", group.state, {"pr_url": fix.pr_url})  # fmt: skip
            self.life.notify(group, entry)

    async def _save(self, group: ErrorGroup, entry: Activity) -> None:
        live = self.table is not None and self.table.find(group.id) is group
        if live and self.engine is not None:
            assert self.table is not None
            self.table.record(group, entry)  # committed with the next persist ...
            self.engine.persist_soon()  # ... brought forward to now
            return
        await asyncio.to_thread(self.store.commit, [group], activity=[entry])
        self.life.notify(group, entry)
