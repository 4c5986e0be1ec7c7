"""Alerts: error patterns sent to destinations (webhook, Slack, Alertmanager, PagerDuty).

Destinations are registered by their config `type` in `DESTINATIONS` ("module:ConfigClass",
imported only when configured), as sources are; each config class builds its `Destination`.

Alert kinds, routed per destination with `kinds = [...]`:

- `new`: a pattern seen for the first time (after `min_count` events within `window`);
- `threshold`: a pattern crossed its threshold (`[grouping] alert_count` in `alert_window`);
- `regressed`: a resolved pattern came back (the engine's lifecycle hook, or a pattern the
  alerter resolved for being quiet logged again);
- `resolved`: a pattern was resolved, or went quiet for `[alerts] resolve_after`;
- `pr_opened`: the fix pipeline opened a pull request for a pattern;

plus `digest`: the count of alerts the global rate cap held back. Each destination gets only
patterns at or above its `min_severity`, one opening alert per pattern per `cooldown`. Metric
`watcher_alerts_sent_total` counts messages `sent` / `failed` and alerts `dropped` (queue full,
redaction error, drain timeout) / `suppressed` (cooldown) / `digested` (rate cap).
"""

from __future__ import annotations

from watcher.alerts.alert import Alert, Kind
from watcher.alerts.alerter import Alerter, AlertMetrics
from watcher.alerts.delivery import RetryPolicy
from watcher.alerts.destination import Destination, DestinationConfig, DestinationContext
from watcher.alerts.payloads import build as build_payload
from watcher.alerts.targets import WebhookTarget, parse_target
from watcher.importer import import_attr

DESTINATIONS: dict[str, str] = {
    "webhook": "watcher.alerts.webhook:WebhookConfig",
    "slack": "watcher.alerts.webhook:SlackConfig",
    "alertmanager": "watcher.alerts.alertmanager:AlertmanagerConfig",
    "pagerduty": "watcher.alerts.pagerduty:PagerDutyConfig",
}


def config_class(type_name: str) -> type:
    """The config dataclass for a destination type; KeyError when the type is unknown."""
    return import_attr(DESTINATIONS[type_name])


__all__ = [
    "DESTINATIONS",
    "Alert",
    "AlertMetrics",
    "Alerter",
    "Destination",
    "DestinationConfig",
    "DestinationContext",
    "Kind",
    "RetryPolicy",
    "WebhookTarget",
    "build_payload",
    "config_class",
    "parse_target",
]
