"""Where push sources meet the HTTP server: a path -> handler table the daemon shares.

A push source (OTLP) cannot open a listener of its own: it rides on `[http]`. The daemon makes
one `Intake`, hands it to the sources through their context and to the HTTP app, which routes
the configured paths to `dispatch`. A path whose source is not running (not built yet, failed,
stopped) answers 503 with Retry-After: the sender keeps its data and retries.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
NOT_RUNNING_RETRY_AFTER = "5"


class Intake:
    """The handlers push sources attached, by URL path."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def attach(self, path: str, handler: Handler) -> None:
        """Serve `path` with `handler`. The newest wins: a source rebuilt by a reload attaches
        before the old one has detached (the config forbids two sources on one path)."""
        self._handlers[path] = handler

    def detach(self, path: str, handler: Handler) -> None:
        """Stop serving `path` (only if `handler` is still the one serving it)."""
        # ==, not `is`: each `source.handle` access makes a new bound-method object
        if self._handlers.get(path) == handler:
            del self._handlers[path]

    def serves(self, path: str) -> bool:
        """Whether a running source serves `path`."""
        return path in self._handlers

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """The attached handler's answer; 503 + Retry-After while no source serves the path."""
        handler = self._handlers.get(request.path)
        if handler is None:
            return web.Response(
                status=503,
                text="the source for this path is not running",
                headers={"Retry-After": NOT_RUNNING_RETRY_AFTER},
            )
        return await handler(request)
