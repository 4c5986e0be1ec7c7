"""Alertmanager destination: patterns pushed as alerts to `POST /api/v2/alerts`.

Each pattern is one alert with labels `alertname="WatcherPattern"`, `group_id`, `category`,
`severity`, `service` (plus the configured `labels`) and annotations `summary`, `count` and
`dashboard` (the pattern's page, when [http] public_url is set). While a pattern is open the
Alerter re-sends it every `resend_interval` with `endsAt` four intervals ahead (Prometheus does
the same), so a watcher that dies lets its alerts expire instead of firing forever; a resolve
sends `endsAt` = now. Alertmanager de-duplicates by the label set, so re-sends are harmless.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import structlog

from watcher.alerts.alert import Alert
from watcher.alerts.delivery import Poster
from watcher.alerts.destination import DestinationConfig, DestinationContext, Outcome
from watcher.alerts.payloads import TEMPLATE_CHARS, clip
from watcher.alerts.rules import Route
from watcher.alerts.targets import WebhookTarget
from watcher.configschema import Seconds

log = structlog.get_logger("watcher.alerts")
ALERTNAME = "WatcherPattern"
DIGEST_ALERTNAME = "WatcherAlertDigest"
API_PATH = "/api/v2/alerts"
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")  # Prometheus' rule, which Alertmanager enforces
ENDS_AFTER_RESENDS = 4  # endsAt = now + 4 * resend_interval, as Prometheus sets it


@dataclass(frozen=True, kw_only=True)
class AlertmanagerConfig(DestinationConfig):
    """[[alerts.destinations]] type = "alertmanager": push alerts to an Alertmanager."""

    type: str = "alertmanager"
    url: str  # the Alertmanager's base URL: http://alertmanager:9093
    resend_interval: Seconds = 60.0
    labels: dict[str, str] = field(default_factory=dict)  # added to every alert
    token_env: str = ""  # a bearer token from this variable, for an Alertmanager behind a proxy

    SUPPORTED: ClassVar[tuple[str, ...]] = ("new", "threshold", "regressed", "resolved")

    def validate(self) -> None:
        """Raise ValueError("key: problem") for settings no Alertmanager accepts."""
        super().validate()
        try:
            WebhookTarget(self.endpoint())
        except ValueError:
            raise ValueError(f"url: expected http(s)://HOST[:PORT], got {self.url!r}") from None
        reserved = {"alertname", "group_id", "category", "severity", "service"} & set(self.labels)
        if reserved:
            raise ValueError(f"labels: {sorted(reserved)} are set by watcher")
        invalid = sorted(name for name in self.labels if not LABEL_NAME.fullmatch(name))
        if invalid:
            raise ValueError(f"labels: {invalid} are not label names ([a-zA-Z_][a-zA-Z0-9_]*)")

    def endpoint(self) -> str:
        """The full URL alerts are POSTed to."""
        base = self.url.rstrip("/")
        return base if base.endswith(API_PATH) else base + API_PATH

    def build(self, ctx: DestinationContext) -> AlertmanagerDestination:
        """The destination this config describes."""
        self.validate()
        env: Mapping[str, str] = os.environ if ctx.env is None else ctx.env
        token = env.get(self.token_env, "") if self.token_env else ""
        headers = (("Authorization", f"Bearer {token}"),) if token else ()
        target = WebhookTarget(self.endpoint(), "json", headers)
        return AlertmanagerDestination(
            self.name or self.type, target, self.route(), self.resend_interval, dict(self.labels)
        )


class AlertmanagerDestination:
    """Posts a batch as one array of Alertmanager alerts."""

    def __init__(
        self,
        name: str,
        target: WebhookTarget,
        route: Route,
        resend_interval: float = 60.0,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.name, self.target, self.route = name, target, route
        self.resend_interval, self.labels = resend_interval, labels or {}

    def __repr__(self) -> str:
        return f"AlertmanagerDestination({self.name!r}, host={self.target.host!r})"

    async def send(self, poster: Poster, alerts: Sequence[Alert]) -> Outcome:
        """One POST with every alert of the batch; pr_opened alerts are not Alertmanager's."""
        body = [self.alert(a) for a in alerts if a.kind != "pr_opened"]
        if not body:
            return Outcome()
        delivered, attempts = await poster.deliver(
            self.target, body, kind="alertmanager", patterns=len(body), destination=self.name
        )
        if delivered:
            log.info("Alerts pushed.", host=self.target.host, alerts=len(body), attempts=attempts)
        return Outcome(1, 0) if delivered else Outcome(0, 1)

    def alert(self, alert: Alert) -> dict[str, Any]:
        """One alert in Alertmanager's v2 `postableAlert` shape."""
        now = datetime.now(UTC).timestamp()
        ahead = 0.0 if alert.kind == "resolved" else ENDS_AFTER_RESENDS * self.resend_interval
        body: dict[str, Any] = {
            "labels": self._labels(alert),
            "annotations": self._annotations(alert),
            "endsAt": _iso(now + ahead),
        }
        if alert.starts_at:
            body["startsAt"] = _iso(alert.starts_at)
        if alert.link:
            body["generatorURL"] = alert.link
        return body

    def _labels(self, alert: Alert) -> dict[str, str]:
        if alert.kind == "digest":
            return {**self.labels, "alertname": DIGEST_ALERTNAME}
        return {
            **self.labels,
            "alertname": ALERTNAME,
            "group_id": alert.group_id,
            "category": alert.category,
            "severity": alert.severity,
            "service": alert.service or "unknown",
        }

    def _annotations(self, alert: Alert) -> dict[str, str]:
        if alert.kind == "digest":
            return {"summary": alert.template, "count": str(alert.count)}
        annotations = {
            "summary": clip(f"{alert.category}: {alert.template}", TEMPLATE_CHARS),
            "count": str(alert.count),
        }
        if alert.link:
            annotations["dashboard"] = alert.link
        return annotations


def _iso(ts: float) -> str:
    """RFC 3339 with milliseconds, as Alertmanager's API prints times."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
