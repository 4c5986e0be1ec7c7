"""aiohttp application: liveness, readiness and Prometheus metrics.

Routes are added by small `add_*` functions so the API and the dashboard plug in beside these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from watcher.metrics import Metrics


@dataclass
class AppState:
    """What the handlers read: metrics, and a readiness probe supplied by the daemon."""

    metrics: Metrics
    ready: Callable[[], tuple[bool, dict[str, Any]]] = lambda: (True, {})
    extra: dict[str, Any] = field(default_factory=dict)


APP_STATE = web.AppKey("watcher_state", AppState)


async def live(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    ok, detail = request.app[APP_STATE].ready()
    return web.json_response({"ready": ok, **detail}, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[APP_STATE].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def make_app(state: AppState) -> web.Application:
    """The application with the health and metrics routes."""
    app = web.Application()
    app[APP_STATE] = state
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)
    app.router.add_get("/metrics", metrics)
    return app


def split_listen(listen: str) -> tuple[str, int]:
    """'127.0.0.1:9464' -> ('127.0.0.1', 9464); '[::1]:9464' -> ('::1', 9464)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


async def start(app: web.Application, listen: str) -> web.AppRunner:
    """Start serving; the caller keeps the runner and calls `runner.cleanup()` at shutdown."""
    runner = web.AppRunner(app, access_log=None)
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
