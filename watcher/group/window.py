"""Sliding-window counts per group in bounded memory: a ring of time buckets per window.

Each window of W seconds keeps SLOTS buckets of W/SLOTS seconds, so a group costs the same
memory whether it saw ten events or ten million. Counts are exact to one bucket's width.
"""

from __future__ import annotations

import typing
from array import array
from collections.abc import Sequence
from itertools import compress, repeat
from operator import gt

SLOTS = 60
# buckets a ring holds in a dict before it takes its arrays (see Ring)
SPARSE = 5
_EMPTY = array("q")


class Ring:
    """Event counts over one window, bucketed; `count(now)` sums the buckets inside it.

    A ring starts sparse, a dict of at most SPARSE buckets, and takes its two arrays of SLOTS
    buckets only when it needs more: most groups of a flood of unique messages see one event,
    and 3 windows of arrays cost 3.3 KB per group, a third of a live group's memory.
    """

    __slots__ = ("counts", "epochs", "sparse", "top", "width")

    def __init__(self, window: float, *, sparse: bool = True) -> None:
        self.width = window / SLOTS
        # epoch -> count, holding what the arrays would (one epoch per slot), or None once dense
        self.sparse: dict[int, int] | None = {} if sparse else None
        self.counts = self.epochs = _EMPTY
        self.top = -1  # no epoch the arrays hold is newer (see count)
        if not sparse:
            self._densify()

    def add(self, t: float, n: int = 1) -> None:
        epoch = int(t // self.width)
        sparse = self.sparse
        if sparse is not None:
            if epoch in sparse:
                sparse[epoch] += n
                return
            for held in sparse:  # the epoch the arrays would hold in this slot
                if held % SLOTS == epoch % SLOTS:
                    if held > epoch:
                        return  # older than the ring reaches
                    del sparse[held]
                    break
            if len(sparse) < SPARSE:
                sparse[epoch] = n
                return
            self._densify()
        slot = epoch % SLOTS
        if self.epochs[slot] != epoch:
            if self.epochs[slot] > epoch:
                return  # older than the ring reaches: outside every window we report
            self.epochs[slot] = epoch
            self.counts[slot] = 0
            if epoch > self.top:
                self.top = epoch
        self.counts[slot] += n

    def _densify(self) -> None:
        self.counts = array("q", [0]) * SLOTS
        self.epochs = array("q", [-1]) * SLOTS
        for epoch, count in (self.sparse or {}).items():
            self.epochs[epoch % SLOTS] = epoch
            self.counts[epoch % SLOTS] = count
        self.top = max(self.sparse or (), default=-1)
        self.sparse = None

    def _buckets(self) -> typing.Iterable[tuple[int, int]]:
        """(epoch, count) of every bucket held."""
        if self.sparse is not None:
            return self.sparse.items()
        return zip(self.epochs, self.counts, strict=True)

    def dump(self) -> dict[str, int]:
        """The non-empty buckets, {epoch: count}, for the store (JSON keys are strings)."""
        return {str(epoch): count for epoch, count in self._buckets() if count and epoch >= 0}

    def restore(self, buckets: dict[str, int]) -> None:
        """Put dumped buckets back (a restart keeps the window's counts)."""
        for epoch, count in sorted((int(e), int(n)) for e, n in buckets.items()):
            self.add(epoch * self.width + self.width / 2, count)

    def count(self, now: float, span: float | None = None) -> int:
        """Events in (now - span, now], span defaulting to the whole window."""
        oldest, newest = _epochs(self.width, now, span)
        if self.sparse is None and self.top <= newest:
            # no bucket is newer than the span (the usual count, at the newest event): only
            # the older ones are left out, in C (the generator below was ~40 % of the cost of
            # counting an event in a group: every event checks its group's alert window)
            return sum(compress(self.counts, map(gt, self.epochs, repeat(oldest, SLOTS))))
        return sum(count for epoch, count in self._buckets() if oldest < epoch <= newest)

    def count_between(self, start: float, end: float) -> int:
        """Events in the buckets (start, end]: used to compare one span with the one before."""
        lo, hi = int(start // self.width), int(end // self.width)
        return sum(count for epoch, count in self._buckets() if lo < epoch <= hi)


def _epochs(width: float, now: float, span: float | None) -> tuple[int, int]:
    """The epochs (oldest, newest] that (now - span, now] covers in buckets of `width`."""
    newest = int(now // width)
    buckets = SLOTS if span is None else max(1, min(SLOTS, round(span / width)))
    return newest - buckets, newest


class WindowSpec:
    """The configured windows, with what every `Windows` of them would otherwise compute again:
    a flood of unique errors makes a `Windows` per event, and its set-up and its dump (the
    store's keys, the bucket widths) were ~10 % of such an event's cost."""

    __slots__ = ("index", "keys", "labels", "lone", "ring_keys", "spans", "widths")

    def __init__(self, spans: Sequence[float], labels: Sequence[str]) -> None:
        self.spans = tuple(spans)
        self.labels = tuple(labels)
        self.keys = tuple(f"{span:g}" for span in self.spans)  # a window's key in a dump
        self.widths = tuple(span / SLOTS for span in self.spans)
        self.index = {label: i for i, label in enumerate(self.labels)}
        # the key a Ring's dump goes under, computed as Windows.dump did from the ring's width
        self.ring_keys = tuple(f"{Ring(span).width * SLOTS:g}" for span in self.spans)
        self.lone = tuple(zip(self.keys, self.widths, strict=True))  # (key, width) per window


class Windows:
    """The counts of one group over every configured window (e.g. 1m, 5m, 1h).

    The rings are made at the second event: most groups of a flood of unique messages see one,
    and its time alone answers every count the rings would.
    """

    __slots__ = ("_first", "_rings", "spec")

    def __init__(self, spans: Sequence[float] | WindowSpec, labels: Sequence[str] = ()) -> None:
        # a table passes its one WindowSpec; spans and labels make one (tests, one-off views)
        self.spec = spans if isinstance(spans, WindowSpec) else WindowSpec(spans, labels)
        self._rings: list[Ring] | None = None
        self._first: float | None = None  # the only event's time, until the rings are made

    @property
    def spans(self) -> tuple[float, ...]:
        return self.spec.spans

    @property
    def labels(self) -> tuple[str, ...]:
        return self.spec.labels

    @property
    def rings(self) -> list[Ring]:
        """One ring per window, made (and fed the lone event) on first use."""
        if self._rings is None:
            self._rings = [Ring(s) for s in self.spec.spans]
            if self._first is not None:
                for ring in self._rings:
                    ring.add(self._first)
        return self._rings

    def add(self, t: float) -> None:
        rings = self._rings
        if rings is None:
            if self._first is None:
                self._first = t
                return
            rings = self.rings
        for ring in rings:
            ring.add(t)

    def dump(self) -> dict[str, dict[str, int]]:
        """Every window's buckets keyed by its span in seconds (see Ring.dump)."""
        if self._rings is None:
            # what the rings would hold, without making them: every new group is persisted, and
            # making its rings here would undo the saving of the lone event
            spec = self.spec
            if self._first is None:
                return {key: {} for key in spec.keys}
            first = self._first
            return {key: {str(int(first // width)): 1} for key, width in spec.lone}
        return {
            key: ring.dump() for key, ring in zip(self.spec.ring_keys, self._rings, strict=True)
        }

    def restore(self, dumped: dict[str, dict[str, int]]) -> None:
        """Put back the buckets of the windows whose span is still configured."""
        for ring in self.rings:
            buckets = dumped.get(f"{ring.width * SLOTS:g}")
            if buckets:
                ring.restore(buckets)

    def counts(self, now: float) -> dict[str, int]:
        return {label: self.count_at(i, now) for i, label in enumerate(self.spec.labels)}

    def count(self, label: str, now: float) -> int:
        return self.count_at(self.spec.index[label], now)

    def count_at(self, i: int, now: float) -> int:
        """The count of the i-th window (of `spec.labels`) at `now`."""
        if self._rings is not None:
            return self._rings[i].count(now)
        if self._first is None:
            return 0
        width = self.spec.widths[i]
        oldest, newest = _epochs(width, now, None)
        return int(oldest < int(self._first // width) <= newest)

    def trend(self, now: float) -> str:
        """rising / falling / flat: the last fifth of the longest window against the one before."""
        if self._rings is None:
            return "flat"  # one event is never 3 in a span
        ring = self._rings[-1]
        span = ring.width * SLOTS / 5
        recent = ring.count_between(now - span, now)
        before = ring.count_between(now - 2 * span, now - span)
        if recent >= 3 and recent >= 2 * max(before, 1):
            return "rising"
        if before >= 3 and recent * 2 <= before:
            return "falling"
        return "flat"


def label_for(seconds: float) -> str:
    """A short label for a window length: 60 -> "1m", 3600 -> "1h", 90 -> "90s"."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
