"""`StateStore`: the one seam between watcher and where its state lives.

The engine, scan, daemon, its view, the CLI and the fix pipeline use only this protocol; the
SQLite `Store` (one host, zero set-up) and `PostgresStore` (several watchers, one state)
implement it. Every method is synchronous and may block on I/O: callers on the event loop go
through `asyncio.to_thread`. `open_store` picks the implementation from a state URL.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Protocol

from watcher.metrics import Metrics
from watcher.model import Activity, ErrorGroup, Fix, Sample
from watcher.store.instances import Instance
from watcher.store.leases import Fence, Lease


class StateStore(Protocol):
    """Groups and their samples, fingerprints, the activity list, fixes, source checkpoints,
    opaque state and counters; each method call is one transaction.

    A group's `count` is written as counted on the object the caller holds (one it created, or
    one the store returned): SQLite stores it as is; PostgreSQL, shared by several watchers,
    adds what the object counted since the store last saw it (`ErrorGroup.flushed`), so every
    watcher's counts add up. Checkpoints and opaque state are each watcher's own.

    Leases (watcher/store/leases.py) decide which one watcher does a job (the leader; the reader
    of a shared source). Every lease call is one short transaction timed by the database's
    clock (PostgreSQL's, not the watcher's), with no session state, so it works through
    PgBouncer's transaction pooling:

    - `acquire_lease(name, holder, ttl) -> int | None`: take the lease for `ttl` seconds, or
      keep it when `holder` already holds it (same epoch, expiry pushed out). The epoch is the
      fencing token: +1 at every new tenure (the lease was free, expired, released or someone
      else's), never at a renewal, never back. None while another holder's lease is in force.
    - `renew_lease(name, holder, epoch, ttl) -> bool`: push the expiry out to now + ttl; False
      once it was lost (it expired, or another holder took it): stop acting as its holder and
      call acquire_lease again (a new epoch).
    - `release_lease(name, holder, epoch) -> bool`: end the tenure now (at shutdown) so another
      can take over at once; the row and its epoch stay.
    - `lease_holders(prefix="") -> list[Lease]`: every lease whose name starts with `prefix`,
      held or not (`Lease.held`, `expires_in` by the database's clock), for the fleet view.
    - A write only the holder may make takes `fence=Fence(name, holder, epoch)` and raises
      `LeaseLost` (writing nothing) unless that lease is still in force at that epoch; the
      check runs in the write's own transaction and locks the lease row, so a new holder's
      acquire cannot overtake a fenced write in flight (`save_fix` here; backends call
      `leases.check_fence(conn, self._clock(conn), fence)` inside `self._write()`).

    A holder renews well inside the ttl (watcher's leader: every ttl/3) and stops acting as the
    holder `ttl` after the start of its last successful renewal by its own monotonic clock,
    which is never later than the database's expiry.
    """

    path: str  # where the state is, as logs may show it (a file path, or a URL without password)
    metrics: Metrics | None
    samples_per_group: int
    degraded: str | None  # why the configured state is not in use (in-memory fallback)
    recovered: str | None  # a damaged state was set aside at open: why
    salvaged: dict[str, int]
    damaged: str | None  # the last integrity check failed: why
    # the backend's own exception types (it counts them in watcher_state_errors_total itself)
    errors: tuple[type[BaseException], ...]
    # other watchers write it too: a group id this one never wrote nor saw at start may be
    # stored (the engine's filter of known ids cannot rule a read out)
    shared: bool

    @property
    def schema_version(self) -> int: ...

    def migrate(self) -> int: ...
    def close(self) -> None: ...
    def check_integrity(self) -> str | None: ...
    def __enter__(self) -> StateStore: ...
    def __exit__(self, *exc_info: object) -> None: ...

    def upsert_groups(self, groups: Iterable[ErrorGroup]) -> None: ...
    def add_samples(self, group_id: str, samples: Iterable[Sample]) -> None: ...
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
    ) -> None: ...
    def get_group(self, group_id: str) -> ErrorGroup | None: ...
    def get_groups(self, group_ids: Collection[str]) -> dict[str, ErrorGroup]: ...
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
    ) -> list[ErrorGroup]: ...
    def count_groups(self) -> int: ...
    def each_group_id(self, visit: Callable[[str], None]) -> None: ...
    def set_group_status(self, group_id: str, status: str) -> None: ...

    def fingerprints(self, group_id: str | None = None) -> list[tuple[str, str, int]]: ...
    def legacy_fingerprints(self, current: int) -> dict[str, str]: ...
    def merge_groups(self, survivor: ErrorGroup, merged_id: str, entry: Activity) -> None: ...
    def split_fingerprint(self, fingerprint: str, entry: Activity) -> None: ...
    def list_activity(
        self, *, group_id: str | None = None, after: int = 0, limit: int = 100
    ) -> list[Activity]: ...

    def get_checkpoint(self, source: str, *, fleet: bool = False) -> dict[str, Any]: ...
    def set_checkpoints(self, source: str, cursors: dict[str, Any]) -> None: ...
    def get_state(self, key: str) -> Any | None: ...
    def set_state(self, key: str, value: Any) -> None: ...

    def save_fix(self, fix: Fix, *, fence: Fence | None = None) -> None: ...
    def get_fix(self, fix_id: str) -> Fix | None: ...
    def list_fixes(
        self, *, group_id: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Fix]: ...
    def fixes_since(self, since: float) -> int: ...

    def acquire_lease(self, name: str, holder: str, ttl: float) -> int | None: ...
    def renew_lease(self, name: str, holder: str, epoch: int, ttl: float) -> bool: ...
    def release_lease(self, name: str, holder: str, epoch: int) -> bool: ...
    def lease_holders(self, prefix: str = "") -> list[Lease]: ...

    # the alert outbox (watcher/store/outbox.py): every watcher queues, the leader claims
    def queue_alerts(self, holder: str, rows: Iterable[tuple[str, str, str]]) -> None: ...
    def claim_alerts(self, fence: Fence, limit: int = 500) -> list[tuple[str, str, str]]: ...

    def add_counters(self, counts: dict[str, int]) -> None: ...
    def get_counters(self) -> dict[str, int]: ...

    # the instances table (watcher/store/instances.py): names claimed, heartbeats
    def get_instance(self, name: str) -> Instance | None: ...
    def list_instances(self) -> list[Instance]: ...
    def claim_instance(self, me: Instance, replaces: str | None, forget_before: float) -> bool: ...
    def beat(
        self, name: str, run_id: str, at: float, sources: tuple[str, ...], leader: bool | None
    ) -> bool: ...
    def instance_stopped(self, name: str, run_id: str, at: float) -> None: ...
