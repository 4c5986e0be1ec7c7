"""The schema: its migration steps, the version they lead to, and the transaction they run in.

The schema is versioned with `PRAGMA user_version` and the ordered `MIGRATIONS` list; `migrate`
runs the steps a database has not had yet, each in one transaction with its version bump.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import structlog

log = structlog.get_logger("watcher.store")


class StoreError(Exception):
    """The store cannot be opened for a reason that setting the file aside would not fix."""


def _migrate_v1(conn: sqlite3.Connection) -> None:
    """The initial schema."""
    statements = (
        """CREATE TABLE groups (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            template TEXT NOT NULL,
            category TEXT NOT NULL,
            severity TEXT NOT NULL,
            fixable INTEGER NOT NULL,
            suggested_fix TEXT NOT NULL,
            exception_type TEXT,
            top_frame TEXT,
            frames TEXT NOT NULL,
            count INTEGER NOT NULL,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            sources TEXT NOT NULL,
            status TEXT NOT NULL
        )""",
        # Full sort keys of list_groups' two orders, so a top-N read never sorts the table.
        "CREATE INDEX groups_by_count ON groups (count DESC, last_seen DESC, id)",
        "CREATE INDEX groups_by_last_seen ON groups (last_seen DESC, count DESC, id)",
        """CREATE TABLE samples (
            id INTEGER PRIMARY KEY,
            group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
            timestamp REAL NOT NULL,
            source TEXT NOT NULL,
            text TEXT NOT NULL,
            line INTEGER NOT NULL
        )""",
        "CREATE INDEX samples_by_group ON samples (group_id, timestamp DESC)",
        """CREATE TABLE checkpoints (
            source TEXT NOT NULL,
            stream TEXT NOT NULL,
            cursor TEXT NOT NULL,
            updated REAL NOT NULL,
            PRIMARY KEY (source, stream)
        ) WITHOUT ROWID""",
        "CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated REAL NOT NULL)",
        """CREATE TABLE fixes (
            id TEXT PRIMARY KEY,
            group_id TEXT NOT NULL,
            status TEXT NOT NULL,
            created REAL NOT NULL,
            root_cause TEXT NOT NULL,
            confidence REAL NOT NULL,
            diff TEXT NOT NULL,
            branch TEXT NOT NULL,
            pr_url TEXT NOT NULL,
            error TEXT NOT NULL,
            details TEXT NOT NULL
        )""",
        "CREATE INDEX fixes_by_group ON fixes (group_id)",
        "CREATE INDEX fixes_by_created ON fixes (created)",
        "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    )
    for statement in statements:
        conn.execute(statement)


def _migrate_v2(conn: sqlite3.Connection) -> None:
    """Patterns have a life: lifecycle state, persisted windows and tags on groups; the
    fingerprints each group owns (with the algorithm version that made them); the activity list.

    Every existing group owns its own id as a fingerprint. Trace groups were keyed by
    fingerprint algorithm v2 (the version at the time this step was written); template groups by
    the miner, recorded as version 0.
    """
    for column in (
        "state TEXT NOT NULL DEFAULT 'open'",
        "state_changed REAL NOT NULL DEFAULT 0",
        "ignore_until REAL",
        "ignore_count INTEGER",
        "tags TEXT NOT NULL DEFAULT '{}'",
        "buckets TEXT NOT NULL DEFAULT '{}'",
    ):
        conn.execute(f"ALTER TABLE groups ADD COLUMN {column}")
    # a status "fixed" (a merged PR) or "ignored" set before lifecycles existed keeps its meaning
    conn.execute("UPDATE groups SET state = 'resolved' WHERE status = 'fixed'")
    conn.execute("UPDATE groups SET state = 'ignored' WHERE status = 'ignored'")
    conn.execute(
        """CREATE TABLE fingerprints (
            fingerprint TEXT PRIMARY KEY,
            group_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            added REAL NOT NULL
        ) WITHOUT ROWID"""
    )
    conn.execute("CREATE INDEX fingerprints_by_group ON fingerprints (group_id)")
    conn.execute(
        "INSERT INTO fingerprints (fingerprint, group_id, version, added)"
        " SELECT id, id, CASE kind WHEN 'trace' THEN 2 ELSE 0 END, first_seen FROM groups"
    )
    conn.execute(
        """CREATE TABLE activity (
            id INTEGER PRIMARY KEY,
            group_id TEXT NOT NULL,
            action TEXT NOT NULL,
            actor TEXT NOT NULL,
            at REAL NOT NULL,
            old_state TEXT NOT NULL,
            new_state TEXT NOT NULL,
            detail TEXT NOT NULL
        )"""
    )
    conn.execute("CREATE INDEX activity_by_group ON activity (group_id, id)")
    conn.execute("CREATE INDEX groups_by_state ON groups (state)")


def _migrate_v3(conn: sqlite3.Connection) -> None:
    """Leases (watcher/store/leases.py): one row per lease name, kept when released so its
    epoch (the fencing token) never goes back."""
    conn.execute(
        """CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            epoch INTEGER NOT NULL,
            expires_at REAL NOT NULL,
            acquired REAL NOT NULL,
            renewed REAL NOT NULL
        ) WITHOUT ROWID"""
    )


def _migrate_v4(conn: sqlite3.Connection) -> None:
    """The alert outbox (watcher/store/outbox.py): alerts queued under a dedupe key, claimed
    (sent) once, by the leader."""
    conn.execute(
        """CREATE TABLE alert_outbox (
            key TEXT PRIMARY KEY,
            destination TEXT NOT NULL,
            payload TEXT NOT NULL,
            queued_by TEXT NOT NULL,
            created REAL NOT NULL,
            sent_epoch INTEGER,
            sent_at REAL
        ) WITHOUT ROWID"""
    )
    conn.execute(
        "CREATE INDEX alert_outbox_pending ON alert_outbox (created) WHERE sent_epoch IS NULL"
    )
    conn.execute("CREATE INDEX alert_outbox_by_sent ON alert_outbox (sent_at)")


def _migrate_v5(conn: sqlite3.Connection) -> None:
    """Each watcher's own window buckets per group, summed on read (several watchers share a
    PostgreSQL state; a SQLite file has one watcher and mirrors the table unused)."""
    conn.execute(
        """CREATE TABLE group_buckets (
            group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
            instance TEXT NOT NULL,
            buckets TEXT NOT NULL,
            updated REAL NOT NULL,
            PRIMARY KEY (group_id, instance)
        ) WITHOUT ROWID"""
    )


def _migrate_v6(conn: sqlite3.Connection) -> None:
    """Instances: one row per watcher name, its heartbeat (see watcher/store/instances.py)."""
    conn.execute(
        """CREATE TABLE instances (
            name TEXT PRIMARY KEY,
            run_id TEXT NOT NULL,
            host TEXT NOT NULL,
            node TEXT NOT NULL,
            pid INTEGER NOT NULL,
            version TEXT NOT NULL,
            started_at REAL NOT NULL,
            last_seen REAL NOT NULL,
            stopped_at REAL,
            sources TEXT NOT NULL,
            leader INTEGER
        ) WITHOUT ROWID"""
    )


# Append only; never edit or reorder a released step. MIGRATIONS[i] takes a database from
# user_version i to i + 1, inside one transaction together with the version bump; the row
# mappers (watcher/store/rows.py) read and write the columns a step adds.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _migrate_v1,
    _migrate_v2,
    _migrate_v3,
    _migrate_v4,
    _migrate_v5,
    _migrate_v6,
)
SCHEMA_VERSION = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the database file (0 for a new file)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One BEGIN IMMEDIATE ... COMMIT; rolled back when the body raises."""
    # IMMEDIATE takes the write lock up front, so a transaction never fails half-way on a
    # read-to-write lock upgrade when another process is writing.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        # SQLite may already have rolled back (e.g. disk full); a second ROLLBACK would raise
        # and hide the real error.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def migrate(
    conn: sqlite3.Connection,
    migrations: Sequence[Callable[[sqlite3.Connection], None]] | None = None,
) -> int:
    """Run the steps the database has not had yet; return the resulting version."""
    # Looked up at call time, not bound as a default, so tests can stage a v2 (by patching
    # this module's MIGRATIONS: the name re-exported by watcher.store is a copy of the binding).
    migrations = MIGRATIONS if migrations is None else migrations
    version = user_version(conn)
    if version > len(migrations):
        raise StoreError(
            f"database schema v{version} is newer than this watcher (v{len(migrations)})"
        )
    for target in range(version + 1, len(migrations) + 1):
        with transaction(conn):
            migrations[target - 1](conn)
            # PRAGMA cannot take a bound parameter; target is an int we computed.
            conn.execute(f"PRAGMA user_version = {target}")
        log.info("State schema migrated.", version=target)
    return len(migrations)
