"""Webhook and Slack destinations: one message per alert kind per batch.

A batch of alerts becomes one message per kind (up to `max_listed` patterns shown, then "and N
more"), in the payload format of the target: Slack blocks or generic JSON (see `payloads`).
`type = "slack"` always posts Slack blocks; `type = "webhook"` picks by `format` ("auto": the
rule in `targets`, so `slack+https://…` and hooks.slack.com URLs get Slack blocks).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

import structlog

from watcher.alerts.alert import KINDS, Alert, Kind
from watcher.alerts.delivery import Poster
from watcher.alerts.destination import DestinationConfig, DestinationContext, Outcome
from watcher.alerts.payloads import MAX_LISTED, build
from watcher.alerts.rules import Route
from watcher.alerts.targets import WebhookTarget, parse_target
from watcher.configschema import AtLeast

log = structlog.get_logger("watcher.alerts")


@dataclass(frozen=True, kw_only=True)
class WebhookConfig(DestinationConfig):
    """[[alerts.destinations]] type = "webhook": generic JSON (or Slack-compatible) POSTs."""

    type: str = "webhook"
    url: str = field(metadata={"mask": "path"})  # the path is the credential: never shown
    format: Literal["auto", "json", "slack"] = "auto"
    max_listed: Annotated[int, AtLeast(1)] = MAX_LISTED

    def validate(self) -> None:
        """Raise ValueError("key: problem") for a URL no webhook can be posted to."""
        super().validate()
        try:
            self.target()
        except ValueError as exc:
            raise ValueError(f"url: {exc}") from None

    def target(self) -> WebhookTarget:
        """Where to POST and in which format."""
        target = parse_target(self.url)
        if self.format == "auto":
            return target
        return WebhookTarget(target.url, self.format)

    def build(self, ctx: DestinationContext) -> WebhookDestination:
        """The destination this config describes."""
        self.validate()
        return WebhookDestination(
            self.name or self.type, self.target(), self.route(), self.max_listed
        )


@dataclass(frozen=True, kw_only=True)
class SlackConfig(WebhookConfig):
    """[[alerts.destinations]] type = "slack": a Slack (or Mattermost…) incoming webhook."""

    type: str = "slack"
    format: Literal["auto", "json", "slack"] = "slack"

    def validate(self) -> None:
        """A Slack destination posts Slack blocks whatever the URL looks like."""
        if self.format != "slack":
            raise ValueError(
                'format: a slack destination posts Slack blocks (use type = "webhook")'
            )
        super().validate()


class WebhookDestination:
    """POSTs one message per alert kind in a batch to one webhook."""

    resend_interval: ClassVar[float] = 0.0

    def __init__(
        self, name: str, target: WebhookTarget, route: Route, max_listed: int = MAX_LISTED
    ) -> None:
        self.name, self.target, self.route, self.max_listed = name, target, route, max_listed

    def __repr__(self) -> str:
        return f"WebhookDestination({self.name!r}, host={self.target.host!r})"

    async def send(self, poster: Poster, alerts: Sequence[Alert]) -> Outcome:
        """One message per kind, in KINDS order; a failed message does not stop the next."""
        sent = failed = 0
        for kind in KINDS:
            of_kind = [a for a in alerts if a.kind == kind]
            if of_kind and await self._deliver(poster, kind, of_kind):
                sent += 1
            elif of_kind:
                failed += 1
        return Outcome(sent, failed)

    async def _deliver(self, poster: Poster, kind: Kind, alerts: list[Alert]) -> bool:
        total = alerts[0].count if kind == "digest" else len(alerts)
        payload: Any = build(self.target.format, kind, alerts[: self.max_listed], total)
        delivered, attempts = await poster.deliver(
            self.target, payload, kind=kind, patterns=total, destination=self.name
        )
        if delivered:
            log.info(
                "Alert sent.", host=self.target.host, kind=kind, patterns=total, attempts=attempts
            )
        return delivered
