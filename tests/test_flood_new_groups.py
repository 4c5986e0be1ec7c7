"""The flood's new-group and new-cluster paths (issue 15, session 4) against frozen copies of the
code before them: a group made counted for its first event (GroupTable._first), a cluster made
counted with its only shape (TemplateMiner.add_member), Pipeline.key inlined in the worker pool's
apply. Same groups, updates, evictions, clusters, ids and caches, event for event."""

from __future__ import annotations

import dataclasses
import typing

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.group.table import (
    GroupTable,
    _Live,
    fingerprint_version,
    trace_template,
)
from watcher.group.template import (
    Cluster,
    Member,
    TemplateMiner,
    _current,
    _make_id,
    _member_of,
)
from watcher.group.window import Windows
from watcher.metrics import Metrics
from watcher.model import Classification, ErrorGroup, Frame, GroupUpdate, LogEvent
from watcher.pipeline import Keyed, Pipeline
from watcher.workers import wire
from watcher.workers.pool import WorkerPool
from watcher.workers.wire import Shipment

# -- the group table --------------------------------------------------------------------------


class PlainTable(GroupTable):
    """GroupTable.apply and _open before _first: every group made empty, then counted."""

    def apply(
        self, event: LogEvent, cls: Classification, key: typing.Any, *, at: float | None = None
    ) -> GroupUpdate:
        t = event.timestamp if event.timestamp is not None else (at or self.now)
        if t > self.now:
            self.now = t
        fp, kind, template = key
        gid = self.aliases.get(fp, fp)
        live = self.live.get(gid)
        is_new = False
        if live is None:
            live, is_new = self._plain_open(gid, kind, template, event, cls, t)
            gid = live.group.id
        else:
            self.live.move_to_end(gid)
        group = live.group
        group.count += 1
        group.last_seen = max(group.last_seen, t)
        group.first_seen = min(group.first_seen, t) if group.first_seen else t
        group.sources[event.source] = group.sources.get(event.source, 0) + 1
        if event.fields:
            from watcher.group.table import _count_tags

            _count_tags(group, event.fields)
        if template is not None and template != group.template and gid == fp:
            group.template = template
        live.windows.add(t)
        self._keep_sample(live, event)
        if is_new and self.alert_count > 1:
            crossed = False
        else:
            if group.state != "open":
                wall = self.clock() if self.clock is not None else t
                self._observe(live, t if event.timestamp is not None else wall, wall)
            crossed = self._check_threshold(live, t)
        self.dirty.add(gid)
        return GroupUpdate(group, event, cls, is_new, crossed)

    def _plain_open(
        self,
        gid: str,
        kind: str,
        template: str | None,
        event: LogEvent,
        cls: Classification,
        t: float,
    ) -> tuple[_Live, bool]:
        group = self.recall(gid) if self.recall is not None else None
        if group is None and kind == "trace":
            group = self._upgraded(gid, event)
            if group is not None:
                existing = self.live.get(group.id)
                if existing is not None:
                    return existing, False
        is_new = group is None
        if group is None:
            self.new_fingerprints.append((gid, gid, fingerprint_version(kind)))
            if template is None:
                template = trace_template(event)
            frames = event.frames
            top = event.top_frame if frames else None
            group = ErrorGroup(
                gid,
                kind,
                template,
                cls.category,
                cls.severity,
                cls.fixable,
                cls.suggested_fix,
                event.exception_type,
                Frame(top.file, top.line, top.function, top.in_app) if top else None,
                list(frames[-10:]),
                0,
                t,
                t,
            )
            live = _Live(group, Windows(self.spec), group.severity)
        else:
            live = self._live(group)
        self.live[group.id] = live
        if len(self.live) > self.max_groups:
            self._evict_oldest()
        return live, is_new


_FRAME = st.builds(
    Frame,
    st.sampled_from(["/app/a.py", "/usr/lib/b.py"]),
    st.integers(1, 3),
    st.sampled_from(["f", "g"]),
    st.booleans(),
)
_EVENT = st.builds(
    LogEvent,
    message=st.sampled_from(["disk full on node-1", "slow query 12 ms", "x" * 5000, "boom", ""]),
    source=st.sampled_from(["a", "b"]),
    timestamp=st.none() | st.sampled_from([0.0, 10.0, 100.0, 1000.0, 1000.5, 5000.0]),
    fields=st.sampled_from([{}, {"host": "h1"}, {"pod": "p", "release": "1.2"}]),
    text=st.sampled_from(["", "full text of the record"]),
    exception_type=st.none() | st.sampled_from(["KeyError", "ValueError"]),
    frames=st.lists(_FRAME, max_size=2),
    first_line=st.integers(0, 9),
)
_CLASS = st.sampled_from(
    [
        Classification("internal_error", "medium", False),
        Classification("timeout", "high", True, "retry"),
    ]
)
_SETTINGS = st.tuples(
    st.sampled_from([1, 2, 3]),  # max_groups
    st.sampled_from([1, 2, 10]),  # alert_count
    st.sampled_from([0, 1, 5]),  # samples_per_group
    st.booleans(),  # a recall hook (answering None: nothing stored)
)


def _table_run(
    cls: type[GroupTable],
    settings_: tuple[int, int, int, bool],
    events: list[tuple[LogEvent, Classification, float | None]],
) -> list[typing.Any]:
    max_groups, alert_count, samples, recall = settings_
    evicted: list[typing.Any] = []
    table = cls(max_groups=max_groups, alert_count=alert_count, samples_per_group=samples)
    table.on_evict = lambda group, pending: evicted.append(
        (dataclasses.astuple(group), [dataclasses.astuple(s) for s in pending])
    )
    if recall:
        table.recall = lambda gid: None
    out: list[typing.Any] = []
    for event, klass, at in events:
        # a fresh copy per table: the tables keep (and a sample reads) the event
        event = dataclasses.replace(event, fields=dict(event.fields), frames=list(event.frames))
        update = table.add(event, klass, at=at)
        out.append(
            (
                dataclasses.astuple(update.group),
                update.is_new,
                update.crossed_threshold,
                update.classification,
            )
        )
    for gid, live in table.live.items():
        out.append(
            (
                gid,
                dataclasses.astuple(live.group),
                live.windows.dump(),
                live.base_severity,
                [dataclasses.astuple(s) for s in live.pending_samples],
                live.stored,
            )
        )
    out.append((sorted(table.dirty), table.new_fingerprints, table.evicted, table.now, evicted))
    return out


@settings(max_examples=300, deadline=None)
@given(
    _SETTINGS,
    st.lists(st.tuples(_EVENT, _CLASS, st.none() | st.just(2000.0)), min_size=1, max_size=25),
)
def test_a_group_made_counted_is_the_group_made_then_counted(
    settings_: tuple[int, int, int, bool],
    events: list[tuple[LogEvent, Classification, float | None]],
) -> None:
    """Groups (every field), updates, windows, pending samples, dirty ids, new fingerprints
    and evictions are those of the table that made each group empty and then counted it."""
    assert _table_run(GroupTable, settings_, events) == _table_run(PlainTable, settings_, events)


# -- the miner --------------------------------------------------------------------------------


class PlainMiner(TemplateMiner):
    """TemplateMiner.add_member, _learn and _create before the new cluster was made counted."""

    def add_member(self, message: str) -> Member:
        member = self._by_message.get(message)
        if member is not None and member.cluster.merged_into is not None:
            member = _current(member)
        if member is None or member.cluster.evicted:
            masked = self.joined_of(message)
            member = self._by_masked.get(masked)
            if member is not None and member.cluster.merged_into is not None:
                member = _current(member)
            if member is None or member.cluster.evicted:
                member = self._plain_learn(masked.split(), masked)
                self._by_masked.remember(masked, member)
            self._by_message.remember(message, member)
        member.count += 1
        cluster = member.cluster
        cluster.size += 1
        self._live.move_to_end(cluster.id)
        return member

    def _plain_learn(self, tokens: list[str], masked: str) -> Member:
        cluster = self._best(tokens)
        if cluster is None:
            cluster = self._plain_create(tokens, masked)
            member = Member(tuple(tokens), cluster)
            cluster.members.append(member)
            return member
        if cluster.tokens != tokens:
            from watcher.group.bucket import Bucket
            from watcher.group.split import generalise
            from watcher.group.template import _bucket_key

            old = cluster.tokens
            cluster.tokens = generalise(old, tokens)
            cluster.template = " ".join(cluster.tokens)
            bucket = self._buckets[_bucket_key(old)]
            if type(bucket) is Bucket:
                bucket.retokened(cluster, old)
        return _member_of(cluster, tuple(tokens))

    def _plain_create(self, tokens: list[str], template: str) -> Cluster:
        live = self._live
        cluster = Cluster(_make_id(template, live, self._aliases), template, 0, tokens)
        if len(live) >= self.max_clusters:
            self._make_room()
        self._add_live(cluster)
        return cluster


_WORD = st.sampled_from(["a", "b", "c", "1", "x y", "ref=f5cae3bf", "<*>"])
_FIRST = st.sampled_from(["GET", "PUT", "7", "8", "<*>"])
_MESSAGE = st.builds(
    lambda first, rest: " ".join([first, *rest]), _FIRST, st.lists(_WORD, min_size=1, max_size=4)
)


def _miner_run(
    miner: TemplateMiner, ops: typing.Sequence[str | None]
) -> list[tuple[typing.Any, ...]]:
    out: list[tuple[typing.Any, ...]] = []
    evicted: list[str] = []
    miner.on_evict = lambda cluster: evicted.append(cluster.id)
    for op in ops:
        if op is None:
            miner.consolidate()
            continue
        member = miner.add_member(op)
        cluster = member.cluster
        out.append((cluster.id, cluster.template, cluster.size, member.count, member.tokens))
    out.append(tuple((c.id, c.template, c.size, c.seq, list(c.tokens)) for c in miner.clusters()))
    caches = (miner._by_message, miner._by_masked)
    out.append(
        tuple((list(c.items()) and [(k, m.cluster.id) for k, m in c.items()]) for c in caches)
    )
    out.append((tuple(c.chars for c in caches), evicted, miner._arrivals, sorted(miner._buckets)))
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_MESSAGE | _MESSAGE | st.none(), max_size=60),
    st.sampled_from([1, 2, 3, 50]),
    st.sampled_from([2, 3, 50_000]),
)
def test_a_cluster_made_counted_is_the_cluster_made_then_counted(
    ops: list[str | None], max_clusters: int, cache_limit: int
) -> None:
    """Clusters (ids, templates, sizes, arrival order), members, the caches (entries, order,
    characters), evictions and buckets are those of the miner before, with caches so small
    they are cleared on the way."""
    import watcher.group.template as template

    saved = template.CACHE_LIMIT
    template.CACHE_LIMIT = cache_limit
    try:
        got = _miner_run(TemplateMiner(max_clusters=max_clusters), ops)
        want = _miner_run(PlainMiner(max_clusters=max_clusters), ops)
    finally:
        template.CACHE_LIMIT = saved
    assert got == want


# -- the worker pool's apply ------------------------------------------------------------------


def _shipment(messages: list[str]) -> Shipment:
    shipment = Shipment(0, "app", stats={"lines": len(messages)}, lines={"app": len(messages)})
    for i, text in enumerate(messages):
        event = LogEvent(text, source="app", level="error", timestamp=1000.0 + i)
        ignored = text.startswith("ignored")
        cls = Classification("internal_error", "medium", False, ignored=ignored)
        shipment.errors.append((wire.pack_event(event), wire.pack_class(cls)))
    return shipment


class KeyCounting(Pipeline):
    """A pipeline whose `key` is its own: the pool must call it."""

    keys = 0

    def key(self, event: LogEvent, cls: Classification, keyed: Keyed) -> None:
        KeyCounting.keys += 1
        super().key(event, cls, keyed)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["disk full 1", "disk full 2", "ignored x", "slow"]), max_size=12))
def test_the_pool_keys_a_shipment_as_pipeline_key_does(messages: list[str]) -> None:
    """The items the pool's apply makes (the key inlined) are those Pipeline.key makes, with
    the read time of the clock; a pipeline with a key of its own has it called."""
    ticks = iter(range(1000))
    pipeline = Pipeline(GroupTable(), metrics=Metrics(process=False), clock=lambda: next(ticks))
    pool = WorkerPool(1, typing.cast(typing.Any, None), follow=False, metrics=pipeline.metrics)
    got = pool.apply(pipeline, _shipment(messages)).items
    plain_ticks = iter(range(1000))
    plain = Pipeline(GroupTable(), metrics=Metrics(process=False), clock=lambda: next(plain_ticks))
    want = Keyed()
    for packed, packed_cls in _shipment(messages).errors:
        event, cls = wire.unpack_event(packed), wire.unpack_class(packed_cls)
        if cls.ignored:
            want.items.append((event, cls, None, None))
        else:
            plain.key(event, cls, want)
    assert got == want.items
    KeyCounting.keys = 0
    own = KeyCounting(GroupTable(), metrics=Metrics(process=False))
    pool.apply(own, _shipment(messages))
    assert KeyCounting.keys == sum(not m.startswith("ignored") for m in messages)


def test_the_ids_a_worker_ships_are_those_the_parent_would_make() -> None:
    """A worker's Front ships the masked text and the cluster id of each message it saw first;
    the parent's miner (through the pool's seams) keys every event as a pipeline that masks and
    hashes for itself does, evictions and clusters made again included."""
    from watcher.config import load_config
    from watcher.model import RawLine
    from watcher.wiring import build_pipeline
    from watcher.workers.child import Front

    def word(i: int) -> str:  # a word of letters per i: a cluster each (masking keeps it)
        return "".join(chr(97 + (i // 26**k) % 26) for k in range(3))

    lines = [f"2026-01-01T00:00:0{i % 10}Z ERROR {word(i)} failed ref={i:08x}" for i in range(60)]
    lines += lines[:20]  # seen again: from the caches, or made again after their eviction
    config = load_config(None)
    front = build_pipeline(config, Metrics(process=False), kind=Front)
    assert isinstance(front, Front)
    parent = Pipeline(GroupTable(max_groups=5), metrics=Metrics(process=False))
    pool = WorkerPool(1, config, follow=False, metrics=parent.metrics)
    pool.install(parent)
    plain = Pipeline(GroupTable(max_groups=5), metrics=Metrics(process=False))
    got, want, shipped = [], [], 0
    for start in range(0, len(lines), 16):
        batch = [RawLine(text, "app", "app") for text in lines[start : start + 16]]
        front.feed([dataclasses.replace(line) for line in batch])
        shipment = Shipment(0, "app", errors=front.out, masked=front.masked, ids=front.ids)
        front.out, front.masked, front.ids = [], {}, {}
        assert set(shipment.ids) == set(shipment.masked.values())
        shipped += len(shipment.ids)
        got += [key for _, _, key, _ in pool.apply(parent, shipment).items]
        want += [key for _, _, key, _ in plain.take(batch).items]
    assert got == want and len(got) >= 60 and shipped == 60  # (the last record still open)
    assert len({key[0] for key in got}) == 60
    assert [(c.id, c.template) for c in parent.table.miner.clusters()] == [
        (c.id, c.template) for c in plain.table.miner.clusters()
    ]
