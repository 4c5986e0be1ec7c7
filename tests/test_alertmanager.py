"""The Alertmanager destination against a real Alertmanager (Debian prometheus-alertmanager).

The server is started per test on a free loopback port with its storage in tmp_path and
clustering off; the alerter posts to it through the real aiohttp client, and the tests read
what Alertmanager holds back through its own API (GET /api/v2/alerts).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import structlog

from tests.helpers import free_port, need, wait_for
from tests.test_alerts import FAST, Clock, group, outcome, running, update
from tests.test_daemon import ERRORS, write_config
from watcher.alerts import Alerter
from watcher.alerts.alertmanager import AlertmanagerConfig
from watcher.alerts.destination import DestinationContext
from watcher.config import load_config
from watcher.daemon import Daemon
from watcher.fix.redact import Redactor
from watcher.metrics import Metrics

if TYPE_CHECKING:
    from tests.fakes.pagerduty import FakePagerDuty
    from tests.fakes.webhook_receiver import WebhookReceiver

pytest_plugins = ["tests.fakes.pagerduty", "tests.fakes.webhook_receiver"]

PUBLIC_URL = "https://watcher.example.com"
AM_CONFIG = 'route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n'


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager on 127.0.0.1:<free port>; yields its base URL."""
    with running_alertmanager(tmp_path, AM_CONFIG) as base:
        yield base


@contextlib.contextmanager
def running_alertmanager(tmp_path: Path, config_text: str) -> Iterator[str]:
    """Start Debian's prometheus-alertmanager with `config_text`; its base URL until exit."""
    binary = need("prometheus-alertmanager")
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(config_text)
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip port: several test servers may run at once
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(base), timeout=20)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/-/ready", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def active_alerts(base: str) -> list[dict[str, Any]]:
    """What Alertmanager lists as its alerts right now (resolved ones are not listed)."""
    with urllib.request.urlopen(base + "/api/v2/alerts", timeout=2) as r:
        return list(json.load(r))


async def until(check: Any, timeout: float = 10.0) -> Any:
    """Poll `check` (run in a thread: it may do blocking I/O) until it returns something
    truthy or the timeout passes; returns its last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await asyncio.to_thread(check)
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.05)


def alerter_for(base: str, clock: Clock, **kw: Any) -> Alerter:
    resend = kw.pop("resend_interval", 60.0)
    config = AlertmanagerConfig(url=base, resend_interval=resend, labels={"team": "payments"})
    destination = config.build(DestinationContext(public_url=PUBLIC_URL))
    kw.setdefault("batch_window", 0.02)
    return Alerter(
        [destination],
        clock=clock,
        retry=FAST,
        metrics=Metrics(),
        tick=0.05,
        public_url=PUBLIC_URL,
        **kw,
    )


def _ends_at(alert: dict[str, Any]) -> float:
    return datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00")).timestamp()


async def test_pattern_fires_in_alertmanager_then_resolves_when_quiet(alertmanager: str) -> None:
    """A threshold crossing appears in Alertmanager's GET /api/v2/alerts as WatcherPattern with
    the pattern's labels and annotations, endsAt about four resend intervals ahead; once the
    pattern is quiet for resolve_after, watcher sends endsAt = now and the alert is gone."""
    clock = Clock()
    alerter = alerter_for(alertmanager, clock, resolve_after=600.0)
    g = group("db-refused", "critical", sources={"api": 7, "worker": 2})
    async with running(alerter):
        alerter.observe([update(g, crossed=True)])
        (alert,) = await until(lambda: active_alerts(alertmanager))
        assert alert["labels"] == {
            "alertname": "WatcherPattern",
            "group_id": "db-refused",
            "category": "database_error",
            "severity": "critical",
            "service": "api",
            "team": "payments",
        }
        link = "https://watcher.example.com/error-monitor/errors/patterns/db-refused"
        assert alert["annotations"] == {
            "summary": "database_error: connection to <*> refused",
            "count": "12",
            "dashboard": link,
        }
        assert alert["generatorURL"] == link
        assert alert["status"]["state"] == "active"
        assert 200 < _ends_at(alert) - datetime.now().timestamp() <= 240
        clock.now += 601  # no event of the pattern since: quiet for resolve_after
        assert await until(lambda: not active_alerts(alertmanager))
    assert outcome(alerter, "sent") == 2
    assert outcome(alerter, "failed") == 0


async def test_open_pattern_is_resent_with_a_later_ends_at(alertmanager: str) -> None:
    """While a pattern stays open it is re-sent every resend_interval, each time moving endsAt
    forward, so Alertmanager keeps it firing; a notify_transition resolve ends it at once."""
    clock = Clock()
    alerter = alerter_for(alertmanager, clock, resend_interval=1.0)
    g = group("slow-query", "high")
    async with running(alerter):
        alerter.observe([update(g, new=True)])
        (first,) = await until(lambda: active_alerts(alertmanager))
        clock.now += 1.5  # the Router's clock: a resend is due
        await asyncio.sleep(1.2)  # and Alertmanager's wall clock moves on for a later endsAt
        (later,) = await until(
            lambda: [a for a in active_alerts(alertmanager) if _ends_at(a) > _ends_at(first)]
        )
        assert later["labels"]["group_id"] == "slow-query"
        alerter.notify_transition(g, "resolved")
        assert await until(lambda: not active_alerts(alertmanager))
    assert outcome(alerter, "sent") >= 3


async def test_unreachable_alertmanager_counts_failures_not_crashes() -> None:
    """An Alertmanager that is down costs failed messages, and the alerter keeps running."""
    clock = Clock()
    alerter = alerter_for(f"http://127.0.0.1:{free_port()}", clock, max_retries=1)
    async with running(alerter):
        alerter.observe([update(group("a", "critical"), crossed=True)])
        await until(lambda: outcome(alerter, "failed") >= 1)
    assert outcome(alerter, "failed") == 1
    assert outcome(alerter, "sent") == 0


async def test_daemon_alerts_alertmanager_and_pagerduty_from_the_config(
    tmp_path: Path, alertmanager: str, pagerduty: FakePagerDuty, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`watcher run` with [[alerts.destinations]] for Alertmanager and PagerDuty (routing key
    from the environment) pushes the crossing patterns to both; a PagerDuty destination whose
    key variable is unset is disabled with an error naming it, and the others still alert."""
    monkeypatch.setenv("TEST_PD_KEY", pagerduty.routing_key)
    monkeypatch.delenv("UNSET_PD_KEY", raising=False)
    log = tmp_path / "app.log"
    log.write_text("")
    cfg = write_config(tmp_path, log)
    cfg.write_text(
        cfg.read_text()
        + '[grouping]\nalert_count = 2\n[alerts]\nbatch_window = "100ms"\nmin_severity = "low"\n'
        + f'[[alerts.destinations]]\ntype = "alertmanager"\nurl = "{alertmanager}"\n'
        + f'[[alerts.destinations]]\ntype = "pagerduty"\nurl = "{pagerduty.url}"\n'
        + 'routing_key_env = "TEST_PD_KEY"\nkinds = ["threshold"]\n'
        + '[[alerts.destinations]]\ntype = "pagerduty"\nname = "backup-pager"\n'
        + 'routing_key_env = "UNSET_PD_KEY"\n'
    )
    with structlog.testing.capture_logs() as logs:
        daemon = Daemon(load_config(cfg))
        task = asyncio.create_task(daemon.run())
        await asyncio.wait_for(daemon.started.wait(), 10)
    assert {"event": "Alert destination disabled.", "destination": "backup-pager"}.items() <= next(
        e for e in logs if e["event"] == "Alert destination disabled."
    ).items()
    await until(
        lambda: (
            daemon.metrics.registry.get_sample_value("watcher_source_up", {"source": "app"}) == 1
        )
    )
    with log.open("a") as fh:
        fh.write(ERRORS)
    firing = await until(lambda: active_alerts(alertmanager), timeout=20)
    assert await until(lambda: pagerduty.alerts, timeout=20)
    daemon.shutdown.set()
    assert await asyncio.wait_for(task, 15) == 0
    assert {a["labels"]["alertname"] for a in firing} == {"WatcherPattern"}
    assert {a["labels"]["service"] for a in firing} == {"app"}
    assert "timeout_error" in {a["labels"]["category"] for a in firing}
    assert {e["event_action"] for a in pagerduty.alerts for e in a.events} == {"trigger"}


async def test_alertmanager_notifies_firing_then_resolved(
    tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """Through Alertmanager's own routing (a webhook receiver with send_resolved), watcher's
    push becomes a "firing" notification and watcher's resolve a "resolved" one."""
    receiver = (
        "route:\n  receiver: hook\n  group_by: [group_id]\n  group_wait: 0s\n"
        "  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n"
        f"    webhook_configs:\n      - url: {webhook_receiver.url('/am')}\n"
        "        send_resolved: true\n"
    )
    clock = Clock()
    with running_alertmanager(tmp_path, receiver) as base:
        alerter = alerter_for(base, clock)
        g = group("db-refused", "critical")
        async with running(alerter):
            alerter.observe([update(g, crossed=True)])
            (firing,) = await webhook_receiver.wait_for(1, timeout=15)
            alerter.notify_transition(g, "resolved")
            _, resolved = await webhook_receiver.wait_for(2, timeout=15)
    assert firing.json["status"] == "firing"
    assert firing.json["alerts"][0]["labels"]["group_id"] == "db-refused"
    assert resolved.json["status"] == "resolved"
    assert resolved.json["alerts"][0]["labels"]["alertname"] == "WatcherPattern"


async def test_secrets_never_reach_alertmanager(alertmanager: str) -> None:
    """A secret in a pattern's template is redacted (the project's Redactor) before the
    summary annotation is built: Alertmanager never holds it."""
    secret = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
    alerter = alerter_for(alertmanager, Clock(), redact=Redactor().redact)
    g = group("leak", "critical", template=f"stripe rejected key {secret}")
    async with running(alerter):
        alerter.observe([update(g, crossed=True)])
        (alert,) = await until(lambda: active_alerts(alertmanager))
    assert secret not in json.dumps(alert)
    assert alert["annotations"]["summary"].startswith("database_error: stripe rejected key")
