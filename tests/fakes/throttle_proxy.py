"""An HTTP proxy in front of moto that throttles CloudWatch Logs calls with AWS's real answer.

moto never throttles, and a throttle raised above botocore (a wrapped client) skips everything
botocore does about it: its adaptive retry mode (retries with backoff, a client-side rate that
drops after throttles) and the error it raises once the attempts are spent. This proxy answers
the FilterLogEvents calls its `plan` picks with what CloudWatch Logs sends over the wire when
an account exceeds its request rate: HTTP 400, `Content-Type: application/x-amz-json-1.1`,
`x-amzn-RequestId`, and the body `{"__type": "ThrottlingException", "message": "Rate
exceeded"}` (the awsJson1_1 error shape botocore parses into the error code). Everything else is
forwarded to moto unchanged.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import aiohttp
from aiohttp import web

THROTTLED_OPERATION = "Logs_20140328.FilterLogEvents"
THROTTLE_BODY = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"})
_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection"}


class ThrottleProxy:
    """Forwards to `upstream`; the n-th FilterLogEvents call (from 1) is throttled when
    `plan(n)` is true. `calls` and `throttled` count what it saw."""

    def __init__(self, upstream: str, plan: Callable[[int], bool]) -> None:
        self.upstream = upstream.rstrip("/")
        self.plan = plan
        self.calls = 0
        self.throttled = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> ThrottleProxy:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession(auto_decompress=False)
        return self

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("X-Amz-Target") == THROTTLED_OPERATION:
            self.calls += 1
            if self.plan(self.calls):
                self.throttled += 1
                return web.Response(
                    status=400,
                    body=THROTTLE_BODY.encode(),
                    headers={
                        "Content-Type": "application/x-amz-json-1.1",
                        "x-amzn-RequestId": str(uuid.uuid4()),
                    },
                )
        return await self._forward(request, body)

    async def _forward(self, request: web.Request, body: bytes) -> web.Response:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body
        ) as upstream:
            data = await upstream.read()
            kept = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            return web.Response(status=upstream.status, body=data, headers=kept)
