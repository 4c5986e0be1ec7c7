"""CloudWatch events -> RawLines, and the follow-mode bookkeeping. Pure: no boto3, no asyncio.

Streams are `"{log group}/{log stream}"`. Each stream's cursor is `{"ts": ms, "ids": [...]}`:
the newest event timestamp delivered on that stream and the ids of its events at exactly that
millisecond (usually one). Loggers with coarse clocks put hundreds of events on one millisecond,
so only the last MAX_CURSOR_IDS ids are kept, plus `"n"`, how many events of the stream were
delivered at that millisecond: FilterLogEvents returns them in a fixed order (timestamp,
ingestion time, request), so "the first n - len(ids) of them" names the ones whose ids were
dropped.

Resuming. The pipeline commits, per stream, the cursor of the last line it fully processed, and
it holds back every later cursor (of any stream of the source) while an earlier record is still
being assembled; events are delivered in timestamp order per log group (FilterLogEvents sorts
them). So the newest committed timestamp of a group means everything before it was processed,
except events that arrived late — and those the overlap window re-reads. A group therefore
resumes at `max(ts over its streams) - overlap`, and each stream's committed cursor is its
"floor": an event of that stream older than the floor, or at it and named by the cursor, was
processed and is dropped as a duplicate. The minimum over streams would be wrong in the other
direction: Lambda starts a log stream per container and abandons it when the container goes, so
the oldest committed stream would hold a group back by hours and re-read all of it.

Inside a run, de-duplication is by event id: ids are kept only for events inside the overlap
window behind the poll position, so memory is bounded by the event rate times the overlap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from watcher.model import RawLine
from watcher.sources.lambda_lines import normalise, split_message
from watcher.sources.lines import MAX_BATCH, cap_bytes

# Ids kept per cursor for one millisecond of one stream (the rest are counted in "n").
MAX_CURSOR_IDS = 16
# A stream idle this long (behind the poll position) forgets its cursor state and line numbers.
STREAM_IDLE_MS = 3600_000


@dataclass(frozen=True, slots=True)
class Floor:
    """A stream's committed position: events before `ts` are done, and at `ts` the first `n`
    (the last of them named in `ids`)."""

    ts: int
    ids: frozenset[str]
    n: int

    def covers(self, ts: int, ordinal: int, idents: Iterable[str]) -> bool:
        """True when the stream's event at `ts` (the `ordinal`-th at that millisecond in this
        read, known by any of `idents`) was processed before the restart."""
        if ts != self.ts:
            return ts < self.ts
        return ordinal < self.n - len(self.ids) or any(i in self.ids for i in idents)


def content_key(stream: str, ts: int, message: str) -> str:
    """An event's id from its content, for events without an eventId (Live Tail results)."""
    digest = hashlib.blake2b(message.encode("utf-8", "replace"), digest_size=8)
    digest.update(f"\0{stream}\0{ts}".encode("utf-8", "replace"))
    return "k" + digest.hexdigest()


def stream_key(group: str, stream: str) -> str:
    """The RawLine stream of a log stream: unique across the source's groups."""
    return f"{group}/{stream}"


def read_checkpoint(checkpoint: Any, groups: Iterable[str]) -> dict[str, dict[str, Floor]]:
    """Floors by group, from a checkpoint {stream key: cursor}; unreadable cursors are skipped.

    Group and stream names may both contain "/", so a key belongs to the longest group name it
    starts with.
    """
    names = sorted(groups, key=len, reverse=True)
    out: dict[str, dict[str, Floor]] = {name: {} for name in names}
    if not isinstance(checkpoint, Mapping):
        return out
    for key, cursor in checkpoint.items():
        floor = _floor(cursor)
        group = next((g for g in names if isinstance(key, str) and key.startswith(g + "/")), None)
        if floor is not None and group is not None:
            out[group][key] = floor
    return out


def _floor(cursor: Any) -> Floor | None:
    if not isinstance(cursor, Mapping):
        return None
    ts, ids = cursor.get("ts"), cursor.get("ids", [])
    if not isinstance(ts, int) or isinstance(ts, bool) or not isinstance(ids, list):
        return None
    names = frozenset(i for i in ids if isinstance(i, str))
    n = cursor.get("n", len(names))
    if not isinstance(n, int) or isinstance(n, bool) or n < len(names):
        n = len(names)
    return Floor(ts, names, n)


def resume_start(floors: Mapping[str, Floor], overlap_ms: int) -> int | None:
    """Where a group resumes: its newest committed timestamp minus the overlap (None: no floor)."""
    if not floors:
        return None
    return max(floor.ts for floor in floors.values()) - overlap_ms


@dataclass(frozen=True, slots=True)
class Resume:
    """The rest of a follow query an error interrupted: FilterLogEvents honours a next token
    only with the parameters of the query that issued it, so its window is kept with it."""

    start: int
    end: int
    token: str


class GroupTail:
    """One log group in follow mode: where the next poll starts, and what it already delivered.

    `start` only moves forward: to `last page timestamp - overlap` as pages arrive (events come
    sorted by timestamp, so everything before a page's last event was delivered), and to
    `poll end - overlap` when a poll completes. A query interrupted by an error leaves `resume`,
    its next token, so the next attempt goes on after the pages it delivered; when that token is
    refused the query restarts from `start`, and the ids kept since then drop what it re-reads.
    """

    __slots__ = ("floors", "group", "missing", "ordinals", "overlap", "resume", "seen", "start")

    def __init__(
        self, group: str, start: int, overlap_ms: int, floors: dict[str, Floor] | None = None
    ) -> None:
        self.group = group
        self.start = start
        self.overlap = overlap_ms
        self.seen: dict[str, int] = {}  # event id -> timestamp, for ids at or after `start`
        self.floors = floors or {}
        self.ordinals: dict[str, int] = {}  # per floor stream: events at its ts in this read
        self.missing = False
        self.resume: Resume | None = None

    def begin_read(self) -> None:
        """A new query starts: events at a floor's millisecond are counted from zero again."""
        self.ordinals.clear()

    def is_new(
        self, ident: str, stream: str, ts: int, message: str, event_id: str | None = None
    ) -> bool:
        """Record the event and say whether it is new (not seen, not under its stream's floor).

        `ident` is the event id in poll mode and content_key() in live mode (Live Tail results
        carry no event id); a floor written in the other mode holds the other kind, so at the
        floor's exact millisecond both are tried.
        """
        floor = self.floors.get(stream)
        if (
            floor is not None
            and ts <= floor.ts
            and self._under(floor, ident, stream, ts, message, event_id)
        ):
            return False
        if ident in self.seen:
            return False
        self.seen[ident] = ts
        return True

    def _under(
        self, floor: Floor, ident: str, stream: str, ts: int, message: str, event_id: str | None
    ) -> bool:
        if ts < floor.ts:
            return True
        ordinal = self.ordinals.get(stream, 0)
        self.ordinals[stream] = ordinal + 1
        idents = [ident, content_key(stream, ts, message)]
        if event_id is not None:
            idents.append(event_id)
        return floor.covers(ts, ordinal, idents)

    def advance(self, ts: int) -> None:
        """Everything up to `ts` was delivered: re-read only the overlap behind it from now on."""
        start = ts - self.overlap
        if start <= self.start:
            return
        self.start = start
        self.seen = {ident: t for ident, t in self.seen.items() if t >= start}
        if self.floors:
            # a floor below every event still to come can no longer match anything
            self.floors = {s: f for s, f in self.floors.items() if f.ts >= start}


@dataclass(slots=True)
class _Stream:
    ts: int | None
    ids: list[str]
    n: int = 0  # events delivered at `ts`
    line_no: int = 0


class LineMaker:
    """Turns events into RawLines: Lambda shapes normalised, lines capped, cursors per stream."""

    def __init__(self, source: str, max_line_bytes: int) -> None:
        self.source = source
        self.cap = max(1, max_line_bytes)
        self.streams: dict[str, _Stream] = {}
        self.truncated = 0  # lines cut to the cap since the last take_truncated()

    def seed(self, floors: Mapping[str, Floor]) -> None:
        """Continue the committed cursors, so a restart's first cursors extend them."""
        for stream, floor in floors.items():
            self.streams.setdefault(stream, _Stream(floor.ts, sorted(floor.ids), floor.n))

    def make(self, stream: str, ts: int, ident: str, message: str) -> list[RawLine]:
        """The lines of one event of `stream` (a stream key); at least one, even when empty.

        Every line but the last carries the stream's cursor from *before* the event and the last
        line the one after it: should the pipeline commit part of an event (its first lines
        closed a record of their own), a restart delivers the whole event again rather than
        skipping its tail.
        """
        state = self.streams.get(stream)
        if state is None:
            state = self.streams[stream] = _Stream(None, [])
        before = _cursor(state.ts if state.ts is not None else ts, state.ids, state.n)
        _advance(state, ts, ident)
        after = _cursor(state.ts, state.ids, state.n)  # type: ignore[arg-type]
        norm = normalise(message)
        texts = norm.texts
        first_no = state.line_no + 1
        state.line_no += len(texts)
        timestamp = ts / 1000
        last = len(texts) - 1
        out = []
        for i, text in enumerate(texts):
            line = RawLine(
                text, self.source, stream, after if i == last else before, first_no + i, timestamp
            )
            if len(text) * 4 > self.cap and len(encoded := text.encode()) > self.cap:
                line.text = cap_bytes(encoded, self.cap).decode("utf-8", "replace")
                line.truncated = True
                self.truncated += 1
            out.append(line)
        if norm.fields:
            out[0].fields = norm.fields
        return out

    def take_truncated(self) -> int:
        """Lines truncated since the last call."""
        count, self.truncated = self.truncated, 0
        return count

    def forget_idle(self, before_ts: int) -> None:
        """Drop the state of streams with no event since `before_ts - STREAM_IDLE_MS`."""
        limit = before_ts - STREAM_IDLE_MS
        idle = [key for key, s in self.streams.items() if s.ts is not None and s.ts < limit]
        for key in idle:
            del self.streams[key]


def _advance(state: _Stream, ts: int, ident: str) -> None:
    """Move a stream's cursor past an event; an older (late) event leaves it where it is."""
    if state.ts is None or ts > state.ts:
        state.ts, state.ids, state.n = ts, [ident], 1
    elif ts == state.ts:
        # a new list: cursors already handed out share the old one
        state.ids = [*state.ids[-(MAX_CURSOR_IDS - 1) :], ident]
        state.n += 1


def _cursor(ts: int, ids: list[str], n: int) -> dict[str, Any]:
    if n > len(ids):
        return {"ts": ts, "ids": ids, "n": n}
    return {"ts": ts, "ids": ids}


def line_count(message: str) -> int:
    """How many lines an event makes (for counting duplicates without building them)."""
    return len(split_message(message))


def chunks(lines: list[RawLine]) -> list[list[RawLine]]:
    """`lines` in batches of at most MAX_BATCH."""
    return [lines[i : i + MAX_BATCH] for i in range(0, len(lines), MAX_BATCH)]
