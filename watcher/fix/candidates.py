"""Which groups the fix pipeline tries, in what order, and how far an analysis may go.

Pure functions over a group and its recorded fixes (newest first): the orchestrator reads the
store and the clock, these decide. A group is tried when it has an in-app frame (code of this
repository to fix), is frequent enough (or alerting), and its history does not rule it out: a
pull request open or merged, a human closing one, an attempt still running, or a
failed/refused/low-confidence attempt too recently.

The category's `fixable` flag is a prior, not a verdict: it orders the candidates (a KeyError
before a locked database), and the model's fixability score decides whether code is written.
Fragments of one bug — several groups failing at the same in-app location — are tried once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from watcher.fix.schema import Analysis
from watcher.model import SEVERITY_RANK, ErrorGroup, Fix, Frame

# A recorded attempt that did not end with a PR: not retried within retry_failed_after.
RETRY_LATER = frozenset({"failed", "rejected", "analyzed", "patched"})
# Statuses that count against the hourly fix budget: every one cost an analysis (or would have).
NOT_AN_ATTEMPT = frozenset({"skipped"})

Stage = Literal["root_cause", "patch", "pr"]


@dataclass(frozen=True, slots=True)
class Gate:
    """The thresholds candidate selection uses."""

    min_occurrences: int = 3
    retry_failed_after: float = 6 * 3600.0
    stale_after: float = 3600.0  # a "pending" fix older than this died with its process


def skip_reason(
    group: ErrorGroup, fixes: Sequence[Fix], gate: Gate, now: float, *, dry_run: bool = False
) -> str | None:
    """Why `group` is not a candidate now, or None when it is."""
    if location(group) is None:
        return "no in-app frame: nothing in this repository's code to fix"
    if group.status in ("fixed", "ignored"):
        return f"group is {group.status}"
    if group.state in ("resolved", "ignored"):
        return f"pattern is {group.state}"
    if group.count < gate.min_occurrences and group.status != "alerting":
        return f"{group.count} occurrences, below min_occurrences {gate.min_occurrences}"
    return history_reason(fixes, gate, now, dry_run=dry_run)


def history_reason(
    fixes: Sequence[Fix], gate: Gate, now: float, *, dry_run: bool = False
) -> str | None:
    """Why the group's recorded fixes (newest first) rule out an automatic attempt now."""
    blocking = blocking_fix(fixes, gate, now)
    if blocking is not None:
        return describe_block(blocking)
    for fix in fixes:
        if fix.status == "merged":
            return f"already fixed by {fix.pr_url}"
        if fix.status == "closed":
            # a reviewer closed the PR unmerged: an explicit `watcher fix` may try again
            return f"its pull request was closed without merging: {fix.pr_url}"
        recent = now - fix.created < gate.retry_failed_after
        if recent and fix.status in RETRY_LATER:
            return f"last attempt {fix.status} {now - fix.created:.0f} s ago (retry_failed_after)"
        # a dry run never holds back a real run, but repeated dry runs would re-spend tokens
        if recent and dry_run and fix.status == "dry_run":
            return f"dry run done {now - fix.created:.0f} s ago (retry_failed_after)"
    return None


def blocking_fix(fixes: Iterable[Fix], gate: Gate, now: float) -> Fix | None:
    """A fix that forbids any new attempt, explicit ones included: an open pull request (one
    PR per fingerprint at a time), or an attempt still running. After a merge or a close only
    an explicit request (`watcher fix`, the API) tries again."""
    for fix in fixes:
        if fix.status == "pr_open":
            return fix
        if fix.status == "pending" and now - fix.created < gate.stale_after:
            return fix
    return None


def closed_attempt(fixes: Iterable[Fix]) -> Fix | None:
    """The newest fix (of `fixes`, newest first) whose pull request a reviewer closed without
    merging — None when a later fix has a PR open or merged: what a retry must learn from."""
    for fix in fixes:
        if fix.status == "closed":
            return fix
        if fix.status in ("merged", "pr_open"):
            return None
    return None


def describe_block(fix: Fix) -> str:
    """A sentence for a blocking fix."""
    if fix.status == "pr_open":
        return f"a pull request is already open: {fix.pr_url}"
    return f"a fix for this group is already running ({fix.id})"


# Exceptions that are nearly always a code bug, whatever the category rules said.
CODE_BUGS = frozenset(
    {"KeyError", "TypeError", "AttributeError", "IndexError", "ValueError", "NameError",
     "UnboundLocalError", "ZeroDivisionError", "RecursionError", "AssertionError",
     "NotImplementedError", "LookupError", "UnicodeDecodeError", "UnicodeEncodeError",
     "NullPointerException", "ClassCastException", "ArrayIndexOutOfBoundsException",
     "IndexOutOfBoundsException", "IllegalArgumentException", "IllegalStateException",
     "NumberFormatException", "ConcurrentModificationException", "StackOverflowError",
     "ReferenceError", "RangeError", "NoMethodError", "ArgumentError", "panic"}
)  # fmt: skip
# Categories whose cause is usually outside the code (an outage, a key, a lock, a quota).
OPERATIONAL = frozenset(
    {"database_error", "auth_error", "rate_limit_error", "provider_error", "timeout_error",
     "external_service_error", "cache_error"}
)  # fmt: skip


def location(group: ErrorGroup) -> str | None:
    """Where the bug is: the innermost in-app frame as "file:function" (None: no in-app
    frame). Groups with the same location are fragments of one bug."""
    frames: list[Frame] = list(group.frames) or ([group.top_frame] if group.top_frame else [])
    for frame in reversed(frames):
        if frame.in_app and frame.file:
            return f"{frame.file}:{frame.function}"
    return None


def prior(group: ErrorGroup) -> int:
    """How likely code can fix it, before asking the model: 2 a code-bug exception, 0 an
    operational category, 1 otherwise (the category's `fixable` flag breaks the tie)."""
    exception = (group.exception_type or "").rsplit(".", 1)[-1]
    if exception in CODE_BUGS:
        return 2
    if group.category in OPERATIONAL:
        return 0
    return 1


def fragments(groups: Sequence[ErrorGroup]) -> tuple[list[ErrorGroup], dict[str, str]]:
    """The first group (in the given order) of each location, and for each later one the id
    of the group it is a fragment of."""
    kept: list[ErrorGroup] = []
    first: dict[str, str] = {}
    dropped: dict[str, str] = {}
    for group in groups:
        where = location(group)
        if where is not None and where in first:
            dropped[group.id] = first[where]
            continue
        if where is not None:
            first[where] = group.id
        kept.append(group)
    return kept, dropped


# A fix in one of these states holds its location: no other group's fix is tried there.
HOLDS_LOCATION = ("pr_open", "merged", "pending")


def location_holders(fixes: Iterable[Fix], gate: Gate, now: float) -> dict[str, Fix]:
    """Location ("file:function", recorded with each fix) -> a fix holding it: its PR open or
    merged, or it is still running. Fragments of one bug found in a later run (another group,
    same location) are not fixed a second time."""
    holders: dict[str, Fix] = {}
    for fix in fixes:
        where = fix.details.get("location")
        if not isinstance(where, str) or fix.status not in HOLDS_LOCATION:
            continue
        if fix.status == "pending" and now - fix.created >= gate.stale_after:
            continue
        holders.setdefault(where, fix)
    return holders


def held_by(group: ErrorGroup, holders: dict[str, Fix]) -> Fix | None:
    """Another group's fix holding this group's location, or None."""
    where = location(group)
    holder = holders.get(where) if where is not None else None
    return holder if holder is not None and holder.group_id != group.id else None


def describe_holder(fix: Fix) -> str:
    """A sentence for a fragment whose location another group's fix holds."""
    what = {"pr_open": "has a pull request open", "merged": "was fixed by"}.get(fix.status)
    where = fix.details.get("location")
    if what is None:
        return f"same location ({where}) as group {fix.group_id}, whose fix is running"
    return f"same location ({where}) as group {fix.group_id}, which {what} {fix.pr_url}"


def rank(groups: Iterable[ErrorGroup]) -> list[ErrorGroup]:
    """Alerting first, then the code prior (see `prior`), worst severity, most occurrences,
    most recent; ties by id."""
    return sorted(
        groups,
        key=lambda g: (
            g.status != "alerting",
            -prior(g),
            not g.fixable,
            -SEVERITY_RANK.get(g.severity, 0),
            -g.count,
            -g.last_seen,
            g.id,
        ),
    )


def attempts_since(fixes: Iterable[Fix], since: float) -> int:
    """Recorded attempts created at or after `since` (the durable part of the fix budget)."""
    return sum(1 for f in fixes if f.created >= since and f.status not in NOT_AN_ATTEMPT)


@dataclass(frozen=True, slots=True)
class Decision:
    """How far an analysis goes, and why."""

    stage: Stage
    reason: str


def decide(
    analysis: Analysis,
    *,
    min_confidence_patch: float,
    min_confidence_pr: float,
    create_pr: bool = True,
    min_fixability: float = 0.0,
) -> Decision:
    """Root cause only, a patch written locally, or a pull request (Sentry Seer's three
    thresholds: the fixability score gates code generation, confidence gates the PR)."""
    confidence = analysis.confidence
    if analysis.fixability != "patch":
        return Decision("root_cause", f"the analysis proposes no patch ({analysis.fixability})")
    if analysis.score < min_fixability:
        return Decision(
            "root_cause",
            f"fixability {analysis.score:.2f} below min_fixability {min_fixability:.2f}",
        )
    if confidence < min_confidence_patch:
        return Decision(
            "root_cause",
            f"confidence {confidence:.2f} below min_confidence_patch {min_confidence_patch:.2f}",
        )
    if confidence < min_confidence_pr:
        return Decision(
            "patch", f"confidence {confidence:.2f} below min_confidence_pr {min_confidence_pr:.2f}"
        )
    if not create_pr:
        return Decision("patch", "pull request not requested")
    return Decision("pr", f"confidence {confidence:.2f}")
