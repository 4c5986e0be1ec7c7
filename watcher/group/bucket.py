"""One bucket of the template miner: the clusters of one (token count, first token), and a
positional index that finds the few of them a message can join.

A message joins a cluster when at least `need` of its `width` positions hold the same token.
Position 0 holds the bucket's first token, so it agrees with every message of the bucket (or, for
the `<*>` bucket searched on behalf of another first token, with none): the other `need - 1` (or
`need`) agreeing positions are among the `width - 1` others, and any `width - need + 1` of those
include one of them (the idea of `split.MergeIndex`). So indexing each cluster under its tokens
at `width - need + 1` chosen positions finds every cluster a message can join, and the clusters
of a flood of unique messages, which it joins none of, cost a few dict look-ups instead of 64
comparisons.

The index only narrows the clusters compared; which one wins is decided exactly as by the scan
it replaces (`scan`): the candidates come in the scan's order (oldest first in a bucket of at
most MAX_CANDIDATES, newest first among the newest MAX_CANDIDATES of a larger one), so the
miner's tie-break by recency, and its output, are unchanged (tests/test_miner_index.py).
"""

from __future__ import annotations

import itertools
import typing
from collections.abc import Iterable, Sequence

if typing.TYPE_CHECKING:
    from watcher.group.template import Cluster

# At most this many clusters of one bucket are compared with a message (see `scan`).
MAX_CANDIDATES = 64
# A smaller bucket is scanned: comparing a dozen clusters costs less than keeping an index.
INDEX_FROM = 16

# per indexed position: token -> the cluster holding it there, or a list once several do
_Postings = dict[str, "Cluster | list[Cluster]"]


class Bucket:
    """The live clusters of one bucket, oldest first, each with the sequence number of its
    arrival (the order a scan meets them in)."""

    __slots__ = ("_built_at", "_positions", "_postings", "clusters", "need", "width")

    def __init__(self, width: int, need: int) -> None:
        self.width = width
        self.need = need
        self.clusters: dict[str, Cluster] = {}
        # made by _build (a flood makes and drops a bucket per line: two lists fewer each)
        self._positions: Sequence[int] = ()
        self._postings: Sequence[_Postings] = ()
        self._built_at = 0  # the bucket's size when the index was last built (0: no index)

    def __len__(self) -> int:
        return len(self.clusters)

    def add(self, cluster: Cluster, seq: int) -> None:
        """Keep `cluster`, newest; `seq` is larger than that of any cluster added before."""
        cluster.seq = seq
        self.clusters[cluster.id] = cluster
        size = len(self.clusters)
        # with need < 2 every cluster agrees on position 0 alone: nothing to narrow
        if size >= INDEX_FROM and size >= 2 * self._built_at and self.need >= 2:
            self._build()  # (re)chosen as the bucket doubles: positions fit what it holds
        elif self._built_at:
            self._post(cluster)

    def remove(self, cluster: Cluster) -> None:
        """Forget `cluster` (its tokens must be those it was added or last `retokened` with)."""
        del self.clusters[cluster.id]
        if self._built_at:
            tokens = cluster.tokens
            for pos, postings in zip(self._positions, self._postings, strict=True):
                token = tokens[pos]
                if postings[token] is cluster:  # its word alone (a flood's): _unpost, inlined
                    del postings[token]
                else:
                    _unpost(postings, token, cluster)

    def retokened(self, cluster: Cluster, old: list[str]) -> None:
        """Re-index `cluster`, whose tokens were `old` and changed in place."""
        if not self._built_at:
            return
        new = cluster.tokens
        for pos, postings in zip(self._positions, self._postings, strict=True):
            if old[pos] != new[pos]:
                _unpost(postings, old[pos], cluster)
                _post(postings, new[pos], cluster)

    def candidates(self, tokens: list[str]) -> Iterable[Cluster]:
        """The clusters `scan` would compare with `tokens`, in its order, leaving out (when the
        index can tell cheaply) those that cannot reach `need` agreeing positions."""
        if self._built_at:
            found = self._lookup(tokens)
            if found is not None:
                # (most messages of a flood share no indexed word with any cluster)
                return self._in_scan_order(found) if found else ()
        return self.scan()

    def scan(self) -> Iterable[Cluster]:
        """All clusters of a normal bucket, or the newest MAX_CANDIDATES of a huge one.

        Real logs keep buckets small (Loghub's largest holds a few dozen). A flood of distinct
        messages of one shape (random ids that defeat masking) would otherwise make every line
        compare thousands of clusters; capping it keeps the cost per line bounded, at the price
        of a few duplicate clusters that consolidation merges later.
        """
        clusters = self.clusters.values()
        if len(self.clusters) <= MAX_CANDIDATES:
            return clusters
        return itertools.islice(reversed(clusters), MAX_CANDIDATES)

    # -- the index --------------------------------------------------------------------------

    def _build(self) -> None:
        count = self.width - self.need + 1
        self._positions = _selective(self.width, count, self.clusters.values())
        self._postings = [{} for _ in self._positions]
        for cluster in self.clusters.values():
            self._post(cluster)
        self._built_at = len(self.clusters)

    def _post(self, cluster: Cluster) -> None:
        tokens = cluster.tokens
        for pos, postings in zip(self._positions, self._postings, strict=True):
            token = tokens[pos]
            if token not in postings:  # a word no other cluster holds here: _post, inlined
                postings[token] = cluster
            else:
                _post(postings, token, cluster)

    def _lookup(self, tokens: list[str]) -> dict[int, Cluster] | None:
        """The clusters sharing a token with `tokens` at an indexed position, or None when
        there are more than a scan would compare (common tokens: the scan is as cheap)."""
        found: dict[int, Cluster] = {}
        for pos, postings in zip(self._positions, self._postings, strict=True):
            entry = postings.get(tokens[pos])
            if entry is None:
                continue
            if isinstance(entry, list):
                for cluster in entry:
                    found[cluster.seq] = cluster
            else:
                found[entry.seq] = entry
            if len(found) > MAX_CANDIDATES:
                return None
        return found

    def _in_scan_order(self, found: dict[int, Cluster]) -> list[Cluster]:
        if len(self.clusters) <= MAX_CANDIDATES:
            return [found[seq] for seq in sorted(found)]
        # only the newest MAX_CANDIDATES are scanned, newest first
        oldest = next(itertools.islice(reversed(self.clusters.values()), MAX_CANDIDATES - 1, None))
        return [found[seq] for seq in sorted(found, reverse=True) if seq >= oldest.seq]


def _post(postings: _Postings, token: str, cluster: Cluster) -> None:
    entry = postings.get(token)
    if entry is None:
        postings[token] = cluster
    elif isinstance(entry, list):
        entry.append(cluster)
    else:
        postings[token] = [entry, cluster]


def _unpost(postings: _Postings, token: str, cluster: Cluster) -> None:
    entry = postings[token]
    if not isinstance(entry, list):
        del postings[token]
        return
    # by identity: clusters compare by value
    del entry[next(i for i, held in enumerate(entry) if held is cluster)]
    if len(entry) == 1:
        postings[token] = entry[0]


def _selective(width: int, count: int, clusters: Iterable[Cluster]) -> list[int]:
    """The `count` positions after the first whose tokens the clusters share least (the
    expected size of a posting: the sum of squared token counts), first ones on ties."""
    shared = [0] * width
    seen: list[dict[str, int]] = [{} for _ in range(width)]
    for cluster in clusters:
        for pos in range(1, width):
            token = cluster.tokens[pos]
            n = seen[pos].get(token, 0)
            shared[pos] += 2 * n + 1  # (n + 1)^2 - n^2
            seen[pos][token] = n + 1
    return sorted(sorted(range(1, width), key=shared.__getitem__)[:count])
