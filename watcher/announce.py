"""The daemon's own account of what it sees: one structured log record per pattern event.

`new` when a pattern first appears, `alert` when it crosses its alert threshold, `fix` when a
fix attempt ends, and a periodic `summary`. The records carry the data as fields (group, count,
category, severity, pattern, top_frame); `logs_human` turns them into `NEW …`, `ALERT …` lines
on a terminal and the JSON format keeps them machine-readable. A flood of new patterns is capped
per interval (the rest are counted in the next summary), so a storm never floods the log.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import structlog

from watcher.model import ErrorGroup, Fix, GroupUpdate, Stats

MAX_NEW_PER_INTERVAL = 20  # NEW lines per summary interval; more are counted, not printed
SUMMARY_TOP = 5
PATTERN_CHARS = 200

log = structlog.get_logger("watcher.patterns")


def frame_text(group: ErrorGroup) -> str | None:
    """`file:line in function` of the group's top frame, or None."""
    frame = group.top_frame
    if frame is None:
        return None
    where = f"{frame.file}:{frame.line}" if frame.line is not None else frame.file
    return f"{where} in {frame.function}" if frame.function else where


def pattern_fields(group: ErrorGroup) -> dict[str, Any]:
    """What every pattern record carries."""
    pattern = group.template
    if group.exception_type and not pattern.startswith(group.exception_type):
        pattern = f"{group.exception_type}: {pattern}"
    return {
        "group": group.id,
        "count": group.count,
        "category": group.category,
        "severity": group.severity,
        "pattern": pattern[:PATTERN_CHARS],
        "top_frame": frame_text(group),
    }


class Announcer:
    """An on_updates hook plus the fix and summary records; one per daemon."""

    def __init__(self, *, cap: int = MAX_NEW_PER_INTERVAL) -> None:
        self.cap = cap
        self.new_shown = 0
        self.new_unshown = 0  # new patterns over the cap since the last summary

    def observe(self, updates: Iterable[GroupUpdate]) -> None:
        """Log `new` and `alert` records for the updates of one batch."""
        for update in updates:
            if update.is_new:
                self._new(update.group)
            if update.crossed_threshold:
                log.warning("alert", **pattern_fields(update.group))

    def _new(self, group: ErrorGroup) -> None:
        if self.new_shown >= self.cap:
            self.new_unshown += 1
            return
        self.new_shown += 1
        log.info("new", **pattern_fields(group))

    def fix(self, group: ErrorGroup | None, fix: Fix) -> None:
        """A `fix` record for a finished fix attempt (status, PR or the reason it failed)."""
        fields = pattern_fields(group) if group is not None else {"group": fix.group_id}
        level = "warning" if fix.status in ("failed", "rejected") else "info"
        getattr(log, level)("fix", status=fix.status, pr=fix.pr_url or None,
                            error=fix.error or None, **fields)  # fmt: skip

    def summary(self, groups: list[ErrorGroup], stats: Stats, *, window: str = "5m") -> None:
        """The periodic one-line summary: lines, errors, patterns and the busiest ones."""
        top = sorted(groups, key=lambda g: g.window_counts.get(window, 0), reverse=True)
        busiest = [
            {
                "group": g.id,
                "category": g.category,
                "severity": g.severity,
                "count": g.window_counts.get(window, 0),
                "counts": g.window_counts,
                "trend": g.trend,
            }
            for g in top[:SUMMARY_TOP]
            if g.window_counts.get(window, 0)
        ]
        extra = {"new_not_shown": self.new_unshown} if self.new_unshown else {}
        log.info("summary", lines=stats.lines, errors=stats.error_events, patterns=len(groups),
                 events=stats.events, top=busiest, **extra)  # fmt: skip
        self.new_shown = self.new_unshown = 0
