"""The progress line shown on a terminal during long scans and replays."""

from __future__ import annotations

import io

from watcher.model import Stats
from watcher.scan import Progress


def test_progress_line_shows_counts_and_is_rate_limited() -> None:
    """Progress prints lines, errors, groups and a rate, at most a few times a second."""
    out = io.StringIO()
    progress = Progress(out)
    progress(Stats(lines=12_345, error_events=67), 8)
    progress(Stats(lines=20_000, error_events=70), 9)  # within 0.25 s: not printed
    text = out.getvalue()
    assert "12,345 lines" in text and "67 errors" in text and "8 groups" in text
    assert "20,000" not in text
    progress.close()
    assert out.getvalue().endswith("\r")
