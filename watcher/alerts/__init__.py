"""Alerts: Slack-compatible and generic JSON webhooks for error patterns.

When an alert fires (`Alerter.observe`, `Alerter.pr_opened`):

- `threshold`: a group crossed its threshold (`GroupUpdate.crossed_threshold`) and its severity
  is at or above `min_severity`;
- `new_critical`: a group seen for the first time (`is_new`) has severity critical (this one
  ignores `min_severity`: critical is above every minimum);
- `pr_opened`: the fix pipeline opened a pull request for a group.

Rate limit: at most one alert per pattern per `cooldown` seconds; threshold and new_critical
share that budget, PR alerts have their own. Alerts arriving within `batch_window` of each other
go out as one message per kind per target (up to ten patterns listed, then "and N more").
Targets and their formats: see `watcher.alerts.targets`. Metric `watcher_alerts_sent_total`
counts messages `sent` / `failed` (one per target per message) and alerts `dropped` (queue full,
redaction error, drain timeout) / `suppressed` (inside the cooldown).
"""

from __future__ import annotations

from watcher.alerts.alert import Alert, Kind
from watcher.alerts.alerter import Alerter, AlertMetrics
from watcher.alerts.delivery import RetryPolicy
from watcher.alerts.payloads import build as build_payload
from watcher.alerts.targets import WebhookTarget, parse_target

__all__ = [
    "Alert",
    "AlertMetrics",
    "Alerter",
    "Kind",
    "RetryPolicy",
    "WebhookTarget",
    "build_payload",
    "parse_target",
]
