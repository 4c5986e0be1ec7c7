"""The /error-monitor/ JSON routes: the original error-monitor API, plus what the dashboard reads.

Handlers parse their query parameters (with the parsers in `security`), read the `WatcherView`,
and shape the answer with `serialize`. Every body goes through the redaction function before it
is written. Authentication, rate limits and error rendering are middlewares (see `security`).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from watcher.http import serialize
from watcher.http.links import FrameLinker, no_links
from watcher.http.security import (
    MAX_INTERVAL,
    ApiError,
    Redact,
    bool_param,
    hours_param,
    id_value,
    identity,
    ids_param,
    invalid,
    limit_param,
    number_param,
    required_id,
)
from watcher.http.view import WatcherView
from watcher.model import ErrorGroup, Fix
from watcher.report import sort_groups

HOUR = 3600.0
DASHBOARD_TOP = 10
# "Critical" means critical (the original API counted high too, and the card said "Critical")
CRITICAL = frozenset({"critical"})
# fix statuses that are a fix (a PR, a patch, a dry-run patch), not a failed or refused attempt
FIX_MADE = frozenset({"pr_open", "merged", "patched", "dry_run"})
# window -> (bucket seconds, buckets) for the dashboard's rate chart
WINDOWS = {"1h": (60, 60), "6h": (300, 72), "1d": (1800, 48)}


@dataclass
class ApiContext:
    """What the handlers share: the view, the redaction of bodies, and the wall clock."""

    view: WatcherView
    redact: Redact = identity
    clock: Callable[[], float] = time.time
    link: FrameLinker = no_links


API_CONTEXT = web.AppKey("watcher_api", ApiContext)
_dumps = functools.partial(json.dumps, default=str)


def context(request: web.Request) -> ApiContext:
    return request.app[API_CONTEXT]


def reply(request: web.Request, payload: dict[str, Any], status: int = 200) -> web.Response:
    """A JSON response whose body went through the redaction function."""
    body = context(request).redact(payload)
    return web.json_response(body, status=status, dumps=_dumps)


# --- shared lookups ------------------------------------------------------------------------------


def latest_fixes(view: WatcherView) -> dict[str, Fix]:
    """Each group's newest fix (the view lists fixes newest first)."""
    latest: dict[str, Fix] = {}
    for fix in view.fixes():
        latest.setdefault(fix.group_id, fix)
    return latest


def error_objects(view: WatcherView, groups: list[ErrorGroup]) -> list[dict[str, Any]]:
    fixes = latest_fixes(view)
    return [serialize.error_object(g, fixes.get(g.id)) for g in groups]


def resolve_group(view: WatcherView, error_id: str) -> ErrorGroup | None:
    """By id; else, as the original API did, by error type (the most frequent group of it)."""
    found = view.group(error_id)
    if found is not None:
        return found
    same_type = [g for g in view.groups() if g.exception_type == error_id]
    return max(same_type, key=lambda g: (g.count, g.last_seen), default=None)


def fix_objects(view: WatcherView, fixes: list[Fix]) -> list[dict[str, Any]]:
    groups: dict[str, ErrorGroup | None] = {}
    for fix in fixes:
        if fix.group_id not in groups:
            groups[fix.group_id] = view.group(fix.group_id)
    return [serialize.fix_object(f, groups[f.group_id]) for f in fixes]


def now_iso(request: web.Request) -> str | None:
    return serialize.iso(context(request).clock())


def window_groups(request: web.Request) -> tuple[float, list[ErrorGroup]]:
    hours = hours_param(request)
    since = context(request).clock() - hours * HOUR
    return hours, sort_groups(context(request).view.groups(since=since))


# --- read routes ---------------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    view = context(request).view
    statuses = view.sources()
    down = sorted(name for name, status in statuses.items() if not status.get("up"))
    # sources that read nothing until the user acts (no file matched, program missing)
    blind = {n: s["problem"] for n, s in sorted(statuses.items()) if s.get("problem")}
    return reply(
        request,
        {
            "status": "degraded" if down or blind else "healthy",
            "timestamp": now_iso(request),
            "monitoring_enabled": bool(view.monitoring_enabled),
            "error_patterns_tracked": len(view.groups()),
            "sources_down": down,
            "sources_not_ready": blind,
        },
    )


async def errors_recent(request: web.Request) -> web.Response:
    hours, groups = window_groups(request)
    groups.sort(key=lambda g: (-g.last_seen, g.id))
    shown = groups[: limit_param(request)]
    errors = error_objects(context(request).view, shown)
    return reply(
        request, {"count": len(errors), "total": len(groups), "hours": hours, "errors": errors}
    )


async def errors_critical(request: web.Request) -> web.Response:
    hours, groups = window_groups(request)
    critical = [g for g in groups if g.severity in CRITICAL]
    shown = error_objects(context(request).view, critical[: limit_param(request)])
    return reply(request, {"count": len(shown), "hours": hours, "critical_errors": shown})


async def errors_fixable(request: web.Request) -> web.Response:
    hours, groups = window_groups(request)
    fixable = [g for g in groups if g.fixable]
    shown = error_objects(context(request).view, fixable[: limit_param(request)])
    return reply(request, {"count": len(shown), "hours": hours, "fixable_errors": shown})


async def error_patterns(request: web.Request) -> web.Response:
    view = context(request).view
    groups = sort_groups(view.groups())
    shown = error_objects(view, groups[: limit_param(request)])
    return reply(request, {"total_patterns": len(groups), "patterns": shown})


async def error_pattern(request: web.Request) -> web.Response:
    view = context(request).view
    group_id = id_value("group_id", request.match_info["group_id"])
    group = view.group(group_id)
    if group is None:
        raise ApiError(404, "not found", f"no error pattern with id {group_id}")
    fixes, activity = view.fixes(group_id=group.id), view.activity(group_id=group.id, limit=50)
    link = context(request).link
    return reply(request, {"pattern": serialize.pattern_detail(group, fixes, activity, link)})


async def dashboard(request: web.Request) -> web.Response:
    view = context(request).view
    groups = sort_groups(view.groups())
    last_hour = context(request).clock() - HOUR
    recent = [g for g in groups if g.last_seen >= last_hour]
    critical = [g for g in recent if g.severity in CRITICAL]
    fixable = [g for g in recent if g.fixable]
    fixes = view.fixes()
    by_category: dict[str, int] = {}
    for group in groups:
        by_category[group.category] = by_category.get(group.category, 0) + group.count
    by_status: dict[str, int] = {}
    for fix in fixes:
        by_status[fix.status] = by_status.get(fix.status, 0) + 1
    summary = {
        "total_patterns": len(groups),
        "critical_errors": len(critical),
        "fixable_errors": len(fixable),
        "generated_fixes": sum(n for status, n in by_status.items() if status in FIX_MADE),
        "fixes_by_status": by_status,
        "patterns_by_category": by_category,
    }
    return reply(
        request,
        {
            "timestamp": now_iso(request),
            "summary": summary,
            "recent_critical": error_objects(view, critical[:DASHBOARD_TOP]),
            "recent_fixable": error_objects(view, fixable[:DASHBOARD_TOP]),
            "recent_fixes": fix_objects(view, fixes[:DASHBOARD_TOP]),
        },
    )


async def fixes_generated(request: web.Request) -> web.Response:
    view = context(request).view
    fixes = view.fixes()
    shown = fix_objects(view, fixes[: limit_param(request)])
    return reply(request, {"total_fixes": len(fixes), "fixes": shown})


async def fix_detail(request: web.Request) -> web.Response:
    view = context(request).view
    fix_id = id_value("fix_id", request.match_info["fix_id"])
    fix = view.fix(fix_id)
    if fix is None:
        raise ApiError(404, "not found", f"no fix with id {fix_id}")
    return reply(request, {"fix": fix_objects(view, [fix])[0]})


async def rates(request: web.Request) -> web.Response:
    window = request.query.get("window", "1h")
    if window not in WINDOWS:
        raise invalid("window", "one of " + ", ".join(WINDOWS))
    bucket_seconds, buckets = WINDOWS[window]
    series = context(request).view.error_rate(bucket_seconds=bucket_seconds, buckets=buckets)
    body = {
        "window": window,
        "bucket_seconds": bucket_seconds,
        "buckets": buckets,
        "end": now_iso(request),
        "series": {category: [int(n) for n in counts] for category, counts in series.items()},
    }
    return reply(request, body)


def source_object(name: str, status: dict[str, Any]) -> dict[str, Any]:
    lag = status.get("lag_seconds")
    error = status.get("error")
    problem = status.get("problem")
    return {
        "name": name,
        "up": bool(status.get("up")),
        "ready": not problem and not error,
        "lines": int(status.get("lines") or 0),
        "error_events": int(status.get("error_events") or 0),
        "error": str(error) if error else None,
        "problem": str(problem) if problem else None,
        "lag_seconds": serialize.finite(float(lag)) if lag is not None else None,
        # what the source reads now (a file source: each matched file and its offset)
        "targets": [dict(t) for t in status.get("targets") or ()],
        "shared": status.get("shared"),  # "reading" / "standby": a shared source; else None
    }


async def sources(request: web.Request) -> web.Response:
    statuses = context(request).view.sources()
    listed = [source_object(name, statuses[name]) for name in sorted(statuses)]
    return reply(request, {"sources": listed})


# --- mutating routes -----------------------------------------------------------------------------


def refused(exc: PermissionError) -> ApiError:
    return ApiError(403, "fix generation refused", str(exc) or "auto-fix is not allowed")


def fix_status(fix: Fix) -> str:
    if fix.status in ("failed", "rejected", "skipped"):
        return "failed"
    return "processing" if fix.status == "pending" else "success"


async def _generate(view: WatcherView, group: ErrorGroup, create_pr: bool) -> Fix:
    try:
        return await view.generate_fix(group.id, create_pr=create_pr)
    except KeyError:
        raise ApiError(404, "not found", f"no error pattern with id {group.id}") from None
    except PermissionError as exc:
        raise refused(exc) from None


async def generate_for_error(request: web.Request) -> web.Response:
    view = context(request).view
    error_id = required_id(request, "error_id")
    create_pr = bool_param(request, "create_pr")
    group = resolve_group(view, error_id)
    if group is None:
        raise ApiError(404, "not found", f"no error pattern with id {error_id}")
    fix = await _generate(view, group, create_pr)
    status = fix_status(fix)
    message = "fix generation queued" if status == "processing" else f"fix {fix.status}"
    body = {"status": status, "message": message, "fix": serialize.fix_object(fix, group)}
    return reply(request, body)


async def generate_batch(request: web.Request) -> web.Response:
    view = context(request).view
    ids = ids_param(request)
    create_prs = bool_param(request, "create_prs")
    resolved = {i: resolve_group(view, i) for i in ids}
    missing = [i for i, group in resolved.items() if group is None]
    groups = list({g.id: g for g in resolved.values() if g is not None}.values())
    if not groups:
        raise ApiError(404, "not found", {"not_found": missing})
    fixes: list[dict[str, Any]] = []
    refusals: list[dict[str, str]] = []
    for group in groups:
        try:
            fix = await _generate(view, group, create_prs)
        except ApiError as exc:
            refusals.append({"error_id": group.id, "detail": str(exc.detail)})
            continue
        fixes.append(serialize.fix_object(fix, group))
    if not fixes:
        raise ApiError(403, "fix generation refused", {"refused": refusals, "not_found": missing})
    status = "processing" if any(f["status"] == "pending" for f in fixes) else "success"
    body = {
        "status": status,
        "message": f"{len(fixes)} of {len(ids)} fixes started",
        "count": len(fixes),
        "fixes": fixes,
        "not_found": missing,
        "refused": refusals,
    }
    return reply(request, body)


async def monitor_start(request: web.Request) -> web.Response:
    interval = number_param(request, "interval", None, MAX_INTERVAL)
    result = await context(request).view.start_monitor(interval=interval)
    defaults = {"status": "started", "interval_seconds": interval, "message": "monitoring on"}
    return reply(request, {**defaults, **result})


async def monitor_scan(request: web.Request) -> web.Response:
    hours = hours_param(request)
    auto_fix = bool_param(request, "auto_fix")
    try:
        result = await context(request).view.scan(hours=hours, auto_fix=auto_fix)
    except PermissionError as exc:
        raise refused(exc) from None
    return reply(request, {"status": "scanned", "hours": hours, **result})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/error-monitor/health", health),
    ("GET", "/error-monitor/errors/recent", errors_recent),
    ("GET", "/error-monitor/errors/critical", errors_critical),
    ("GET", "/error-monitor/errors/fixable", errors_fixable),
    ("GET", "/error-monitor/errors/patterns", error_patterns),
    ("GET", "/error-monitor/errors/patterns/{group_id}", error_pattern),
    ("GET", "/error-monitor/dashboard", dashboard),
    ("GET", "/error-monitor/rates", rates),
    ("GET", "/error-monitor/sources", sources),
    ("POST", "/error-monitor/fixes/generate-for-error", generate_for_error),
    ("POST", "/error-monitor/fixes/generate-batch", generate_batch),
    ("GET", "/error-monitor/fixes/generated", fixes_generated),
    ("GET", "/error-monitor/fixes/{fix_id}", fix_detail),
    ("POST", "/error-monitor/monitor/start", monitor_start),
    ("POST", "/error-monitor/monitor/scan", monitor_scan),
)


def add_api_routes(
    app: web.Application,
    view: WatcherView,
    *,
    redact: Redact = identity,
    clock: Callable[[], float] = time.time,
    link: FrameLinker = no_links,
) -> None:
    """Mount the /error-monitor/ routes, reading `view`; the OpenAPI route is added beside."""
    app[API_CONTEXT] = ApiContext(view, redact, clock, link)
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
