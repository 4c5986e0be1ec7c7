"""The live group table: fingerprints, counts, thresholds, eviction and recall."""

from __future__ import annotations

from watcher.classify import classify
from watcher.group.table import GroupTable, trace_fingerprint
from watcher.model import ErrorGroup, Frame, LogEvent


def trace_event(line: int, prefix: str = "/app/src") -> LogEvent:
    return LogEvent(
        message="boom",
        level="error",
        exception_type="KeyError",
        exception_message="'user'",
        frames=[
            Frame(f"{prefix}/api/views.py", line, "get_user"),
            Frame("/usr/lib/python3.11/site-packages/flask/app.py", 10, "dispatch", False),
        ],
        source="app",
        timestamp=1000.0 + line,
    )


def msg_event(text: str, t: float = 1000.0) -> LogEvent:
    return LogEvent(message=text, level="error", source="app", timestamp=t)


def test_trace_fingerprint_ignores_line_numbers_and_deploy_prefix() -> None:
    """Moving code or deploying to another root keeps the fingerprint."""
    assert trace_fingerprint(trace_event(10)) == trace_fingerprint(trace_event(99, "/srv/app"))


def test_templates_group_by_statement() -> None:
    """Two lines of one statement share a group; another statement gets its own."""
    t = GroupTable()
    a = msg_event("payment 1234 failed for user 77")
    b = msg_event("payment 98 failed for user 12")
    c = msg_event("disk full on /dev/sda1")
    ga = t.add(a, classify(a)).group
    gb = t.add(b, classify(b)).group
    gc = t.add(c, classify(c)).group
    assert ga.id == gb.id != gc.id
    assert ga.count == 2


def test_threshold_crossing_raises_severity_once() -> None:
    """Crossing alert_count in the alert window flags the update and escalates severity."""
    t = GroupTable(alert_count=3, alert_window="5m")
    crossed = []
    for i in range(5):
        ev = msg_event("Rate limit exceeded for key 1", 1000.0 + i)
        crossed.append(t.add(ev, classify(ev)).crossed_threshold)
    assert crossed == [False, False, True, False, False]
    group = t.snapshot()[0]
    assert group.severity == "high" and group.status == "alerting"


def test_eviction_and_recall() -> None:
    """Over the cap the least recently seen group is evicted, and recalled with its count."""
    evicted: dict[str, ErrorGroup] = {}
    t = GroupTable(
        max_groups=2,
        on_evict=lambda g, s: evicted.__setitem__(g.id, g),
        recall=lambda gid: evicted.pop(gid, None),
    )
    events = [trace_event(1), msg_event("alpha beta gamma"), msg_event("one two three four")]
    for ev in events:
        t.add(ev, classify(ev))
    assert len(t) == 2 and len(evicted) == 1
    again = t.add(events[0], classify(events[0]))
    assert not again.is_new and again.group.count == 2


def test_an_evicted_group_leaves_with_its_buckets_unless_nothing_keeps_it() -> None:
    """The store gets an evicted group's window buckets; a table without a store (replay)
    skips making them, and counts and evicts the same."""
    for dump in (True, False):
        evicted: list[ErrorGroup] = []
        t = GroupTable(max_groups=1, on_evict=lambda g, s, out=evicted: out.append(g))
        t.dump_evicted = dump
        for i, text in enumerate(("alpha beta gamma", "one two three four")):
            ev = msg_event(text, 1_700_000_000.0 + i)
            t.add(ev, classify(ev))
        (gone,) = evicted
        assert gone.count == 1 and len(t) == 1
        assert gone.buckets == ({"60": {"1700000000": 1}, "300": {"340000000": 1},
                                 "3600": {"28333333": 1}} if dump else {})  # fmt: skip


def test_samples_are_bounded() -> None:
    """A group keeps at most samples_per_group samples however often it occurs."""
    t = GroupTable(samples_per_group=3)
    for i in range(500):
        ev = msg_event(f"timeout after {i} ms", 1000.0 + i)
        t.add(ev, classify(ev))
    group = t.snapshot()[0]
    assert group.count == 500 and len(group.samples) == 3


def test_between_two_commits_the_store_gets_the_first_samples_and_the_latest_only() -> None:
    """1,000 events of a group between two commits: the store is handed samples_per_group
    samples (the first two and the latest), not one more for every 100th event."""
    t = GroupTable(samples_per_group=3)
    for i in range(1000):
        ev = msg_event(f"timeout after {i} ms", 1000.0 + i)
        t.add(ev, classify(ev))
    _, samples = t.take_dirty()
    (handed,) = samples.values()
    assert [s.timestamp for s in handed] == [1000.0, 1001.0, 1999.0]
    assert handed == t.snapshot()[0].samples


def test_window_counts_in_snapshot() -> None:
    """Snapshots carry the per-window counts at the newest event time."""
    t = GroupTable()
    for i in range(5):
        ev = msg_event("queue overflow on worker 3", 10_000.0 + i * 100)
        t.add(ev, classify(ev))
    g = t.snapshot()[0]
    assert g.window_counts == {"1m": 1, "5m": 3, "1h": 5}


def test_trace_group_template_is_made_when_the_group_opens() -> None:
    """A trace group is titled "ExcType: masked message"; later events do not retitle it."""
    table = GroupTable()
    first = trace_event(10)
    first.exception_message = "user 42 not found"
    update = table.add(first, classify(first))
    assert update.group.template == "KeyError: user <*> not found"
    second = trace_event(11)
    second.exception_message = "other text"
    assert table.add(second, classify(second)).group.template == "KeyError: user <*> not found"


def test_threshold_rearms_after_the_rate_falls() -> None:
    """After the rate drops below half the threshold, a new burst crosses it again."""
    t = GroupTable(alert_count=4, alert_window="1m")
    crossings = []
    for start in (1000.0, 5000.0):  # two bursts far apart
        for i in range(5):
            ev = msg_event("Rate limit exceeded for key 1", start + i)
            crossings.append(t.add(ev, classify(ev)).crossed_threshold)
    assert crossings.count(True) == 2
