"""Consolidation helpers for the template miner: splitting clusters and finding merge targets.

`consolidate()` runs every few seconds in the daemon on up to `max_clusters` clusters, so the
merge pass must not compare every pair: `MergeIndex` narrows the candidates to clusters that share
enough constant words at the same positions.
"""

from __future__ import annotations

import heapq
import math
import typing

from watcher.group.mask import WILDCARD

if typing.TYPE_CHECKING:
    from watcher.group.template import Cluster, Member

# A position that varies is split on (treated as a constant) with at most this many values,
# each seen at least SPLIT_MIN_COUNT times.
SPLIT_MAX_VALUES = 3
SPLIT_MIN_COUNT = 1
# Merging needs this fraction of positions to be shared constant words.
MERGE_MIN_COMMON = 0.5
# At most this many earlier clusters are tried as merge targets for one cluster.
MAX_MERGE_CANDIDATES = 64


def generalise(template: list[str], tokens: list[str]) -> list[str]:
    """`template` with `<*>` wherever it differs from `tokens` (of the same length)."""
    return [a if a == b else WILDCARD for a, b in zip(template, tokens, strict=True)]


def mergeable(a: list[str], b: list[str]) -> bool:
    """True when the templates agree wherever both are constant, on enough common words."""
    common = 0
    for x, y in zip(a, b, strict=True):
        if x == y:
            common += x != WILDCARD
        elif x != WILDCARD and y != WILDCARD:
            return False
    return common >= MERGE_MIN_COMMON * len(a)


class MergeIndex:
    """The clusters kept so far in one merge pass, indexed by constant (position, word)."""

    def __init__(self) -> None:
        self._kept: list[Cluster] = []
        self._by_word: dict[tuple[int, str], list[int]] = {}

    def add(self, cluster: Cluster) -> None:
        """Keep `cluster` as a merge target for the clusters that come after it."""
        rank = len(self._kept)
        self._kept.append(cluster)
        for key in enumerate(cluster.tokens):
            if key[1] != WILDCARD:
                self._by_word.setdefault(key, []).append(rank)

    def find(self, tokens: list[str]) -> Cluster | None:
        """The first kept cluster (in keeping order) that `tokens` can merge into."""
        for rank in self._candidates(tokens):
            kept = self._kept[rank]
            if mergeable(kept.tokens, tokens):
                return kept
        return None

    def _candidates(self, tokens: list[str]) -> typing.Iterable[int]:
        need = math.ceil(MERGE_MIN_COMMON * len(tokens))
        if need == 0:
            return range(len(self._kept))
        constants = [key for key in enumerate(tokens) if key[1] != WILDCARD]
        # A cluster sharing `need` of these constants shares at least one of any
        # len - need + 1 of them. A survivor only loses constants when it generalises, so its
        # old entries can only add candidates, never hide one.
        # any len - need + 1 of them will do: take the rarest, so the union stays small
        postings = sorted((self._by_word.get(key, ()) for key in constants), key=len)
        ranks: set[int] = set()
        for posting in postings[: max(0, len(constants) - need + 1)]:
            ranks.update(posting)
        if len(ranks) <= MAX_MERGE_CANDIDATES:
            return sorted(ranks)
        # a flood of look-alike templates: compare with the oldest kept ones only, so one
        # consolidation stays bounded; a merge missed here can happen in a later pass
        return heapq.nsmallest(MAX_MERGE_CANDIDATES, ranks)


def template_of(members: list[Member]) -> list[str]:
    """The most specific template that covers every member's tokens."""
    tokens = list(members[0].tokens)
    for member in members[1:]:
        tokens = generalise(tokens, list(member.tokens))
    return tokens


def refresh(cluster: Cluster) -> None:
    """Recompute a cluster's template and size from its members."""
    if cluster.members:
        cluster.tokens = template_of(cluster.members)
        cluster.template = " ".join(cluster.tokens)
        cluster.size = sum(m.count for m in cluster.members)


def partition(members: list[Member]) -> list[list[Member]]:
    """Group members by their values at positions that look like constants, not variables.

    A position where members disagree is a variable when it takes many distinct values; with
    only a few values, each seen repeatedly, it is a word of the statement itself (an enum, a
    verb: "VM Started" vs "VM Paused") and separates different statements.
    """
    if len(members) < 2:
        return [members]
    width = len(members[0].tokens)
    split_at = []
    for i in range(width):
        counts: dict[str, int] = {}
        for member in members:
            tok = member.tokens[i]
            counts[tok] = counts.get(tok, 0) + member.count
        if len(counts) > 1 and _looks_constant(counts):
            split_at.append(i)
    if not split_at:
        return [members]
    parts: dict[tuple[str, ...], list[Member]] = {}
    for member in members:
        parts.setdefault(tuple(member.tokens[i] for i in split_at), []).append(member)
    return list(parts.values())


def _looks_constant(counts: dict[str, int]) -> bool:
    if any(WILDCARD in value for value in counts):
        return False
    return len(counts) <= SPLIT_MAX_VALUES and min(counts.values()) >= SPLIT_MIN_COUNT
