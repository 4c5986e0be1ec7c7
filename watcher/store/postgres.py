"""`PostgresStore`: the state of several watchers in one PostgreSQL database.

psycopg 3, synchronous, one connection per store, called from worker threads exactly as the
SQLite `Store` is (the engine already moves every store call off the event loop with
`asyncio.to_thread`). The queries are the SQLite store's own: the two dialects agree on
everything it uses (ON CONFLICT upserts, LIMIT, sub-selects); only the placeholders differ,
which `PgConnection` translates, and the DDL, which has its own migrations (pg_schema.py).

A connection that broke (a server restart, a network cut) is replaced at the next call, so a
failed commit is retried by the engine's next persist against a fresh connection.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from watcher.group.lifecycle import merge_buckets
from watcher.metrics import Metrics
from watcher.model import Activity, ErrorGroup, Sample
from watcher.store.pg_schema import pg_migrate, pg_version
from watcher.store.rows import UPSERT_GROUP, dumps
from watcher.store.schema import StoreError
from watcher.store.store import _IN_CHUNK, Store, _locked
from watcher.store.url import masked

_PLACEHOLDER = re.compile(r"\?")
# Several watchers write one group: each adds what it counted since its last flush (in the
# same transaction as its cursors), the seen times widen; the other columns: last writer wins.
UPSERT_GROUP_SUMMED = (
    UPSERT_GROUP.replace("count = excluded.count", "count = groups.count + excluded.count")
    .replace("first_seen = excluded.first_seen", "first_seen = LEAST(groups.first_seen,"
             " excluded.first_seen)")
    .replace("last_seen = excluded.last_seen", "last_seen = GREATEST(groups.last_seen,"
             " excluded.last_seen)")
)  # fmt: skip
_UPSERT_OWN_BUCKETS = (
    "INSERT INTO group_buckets (group_id, instance, buckets, updated) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (group_id, instance) DO UPDATE"
    " SET buckets = excluded.buckets, updated = excluded.updated"
)
COMMIT_SEQ_KEY = "commit_seq"  # a state key (per instance): the number of its last commit
CONNECT_TIMEOUT_S = 5
ROWS_PER_TIMEOUT = 10_000  # an executemany of more rows is allowed one more timeout per as many
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.5, 30.0


class Row:
    """A result row readable by column name and by position, as sqlite3.Row is."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values, self._index = values, index

    def __getitem__(self, key: int | str) -> Any:
        return self._values[self._index[key] if isinstance(key, str) else key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        """The column names, in order."""
        return list(self._index)


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    index = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(values, index)


def _pg(sql: str) -> str:
    # the store's SQL has no literal "?" or "%": placeholders are the only ones
    return _PLACEHOLDER.sub("%s", sql)


class PgConnection:
    """A psycopg connection with the sqlite3 surface the store uses: execute, executemany,
    transaction, close; reconnects when the connection broke.

    A call that gets no answer for `timeout` seconds fails: over TCP the kernel gives up on
    unacknowledged bytes after that long (libpq's tcp_user_timeout, keepalives), and a
    `Deadline` cuts a connection whose server acknowledges but never answers (a hung server or
    proxy). Without them a dead network stalls a commit for minutes (TCP's retransmissions).
    """

    def __init__(self, url: str, password: str | None, timeout: float = 10.0) -> None:
        self._url, self._password, self.timeout = url, password, timeout
        self._retry_at, self._backoff = 0.0, RECONNECT_MIN_S
        self._deadline = Deadline()
        self._conn = self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        extra: dict[str, Any] = {} if self._password is None else {"password": self._password}
        given = conninfo_to_dict(self._url)
        wait = max(1, round(self.timeout))
        defaults = {
            "connect_timeout": max(2, min(wait, CONNECT_TIMEOUT_S)),
            "keepalives": 1,
            "keepalives_idle": wait,
            "keepalives_interval": max(1, wait // 3),
            "keepalives_count": 3,
            "tcp_user_timeout": wait * 1000,
        }
        extra.update({k: v for k, v in defaults.items() if k not in given})  # the URL's win
        return psycopg.connect(self._url, autocommit=True, **extra)

    def _live(self) -> psycopg.Connection[Any]:
        if self._conn.broken or (self._conn.closed and not self._closed_by_us):
            self._reconnect()
        return self._conn

    def _reconnect(self) -> None:
        # While the server is away every call fails at once, with one connection attempt per
        # backoff period: a reader on the event loop (a recall) must not wait a connect
        # timeout on every call.
        now = time.monotonic()
        if now < self._retry_at:
            raise psycopg.OperationalError("the state server is unreachable; retrying soon")
        try:
            self._conn = self._connect()
        except psycopg.Error:
            self._retry_at = now + self._backoff
            self._backoff = min(self._backoff * 2, RECONNECT_MAX_S)
            raise
        self._retry_at, self._backoff = 0.0, RECONNECT_MIN_S

    _closed_by_us = False

    @property
    def raw(self) -> psycopg.Connection[Any]:
        """The psycopg connection (reconnected when it broke)."""
        return self._live()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Row]:
        """Run one statement; the cursor holds its rows."""
        conn = self._live()
        cursor = conn.cursor(row_factory=_row_factory)
        with self._deadline.watch(conn, self.timeout):
            cursor.execute(_pg(sql), tuple(params) or None)
        return cursor

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for each parameter row (pipelined by psycopg)."""
        rows = list(rows)
        if rows:
            conn = self._live()
            # a big batch (a backlog after an outage) may take its time on a healthy server
            allowed = self.timeout * (1 + len(rows) // ROWS_PER_TIMEOUT)
            with conn.cursor() as cursor, self._deadline.watch(conn, allowed):
                cursor.executemany(_pg(sql), rows)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """BEGIN … COMMIT (ROLLBACK when the body raises); the COMMIT under the deadline."""
        conn = self._live()
        with self._deadline.watch(conn, self.timeout), conn.transaction() as tx:
            yield tx

    def close(self) -> None:
        """Close the connection (it is not reopened)."""
        self._closed_by_us = True
        self._deadline.close()
        self._conn.close()


class Deadline:
    """Cuts (shuts down the socket of) a connection whose call outlives its allowance: the
    blocked call then fails at once and the connection is replaced at the next one. One thread,
    started at the first call, sleeps until the armed deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        # (monotonic deadline, socket fd, its inode: the fd number may be reused once libpq
        # dropped a broken connection, and another socket must never be cut)
        self._armed: tuple[float, int, int] | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextlib.contextmanager
    def watch(self, conn: psycopg.Connection[Any], seconds: float) -> Iterator[None]:
        """Arm for the block: past `seconds`, the connection is cut (a nested block may push
        the deadline later, never earlier; the outermost block disarms it)."""
        with self._cond:
            outer = self._armed
            at = time.monotonic() + seconds
            if outer is not None:  # a call inside a transaction may need longer than its rest
                self._armed = (max(outer[0], at), *outer[1:])
            else:
                fd = conn.pgconn.socket
                self._armed = (at, fd, os.fstat(fd).st_ino)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, daemon=True,
                                                    name="watcher-pg-deadline")  # fmt: skip
                    self._thread.start()
                self._cond.notify()
        try:
            yield
        finally:
            if outer is None:
                with self._cond:
                    self._armed = None
                    self._cond.notify()

    def close(self) -> None:
        """Stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._armed is None:
                    self._cond.wait()
                    continue
                at, fd, inode = self._armed
                left = at - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                _shut(fd, inode)
                self._armed = None


def _shut(fd: int, inode: int) -> None:
    """Shut a socket down (not close it: libpq owns the descriptor and closes it itself)."""
    try:
        if os.fstat(fd).st_ino != inode:
            return  # libpq closed it already and the number went to another file
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already gone


class PostgresStore(Store):
    """Durable state shared by every watcher pointed at one PostgreSQL database."""

    errors: tuple[type[BaseException], ...] = (psycopg.Error,)
    shared = True  # several watchers write their groups here

    def __init__(
        self,
        url: str,
        *,
        password: str | None = None,
        metrics: Metrics | None = None,
        samples_per_group: int = 5,
        redact: Callable[[str], str] = str,
        instance: str = "",
        timeout: float = 10.0,
    ) -> None:
        self._url, self._password, self._timeout = url, password, timeout
        self.instance = instance or socket.gethostname()
        super().__init__(
            masked(url), metrics=metrics, samples_per_group=samples_per_group, redact=redact
        )
        # commits are numbered per instance, the number stored with them: a commit whose
        # outcome was lost with the connection is looked up before the next one adds again
        self._seq: int = self.get_state(COMMIT_SEQ_KEY) or 0
        self._unsure: tuple[int, list[tuple[ErrorGroup, int]]] | None = None

    def _open(self) -> Any:
        try:
            conn = PgConnection(self._url, self._password, self._timeout)
        except psycopg.Error as exc:
            self._count_error("open")
            raise StoreError(f"cannot connect to {self.path}: {_first_line(exc)}") from exc
        try:
            pg_migrate(conn.raw)
        except BaseException:
            conn.close()
            raise
        return conn

    def _transaction(self) -> Any:
        return self._conn.transaction()

    def _scoped(self, name: str) -> str:
        # checkpoints and opaque state (the miner, the rate chart) are each watcher's own
        return f"{self.instance}/{name}"

    _upsert_sql = UPSERT_GROUP_SUMMED

    def _upsert_groups(
        self, conn: Any, groups: Iterable[ErrorGroup], blind: Collection[str] = ()
    ) -> None:
        """Store._upsert_groups, and this watcher's own window buckets of each group (its row
        of group_buckets: the windows every watcher shows are the sum of the rows)."""
        groups = list(groups)
        super()._upsert_groups(conn, groups, blind)
        now = time.time()
        conn.executemany(
            _UPSERT_OWN_BUCKETS,
            [(g.id, self.instance, dumps(g.buckets), now) for g in self._ordered(groups)],
        )

    def _with_buckets(self, groups: list[ErrorGroup]) -> list[ErrorGroup]:
        """Each group's `buckets` made this watcher's own row, `peer_buckets` the others' sum
        (a group no watcher wrote a row for yet, from before the table, keeps its column)."""
        rows: dict[str, list[tuple[str, dict[str, dict[str, int]]]]] = {}
        with self._lock:
            for start in range(0, len(groups), _IN_CHUNK):
                chunk = [g.id for g in groups[start : start + _IN_CHUNK]]
                found = self._conn.execute(
                    "SELECT group_id, instance, buckets FROM group_buckets"
                    f" WHERE group_id IN ({', '.join('?' * len(chunk))})",
                    chunk,
                )
                for gid, instance, buckets in found:
                    rows.setdefault(gid, []).append((instance, json.loads(buckets)))
        for group in groups:
            if group.id not in rows:
                continue
            group.buckets, group.peer_buckets = {}, {}
            for instance, buckets in rows[group.id]:
                if instance == self.instance:
                    group.buckets = buckets
                else:
                    group.peer_buckets = merge_buckets(group.peer_buckets, buckets)
        return groups

    def _ordered(self, groups: Iterable[ErrorGroup]) -> Iterable[ErrorGroup]:
        # one order for every writer: two commits touching the same groups cannot deadlock
        return sorted(groups, key=lambda g: g.id)

    def _group_params(self, group: ErrorGroup, added: bool) -> tuple[Any, ...]:
        # every count written here is a delta (see UPSERT_GROUP_SUMMED)
        return super()._group_params(group, True)

    def commit(
        self,
        groups: Iterable[ErrorGroup] = (),
        samples: dict[str, list[Sample]] | None = None,
        cursors: dict[str, dict[str, Any]] | None = None,
        state: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Store.commit, with each group's count added as a delta (see UPSERT_GROUP_SUMMED).

        Deltas are not idempotent: a commit the server made but whose answer was lost (the
        connection cut at COMMIT) must not be added again by the retry. So each commit carries
        its number, and after a failed one the next commit first reads which number landed."""
        groups = list(groups)
        self._resolve_unsure()
        seq = self._seq + 1
        counted = [(group, group.count) for group in groups]
        try:
            super().commit(groups, samples, cursors, {**(state or {}), COMMIT_SEQ_KEY: seq},
                           **kwargs)  # fmt: skip
        except self.errors:
            self._unsure = (seq, counted)
            raise
        self._seq = seq
        for group, count in counted:
            group.flushed = count

    def _resolve_unsure(self) -> None:
        """After a failed commit: did it land after all? Then its counts are held (raises,
        failing this commit too, while the server cannot say)."""
        if self._unsure is None:
            return
        seq, counted = self._unsure
        if self.get_state(COMMIT_SEQ_KEY) == seq:
            self._seq = seq
            for group, count in counted:
                group.flushed = count
        self._unsure = None

    def upsert_groups(self, groups: Iterable[ErrorGroup]) -> None:
        """Store.upsert_groups, counts added as deltas."""
        groups = list(groups)
        super().upsert_groups(groups)
        _settle(groups)

    def merge_groups(self, survivor: ErrorGroup, merged_id: str, entry: Activity) -> None:
        """Store.merge_groups; the survivor's count added as a delta."""
        super().merge_groups(survivor, merged_id, entry)
        _settle([survivor])

    def get_group(self, group_id: str) -> ErrorGroup | None:
        """Store.get_group; the group returned carries the count the store holds, its own
        window buckets and the other watchers'."""
        group = super().get_group(group_id)
        if group is not None:
            group.flushed = group.count
            self._with_buckets([group])
        return group

    def get_groups(self, group_ids: Collection[str]) -> dict[str, ErrorGroup]:
        """Store.get_groups; each group returned carries the count the store holds, its own
        window buckets and the other watchers'."""
        groups = super().get_groups(group_ids)
        _settle(groups.values())
        self._with_buckets(list(groups.values()))
        return groups

    def list_groups(self, **filters: Any) -> list[ErrorGroup]:
        """Store.list_groups; each group returned carries the count the store holds, its own
        window buckets and the other watchers'."""
        groups = super().list_groups(**filters)
        _settle(groups)
        return self._with_buckets(groups)

    def _error_kind(self, exc: BaseException) -> str:
        return "write"

    def _clock(self, conn: Any) -> float:
        # the server's clock, read in the caller's transaction: every watcher's leases are
        # timed by the one clock they share, whatever their own hosts' clocks say
        return float(conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()[0])

    def check_integrity(self) -> str | None:
        """The server keeps its own pages sound: nothing to check from here."""
        return None

    @property
    def schema_version(self) -> int:
        """The schema version of the database."""
        with self._lock:
            return pg_version(self._conn)

    @_locked
    def migrate(self) -> int:
        """Apply pending migrations (opening already did); the resulting version."""
        return pg_migrate(self._conn.raw)


def _settle(groups: Iterable[ErrorGroup]) -> None:
    for group in groups:
        group.flushed = group.count


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
