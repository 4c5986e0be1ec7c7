"""Salvage: copy what is still readable from a set-aside damaged state file into the new one.

Checkpoints first (they decide what is read again after the restart), then the miner state,
fixes (one PR per pattern), counters, groups and their samples. Each table is copied whole when
it reads cleanly, else row by row up to the first unreadable page; a table that cannot be read
at all is skipped. Nothing here raises: salvage is a best effort after the file was lost.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import structlog

from watcher.store.schema import user_version

log = structlog.get_logger("watcher.store")

# In order of what matters most after a restart.
TABLES = (
    *("checkpoints", "state", "fixes", "counters", "groups", "samples"),
    *("fingerprints", "activity"),
)


def salvage(damaged: Path, conn: sqlite3.Connection) -> dict[str, int]:
    """Copy readable rows of `damaged` into the open database `conn`; rows copied per table."""
    try:
        old = sqlite3.connect(f"file:{damaged}?mode=ro", uri=True)
    except sqlite3.Error:
        return {}
    copied: dict[str, int] = {}
    try:
        if user_version(old) != user_version(conn):
            return {}  # another schema: its rows do not fit ours
        for table in TABLES:
            copied[table] = _copy(old, conn, table)
    except sqlite3.DatabaseError as exc:  # the header or schema itself is unreadable
        log.warning("State file could not be salvaged.", path=str(damaged), error=str(exc))
    finally:
        old.close()
    return {table: n for table, n in copied.items() if n}


def _copy(old: sqlite3.Connection, conn: sqlite3.Connection, table: str) -> int:
    rows: list[tuple[object, ...]] = []
    with contextlib.suppress(sqlite3.DatabaseError):
        cursor = old.execute(f"SELECT * FROM {table}")
        while (row := cursor.fetchone()) is not None:  # row by row: keep what precedes damage
            rows.append(tuple(row))
    if not rows:
        return 0
    marks = ", ".join("?" * len(rows[0]))
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(f"INSERT OR IGNORE INTO {table} VALUES ({marks})", rows)
        conn.execute("COMMIT")
    except sqlite3.DatabaseError:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        return 0
    return len(rows)
