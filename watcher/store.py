"""The SQLite store: groups and their samples, fixes, source checkpoints, miner state, counters.

Synchronous on purpose: the asyncio pipeline calls it through `asyncio.to_thread`. One `Store`
serialises its public methods with a lock, so it may be handed to any one worker thread at a
time (or several; they just queue).

The schema is versioned with `PRAGMA user_version` and the ordered `MIGRATIONS` list. A file
that is not a SQLite database, or fails `PRAGMA quick_check`, is renamed aside and replaced by a
fresh store: losing history beats a daemon that crash-loops on start. For the same reason a
daemon's store (`fallback_to_memory=True`) whose file cannot be opened at all (a read-only
directory, a full disk) runs in memory and says so in `degraded`.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import structlog

from watcher.metrics import Metrics
from watcher.model import SEVERITY_RANK, ErrorGroup, Fix, Frame, Sample

log = structlog.get_logger("watcher.store")

MEMORY = ":memory:"
SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 5000  # another process (a `watcher scan`) may hold the write lock briefly
_CORRUPTION_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
# watcher_state_errors_total{kind} of a failed write, by SQLite primary result code
_WRITE_ERROR_KINDS = {sqlite3.SQLITE_FULL: "disk_full", sqlite3.SQLITE_READONLY: "read_only"}
# SQLite caps bound parameters per statement; stay far below every build's limit.
_IN_CHUNK = 500

P = ParamSpec("P")
R = TypeVar("R")


_UPSERT_CHECKPOINT = (
    "INSERT INTO checkpoints (source, stream, cursor, updated) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (source, stream) DO UPDATE"
    " SET cursor = excluded.cursor, updated = excluded.updated"
)
_UPSERT_STATE = (
    "INSERT INTO state (key, value, updated) VALUES (?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated = excluded.updated"
)


class StoreError(Exception):
    """The store cannot be opened for a reason that setting the file aside would not fix."""


class _CorruptDatabase(Exception):
    """Raised while opening: the file is damaged and should be set aside."""


# --- schema -----------------------------------------------------------------------------------


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


# Append only; never edit or reorder a released step. MIGRATIONS[i] takes a database from
# user_version i to i + 1, inside one transaction together with the version bump. A v2 would be:
#
#     def _migrate_v2(conn: sqlite3.Connection) -> None:
#         """Groups remember who acknowledged them."""
#         conn.execute("ALTER TABLE groups ADD COLUMN acked_by TEXT")
#
#     MIGRATIONS = (_migrate_v1, _migrate_v2)
#
# plus reading/writing the column in the row mappers below.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_migrate_v1,)
SCHEMA_VERSION = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the database file (0 for a new file)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
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
    # Looked up at call time, not bound as a default, so tests can stage a v2.
    migrations = MIGRATIONS if migrations is None else migrations
    version = user_version(conn)
    if version > len(migrations):
        raise StoreError(
            f"database schema v{version} is newer than this watcher (v{len(migrations)})"
        )
    for target in range(version + 1, len(migrations) + 1):
        with _transaction(conn):
            migrations[target - 1](conn)
            # PRAGMA cannot take a bound parameter; target is an int we computed.
            conn.execute(f"PRAGMA user_version = {target}")
        log.info("State schema migrated.", version=target)
    return len(migrations)


# --- opening and corruption -------------------------------------------------------------------


def _is_corruption(exc: sqlite3.Error) -> bool:
    # "database is locked" is a DatabaseError too: only these primary codes mean a damaged file.
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in _CORRUPTION_CODES


def _check_integrity(conn: sqlite3.Connection) -> None:
    rows = conn.execute("PRAGMA quick_check").fetchall()
    if [tuple(row) for row in rows] != [("ok",)]:
        problems = "; ".join(str(row[0]) for row in rows[:5])
        raise _CorruptDatabase(f"quick_check failed: {problems}")


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    _check_integrity(conn)
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL mode loses at most the last commits on power loss, never consistency.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    migrate(conn)


def _check_header(path: str) -> None:
    # Caught before SQLite opens the file: on close it would delete a -wal next to it,
    # destroying what we want to set aside. An empty file is a new database, not a bad one.
    if path == MEMORY or not Path(path).is_file():
        return
    with open(path, "rb") as f:
        head = f.read(len(SQLITE_MAGIC))
    if head and head != SQLITE_MAGIC:
        raise _CorruptDatabase("not a SQLite database (bad header)")


def _connect(path: str) -> sqlite3.Connection:
    """Open, check and migrate; raise _CorruptDatabase when the file is damaged."""
    _check_header(path)
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly
    # one public method call.
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        _configure(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if _is_corruption(exc):
            raise _CorruptDatabase(str(exc)) from exc
        raise
    except BaseException:
        conn.close()
        raise
    return conn


def _write_error_kind(exc: sqlite3.Error) -> str:
    code = getattr(exc, "sqlite_errorcode", None)
    return "write" if code is None else _WRITE_ERROR_KINDS.get(code & 0xFF, "write")


def _aside_name(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    candidate = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    return candidate


def set_aside(path: Path) -> Path:
    """Rename a damaged database (and its WAL/SHM files) aside; return the new name."""
    target = _aside_name(path)
    path.rename(target)
    # A stale -wal next to a fresh database would be replayed into it: move it with its file,
    # keeping the "<db>-wal" naming so the pair can still be opened for forensics.
    for suffix in ("-wal", "-shm", "-journal"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.rename(target.with_name(target.name + suffix))
    return target


# --- row mapping ------------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _frame_to_dict(frame: Frame) -> dict[str, Any]:
    # Frame.to_dict drops in_app (it is for reports); the store must round-trip it.
    return {
        "file": frame.file,
        "line": frame.line,
        "function": frame.function,
        "in_app": frame.in_app,
    }


def _frame_from_dict(data: dict[str, Any]) -> Frame:
    return Frame(data["file"], data.get("line"), data["function"], data.get("in_app", True))


def _group_params(group: ErrorGroup) -> tuple[Any, ...]:
    top = None if group.top_frame is None else _dumps(_frame_to_dict(group.top_frame))
    return (
        group.id,
        group.kind,
        group.template,
        group.category,
        group.severity,
        int(group.fixable),
        group.suggested_fix,
        group.exception_type,
        top,
        _dumps([_frame_to_dict(f) for f in group.frames]),
        group.count,
        group.first_seen,
        group.last_seen,
        _dumps(group.sources),
        group.status,
    )


_GROUP_COLUMNS = (
    "id, kind, template, category, severity, fixable, suggested_fix, exception_type, top_frame,"
    " frames, count, first_seen, last_seen, sources, status"
)
# ON CONFLICT ... DO UPDATE, not INSERT OR REPLACE: a replace deletes the row, and the
# foreign-key cascade would take the group's samples with it.
_UPSERT_GROUP = f"""
INSERT INTO groups ({_GROUP_COLUMNS}) VALUES ({", ".join("?" * 15)})
ON CONFLICT (id) DO UPDATE SET
    kind = excluded.kind, template = excluded.template, category = excluded.category,
    severity = excluded.severity, fixable = excluded.fixable,
    suggested_fix = excluded.suggested_fix, exception_type = excluded.exception_type,
    top_frame = excluded.top_frame, frames = excluded.frames, count = excluded.count,
    first_seen = excluded.first_seen, last_seen = excluded.last_seen,
    sources = excluded.sources, status = excluded.status
"""


def _group_from_row(row: sqlite3.Row, samples: list[Sample]) -> ErrorGroup:
    top = row["top_frame"]
    return ErrorGroup(
        id=row["id"],
        kind=row["kind"],
        template=row["template"],
        category=row["category"],
        severity=row["severity"],
        fixable=bool(row["fixable"]),
        suggested_fix=row["suggested_fix"],
        exception_type=row["exception_type"],
        top_frame=None if top is None else _frame_from_dict(json.loads(top)),
        frames=[_frame_from_dict(f) for f in json.loads(row["frames"])],
        count=row["count"],
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        sources=json.loads(row["sources"]),
        samples=samples,
        status=row["status"],
    )


def _sample_from_row(row: sqlite3.Row) -> Sample:
    return Sample(row["timestamp"], row["source"], row["text"], row["line"])


# The columns are Fix's fields, in order; a new Fix field needs a migration.
_FIX_FIELDS: tuple[str, ...] = (
    *("id", "group_id", "status", "created", "root_cause", "confidence"),
    *("diff", "branch", "pr_url", "error", "details"),
)
_FIX_COLUMNS = ", ".join(_FIX_FIELDS)
_UPSERT_FIX = f"""
INSERT INTO fixes ({_FIX_COLUMNS}) VALUES ({", ".join("?" * len(_FIX_FIELDS))})
ON CONFLICT (id) DO UPDATE SET {", ".join(f"{c} = excluded.{c}" for c in _FIX_FIELDS[1:])}
"""


def _fix_params(fix: Fix) -> tuple[Any, ...]:
    values = {name: getattr(fix, name) for name in _FIX_FIELDS}
    return tuple({**values, "details": _dumps(fix.details)}.values())


def _fix_from_row(row: sqlite3.Row) -> Fix:
    values = {name: row[name] for name in _FIX_FIELDS}
    return Fix(**{**values, "details": json.loads(row["details"])})


_ORDERS = {
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


def _group_filters(
    since: float | None, min_severity: str | None, category: str | None, fixable: bool | None
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
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


# --- the store --------------------------------------------------------------------------------


def _locked(method: Callable[Concatenate[Store, P], R]) -> Callable[Concatenate[Store, P], R]:
    @functools.wraps(method)
    def wrapper(self: Store, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


class Store:
    """Durable state for one watcher process, on one SQLite file (or ":memory:")."""

    def __init__(
        self,
        path: str | Path,
        *,
        metrics: Metrics | None = None,
        samples_per_group: int = 5,
        fallback_to_memory: bool = False,
    ) -> None:
        if samples_per_group < 0:
            raise ValueError("samples_per_group must be >= 0")
        self.path = str(path)
        self.metrics = metrics
        self.samples_per_group = samples_per_group
        self.degraded: str | None = None  # why the file is not in use (in-memory fallback)
        self._lock = threading.Lock()
        self._conn = self._open_or_fallback() if fallback_to_memory else self._open()

    def _open_or_fallback(self) -> sqlite3.Connection:
        """The file, or, when it cannot be opened at all, an in-memory store (degraded)."""
        try:
            return self._open()
        except (sqlite3.OperationalError, OSError) as exc:
            # a newer schema (StoreError) still raises: that is a deployment mistake
            reason = f"{type(exc).__name__}: {exc}"
        log.error(
            "State file cannot be opened; running with in-memory state (nothing survives a "
            "restart until the path is writable and watcher is restarted).",
            path=self.path,
            error=reason,
        )
        self._count_error("open")
        self.degraded = reason
        return _connect(MEMORY)

    def _open(self) -> sqlite3.Connection:
        if self.path == MEMORY:
            return _connect(self.path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            return _connect(self.path)
        except _CorruptDatabase as exc:
            self._recover(Path(self.path), str(exc))
        # A second failure is not corruption we can fix by moving files: let it raise.
        return _connect(self.path)

    def _recover(self, path: Path, reason: str) -> None:
        moved_to = set_aside(path)
        log.warning(
            "State database is corrupt; set it aside and starting with empty state.",
            path=str(path),
            moved_to=str(moved_to),
            reason=reason,
        )
        self._count_error("corrupt")

    def _count_error(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.state_errors.labels(kind).inc()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; a failure is counted before it propagates."""
        try:
            with _transaction(self._conn):
                yield self._conn
        except sqlite3.Error as exc:
            self._count_error(_write_error_kind(exc))
            raise

    @_locked
    def close(self) -> None:
        """Close the connection; the store is unusable afterwards. Safe to call twice."""
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The schema version of the open database."""
        with self._lock:
            return user_version(self._conn)

    # --- groups ---------------------------------------------------------------------------

    @_locked
    def upsert_groups(self, groups: Iterable[ErrorGroup]) -> None:
        """Insert or overwrite groups (all fields but samples, window_counts and trend)."""
        with self._write() as conn:
            conn.executemany(_UPSERT_GROUP, map(_group_params, groups))

    @_locked
    def add_samples(self, group_id: str, samples: Iterable[Sample]) -> None:
        """Append samples to a stored group, keeping only its newest samples_per_group."""
        with self._write() as conn:
            self._insert_samples(conn, group_id, samples)

    def _insert_samples(
        self, conn: sqlite3.Connection, group_id: str, samples: Iterable[Sample]
    ) -> None:
        rows = [(group_id, s.timestamp, s.source, s.text, s.line) for s in samples]
        conn.executemany(
            "INSERT INTO samples (group_id, timestamp, source, text, line) VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute(
            "DELETE FROM samples WHERE group_id = ? AND id NOT IN ("
            " SELECT id FROM samples WHERE group_id = ?"
            " ORDER BY timestamp DESC, id DESC LIMIT ?)",
            (group_id, group_id, self.samples_per_group),
        )

    @_locked
    def commit(
        self,
        groups: Iterable[ErrorGroup] = (),
        samples: dict[str, list[Sample]] | None = None,
        cursors: dict[str, dict[str, Any]] | None = None,
        state: dict[str, Any] | None = None,
    ) -> None:
        """Groups, their new samples, the cursors they cover and state: ONE transaction.

        A crash can then never leave counts that include lines whose cursor was not committed
        (they would be counted again after the restart) nor the reverse (lines lost).
        """
        encoded = {key: _dumps(value) for key, value in (state or {}).items()}
        now = time.time()
        with self._write() as conn:
            conn.executemany(_UPSERT_GROUP, map(_group_params, groups))
            for group_id, items in (samples or {}).items():
                self._insert_samples(conn, group_id, items)
            for source, streams in (cursors or {}).items():
                conn.executemany(
                    _UPSERT_CHECKPOINT,
                    [(source, stream, _dumps(c), now) for stream, c in streams.items()],
                )
            conn.executemany(_UPSERT_STATE, [(key, value, now) for key, value in encoded.items()])

    @_locked
    def get_group(self, group_id: str) -> ErrorGroup | None:
        """One group with its samples (newest first), or None."""
        row = self._conn.execute(
            f"SELECT {_GROUP_COLUMNS} FROM groups WHERE id = ?", (group_id,)
        ).fetchone()
        if row is None:
            return None
        return _group_from_row(row, self._samples_for([group_id]).get(group_id, []))

    @_locked
    def list_groups(
        self,
        *,
        since: float | None = None,
        min_severity: str | None = None,
        category: str | None = None,
        fixable: bool | None = None,
        limit: int = 100,
        order: str = "count",
    ) -> list[ErrorGroup]:
        """Groups matching every given filter, ordered by "count" or "last_seen" (descending)."""
        if order not in _ORDERS:
            raise ValueError(f"unknown order {order!r}; expected one of {list(_ORDERS)}")
        where, params = _group_filters(since, min_severity, category, fixable)
        rows = self._conn.execute(
            f"SELECT {_GROUP_COLUMNS} FROM groups {where} ORDER BY {_ORDERS[order]} LIMIT ?",
            (*params, limit),
        ).fetchall()
        samples = self._samples_for([row["id"] for row in rows])
        return [_group_from_row(row, samples.get(row["id"], [])) for row in rows]

    def _samples_for(self, group_ids: list[str]) -> dict[str, list[Sample]]:
        found: dict[str, list[Sample]] = {}
        for start in range(0, len(group_ids), _IN_CHUNK):
            chunk = group_ids[start : start + _IN_CHUNK]
            rows = self._conn.execute(
                "SELECT group_id, timestamp, source, text, line FROM samples"
                f" WHERE group_id IN ({', '.join('?' * len(chunk))})"
                " ORDER BY group_id, timestamp DESC, id DESC",
                chunk,
            )
            for row in rows:
                found.setdefault(row["group_id"], []).append(_sample_from_row(row))
        return found

    @_locked
    def count_groups(self) -> int:
        """How many groups are stored."""
        return int(self._conn.execute("SELECT count(*) FROM groups").fetchone()[0])

    @_locked
    def set_group_status(self, group_id: str, status: str) -> None:
        """Set one group's status; raise KeyError when the group is not stored."""
        with self._write() as conn:
            cursor = conn.execute("UPDATE groups SET status = ? WHERE id = ?", (status, group_id))
        if cursor.rowcount == 0:
            raise KeyError(group_id)

    # --- checkpoints ----------------------------------------------------------------------

    @_locked
    def get_checkpoint(self, source: str) -> dict[str, Any]:
        """The committed cursor of every stream of a source ({} when none)."""
        rows = self._conn.execute(
            "SELECT stream, cursor FROM checkpoints WHERE source = ?", (source,)
        )
        return {row["stream"]: json.loads(row["cursor"]) for row in rows}

    @_locked
    def set_checkpoints(self, source: str, cursors: dict[str, Any]) -> None:
        """Commit cursors for the given streams; other streams of the source keep theirs."""
        now = time.time()
        rows = [(source, stream, _dumps(cursor), now) for stream, cursor in cursors.items()]
        with self._write() as conn:
            conn.executemany(_UPSERT_CHECKPOINT, rows)

    # --- opaque state ---------------------------------------------------------------------

    @_locked
    def get_state(self, key: str) -> Any | None:
        """The JSON value stored under key, or None."""
        row = self._conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row["value"])

    @_locked
    def set_state(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable value under key, replacing any previous one."""
        encoded = _dumps(value)  # a TypeError here leaves the old value in place
        with self._write() as conn:
            conn.execute(_UPSERT_STATE, (key, encoded, time.time()))

    # --- fixes ----------------------------------------------------------------------------

    @_locked
    def save_fix(self, fix: Fix) -> None:
        """Insert or overwrite a fix by its id."""
        params = _fix_params(fix)
        with self._write() as conn:
            conn.execute(_UPSERT_FIX, params)

    @_locked
    def get_fix(self, fix_id: str) -> Fix | None:
        """One fix, or None."""
        row = self._conn.execute(
            f"SELECT {_FIX_COLUMNS} FROM fixes WHERE id = ?", (fix_id,)
        ).fetchone()
        return None if row is None else _fix_from_row(row)

    @_locked
    def list_fixes(
        self, *, group_id: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Fix]:
        """Fixes matching the given filters, newest first."""
        clauses = [(c, v) for c, v in (("group_id", group_id), ("status", status)) if v is not None]
        where = " AND ".join(f"{column} = ?" for column, _ in clauses)
        rows = self._conn.execute(
            f"SELECT {_FIX_COLUMNS} FROM fixes {'WHERE ' + where if where else ''}"
            " ORDER BY created DESC, id LIMIT ?",
            (*(value for _, value in clauses), limit),
        )
        return [_fix_from_row(row) for row in rows]

    @_locked
    def fixes_since(self, since: float) -> int:
        """How many fixes (any status) were created at or after `since`."""
        row = self._conn.execute("SELECT count(*) FROM fixes WHERE created >= ?", (since,))
        return int(row.fetchone()[0])

    # --- counters -------------------------------------------------------------------------

    @_locked
    def add_counters(self, counts: dict[str, int]) -> None:
        """Add to named counters that survive restarts."""
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO counters (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                counts.items(),
            )

    @_locked
    def get_counters(self) -> dict[str, int]:
        """Every counter's total."""
        rows = self._conn.execute("SELECT name, value FROM counters")
        return {row["name"]: row["value"] for row in rows}
