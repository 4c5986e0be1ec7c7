"""Connection limits for the HTTP server: an idle/header timeout and a cap on connections.

Without them, clients that connect and send nothing (or send a request head one byte at a
time) each hold a file descriptor for as long as they like: 1,020 of them at the default limit
of 1,024 descriptors starved the daemon (health probes timed out, every accept failed).

- `idle_timeout` is aiohttp's keep-alive timeout, which (since aiohttp 3.10) also runs from the
  moment a connection opens until its first request head is complete: a connection that does
  not finish a request head in time, or stays idle between requests, is closed.
- At `max_connections`, a new connection evicts the oldest idle one (a connection with no
  request in progress: a keep-alive client, or a slow or silent one); when every connection is
  busy, the newcomer gets an immediate `503` and is closed. Health probes keep working under a
  flood of idle connections.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from watcher.logs import Throttled

_BUSY_BODY = b'{"error": "too many connections", "detail": "retry soon"}'
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
) % (len(_BUSY_BODY), _BUSY_BODY)


class _Busy(asyncio.Protocol):
    """Answers 503 and closes: the server is at its connection cap with every one busy."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(_BUSY)
        transport.close()


class ConnectionCap:
    """Wraps aiohttp's protocol factory (its `Server`): at most `limit` connections at once.

    Connections are counted from the moment the factory makes their handler: the server's own
    list only learns of them a loop iteration later, after a burst of accepts has gone by.
    """

    def __init__(self, server: web.Server, limit: int, log: Any) -> None:
        self._server = server
        self.limit = limit
        self.evicted = 0
        self.refused = 0
        self._live: list[Any] = []  # handlers made, oldest first, until their connection ends
        self._say = Throttled(log, 60.0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)  # shutdown(), connections, … of the real server

    @property
    def open(self) -> int:
        """Connections held now (made and not yet lost)."""
        # aiohttp drops a handler's manager when its connection is lost
        self._live = [h for h in self._live if getattr(h, "_manager", None) is not None]
        return len(self._live)

    def __call__(self) -> asyncio.Protocol:
        if self.open >= self.limit and not self._evict():
            self.refused += 1
            self._say(
                "warning",
                "HTTP connection cap reached with every connection busy; refusing.",
                key="refuse",
                max_connections=self.limit,
                refused=self.refused,
            )
            return _Busy()
        handler = self._server()
        self._live.append(handler)
        return handler

    def _evict(self) -> bool:
        """Close the oldest idle connection (no request in progress); False when none is."""
        for handler in self._live:
            # aiohttp has no public flag for this; without it every connection counts as busy
            if getattr(handler, "_request_in_progress", True):
                continue
            if handler.transport is None:
                # accepted in this same burst, not connected yet: its connection_made is
                # already scheduled, so closing it next is closing it as soon as it exists
                asyncio.get_running_loop().call_soon(handler.force_close)
            else:
                handler.force_close()
            self._live.remove(handler)
            self.evicted += 1
            self._say(
                "warning",
                "HTTP connection cap reached; closing the oldest idle connection.",
                key="evict",
                max_connections=self.limit,
                evicted=self.evicted,
            )
            return True
        return False


class CappedRunner(web.AppRunner):
    """An AppRunner whose server holds at most `max_connections` connections."""

    def __init__(self, app: web.Application, *, max_connections: int, log: Any, **kwargs: Any):
        super().__init__(app, **kwargs)
        self.max_connections = max_connections
        self.log = log
        self.cap: ConnectionCap | None = None

    async def _make_server(self) -> Any:
        self.cap = ConnectionCap(await super()._make_server(), self.max_connections, self.log)
        return self.cap
