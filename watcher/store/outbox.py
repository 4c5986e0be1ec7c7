"""The alert outbox: alerts every watcher queues, the leader alone delivers, each once.

A row is one alert for one destination under a dedupe key (several watchers deciding the same
alert queue one row). The leader claims pending rows under its lease fence in one transaction
before it sends them: a deposed leader's claim fails, and a claimed row is never claimed again,
so no alert goes out twice (at most once: a leader that dies between its claim and the POST
loses those alerts). Sent rows are kept `KEEP_S` as the dedupe memory, then pruned.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

KEEP_S = 7 * 86400.0

_QUEUE = (
    "INSERT INTO alert_outbox (key, destination, payload, queued_by, created)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING"
)
_PENDING = (
    "SELECT key, destination, payload FROM alert_outbox WHERE sent_epoch IS NULL"
    " ORDER BY created, key LIMIT ?"
)
_CLAIM = "UPDATE alert_outbox SET sent_epoch = ?, sent_at = ? WHERE key = ? AND sent_epoch IS NULL"
_PRUNE = "DELETE FROM alert_outbox WHERE sent_at < ?"


def queue(conn: Any, now: float, holder: str, rows: Iterable[tuple[str, str, str]]) -> None:
    """Queue (key, destination, payload) rows; a key already queued (by anyone) is skipped."""
    conn.executemany(_QUEUE, [(key, dest, payload, holder, now) for key, dest, payload in rows])


def pending(conn: Any, limit: int) -> list[tuple[str, str, str]]:
    """The oldest rows not sent yet."""
    return [(r[0], r[1], r[2]) for r in conn.execute(_PENDING, (limit,)).fetchall()]


def mark_sent(conn: Any, now: float, epoch: int, rows: list[tuple[str, str, str]]) -> None:
    """Mark `rows` sent at `epoch` (call under the leader's fence); prune old sent rows."""
    conn.executemany(_CLAIM, [(epoch, now, key) for key, _, _ in rows])
    conn.execute(_PRUNE, (now - KEEP_S,))
