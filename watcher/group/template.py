"""Online log-template mining: lines of one logging statement share one `Cluster`.

How a message finds its cluster:

1. `mask()` replaces variable values (numbers, ids, IPs, paths, quoted strings...) with `<*>`;
   the masked text is split on whitespace into tokens.
2. Clusters live in buckets keyed on (token count, first constant token). Within a bucket the
   message joins the most similar cluster if enough constant positions agree (Drain-style), and
   the positions where they disagree become `<*>` in the template.
3. `consolidate()` (run by `run_stream` at end of input, and cheap enough to run periodically)
   merges clusters of one token count whose templates agree on every position where both are
   constant; the absorbed cluster's id then resolves to the survivor.

Templates show every variable as `<*>`. Cluster ids are 12 hex chars of the SHA-1 of the first
template the cluster had, so a restarted miner (or another process) gives the same statement the
same id; they never change when the template generalises.

The hot path avoids per-token Python work for text already seen: a bounded exact-message cache
and a bounded cache keyed on the masked text both map straight to the cluster.
"""

from __future__ import annotations

import functools
import hashlib
import typing
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import eq

from watcher.group.bucket import Bucket
from watcher.group.mask import WILDCARD, mask_joined, mask_tokens
from watcher.group.split import (
    INDEX_SAMPLE,
    MergeIndex,
    generalise,
    partition,
    refresh,
    template_of,
)

SNAPSHOT_VERSION = 1
# Fraction of a cluster's positions that must agree with a message for it to join (Drain's st).
SIMILARITY = 0.5
# Caches are cleared wholesale when full: cheaper on the hot path than LRU bookkeeping.
CACHE_LIMIT = 50_000
# ...or when their keys hold this many characters: a count alone let 50k unique 600-byte lines
# (and the evicted clusters their entries keep alive) grow a cache past 300 MB.
CACHE_CHARS = 8_000_000
# A merged-away id keeps resolving to its survivor; the map is bounded like the caches.
ALIAS_LIMIT = 100_000
# Distinct masked shapes remembered per cluster for splitting.
MEMBER_LIMIT = 64
# An evicted cluster's tokens and members: it is in no bucket and not live, so nothing reads
# or changes them any more (never append to these: every evicted cluster shares them).
_SHED_TOKENS: list[str] = []
_SHED_MEMBERS: list[Member] = []


@dataclass(slots=True)
class Cluster:
    """One pattern: the template of a logging statement and how many lines matched it."""

    id: str
    template: str
    size: int = 0
    tokens: list[str] = field(default_factory=list, repr=False)
    # distinct masked shapes seen, so consolidation can split on low-cardinality positions
    members: list[Member] = field(default_factory=list, repr=False)
    # the cluster this one was merged into, or None while it is live
    merged_into: Cluster | None = field(default=None, repr=False)
    evicted: bool = field(default=False, repr=False)
    # arrival order in its bucket (see Bucket.add)
    seq: int = field(default=0, repr=False)


@dataclass(slots=True, eq=False)
class Member:
    """One distinct masked token sequence of a cluster: the unit that caches point at."""

    tokens: tuple[str, ...]
    cluster: Cluster
    count: int = 0


def _bucket_key(tokens: list[str]) -> tuple[int, str]:
    # The first token narrows the search the way Drain's prefix tree does; a masked first token
    # shares one bucket with every other variable first token.
    return (len(tokens), tokens[0] if tokens else "")


@functools.cache
def _need(width: int) -> int:
    """The fewest agreeing positions of `width` that reach SIMILARITY."""
    return next(n for n in range(width + 1) if _similarity_of(n, width) >= SIMILARITY)


def _similarity_of(agree: int, width: int) -> float:
    return agree / width if width else 1.0


def _similarity(template: list[str], tokens: list[str]) -> float:
    # a wildcard only agrees with a wildcard: counting it as a match lets a template that has
    # lost most of its words swallow everything of its length
    # (buckets hold one token count, so the lists have equal length; map(eq) runs in C)
    return _similarity_of(sum(map(eq, template, tokens)), len(template))


try:
    # CPython's own SHA-1, the same digest as hashlib's OpenSSL one for ~1.7k instructions less
    # a call (OpenSSL 3 sets up and frees a context per hash: ~8.4k against ~6.7k for a
    # template), and every new cluster (a flood's every line) makes an id
    from _sha1 import sha1 as _sha1
except ImportError:  # (a Python built without its own hashes)
    _sha1 = hashlib.sha1


def cluster_id(template: str) -> str:
    """The id of a cluster whose first template is `template`, unless another live cluster or
    alias has it (see _make_id)."""
    return _sha1(template.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _make_id(template: str, live: typing.Container[str], aliases: typing.Container[str]) -> str:
    cid, salt = cluster_id(template), 0
    while cid in live or cid in aliases:  # another live cluster started from the same text
        salt += 1
        cid = _sha1(f"{salt}\0{template}".encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return cid


class TemplateMiner:
    """Learns templates from messages online, with a cap on live clusters (LRU eviction)."""

    # a message's masked tokens, and the same joined by spaces (seams: the tests run the masker
    # before issue 15 through them, the workers hand over what they masked). `add_member` keys on
    # the joined text, which the masker's line cache holds as it is: a message of a shape seen
    # before costs no split and no join; the tokens are made (split) only for a text not seen
    tokens_of: typing.ClassVar[Callable[[str], list[str]]] = staticmethod(mask_tokens)
    joined_of: typing.ClassVar[Callable[[str], str]] = staticmethod(mask_joined)
    # a new cluster's id before the check against live ids and aliases: `cluster_id` (a seam
    # too: the workers hand over the ids of the texts they masked, hashed on their cores; SHA-1
    # was ~5k of the parent's ~95k instructions per event of a flood)
    id_of: typing.ClassVar[Callable[[str], str]] = staticmethod(cluster_id)

    def __init__(
        self, *, max_clusters: int = 10_000, on_evict: Callable[[Cluster], None] | None = None
    ) -> None:
        self.max_clusters = max_clusters
        self.on_evict = on_evict
        # live clusters by id, least recently matched first
        self._live: OrderedDict[str, Cluster] = OrderedDict()
        # per bucket its clusters in arrival order: O(1) eviction, stable scan order; a bucket
        # of one cluster is that cluster itself (see _add_live)
        self._buckets: dict[tuple[int, str], Bucket | Cluster] = {}
        self._arrivals = 0
        self._aliases: dict[str, str] = {}
        self._by_message = _Cache()
        self._by_masked = _Cache()

    def __len__(self) -> int:
        return len(self._live)

    def add(self, message: str) -> Cluster:
        """Learn from `message` and return its cluster."""
        return self.add_member(message).cluster

    def add_member(self, message: str) -> Member:
        """Like `add`, but return the message's shape, whose `.cluster` follows later merges."""
        by_message = self._by_message
        member = by_message.get(message)
        if member is not None and member.cluster.merged_into is not None:
            member = _current(member)  # (a call only where a merge happened)
        if member is None or member.cluster.evicted:
            masked = self.joined_of(message)
            by_masked = self._by_masked
            member = by_masked.get(masked)
            if member is not None and member.cluster.merged_into is not None:
                member = _current(member)
            if member is None or member.cluster.evicted:
                # == tokens_of(message): no token holds whitespace and none is empty
                tokens = masked.split()
                cluster = self._best(tokens)
                if cluster is None:
                    # a new cluster (a flood's every line): made counted, with its only shape,
                    # and newest in _live already; the caches' remember inlined (per new line)
                    member = self._create(tokens, masked)
                    if len(by_masked) < CACHE_LIMIT and by_masked.chars < CACHE_CHARS:
                        by_masked[masked] = member
                        by_masked.chars += len(masked)
                    else:
                        by_masked.remember(masked, member)
                    if len(by_message) < CACHE_LIMIT and by_message.chars < CACHE_CHARS:
                        by_message[message] = member
                        by_message.chars += len(message)
                    else:
                        by_message.remember(message, member)
                    return member
                member = self._join(cluster, tokens)
                by_masked.remember(masked, member)
            by_message.remember(message, member)
        member.count += 1
        cluster = member.cluster
        cluster.size += 1
        self._live.move_to_end(cluster.id)
        return member

    def match(self, message: str) -> Cluster | None:
        """Return the cluster `message` belongs to, without learning anything."""
        member = self._by_message.get(message)
        if member is not None and not member.cluster.evicted:
            return member.cluster
        tokens = self.tokens_of(message)
        best = self._best(tokens)
        if best is None or any(
            t != WILDCARD and t != m for t, m in zip(best.tokens, tokens, strict=True)
        ):
            return None
        return best

    def resolve(self, cluster_id: str) -> Cluster | None:
        """Return the live cluster `cluster_id` now stands for, following merges."""
        for _ in range(64):
            if cluster_id not in self._aliases:
                break
            cluster_id = self._aliases[cluster_id]
        return self._live.get(cluster_id)

    def clusters(self) -> list[Cluster]:
        """The live clusters, least recently matched first."""
        return list(self._live.values())

    # -- learning -------------------------------------------------------------------------

    def _best(self, tokens: list[str]) -> Cluster | None:
        best, best_sim = None, -1.0
        width = len(tokens)
        first = tokens[0] if tokens else ""
        buckets = self._buckets
        # consolidation may have turned a first token into <*>: look there too
        # (a flood's line finds neither bucket: two dict look-ups and no loop)
        for bucket in (
            (buckets.get((width, first)), buckets.get((width, WILDCARD)))
            if first != WILDCARD
            else (buckets.get((width, first)),)
        ):
            if bucket is None:
                continue
            for cand in (bucket,) if type(bucket) is Cluster else bucket.candidates(tokens):
                sim = _similarity(cand.tokens, tokens)
                if sim > best_sim:
                    best, best_sim = cand, sim
        return best if best_sim >= SIMILARITY else None

    def _join(self, cluster: Cluster, tokens: list[str]) -> Member:
        """The shape of `tokens` in `cluster` (the best, see _best), its template generalised."""
        if cluster.tokens != tokens:
            old = cluster.tokens
            cluster.tokens = generalise(old, tokens)
            cluster.template = " ".join(cluster.tokens)
            bucket = self._buckets[_bucket_key(old)]
            if type(bucket) is Bucket:  # (a lone cluster has no index to update)
                bucket.retokened(cluster, old)
        return _member_of(cluster, tuple(tokens))

    def _create(self, tokens: list[str], template: str) -> Member:
        """A new cluster of `tokens` (`template`: them joined), counted once, and its only
        shape (counted once too)."""
        live, aliases = self._live, self._aliases
        cid = self.id_of(template)  # _make_id, without its call where the id is free
        if cid in live or cid in aliases:
            cid = _make_id(template, live, aliases)
        cluster = Cluster(cid, template, 1, tokens)
        member = Member(tuple(tokens), cluster, 1)
        cluster.members.append(member)
        if len(live) >= self.max_clusters:
            # _make_room's one eviction at the cap (a flood's every line), without its loop
            self._evict(live.popitem(last=False)[1])
            if len(live) >= self.max_clusters:
                self._make_room()
        self._add_live(cluster)
        return member

    def _make_room(self) -> None:
        live = self._live
        while len(live) >= self.max_clusters:
            self._evict(live.popitem(last=False)[1])  # the least recently matched

    def _add_live(self, cluster: Cluster) -> None:
        self._live[cluster.id] = cluster
        tokens = cluster.tokens
        key = (len(tokens), tokens[0] if tokens else "")  # _bucket_key, inlined (per new line)
        self._arrivals += 1
        held = self._buckets.get(key)
        if held is None:
            # a cluster alone in its bucket stands for it: a flood's every line makes a bucket
            # of its own (a new first word), and a Bucket made, filled and dropped per line was
            # ~5 % of the miner's work on it
            cluster.seq = self._arrivals
            self._buckets[key] = cluster
            return
        if type(held) is Cluster:  # the second cluster of the bucket: now a Bucket of both
            bucket = self._buckets[key] = Bucket(key[0], _need(key[0]))
            bucket.add(held, held.seq)
            held = bucket
        held.add(cluster, self._arrivals)

    def _drop_live(self, cluster: Cluster) -> None:
        del self._live[cluster.id]
        self._unbucket(cluster)

    def _unbucket(self, cluster: Cluster) -> None:
        tokens = cluster.tokens
        key = (len(tokens), tokens[0] if tokens else "")
        held = self._buckets[key]
        if isinstance(held, Bucket):
            held.remove(cluster)
            if held.clusters:
                return
        del self._buckets[key]  # (a cluster alone in its bucket is this one)

    def _evict(self, cluster: Cluster) -> None:
        """Forget `cluster`, which _make_room took out of `_live` already."""
        self._unbucket(cluster)
        cluster.evicted = True
        if self.on_evict is not None:
            self.on_evict(cluster)
        # The caches drop their entries lazily, when they meet `evicted`; until then those
        # entries keep the cluster and its members alive, so shed what only a live cluster uses
        # (the token lists are most of a cluster's memory: one str object per word).
        # Shared empty lists, not new ones: the caches keep evicted clusters for up to
        # CACHE_LIMIT lines, and each list kept alive is one more object for every pass of the
        # cyclic GC to walk (a flood's replay spent ~8 % of its time there).
        for member in cluster.members:
            member.tokens = ()
        cluster.members = _SHED_MEMBERS
        cluster.tokens = _SHED_TOKENS

    # -- consolidation --------------------------------------------------------------------

    def consolidate(self) -> int:
        """Split clusters on low-cardinality positions, then merge compatible ones.

        Returns the number of clusters added by splits plus those removed by merges.
        """
        changes = 0
        for cluster in list(self._live.values()):
            changes += self._split(cluster)
        by_len: dict[int, list[Cluster]] = {}
        for cluster in self._live.values():
            by_len.setdefault(len(cluster.tokens), []).append(cluster)
        for group in by_len.values():
            changes += self._merge_group(group)
        return changes

    def _split(self, cluster: Cluster) -> int:
        parts = partition(cluster.members)
        if len(parts) < 2:
            return 0
        parts.sort(key=lambda ms: -sum(m.count for m in ms))
        self._drop_live(cluster)
        cluster.members = parts[0]
        refresh(cluster)
        self._add_live(cluster)
        for members in parts[1:]:
            template = " ".join(template_of(members))
            part = Cluster(id=_make_id(template, self._live, self._aliases), template=template)
            part.members = members
            for member in members:
                member.cluster = part
            refresh(part)
            self._make_room()
            self._add_live(part)
        return len(parts) - 1

    def _merge_group(self, group: list[Cluster]) -> int:
        group.sort(key=lambda c: -c.size)
        step = -(-len(group) // INDEX_SAMPLE)  # a sample spread over the whole group
        kept = MergeIndex(len(group[0].tokens), [c.tokens for c in group[::step]])
        merges = 0
        for cluster in group:
            target = kept.find(cluster.tokens)
            if target is None:
                kept.add(cluster)
            else:
                self._merge(cluster, target)
                merges += 1
        return merges

    def _merge(self, loser: Cluster, survivor: Cluster) -> None:
        self._drop_live(loser)
        self._drop_live(survivor)
        survivor.tokens = generalise(survivor.tokens, loser.tokens)
        survivor.template = " ".join(survivor.tokens)
        survivor.size += loser.size
        for member in loser.members:
            member.cluster = survivor
        survivor.members.extend(loser.members[: max(0, MEMBER_LIMIT - len(survivor.members))])
        loser.members = []
        loser.merged_into = survivor
        self._add_live(survivor)
        if len(self._aliases) >= ALIAS_LIMIT:
            self._aliases.clear()
        self._aliases[loser.id] = survivor.id

    # -- persistence ----------------------------------------------------------------------

    def snapshot(self) -> list[dict[str, typing.Any]]:
        """JSON-serialisable state, least recently matched first, so ids survive a restart."""
        return [
            {"v": SNAPSHOT_VERSION, "id": c.id, "template": c.template, "size": c.size}
            for c in self._live.values()
        ]

    def restore(self, state: list[dict[str, typing.Any]]) -> None:
        """Load clusters from `snapshot()` output; entries of unknown versions are skipped."""
        for entry in state:
            if entry.get("v") != SNAPSHOT_VERSION or entry["id"] in self._live:
                continue
            template = str(entry["template"])
            cluster = Cluster(
                id=str(entry["id"]),
                template=template,
                size=int(entry.get("size", 0)),
                tokens=template.split(),
            )
            self._make_room()
            self._add_live(cluster)


def _current(member: Member | None) -> Member | None:
    """`member` re-pointed past merges: a shape beyond MEMBER_LIMIT is in no cluster's list,
    so `_merge` could not move it, and its cluster may be a merged-away one."""
    if member is not None:
        while member.cluster.merged_into is not None:
            member.cluster = member.cluster.merged_into
    return member


class _Cache(dict[str, Member]):
    """Text -> shape, bounded by entries and by key characters (a dict, so `get` stays C-fast)."""

    __slots__ = ("chars",)

    def __init__(self) -> None:
        super().__init__()
        self.chars = 0

    def remember(self, key: str, member: Member) -> None:
        if len(self) >= CACHE_LIMIT or self.chars >= CACHE_CHARS:
            if CACHE_LIMIT <= 0:  # 0 turns the caches off, to measure what they buy
                return
            self.clear()
            self.chars = 0
        self[key] = member
        self.chars += len(key)


def _member_of(cluster: Cluster, tokens: tuple[str, ...]) -> Member:
    for member in cluster.members:
        if member.tokens == tokens:
            return member
    # past the limit the shape is still cached, but no longer drives splits, so nothing reads
    # its tokens: keeping them would cost a copy of every distinct shape the caches hold
    if len(cluster.members) >= MEMBER_LIMIT:
        return Member(tokens=(), cluster=cluster)
    member = Member(tokens=tokens, cluster=cluster)
    cluster.members.append(member)
    return member


def run_stream(
    inp: typing.BinaryIO, out: typing.BinaryIO, miner: TemplateMiner | None = None
) -> int:
    """`watcher templates`: read stdin lines, write one `<group id>\t<template>\n` per input line.

    Output is written at end of input, after `consolidate()`, so every line shows the id and
    template of its cluster as it stands once the miner has seen everything (a line never moves
    to another cluster; clusters only merge). Only the b"\n" terminator is removed from a line;
    bytes that are not UTF-8 are replaced, never fatal.
    """
    miner = TemplateMiner() if miner is None else miner
    seen: list[Member] = []
    append = seen.append
    add = miner.add_member
    for raw in inp:
        line = raw[:-1] if raw.endswith(b"\n") else raw
        append(add(line.decode("utf-8", "replace")))
    miner.consolidate()
    rendered: dict[int, bytes] = {}
    chunk: list[bytes] = []
    for member in seen:
        cluster = member.cluster
        text = rendered.get(id(cluster))
        if text is None:
            text = f"{cluster.id}\t{cluster.template}\n".encode()
            rendered[id(cluster)] = text
        chunk.append(text)
        if len(chunk) >= 65_536:
            out.write(b"".join(chunk))
            chunk.clear()
    out.write(b"".join(chunk))
    out.flush()
    return 0
