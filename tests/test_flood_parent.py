"""The shortcuts of the flood's parent process (issue 15) answer as the straightforward code:
the wire's unpacking, the miner's lone-cluster buckets, watcher_errors counted per batch."""

from __future__ import annotations

import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.group.bucket import Bucket
from watcher.group.table import GroupTable, Unrecalled
from watcher.group.template import Cluster, TemplateMiner, _need
from watcher.metrics import Metrics
from watcher.model import Classification, Frame, LogEvent
from watcher.pipeline import Keyed, Pipeline
from watcher.workers import wire

# -- the wire ---------------------------------------------------------------------------------

_TEXT = st.text(max_size=12)
_FRAME = st.builds(Frame, _TEXT, st.integers(0, 500), _TEXT, st.booleans())
_EVENT = st.builds(
    LogEvent,
    message=_TEXT,
    source=_TEXT,
    stream=_TEXT,
    level=st.none() | st.sampled_from(["error", "warning"]),
    timestamp=st.none() | st.floats(0, 2e9),
    logger=st.none() | _TEXT,
    format=st.sampled_from(["plain", "json"]),
    fields=st.dictionaries(_TEXT, st.integers() | _TEXT, max_size=3),
    text=_TEXT,
    exception_type=st.none() | _TEXT,
    exception_message=st.none() | _TEXT,
    frames=st.lists(_FRAME, max_size=3),
    first_line=st.integers(0, 99),
    last_line=st.integers(0, 99),
    line_count=st.integers(1, 9),
    cursor=st.none() | st.dictionaries(_TEXT, st.integers(), max_size=2),
    truncated=st.booleans(),
)
_CLASS = st.builds(
    Classification,
    st.sampled_from(["internal_error", "database_error", "timeout"]),
    st.sampled_from(["low", "medium", "high"]),
    st.booleans(),
    st.sampled_from(["", "retry"]),
    st.booleans(),
    st.sampled_from(["builtin", "mine"]),
)


def _unpack_event_plainly(packed: wire.Packed) -> LogEvent:
    """unpack_event before issue 15's flood work: slices around the frames."""
    frames = [Frame(*f) for f in packed[11]]
    return LogEvent(*packed[:11], frames, *packed[12:])


@settings(max_examples=200, deadline=None)
@given(_EVENT)
def test_unpack_event_gives_the_event_the_plain_unpacking_gives(event: LogEvent) -> None:
    packed = wire.pack_event(event)
    got = wire.unpack_event(packed)
    assert got == _unpack_event_plainly(packed) == event
    assert type(got.frames) is list and got.frames is not packed[11]


@settings(max_examples=100, deadline=None)
@given(st.lists(_CLASS, min_size=1, max_size=30), st.integers(1, 4))
def test_unpack_class_gives_an_equal_classification_through_the_memo(
    classes: list[Classification], memo: int
) -> None:
    """Whatever the order and however small the memo (cleared when full), each packed
    classification unpacks to one equal to what was packed, field for field."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(wire, "CLASS_MEMO", memo)
        patch.setattr(wire, "_CLASSES", {})
        for cls in classes + classes[::-1]:
            got = wire.unpack_class(wire.pack_class(cls))
            assert got == cls and wire.pack_class(got) == wire.pack_class(cls)
            assert [type(v) for v in wire.pack_class(got)] == [
                type(v) for v in wire.pack_class(cls)
            ]
        assert len(wire._CLASSES) <= memo


# -- lone clusters in the miner's buckets -------------------------------------------------------


class BucketMiner(TemplateMiner):
    """The miner before issue 15's flood work: every bucket a Bucket, even of one cluster."""

    def _add_live(self, cluster: Cluster) -> None:
        self._live[cluster.id] = cluster
        key = (len(cluster.tokens), cluster.tokens[0] if cluster.tokens else "")
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Bucket(key[0], _need(key[0]))
        self._arrivals += 1
        typing.cast(Bucket, bucket).add(cluster, self._arrivals)

    def _unbucket(self, cluster: Cluster) -> None:
        key = (len(cluster.tokens), cluster.tokens[0] if cluster.tokens else "")
        bucket = typing.cast(Bucket, self._buckets[key])
        bucket.remove(cluster)
        if not bucket.clusters:
            del self._buckets[key]


def _trace(miner: TemplateMiner, ops: typing.Sequence[str | None]) -> list[tuple[str, str, int]]:
    out = []
    for op in ops:
        if op is None:
            miner.consolidate()
            continue
        cluster = miner.add(op)
        out.append((cluster.id, cluster.template, cluster.size))
    return out + [(c.id, c.template, c.size) for c in miner.clusters()]


_WORD = st.sampled_from(["a", "b", "c", "1", "x y"])
_FIRST = st.sampled_from(["GET", "PUT", "POST", "7", "8"])  # digits: the <*> bucket
_MESSAGE = st.builds(
    lambda first, rest: " ".join([first, *rest]), _FIRST, st.lists(_WORD, min_size=1, max_size=4)
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_MESSAGE | _MESSAGE | _MESSAGE | st.none(), max_size=80), st.sampled_from([2, 3, 50])
)
def test_lone_cluster_buckets_give_the_clusters_buckets_give(
    ops: list[str | None], max_clusters: int
) -> None:
    """Clusters alone in their bucket (made, joined by a second one, evicted, merged, split)
    end in the same clusters, ids, templates and sizes as with a Bucket for each."""
    assert _trace(TemplateMiner(max_clusters=max_clusters), ops) == _trace(
        BucketMiner(max_clusters=max_clusters), ops
    )


# -- watcher_errors per batch -------------------------------------------------------------------


def _errors(metrics: Metrics) -> dict[tuple[str, ...], float]:
    out = {}
    for metric in metrics.errors.collect():
        for sample in metric.samples:
            out[(sample.labels["category"], sample.labels["severity"])] = sample.value
    return out


def _keyed(pipeline: Pipeline, messages: list[str]) -> Keyed:
    keyed = Keyed()
    for i, text in enumerate(messages):
        event = LogEvent(text, source="app", level="error", timestamp=1000.0 + i)
        cls = Classification("timeout" if "slow" in text else "internal_error", "medium", False)
        pipeline.key(event, cls, keyed)
    return keyed


def test_errors_counted_per_batch_are_those_counted_per_event() -> None:
    """watcher_errors{category,severity} after a batch: one per event, the severity the event's
    group had when it was counted (a group that starts alerting mid-batch moves to high)."""
    pipeline = Pipeline(GroupTable(alert_count=3), metrics=Metrics(process=False))
    messages = ["disk full", "slow query", "disk full", "disk full", "disk full", "slow query"]
    updates = pipeline.apply(_keyed(pipeline, messages))
    expected: dict[tuple[str, ...], float] = {}
    severities = ["medium", "medium", "medium", "high", "high", "medium"]
    for update, severity in zip(updates, severities, strict=True):
        assert update.group.severity in ("medium", "high")
        label = (update.classification.category, severity)
        expected[label] = expected.get(label, 0) + 1
    assert _errors(pipeline.metrics) == expected


def test_errors_counted_so_far_stay_counted_when_a_recall_misses() -> None:
    """Unrecalled mid-batch: the events counted before it are in watcher_errors at once, and
    the retried call adds the rest, each once."""
    table = GroupTable()
    pipeline = Pipeline(table, metrics=Metrics(process=False))
    keyed = _keyed(pipeline, ["disk full", "slow query", "queue stuck"])
    missing = keyed.items[2][2][0]  # type: ignore[index]
    answered: set[str] = set()

    def recall(group_id: str) -> None:
        if group_id == missing and group_id not in answered:
            answered.add(group_id)
            raise Unrecalled(group_id)

    table.recall = recall
    with pytest.raises(Unrecalled):
        pipeline.apply(keyed)
    assert _errors(pipeline.metrics) == {("internal_error", "medium"): 1, ("timeout", "medium"): 1}
    pipeline.apply(keyed)
    assert _errors(pipeline.metrics) == {("internal_error", "medium"): 2, ("timeout", "medium"): 1}
