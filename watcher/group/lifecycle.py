"""A pattern's life, as in Sentry: open -> resolved / ignored -> regressed.

Every change of state goes through one place: the functions here change the group and return
the `Activity` that records it, and `Lifecycle.notify` is the one event every change is announced
on (a structured log record whose event is "resolved"/"ignored"/"regressed"/..., then each
subscriber: alerts, the human log lines, the activity list).

- resolved: by a user, or by a merged fix PR. An event that happens after the resolution
  regresses the pattern (state "regressed", severity one step up).
- ignored: forever, until `count` more events, or until a time; when the condition is met the
  pattern opens again ("unignored"). Ignored patterns still count, but never alert or get fixed.
- regressed: a pattern that came back; it stays regressed until it is resolved or ignored again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from watcher.announce import frame_text
from watcher.classify import raise_severity
from watcher.model import Activity, ErrorGroup

STATES = ("open", "resolved", "ignored", "regressed")
# states in which a pattern may alert and be handed to the fix pipeline
ACTIVE_STATES = frozenset({"open", "regressed"})

Subscriber = Callable[[ErrorGroup, Activity], None]

_MESSAGES = {
    "resolved": "Pattern resolved.",
    "ignored": "Pattern ignored.",
    "reopened": "Pattern reopened.",
    "unignored": "Pattern no longer ignored.",
    "regressed": "Pattern regressed.",
    "merged": "Patterns merged.",
    "split": "Fingerprint split off its pattern.",
    "reclassified": "Pattern reclassified.",
}


class LifecycleError(ValueError):
    """A change that cannot be made (an unknown state, a bad ignore condition, ...)."""


def _change(group: ErrorGroup, action: str, actor: str, at: float, new_state: str,
            **detail: Any) -> Activity:  # fmt: skip
    old = group.state
    group.state, group.state_changed = new_state, at
    if new_state != "ignored":
        group.ignore_until = group.ignore_count = None
    return Activity(group.id, action, actor, at, old, new_state, detail)


def resolve(group: ErrorGroup, actor: str, at: float, **detail: Any) -> Activity:
    """Mark the pattern resolved: an event after `at` regresses it."""
    return _change(group, "resolved", actor, at, "resolved", **detail)


def ignore(
    group: ErrorGroup,
    actor: str,
    at: float,
    *,
    more: int | None = None,
    until: float | None = None,
) -> Activity:
    """Ignore the pattern: forever, until `more` further events, or until the time `until`."""
    if more is not None and more < 1:
        raise LifecycleError("count must be at least 1")
    if until is not None and until <= at:
        raise LifecycleError("the ignore must end in the future")
    detail: dict[str, Any] = {}
    if more is not None:
        detail["more"] = more
    if until is not None:
        detail["until"] = until
    entry = _change(group, "ignored", actor, at, "ignored", **detail)
    group.ignore_count = group.count + more if more is not None else None
    group.ignore_until = until
    return entry


def reopen(group: ErrorGroup, actor: str, at: float) -> Activity:
    """Back to open (undo a resolve or an ignore)."""
    return _change(group, "reopened", actor, at, "open")


def change(group: ErrorGroup, action: str, actor: str, at: float, **params: Any) -> Activity:
    """resolve | ignore (more=, until=) | reopen by name: what the API and the CLI ask for."""
    if action == "resolve":
        return resolve(group, actor, at)
    if action == "ignore":
        return ignore(group, actor, at, more=params.get("more"), until=params.get("until"))
    if action == "reopen":
        return reopen(group, actor, at)
    raise LifecycleError(f"unknown action {action!r}")


def observe(group: ErrorGroup, at: float, *, now: float | None = None) -> Activity | None:
    """After an event at `at` was counted in the group: the automatic change, if any.

    A resolved pattern whose event happened after the resolution regresses (an older event read
    late, e.g. a backlog, does not). An ignore whose count or time is up ends.
    """
    state = group.state
    if state == "resolved" and at > group.state_changed:
        entry = _change(group, "regressed", "watcher", at, "regressed", count=group.count)
        group.severity = raise_severity(group.severity)
        if group.status == "fixed":  # the merged fix did not hold: the pipeline may try again
            group.status = "open"
        return entry
    if state == "ignored" and _ignore_over(group, at if now is None else now):
        return _change(group, "unignored", "watcher", at, "open", count=group.count)
    return None


def _ignore_over(group: ErrorGroup, now: float) -> bool:
    if group.ignore_count is not None and group.count >= group.ignore_count:
        return True
    return group.ignore_until is not None and now >= group.ignore_until


def fold(into: ErrorGroup, other: ErrorGroup) -> None:
    """Add one group's counts, sources and tags to another (a merge)."""
    into.count += other.count
    seen = [t for t in (into.first_seen, other.first_seen) if t]
    into.first_seen = min(seen) if seen else 0.0
    into.last_seen = max(into.last_seen, other.last_seen)
    for source, n in other.sources.items():
        into.sources[source] = into.sources.get(source, 0) + n
    for name, values in other.tags.items():
        mine = into.tags.setdefault(name, {})
        for value, n in values.items():
            mine[value] = mine.get(value, 0) + n
    into.buckets = merge_buckets(into.buckets, other.buckets)


def merge_buckets(
    a: dict[str, dict[str, int]], b: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """Two groups' persisted window buckets, summed per window and bucket."""
    out = {span: dict(buckets) for span, buckets in a.items()}
    for span, buckets in b.items():
        mine = out.setdefault(span, {})
        for epoch, n in buckets.items():
            mine[epoch] = mine.get(epoch, 0) + n
    return out


def merged_entry(into: ErrorGroup, other: ErrorGroup, actor: str, at: float,
                 fingerprints: list[str]) -> Activity:  # fmt: skip
    """The activity record of merging `other` into `into` (the state does not change)."""
    detail = {"merged": other.id, "count": other.count, "fingerprints": fingerprints}
    return Activity(into.id, "merged", actor, at, into.state, into.state, detail)


def reclassified(group: ErrorGroup, category: str, severity: str, fixable: bool, at: float,
                 actor: str = "watcher") -> Activity | None:  # fmt: skip
    """Apply a new classification; the record of what changed, or None when nothing did."""
    before = {"category": group.category, "severity": group.severity, "fixable": group.fixable}
    after = {"category": category, "severity": severity, "fixable": fixable}
    if before == after:
        return None
    group.category, group.severity, group.fixable = category, severity, fixable
    changed = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    return Activity(group.id, "reclassified", actor, at, group.state, group.state, changed)


class Lifecycle:
    """The one event every lifecycle change is announced on: a log record, then subscribers.

    Subscribers are called on the event loop with the group (after the change) and its
    `Activity`; they must not block. A subscriber that raises is logged and skipped.
    """

    def __init__(self, log: Any = None) -> None:
        self.log = log or structlog.get_logger("watcher.lifecycle")
        self.subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call `subscriber(group, activity)` on every change from now on."""
        self.subscribers.append(subscriber)

    def notify(self, group: ErrorGroup, entry: Activity) -> None:
        """Announce one change: the structured record, then every subscriber."""
        # the record's event is the action's name ("regressed"): what log readers key on
        self.log.info(
            entry.action,
            summary=_MESSAGES.get(entry.action, "Pattern changed."),
            lifecycle=True,
            group=group.id,
            old_state=entry.old_state,
            new_state=entry.new_state,
            actor=entry.actor,
            category=group.category,
            severity=group.severity,
            count=group.count,
            pattern=group.template[:200],  # the key the human log lines read
            top_frame=frame_text(group),  # as the NEW and ALERT records write it
            detail=entry.detail,
        )
        for subscriber in self.subscribers:
            try:
                subscriber(group, entry)
            except Exception as exc:  # one bad subscriber must not stop the others
                self.log.error("Lifecycle subscriber failed.", error=repr(exc))


def carry(group: ErrorGroup, stored: ErrorGroup) -> Activity | None:
    """A scan's fresh `group` takes the stored pattern's life (its row must not reopen a resolved
    or ignored pattern), then the change its events make (a resolved pattern seen again
    regresses)."""
    group.state, group.state_changed = stored.state, stored.state_changed
    group.ignore_until, group.ignore_count = stored.ignore_until, stored.ignore_count
    if group.state == "open":
        return None
    if group.ignore_count is not None:  # "N more events" counts on from the stored count
        group.count = max(group.count, stored.count)
    return observe(group, group.last_seen)
