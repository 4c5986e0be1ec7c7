"""Row <-> dataclass mapping: ErrorGroup, Sample and Fix to and from their table rows.

Also the column lists and upsert statements that go with each mapper, and the compact JSON
encoding (`dumps`) of the TEXT columns that hold structured values.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from watcher.model import Activity, ErrorGroup, Fix, Frame, Sample

# json.dumps with any option makes a JSONEncoder per call: one encoder made once encodes the
# same text at ~half the cost (four TEXT columns of each new group: most of a flood's writes)
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
# ...and JSONEncoder.encode still makes its C encoder per call (~2 us of a small dict's ~3):
# the same C encoder, made once, gives the same text. It skips the circular-reference check
# (no markers): the values stored are trees made here (a cycle would raise RecursionError).
_C_ENCODE = (
    json.encoder.c_make_encoder(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
    if json.encoder.c_make_encoder is not None
    else None
)


def dumps(value: Any) -> str:
    """Compact JSON for a TEXT column (non-ASCII kept as is)."""
    if not value and (value == {} or value == []):  # a new group's frames, tags, ...
        return "{}" if isinstance(value, dict) else "[]"
    if _C_ENCODE is None:  # an interpreter without the _json accelerator
        return _ENCODER.encode(value)
    return "".join(_C_ENCODE(value, 0))


def _frame_from_dict(data: dict[str, Any]) -> Frame:
    return Frame(data["file"], data.get("line"), data["function"], data.get("in_app", True))


def group_params(group: ErrorGroup, redact: Callable[[str], str] = str) -> tuple[Any, ...]:
    """The UPSERT_GROUP parameters of a group (its samples are stored separately); `redact`
    takes the secrets out of its template first."""
    top = None if group.top_frame is None else dumps(group.top_frame.to_record())
    return (
        group.id,
        group.kind,
        redact(group.template),
        group.category,
        group.severity,
        int(group.fixable),
        group.suggested_fix,
        group.exception_type,
        top,
        dumps([f.to_record() for f in group.frames]),
        group.count,
        group.first_seen,
        group.last_seen,
        dumps(group.sources),
        group.status,
        group.state,
        group.state_changed,
        group.ignore_until,
        group.ignore_count,
        dumps({name: {redact(k): n for k, n in vals.items()} for name, vals in group.tags.items()}),
        dumps(group.buckets),
    )


GROUP_COLUMNS = (
    "id, kind, template, category, severity, fixable, suggested_fix, exception_type, top_frame,"
    " frames, count, first_seen, last_seen, sources, status, state, state_changed,"
    " ignore_until, ignore_count, tags, buckets"
)
_GROUP_ARITY = GROUP_COLUMNS.count(",") + 1
# ON CONFLICT ... DO UPDATE, not INSERT OR REPLACE: a replace deletes the row, and the
# foreign-key cascade would take the group's samples with it.
UPSERT_GROUP = f"""
INSERT INTO groups ({GROUP_COLUMNS}) VALUES ({", ".join("?" * _GROUP_ARITY)})
ON CONFLICT (id) DO UPDATE SET
    kind = excluded.kind, template = excluded.template, category = excluded.category,
    severity = excluded.severity, fixable = excluded.fixable,
    suggested_fix = excluded.suggested_fix, exception_type = excluded.exception_type,
    top_frame = excluded.top_frame, frames = excluded.frames, count = excluded.count,
    first_seen = excluded.first_seen, last_seen = excluded.last_seen,
    sources = excluded.sources, status = excluded.status, state = excluded.state,
    state_changed = excluded.state_changed, ignore_until = excluded.ignore_until,
    ignore_count = excluded.ignore_count, tags = excluded.tags, buckets = excluded.buckets
"""

# A group counted in memory while the store could not be read (it started afresh): what the
# store holds for it (lifecycle state, status, tags, ...) is newer than the fresh copy, so
# that copy only adds its count (what it counted since it was made) and widens the seen times.
UPSERT_GROUP_ADDED = f"""
INSERT INTO groups ({GROUP_COLUMNS}) VALUES ({", ".join("?" * _GROUP_ARITY)})
ON CONFLICT (id) DO UPDATE SET
    count = groups.count + excluded.count,
    first_seen = CASE WHEN excluded.first_seen < groups.first_seen
                 THEN excluded.first_seen ELSE groups.first_seen END,
    last_seen = CASE WHEN excluded.last_seen > groups.last_seen
                THEN excluded.last_seen ELSE groups.last_seen END
"""


def group_from_row(row: sqlite3.Row, samples: list[Sample]) -> ErrorGroup:
    """The group of a `groups` row, with the given samples."""
    top = row["top_frame"]
    return ErrorGroup(
        id=row["id"],
        kind=row["kind"],
        template=row["template"],
        category=row["category"],
        severity=row["severity"],
        fixable=bool(row["fixable"]),
        suggested_fix=row["suggested_fix"],
        exception_type=row["exception_type"],
        top_frame=None if top is None else _frame_from_dict(json.loads(top)),
        frames=[_frame_from_dict(f) for f in json.loads(row["frames"])],
        count=row["count"],
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        sources=json.loads(row["sources"]),
        samples=samples,
        status=row["status"],
        state=row["state"],
        state_changed=row["state_changed"],
        ignore_until=row["ignore_until"],
        ignore_count=row["ignore_count"],
        tags=json.loads(row["tags"]),
        buckets=json.loads(row["buckets"]),
    )


def sample_from_row(row: sqlite3.Row) -> Sample:
    """The sample of a `samples` row."""
    return Sample(row["timestamp"], row["source"], row["text"], row["line"])


# The columns are Fix's fields, in order; a new Fix field needs a migration.
_FIX_FIELDS: tuple[str, ...] = (
    *("id", "group_id", "status", "created", "root_cause", "confidence"),
    *("diff", "branch", "pr_url", "error", "details"),
)
FIX_COLUMNS = ", ".join(_FIX_FIELDS)
UPSERT_FIX = f"""
INSERT INTO fixes ({FIX_COLUMNS}) VALUES ({", ".join("?" * len(_FIX_FIELDS))})
ON CONFLICT (id) DO UPDATE SET {", ".join(f"{c} = excluded.{c}" for c in _FIX_FIELDS[1:])}
"""


def activity_params(entry: Activity) -> tuple[Any, ...]:
    """The INSERT_ACTIVITY parameters of an activity entry (its id is the table's)."""
    return (
        entry.group_id,
        entry.action,
        entry.actor,
        entry.at,
        entry.old_state,
        entry.new_state,
        dumps(entry.detail),
    )


ACTIVITY_COLUMNS = "id, group_id, action, actor, at, old_state, new_state, detail"
INSERT_ACTIVITY = (
    "INSERT INTO activity (group_id, action, actor, at, old_state, new_state, detail)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def activity_from_row(row: sqlite3.Row) -> Activity:
    """The activity entry of an `activity` row."""
    return Activity(
        group_id=row["group_id"],
        action=row["action"],
        actor=row["actor"],
        at=row["at"],
        old_state=row["old_state"],
        new_state=row["new_state"],
        detail=json.loads(row["detail"]),
        id=row["id"],
    )


def fix_params(fix: Fix) -> tuple[Any, ...]:
    """The UPSERT_FIX parameters of a fix."""
    values = {name: getattr(fix, name) for name in _FIX_FIELDS}
    return tuple({**values, "details": dumps(fix.details)}.values())


def fix_from_row(row: sqlite3.Row) -> Fix:
    """The fix of a `fixes` row."""
    values = {name: row[name] for name in _FIX_FIELDS}
    return Fix(**{**values, "details": json.loads(row["details"])})
