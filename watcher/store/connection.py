"""Opening a state file: header and `quick_check`, pragmas, migration; setting a damaged one aside.

A file that is not a SQLite database, or fails `PRAGMA quick_check`, raises `CorruptDatabase`
here; the store then renames it aside with `set_aside` and starts fresh: losing history beats a
daemon that crash-loops on start.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import time
from pathlib import Path

from watcher.store.schema import migrate

MEMORY = ":memory:"
SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 5000  # another process (a `watcher scan`) may hold the write lock briefly
_CORRUPTION_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


class CorruptDatabase(Exception):
    """Raised while opening: the file is damaged and should be set aside."""

    def __init__(self, reason: str, kind: str = "corrupt") -> None:
        super().__init__(reason)
        self.kind = kind  # watcher_state_errors_total{kind}: "corrupt" or "empty"


def _is_corruption(exc: sqlite3.Error) -> bool:
    # "database is locked" is a DatabaseError too: only these primary codes mean a damaged file.
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and (code & 0xFF) in _CORRUPTION_CODES


def _check_integrity(conn: sqlite3.Connection) -> None:
    rows = conn.execute("PRAGMA quick_check").fetchall()
    if [tuple(row) for row in rows] != [("ok",)]:
        problems = "; ".join(str(row[0]) for row in rows[:5])
        raise CorruptDatabase(f"quick_check failed: {problems}")


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
    # destroying what we want to set aside.
    if path == MEMORY or not Path(path).is_file():
        return
    with open(path, "rb") as f:
        head = f.read(len(SQLITE_MAGIC))
    if head and head != SQLITE_MAGIC:
        raise CorruptDatabase("not a SQLite database (bad header)")
    wal = Path(path + "-wal")
    if not head and not (wal.is_file() and wal.stat().st_size > 0):
        # An existing state file that is empty lost everything (a truncation, a full disk at
        # the wrong moment): that is news for the operator, not a new database. (Before its
        # first checkpoint a WAL database is an empty file beside a WAL that holds it all.)
        raise CorruptDatabase("the state file is empty (0 bytes): its state is gone", "empty")


def make_private(path: str) -> None:
    """Create the state file mode 0600 (SQLite gives its -wal and -shm files the mode of the
    database), or take group and other access away from an existing one and its companions:
    it holds error samples, which are sensitive even with their secrets redacted."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return
    except FileExistsError:
        pass
    for name in (path, *(path + suffix for suffix in ("-wal", "-shm", "-journal"))):
        with contextlib.suppress(OSError):
            mode = os.stat(name).st_mode
            if mode & 0o077:
                os.chmod(name, stat.S_IMODE(mode) & 0o700)


def connect(path: str) -> sqlite3.Connection:
    """Open, check and migrate; raise CorruptDatabase when the file is damaged."""
    _check_header(path)
    if path != MEMORY:
        make_private(path)
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly
    # one public method call.
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        _configure(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if _is_corruption(exc):
            raise CorruptDatabase(str(exc)) from exc
        raise
    except BaseException:
        conn.close()
        raise
    return conn


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
