"""The lifecycle routes: resolve, ignore, reopen, merge and split a pattern, and the activity list.

Mutations are POSTs (behind the bearer token, like every POST); their parameters are query
parameters, as the original API's are. Who made a change is `actor` (a name the caller gives,
recorded as "api:<name>"; "api" without one; `watcher groups` sends "cli:<name>").
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

from aiohttp import web

from watcher.config import parse_duration
from watcher.group.lifecycle import LifecycleError
from watcher.http import serialize
from watcher.http.api import context, latest_fixes, reply
from watcher.http.security import MAX_BATCH, ApiError, id_value, invalid, limit_param

# "cli:" marks a change `watcher groups` made through the API (recorded as such)
ACTOR_PATTERN = r"^(cli:)?[\w.@+-]{1,64}$"
_ACTOR = re.compile(ACTOR_PATTERN)
MAX_IGNORE_COUNT = 1_000_000_000
ACTIONS = ("resolve", "ignore", "reopen", "merge", "split")


def actor_param(request: web.Request) -> str:
    raw = request.query.get("actor")
    if raw is None:
        return "api"
    if not _ACTOR.fullmatch(raw):
        raise invalid("actor", "a name of letters, digits and _.@+- (at most 64 characters)")
    return raw if raw.startswith("cli:") else f"api:{raw}"


def _count(request: web.Request) -> int | None:
    raw = request.query.get("count")
    if raw is None:
        return None
    digits = raw.isascii() and raw.isdigit() and len(raw) <= 10
    if not digits or not 1 <= int(raw) <= MAX_IGNORE_COUNT:
        raise invalid("count", f"an integer from 1 to {MAX_IGNORE_COUNT}")
    return int(raw)


UNTIL_PATTERN = r"^[0-9]{1,9}(ms|s|m|h|d)$"
_UNTIL = re.compile(UNTIL_PATTERN)
MAX_EPOCH = 1e11  # seconds: the year 5138, far beyond any ignore anyone means


def _until(request: web.Request) -> float | None:
    """An ignore's end: `until` a duration from now (2h), or `until_ts` epoch seconds."""
    raw, stamp = request.query.get("until"), request.query.get("until_ts")
    if raw is not None:
        if not _UNTIL.fullmatch(raw.strip()):
            raise invalid("until", "a duration: a whole number and ms, s, m, h or d (2h)")
        return context(request).clock() + parse_duration(raw.strip())
    if stamp is None:
        return None
    try:
        value = float(stamp)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= MAX_EPOCH):
        raise invalid("until_ts", f"epoch seconds from 0 to {MAX_EPOCH:g}")
    return value


def action_params(request: web.Request, action: str) -> dict[str, Any]:
    if action == "ignore":
        return {"more": _count(request), "until": _until(request)}
    if action == "merge":
        raw = request.query.get("ids", "")
        ids = list(dict.fromkeys(p.strip() for p in raw.split(",") if p.strip()))
        if not ids or len(ids) > MAX_BATCH:
            raise invalid("ids", f"a comma-separated list of 1 to {MAX_BATCH} pattern ids")
        return {"others": [id_value("ids", i) for i in ids]}
    if action == "split":
        fingerprint = request.query.get("fingerprint")
        if fingerprint is None:
            raise invalid("fingerprint", "the fingerprint to split off")
        return {"fingerprint": id_value("fingerprint", fingerprint.strip())}
    return {}


async def change(request: web.Request, *, action: str) -> web.Response:
    """POST /error-monitor/errors/patterns/{group_id}/{action}."""
    group_id = id_value("group_id", request.match_info["group_id"])
    actor = actor_param(request)
    params = action_params(request, action)
    view = context(request).view
    try:
        group = await view.change(group_id, action, actor, **params)
    except KeyError as exc:
        raise ApiError(404, "not found", f"no error pattern with id {exc.args[0]}") from None
    except LifecycleError as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    fix = latest_fixes(view).get(group.id)
    entries = [serialize.activity_object(a) for a in view.activity(group_id=group.id, limit=20)]
    body = {"pattern": serialize.error_object(group, fix), "activity": entries}
    return reply(request, body)


async def activity(request: web.Request) -> web.Response:
    """GET /error-monitor/activity: lifecycle changes, newest first."""
    group_id = request.query.get("group_id")
    if group_id is not None:
        group_id = id_value("group_id", group_id)
    entries = context(request).view.activity(group_id=group_id, limit=limit_param(request))
    listed = [serialize.activity_object(a) for a in entries]
    return reply(request, {"count": len(entries), "activity": listed})


def add_pattern_routes(app: web.Application) -> None:
    """Mount the lifecycle routes (after add_api_routes, whose context they share)."""
    for action in ACTIONS:  # one route each: the OpenAPI document names every one
        path = f"/error-monitor/errors/patterns/{{group_id}}/{action}"
        app.router.add_post(path, functools.partial(change, action=action))
    app.router.add_get("/error-monitor/activity", activity)
