"""ErrorGroup and Fix as the JSON objects of the original error-monitor API, plus watcher's fields.

The original error object carried timestamp, error_type, message, category, severity, file, line,
function, stack_trace, count, last_seen, examples, fixable and suggested_fix; its fix object id,
error_pattern_id, error_message, error_category, analysis, proposed_fix, code_changes,
files_affected, severity, generated_at, pr_url and status. Clients written against it keep
working; the extra fields (id, template, windows, samples...) are additive.

Nothing here escapes text: the output is JSON, and the dashboard renders it with textContent.
Redaction happens once, on the whole response body, in the API layer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from watcher.model import Activity, ErrorGroup, Fix, Frame, Sample

MAX_MESSAGE_CHARS = 1000
MAX_EXAMPLES = 5
MAX_EXAMPLE_CHARS = 2000
MAX_SAMPLE_CHARS = 8000
# A fix is "analysed" once the pipeline wrote either of these into it.
_ANALYSIS_KEYS = ("summary", "root_cause")
_GIT_FILE = re.compile(r"^(?=diff --git )", re.MULTILINE)
_PLAIN_FILE = re.compile(r"^(?=--- )", re.MULTILINE)
_NEW_PATH = re.compile(r"^\+\+\+ (?:b/)?(.+)$", re.MULTILINE)


def iso(ts: float | None) -> str | None:
    """UTC ISO 8601 to the second with a Z, or None when unknown (0 means never set)."""
    if not ts or not math.isfinite(ts):
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: such values become null instead of an invalid document."""
    return value if value is not None and math.isfinite(value) else None


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def latest_sample(group: ErrorGroup) -> Sample | None:
    return max(group.samples, key=lambda s: s.timestamp, default=None)


def sample_object(sample: Sample) -> dict[str, Any]:
    return {
        "timestamp": iso(sample.timestamp),
        "source": sample.source,
        "line": sample.line,
        "text": clip(sample.text, MAX_SAMPLE_CHARS),
    }


def error_message(group: ErrorGroup) -> str:
    """A real occurrence reads better than the masked template: the line naming the exception
    (a Python trace ends with it, a Java one starts with it), else its first line."""
    sample = latest_sample(group)
    lines = [line.strip() for line in sample.text.splitlines() if line.strip()] if sample else []
    exc = group.exception_type
    named = [line for line in lines if exc and exc in line]
    chosen = named[-1] if named else (lines[0] if lines else "")
    return clip(chosen or group.template, MAX_MESSAGE_CHARS)


def stack_trace(group: ErrorGroup) -> str | None:
    """The latest sample when it is a multi-line record (a trace); None for one-line errors."""
    sample = latest_sample(group)
    if sample is None or "\n" not in sample.text.strip():
        return None
    return clip(sample.text, MAX_SAMPLE_CHARS)


def error_object(group: ErrorGroup, fix: Fix | None = None) -> dict[str, Any]:
    """One pattern in the original error-monitor shape; `fix` is its latest fix, if any."""
    top = group.top_frame
    newest_first = sorted(group.samples, key=lambda s: -s.timestamp)
    return {
        "id": group.id,
        "fingerprint": group.id,
        "kind": group.kind,
        "timestamp": iso(group.first_seen),
        "error_type": group.exception_type,
        "message": error_message(group),
        "template": group.template,
        "category": group.category,
        "severity": group.severity,
        "file": top.file if top else None,
        "line": top.line if top else None,
        "function": top.function if top else None,
        "stack_trace": stack_trace(group),
        "count": group.count,
        "first_seen": iso(group.first_seen),
        "last_seen": iso(group.last_seen),
        "window_counts": dict(group.window_counts),
        "trend": group.trend,
        "status": group.status,
        "state": group.state,
        "state_changed": iso(group.state_changed) if group.state_changed else None,
        "ignore_until": iso(group.ignore_until) if group.ignore_until else None,
        "ignore_count": group.ignore_count,
        "tags": {name: dict(values) for name, values in group.tags.items()},
        "sources": dict(group.sources),
        "examples": [clip(s.text, MAX_EXAMPLE_CHARS) for s in newest_first[:MAX_EXAMPLES]],
        "fixable": group.fixable,
        "suggested_fix": group.suggested_fix or None,
        "fix_id": fix.id if fix else None,
        "fix_status": fix.status if fix else None,
        "pr_url": (fix.pr_url or None) if fix else None,
    }


def activity_object(entry: Activity) -> dict[str, Any]:
    """One activity entry (who changed what, when) as the API and the dashboard show it."""
    return {
        "id": entry.id or None,
        "group_id": entry.group_id,
        "action": entry.action,
        "actor": entry.actor,
        "at": iso(entry.at),
        "old_state": entry.old_state,
        "new_state": entry.new_state,
        "detail": dict(entry.detail),
    }


def analysis_object(fixes: Iterable[Fix]) -> dict[str, Any] | None:
    """What the fix pipeline concluded, from the newest fix that carries an analysis."""
    for fix in fixes:
        details = fix.details or {}
        if fix.root_cause or any(details.get(key) for key in _ANALYSIS_KEYS):
            return {
                "fix_id": fix.id,
                "status": fix.status,
                "summary": _text(details.get("summary")),
                "root_cause": fix.root_cause or _text(details.get("root_cause")),
                "evidence": [str(item) for item in details.get("evidence") or []],
                "risk": _text(details.get("risk")),
                "confidence": finite(fix.confidence),
                "pr_url": fix.pr_url or None,
            }
    return None


def pattern_detail(
    group: ErrorGroup,
    fixes: list[Fix],
    activity: Iterable[Activity] = (),
    link: Callable[[ErrorGroup, Frame], str | None] = lambda _g, _f: None,
) -> dict[str, Any]:
    """One pattern with everything the detail view shows; `fixes` newest first; `link` makes a
    frame's URL to the code (see watcher.http.links)."""
    newest_first = sorted(group.samples, key=lambda s: -s.timestamp)
    return {
        "activity": [activity_object(a) for a in activity],
        **error_object(group, fixes[0] if fixes else None),
        "samples": [sample_object(s) for s in newest_first],
        "frames": [{**f.to_record(), "url": link(group, f)} for f in group.frames],
        "fixes": [fix_object(f, group) for f in fixes],
        "analysis": analysis_object(fixes),
    }


def diff_by_file(diff: str) -> dict[str, str]:
    """A unified diff cut into one section per file, keyed by the new path."""
    boundary = _GIT_FILE if "diff --git " in diff else _PLAIN_FILE
    sections: dict[str, str] = {}
    for chunk in boundary.split(diff):
        match = _NEW_PATH.search(chunk)
        if match and match.group(1).strip() != "/dev/null":
            sections[match.group(1).strip()] = chunk
    return sections


def fix_object(fix: Fix, group: ErrorGroup | None = None) -> dict[str, Any]:
    """One fix in the original shape; `group` fills the error_* fields when it is known."""
    details = fix.details or {}
    changes = diff_by_file(fix.diff)
    edited = [str(e.get("path")) for e in details.get("edits") or [] if isinstance(e, dict)]
    return {
        "id": fix.id,
        "error_pattern_id": fix.group_id,
        "group_id": fix.group_id,
        "error_message": error_message(group) if group else None,
        "error_category": group.category if group else None,
        "severity": group.severity if group else None,
        "analysis": fix.root_cause or _text(details.get("root_cause")),
        "proposed_fix": _text(details.get("summary")),
        "code_changes": changes,
        "files_affected": list(dict.fromkeys([*changes, *edited])),
        "generated_at": iso(fix.created),
        "pr_url": fix.pr_url or None,
        "status": fix.status,
        "confidence": finite(fix.confidence),
        "diff": fix.diff,
        "branch": fix.branch or None,
        "error": fix.error or None,
        "details": details,
    }


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
