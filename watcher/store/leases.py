"""Leases with epoch fencing tokens: who does a job that only one watcher may do.

A lease is one row of `leases` (name, holder, epoch, expires_at, acquired, renewed). Every
call is one short transaction on the store's own connection, timed by the DATABASE's clock
(PostgreSQL's `clock_timestamp()`, SQLite's: this host's), so watchers' clocks may disagree.
No session state (advisory locks) is involved, so it works through PgBouncer's transaction
pooling.

The epoch is the fencing token: it grows by one at every new tenure (the lease was free,
expired, released or held by another), never at a renewal, and never goes back (a released
lease keeps its row). A write that only the holder may make checks its `Fence` in the same
transaction (`check_fence`), so a deposed holder's write fails with `LeaseLost` instead of
landing after the next holder's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# the store's SQL dialect: "?" placeholders (PostgresStore translates them); `now` is passed
# in as a parameter, read from the database's clock within the same transaction
_ACQUIRE = (
    "INSERT INTO leases (name, holder, epoch, expires_at, acquired, renewed)"
    " VALUES (?, ?, 1, ?, ?, ?)"
    " ON CONFLICT (name) DO UPDATE SET"
    " epoch = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > ?"
    " THEN leases.epoch ELSE leases.epoch + 1 END,"
    " acquired = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > ?"
    " THEN leases.acquired ELSE excluded.acquired END,"
    " holder = excluded.holder, expires_at = excluded.expires_at, renewed = excluded.renewed"
    " WHERE leases.holder = excluded.holder OR leases.expires_at <= ?"
    " RETURNING epoch"
)
_HELD = "name = ? AND holder = ? AND epoch = ? AND expires_at > ?"
_RENEW = f"UPDATE leases SET expires_at = ?, renewed = ? WHERE {_HELD}"
_RELEASE = f"UPDATE leases SET expires_at = ? WHERE {_HELD}"
# An UPDATE, not a SELECT: it locks the lease row on PostgreSQL until the fenced write commits,
# so a new holder's acquire waits for it (and then sees it) instead of overtaking it.
_FENCE = f"UPDATE leases SET renewed = renewed WHERE {_HELD}"
_LIST = "SELECT name, holder, epoch, expires_at, acquired, renewed FROM leases ORDER BY name"


class LeaseLost(Exception):
    """A fenced write was refused: its lease expired or another holder took it over."""


@dataclass(frozen=True, slots=True)
class Fence:
    """The lease a write is made under: it lands only while `holder` holds `name` at `epoch`."""

    name: str
    holder: str
    epoch: int


@dataclass(frozen=True, slots=True)
class Lease:
    """One lease as the fleet view shows it; times are the database's (epoch seconds)."""

    name: str
    holder: str
    epoch: int
    acquired: float  # when this tenure (this epoch) began
    renewed: float
    expires_at: float
    expires_in: float  # seconds left by the database's clock; <= 0: free to take

    @property
    def held(self) -> bool:
        """Whether the lease is in force (not expired, not released)."""
        return self.expires_in > 0


def acquire(conn: Any, now: float, name: str, holder: str, ttl: float) -> int | None:
    """Take or keep the lease; its epoch, or None while another holder's is in force."""
    row = conn.execute(_ACQUIRE, (name, holder, now + ttl, now, now, now, now, now)).fetchone()
    return None if row is None else int(row[0])


def renew(conn: Any, now: float, name: str, holder: str, epoch: int, ttl: float) -> bool:
    """Extend a lease still held at `epoch`; False when it was lost (expired or taken)."""
    return conn.execute(_RENEW, (now + ttl, now, name, holder, epoch, now)).rowcount == 1


def release(conn: Any, now: float, name: str, holder: str, epoch: int) -> bool:
    """End a tenure now (the row and its epoch stay); False when it was not held anyway."""
    return conn.execute(_RELEASE, (now, name, holder, epoch, now)).rowcount == 1


def check_fence(conn: Any, now: float, fence: Fence) -> None:
    """Raise LeaseLost unless `fence` is in force; call inside the fenced write's transaction."""
    held = conn.execute(_FENCE, (fence.name, fence.holder, fence.epoch, now)).rowcount == 1
    if not held:
        raise LeaseLost(f"lease {fence.name!r} epoch {fence.epoch} is no longer held")


def holders(conn: Any, now: float, prefix: str = "") -> list[Lease]:
    """Every lease whose name starts with `prefix`, held or not, by name."""
    # a handful of rows (one per lease name): filtered here, where LIKE's case rules and
    # escapes do not differ between the two databases
    return [
        Lease(r[0], r[1], int(r[2]), float(r[4]), float(r[5]), float(r[3]), float(r[3]) - now)
        for r in conn.execute(_LIST).fetchall()
        if r[0].startswith(prefix)
    ]
