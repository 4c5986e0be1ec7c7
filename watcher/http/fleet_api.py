"""GET /error-monitor/fleet: every watcher on this state — name, host, pid, version, heartbeat,
state (up / lost / stopped), leader, the sources each reads and the leases each holds.

Any instance answers for the whole fleet: the rows come from the shared store, read by the
heartbeat (no store I/O in the handler). A watcher on its own SQLite file lists itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from watcher.http.api import reply

FleetSnapshot = Callable[[], dict[str, Any]]
FLEET = web.AppKey("watcher_fleet", FleetSnapshot)
PATH = "/error-monitor/fleet"


def no_fleet() -> dict[str, Any]:
    """The answer of an app without a daemon behind it (tests, tools): no instances."""
    return {"instance": None, "shared": False, "lease_ttl_seconds": 0.0, "instances": [],
            "up": 0, "leader": None}  # fmt: skip


async def fleet(request: web.Request) -> web.Response:
    return reply(request, request.app[FLEET]())


def add_fleet_route(app: web.Application, snapshot: FleetSnapshot | None) -> None:
    """Mount the fleet route, answering from `snapshot` (the daemon's `Fleet.snapshot`)."""
    app[FLEET] = snapshot or no_fleet
    app.router.add_get(PATH, fleet)


def fleet_paths() -> dict[str, Any]:
    """The route's OpenAPI operation."""
    from watcher.http.openapi import BOOL, INT, NUM, OPT_STR, STR, TIME, array, get, obj

    opt_bool = {"type": ["boolean", "null"]}
    state = {"type": "string", "enum": ["up", "lost", "stopped"]}
    instance = obj({
        "name": STR, "state": state, "host": STR, "pid": INT, "version": STR,
        "started_at": TIME, "last_seen": TIME, "last_seen_age_seconds": NUM,
        "leader": opt_bool, "sources": array(STR), "leases": array(STR),
    })  # fmt: skip
    body = obj({
        "instance": OPT_STR, "shared": BOOL, "lease_ttl_seconds": NUM,
        "instances": array(instance), "up": INT, "leader": OPT_STR,
    })  # fmt: skip
    return {PATH: get("Every watcher on this state, with its heartbeat and sources", body)}
