"""De-duplicating Railway's replays by (timestamp, entry hash), and the cursor that records it.

Every (re)subscribe replays up to 500 recent lines, so a restarted CLI prints lines already
delivered. The CLI's own rule (`timestamp <= last` is old) would also drop a *new* line that
shares the last timestamp, one that arrives slightly out of order, and, worst, the first lines
of a new deployment, which started (and logged) while the old one was still running. Here an
entry is new when its hash was not seen at its timestamp. Memory stays bounded by keeping the
hashes of the newest `max_hashes` entries (many times one replay), and anything older than what
is kept counts as a replay.

Cursor: {"ts": newest timestamp as printed, "h": [hashes of the entries seen at it]}. A daemon
restarted from it skips entries before "ts" and the listed ones at it: best-effort delivery (a
new deployment's lines from before the checkpoint are skipped too).
"""

from __future__ import annotations

import heapq
from typing import Any

from watcher.sources.railway_entry import timestamp_ns

# 20 replays' worth; ~100 bytes each, so about 1 MB.
DEFAULT_MAX_HASHES = 10_000
# Hashes carried in one cursor: keeps the checkpoint small even for a burst at one instant.
CURSOR_HASHES = 200


class Deduper:
    """Decides, entry by entry, whether a (timestamp, hash) was already delivered."""

    def __init__(self, *, max_hashes: int = DEFAULT_MAX_HASHES) -> None:
        self.max_hashes = max_hashes
        self.floor: int | None = None  # entries before this instant are replays
        self.last_ns: int | None = None
        self.last_ts: str | None = None
        self._last_hashes: list[str] = []  # at last_ns, in arrival order
        self._seen: dict[int, set[str]] = {}
        self._order: list[int] = []  # heap of the keys of _seen
        self._count = 0
        self._cursor: dict[str, Any] | None = None

    @classmethod
    def resume(cls, cursor: Any, **kwargs: Any) -> Deduper:
        """A deduper that treats everything up to a committed cursor as delivered."""
        dedupe = cls(**kwargs)
        if not valid_cursor(cursor):
            return dedupe
        ns = timestamp_ns(cursor["ts"])
        assert ns is not None  # valid_cursor checked it
        dedupe.floor = dedupe.last_ns = ns
        dedupe.last_ts = cursor["ts"]
        dedupe._last_hashes = list(cursor["h"])
        dedupe._seen[ns] = set(cursor["h"])
        dedupe._order.append(ns)
        dedupe._count = len(dedupe._seen[ns])
        return dedupe

    @property
    def cursor(self) -> dict[str, Any] | None:
        """The cursor after the entries admitted so far (None before the first one)."""
        if self._cursor is None and self.last_ts is not None:
            self._cursor = {"ts": self.last_ts, "h": self._last_hashes[-CURSOR_HASHES:]}
        return self._cursor

    def admit(self, ns: int, timestamp: str, digest: str) -> bool:
        """True (and remembered) when the entry is new; False for a replay."""
        if self.floor is not None and ns < self.floor:
            return False
        bucket = self._seen.get(ns)
        if bucket is None:
            bucket = self._seen[ns] = set()
            heapq.heappush(self._order, ns)
        elif digest in bucket:
            return False
        bucket.add(digest)
        self._count += 1
        if self.last_ns is None or ns > self.last_ns:
            self.last_ns, self.last_ts, self._last_hashes = ns, timestamp, [digest]
            self._cursor = None
        elif ns == self.last_ns:
            self._last_hashes.append(digest)
            self._cursor = None
        self._evict()
        return True

    def _evict(self) -> None:
        """Forget the oldest timestamps while over the cap; raise the floor past them."""
        order = self._order
        while self._count > self.max_hashes and order[0] != self.last_ns:
            ns = heapq.heappop(order)
            self._count -= len(self._seen.pop(ns))
            self.floor = ns + 1 if self.floor is None else max(self.floor, ns + 1)


def valid_cursor(cursor: Any) -> bool:
    """True for a cursor this module wrote: {"ts": RFC3339 str, "h": [str, …]}."""
    if not isinstance(cursor, dict) or not isinstance(cursor.get("ts"), str):
        return False
    hashes = cursor.get("h")
    if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
        return False
    return timestamp_ns(cursor["ts"]) is not None
