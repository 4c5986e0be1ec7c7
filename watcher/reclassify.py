"""Re-classify stored and live patterns when the rules change (SIGHUP, or a restart).

A pattern's category, severity and fixable flag were fixed when it opened; a changed
`[[classify.rules]]` must reach the patterns that already exist. Each group's newest sample is
parsed again (the same assembler the pipeline uses) and classified with the current rules;
every change is recorded in the activity list ("reclassified", with before and after).
Pure functions here; the daemon runs the computation in a worker thread and applies it to the
live groups on the event loop.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from watcher import __version__
from watcher.classify import Rule, classify, raise_severity
from watcher.group import lifecycle
from watcher.model import Activity, Classification, ErrorGroup, LogEvent, RawLine
from watcher.parse.multiline import Assembler
from watcher.store import StateStore

RULES_STATE_KEY = "classify_rules"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A group's classification under the current rules (None fields: the group keeps its own,
    e.g. a rule that ignores such events does not change a pattern already counted)."""

    group_id: str
    classification: Classification | None


def rules_digest(rules: Sequence[Rule]) -> str:
    """Identifies the rules and the built-in classifier (by watcher version) they run with."""
    described = [
        [repr(r.match), list(r.on), r.category, r.severity, r.fixable, r.ignore] for r in rules
    ]
    text = json.dumps([__version__, described], default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def event_of(group: ErrorGroup) -> LogEvent:
    """The group's newest sample parsed again, or an event built from what the group holds."""
    newest = max(group.samples, key=lambda s: s.timestamp, default=None)
    if newest is not None:
        assembler = Assembler(errors_only=False)
        lines = [
            RawLine(text, source=newest.source, stream="reclassify", line_no=i + 1)
            for i, text in enumerate(newest.text.splitlines() or [""])
        ]
        events = assembler.feed_batch(lines) + assembler.flush(force=True)
        chosen = next((e for e in events if e.is_error), None)
        if chosen is not None:
            return chosen
    return LogEvent(
        message=group.template,
        level="error",
        exception_type=group.exception_type,
        frames=list(group.frames),
        source=next(iter(group.sources), ""),
    )


def verdicts(groups: Iterable[ErrorGroup], rules: Sequence[Rule]) -> list[Verdict]:
    """Each group's classification under `rules` (CPU work: run it off the event loop)."""
    out = []
    for group in groups:
        cls = classify(event_of(group), rules)
        out.append(Verdict(group.id, None if cls.ignored else cls))
    return out


def target(group: ErrorGroup, cls: Classification) -> tuple[str, str, bool]:
    """(category, severity, fixable) the group should have: the classification's, with the
    severity raised one step while the group is over its alert threshold or regressed."""
    severity = cls.severity
    if group.status == "alerting" or group.state == "regressed":
        severity = raise_severity(severity)
    return cls.category, severity, cls.fixable


def apply(group: ErrorGroup, verdict: Verdict, at: float) -> Activity | None:
    """Give the group its verdict's classification; the record of the change, or None."""
    if verdict.classification is None:
        return None
    category, severity, fixable = target(group, verdict.classification)
    entry = lifecycle.reclassified(group, category, severity, fixable, at)
    if entry is not None:
        group.suggested_fix = verdict.classification.suggested_fix
    return entry


def stored_groups(store: StateStore, skip: Iterable[str] = ()) -> list[ErrorGroup]:
    """Every stored group but those in `skip` (the live ones). Blocking."""
    skipped = set(skip)
    everything = store.list_groups(limit=store.count_groups() + 1, order="last_seen")
    return [g for g in everything if g.id not in skipped]


def reclassify_stored(
    store: StateStore, rules: Sequence[Rule], at: float, skip: Iterable[str] = ()
) -> list[tuple[ErrorGroup, Activity]]:
    """Re-classify the stored groups (but `skip`), write the changed ones with their records,
    and remember the rules' digest. The changes, for announcing. Blocking."""
    groups = stored_groups(store, skip)
    by_id = {g.id: g for g in groups}
    changes = []
    for verdict in verdicts(groups, rules):
        group = by_id[verdict.group_id]
        entry = apply(group, verdict, at)
        if entry is not None:
            changes.append((group, entry))
    store.commit(
        [g for g, _ in changes],
        activity=[e for _, e in changes],
        state={RULES_STATE_KEY: rules_digest(rules)},
    )
    return changes


def rules_changed(store: StateStore, rules: Sequence[Rule]) -> bool:
    """Whether the rules (or the watcher version) differ from those the store last saw."""
    return store.get_state(RULES_STATE_KEY) != rules_digest(rules)
