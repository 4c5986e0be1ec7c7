"""Loki entries -> RawLines: de-duplication, per-stream cursors, line caps.

Identity of an entry is (labels, ns timestamp, line); Loki itself stores one copy of such a
triple, so two deliveries of it are one entry. Three things can deliver an entry twice, and each
has its own bounded filter:

- a restart re-reads from the checkpoint: `Floor` drops what the committed cursors cover;
- a reconnect backfills from a little before the newest entry seen while the tail and the
  earlier backfill already delivered some of it: `Recent` remembers identities of the last
  `horizon` nanoseconds only, which is exactly the overlap a backfill can re-read;
- query_range pages overlap at their boundary timestamp: the paginator drops those itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from watcher.model import RawLine
from watcher.sources.lines import cap_bytes
from watcher.sources.loki_api import Entry

Cursor = dict[str, Any]
# Idents kept in a cursor for entries sharing one ns timestamp: a cursor stays small; past this
# many same-ns lines a restart may deliver some of them again (at-least-once, never lost).
MAX_SEEN = 64
NS = 1_000_000_000


def _parse_cursor(cursor: Any) -> tuple[int, frozenset[str]] | None:
    """(ns, seen idents) from a stored cursor, or None when it is not one of ours."""
    if not isinstance(cursor, dict):
        return None
    try:
        ns = int(cursor["ns"])
    except (KeyError, TypeError, ValueError):
        return None
    seen = cursor.get("seen")
    if not isinstance(seen, list):
        return ns, frozenset()
    return ns, frozenset(s for s in seen if isinstance(s, str))


class Floor:
    """The committed cursors a restarted source must not deliver again (per stream)."""

    def __init__(self, checkpoint: Mapping[str, Any] | None) -> None:
        self.cursors: dict[str, tuple[int, frozenset[str]]] = {}
        for stream, cursor in (checkpoint or {}).items():
            parsed = _parse_cursor(cursor)
            if parsed is not None:
                self.cursors[stream] = parsed

    def resume_ns(self, horizon_ns: int) -> int | None:
        """Where to re-read from: the oldest cursor among those near the newest one.

        Streams are committed independently, so a quiet stream's cursor can be far older than a
        busy one's. Starting at the newest cursor would lose a quiet stream's entries that
        arrived late (after the busy stream's newer ones); starting at the oldest would re-read
        days for a stream that simply stopped logging. Cursors within `horizon_ns` of the newest
        decide; older ones still filter their own stream.
        """
        if not self.cursors:
            return None
        newest = max(ns for ns, _ in self.cursors.values())
        return min(ns for ns, _ in self.cursors.values() if ns >= newest - horizon_ns)

    def covers(self, entry: Entry) -> bool:
        """True when the committed cursor of the entry's stream already covers it."""
        cursor = self.cursors.get(entry.stream)
        if cursor is None:
            return False
        ns, seen = cursor
        return entry.ns < ns or (entry.ns == ns and entry.ident.hex() in seen)


class Recent:
    """Identities of the entries of the last `horizon_ns` before the newest: bounded memory."""

    def __init__(self, horizon_ns: int, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.horizon_ns = horizon_ns
        self.clock_ns = clock_ns
        self.newest: int | None = None
        self._by_ns: dict[int, set[bytes]] = {}
        self._prune_at = 1024

    def add(self, entry: Entry) -> bool:
        """Remember the entry; False when it was already there (a duplicate)."""
        ns = entry.ns
        newest = self.newest
        if newest is None or ns > newest:
            # one producer with its clock hours ahead must not move "newest" there: the window
            # (and where a reconnect re-reads from) would leave every honest entry behind
            self.newest = newest = min(ns, self.clock_ns() + self.horizon_ns)
        elif ns < newest - self.horizon_ns:
            # older than any backfill re-reads: it can only come once (a late tail entry)
            return True
        idents = self._by_ns.get(ns)
        if idents is None:
            self._by_ns[ns] = idents = set()
        elif entry.ident in idents:
            return False
        idents.add(entry.ident)
        if len(self._by_ns) >= self._prune_at:
            self._prune()
        return True

    def seen(self, entry: Entry) -> bool:
        """True when this entry was added (and is still within the horizon)."""
        return entry.ident in self._by_ns.get(entry.ns, ())

    def _prune(self) -> None:
        assert self.newest is not None
        oldest = self.newest - self.horizon_ns
        self._by_ns = {ns: ids for ns, ids in self._by_ns.items() if ns >= oldest}
        self._prune_at = max(1024, 2 * len(self._by_ns))

    def __len__(self) -> int:
        return sum(map(len, self._by_ns.values()))


class _StreamCursor:
    """The cursor of the last entry delivered from one stream."""

    __slots__ = ("cursor", "ns", "seen")

    def __init__(self) -> None:
        self.ns = -1
        self.seen: list[str] = []
        self.cursor: Cursor | None = None

    def advance(self, ns: int, ident: str) -> Cursor:
        """The cursor after this entry; never moves back for an out-of-order entry."""
        if ns > self.ns:
            self.ns, self.seen = ns, [ident]
        elif ns == self.ns and len(self.seen) < MAX_SEEN:
            self.seen.append(ident)
        elif self.cursor is not None:
            return self.cursor  # older (out of order): the newer cursor already covers it
        self.cursor = {"ns": str(self.ns), "seen": list(self.seen)}
        return self.cursor


class Intake:
    """Turns entries into RawLines for one source: filters, cursors, line numbers, caps."""

    def __init__(
        self,
        source: str,
        max_line_bytes: int,
        *,
        floor: Floor | None = None,
        recent: Recent | None = None,
    ) -> None:
        self.source = source
        self.cap = max(1, max_line_bytes)
        self.floor = floor
        self.recent = recent
        self.line_no = 0  # one sequence for the whole source: it rises in every stream too
        self.duplicates = 0  # since the last take_counts()
        self.truncated = 0
        self._streams: dict[str, _StreamCursor] = {}

    def accept(self, entries: Iterable[Entry]) -> list[RawLine]:
        """The RawLines of the entries not delivered before, in order."""
        out: list[RawLine] = []
        floor, recent = self.floor, self.recent
        for entry in entries:
            if (floor is not None and floor.covers(entry)) or (
                recent is not None and not recent.add(entry)
            ):
                self.duplicates += 1
                continue
            self._append(entry, out)
        return out

    def delivered(self, entry: Entry) -> bool:
        """True when this entry was delivered before (by a checkpoint or this run)."""
        covered = self.floor is not None and self.floor.covers(entry)
        return covered or (self.recent is not None and self.recent.seen(entry))

    def take_counts(self) -> tuple[int, int]:
        """(duplicates dropped, lines truncated) since the last call."""
        counts = (self.duplicates, self.truncated)
        self.duplicates = self.truncated = 0
        return counts

    def _append(self, entry: Entry, out: list[RawLine]) -> None:
        state = self._streams.get(entry.stream)
        if state is None:
            self._streams[entry.stream] = state = _StreamCursor()
        before = state.cursor
        cursor = state.advance(entry.ns, entry.ident.hex())
        text = entry.line
        if text.endswith("\n"):
            text = text[:-1]
        ts = entry.ns / NS
        # An entry may hold several physical lines (a trace joined by the shipper); assembly
        # works on lines, so split it. Only the last line carries the entry's cursor: a commit
        # in the middle then resumes before the entry, never after half of it.
        parts = text.split("\n") if "\n" in text else (text,)
        last = len(parts) - 1
        for i, part in enumerate(parts):
            self.line_no += 1
            line = RawLine(
                part[:-1] if part.endswith("\r") else part,
                self.source,
                entry.stream,
                cursor if i == last else before,
                self.line_no,
                ts,
                entry.fields,
            )
            # a character is at most 4 UTF-8 bytes: short lines skip the encode
            if len(line.text) * 4 > self.cap:
                self._cap(line)
            out.append(line)

    def _cap(self, line: RawLine) -> None:
        data = line.text.encode("utf-8", "surrogatepass")
        if len(data) > self.cap:
            line.text = cap_bytes(data, self.cap).decode("utf-8", "replace")
            line.truncated = True
            self.truncated += 1
