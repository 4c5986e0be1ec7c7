"""PagerDuty destination: Events API v2 `trigger` / `resolve`, one event per pattern.

`dedup_key` is the group id, so every trigger for a pattern lands on its one open PagerDuty
alert and the resolve closes it. The routing key (the integration key) comes from the variable
named by `routing_key_env`, never from the config file. `custom_details` carry the pattern as
the generic JSON payload does, built from alerts the Alerter has already redacted. Responses
per the public API: 202 accepted; 400 invalid (not retried); 429 and 5xx retried with backoff.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog

from watcher.alerts.alert import Alert
from watcher.alerts.delivery import Poster
from watcher.alerts.destination import DestinationConfig, DestinationContext, Outcome
from watcher.alerts.payloads import clip, generic_alert, iso
from watcher.alerts.rules import Route
from watcher.alerts.targets import WebhookTarget

log = structlog.get_logger("watcher.alerts")
EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
SUMMARY_CHARS = 1024  # the API's limit on payload.summary
DEDUP_CHARS = 255  # the API's limit on dedup_key
DIGEST_DEDUP_KEY = "watcher-alert-digest"
# watcher's severities -> PagerDuty's four
SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}


@dataclass(frozen=True, kw_only=True)
class PagerDutyConfig(DestinationConfig):
    """[[alerts.destinations]] type = "pagerduty": PagerDuty Events API v2."""

    type: str = "pagerduty"
    routing_key_env: str = "PAGERDUTY_ROUTING_KEY"
    url: str = EVENTS_URL  # events.eu.pagerduty.com for EU accounts
    source: str = ""  # payload.source; default: this host's name

    SUPPORTED: ClassVar[tuple[str, ...]] = ("new", "threshold", "regressed", "resolved")

    def validate(self) -> None:
        """Raise ValueError("key: problem") for settings PagerDuty cannot work with."""
        super().validate()
        try:
            WebhookTarget(self.url)
        except ValueError:
            raise ValueError(f"url: expected an http(s) URL, got {self.url!r}") from None
        if not self.routing_key_env:
            raise ValueError("routing_key_env: must name the variable holding the routing key")

    def build(self, ctx: DestinationContext) -> PagerDutyDestination:
        """The destination; ValueError when the routing key's variable is unset or empty."""
        self.validate()
        env: Mapping[str, str] = os.environ if ctx.env is None else ctx.env
        key = env.get(self.routing_key_env, "")
        if not key:
            raise ValueError(f"routing_key_env: ${self.routing_key_env} is not set")
        return PagerDutyDestination(
            self.name or self.type,
            WebhookTarget(self.url),
            self.route(),
            key,
            source=self.source or socket.gethostname(),
            client_url=ctx.public_url,
        )


class PagerDutyDestination:
    """Sends one Events API v2 event per alert."""

    resend_interval: ClassVar[float] = 0.0

    def __init__(
        self,
        name: str,
        target: WebhookTarget,
        route: Route,
        routing_key: str,
        *,
        source: str = "watcher",
        client_url: str = "",
    ) -> None:
        self.name, self.target, self.route = name, target, route
        self._routing_key, self.source, self.client_url = routing_key, source, client_url

    def __repr__(self) -> str:
        return f"PagerDutyDestination({self.name!r}, host={self.target.host!r})"

    async def send(self, poster: Poster, alerts: Sequence[Alert]) -> Outcome:
        """One event per alert, in order (a resolve must not overtake its trigger)."""
        sent = failed = 0
        for alert in alerts:
            if alert.kind == "pr_opened":
                continue
            action = "resolve" if alert.kind == "resolved" else "trigger"
            delivered, _ = await poster.deliver(
                self.target, self.event(alert), kind=action, destination=self.name
            )
            sent, failed = (sent + 1, failed) if delivered else (sent, failed + 1)
        if sent:
            log.info("PagerDuty events sent.", host=self.target.host, events=sent)
        return Outcome(sent, failed)

    def event(self, alert: Alert) -> dict[str, Any]:
        """The Events API v2 body for `alert`."""
        dedup = DIGEST_DEDUP_KEY if alert.kind == "digest" else alert.group_id[:DEDUP_CHARS]
        base: dict[str, Any] = {"routing_key": self._routing_key, "dedup_key": dedup}
        if alert.kind == "resolved":
            return {**base, "event_action": "resolve"}
        event = {**base, "event_action": "trigger", "payload": self._payload(alert)}
        event["client"] = "watcher"
        if self.client_url:
            event["client_url"] = self.client_url
        if alert.link:
            event["links"] = [{"href": alert.link, "text": "Pattern in watcher"}]
        return event

    def _payload(self, alert: Alert) -> dict[str, Any]:
        if alert.kind == "digest":
            return {"summary": alert.template, "source": self.source, "severity": "warning"}
        payload: dict[str, Any] = {
            "summary": clip(f"[{alert.kind}] {alert.category}: {alert.template}", SUMMARY_CHARS),
            "source": self.source,
            "severity": SEVERITY.get(alert.severity, "info"),
            "class": alert.exception_type or alert.category,
            "group": alert.category,
            "custom_details": {"kind": alert.kind, **generic_alert(alert)},
        }
        if alert.service:
            payload["component"] = alert.service
        if alert.last_seen:
            payload["timestamp"] = iso(alert.last_seen)
        return payload
