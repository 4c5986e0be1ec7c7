"""The shortcuts a flood of unique errors takes answer as the general paths do (issue 15)."""

from __future__ import annotations

import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.classify import classify
from watcher.group.table import GroupTable
from watcher.group.template import TemplateMiner
from watcher.group.window import SLOTS, Windows, WindowSpec
from watcher.metrics import Metrics
from watcher.model import LogEvent
from watcher.report import _INLINE_SPECIALS, escape_inline
from watcher.store.known import KnownIds
from watcher.store.rows import dumps


def _event(text: str, t: float = 1000.0) -> LogEvent:
    return LogEvent(message=text, level="error", source="app", timestamp=t)


def test_a_new_group_crosses_a_threshold_of_one_at_its_first_event() -> None:
    """A new group skips the threshold check only when one event cannot cross it."""
    table = GroupTable(alert_count=1, alert_window="5m")
    event = _event("disk full on node-7")
    update = table.add(event, classify(event))
    assert update.is_new and update.crossed_threshold
    assert update.group.status == "alerting"


def test_a_new_group_below_the_threshold_stays_open() -> None:
    table = GroupTable(alert_count=2, alert_window="5m")
    first, second = _event("disk full on node-7"), _event("disk full on node-7", 1001.0)
    assert not table.add(first, classify(first)).crossed_threshold
    assert table.add(second, classify(second)).crossed_threshold


def test_new_clusters_under_eviction_keep_their_ids_and_members() -> None:
    """Each unique line makes a cluster with itself as its only shape; at the cap the least
    recently matched is evicted, and a line seen again after its eviction makes it afresh."""
    miner = TemplateMiner(max_clusters=3)
    words = ["alpha", "bravo", "charlie", "delta", "echo"]
    members = [miner.add_member(f"{w} failed badly today") for w in words]
    assert len(miner) == 3
    assert [m.cluster.evicted for m in members] == [True, True, False, False, False]
    for member in members:
        assert member.count == 1 and member.cluster.size == 1
    live = miner.clusters()[-1]
    assert live.members == [members[-1]] and live.template == "echo failed badly today"
    again = miner.add_member("alpha failed badly today")
    assert again is not members[0] and again.cluster.id == members[0].cluster.id


def test_per_event_counter_children_are_prometheus_children() -> None:
    """labels() by position, by name and after a removal gives what prometheus_client does."""
    errors = Metrics(process=False).errors
    child = errors.labels("internal_error", "medium")
    assert errors.labels("internal_error", "medium") is child
    assert errors.labels(category="internal_error", severity="medium") is child
    child.inc()
    errors.labels("internal_error", "medium").inc(2)
    assert child._value.get() == 3
    errors.remove("internal_error", "medium")
    assert errors.labels("internal_error", "medium") is not child


def test_known_ids_never_says_no_for_an_added_id() -> None:
    rng = random.Random(7)
    known = KnownIds(bits=1 << 12)  # small: many probes collide
    ids = [f"{rng.getrandbits(48):012x}" for _ in range(600)]
    for gid in ids[:300]:
        known.add(gid)
    assert all(gid in known for gid in ids[:300])
    assert 5 not in known


@settings(max_examples=500)
@given(st.text(alphabet=st.sampled_from(list("ab <*>|`[]\\\n\t·é")), max_size=40) | st.text())
def test_escape_inline_is_the_regex_escape(text: str) -> None:
    """escape_inline's translate table escapes exactly what _INLINE_SPECIALS.sub did."""
    flat = " ".join(text.split())
    assert escape_inline(text) == _INLINE_SPECIALS.sub(r"\\\1", flat)


def test_evicted_clusters_shed_their_tokens_and_members_without_sharing_changes() -> None:
    """Evicted clusters share one empty token list and one empty member list; consolidation
    and new lines after many evictions leave both empty (nothing appends to an evicted one)."""
    miner = TemplateMiner(max_clusters=4)
    evicted = []
    words = [a + b + c for a in "bdfk" for b in "aeiou" for c in "lmn"][:40]
    for i, word in enumerate(words):
        member = miner.add_member(f"{word} job {i % 3} failed on node-{i}")
        evicted.append(member.cluster)
        if i % 7 == 0:
            miner.consolidate()
    gone = [c for c in evicted if c.evicted]
    assert gone and all(c.tokens == [] and c.members == [] for c in gone)
    assert all(c.members for c in miner.clusters())


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300)
@given(_JSON)
def test_store_json_is_json_dumps_compact(value: object) -> None:
    """The store's one C encoder writes what json.dumps with the same options writes."""
    assert dumps(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@settings(max_examples=200)
@given(
    st.lists(st.sampled_from([7.0, 60.0, 90.0, 300.0, 3600.0, 86400.0, 0.5]), min_size=1,
             max_size=4, unique=True),
    st.lists(st.floats(min_value=1e9, max_value=2e9), min_size=1, max_size=8),
)  # fmt: skip
def test_window_dumps_keep_their_keys(spans: list[float], times: list[float]) -> None:
    """A dump is keyed per window as the rings' widths always keyed it, with one event or more."""
    windows = Windows(WindowSpec(spans, [f"w{i}" for i in range(len(spans))]))
    for t in sorted(times):
        windows.add(t)
    if len(times) == 1:
        expected = {f"{s:g}": {str(int(times[0] // (s / SLOTS))): 1} for s in spans}
    else:
        expected = {f"{r.width * SLOTS:g}": r.dump() for r in windows.rings}
    assert windows.dump() == expected
    assert list(windows.dump()) == list(expected)
