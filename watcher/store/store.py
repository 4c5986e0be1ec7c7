"""The `Store` class: groups and their samples, fixes, source checkpoints, state, counters.

Synchronous on purpose: the asyncio pipeline calls it through `asyncio.to_thread`. One `Store`
serialises its public methods with a lock, so it may be handed to any one worker thread at a
time (or several; they just queue).

A daemon's store (`fallback_to_memory=True`) whose file cannot be opened at all (a read-only
directory, a full disk) runs in memory and says so in `degraded`: losing history beats a daemon
that crash-loops on start.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import structlog

from watcher.metrics import Metrics
from watcher.model import Activity, ErrorGroup, Fix, Sample
from watcher.store import leases, outbox
from watcher.store.connection import MEMORY, CorruptDatabase, connect, set_aside
from watcher.store.filters import ORDERS, group_filters
from watcher.store.instances import InstanceRows
from watcher.store.leases import Fence, Lease
from watcher.store.rows import (
    ACTIVITY_COLUMNS,
    FIX_COLUMNS,
    GROUP_COLUMNS,
    INSERT_ACTIVITY,
    UPSERT_FIX,
    UPSERT_GROUP,
    UPSERT_GROUP_ADDED,
    activity_from_row,
    activity_params,
    dumps,
    fix_from_row,
    fix_params,
    group_from_row,
    group_params,
    sample_from_row,
)
from watcher.store.salvage import salvage
from watcher.store.schema import migrate, transaction, user_version

log = structlog.get_logger("watcher.store")

# watcher_state_errors_total{kind} of a failed write, by SQLite primary result code
_WRITE_ERROR_KINDS = {sqlite3.SQLITE_FULL: "disk_full", sqlite3.SQLITE_READONLY: "read_only"}
_COUNT = [c.strip() for c in GROUP_COLUMNS.split(",")].index("count")
# SQLite caps bound parameters per statement; stay far below every build's limit.
_IN_CHUNK = 500

P = ParamSpec("P")
R = TypeVar("R")


_UPSERT_CHECKPOINT = (
    "INSERT INTO checkpoints (source, stream, cursor, updated) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (source, stream) DO UPDATE"
    " SET cursor = excluded.cursor, updated = excluded.updated"
)
# a fingerprint already owned keeps its owner: only merge/split move one (and say so)
_ADD_FINGERPRINT = (
    "INSERT INTO fingerprints (fingerprint, group_id, version, added) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (fingerprint) DO NOTHING"
)
_UPSERT_STATE = (
    "INSERT INTO state (key, value, updated) VALUES (?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated = excluded.updated"
)


def _write_error_kind(exc: BaseException) -> str:
    code = getattr(exc, "sqlite_errorcode", None)
    return "write" if code is None else _WRITE_ERROR_KINDS.get(code & 0xFF, "write")


def _locked(method: Callable[Concatenate[Store, P], R]) -> Callable[Concatenate[Store, P], R]:
    @functools.wraps(method)
    def wrapper(self: Store, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


_INSERT_SAMPLE = (
    "INSERT INTO samples (group_id, timestamp, source, text, line) VALUES (?, ?, ?, ?, ?)"
)
# a group's samples beyond its newest samples_per_group
_TRIM_SAMPLES = (
    "DELETE FROM samples WHERE group_id = ? AND id NOT IN ("
    " SELECT id FROM samples WHERE group_id = ?"
    " ORDER BY timestamp DESC, id DESC LIMIT ?)"
)


class Store(InstanceRows):
    """Durable state for one watcher process, on one SQLite file (or ":memory:")."""

    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
    shared = False  # one watcher's file

    def __init__(
        self,
        path: str | Path,
        *,
        metrics: Metrics | None = None,
        samples_per_group: int = 5,
        fallback_to_memory: bool = False,
        redact: Callable[[str], str] = str,
    ) -> None:
        if samples_per_group < 0:
            raise ValueError("samples_per_group must be >= 0")
        self.path = str(path)
        # secrets never reach the state file: templates and samples pass the redactor
        self.redact = redact
        self.metrics = metrics
        self.samples_per_group = samples_per_group
        self.degraded: str | None = None  # why the file is not in use (in-memory fallback)
        self.recovered: str | None = None  # a damaged file was set aside at open: why
        self.salvaged: dict[str, int] = {}  # rows copied from it, per table
        self.damaged: str | None = None  # the last integrity check failed: why
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
        return connect(MEMORY)

    def _open(self) -> sqlite3.Connection:
        if self.path == MEMORY:
            return connect(self.path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            return connect(self.path)
        except CorruptDatabase as exc:
            moved_to = self._recover(Path(self.path), exc)
        # A second failure is not corruption we can fix by moving files: let it raise.
        conn = connect(self.path)
        if moved_to is not None:
            self.salvaged = salvage(moved_to, conn)
            log.warning("Salvaged rows from the set-aside state file.", rows=self.salvaged)
        return conn

    def _recover(self, path: Path, exc: CorruptDatabase) -> Path:
        moved_to = set_aside(path)
        log.warning(
            "State database is corrupt; set it aside, starting with what can be salvaged.",
            path=str(path),
            moved_to=str(moved_to),
            reason=str(exc),
        )
        self.recovered = f"{exc} (set aside as {moved_to.name})"
        self._count_error(exc.kind)
        return moved_to

    def _count_error(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.state_errors.labels(kind).inc()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; a failure is counted before it propagates."""
        try:
            with self._transaction():
                yield self._conn
        except self.errors as exc:
            self._count_error(self._error_kind(exc))
            raise

    def _transaction(self) -> Any:
        return transaction(self._conn)

    def _error_kind(self, exc: BaseException) -> str:
        return _write_error_kind(exc)

    def check_integrity(self) -> str | None:
        """PRAGMA quick_check on the open file: None when it is sound, else the problems (also
        kept in `damaged` and counted as corrupt). Damage found while running is reported, not
        repaired: the next start sets the file aside and salvages it."""
        if self.path == MEMORY or self.degraded is not None:
            return None
        try:  # a connection of its own: ours may answer from pages it cached before the damage
            check = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            try:
                rows = check.execute("PRAGMA quick_check").fetchall()
            finally:
                check.close()
            ok = [tuple(r) for r in rows] == [("ok",)]
            problem = None if ok else "; ".join(str(r[0]) for r in rows[:5])
        except sqlite3.DatabaseError as exc:
            problem = str(exc)
        if problem is not None and self.damaged is None:
            self._count_error("corrupt")
        self.damaged = problem
        return problem

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

    @_locked
    def migrate(self) -> int:
        """Apply pending migrations (opening already did); the resulting version."""
        return migrate(self._conn)

    # --- groups ---------------------------------------------------------------------------

    @_locked
    def upsert_groups(self, groups: Iterable[ErrorGroup]) -> None:
        """Insert or overwrite groups (all fields but samples, window_counts and trend)."""
        with self._write() as conn:
            self._upsert_groups(conn, groups)

    def _upsert_groups(
        self, conn: Any, groups: Iterable[ErrorGroup], blind: Collection[str] = ()
    ) -> None:
        """Upsert groups in order; those in `blind` (started afresh while the store could not
        be read) only add what they counted (UPSERT_GROUP_ADDED). Runs of one kind share one
        executemany, so the order (PostgreSQL's deadlock guard) holds across both kinds."""
        runs: list[tuple[bool, list[tuple[Any, ...]]]] = []
        for group in self._ordered(groups):
            added = group.id in blind
            params = self._group_params(group, added)
            if runs and runs[-1][0] == added:
                runs[-1][1].append(params)
            else:
                runs.append((added, [params]))
        for added, rows in runs:
            conn.executemany(UPSERT_GROUP_ADDED if added else self._upsert_sql, rows)

    _upsert_sql = UPSERT_GROUP  # a backend shared by several watchers adds counts: PostgresStore

    def _ordered(self, groups: Iterable[ErrorGroup]) -> Iterable[ErrorGroup]:
        return groups

    def _group_params(self, group: ErrorGroup, added: bool) -> tuple[Any, ...]:
        """A group's upsert parameters; an added one carries what it counted since the store
        last saw it (ErrorGroup.flushed)."""
        params = group_params(group, self.redact)
        if not added:
            return params
        return (*params[:_COUNT], group.count - group.flushed, *params[_COUNT + 1 :])

    def _scoped(self, name: str) -> str:
        """A checkpoint's source or a state key as stored (one watcher per file: as is)."""
        return name

    @_locked
    def add_samples(self, group_id: str, samples: Iterable[Sample]) -> None:
        """Append samples to a stored group, keeping only its newest samples_per_group."""
        with self._write() as conn:
            self._insert_samples(conn, group_id, samples)

    def _insert_samples(
        self, conn: sqlite3.Connection, group_id: str, samples: Iterable[Sample]
    ) -> None:
        self._insert_all_samples(conn, {group_id: samples})

    def _insert_all_samples(
        self, conn: sqlite3.Connection, samples: Mapping[str, Iterable[Sample]]
    ) -> None:
        """Every group's new samples in one statement, then the groups holding more than
        samples_per_group trimmed to their newest: a flood of new groups made an insert and a
        trim per group (~12 us of a new group's ~28 us of writing), for nothing to trim."""
        redact = self.redact
        rows = [
            (group_id, s.timestamp, s.source, redact(s.text), s.line)
            for group_id, items in samples.items()
            for s in items
        ]
        conn.executemany(_INSERT_SAMPLE, rows)
        keep = self.samples_per_group
        ids = list(samples)
        over = []  # the groups holding more than `keep` samples now: the others lose none
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            over += conn.execute(
                "SELECT group_id FROM samples"
                f" WHERE group_id IN ({', '.join('?' * len(chunk))})"
                " GROUP BY group_id HAVING COUNT(*) > ?",
                (*chunk, keep),
            ).fetchall()
        conn.executemany(_TRIM_SAMPLES, [(gid, gid, keep) for (gid,) in over])

    @_locked
    def commit(
        self,
        groups: Iterable[ErrorGroup] = (),
        samples: dict[str, list[Sample]] | None = None,
        cursors: dict[str, dict[str, Any]] | None = None,
        state: dict[str, Any] | None = None,
        *,
        fingerprints: Iterable[tuple[str, str, int]] = (),
        activity: Iterable[Activity] = (),
        fences: Mapping[str, Fence] | None = None,
        blind: Collection[str] = (),
    ) -> None:
        """Groups, their new samples, the cursors they cover and state: ONE transaction.

        `fences`: source -> the lease it is read under (a shared source, watcher/fleet/): the
        commit lands only while every one of them is in force (else LeaseLost, nothing
        written), and that source's cursors are the fleet's, kept under the lease's name.

        `fingerprints` are new (fingerprint, group id, algorithm version) rows (one already
        owned keeps its owner); `activity` entries are appended to the activity list. Groups
        whose id is in `blind` were started afresh while the store could not be read: they
        add their count to a stored row and leave its other columns alone.

        A cursor of None deletes that stream's checkpoint.

        A crash can then never leave counts that include lines whose cursor was not committed
        (they would be counted again after the restart) nor the reverse (lines lost).
        """
        encoded = {key: dumps(value) for key, value in (state or {}).items()}
        now = time.time()
        fences = fences or {}
        with self._write() as conn:
            for fence in fences.values():  # first: the lease rows stay locked until COMMIT
                leases.check_fence(conn, self._clock(conn), fence)
            self._upsert_groups(conn, groups, blind)
            self._insert_all_samples(conn, samples or {})
            for source, streams in (cursors or {}).items():
                key = fences[source].name if source in fences else self._scoped(source)
                conn.executemany(
                    _UPSERT_CHECKPOINT,
                    [(key, s, dumps(c), now) for s, c in streams.items() if c is not None],
                )
                # None forgets a stream's cursor (a file that is gone for good)
                conn.executemany(
                    "DELETE FROM checkpoints WHERE source = ? AND stream = ?",
                    [(key, s) for s, c in streams.items() if c is None],
                )
            conn.executemany(
                _UPSERT_STATE, [(self._scoped(key), value, now) for key, value in encoded.items()]
            )
            conn.executemany(_ADD_FINGERPRINT, [(*row, now) for row in fingerprints])
            conn.executemany(INSERT_ACTIVITY, [activity_params(a) for a in activity])

    @_locked
    def get_group(self, group_id: str) -> ErrorGroup | None:
        """One group with its samples (newest first), or None."""
        row = self._conn.execute(
            f"SELECT {GROUP_COLUMNS} FROM groups WHERE id = ?", (group_id,)
        ).fetchone()
        if row is None:
            return None
        return group_from_row(row, self._samples_for([group_id]).get(group_id, []))

    @_locked
    def get_groups(self, group_ids: Collection[str]) -> dict[str, ErrorGroup]:
        """The groups with these ids that are stored, by id, with their samples: one query per
        500 ids instead of one per group (the engine recalls a batch's returning patterns)."""
        wanted = list(dict.fromkeys(group_ids))
        rows = []
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            rows.extend(
                self._conn.execute(
                    f"SELECT {GROUP_COLUMNS} FROM groups"
                    f" WHERE id IN ({', '.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
            )
        samples = self._samples_for([row["id"] for row in rows])
        return {row["id"]: group_from_row(row, samples.get(row["id"], [])) for row in rows}

    @_locked
    def list_groups(
        self,
        *,
        since: float | None = None,
        min_severity: str | None = None,
        category: str | None = None,
        fixable: bool | None = None,
        state: str | None = None,
        limit: int = 100,
        order: str = "count",
    ) -> list[ErrorGroup]:
        """Groups matching every given filter, ordered by "count" or "last_seen" (descending)."""
        if order not in ORDERS:
            raise ValueError(f"unknown order {order!r}; expected one of {list(ORDERS)}")
        where, params = group_filters(since, min_severity, category, fixable, state)
        rows = self._conn.execute(
            f"SELECT {GROUP_COLUMNS} FROM groups {where} ORDER BY {ORDERS[order]} LIMIT ?",
            (*params, limit),
        ).fetchall()
        samples = self._samples_for([row["id"] for row in rows])
        return [group_from_row(row, samples.get(row["id"], [])) for row in rows]

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
                found.setdefault(row["group_id"], []).append(sample_from_row(row))
        return found

    @_locked
    def each_group_id(self, visit: Callable[[str], None]) -> None:
        """Call `visit` with every stored group's id (streamed: no list of a million ids)."""
        for (group_id,) in self._conn.execute("SELECT id FROM groups"):
            visit(group_id)

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

    # --- fingerprints and the activity list ---------------------------------------------------

    @_locked
    def fingerprints(self, group_id: str | None = None) -> list[tuple[str, str, int]]:
        """(fingerprint, group id, version) rows: one group's, or every one that another group
        owns (a merge, an algorithm upgrade) when `group_id` is None."""
        if group_id is None:
            rows = self._conn.execute(
                "SELECT fingerprint, group_id, version FROM fingerprints"
                " WHERE fingerprint != group_id ORDER BY fingerprint"
            )
        else:
            rows = self._conn.execute(
                "SELECT fingerprint, group_id, version FROM fingerprints WHERE group_id = ?"
                " ORDER BY added, fingerprint",
                (group_id,),
            )
        return [(r["fingerprint"], r["group_id"], r["version"]) for r in rows]

    @_locked
    def legacy_fingerprints(self, current: int) -> dict[str, str]:
        """Fingerprints an older trace algorithm (1 .. current-1) made -> their group."""
        rows = self._conn.execute(
            "SELECT fingerprint, group_id FROM fingerprints WHERE version BETWEEN 1 AND ?",
            (current - 1,),
        )
        return {r["fingerprint"]: r["group_id"] for r in rows}

    @_locked
    def merge_groups(self, survivor: ErrorGroup, merged_id: str, entry: Activity) -> None:
        """`merged_id` becomes part of `survivor` (already folded by the caller): its
        fingerprints and samples move over, its row goes, and the merge is recorded."""
        with self._write() as conn:
            conn.execute(
                "UPDATE fingerprints SET group_id = ? WHERE group_id = ?", (survivor.id, merged_id)
            )
            conn.execute(
                "UPDATE samples SET group_id = ? WHERE group_id = ?", (survivor.id, merged_id)
            )
            conn.execute("DELETE FROM groups WHERE id = ?", (merged_id,))
            self._upsert_groups(conn, [survivor])
            self._insert_samples(conn, survivor.id, ())
            conn.execute(INSERT_ACTIVITY, activity_params(entry))

    @_locked
    def split_fingerprint(self, fingerprint: str, entry: Activity) -> None:
        """The fingerprint leaves its group: later events with it open a group of their own."""
        with self._write() as conn:
            conn.execute(
                "UPDATE fingerprints SET group_id = fingerprint WHERE fingerprint = ?",
                (fingerprint,),
            )
            conn.execute(INSERT_ACTIVITY, activity_params(entry))

    @_locked
    def list_activity(
        self, *, group_id: str | None = None, after: int = 0, limit: int = 100
    ) -> list[Activity]:
        """The activity list, newest first (only entries with an id above `after`)."""
        clause, params = ("AND group_id = ?", [group_id]) if group_id is not None else ("", [])
        rows = self._conn.execute(
            f"SELECT {ACTIVITY_COLUMNS} FROM activity WHERE id > ? {clause}"
            " ORDER BY id DESC LIMIT ?",
            (after, *params, limit),
        )
        return [activity_from_row(row) for row in rows]

    # --- checkpoints ----------------------------------------------------------------------

    @_locked
    def get_checkpoint(self, source: str, *, fleet: bool = False) -> dict[str, Any]:
        """The committed cursor of every stream of a source ({} when none); `fleet`: the one
        every watcher shares, kept under that name (a shared source's lease)."""
        key = source if fleet else self._scoped(source)
        rows = self._conn.execute("SELECT stream, cursor FROM checkpoints WHERE source = ?", (key,))
        return {row["stream"]: json.loads(row["cursor"]) for row in rows}

    @_locked
    def set_checkpoints(self, source: str, cursors: dict[str, Any]) -> None:
        """Commit cursors for the given streams; other streams of the source keep theirs."""
        now = time.time()
        rows = [(self._scoped(source), s, dumps(cursor), now) for s, cursor in cursors.items()]
        with self._write() as conn:
            conn.executemany(_UPSERT_CHECKPOINT, rows)

    # --- opaque state ---------------------------------------------------------------------

    @_locked
    def get_state(self, key: str) -> Any | None:
        """The JSON value stored under key, or None."""
        row = self._conn.execute(
            "SELECT value FROM state WHERE key = ?", (self._scoped(key),)
        ).fetchone()
        return None if row is None else json.loads(row["value"])

    @_locked
    def set_state(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable value under key, replacing any previous one."""
        encoded = dumps(value)  # a TypeError here leaves the old value in place
        with self._write() as conn:
            conn.execute(_UPSERT_STATE, (self._scoped(key), encoded, time.time()))

    # --- fixes ----------------------------------------------------------------------------

    @_locked
    def save_fix(self, fix: Fix, *, fence: Fence | None = None) -> None:
        """Insert or overwrite a fix by its id; with a `fence`, only while that lease is held
        (else LeaseLost, and nothing is written)."""
        params = fix_params(fix)
        with self._write() as conn:
            if fence is not None:
                leases.check_fence(conn, self._clock(conn), fence)
            conn.execute(UPSERT_FIX, params)

    @_locked
    def get_fix(self, fix_id: str) -> Fix | None:
        """One fix, or None."""
        row = self._conn.execute(
            f"SELECT {FIX_COLUMNS} FROM fixes WHERE id = ?", (fix_id,)
        ).fetchone()
        return None if row is None else fix_from_row(row)

    @_locked
    def list_fixes(
        self, *, group_id: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Fix]:
        """Fixes matching the given filters, newest first."""
        clauses = [(c, v) for c, v in (("group_id", group_id), ("status", status)) if v is not None]
        where = " AND ".join(f"{column} = ?" for column, _ in clauses)
        rows = self._conn.execute(
            f"SELECT {FIX_COLUMNS} FROM fixes {'WHERE ' + where if where else ''}"
            " ORDER BY created DESC, id LIMIT ?",
            (*(value for _, value in clauses), limit),
        )
        return [fix_from_row(row) for row in rows]

    @_locked
    def fixes_since(self, since: float) -> int:
        """How many fixes (any status) were created at or after `since`."""
        row = self._conn.execute("SELECT count(*) FROM fixes WHERE created >= ?", (since,))
        return int(row.fetchone()[0])

    # --- leases (see watcher/store/leases.py) ----------------------------------------------

    def _clock(self, conn: Any) -> float:
        """Now, by the clock every holder of this store's leases shares (one file: this host's)."""
        return time.time()

    @_locked
    def acquire_lease(self, name: str, holder: str, ttl: float) -> int | None:
        """Take (or keep) lease `name` for `ttl` seconds: its epoch, or None while another
        holder's is in force."""
        with self._write() as conn:
            return leases.acquire(conn, self._clock(conn), name, holder, ttl)

    @_locked
    def renew_lease(self, name: str, holder: str, epoch: int, ttl: float) -> bool:
        """Extend a lease held at `epoch` to `ttl` seconds from now; False when it was lost."""
        with self._write() as conn:
            return leases.renew(conn, self._clock(conn), name, holder, epoch, ttl)

    @_locked
    def release_lease(self, name: str, holder: str, epoch: int) -> bool:
        """Give a lease up now (another may take it at once); False when it was not held."""
        with self._write() as conn:
            return leases.release(conn, self._clock(conn), name, holder, epoch)

    @_locked
    def lease_holders(self, prefix: str = "") -> list[Lease]:
        """Every lease whose name starts with `prefix` (held or expired), by name."""
        return leases.holders(self._conn, self._clock(self._conn), prefix)

    # --- the alert outbox (see watcher/store/outbox.py) -----------------------------------

    @_locked
    def queue_alerts(self, holder: str, rows: Iterable[tuple[str, str, str]]) -> None:
        """Queue (dedupe key, destination, payload) alerts; a key queued before is skipped."""
        with self._write() as conn:
            outbox.queue(conn, self._clock(conn), holder, list(rows))

    @_locked
    def claim_alerts(self, fence: Fence, limit: int = 500) -> list[tuple[str, str, str]]:
        """The oldest pending alerts, marked sent under `fence` (LeaseLost when it is not held
        and some are pending: then nothing is claimed); the caller delivers them."""
        with self._write() as conn:
            rows = outbox.pending(conn, limit)
            if rows:  # polled every second: an idle outbox costs one read, no lease write
                now = self._clock(conn)
                leases.check_fence(conn, now, fence)
                outbox.mark_sent(conn, now, fence.epoch, rows)
            return rows

    # --- counters -------------------------------------------------------------------------

    @_locked
    def add_counters(self, counts: dict[str, int]) -> None:
        """Add to named counters that survive restarts."""
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO counters (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value",
                counts.items(),
            )

    @_locked
    def get_counters(self) -> dict[str, int]:
        """Every counter's total."""
        rows = self._conn.execute("SELECT name, value FROM counters")
        return {row["name"]: row["value"] for row in rows}
