"""Consolidation helpers for the template miner: splitting clusters and finding merge targets.

`consolidate()` runs every few seconds in the daemon on up to `max_clusters` clusters, so the
merge pass must not compare every pair: `MergeIndex` narrows the candidates to clusters that share
enough constant words at the same positions.
"""

from __future__ import annotations

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
# Templates of a merge pass sampled to choose the positions MergeIndex indexes.
INDEX_SAMPLE = 256


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
    """The clusters kept so far in one merge pass over templates of `width` tokens, indexed by
    the constant word at `width - need + 1` of the positions.

    Two templates that can merge share at least `need` constant positions, and any `need`
    positions of `width` include one of any `width - need + 1`: so a target always shares an
    indexed word with the templates that can merge into it, and only that many positions need
    an entry. Indexing every position cost ~200 bytes per token of every live cluster in the
    middle of the daemon's run (10,000 clusters of 60-word lines: 130 MB per pass).

    Which positions: the most selective ones in a sample of the pass's templates (fewest
    templates per word, wildcards best of all), so that a look-up meets few candidates. A flood
    of unique messages from a handful of services would otherwise find every template of its
    service under the service's name and compare MAX_MERGE_CANDIDATES of them per message.
    """

    def __init__(self, width: int, sample: typing.Sequence[list[str]] = ()) -> None:
        self._kept: list[Cluster] = []
        self._need = math.ceil(MERGE_MIN_COMMON * width)
        self._positions = _selective(width, width - self._need + 1, sample) if self._need else []
        # per indexed position, word -> rank of the kept cluster, or ranks once several share it
        # (one dict per position: no (position, word) tuple per entry)
        self._by_word: list[dict[str, int | list[int]]] = [{} for _ in self._positions]

    def add(self, cluster: Cluster) -> None:
        """Keep `cluster` as a merge target for the clusters that come after it."""
        rank = len(self._kept)
        self._kept.append(cluster)
        tokens = cluster.tokens
        for pos, words in zip(self._positions, self._by_word, strict=True):
            word = tokens[pos]
            if word == WILDCARD:
                continue
            ranks = words.get(word)
            if ranks is None:
                words[word] = rank
            elif isinstance(ranks, int):
                words[word] = [ranks, rank]
            else:
                ranks.append(rank)

    def find(self, tokens: list[str]) -> Cluster | None:
        """The first kept cluster (in keeping order) that `tokens` can merge into."""
        for rank in self._candidates(tokens):
            kept = self._kept[rank]
            if mergeable(kept.tokens, tokens):
                return kept
        return None

    def _candidates(self, tokens: list[str]) -> typing.Iterable[int]:
        if not self._need:
            return range(len(self._kept))
        postings: list[list[int]] = []
        for pos, words in zip(self._positions, self._by_word, strict=True):
            word = tokens[pos]
            if word != WILDCARD and (ranks := words.get(word)) is not None:
                postings.append([ranks] if isinstance(ranks, int) else ranks)
        # a flood of look-alike templates: past MAX_MERGE_CANDIDATES, those sharing the rarest
        # words are tried (and the oldest of a common word's), so one consolidation stays
        # bounded; a merge missed here can happen in a later pass
        postings.sort(key=len)
        chosen: set[int] = set()
        for posting in postings:
            if len(chosen) + len(posting) <= MAX_MERGE_CANDIDATES:
                chosen.update(posting)
                continue
            for rank in posting:
                chosen.add(rank)
                if len(chosen) >= MAX_MERGE_CANDIDATES:
                    break
            break
        return sorted(chosen)


def _selective(width: int, count: int, sample: typing.Sequence[list[str]]) -> list[int]:
    """The `count` positions whose words the sampled templates share least (the expected size
    of a posting: sum of squared word counts; a wildcard is in none), first ones on ties."""
    shared = [0] * width
    for pos in range(width):
        seen: dict[str, int] = {}
        for tokens in sample:
            word = tokens[pos]
            if word != WILDCARD:
                n = seen.get(word, 0)
                shared[pos] += 2 * n + 1  # (n + 1)^2 - n^2
                seen[word] = n + 1
    return sorted(sorted(range(width), key=shared.__getitem__)[:count])


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
