"""One alert: a frozen snapshot of a group, taken when the alert was raised.

The pipeline keeps mutating its ErrorGroups, so `observe` copies the few fields a message needs;
redaction (regex-heavy) happens later, in the sender task, off the pipeline's hot path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from watcher.model import ErrorGroup, GroupUpdate

Kind = Literal["new", "threshold", "regressed", "resolved", "pr_opened", "digest"]
# message order within one batch: news first, the all-clear last
KINDS: tuple[Kind, ...] = ("new", "regressed", "threshold", "pr_opened", "resolved", "digest")
# what users route with `kinds = [...]`; a digest goes wherever alerts were held back
ROUTABLE: tuple[Kind, ...] = ("new", "threshold", "regressed", "resolved", "pr_opened")
# kinds that open (or re-open) a pattern at a destination; "resolved" closes it
OPENING: frozenset[str] = frozenset(("new", "threshold", "regressed"))
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
    service: str = ""  # the source that logged the pattern most
    link: str = ""  # the pattern's page in watcher's API ([http] public_url), or ""
    starts_at: float = 0.0  # when the pattern opened at the destinations (Alertmanager startsAt)

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
            service=redact(self.service),
        )


def from_group(kind: Kind, group: ErrorGroup, sample: str = "", **extra: Any) -> Alert:
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
        service=max(group.sources, key=group.sources.__getitem__) if group.sources else "",
        **extra,
    )


def from_update(kind: Kind, update: GroupUpdate) -> Alert:
    """Snapshot the group of `update`, with the triggering event as the sample."""
    event = update.event
    return from_group(kind, update.group, event.text or event.message)


def digest(count: int, window: float, now: float) -> Alert:
    """The counted stand-in for `count` alerts the rate cap held back in the last `window` s."""
    return Alert(
        kind="digest",
        group_id="",
        category="",
        severity="",
        count=count,
        template=f"{count} more patterns alerted in the last {_span(window)}",
        first_seen=now - window,
        last_seen=now,
    )


def _span(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)} m"
    return f"{seconds:g} s"


def pattern_link(public_url: str, group_id: str) -> str:
    """The pattern's page in watcher's JSON API, or "" when [http] public_url is not set."""
    return (
        f"{public_url.rstrip('/')}/error-monitor/errors/patterns/{group_id}" if public_url else ""
    )
