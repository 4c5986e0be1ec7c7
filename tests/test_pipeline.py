"""The synchronous pipeline: raw lines in, groups out, every line accounted for."""

from __future__ import annotations

import re
from datetime import UTC

from watcher.classify import Rule
from watcher.group.table import GroupTable
from watcher.metrics import Metrics
from watcher.pipeline import Pipeline

from .helpers import DATA, raw_lines


def run(text: str, **kwargs: object) -> Pipeline:
    p = Pipeline(GroupTable(), **kwargs)  # type: ignore[arg-type]
    p.feed(raw_lines(text))
    p.flush(force=True)
    return p


def test_mixed_log_groups() -> None:
    """The mixed sample gives one group per error pattern with the right counts and categories."""
    p = run((DATA / "mixed.log").read_text())
    groups = {g.id: g for g in p.table.snapshot()}
    by_count = sorted((g.count, g.category) for g in groups.values())
    assert by_count == [
        (1, "internal_error"),
        (2, "cache_error"),
        (2, "external_service_error"),
        (2, "timeout_error"),
    ]
    timeout = next(g for g in groups.values() if g.category == "timeout_error")
    assert timeout.kind == "trace"
    assert timeout.exception_type == "httpx.ReadTimeout"
    assert timeout.top_frame is not None and timeout.top_frame.file.endswith("payments.py")
    assert timeout.top_frame.function == "charge"


def test_accounting_counts_every_line() -> None:
    """Lines, events and error events add up: every physical line lands in one event."""
    text = (DATA / "mixed.log").read_text()
    p = run(text)
    s = p.stats
    assert s.lines == len(text.splitlines()) == 28
    assert s.error_events == 7
    assert s.events == 28 - (6 * 2) - 3  # two 7-line tracebacks and one 4-line Java trace


def test_period_filters_by_timestamp() -> None:
    """Events outside the period are counted as out of window, not grouped."""
    from datetime import datetime

    start = datetime(2026, 11, 21, 10, 0, 7, tzinfo=UTC).timestamp()
    p = run((DATA / "mixed.log").read_text(), period=(start, None))
    assert p.stats.out_of_window_events == 3
    assert p.stats.error_events == 4


def test_ignore_rule_counts_but_does_not_group() -> None:
    """An ignore rule keeps the event out of the groups and counts it as ignored."""
    rules = [Rule(match=re.compile("redis"), ignore=True)]
    p = run((DATA / "mixed.log").read_text(), rules=rules)
    assert p.stats.ignored_events == 2
    assert all(g.category != "cache_error" for g in p.table.snapshot())


def test_cursor_is_of_last_completed_event() -> None:
    """The committed cursor never points past a line whose event is still pending."""
    p = Pipeline(GroupTable())
    lines = raw_lines("INFO ok\nERROR boom\nTraceback (most recent call last):\n")
    p.feed(lines)
    cursors = p.take_cursors().get("app", {})
    assert cursors.get("s", 0) < 3  # the traceback is still open
    p.flush(force=True)
    assert p.take_cursors()["app"]["s"] == 3


def test_metrics_follow_stats() -> None:
    """The Prometheus counters say the same as the run's stats."""
    m = Metrics()
    p = run((DATA / "mixed.log").read_text(), metrics=m)
    assert m.registry.get_sample_value("watcher_lines_total", {"source": "app"}) == p.stats.lines
    total = sum(
        s.value for f in m.registry.collect() for s in f.samples if s.name == "watcher_errors_total"
    )
    assert total == p.stats.error_events


def test_busy_stream_commits_up_to_its_open_record() -> None:
    """A stream that always has a record open still commits the line before that record."""
    p = Pipeline(GroupTable())
    p.feed(raw_lines("INFO a\nINFO b\nINFO c\n"))
    assert p.take_cursors() == {"app": {"s": 2}}  # "INFO c" waits for its successor
    p.feed(raw_lines("INFO a\nINFO b\nINFO c\nINFO d\n")[3:])
    assert p.take_cursors() == {"app": {"s": 3}}
    assert p.take_cursors() == {}  # nothing new since the last take


def test_open_record_of_one_stream_holds_back_the_others() -> None:
    """No stream's cursor passes a line read after another stream's still-open record began."""
    p = Pipeline(GroupTable())
    a = raw_lines("ERROR boom\nTraceback (most recent call last):\n", stream="a")
    b = raw_lines("INFO x\nINFO y\nINFO z\n", stream="b")
    for n, line in enumerate([a[0], b[0], a[1], b[1], b[2]], start=1):
        line.cursor = n  # one position per line across the streams, like a shared log
    p.feed([a[0], b[0], a[1], b[1], b[2]])
    assert p.take_cursors() == {}  # a's record began at the first line: nothing is safe
    p.flush(force=True)
    assert p.take_cursors() == {"app": {"a": 3, "b": 5}}


def test_record_open_across_batches_holds_cursors_back() -> None:
    """While a record that began in an earlier batch is open, later batches commit nothing."""
    p = Pipeline(GroupTable())
    lines = raw_lines(
        "INFO ok\nERROR boom\nTraceback (most recent call last):\n"
        '  File "a.py", line 1, in f\nValueError: x\nINFO next\n'
    )
    p.feed(lines[:3])
    assert p.take_cursors() == {"app": {"s": 1}}
    p.feed(lines[3:5])
    assert p.take_cursors() == {}
    p.feed(lines[5:])  # closes the traceback record; "INFO next" is open now
    assert p.take_cursors() == {"app": {"s": 5}}


def test_parse_fallbacks_are_counted() -> None:
    """A line that looks like JSON but does not parse is counted in parse_fallbacks."""
    p = run('{"level": "info", "msg": "cut off\n{"level": "info"}\nINFO plain\n{not json}\n')
    assert p.stats.parse_fallbacks == 2
    assert p.stats.events == 4


def test_app_paths_decide_in_app_frames() -> None:
    """With [parse] app_paths, only frames under those prefixes are in-app (top frame moves)."""
    text = (DATA / "mixed.log").read_text()
    p = Pipeline(GroupTable(), app_paths=("/usr/lib/python3.11/site-packages/httpx",))
    p.feed(raw_lines(text))
    p.flush(force=True)
    timeout = next(g for g in p.table.snapshot() if g.category == "timeout_error")
    assert timeout.top_frame is not None and timeout.top_frame.function == "post"


def test_events_behind_an_open_record_wait_with_their_cursors() -> None:
    """An error in stream B read after stream A opened a trace is not counted before A closes,
    so a commit never stores counts whose cursors it does not carry."""
    from watcher.model import RawLine

    p = Pipeline(GroupTable())
    lines = [
        RawLine("ERROR job failed", source="app", stream="A", cursor=1, line_no=1),
        RawLine("Traceback (most recent call last):", source="app", stream="A", cursor=2,
                line_no=2),
        RawLine("ERROR disk full on /dev/sda1", source="app", stream="B", cursor=1, line_no=1),
        RawLine("INFO fine", source="app", stream="B", cursor=2, line_no=2),
    ]
    p.feed(lines)
    assert p.stats.error_events == 0 and "B" not in p.take_cursors().get("app", {})
    p.flush(force=True)
    assert p.stats.error_events == 2
    assert p.take_cursors()["app"] == {"A": 2, "B": 2}
