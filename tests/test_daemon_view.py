"""The per-category rate history behind the dashboard chart."""

from __future__ import annotations

from watcher.daemon_view import RateHistory


def test_rate_history_buckets_and_ages_out() -> None:
    """Events land in the minute bucket of their time and leave the series after a day."""
    now = [1_000_000 * 60.0]
    rates = RateHistory(clock=lambda: now[0])
    rates.add("database_error")
    rates.add("database_error", now[0] - 120)
    rates.add("timeout_error", now[0] - 3600 * 2)
    hour = rates.series(bucket_seconds=60, buckets=60)
    assert hour == {"database_error": [0] * 57 + [1, 0, 1]}
    day = rates.series(bucket_seconds=1800, buckets=48)
    assert sum(day["database_error"]) == 2 and sum(day["timeout_error"]) == 1
    now[0] += 24 * 3600
    assert rates.series(bucket_seconds=1800, buckets=48) == {}


def test_unknown_category_is_ignored() -> None:
    """A category outside the nine is not counted (bounded memory)."""
    rates = RateHistory(clock=lambda: 6000.0)
    rates.add("made_up")
    assert rates.series(bucket_seconds=60, buckets=5) == {}
