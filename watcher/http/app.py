"""aiohttp application: liveness, readiness, Prometheus metrics, and (given a view) the JSON API
and the dashboard.

Routes are added by small `add_*` functions so the API and the dashboard plug in beside these.
Every response passes the error middleware (JSON errors, never a trace) and the access guard
(bearer token, POST rate limit, body cap); see `security`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from watcher.fdlimit import fd_budget
from watcher.http.api import add_api_routes
from watcher.http.dashboard import add_dashboard
from watcher.http.fleet_api import FleetSnapshot, add_fleet_route
from watcher.http.limits import CappedRunner
from watcher.http.links import FrameLinker, no_links
from watcher.http.openapi import add_openapi_route
from watcher.http.patterns_api import add_pattern_routes
from watcher.http.security import (
    Redact,
    SecurityConfig,
    error_middleware,
    guard_middleware,
    identity,
    security_headers,
)
from watcher.http.view import WatcherView
from watcher.metrics import Metrics
from watcher.sources.intake import Intake


@dataclass
class AppState:
    """What the handlers read: metrics, a readiness probe supplied by the daemon, and the view
    whose per-source status readiness reports."""

    metrics: Metrics
    ready: Callable[[], tuple[bool, dict[str, Any]]] = lambda: (True, {})
    extra: dict[str, Any] = field(default_factory=dict)
    view: WatcherView | None = None
    redact: Redact = identity


APP_STATE = web.AppKey("watcher_state", AppState)
API_PREFIX = "/error-monitor/"  # the JSON API's routes: those that read the view


async def live(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    state = request.app[APP_STATE]
    ok, detail = state.ready()
    body: dict[str, Any] = {"ready": ok, **detail}
    if state.view is not None:
        # Reported, not judged: a source that is down reconnects on its own, and restarting the
        # daemon would not bring it back, so readiness stays the daemon's own verdict.
        body["sources"] = state.view.sources()
    # Source errors can quote URLs or headers: redacted like every other body.
    return web.json_response(state.redact(body), status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[APP_STATE].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def make_app(
    state: AppState,
    *,
    view: WatcherView | None = None,
    security: SecurityConfig | None = None,
    redact_obj: Redact = identity,
    intake: Intake | None = None,
    link: FrameLinker = no_links,
    fleet: FleetSnapshot | None = None,
) -> web.Application:
    """The application: health and metrics always; with a `view`, the /error-monitor/ JSON API,
    its OpenAPI document and the dashboard at `/`.

    `intake` serves `security.ingest_paths` (push sources such as OTLP); `fleet` answers
    /error-monitor/fleet (the daemon's instances).
    `security` carries the API token (None: mutating routes answer 403), whether reads need it,
    the POST rate limit and the body cap. `redact_obj` is applied to every JSON body.
    """
    security = security or SecurityConfig()
    state.view = view if view is not None else state.view
    middlewares = [error_middleware(redact_obj), guard_middleware(security)]
    if state.view is not None:
        middlewares.append(current_middleware(state.view))  # after the guard: see there
    app = web.Application(client_max_size=security.max_body_bytes, middlewares=middlewares)
    state.redact = redact_obj
    app[APP_STATE] = state
    app.on_response_prepare.append(security_headers)
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)
    app.router.add_get("/metrics", metrics)
    for path in sorted(security.ingest_paths if intake is not None else ()):
        app.router.add_post(path, intake.dispatch)  # type: ignore[union-attr]
    if state.view is not None:
        add_api_routes(app, state.view, redact=redact_obj, link=link)
        add_pattern_routes(app)
        # the daemon's fleet; a view may answer for it too (a test's view, a failing one)
        add_fleet_route(app, fleet or getattr(state.view, "fleet", None))
        add_openapi_route(app)
        add_dashboard(app)
    return app


def current_middleware(view: WatcherView) -> Any:
    """The view brought up to date (WatcherView.current) before each API request: after the
    access guard, so a request refused there costs the store nothing."""

    @web.middleware
    async def current(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(API_PREFIX):
            await view.current()
        return await handler(request)

    return current


def split_listen(listen: str) -> tuple[str, int]:
    """'127.0.0.1:9464' -> ('127.0.0.1', 9464); '[::1]:9464' -> ('::1', 9464)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


async def start(
    app: web.Application,
    listen: str,
    *,
    max_connections: int = 256,
    idle_timeout: float = 15.0,
    log: Any = None,
) -> web.AppRunner:
    """Start serving; the caller keeps the runner and calls `runner.cleanup()` at shutdown.

    Connections idle (or not done sending a request head) for `idle_timeout` seconds are
    closed, and at most `max_connections` are held at once (see `limits`)."""
    runner = CappedRunner(
        app,
        max_connections=fd_budget(max_connections, 0.25),
        log=log or structlog.get_logger("watcher.http"),
        access_log=None,
        keepalive_timeout=idle_timeout,
    )
    await runner.setup()
    host, port = split_listen(listen)
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port actually bound (for listen ports of 0 in tests)."""
    for site in runner.sites:
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            return int(server.sockets[0].getsockname()[1])
    raise RuntimeError("not listening")
