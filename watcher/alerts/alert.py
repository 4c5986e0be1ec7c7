"""One alert: a frozen snapshot of a group, taken when the alert was raised.

The pipeline keeps mutating its ErrorGroups, so `observe` copies the few fields a message needs;
redaction (regex-heavy) happens later, in the sender task, off the pipeline's hot path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from watcher.model import ErrorGroup, GroupUpdate

Kind = Literal["threshold", "new_critical", "pr_opened"]
KINDS: tuple[Kind, ...] = ("new_critical", "threshold", "pr_opened")
Redact = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Alert:
    """What one alert says about one pattern; every str field is log-derived or a URL."""

    kind: Kind
    group_id: str
    category: str
    severity: str
    count: int
    template: str
    exception_type: str | None = None
    top_frame: tuple[str, int | None, str] | None = None  # (file, line, function)
    first_seen: float = 0.0
    last_seen: float = 0.0
    window_counts: dict[str, int] = field(default_factory=dict)
    sample: str = ""
    pr_url: str = ""
    fix_id: str = ""

    def redacted(self, redact: Redact) -> Alert:
        """A copy with every string (window names included) passed through `redact`."""
        frame = self.top_frame
        return dataclasses.replace(
            self,
            group_id=redact(self.group_id),
            category=redact(self.category),
            severity=redact(self.severity),
            template=redact(self.template),
            exception_type=None if self.exception_type is None else redact(self.exception_type),
            top_frame=None if frame is None else (redact(frame[0]), frame[1], redact(frame[2])),
            window_counts={redact(k): v for k, v in self.window_counts.items()},
            sample=redact(self.sample),
            pr_url=redact(self.pr_url),
            fix_id=redact(self.fix_id),
        )


def from_group(kind: Kind, group: ErrorGroup, sample: str = "", **extra: str) -> Alert:
    """Snapshot `group` (its counts as of now) into an Alert."""
    top = group.top_frame
    if not sample and group.samples:
        sample = group.samples[-1].text
    return Alert(
        kind=kind,
        group_id=group.id,
        category=group.category,
        severity=group.severity,
        count=group.count,
        template=group.template,
        exception_type=group.exception_type,
        top_frame=None if top is None else (top.file, top.line, top.function),
        first_seen=group.first_seen,
        last_seen=group.last_seen,
        window_counts=dict(group.window_counts),
        sample=sample,
        **extra,
    )


def from_update(kind: Kind, update: GroupUpdate) -> Alert:
    """Snapshot the group of `update`, with the triggering event as the sample."""
    event = update.event
    return from_group(kind, update.group, event.text or event.message)
