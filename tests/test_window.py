"""Sliding windows: bucketed counts per window, bounded memory, trend."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.group.window import SLOTS, Ring, Windows, label_for


def test_counts_per_window() -> None:
    """Events land in every window that covers them and leave it when they age out."""
    w = Windows([60, 300, 3600], ["1m", "5m", "1h"])
    t0 = 1_700_000_000.0
    for i in range(10):
        w.add(t0 + i)  # 10 events in 10 s
    w.add(t0 - 200)  # one event 200 s earlier
    assert w.counts(t0 + 10) == {"1m": 10, "5m": 11, "1h": 11}
    assert w.counts(t0 + 400) == {"1m": 0, "5m": 0, "1h": 11}
    assert w.counts(t0 + 4000) == {"1m": 0, "5m": 0, "1h": 0}


def test_old_events_do_not_corrupt_newer_buckets() -> None:
    """An event older than the ring reaches is ignored, not added to a recycled bucket."""
    r = Ring(60)
    r.add(1000.0)
    r.add(1000.0 - 60 * 10)  # same slot, far older epoch
    assert r.count(1000.0) == 1


def test_memory_is_fixed() -> None:
    """A ring's size does not grow with the number of events."""
    r = Ring(60)
    for i in range(100_000):
        r.add(float(i))
    assert len(r.counts) == SLOTS and len(r.epochs) == SLOTS


def test_trend() -> None:
    """A burst in the last fifth of the hour is rising; silence after activity is falling."""
    w = Windows([60, 3600], ["1m", "1h"])
    now = 100_000.0
    for i in range(20):
        w.add(now - 100 + i)
    assert w.trend(now) == "rising"
    w2 = Windows([60, 3600], ["1m", "1h"])
    for i in range(20):
        w2.add(now - 1000 + i)
    assert w2.trend(now) == "falling"


@given(st.lists(st.floats(min_value=0, max_value=10_000), max_size=200))
def test_window_never_exceeds_total(times: list[float]) -> None:
    """Counts are never negative and never more than the events added."""
    w = Windows([60, 300], ["1m", "5m"])
    for t in sorted(times):
        w.add(t)
    counts = w.counts(max(times, default=0.0))
    assert 0 <= counts["1m"] <= counts["5m"] <= len(times)


def test_labels() -> None:
    """Window lengths get the short labels used in config and metrics."""
    assert [label_for(s) for s in (60, 300, 3600, 86400, 90)] == ["1m", "5m", "1h", "1d", "90s"]


@given(
    st.lists(st.tuples(st.integers(0, 400), st.integers(1, 3)), max_size=60),
    st.lists(st.tuples(st.integers(0, 500), st.integers(0, 120)), min_size=1, max_size=10),
)
def test_a_sparse_ring_counts_as_a_dense_one(
    events: list[tuple[int, int]], queries: list[tuple[int, int]]
) -> None:
    """The dict a ring starts with answers exactly what the arrays would, before and after it
    has taken them (events in any order, old ones included)."""
    sparse, dense = Ring(60), Ring(60, sparse=False)
    for t, n in events:
        sparse.add(1_700_000_000 + t, n)
        dense.add(1_700_000_000 + t, n)
        for now, span in queries:
            at = 1_700_000_000 + now
            assert sparse.count(at) == dense.count(at)
            assert sparse.count(at, span) == dense.count(at, span)
            assert sparse.count_between(at - span, at) == dense.count_between(at - span, at)


def test_a_ring_that_saw_few_buckets_stays_small() -> None:
    """One event per group (a flood of unique messages) must not cost two arrays per window."""
    few, many = Ring(3600), Ring(3600)
    for i in range(5):
        few.add(1_700_000_000.0 + 60 * i)
    for i in range(6):
        many.add(1_700_000_000.0 + 60 * i)
    assert few.sparse is not None and len(few.counts) == 0
    assert many.sparse is None and len(many.counts) == SLOTS
    assert few.count(1_700_000_000.0 + 300) == 5 and many.count(1_700_000_000.0 + 360) == 6


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 8000).map(float) | st.floats(0, 8000), max_size=4),
    st.integers(0, 9000).map(float) | st.floats(0, 9000),
)
def test_windows_made_lazily_count_like_rings_fed_every_event(
    events: list[float], now: float
) -> None:
    """Windows that hold a lone event's time instead of rings (until the second event) give
    the same counts, count per label and trend as rings fed every event."""
    spans, labels = [60.0, 300.0, 3600.0], ["1m", "5m", "1h"]
    lazy = Windows(spans, labels)
    rings = [Ring(span) for span in spans]
    for t in events:
        lazy.add(t)
        for ring in rings:
            ring.add(t)
    eager = Windows(spans, labels)
    eager._rings = rings
    assert lazy.counts(now) == {label: r.count(now) for label, r in zip(labels, rings, strict=True)}
    assert [lazy.count(label, now) for label in labels] == [r.count(now) for r in rings]
    assert lazy.trend(now) == eager.trend(now)


def test_a_lone_event_dumps_like_its_rings_without_making_them() -> None:
    """A group of one event is persisted like any other: its dump equals what the rings would
    hold, and dumping does not make the rings (the memory a flood of unique errors saves)."""
    for t in (0.0, 59.0, 3599.5, 1_700_000_123.25):
        lazy = Windows([60.0, 300.0, 3600.0], ["1m", "5m", "1h"])
        lazy.add(t)
        eager = Windows([60.0, 300.0, 3600.0], ["1m", "5m", "1h"])
        eager.add(t)
        _ = eager.rings  # made, with the lone event fed in
        assert lazy.dump() == eager.dump()
        assert lazy._rings is None
    empty = Windows([60.0], ["1m"])
    assert empty.dump() == {"60": {}} and empty._rings is None


def _summed(ring: Ring, now: float, span: float | None) -> int:
    """Ring.count as a plain sum over every bucket held: what its fast path must equal."""
    newest = int(now // ring.width)
    buckets = SLOTS if span is None else max(1, min(SLOTS, round(span / ring.width)))
    return sum(n for epoch, n in ring._buckets() if newest - buckets < epoch <= newest)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 9000), st.integers(0, 3)), max_size=80),
    st.lists(st.tuples(st.integers(0, 9500), st.none() | st.integers(0, 400)), max_size=8),
    st.booleans(),
)
def test_a_dense_ring_counts_in_c_what_the_plain_sum_counts(
    events: list[tuple[int, int]], queries: list[tuple[int, int | None]], sparse: bool
) -> None:
    """count's fast path (no bucket newer than the span: the old ones left out by a C pass, not
    a generator) counts what summing every bucket does, whatever the order of the events, the
    slots reused, the buckets older than the span and the queries before the newest bucket;
    its `top` is never below a bucket held."""
    ring = Ring(300, sparse=sparse)
    for t, n in events:
        ring.add(1_700_000_000 + t, n)
        # at the event, at the edges of its window and of a shorter span, and anywhere
        edges = [(t, None), (t + 300, None), (t + 295, None), (t + 50, 50), (t + 55, 50)]
        for now, span in [*edges, *queries]:
            at = 1_700_000_000 + now
            assert ring.count(at, span) == _summed(ring, at, span)
        if ring.sparse is None:
            assert ring.top >= max(ring.epochs)
