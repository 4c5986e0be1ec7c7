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
