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

import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import psycopg

from watcher.metrics import Metrics
from watcher.model import Activity, ErrorGroup, Sample
from watcher.store.pg_schema import pg_migrate, pg_version
from watcher.store.rows import GROUP_COLUMNS, UPSERT_GROUP, group_params
from watcher.store.schema import StoreError
from watcher.store.store import Store, _locked
from watcher.store.url import masked

_PLACEHOLDER = re.compile(r"\?")
_COUNT = [c.strip() for c in GROUP_COLUMNS.split(",")].index("count")
# Several watchers write one group: each adds what it counted since its last flush (in the
# same transaction as its cursors), the seen times widen; the other columns: last writer wins.
UPSERT_GROUP_SUMMED = (
    UPSERT_GROUP.replace("count = excluded.count", "count = groups.count + excluded.count")
    .replace("first_seen = excluded.first_seen", "first_seen = LEAST(groups.first_seen,"
             " excluded.first_seen)")
    .replace("last_seen = excluded.last_seen", "last_seen = GREATEST(groups.last_seen,"
             " excluded.last_seen)")
)  # fmt: skip
COMMIT_SEQ_KEY = "commit_seq"  # a state key (per instance): the number of its last commit
CONNECT_TIMEOUT_S = 5
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
    transaction, close; reconnects when the connection broke."""

    def __init__(self, url: str, password: str | None) -> None:
        self._url, self._password = url, password
        self._retry_at, self._backoff = 0.0, RECONNECT_MIN_S
        self._conn = self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        extra = {} if self._password is None else {"password": self._password}
        return psycopg.connect(
            self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, **extra
        )

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
        cursor = self._live().cursor(row_factory=_row_factory)
        cursor.execute(_pg(sql), tuple(params) or None)
        return cursor

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for each parameter row (pipelined by psycopg)."""
        rows = list(rows)
        if rows:
            with self._live().cursor() as cursor:
                cursor.executemany(_pg(sql), rows)

    def transaction(self) -> Any:
        """BEGIN … COMMIT (ROLLBACK when the body raises)."""
        return self._live().transaction()

    def close(self) -> None:
        """Close the connection (it is not reopened)."""
        self._closed_by_us = True
        self._conn.close()


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
    ) -> None:
        self._url, self._password = url, password
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
            conn = PgConnection(self._url, self._password)
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

    def _group_rows(self, groups: Iterable[ErrorGroup]) -> tuple[str, list[tuple[Any, ...]]]:
        rows = []
        # one order for every writer: two commits touching the same groups cannot deadlock
        for group in sorted(groups, key=lambda g: g.id):
            params = list(group_params(group, self.redact))
            params[_COUNT] = group.count - group.flushed
            rows.append(tuple(params))
        return UPSERT_GROUP_SUMMED, rows

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
        """Store.get_group; the group returned carries the count the store holds."""
        group = super().get_group(group_id)
        if group is not None:
            group.flushed = group.count
        return group

    def list_groups(self, **filters: Any) -> list[ErrorGroup]:
        """Store.list_groups; each group returned carries the count the store holds."""
        groups = super().list_groups(**filters)
        _settle(groups)
        return groups

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
