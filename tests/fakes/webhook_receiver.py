"""A local webhook receiver on 127.0.0.1: records every request and answers as scripted.

Answers are `Reply`s: status, body, headers, and a `delay` before answering (longer than the
client's timeout plays a hung server). Scripted replies are used once each, in order, per path
(`path=None` scripts apply to any path after that path's own); when the script is empty the
`default` reply (200 "ok", as Slack answers) is used. Every request is recorded on arrival,
including those that will time out, with `time.monotonic()` so tests can measure the gaps
between retries. The `webhook_receiver` fixture runs one on the test's own event loop; load this
module as a plugin (`pytest_plugins = ["tests.fakes.webhook_receiver"]`) rather than importing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    """One request as the receiver got it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class WebhookReceiver:
    """The receiver; `start()` / `stop()`, or use the `webhook_receiver` fixture."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.default = Reply()
        self._script: dict[str | None, deque[Reply]] = {}
        self._arrived = asyncio.Condition()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, path: str = "/hook", scheme: str = "http") -> str:
        """The receiver's URL for `path`; `scheme` may carry a format prefix (slack+http)."""
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def reply(
        self,
        status: int = 200,
        *,
        body: str = "",
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        times: int = 1,
        path: str | None = None,
    ) -> None:
        """Script the next `times` answers (for `path`, or any path when None)."""
        answer = Reply(status, body, dict(headers or {}), delay)
        self._script.setdefault(path, deque()).extend([answer] * times)

    def always(self, status: int, *, body: str = "", headers: dict[str, str] | None = None) -> None:
        """Answer every unscripted request this way from now on (a persistently broken hook)."""
        self.default = Reply(status, body, dict(headers or {}))

    def on(self, path: str) -> list[Received]:
        """The requests received on `path`."""
        return [r for r in self.requests if r.path == path]

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Wait until at least `count` requests arrived; AssertionError at the deadline."""
        async with self._arrived:
            try:
                await asyncio.wait_for(
                    self._arrived.wait_for(lambda: len(self.requests) >= count), timeout
                )
            except TimeoutError:
                got = len(self.requests)
                raise AssertionError(f"expected {count} requests, got {got}") from None
        return list(self.requests)

    async def start(self) -> None:
        """Listen on an ephemeral loopback port."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Release delayed answers and close the server."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def _next_reply(self, path: str) -> Reply:
        for key in (path, None):
            script = self._script.get(key)
            if script:
                return script.popleft()
        return self.default

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        received = Received(
            request.method, request.path, dict(request.headers), body, time.monotonic()
        )
        answer = self._next_reply(request.path)
        async with self._arrived:
            self.requests.append(received)
            self._arrived.notify_all()
        if answer.delay:
            # ends early on stop(), so a hung answer never holds up the test's teardown
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), answer.delay)
        return web.Response(status=answer.status, text=answer.body, headers=answer.headers)


@pytest.fixture
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    """A started WebhookReceiver, stopped after the test."""
    receiver = WebhookReceiver()
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()
