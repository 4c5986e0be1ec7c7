"""The instances table: one row per watcher name — who runs it, where, and its heartbeat.

A watcher claims its name at start (a compare-and-set on the row's `run_id`, so two watchers
starting at once cannot both win), renews `last_seen` every few seconds (one short UPDATE that
also fails when another run took the name over), and marks the row stopped on a clean exit.
The same statements run on SQLite and PostgreSQL (the store's placeholder adapter).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

COLUMNS = (
    "name, run_id, host, node, pid, version, started_at, last_seen, stopped_at, sources, leader"
)
_NAMES = [name.strip() for name in COLUMNS.split(",")]
_INSERT = (
    f"INSERT INTO instances ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (name) DO NOTHING"
)
_TAKE_OVER = (
    "UPDATE instances SET run_id = ?, host = ?, node = ?, pid = ?, version = ?, started_at = ?,"
    " last_seen = ?, stopped_at = ?, sources = ?, leader = ? WHERE name = ? AND run_id = ?"
)


@dataclass(frozen=True)
class Instance:
    """One watcher's row: `run_id` is new at every start; `node` tells whether a pid can be
    checked from here (the same kernel boot and pid namespace); `leader` is None when unknown."""

    name: str
    run_id: str
    host: str
    node: str
    pid: int
    version: str
    started_at: float
    last_seen: float
    stopped_at: float | None = None
    sources: tuple[str, ...] = ()
    leader: bool | None = None


def _params(me: Instance) -> tuple[Any, ...]:
    leader = None if me.leader is None else int(me.leader)
    return (me.run_id, me.host, me.node, me.pid, me.version, me.started_at, me.last_seen,
            me.stopped_at, json.dumps(list(me.sources)), leader)  # fmt: skip


def _from_row(row: Any) -> Instance:
    values = dict(zip(_NAMES, row, strict=True))
    leader = values["leader"]
    values["sources"] = tuple(json.loads(values["sources"]))
    values["leader"] = None if leader is None else bool(leader)
    return Instance(**values)


class InstanceRows:
    """The store's instance methods (a mixin of `Store`: one lock, one transaction each)."""

    _lock: Any
    _conn: Any
    _write: Callable[[], Any]  # Store's: one write transaction, a failure counted

    def get_instance(self, name: str) -> Instance | None:
        """The row of one instance name, or None."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {COLUMNS} FROM instances WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else _from_row(row)

    def list_instances(self) -> list[Instance]:
        """Every instance row, by name."""
        with self._lock:
            rows = self._conn.execute(f"SELECT {COLUMNS} FROM instances ORDER BY name")
            return [_from_row(row) for row in rows]

    def claim_instance(self, me: Instance, replaces: str | None, forget_before: float) -> bool:
        """Take the name: insert the row when `replaces` is None, else overwrite the row only
        if it still holds run `replaces`; False when another run got there first. Rows of
        other names last seen before `forget_before` are forgotten on the way."""
        with self._lock, self._write() as conn:
            conn.execute(
                "DELETE FROM instances WHERE last_seen < ? AND name != ?", (forget_before, me.name)
            )
            if replaces is None:
                done = conn.execute(_INSERT, (me.name, *_params(me)))
            else:
                done = conn.execute(_TAKE_OVER, (*_params(me), me.name, replaces))
            return bool(done.rowcount == 1)

    def beat(
        self, name: str, run_id: str, at: float, sources: tuple[str, ...], leader: bool | None
    ) -> bool:
        """Renew the heartbeat; False when the row is no longer this run's (taken over)."""
        flag = None if leader is None else int(leader)
        with self._lock, self._write() as conn:
            done = conn.execute(
                "UPDATE instances SET last_seen = ?, sources = ?, leader = ?"
                " WHERE name = ? AND run_id = ?",
                (at, json.dumps(list(sources)), flag, name, run_id),
            )
            return bool(done.rowcount == 1)

    def instance_stopped(self, name: str, run_id: str, at: float) -> None:
        """A clean exit: the name is free again at once (no need to wait out the TTL)."""
        with self._lock, self._write() as conn:
            conn.execute(
                "UPDATE instances SET stopped_at = ?, last_seen = ?, leader = NULL"
                " WHERE name = ? AND run_id = ?",
                (at, at, name, run_id),
            )
