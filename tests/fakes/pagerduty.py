"""A protocol-faithful fake of PagerDuty's Events API v2 (`POST /v2/enqueue`) on 127.0.0.1.

Follows the public documentation (developer.pagerduty.com, "Send an Alert Event" and "Events
API v2 Overview"):

- 202 `{"status": "success", "message": "Event processed", "dedup_key": …}` for a valid event;
- 400 `{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}` for
  a body that is not JSON, an unknown routing key, an unknown `event_action`, a trigger without
  `payload.summary`/`source`/`severity`, a severity outside critical/error/warning/info, a
  summary over 1024 characters or a `dedup_key` over 255;
- 429 when the test scripts throttling (`throttle(times)`), as PagerDuty answers a service
  that receives events too fast; the client should retry with a backoff.

Alerts are kept by `dedup_key`: a trigger opens one (or adds a log entry to the open one), a
resolve closes it; a trigger for a resolved key opens a new alert; a resolve for no open alert
is accepted and dropped, as the documentation says.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

SEVERITIES = ("critical", "error", "warning", "info")
ROUTING_KEY = "R0UT1NGKEY0000000000000000000000"  # 32 characters, like an integration key


@dataclass
class PdAlert:
    """One PagerDuty alert: its status and every event applied to it."""

    dedup_key: str
    status: str = "triggered"
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def payload(self) -> dict[str, Any]:
        """The payload of the latest trigger."""
        return [e for e in self.events if e["event_action"] == "trigger"][-1]["payload"]


class FakePagerDuty:
    """The fake; `start()` / `stop()`, or use the `pagerduty` fixture."""

    def __init__(self, routing_key: str = ROUTING_KEY) -> None:
        self.routing_key = routing_key
        self.alerts: list[PdAlert] = []  # every alert ever opened, oldest first
        self.requests: list[Any] = []  # every request body (parsed when JSON), answered or not
        self.statuses: list[int] = []
        self._throttle = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The enqueue endpoint."""
        return f"http://127.0.0.1:{self.port}/v2/enqueue"

    def throttle(self, times: int = 1) -> None:
        """Answer the next `times` events with 429."""
        self._throttle += times

    def open_alert(self, dedup_key: str) -> PdAlert | None:
        """The triggered (not yet resolved) alert with this key, if any."""
        for alert in reversed(self.alerts):
            if alert.dedup_key == dedup_key and alert.status == "triggered":
                return alert
        return None

    async def start(self) -> None:
        """Listen on an ephemeral loopback port."""
        app = web.Application()
        app.router.add_post("/v2/enqueue", self._enqueue)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Close the server."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _enqueue(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            event = json.loads(raw)
        except ValueError:
            self.requests.append(raw)
            return self._answer(400, _invalid("Malformed JSON"))
        self.requests.append(event)
        if self._throttle:
            self._throttle -= 1
            return self._answer(429, {"status": "throttle event", "message": "Too many requests"})
        errors = _errors(event, self.routing_key)
        if errors:
            return self._answer(400, _invalid(*errors))
        key = event.get("dedup_key") or str(uuid.uuid4())
        self._apply(key, event)
        return self._answer(
            202, {"status": "success", "message": "Event processed", "dedup_key": key}
        )

    def _apply(self, key: str, event: dict[str, Any]) -> None:
        alert = self.open_alert(key)
        if event["event_action"] == "trigger":
            if alert is None:
                alert = PdAlert(key)
                self.alerts.append(alert)
            alert.events.append(event)
        elif alert is not None:
            alert.events.append(event)
            if event["event_action"] == "resolve":
                alert.status = "resolved"

    def _answer(self, status: int, body: dict[str, Any]) -> web.Response:
        self.statuses.append(status)
        return web.json_response(body, status=status)


def _invalid(*errors: str) -> dict[str, Any]:
    return {"status": "invalid event", "message": "Event object is invalid", "errors": list(errors)}


def _errors(event: Any, routing_key: str) -> list[str]:
    """What PagerDuty would reject in `event` (empty when it is valid)."""
    if not isinstance(event, dict):
        return ["Event object is not a JSON object"]
    errors = []
    if event.get("routing_key") != routing_key:
        errors.append("'routing_key' is invalid")
    if event.get("event_action") not in ("trigger", "acknowledge", "resolve"):
        errors.append("'event_action' is missing or invalid")
    if len(str(event.get("dedup_key") or "")) > 255:
        errors.append("'dedup_key' must be at most 255 characters")
    if event.get("event_action") == "trigger":
        errors += _payload_errors(event.get("payload"))
    elif not event.get("dedup_key"):
        errors.append("'dedup_key' is required for acknowledge and resolve")
    return errors


def _payload_errors(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or not an object"]
    errors = [
        f"'payload.{k}' is missing or blank" for k in ("summary", "source") if not payload.get(k)
    ]
    if len(str(payload.get("summary", ""))) > 1024:
        errors.append("'payload.summary' must be at most 1024 characters")
    if payload.get("severity") not in SEVERITIES:
        errors.append("'payload.severity' must be one of critical, error, warning, info")
    if "custom_details" in payload and not isinstance(payload["custom_details"], dict | str):
        errors.append("'payload.custom_details' must be an object")
    return errors


@pytest.fixture
async def pagerduty() -> AsyncIterator[FakePagerDuty]:
    """A started FakePagerDuty, stopped after the test."""
    fake = FakePagerDuty()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
