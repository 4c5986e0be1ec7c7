"""The template miner's positional index (issue 15) changes how fast a message finds its
cluster, never which cluster: the miner gives the same clusters, ids and templates as the linear
scan before it, and `watcher templates` the same bytes as the masker and miner before it."""

from __future__ import annotations

import io
import random
import typing
from pathlib import Path
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from tests import reference_mask
from watcher.group import bucket as bucket_module
from watcher.group.mask import WILDCARD
from watcher.group.template import (
    SIMILARITY,
    Cluster,
    TemplateMiner,
    _bucket_key,
    _similarity,
    run_stream,
)

DATA = Path(__file__).parent / "data"


class ScanMiner(TemplateMiner):
    """The miner before issue 15: every message compared with every cluster of its bucket
    (the newest MAX_CANDIDATES of a larger one), strictly better similarity wins."""

    def _best(self, tokens: list[str]) -> Cluster | None:
        best, best_sim = None, -1.0
        key = _bucket_key(tokens)
        wild = (key[0], WILDCARD)
        for bucket_key in (key, wild) if key != wild else (key,):
            bucket = self._buckets.get(bucket_key)
            if isinstance(bucket, Cluster):  # a cluster alone in its bucket stands for it
                clusters = [bucket]
            else:
                clusters = list(bucket.clusters.values()) if bucket is not None else []
            if len(clusters) > bucket_module.MAX_CANDIDATES:
                clusters = clusters[::-1][: bucket_module.MAX_CANDIDATES]
            for cand in clusters:
                sim = _similarity(cand.tokens, tokens)
                if sim > best_sim:
                    best, best_sim = cand, sim
        return best if best_sim >= SIMILARITY else None


class ReferenceMiner(ScanMiner):
    """ScanMiner with the masker before issue 15: the whole `watcher templates` before it."""

    tokens_of = staticmethod(reference_mask.mask_tokens)
    joined_of = staticmethod(lambda message: " ".join(reference_mask.mask_tokens(message)))


def _trace(miner: TemplateMiner, ops: typing.Sequence[str | None]) -> list[tuple[str, str]]:
    """Feed messages (None: consolidate) and record each message's cluster id and template,
    then every live cluster at the end."""
    out = []
    for op in ops:
        if op is None:
            miner.consolidate()
            continue
        cluster = miner.add(op)
        out.append((cluster.id, cluster.template))
    return out + [(c.id, f"{c.template}|{c.size}") for c in miner.clusters()]


# few words, so that messages share buckets and positions; digits become <*>
_WORD = st.sampled_from(["a", "b", "c", "d", "e", "f", "1", "2 x", "x"])
_FIRST = st.sampled_from(["GET", "PUT", "7"])  # "7" is masked: the <*> bucket
_MESSAGE = st.builds(
    lambda first, rest: " ".join([first, *rest]), _FIRST, st.lists(_WORD, min_size=1, max_size=6)
)
_OPS = st.lists(st.one_of(_MESSAGE, _MESSAGE, _MESSAGE, st.none()), max_size=120)


@settings(max_examples=150, deadline=None)
@given(_OPS, st.sampled_from([4, 1000]))
def test_index_picks_the_cluster_the_scan_picks(ops: list[str | None], max_clusters: int) -> None:
    """With the index on from the smallest bucket and a scan cap of 6, the miner assigns every
    message to the cluster, id and template that the linear scan gives, through consolidation
    (splits and merges retoken clusters) and eviction."""
    with (
        mock.patch.object(bucket_module, "INDEX_FROM", 2),
        mock.patch.object(bucket_module, "MAX_CANDIDATES", 6),
    ):
        fast = _trace(TemplateMiner(max_clusters=max_clusters), ops)
        slow = _trace(ScanMiner(max_clusters=max_clusters), ops)
    assert fast == slow


def _flood(n: int, seed: int) -> list[str]:
    """Unique error messages of one shape whose words no mask removes (the cardinality attack),
    with a few repeats so some do join clusters."""
    rng = random.Random(seed)
    words = [
        "".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(3))
        for _ in range(400)
    ]
    lines = []
    for i in range(n):
        svc = ("api", "worker", "billing")[i % 3]
        body = " ".join(rng.choice(words) for _ in range(rng.choice((3, 5))))
        lines.append(f"[{svc}] {body} ref={rng.getrandbits(32):08x} failed")
    return lines


def test_a_flood_gets_the_clusters_the_scan_gives() -> None:
    """Under a flood of unique messages (buckets far past the scan cap, evictions), the indexed
    miner ends with the same clusters, ids and templates as the linear scan."""
    lines = _flood(3000, seed=3)
    assert _trace(TemplateMiner(max_clusters=500), lines) == _trace(
        ScanMiner(max_clusters=500), lines
    )


def _templates(miner: TemplateMiner, text: bytes) -> bytes:
    out = io.BytesIO()
    run_stream(io.BytesIO(text), out, miner)
    return out.getvalue()


def test_templates_output_is_byte_identical_to_the_masker_and_miner_before() -> None:
    """`watcher templates` prints the same bytes as before issue 15 on ordinary production
    lines, a mixed log and a flood of unique messages."""
    lines = (DATA / "ordinary_lines.txt").read_bytes().splitlines()
    lines += (DATA / "mixed.log").read_bytes().splitlines()
    lines += [line.encode() for line in _flood(1500, seed=4)]
    text = b"\n".join(lines) + b"\n"
    new = _templates(TemplateMiner(), text)
    assert new == _templates(ReferenceMiner(), text)
    assert new.count(b"\n") == len(lines)
