"""Sliding-window counts per group in bounded memory: a ring of time buckets per window.

Each window of W seconds keeps SLOTS buckets of W/SLOTS seconds, so a group costs the same
memory whether it saw ten events or ten million. Counts are exact to one bucket's width.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

SLOTS = 60


class Ring:
    """Event counts over one window, bucketed; `count(now)` sums the buckets inside it."""

    __slots__ = ("counts", "epochs", "width")

    def __init__(self, window: float) -> None:
        self.width = window / SLOTS
        self.counts = array("q", [0]) * SLOTS
        self.epochs = array("q", [-1]) * SLOTS

    def add(self, t: float, n: int = 1) -> None:
        epoch = int(t // self.width)
        slot = epoch % SLOTS
        if self.epochs[slot] != epoch:
            if self.epochs[slot] > epoch:
                return  # older than the ring reaches: outside every window we report
            self.epochs[slot] = epoch
            self.counts[slot] = 0
        self.counts[slot] += n

    def count(self, now: float, span: float | None = None) -> int:
        """Events in (now - span, now], span defaulting to the whole window."""
        newest = int(now // self.width)
        buckets = SLOTS if span is None else max(1, min(SLOTS, round(span / self.width)))
        oldest = newest - buckets
        total = 0
        for slot in range(SLOTS):
            if oldest < self.epochs[slot] <= newest:
                total += self.counts[slot]
        return total

    def count_between(self, start: float, end: float) -> int:
        """Events in the buckets (start, end]: used to compare one span with the one before."""
        lo, hi = int(start // self.width), int(end // self.width)
        return sum(self.counts[slot] for slot in range(SLOTS) if lo < self.epochs[slot] <= hi)


class Windows:
    """The counts of one group over every configured window (e.g. 1m, 5m, 1h)."""

    __slots__ = ("labels", "rings")

    def __init__(self, spans: Sequence[float], labels: Sequence[str]) -> None:
        self.rings = [Ring(s) for s in spans]
        self.labels = tuple(labels)

    def add(self, t: float) -> None:
        for ring in self.rings:
            ring.add(t)

    def counts(self, now: float) -> dict[str, int]:
        return {label: ring.count(now) for label, ring in zip(self.labels, self.rings, strict=True)}

    def count(self, label: str, now: float) -> int:
        return self.rings[self.labels.index(label)].count(now)

    def trend(self, now: float) -> str:
        """rising / falling / flat: the last fifth of the longest window against the one before."""
        ring = self.rings[-1]
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
