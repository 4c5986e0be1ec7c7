"""The miner's memory is bounded by its caps, whatever the lines look like."""

from __future__ import annotations

import random
import tracemalloc

import pytest

from watcher.group import mask, template
from watcher.group.template import Cluster, TemplateMiner


def _unique_wide(n: int, words: int = 60, seed: int = 3) -> list[str]:
    """Messages of random pronounceable words: nothing masks, every one is its own statement."""
    rng = random.Random(seed)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    return [
        " ".join("".join(rng.choices(syllables, k=4)) for _ in range(words)) for _ in range(n)
    ]


def _traced(miner: TemplateMiner, messages: list[str]) -> int:
    for message in messages:
        miner.add(message)
    return tracemalloc.get_traced_memory()[0]


def test_long_unique_lines_do_not_grow_memory_past_the_caps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Memory stops growing once the cluster cap and the caches' character budget are reached.

    Bounded by entry count alone (50k) the caches kept every long unique line, and the evicted
    cluster each entry pointed at, until 50k of them: 200k unique 600-byte lines took 750 MB.
    """
    monkeypatch.setattr(template, "CACHE_CHARS", 300_000)  # ~500 of these 600-char keys
    # the masker's word vocabulary is bounded too (by its own cap: 100k short words)
    monkeypatch.setattr(mask, "CONSTANTS_LIMIT", 2_000)
    monkeypatch.setattr(mask, "_constants", {})
    # ...and so are its results per digit shape (by their own caps: 10k entries or 2 MB a table)
    monkeypatch.setattr(mask, "SHAPES_LIMIT", 2_000)
    monkeypatch.setattr(mask, "SHAPES_BYTES", 200_000)
    for table in ("_line_masked_by_shape", "_line_tokens_by_shape", "_masked_by_shape"):
        monkeypatch.setattr(mask, table, {})
    monkeypatch.setattr(mask, "_part_kind_by_shape", {})
    messages = _unique_wide(6_000)
    miner = TemplateMiner(max_clusters=200)
    tracemalloc.start()
    try:
        warm = _traced(miner, messages[:2_000])
        full = _traced(miner, messages[2_000:])
    finally:
        tracemalloc.stop()
    assert len(miner) == 200
    for cache in (miner._by_message, miner._by_masked):
        assert sum(map(len, cache)) <= template.CACHE_CHARS + 700
    # three times the lines, the same footprint (unbounded, it would be ~3x)
    assert full < warm * 1.3, (warm, full)


def test_an_evicted_cluster_is_reported_whole_then_shed_and_comes_back_with_its_id() -> None:
    reported: list[tuple[str, str, int]] = []

    def on_evict(cluster: Cluster) -> None:
        reported.append((cluster.id, cluster.template, len(cluster.tokens)))

    first, *others = _unique_wide(4, words=8)
    miner = TemplateMiner(max_clusters=2, on_evict=on_evict)
    gone = miner.add(first)
    for message in others:
        miner.add(message)
    assert reported[0] == (gone.id, first, 8)  # the callback saw the cluster intact
    assert gone.evicted and gone.tokens == [] and gone.members == []
    back = miner.add(first)  # still in the caches, which must not hand back the evicted one
    assert back is not gone and not back.evicted
    assert (back.id, back.template, back.size) == (gone.id, first, 1)
    assert miner.resolve(gone.id) is back


def test_shapes_past_the_member_limit_keep_no_tokens() -> None:
    """Only the first MEMBER_LIMIT shapes drive splits; the rest must not each hold a copy."""
    miner = TemplateMiner()
    shapes = [f"job {w} failed on host alpha" for w in _unique_wide(200, words=1)]
    members = [miner.add_member(s) for s in shapes]
    cluster = members[0].cluster
    assert all(m.cluster is cluster for m in members)
    assert len(cluster.members) == template.MEMBER_LIMIT
    assert all(m.tokens for m in cluster.members)
    assert all(m.tokens == () for m in members[template.MEMBER_LIMIT :])
